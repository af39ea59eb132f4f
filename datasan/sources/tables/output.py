"""The clean Parquet file of a table, and the statistics of the rows it keeps.

One writer for every path that writes kept rows: the shard scan (a part per
shard), the rewrite that drops rows quarantined late (the probe, duplicates a
config makes errors) and the merge of parts.  Whoever writes the rows computes
their statistics here, in :class:`KeptStats`, so stats.json always describes
exactly the rows of the clean file.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any

from datasan.checks.tables.values import FLOAT16_MAX
from datasan.numpy_arrow import to_numpy
from datasan.stats import Moments, category_counts, merge_categories, merge_counts

#: the longest file name most file systems take, in bytes
NAME_MAX = 255
#: the row index column every clean file ends with
ROW = "_row"


def clean_name(source: str) -> str:
    """The clean file of ``source`` relative to clean/: ``<source>.parquet``, or, when that
    file name passes NAME_MAX bytes, the name cut to fit + '~' + 8 hex digits of its hash
    (deterministic, so the same source always gets the same name)."""
    import hashlib

    folder, base = os.path.split(source)
    name = f"{base}.parquet"
    if len(name.encode("utf-8")) <= NAME_MAX:
        return f"{source}.parquet"
    digest = hashlib.blake2b(base.encode("utf-8"), digest_size=4).hexdigest()
    keep = NAME_MAX - len(f"~{digest}.parquet")
    cut = base.encode("utf-8")[:keep].decode("utf-8", "ignore")  # never half a character
    short = f"{cut}~{digest}.parquet"
    return f"{folder}/{short}" if folder else short


# --------------------------------------------------------------------------- statistics

def float_values(arr):
    """(values as numpy, null mask or None) of a numeric Arrow array; nulls are filled with 0."""
    import numpy as np
    import pyarrow as pa
    import pyarrow.compute as pc

    if isinstance(arr, pa.ChunkedArray):
        arr = arr.combine_chunks()
    if pa.types.is_dictionary(arr.type):
        arr = arr.dictionary_decode()
    if pa.types.is_decimal(arr.type):
        arr = pc.cast(arr, pa.float64())
    nulls = to_numpy(arr.is_null()) if arr.null_count else None
    if nulls is not None:
        if pa.types.is_floating(arr.type):
            values = np.asarray(to_numpy(arr.fill_null(0.0)))
        else:
            values = np.asarray(to_numpy(arr.fill_null(0)))
    else:
        values = np.asarray(to_numpy(arr))
    return values, nulls


def target_floats(arr):
    """(float64 values, missing mask) of a numeric target: missing is null or NaN."""
    import numpy as np
    import pyarrow as pa
    import pyarrow.compute as pc

    if pa.types.is_dictionary(arr.type):
        arr = arr.dictionary_decode()
    values = np.asarray(to_numpy(pc.cast(arr, pa.float64())), dtype=np.float64)
    missing = np.isnan(values)
    if arr.null_count:
        missing |= to_numpy(arr.is_null())
    return values, missing


def label_key(value) -> Any:
    """The key a target value has in stats.json ``labels``."""
    if isinstance(value, str):
        return value.strip()
    if isinstance(value, bool):
        return int(value)
    if isinstance(value, (int, float)):
        f = float(value)
        return int(f) if f.is_integer() else f
    return value


def label_counts(arr) -> dict:
    """Class counts of a target column, keyed by :func:`label_key`."""
    import numpy as np
    import pyarrow as pa
    import pyarrow.compute as pc

    if pa.types.is_dictionary(arr.type):
        arr = arr.dictionary_decode()
    if pa.types.is_integer(arr.type) or pa.types.is_floating(arr.type) or pa.types.is_boolean(arr.type) \
            or pa.types.is_decimal(arr.type):
        values = np.asarray(to_numpy(pc.cast(arr, pa.float64())), dtype=np.float64)
        u, c = np.unique(values, return_counts=True)
        return {(int(a) if float(a).is_integer() else float(a)): int(b) for a, b in zip(u.tolist(), c.tolist())}
    out: dict = {}
    for v in arr.to_pylist():
        k = label_key(v) if v is not None else None
        out[k] = out.get(k, 0) + 1
    return out


class KeptStats:
    """Mergeable statistics of kept rows: :class:`~datasan.stats.Moments` of each numeric
    feature (and of a numeric target), values beyond float16 per feature, class counts.

    A column gets its entry with the first batch added, even an empty one, so a table
    whose rows were all quarantined still lists its columns (with count 0).
    """

    def __init__(self, features: list[str], target: str | None, target_numeric: bool, classify: bool) -> None:
        self.features = list(features)
        self.target = target
        self.target_numeric = target is not None and target_numeric
        self.classify = target is not None and classify
        self.moments: dict[str, Moments] = {}
        self.fp16: dict[str, int] = {}
        self.labels: dict = {}
        #: value counts of the string / bool columns (drift compares them with a baseline)
        self.categories: dict = {}

    def add(self, batch) -> None:
        """Add the rows of one batch (a RecordBatch or Table holding the columns)."""
        merge_categories(self.categories, category_counts(batch, [*self.features, self.target, "_row"]))
        for name in self.features:
            values, nulls = float_values(batch.column(name))
            self._add_moments(name, values, nulls, is_feature=True)
        if self.target_numeric:
            values, missing = target_floats(_single_array(batch.column(self.target)))
            self._add_moments(self.target, values, missing, is_feature=False)
        if self.classify:
            merge_counts(self.labels, label_counts(_single_array(batch.column(self.target))))

    def _add_moments(self, name: str, values, nulls, is_feature: bool) -> None:
        import numpy as np

        knull = int(nulls.sum()) if nulls is not None else 0
        if knull:
            values = values[~nulls]
        m = Moments.of(values, nulls=knull)
        self.moments.setdefault(name, Moments()).merge(m)
        if is_feature and values.dtype.kind in "fiu" and values.size and (
                m.max > FLOAT16_MAX or m.min < -FLOAT16_MAX):
            with np.errstate(invalid="ignore"):
                big = int((np.abs(values.astype(np.float64, copy=False)) > FLOAT16_MAX).sum())
            self.fp16[name] = self.fp16.get(name, 0) + big

    def merge(self, other: "KeptStats") -> "KeptStats":
        """Add ``other`` (another shard's statistics) into this one and return self."""
        for k, m in other.moments.items():
            self.moments.setdefault(k, Moments()).merge(m)
        merge_counts(self.fp16, other.fp16)
        merge_counts(self.labels, other.labels)
        merge_categories(self.categories, other.categories)
        return self

    def stats_json(self, source: str, rows: int, types: dict[str, str] | None = None) -> dict[str, Any]:
        """The source's fragment of stats.json: ``tables`` (and ``labels`` for classification);
        ``types`` (every output column's type) is kept when given."""
        entry: dict[str, Any] = {"rows": rows, "columns": {k: m.as_json() for k, m in self.moments.items()}}
        if types is not None:
            entry["types"] = types
        entry["categories"] = {c: v.as_json() for c, v in sorted(self.categories.items())}
        out: dict[str, Any] = {"tables": {source: entry}}
        if self.classify:
            out["labels"] = {source: {str(k): v for k, v in sorted(self.labels.items(), key=lambda kv: str(kv[0]))}}
        return out


def _single_array(col):
    import pyarrow as pa

    return col.combine_chunks() if isinstance(col, pa.ChunkedArray) else col


# --------------------------------------------------------------------------- Parquet

def stamped(schema, run_id: str):
    """``schema`` carrying the run id (Parquet key-value metadata of the clean file)."""
    from datasan.outputs.manifest import RUN_ID_KEY

    return schema.with_metadata({**(schema.metadata or {}), RUN_ID_KEY: run_id.encode()}) if run_id else schema


def open_parquet(path: str, schema, run_id: str):
    """A ParquetWriter with the clean files' settings: snappy, dictionaries for every column
    but floats (they rarely pay and cost a second encoding attempt) and ``_row`` (it never
    repeats), the run id in the metadata."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    from datasan import fs

    dict_cols = [f.name for f in schema if not pa.types.is_floating(f.type) and f.name != ROW]
    where, store = fs.parquet_target(path)
    return pq.ParquetWriter(where, stamped(schema, run_id), filesystem=store, use_dictionary=dict_cols or False,
                            compression="snappy")


class CleanWriter:
    """Writes kept rows to one Parquet file in row groups of ``group_rows`` and adds them to
    ``stats`` (when given).

    Encoding and compressing Parquet is the most expensive step of a table
    scan and pyarrow releases the GIL while doing it, so row groups are
    written on a background thread while the next batches are read and
    checked; the statistics of a row group's batches are computed there too,
    batch by batch in order (numpy releases the GIL in them), so the results
    are the same as inline.  The queue holds at most one row group (bounded
    memory).  ``stats`` is complete once :meth:`close` returns.  With
    ``schema`` the file is created at once (a file with no rows still has its
    columns); without, with the first batch.
    """

    def __init__(self, path: str, group_rows: int, run_id: str = "", stats: KeptStats | None = None,
                 schema=None) -> None:
        import queue
        import threading

        self.path = path
        self.run_id = run_id
        self.group_rows = group_rows
        self.stats = stats
        self.buf: list = []
        self.buffered = 0
        #: batches whose statistics the thread adds next, in the order written
        self._for_stats: list = []
        self.writer = open_parquet(path, schema, run_id) if schema is not None else None
        self.rows = 0
        self.error: BaseException | None = None
        self._q: queue.Queue = queue.Queue(maxsize=1)
        self._thread = threading.Thread(target=self._run, name="datasan-clean-writer", daemon=True)
        self._thread.start()

    def write(self, batch) -> None:
        """Write the rows of ``batch`` (a RecordBatch ending with ``_row``)."""
        if self.stats is not None:
            self._for_stats.append(batch)
        if batch.num_rows == 0 and (self.writer is not None or self.buf):
            return
        self.buf.append(batch)
        self.buffered += batch.num_rows
        if self.buffered >= self.group_rows:
            self._flush()

    def _flush(self) -> None:
        import pyarrow as pa

        batches, self._for_stats = self._for_stats, []
        if not self.buf:
            if batches:
                self._q.put((None, batches))
            return
        table = pa.Table.from_batches(self.buf)
        self.buf, self.buffered = [], 0
        self.rows += table.num_rows
        self._q.put((table, batches))

    def _run(self) -> None:
        while True:
            item = self._q.get()
            if item is None:
                return
            table, batches = item
            if self.error is not None:
                continue
            try:
                for batch in batches:
                    self.stats.add(batch)
            except BaseException as exc:  # surfaced by close()
                self.error = exc
                continue
            if table is None:
                continue
            try:
                if self.writer is None:
                    self.writer = open_parquet(self.path, table.schema, self.run_id)
                self.writer.write_table(table, row_group_size=max(self.group_rows, table.num_rows))
            except BaseException as exc:  # surfaced by close()
                self.error = exc

    def close(self) -> None:
        """Write what is buffered and close the file; re-raise a failure of the writer thread."""
        self._flush()
        self._q.put(None)
        self._thread.join()
        if self.writer is not None:
            self.writer.close()
        if self.error is not None:
            raise self.error

    def abort(self) -> None:
        """Close and remove the file, whatever state it is in."""
        try:
            self.close()
        except BaseException:  # noqa: BLE001 - the file is removed either way
            pass
        from datasan import fs

        fs.remove(self.path)


@dataclass
class AssembleTask:
    """The parts of a split table, in order, and the clean file they become (local or a URI)."""

    parts: list[str]
    dest: str
    run_id: str


def assemble_parts(task: AssembleTask) -> int:
    """Stream the parts into one file in order and remove them; the rows written.

    Runs as an engine task, so on a cluster with a store ``--out`` the rows go
    from the store to a worker and back, never through the driver.
    """
    from datasan import fs

    writer = None
    rows = 0
    try:
        for p in task.parts:
            pf = fs.parquet_file(p)
            for i in range(pf.num_row_groups):
                t = pf.read_row_group(i)
                if writer is None:
                    writer = open_parquet(task.dest, t.schema, task.run_id)
                writer.write_table(t)
                rows += t.num_rows
    finally:
        if writer is not None:
            writer.close()
    for p in task.parts:
        fs.remove(p)
    return rows


def empty_clean(columns: list[str], types: dict[str, str], dest: str, run_id: str = "") -> None:
    """A clean file with ``columns`` (typed as the plan decided; text otherwise) and no rows."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    arrow = {"int64": pa.int64(), "float64": pa.float64(), "bool": pa.bool_()}
    fields = [pa.field(c, arrow.get(types.get(c, "string"), pa.string())) for c in columns]
    schema = pa.schema(fields).append(pa.field(ROW, pa.int64()))
    from datasan import fs

    where, store = fs.parquet_target(dest)
    pq.write_table(stamped(schema, run_id).empty_table(), where, filesystem=store)
