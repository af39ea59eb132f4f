"""SafeDataset: keep a DataLoader alive over data with corrupt files and NaN/Inf values.

:class:`SafeDataset` wraps any map-style dataset (it needs to know nothing of
datasan), :class:`SafeIterableDataset` any iterable one.  Failures are written
to a small JSON-lines file in the temporary folder, appended with one
``write`` each (atomic for short lines), so failures that happen in DataLoader
worker processes reach :meth:`SafeDataset.failures` in the main process under
fork and spawn alike; the wrapper pickles as a path, not as a live object.

This module imports torch; ``import datasan`` does not import it.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import math
import os
import tempfile
import uuid
import weakref
from collections.abc import Mapping
from typing import Any, Callable, Iterable, Iterator, Literal, Sequence, Union

import torch
from torch.utils.data import Dataset, IterableDataset

from datasan.collate import BadSample, safe_collate  # noqa: F401  (re-exported)
from datasan.errors import BadSampleError

#: what to do with a bad sample
OnError = Literal["skip", "replace", "raise"]
#: samples to drop up front: an output folder or quarantine file, a quarantine DataFrame or
#: Arrow table, or indices and/or sample ids
Exclude = Union[str, os.PathLike, Any, Iterable[Union[int, str]], None]

ON_ERROR = ("skip", "raise", "replace")


# --------------------------------------------------------------------------- failures
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


# --------------------------------------------------------------------------- checks
#: nesting deeper than this is a bad sample: collating it would overflow Python's stack
MAX_DEPTH = 100


def _children(obj: Any, path: str) -> list[tuple[Any, str]] | None:
    """The parts of a container with their paths, or None when ``obj`` is not one."""
    if isinstance(obj, Mapping):
        return [(v, f"{path}[{k!r}]") for k, v in obj.items()]
    if isinstance(obj, (list, tuple)):
        return [(v, f"{path}[{i}]") for i, v in enumerate(obj)]
    if dataclasses.is_dataclass(obj) and not isinstance(obj, type):
        return [(getattr(obj, f.name), f"{path}.{f.name}") for f in dataclasses.fields(obj)]
    return None


def _array_reason(arr, path: str) -> str | None:
    import numpy as np

    if arr.dtype.kind in "fc":
        finite = np.isfinite(arr)
        if not finite.all():
            n_nan = int(np.isnan(arr).sum())
            n_inf = int((~finite).sum()) - n_nan
            return f"{path} holds {n_nan} NaN and {n_inf} Inf value(s)"
    return None


def _tensor_reason(t: torch.Tensor, path: str) -> str | None:
    if t.is_floating_point() or t.is_complex():
        finite = torch.isfinite(t)
        if not bool(finite.all()):
            n_nan = int(torch.isnan(t).sum())
            n_inf = int((~finite).sum()) - n_nan
            return f"{path} holds {n_nan} NaN and {n_inf} Inf value(s)"
    return None


def nonfinite_reason(obj: Any, path: str = "item") -> str | None:
    """A sentence naming the first NaN or Inf in ``obj`` (or why ``obj`` cannot be used), else None.

    Walks tuples, lists, mappings, dataclasses, pandas Series/DataFrames and
    object ndarrays with an explicit stack, not recursion: a self-referencing
    or 5,000-deep sample gets a reason (a reference cycle, nesting deeper
    than MAX_DEPTH, which no collate function could take) instead of raising
    RecursionError.  Integer and bool data cannot be non-finite.
    """
    import numpy as np

    stack: list[tuple[Any, str, int, frozenset]] = [(obj, path, 0, frozenset())]
    while stack:
        item, where, depth, ancestors = stack.pop()
        if isinstance(item, torch.Tensor):
            reason = _tensor_reason(item, where)
        elif isinstance(item, float):
            reason = None if math.isfinite(item) else f"{where} is {item}"
        elif isinstance(item, (str, bytes, int)) or item is None:
            reason = None
        else:
            if type(item).__module__.split(".")[0] == "pandas" and hasattr(item, "to_numpy"):
                item = item.to_numpy()
            kids = None
            if isinstance(item, np.ndarray) or type(item).__module__ == "numpy":
                arr = np.asarray(item)
                if arr.dtype != object:
                    reason = _array_reason(arr, where)
                    if reason:
                        return reason
                    continue
                kids = [(v, f"{where}[{', '.join(map(str, i))}]") for i, v in np.ndenumerate(arr)]
            else:
                kids = _children(item, where)
            if kids is None:
                continue
            if id(item) in ancestors:
                return f"{where} contains itself (a reference cycle)"
            if depth >= MAX_DEPTH:
                return f"{where} is nested more than {MAX_DEPTH} levels deep"
            inner = ancestors | {id(item)}
            stack.extend((v, p, depth + 1, inner) for v, p in reversed(kids))
            continue
        if reason:
            return reason
    return None


def _checked(item: Any) -> str | None:
    """nonfinite_reason, with a sample whose own methods raise while being walked (a
    Mapping whose items() fails, an array-like that cannot convert) as the reason."""
    try:
        return nonfinite_reason(item)
    except Exception as exc:
        return f"item could not be checked: {_describe(exc)}"


def _describe(exc: BaseException) -> str:
    return f"{type(exc).__name__}: {exc}"


# --------------------------------------------------------------------------- exclude / ids
def _sample_ids_of(exclude: Any) -> tuple[set[int], set[str]]:
    """(indices, sample ids) that ``exclude`` names: an output folder, a quarantine file,
    a DataFrame / Arrow table with a ``sample`` column, or a list of indices and ids."""
    if exclude is None:
        return set(), set()
    if isinstance(exclude, (str, os.PathLike)):
        path = os.fspath(exclude)
        if os.path.isdir(path):
            path = os.path.join(path, "quarantine.parquet")
        if not os.path.isfile(path):
            raise FileNotFoundError(f"exclude: no quarantine file at {path}")
        if path.endswith(".csv"):
            import pyarrow.csv as pacsv

            table = pacsv.read_csv(path)
        else:
            import pyarrow.parquet as pq

            table = pq.read_table(path, columns=["sample"])
        return set(), {s for s in table.column("sample").to_pylist() if s is not None}
    if hasattr(exclude, "column_names"):  # pyarrow Table
        return set(), {s for s in exclude.column("sample").to_pylist() if s is not None}
    if hasattr(exclude, "columns") and "sample" in getattr(exclude, "columns"):  # pandas DataFrame
        return set(), {s for s in exclude["sample"].tolist() if s is not None}
    idx, names = set(), set()
    for e in exclude:
        if isinstance(e, str):
            names.add(e)
        else:
            idx.add(int(e))
    return idx, names


def _id_of(ids: Any, index: int) -> str | None:
    if ids is None:
        return None
    try:
        return ids(index) if callable(ids) else ids[index]
    except Exception:
        return None


def _check_mode(on_error: str) -> None:
    if on_error not in ON_ERROR:
        raise ValueError(f"on_error must be one of {', '.join(ON_ERROR)}, not {on_error!r}")


# --------------------------------------------------------------------------- map-style
class SafeDataset(Dataset):
    """A map-style dataset that never lets one bad sample kill a DataLoader.

    ``base[i]`` is called in a try block and what it returns is checked for
    NaN/Inf (``check_finite``).  On a failure:

    * ``on_error="skip"``: returns a :class:`~datasan.collate.BadSample` marker
      that :func:`datasan.safe_collate` drops (batches may be smaller);
    * ``"replace"``: returns the next good sample (index i+1, i+2, ... wrapping
      around): deterministic, so every epoch sees the same substitutes;
    * ``"raise"``: raises :class:`datasan.BadSampleError` naming the index, the
      sample id and the reason.

    ``exclude`` drops samples up front: a scan's output folder (its
    quarantine.parquet), a quarantine DataFrame, or a list of indices and/or
    sample ids; ``ids`` (a sequence or a callable index -> sample id) tells
    which sample id each index of ``base`` has (default: ``base.sample_ids``
    when it exists).  Indices reported in failures are indices of ``base``.
    """

    def __init__(self, base: Any, *, on_error: OnError = "skip", check_finite: bool = True,
                 exclude: Exclude = None, ids: Sequence[str] | Callable[[int], str] | None = None,
                 max_replace_tries: int = 100) -> None:
        _check_mode(on_error)
        self.base = base
        self.on_error = on_error
        self.check_finite = check_finite
        self.ids = ids if ids is not None else getattr(base, "sample_ids", None)
        self.max_replace_tries = max_replace_tries
        self._log = FailureLog()
        self._known_bad: set[int] = set()
        drop_idx, drop_ids = _sample_ids_of(exclude)
        n = len(base)
        if drop_ids and self.ids is None:
            raise ValueError("exclude names sample ids: pass ids= (a sequence or index -> id callable)")
        if drop_idx or drop_ids:
            self._keep: list[int] | None = [
                i for i in range(n) if i not in drop_idx and not (drop_ids and _id_of(self.ids, i) in drop_ids)]
        else:
            self._keep = None
        self.excluded = n - len(self)

    @classmethod
    def from_scan(cls, out_dir: str | os.PathLike, transform: Callable[[Any], Any] | None = None,
                  normalize: bool = False, *, source: str | None = None,
                  size: int | tuple[int, int] | None = None, **kwargs: Any) -> "SafeDataset":
        """A SafeDataset over the kept samples of the scan written to ``out_dir``.

        Every item is ``(x, y)``. Images (index.parquet) give a CHW float
        tensor in 0..1, resized to ``size`` ((height, width) or an int for a
        square; default: the most common size of the selected images) and
        normalized with stats.json's per-folder mean/std when ``normalize``;
        table rows (clean/<source>.parquet) give a float32 feature tensor.
        ``y`` is the label (int class id, float regression target) or -1 when
        missing or when the source has none.  ``transform`` is applied to
        ``x``.  ``source`` (a name or glob) chooses the source and is needed
        when the folder holds several (UsageError lists them).  Other keywords
        go to SafeDataset.
        """
        from datasan.scan_dataset import ScanDataset

        ds = ScanDataset(out_dir, transform=transform, normalize=normalize, source=source, size=size)
        return cls(ds, ids=ds.sample_ids, **kwargs)

    def __len__(self) -> int:
        return len(self.base) if self._keep is None else len(self._keep)

    def base_index(self, i: int) -> int:
        """The index into ``base`` of position ``i``."""
        return i if self._keep is None else self._keep[i]

    def sample_id(self, i: int) -> str | None:
        """The sample id of position ``i`` (None when unknown)."""
        return _id_of(self.ids, self.base_index(i))

    def _load(self, i: int) -> tuple[Any, str | None]:
        """(item, None) or (None, reason) for position i."""
        bi = self.base_index(i)
        try:
            item = self.base[bi]
        except Exception as exc:  # a corrupt file, a decode error, a RecursionError: the sample
            return None, _describe(exc)
        if self.check_finite:
            reason = _checked(item)
            if reason:
                return None, reason
        return item, None

    def __getitem__(self, i: int):
        n = len(self)
        if not -n <= i < n:
            raise IndexError(f"index {i} out of range for a SafeDataset of {n} samples")
        i %= n
        item, reason = self._load(i)
        if reason is None:
            return item
        bi, sid = self.base_index(i), self.sample_id(i)
        self._log.record(bi, sid, reason)
        self._known_bad.add(i)
        if self.on_error == "raise":
            raise BadSampleError(bi, sid, reason)
        if self.on_error == "skip":
            return BadSample(bi, sid, reason)
        for step in range(1, min(n, self.max_replace_tries + 1)):
            j = (i + step) % n
            if j in self._known_bad:
                continue
            item, why = self._load(j)
            if why is None:
                return item
            self._log.record(self.base_index(j), self.sample_id(j), why)
            self._known_bad.add(j)
        raise BadSampleError(bi, sid, f"{reason}; and no good sample to replace it within "
                                      f"{self.max_replace_tries} tries")

    def failures(self):
        """Every distinct failure so far (in this process and in DataLoader workers), one row per
        (index, reason): a pandas DataFrame with columns index, sample, reason, worker (the first
        to log it) and count (how often it happened, over every epoch and worker)."""
        import pandas as pd

        return pd.DataFrame(self._log.read(), columns=FAILURE_COLUMNS)

    def clear_failures(self) -> None:
        """Forget the failures recorded so far."""
        self._log.clear()


# --------------------------------------------------------------------------- iterable
class SafeIterableDataset(IterableDataset):
    """The iterable variant: wraps an iterable (an IterableDataset, a generator factory's result, ...).

    Items for which ``next()`` or ``transform(item)`` raises, or that hold
    NaN/Inf, are recorded and dropped (``on_error="skip"``, and ``"replace"``,
    which in a stream means the same: the next good item takes the place), or
    raise :class:`datasan.BadSampleError` (``"raise"``).  An index is the
    item's position in the stream of its worker process, so in a stream
    ``ids`` is a callable that takes the raw item (before ``transform``) and
    returns its sample id; ``exclude`` takes positions and/or sample ids.
    A stream that raises ``max_consecutive_errors`` times in a row is given up
    with BadSampleError (a dead source must not spin forever).
    """

    def __init__(self, base: Iterable[Any], *, transform: Callable[[Any], Any] | None = None,
                 on_error: OnError = "skip", check_finite: bool = True, exclude: Exclude = None,
                 ids: Callable[[Any], str] | None = None, max_consecutive_errors: int = 1000) -> None:
        _check_mode(on_error)
        if ids is not None and not callable(ids):
            raise ValueError("ids of a SafeIterableDataset must be a callable: raw item -> sample id")
        self.base = base
        self.transform = transform
        self.on_error = on_error
        self.check_finite = check_finite
        self.ids = ids
        self._drop_idx, self._drop_ids = _sample_ids_of(exclude)
        self.max_consecutive_errors = max_consecutive_errors
        self._log = FailureLog()

    def _fail(self, pos: int, sid, reason: str) -> None:
        self._log.record(pos, sid, reason)
        if self.on_error == "raise":
            raise BadSampleError(pos, sid, reason)

    def __iter__(self):
        it = iter(self.base)
        pos, errors_in_row = -1, 0
        while True:
            pos += 1
            try:
                item = next(it)
            except StopIteration:
                return
            except Exception as exc:
                self._fail(pos, None, _describe(exc))
                errors_in_row += 1
                if errors_in_row >= self.max_consecutive_errors:
                    raise BadSampleError(pos, None, f"{errors_in_row} failures in a row; the stream is given up")
                continue
            errors_in_row = 0
            sid = _id_of(self.ids, item)
            if pos in self._drop_idx or (sid is not None and sid in self._drop_ids):
                continue
            if self.transform is not None:
                try:
                    item = self.transform(item)
                except Exception as exc:
                    self._fail(pos, sid, _describe(exc))
                    continue
            if self.check_finite:
                reason = _checked(item)
                if reason:
                    self._fail(pos, sid, reason)
                    continue
            yield item

    def failures(self):
        """Every distinct failure so far, from every worker: a DataFrame (index, sample, reason,
        worker, count), as :meth:`SafeDataset.failures`."""
        import pandas as pd

        return pd.DataFrame(self._log.read(), columns=FAILURE_COLUMNS)

    def clear_failures(self) -> None:
        """Forget the failures recorded so far."""
        self._log.clear()
