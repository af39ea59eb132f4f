"""Open a discovered file for reading without ever blocking on something that is not one.

Discovery skips FIFOs, but a file can be swapped for a FIFO (or a device)
between discovery and reading, and opening a FIFO for reading blocks until a
writer appears: the scan would hang.  Every reader therefore opens with
``O_NONBLOCK`` and checks ``fstat`` on the descriptor it will read.

Native readers (Arrow, Pillow) take a path; :func:`regular_file` hands them
``/proc/self/fd/N`` where the system has it, which names the very file that
was checked (no second lookup of the name that could be swapped again) and
is plain ASCII even when the file's own name is not UTF-8.
"""

from __future__ import annotations

import os
import stat
from contextlib import contextmanager
from typing import BinaryIO, Iterator

from datasan.fs import is_remote, open_input


class NotRegularFile(OSError):
    """The path no longer names a regular file (a FIFO, socket, device or folder)."""


def _kind(mode: int) -> str:
    if stat.S_ISFIFO(mode):
        return "FIFO"
    if stat.S_ISSOCK(mode):
        return "socket"
    if stat.S_ISDIR(mode):
        return "folder"
    return "device file"


def open_fd(path: str | bytes) -> int:
    """A read-only descriptor of ``path``, opened without blocking; NotRegularFile unless it is a
    regular file (the descriptor is then closed)."""
    fd = os.open(path, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_CLOEXEC", 0))
    try:
        mode = os.fstat(fd).st_mode
        if not stat.S_ISREG(mode):
            raise NotRegularFile(f"it is now a {_kind(mode)}, not a regular file; it was not read")
    except BaseException:
        os.close(fd)
        raise
    return fd


def open_binary(path: str | bytes) -> BinaryIO:
    """A buffered binary file object for ``path`` (see :func:`open_fd`); an object of a store
    (``s3://...``) through :mod:`datasan.fs`."""
    if isinstance(path, str) and is_remote(path):
        import io

        return io.BufferedReader(open_input(path), 1 << 20)
    return os.fdopen(open_fd(path), "rb")


@contextmanager
def regular_file(path: str) -> Iterator:
    """Yield a path that native readers can open and that names the checked regular file
    (for an object of a store: its open pyarrow file, which they read as well).

    ``/proc/self/fd/N`` while the descriptor is held; on systems without it,
    ``path`` itself (checked just before).
    """
    if is_remote(path):  # an object: Arrow and Pillow read its pyarrow file handle directly
        with open_input(path) as handle:
            yield handle
        return
    fd = open_fd(path)
    try:
        proc = f"/proc/self/fd/{fd}"
        yield proc if os.path.exists(proc) else path
    finally:
        os.close(fd)
