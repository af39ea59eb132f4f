"""A progress bar on stderr, shown only when stderr is a terminal; and progress for a listener.

A program that runs scans in threads (``datasan serve``) wraps a scan in
:func:`listen` to learn its stage and sample count: the listener belongs to
the thread, so scans running side by side never see each other's progress.
"""

from __future__ import annotations

import sys
import threading
from contextlib import contextmanager
from typing import Callable, Iterator

#: listener(stage, samples done so far), per thread
Listener = Callable[[str, int], None]
_local = threading.local()


@contextmanager
def listen(listener: Listener) -> Iterator[None]:
    """Call ``listener(stage, samples)`` as the scans this thread runs inside the block advance."""
    previous = getattr(_local, "listener", None)
    _local.listener = listener
    try:
        yield
    finally:
        _local.listener = previous


class Progress:
    """Counts samples as shards finish; silent unless enabled and stderr is a TTY, or a
    :func:`listen` block of this thread is waiting for it."""

    def __init__(self, enabled: bool = False) -> None:
        self._bar = None
        self._task = None
        self._listener: Listener | None = getattr(_local, "listener", None)
        self._stage, self._done = "discover", 0
        if enabled and sys.stderr.isatty():
            from rich.console import Console
            from rich.progress import BarColumn, Progress as RichProgress, TextColumn, TimeElapsedColumn

            self._bar = RichProgress(TextColumn("{task.description}"), BarColumn(),
                                     TextColumn("{task.completed:,} samples"), TimeElapsedColumn(),
                                     console=Console(stderr=True), transient=True)
            self._bar.start()
            self._task = self._bar.add_task("scanning", total=None)

    def stage(self, name: str) -> None:
        self._stage = name
        self._tell()
        if self._bar is not None:
            self._bar.update(self._task, description=f"scanning {name}")

    def advance(self, n: int) -> None:
        self._done += n
        self._tell()
        if self._bar is not None:
            self._bar.advance(self._task, n)

    def _tell(self) -> None:
        if self._listener is not None:
            self._listener(self._stage, self._done)

    def close(self) -> None:
        if self._bar is not None:
            self._bar.stop()
            self._bar = None
