"""A cheap identity of the data under a path: names, sizes and modification times, no contents.

The gate answers from its database while this does not change.  A content
hash would be safer and as slow as a scan; (size, mtime_ns) is what rsync and
make trust, and a rescan is what a mismatch costs.
"""

from __future__ import annotations

import hashlib
import os
import stat


def fingerprint(path: str) -> str:
    """sha256 over (relative path, kind, size, mtime_ns) of every entry under ``path``, in sorted order.

    Symlinks are not followed (their target text counts), so a link that leaves
    the folder is never read through; a folder's own times do not count, only
    what lies in it.  Memory is bounded by the widest folder, not the tree.
    """
    h = hashlib.sha256()
    st = os.lstat(path)
    if not stat.S_ISDIR(st.st_mode):
        _add(h, os.path.basename(path), st, path)
        return h.hexdigest()
    _walk(h, path, "")
    return h.hexdigest()


def _walk(h, folder: str, prefix: str) -> None:
    try:
        with os.scandir(folder) as it:
            entries = sorted(it, key=lambda e: e.name)
    except OSError as exc:  # an unreadable folder is part of the identity: the scan reports it
        h.update(f"{prefix}\0unreadable\0{exc.errno}\n".encode("utf-8", "surrogateescape"))
        return
    for e in entries:
        rel = prefix + e.name
        try:
            st = e.stat(follow_symlinks=False)
        except OSError:
            h.update(f"{rel}\0gone\n".encode("utf-8", "surrogateescape"))
            continue
        if stat.S_ISDIR(st.st_mode):
            _walk(h, e.path, rel + "/")
        else:
            _add(h, rel, st, e.path)


def _add(h, rel: str, st: os.stat_result, full: str) -> None:
    extra = ""
    if stat.S_ISLNK(st.st_mode):
        try:
            extra = os.readlink(full)
        except OSError:
            extra = "?"
    line = f"{rel}\0{stat.S_IFMT(st.st_mode)}\0{st.st_size}\0{st.st_mtime_ns}\0{extra}\n"
    h.update(line.encode("utf-8", "surrogateescape"))


class SharedWalks:
    """:func:`fingerprint` for many concurrent requests, walking each path at most twice at once.

    A request never takes the result of a walk that began before it arrived
    (that walk may have missed a change made just before the request); it
    waits for the next walk, which every request arriving meanwhile shares.
    So N clients asking at once cost two walks, not N.  Runs on the event loop.
    """

    def __init__(self) -> None:
        self._running: dict[str, object] = {}
        self._next: dict[str, object] = {}
        self._tasks: set = set()

    async def __call__(self, path: str) -> str:
        import asyncio

        loop = asyncio.get_running_loop()
        fut = self._next.get(path)
        if fut is None:
            fut = loop.create_future()
            if path in self._running:
                self._next[path] = fut
            else:
                self._launch(path, fut)
        return await asyncio.shield(fut)

    def _launch(self, path: str, fut) -> None:
        import asyncio

        from starlette.concurrency import run_in_threadpool

        self._running[path] = fut

        async def walk() -> None:
            try:
                fut.set_result(await run_in_threadpool(fingerprint, path))
            except asyncio.CancelledError:
                fut.cancel()
                raise
            except Exception as exc:  # every waiter gets it (a folder removed meanwhile: OSError)
                fut.set_exception(exc)
            finally:
                del self._running[path]
                nxt = self._next.pop(path, None)
                if nxt is not None:
                    self._launch(path, nxt)

        task = asyncio.ensure_future(walk())
        self._tasks.add(task)  # the loop keeps only weak references to tasks
        task.add_done_callback(self._tasks.discard)
