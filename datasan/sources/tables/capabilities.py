"""What the table kind offers the steps after its run: probe batches and late quarantine.

A thin adapter over :mod:`datasan.sources.tables.rewrite`: the probe streams
the staged clean Parquet file (the numeric features as they are, a null as 0
as a simple imputer would; the target as float32 for regression or class ids
for classification), and rows that are errors leave the clean file in the
same pass (:class:`_RewriteStream`) or in one more pass
(:meth:`TableCapabilities.drop_samples`); both recompute the statistics over
the rows that remain.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Iterator

from datasan import fs
from datasan.numpy_arrow import to_numpy
from datasan.sources.base import ProbeBatch, ProbeFeed, ScanContext, SourceOutcome

#: rows per probe batch unless --probe-batch-size says otherwise
TABLE_BATCH = 32_768


class TableCapabilities:
    """The table kind's optional capabilities (see :mod:`datasan.sources.base`)."""

    source_kinds = ("table",)

    def probe_feed(self, outcome: SourceOutcome, ctx: ScanContext) -> ProbeFeed | str:
        """Batches of the kept rows from the staged clean file, or why there are none."""
        name = outcome.source.name
        rep = outcome.report or {}
        features = list(rep.get("features") or [])
        target, task = rep.get("target"), rep.get("task")
        if not outcome.clean_files:
            return "the table could not be read"
        if outcome.kept == 0:
            return "no rows were kept"
        if not features:
            return "no numeric feature columns to feed a network"
        if target is None:
            return "no target column, so no loss (pass --target NAME)"
        if task not in ("classification", "regression"):
            return f"the task of target '{target}' is unknown"
        labels = None
        if task == "classification":
            counts = (outcome.stats.get("labels") or {}).get(name) or {}
            if not counts:
                return "no class labels among the kept rows"
            # the declared number of classes, not the one inferred from the largest id
            labels = LabelMap.build(counts, ctx.options.for_source(name).num_classes)
            num_out = labels.num_classes
        else:
            num_out = 1
        path = _clean_path(outcome, ctx)
        bs = ctx.options.probe_batch_size or TABLE_BATCH
        return ProbeFeed(
            network="mlp", input_shape=(len(features),), num_outputs=num_out, task=task,
            batches=lambda: table_batches(path, features, target, task, labels, bs),
            features=features, left_out_what="rows without a usable target",
            stream=_RewriteStream(outcome, ctx, path, features, target, task, bs),
            class_names=labels.names() if labels is not None else None)

    def drop_samples(self, outcome: SourceOutcome, ctx: ScanContext, samples: list[str]) -> dict[str, Any]:
        """Rewrite the clean file without ``samples`` (``<source>#<row>`` ids) and recompute
        the source's ``tables`` and ``labels`` statistics over the rows that remain."""
        import numpy as np

        from datasan.sources.tables.rewrite import rewrite_table

        rows = np.asarray(sorted({int(s.rsplit("#", 1)[1]) for s in samples}), dtype=np.int64)
        if not len(rows):
            return {}
        rep = outcome.report or {}
        outcome.kept -= len(rows)
        rewrite_table(outcome, ctx, _clean_path(outcome, ctx), rows, list(rep.get("features") or []),
                      rep.get("target"), rep.get("task"))
        return {"clean_file_rewritten": True}


def _clean_path(outcome: SourceOutcome, ctx: ScanContext) -> str:
    return fs.join(ctx.staging, f"clean/{outcome.clean_files[0]}")


class _RewriteStream:
    """Follows the probe's batches; from the first batch with a row to drop, a
    :class:`~datasan.sources.tables.rewrite.CleanRewriter` takes every batch (the batches
    before it are read again once), so error rows leave the clean file in the probe's pass."""

    def __init__(self, outcome: SourceOutcome, ctx: ScanContext, path: str, features: list[str],
                 target: str | None, task: str | None, batch_size: int) -> None:
        self.outcome, self.ctx, self.path = outcome, ctx, path
        self.features, self.target, self.task, self.batch_size = features, target, task, batch_size
        self.rewriter = None
        self.rows_done = 0

    @property
    def active(self) -> bool:
        return self.rewriter is not None

    def add(self, batch: ProbeBatch, drop_keys) -> None:
        """Take one batch (``batch.raw``: every row of it) and the ``_row`` values to drop."""
        from datasan.sources.tables.rewrite import CleanRewriter

        if self.rewriter is None and len(drop_keys):
            self.rewriter = CleanRewriter(self.outcome, self.ctx, self.path, self.features, self.target, self.task)
            self._replay_prefix()
        if self.rewriter is not None:
            self.rewriter.add(batch.raw, drop_keys)
        self.rows_done += batch.raw.num_rows

    def _replay_prefix(self) -> None:
        """Feed the rows of the clean file before the current batch (clean so far) to the rewriter."""
        import numpy as np

        rows = self.rows_done
        if rows <= 0:
            return
        done = 0
        empty = np.zeros(0, dtype=np.int64)
        for batch in fs.parquet_file(self.path).iter_batches(batch_size=self.batch_size):
            take = min(batch.num_rows, rows - done)
            self.rewriter.add(batch.slice(0, take) if take < batch.num_rows else batch, empty)
            done += take
            if done >= rows:
                break

    def finish(self) -> list[str]:
        """Put the new clean file in place; the sample ids of the rows it left out."""
        rw = self.rewriter
        if rw is None:
            return []
        self.outcome.kept -= len(rw.excluded)
        rw.finish()
        name = self.outcome.source.name
        return [f"{name}#{r}" for r in rw.excluded]

    def abort(self) -> None:
        if self.rewriter is not None:
            self.rewriter.abort()


