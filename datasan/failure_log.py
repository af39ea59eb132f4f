"""The failure log of :class:`~datasan.safe_dataset.SafeDataset`: what went wrong, in which worker.

Failures are appended to a small JSON-lines file in the temporary folder, one
``write`` each (atomic for short lines), so failures in DataLoader worker
processes reach the main process under fork and spawn alike.  A failure
already logged is counted in memory and its repeats appended as one line, so
the file grows by a line per distinct failure, not per epoch.
"""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
import uuid
import weakref
from typing import Any, Iterator

import torch

#: repeats of already-logged failures a process counts in memory before appending them in one line
FLUSH_REPEATS = 4096
FAILURE_COLUMNS = ["index", "sample", "reason", "worker", "count"]


def _remove(path: str, owner: int) -> None:
    if os.getpid() == owner:  # a forked worker must not remove the parent's log
        try:
            os.remove(path)
        except OSError:
            pass


def _key(index, reason: str) -> str:
    """A stable key of one failure (the same in every process, under fork and spawn)."""
    return hashlib.blake2b(f"{index}\0{reason}".encode("utf-8", "replace"), digest_size=8).hexdigest()


class FailureLog:
    """Failures seen by every process that holds a copy: a JSON-lines file in the temp folder.

    The log deduplicates on write: a failure (same index and reason) gets its
    line (index, sample, reason, worker) once, from the first process that
    logs it; later occurrences are counted in memory and appended as one
    ``{"repeats": {key: n}}`` line every FLUSH_REPEATS occurrences, when the
    process exits and when :meth:`read` runs.  So the file grows with the
    distinct failures, not with epochs, and a process keeps one short key per
    distinct failure.  A worker killed outright loses at most its unflushed
    repeat counts, never a failure.

    Created empty-handed (no file until the first failure); the file is removed
    when the object that created it is garbage-collected, in the process that
    created it.
    """

    def __init__(self) -> None:
        self.path = os.path.join(tempfile.gettempdir(), f"datasan-failures-{os.getpid()}-{uuid.uuid4().hex}.jsonl")
        self._owner = os.getpid()
        self._finalizer = weakref.finalize(self, _remove, self.path, self._owner)
        self._reset()

    def _reset(self) -> None:
        self._pid = os.getpid()
        self._known: set[str] | None = None  # keys already in the file (loaded at the first failure)
        self._repeats: dict[str, int] = {}
        self._pending = 0

    def __getstate__(self) -> dict[str, Any]:
        return {"path": self.path, "_owner": self._owner}

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.path = state["path"]
        self._owner = state["_owner"]
        self._finalizer = None  # copies never remove the file
        self._reset()

    def _append(self, line: str) -> None:
        fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
        try:
            os.write(fd, line.encode("utf-8"))  # one write with O_APPEND: lines of processes never mix
        finally:
            os.close(fd)

    def _known_keys(self) -> set[str]:
        if self._pid != os.getpid():  # a forked copy: what its parent knew may be stale
            self._reset()
        if self._known is None:
            self._known = {_key(r["index"], r["reason"]) for r in self._records() if "repeats" not in r}
            if self._pid != self._owner:
                # a DataLoader worker ends after each epoch: its counts are appended then
                # (the owner's counts are read in-process; at its exit the file goes away)
                from multiprocessing import util

                util.Finalize(self, FailureLog.flush, args=(self,), exitpriority=10)
        return self._known

    def record(self, index, sample, reason: str) -> None:
        """Log one failure (index, sample id, reason) of this process."""
        known = self._known_keys()
        key = _key(index, reason)
        if key in known:
            self._repeats[key] = self._repeats.get(key, 0) + 1
            self._pending += 1
            if self._pending >= FLUSH_REPEATS:
                self.flush()
            return
        known.add(key)
        try:
            worker = torch.utils.data.get_worker_info()
        except Exception:  # pragma: no cover
            worker = None
        self._append(json.dumps({"index": index, "sample": sample, "reason": reason,
                                 "worker": worker.id if worker is not None else None}, default=str) + "\n")

    def flush(self) -> None:
        """Append the repeats this process counted, in one line."""
        if self._pid != os.getpid() or not self._repeats:
            return
        line = json.dumps({"repeats": self._repeats}) + "\n"
        self._repeats, self._pending = {}, 0
        self._append(line)

    def _records(self) -> Iterator[dict[str, Any]]:
        try:
            f = open(self.path, encoding="utf-8")
        except FileNotFoundError:
            return
        with f:
            for line in f:  # streamed: never the whole file in memory
                if line.endswith("\n"):  # else a line still being written
                    yield json.loads(line)

    def read(self) -> dict[str, list]:
        """Every distinct failure, in the order first seen, as columns: index, sample, reason,
        worker (of the first process that logged it) and count (occurrences, all processes)."""
        self.flush()
        cols: dict[str, list] = {c: [] for c in FAILURE_COLUMNS}
        at: dict[str, int] = {}  # key -> position: columns, not a dict per failure, keep this small
        repeats: dict[str, int] = {}
        for rec in self._records():
            if "repeats" in rec:
                for k, n in rec["repeats"].items():
                    repeats[k] = repeats.get(k, 0) + n
                continue
            key = _key(rec["index"], rec["reason"])
            if key in at:  # two processes logged it at the same moment
                cols["count"][at[key]] += 1
                continue
            at[key] = len(at)
            for c in FAILURE_COLUMNS[:-1]:
                cols[c].append(rec[c])
            cols["count"].append(1)
        for key, n in repeats.items():
            if key in at:
                cols["count"][at[key]] += n
        return cols

    def clear(self) -> None:
        """Forget every failure recorded so far."""
        self._reset()
        try:
            os.remove(self.path)
        except FileNotFoundError:
            pass
