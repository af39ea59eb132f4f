"""The output folder of a run: whose it is, one run at a time, and the run's staging folder.

A folder is datasan's when it is new, empty, or carries datasan's
manifest.json.  Any other non-empty folder is refused unless the caller
forces it, and even then only files datasan wrote are ever replaced (see
:mod:`datasan.outputs.files`).  One run at a time holds an exclusive lock on
``OUT/.datasan.lock``; the run builds its files in ``OUT/.datasan-staging-<run
id>/`` (same file system, so publishing is renames), which a signal removes
and which the next run removes when a kill -9 left it behind.
"""

from __future__ import annotations

import errno
import os
import shutil
import signal
import threading
from contextlib import contextmanager
from typing import Callable

from datasan.dropped import retry_dropped
from datasan.errors import UsageError
from datasan.outputs.manifest import read_manifest

LOCK = ".datasan.lock"
STAGING_PREFIX = ".datasan-staging-"
#: a file inside every staging folder: only folders that carry it are ever removed
STAGING_MARK = ".datasan-staging"
#: errors of the place written to (full disk, read-only, no permission): exit 2, not a bug
ENVIRONMENT_ERRNOS = {errno.ENOSPC, errno.EDQUOT, errno.EROFS, errno.EACCES, errno.EPERM, errno.EFBIG,
                      errno.ENOTDIR}


class Interrupted(KeyboardInterrupt):
    """SIGTERM (or SIGINT) arrived while a run held an output folder."""

    def __init__(self, signum: int) -> None:
        super().__init__(f"interrupted by signal {signum}")
        self.signum = signum


def inside(child: str, parent: str) -> bool:
    """True when ``child`` is ``parent`` or lies under it (symbolic links resolved)."""
    child, parent = os.path.realpath(child), os.path.realpath(parent)
    return child == parent or child.startswith(parent.rstrip(os.sep) + os.sep)


def environment_error(exc: BaseException, out: str, anywhere: bool = False) -> UsageError | None:
    """The usage error an OSError about the place written to (``out``) becomes; None for other
    errors, and for errors that name a file elsewhere (reading PATH is the sources' business)
    unless ``anywhere`` (creating ``out`` fails on its parents)."""
    if not isinstance(exc, OSError) or exc.errno not in ENVIRONMENT_ERRNOS:
        return None
    if not anywhere and isinstance(exc.filename, (str, bytes, os.PathLike)) \
            and not inside(os.fsdecode(exc.filename), out):
        return None
    where = f" ({exc.filename})" if exc.filename else ""
    return UsageError(f"cannot write the outputs to {out}: {exc.strerror or exc}{where}; nothing was "
                      f"published (the folder holds the previous complete run, if any)")


def check_places(out: str, path: str | None) -> None:
    """UsageError when ``out`` is a file, lies inside PATH, or holds PATH."""
    if os.path.lexists(out) and not os.path.isdir(out):
        raise UsageError(f"the output folder {out} exists and is not a folder: choose another --out")
    if path is None or "://" in path:  # PATH on an object store cannot overlap a local folder
        return
    if os.path.isdir(path) and inside(out, path):
        raise UsageError(f"the output folder {out} lies inside PATH {path}; datasan never writes "
                         "under PATH: choose another --out")
    if inside(path, out):
        raise UsageError(f"PATH {path} lies inside the output folder {out}; datasan keeps its outputs "
                         "apart from the data: choose another --out")


def _is_staging(out: str, name: str) -> bool:
    full = os.path.join(out, name)
    return (name.startswith(STAGING_PREFIX) and not os.path.islink(full) and os.path.isdir(full)
            and os.path.isfile(os.path.join(full, STAGING_MARK)))


def foreign_entries(out: str) -> list[str]:
    """Entries of ``out`` that show it is not datasan's (empty for a datasan output or an empty folder)."""
    if not os.path.isdir(out) or read_manifest(out) is not None:
        return []
    try:
        names = sorted(os.listdir(out))
    except OSError as exc:
        raise UsageError(f"cannot read the output folder {out}: {exc.strerror}") from exc
    return [n for n in names if n != LOCK and not _is_staging(out, n)]


def check_owner(out: str, force: bool) -> None:
    """UsageError when ``out`` holds files and is not a datasan output, unless ``force``."""
    foreign = foreign_entries(out)
    if foreign and not force:
        shown = ", ".join(foreign[:5]) + (f" and {len(foreign) - 5} more" if len(foreign) > 5 else "")
        old = (" An output folder of a datasan version before manifests looks like this: delete it."
               if "report.json" in foreign and "findings.parquet" in foreign else "")
        raise UsageError(
            f"the output folder {out} is not empty and is not a datasan output (no manifest.json; it "
            f"holds {shown}): choose a new or empty --out, or pass --force to write beside these "
            f"files (datasan never replaces or removes a file it did not write).{old}")


# ------------------------------------------------------------------ signals
_signals = threading.local()


def _on_signal(signum, frame) -> None:
    if getattr(_signals, "deferring", False):
        _signals.pending = signum
        return
    raise Interrupted(signum)


