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

import os
from typing import Any, Callable, Iterable, Literal, Sequence, Union

from torch.utils.data import Dataset, IterableDataset

from datasan.collate import BadSample, safe_collate  # noqa: F401  (re-exported)
from datasan.failure_log import FAILURE_COLUMNS, FLUSH_REPEATS, FailureLog  # noqa: F401  (re-exported)
from datasan.nonfinite import MAX_DEPTH, nonfinite_reason  # noqa: F401  (re-exported)
from datasan.errors import BadSampleError

#: what to do with a bad sample
OnError = Literal["skip", "replace", "raise"]
#: samples to drop up front: an output folder or quarantine file, a quarantine DataFrame or
#: Arrow table, or indices and/or sample ids
Exclude = Union[str, os.PathLike, Any, Iterable[Union[int, str]], None]

ON_ERROR = ("skip", "raise", "replace")


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
