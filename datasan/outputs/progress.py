"""A progress bar on stderr, shown only when stderr is a terminal."""

from __future__ import annotations

import sys


class Progress:
    """Counts samples as shards finish; silent unless enabled and stderr is a TTY."""

    def __init__(self, enabled: bool = False) -> None:
        self._bar = None
        self._task = None
        if enabled and sys.stderr.isatty():
            from rich.console import Console
            from rich.progress import BarColumn, Progress as RichProgress, TextColumn, TimeElapsedColumn

            self._bar = RichProgress(TextColumn("{task.description}"), BarColumn(),
                                     TextColumn("{task.completed:,} samples"), TimeElapsedColumn(),
                                     console=Console(stderr=True), transient=True)
            self._bar.start()
            self._task = self._bar.add_task("scanning", total=None)

    def stage(self, name: str) -> None:
        if self._bar is not None:
            self._bar.update(self._task, description=f"scanning {name}")

    def advance(self, n: int) -> None:
        if self._bar is not None:
            self._bar.advance(self._task, n)

    def close(self) -> None:
        if self._bar is not None:
            self._bar.stop()
            self._bar = None
