"""Rewrite a staged clean table without some rows, recomputing its statistics.

Used when rows are quarantined after the scan pass wrote the clean file: by
the probe, and by dataset-level row findings that a config turns into errors
(a duplicate row made an error with ``severity = {DS110 = "error"}``).  The
rows go through the same :class:`~datasan.sources.tables.output.CleanWriter`
and :class:`~datasan.sources.tables.output.KeptStats` as in the scan.
"""

from __future__ import annotations

from datasan import fs
from datasan.numpy_arrow import from_numpy, to_numpy
from datasan.sources.base import ScanContext, SourceOutcome
from datasan.sources.tables.output import CleanWriter, KeptStats, label_counts, label_key

__all__ = ["CleanRewriter", "label_counts", "label_key", "rewrite_table"]


class CleanRewriter:
    """Writes a clean file's rows minus the quarantined ones to a temporary file and
    recomputes the source's statistics over what it wrote; :meth:`finish` renames it
    over the clean file.  ``excluded`` lists the rows (``_row``) left out so far."""

    def __init__(self, oc: SourceOutcome, ctx: ScanContext, path: str, features: list[str],
                 target: str | None, task: str | None) -> None:
        import pyarrow as pa

        self.oc, self.path = oc, path
        schema = fs.parquet_file(path).schema_arrow
        names = schema.names
        t = schema.field(target).type if target in names else None
        numeric = t is not None and (pa.types.is_integer(t) or pa.types.is_floating(t) or pa.types.is_decimal(t))
        self.stats = KeptStats([c for c in features if c in names], target if target in names else None,
                               target_numeric=numeric, classify=task == "classification")
        self.tmp = path + ".probe-tmp"
        self.writer = CleanWriter(self.tmp, ctx.options.row_group_rows, ctx.run_id, self.stats, schema=schema)
        self.excluded: list[int] = []

    def add(self, batch, bad_rows) -> None:
        """Write ``batch`` without the rows whose ``_row`` is in ``bad_rows``."""
        import numpy as np

        if len(bad_rows):
            rows = np.asarray(to_numpy(batch.column("_row")), dtype=np.int64)
            keep = ~np.isin(rows, bad_rows)
            self.excluded.extend(rows[~keep].tolist())
            batch = batch.filter(from_numpy(keep))
        self.writer.write(batch)

    def finish(self) -> None:
        """Put the new clean file in place and the statistics into the outcome."""
        self.writer.close()
        fs.move(self.tmp, self.path)
        oc = self.oc
        types = oc.stats.get("tables", {}).get(oc.source.name, {}).get("types")  # the columns stay as they were
        for part, by_source in self.stats.stats_json(oc.source.name, oc.kept, types).items():
            oc.stats.setdefault(part, {}).update(by_source)

    def abort(self) -> None:
        """Drop the temporary file; the clean file stays as it was."""
        self.writer.abort()


def rewrite_table(oc: SourceOutcome, ctx: ScanContext, path: str, bad_rows, features: list[str],
                  target: str | None, task: str | None) -> None:
    """Rewrite the clean file without ``bad_rows`` (streaming, atomic) and recompute the
    source's stats (``tables`` and ``labels``) over the rows that remain."""
    rw = CleanRewriter(oc, ctx, path, features, target, task)
    try:
        for batch in fs.parquet_file(path).iter_batches(batch_size=ctx.options.batch_rows):
            rw.add(batch, bad_rows)
        rw.finish()
    except BaseException:
        rw.abort()
        raise