# --------------------------------------------------------------------------- batches

@dataclass
class LabelMap:
    """Class ids for the probe's cross-entropy.

    ``direct``: integral targets already in 0..num_classes-1 are their own ids (when the
    largest id is below the declared number of classes, or below 2 x the ids seen + 16);
    otherwise the sorted label keys (as in stats.json) are numbered 0, 1, ...
    """

    num_classes: int
    direct: bool
    ids: dict[str, int] = field(default_factory=dict)

    @classmethod
    def build(cls, label_counts: dict[str, int], num_classes: int | None) -> "LabelMap":
        """The map for the class counts of stats.json ``labels``."""
        keys = sorted(label_counts)
        ints: list[int] | None = []
        for k in keys:
            try:
                f = float(k)
            except ValueError:
                ints = None
                break
            if not f.is_integer():
                ints = None
                break
            ints.append(int(f))
        # ids are their own outputs only while that costs few unused outputs: one row labelled
        # 36997811 must not build a network with 37 million outputs (found by the fuzz harness)
        if ints is not None and ints and min(ints) >= 0 and max(ints) < max(num_classes or 0, 2 * len(ints) + 16):
            n = max(num_classes or 0, max(ints) + 1)
            return cls(num_classes=n, direct=True)
        return cls(num_classes=max(1, len(keys)), direct=False, ids={k: i for i, k in enumerate(keys)})

    def names(self) -> list[str]:
        """The label of each class id."""
        if self.direct:
            return [str(i) for i in range(self.num_classes)]
        return sorted(self.ids, key=self.ids.__getitem__)

    def map_arrow(self, arr):
        """(int64 class ids, bool mask of rows with a known label) of an Arrow array."""
        import numpy as np
        import pyarrow as pa
        import pyarrow.compute as pc

        from datasan.sources.tables.rewrite import label_key

        if isinstance(arr, pa.ChunkedArray):
            arr = arr.combine_chunks()
        if pa.types.is_dictionary(arr.type):
            arr = arr.dictionary_decode()
        numeric = (pa.types.is_integer(arr.type) or pa.types.is_floating(arr.type)
                   or pa.types.is_boolean(arr.type) or pa.types.is_decimal(arr.type))
        if numeric:
            values = np.asarray(to_numpy(pc.cast(arr, pa.float64())), dtype=np.float64)
            if arr.null_count:
                values[to_numpy(arr.is_null())] = np.nan
            ok = np.isfinite(values)
            if self.direct:
                ok &= (values >= 0) & (values < self.num_classes) & (np.floor(values) == values)
                ids = np.where(ok, values, 0).astype(np.int64)
                return ids, ok
            keys = [str(label_key(v)) for v in values.tolist()]
        else:
            keys = [None if v is None else str(label_key(v)) for v in arr.to_pylist()]
        ids = np.asarray([self.ids.get(k, -1) if k is not None else -1 for k in keys], dtype=np.int64)
        ok = ids >= 0
        return np.where(ok, ids, 0), ok


def float_matrix(batch, features: list[str]):
    """float32 (rows x features) matrix of a record batch's numeric features (nulls as 0)."""
    import numpy as np
    import pyarrow as pa
    import pyarrow.compute as pc

    out = np.empty((batch.num_rows, len(features)), dtype=np.float32)
    for j, name in enumerate(features):
        arr = batch.column(name)
        if pa.types.is_dictionary(arr.type):
            arr = arr.dictionary_decode()
        if not pa.types.is_floating(arr.type) or arr.type != pa.float64():
            arr = pc.cast(arr, pa.float64(), safe=False)
        if arr.null_count:
            arr = arr.fill_null(0.0)
        with np.errstate(over="ignore", invalid="ignore"):
            out[:, j] = to_numpy(arr)
    return out


def table_batches(path: str, features: list[str], target: str, task: str, labels: LabelMap | None,
                  batch_size: int) -> Iterator[ProbeBatch]:
    """One :class:`ProbeBatch` per batch of the clean file: ``raw`` is the record batch with
    every column, ``x``, ``y`` and ``keys`` (``_row``) cover the rows with a usable target."""
    import numpy as np
    import pyarrow as pa
    import pyarrow.compute as pc

    pf = fs.parquet_file(path)
    for batch in pf.iter_batches(batch_size=batch_size):
        if batch.num_rows == 0:
            continue
        x = float_matrix(batch, features)
        rows = np.asarray(to_numpy(batch.column("_row")), dtype=np.int64)
        t = batch.column(target)
        if task == "classification":
            y, ok = labels.map_arrow(t)
        else:
            if pa.types.is_dictionary(t.type):
                t = t.dictionary_decode()
            ok = ~np.asarray(to_numpy(t.is_null()), dtype=bool)
            try:
                tv = pc.cast(t, pa.float64(), safe=False).fill_null(0.0)
            except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
                ok = np.zeros(batch.num_rows, dtype=bool)
                tv = pa.array(np.zeros(batch.num_rows))
            with np.errstate(over="ignore", invalid="ignore"):
                y = np.asarray(to_numpy(tv), dtype=np.float64).astype(np.float32)
        left_out = int((~ok).sum())
        if left_out:
            x, y, rows = x[ok], y[ok], rows[ok]
        yield ProbeBatch(x, y, rows, raw=batch, left_out=left_out)
