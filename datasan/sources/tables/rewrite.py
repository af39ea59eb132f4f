"""Rewrite a staged clean table without some rows, recomputing its statistics.

Used when rows are quarantined after the scan pass wrote the clean file: by
the probe, and by dataset-level row findings that a config turns into errors
(a duplicate row made an error with ``severity = {DS110 = "error"}``).
"""

from __future__ import annotations

import os

from typing import Any

from datasan.sources.base import ScanContext, SourceOutcome


def label_key(value) -> Any:
    """The key a target value has in stats.json ``labels`` (as the table kind counts them)."""
    if isinstance(value, str):
        return value.strip()
    if isinstance(value, bool):
        return int(value)
    if isinstance(value, (int, float)):
        f = float(value)
        return int(f) if f.is_integer() else f
    return value


class CleanRewriter:
    """Writes a clean file's rows minus the quarantined ones to a temporary file and
    recomputes the source's statistics over what it wrote (the same Moments and label
    keys as the table kind); :meth:`finish` renames it over the clean file."""

    def __init__(self, oc: SourceOutcome, ctx: ScanContext, path: str, features: list[str],
                 target: str | None, task: str | None) -> None:
        import pyarrow as pa
        import pyarrow.parquet as pq

        from datasan.stats import Moments

        self.oc, self.path, self.task, self.target = oc, path, task, target
        self.schema = pq.ParquetFile(path).schema_arrow
        names = self.schema.names
        t = self.schema.field(target).type if target in names else None
        numeric = t is not None and (pa.types.is_integer(t) or pa.types.is_floating(t) or pa.types.is_decimal(t))
        self.moment_cols = [c for c in features if c in names] + ([target] if numeric else [])
        self.moments = {c: Moments() for c in self.moment_cols}
        self.labels: dict = {}
        self.categories: dict = {}  # drift: value counts of string columns
        self.tmp = path + ".probe-tmp"
        # _row never repeats: a dictionary for it is wasted work
        dict_cols = [f.name for f in self.schema if not pa.types.is_floating(f.type) and f.name != "_row"]
        self.group = ctx.options.row_group_rows
        self.writer = pq.ParquetWriter(self.tmp, self.schema, use_dictionary=dict_cols or False,
                                       compression="snappy")
        self.buf: list = []
        self.buffered = 0
        self.excluded: list[int] = []

    def add(self, batch, bad_rows) -> None:
        """Write ``batch`` without the rows whose ``_row`` is in ``bad_rows``."""
        import numpy as np
        import pyarrow as pa

        from datasan.sources.tables import _float_values
        from datasan.stats import Moments, merge_counts

        if len(bad_rows):
            rows = np.asarray(batch.column("_row").to_numpy(zero_copy_only=False), dtype=np.int64)
            keep = ~np.isin(rows, bad_rows)
            self.excluded.extend(rows[~keep].tolist())
            batch = batch.filter(pa.array(keep))
        if batch.num_rows == 0:
            return
        for c in self.moment_cols:
            values, nulls = _float_values(batch.column(c))
            if nulls is not None:
                m = Moments.of(values[~nulls], nulls=int(nulls.sum()))
            else:
                m = Moments.of(values)
            self.moments[c].merge(m)
        if self.task == "classification" and self.target is not None:
            merge_counts(self.labels, label_counts(batch.column(self.target)))
        from datasan.stats import category_counts, merge_categories  # drift

        merge_categories(self.categories, category_counts(batch, [*self.moment_cols, self.target, "_row"]))
        self.buf.append(batch)
        self.buffered += batch.num_rows
        if self.buffered >= self.group:
            self._flush()

    def _flush(self) -> None:
        import pyarrow as pa

        if self.buf:
            self.writer.write_table(pa.Table.from_batches(self.buf), row_group_size=max(self.group, self.buffered))
            self.buf, self.buffered = [], 0

    def finish(self) -> None:
        """Put the new clean file in place and the statistics into the outcome."""
        self._flush()
        self.writer.close()
        os.replace(self.tmp, self.path)
        oc, name = self.oc, self.oc.source.name
        prev = oc.stats.get("tables", {}).get(name, {})  # drift: keep "types"
        oc.stats.setdefault("tables", {})[name] = {
            **prev, "rows": oc.kept, "columns": {c: m.as_json() for c, m in self.moments.items()},
            "categories": {c: v.as_json() for c, v in sorted(self.categories.items())}}
        if self.task == "classification":
            oc.stats.setdefault("labels", {})[name] = {
                str(k): v for k, v in sorted(self.labels.items(), key=lambda kv: str(kv[0]))}

    def abort(self) -> None:
        self.writer.close()
        if os.path.exists(self.tmp):
            os.remove(self.tmp)


def rewrite_table(oc: SourceOutcome, ctx: ScanContext, path: str, bad_rows, features: list[str],
                  target: str | None, task: str | None) -> None:
    """Rewrite the clean file without ``bad_rows`` (streaming, atomic) and recompute the
    source's stats (``tables`` and ``labels``) over the rows that remain."""
    import pyarrow.parquet as pq

    rw = CleanRewriter(oc, ctx, path, features, target, task)
    try:
        for batch in pq.ParquetFile(path).iter_batches(batch_size=ctx.options.batch_rows):
            rw.add(batch, bad_rows)
        rw.finish()
    except BaseException:
        rw.abort()
        raise


def label_counts(arr) -> dict:
    """Class counts of a target column, keyed as the table kind keys them."""
    import numpy as np
    import pyarrow as pa
    import pyarrow.compute as pc

    if pa.types.is_dictionary(arr.type):
        arr = arr.dictionary_decode()
    if pa.types.is_integer(arr.type) or pa.types.is_floating(arr.type) or pa.types.is_boolean(arr.type) \
            or pa.types.is_decimal(arr.type):
        values = np.asarray(pc.cast(arr, pa.float64()).to_numpy(zero_copy_only=False), dtype=np.float64)
        u, c = np.unique(values, return_counts=True)
        return {(int(a) if float(a).is_integer() else float(a)): int(b) for a, b in zip(u.tolist(), c.tolist())}
    out: dict = {}
    for v in arr.to_pylist():
        k = label_key(v) if v is not None else None
        out[k] = out.get(k, 0) + 1
    return out