@contextmanager
def deferred_signals():
    """Hold SIGINT/SIGTERM (when our handler is installed) until the block ends, so the
    renames that publish a run are not cut in two by a signal."""
    _signals.deferring, _signals.pending = True, None
    try:
        yield
    finally:
        _signals.deferring = False
        pending, _signals.pending = _signals.pending, None
        if pending is not None:
            raise Interrupted(pending)


#: seconds before a signal whose Interrupted Python dropped is sent again
REDELIVER_S = 0.05


def _send_again(exc: Interrupted) -> None:
    """Send ``exc``'s signal again, from another thread a moment later, so that it lands in
    the run's own code (see :mod:`datasan.dropped`: a stopped service's scan kept running)."""
    timer = threading.Timer(REDELIVER_S, os.kill, (os.getpid(), exc.signum))
    timer.daemon = True
    timer.start()


def _install_handlers() -> dict:
    """Our SIGINT/SIGTERM handler installed; returns the handlers it replaced."""
    if threading.current_thread() is not threading.main_thread():
        return {}
    old = {}
    for sig in (signal.SIGINT, signal.SIGTERM):
        old[sig] = signal.getsignal(sig)
        signal.signal(sig, _on_signal)
    return old


# ------------------------------------------------------------------ the folder
class OutputFolder:
    """An output folder claimed by one run: locked, with the run's staging folder inside."""

    def __init__(self, out: str, run_id: str) -> None:
        self.out = out
        self.run_id = run_id
        self.staging = os.path.join(out, STAGING_PREFIX + run_id)
        self._fd: int | None = None
        self._handlers: dict = {}
        self._unhook: Callable[[], None] | None = None
        #: True when this run made the folder: a run that publishes nothing leaves no trace
        self.created = False

    @property
    def held(self) -> bool:
        """True until :meth:`release`."""
        return self._fd is not None

    def release(self, remove_staging: bool = True) -> None:
        """Remove the staging folder (unless asked to keep it), unlock, restore signal handlers."""
        if remove_staging and os.path.isdir(self.staging):
            shutil.rmtree(self.staging, ignore_errors=True)
        if self._fd is not None:
            if remove_staging:
                self._remove_lone_lock()
            os.close(self._fd)  # closing the descriptor drops the lock
            self._fd = None
        for sig, handler in self._handlers.items():
            try:
                signal.signal(sig, handler)
            except (ValueError, TypeError):  # pragma: no cover - not the main thread any more
                pass
        self._handlers = {}
        if self._unhook is not None:
            self._unhook()
            self._unhook = None


    def _remove_lone_lock(self) -> None:
        """With the lock still held: when the lock file is all the folder holds (nothing was
        published), remove it, and the folder too when this run created it."""
        try:
            if os.listdir(self.out) != [LOCK]:
                return
            os.unlink(os.path.join(self.out, LOCK))
            if self.created:
                os.rmdir(self.out)
        except OSError:  # best effort: a lock file left behind is harmless
            pass


def _lock(out: str) -> int:
    """An exclusive, non-blocking lock on OUT/.datasan.lock; UsageError when another run holds it."""
    import fcntl

    path = os.path.join(out, LOCK)
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o666)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        holder = os.read(fd, 64).decode("ascii", "replace").strip()
        os.close(fd)
        raise UsageError(f"another datasan run{f' (pid {holder})' if holder else ''} is writing to {out}; "
                         "wait for it to finish or choose another --out") from None
    os.ftruncate(fd, 0)
    os.write(fd, f"{os.getpid()}\n".encode())
    return fd


def remove_stale_staging(out: str) -> list[str]:
    """Remove the staging folders a killed run left in ``out`` (call with the lock held)."""
    removed = []
    for name in sorted(os.listdir(out)):
        if _is_staging(out, name):
            shutil.rmtree(os.path.join(out, name), ignore_errors=True)
            removed.append(name)
    return removed


def claim_output(out_dir: str | os.PathLike, path: str | None, run_id: str, force: bool = False) -> OutputFolder:
    """Check, create, lock and prepare ``out_dir`` for run ``run_id``; UsageError when it cannot be used.

    Nothing is created in a folder that is refused.  ``path`` is the scanned
    PATH (None: not checked against it).
    """
    out = os.fspath(out_dir)
    check_places(out, path)
    check_owner(out, force)
    folder = OutputFolder(out, run_id)
    try:
        folder.created = not os.path.exists(out)
        os.makedirs(out, exist_ok=True)
        folder._fd = _lock(out)
        check_owner(out, force)  # again, now that no other run can change it
        remove_stale_staging(out)
        os.mkdir(folder.staging)
        with open(os.path.join(folder.staging, STAGING_MARK), "w", encoding="utf-8") as f:
            f.write(run_id + "\n")
        folder._handlers = _install_handlers()
        if folder._handlers:  # our handler is installed: its Interrupted is never lost
            folder._unhook = retry_dropped(Interrupted, _send_again)
    except BaseException as exc:
        folder.release()
        env = environment_error(exc, out, anywhere=True)
        if env is not None:
            raise env from exc
        raise
    return folder
