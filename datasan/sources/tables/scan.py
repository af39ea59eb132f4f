"""Pass 2 over a table (one task per shard, in a worker): row checks, kept rows, hashes.

A shard is a whole text file, or a run of row groups of a typed file.  Each
batch is converted to the planned types, checked, and its kept rows go to the
shard's part file through :class:`~datasan.sources.tables.output.CleanWriter`,
which also computes their statistics.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from datasan.checks import files as file_rules
from datasan.checks.tables import target as target_rules
from datasan.checks.tables.rows import check_batch
from datasan.checks.tables.values import ColumnValues, TargetValues
from datasan.findings import FindingBuffer
from datasan.numpy_arrow import from_numpy, to_numpy
from datasan.sources.tables import convert, read, typed
from datasan.sources.tables.hashing import row_hashes
from datasan.sources.tables.output import CleanWriter, KeptStats, float_values, target_floats
from datasan.sources.tables.plan import TablePlan
from datasan.stats import merge_counts


@dataclass
class ShardTask:
    """One shard of a table: a run of row groups (all of a text file) and its part file."""

    plan: TablePlan
    first_group: int
    n_groups: int
    first_row: int
    part_path: str | None  # where to write kept rows
    run_id: str = ""  # stamped into the part's Parquet metadata
    #: a split table: write the row hashes in this many buckets under ``hash_prefix`` (dup_buckets.py)
    hash_buckets: int = 0
    hash_prefix: str | None = None


@dataclass
class ShardResult:
    """What one shard found: counts, findings, kept-row statistics, row hashes, its part."""

    seen: int = 0
    kept: int = 0
    findings: FindingBuffer = field(default_factory=FindingBuffer)
    stats: KeptStats | None = None
    #: missing cells (null or NaN) per output column over every row read
    missing: dict[str, int] = field(default_factory=dict)
    #: rows that reached the checks (rows read, less ragged or malformed records)
    checked: int = 0
    hash_rows: Any = None
    full_hash: Any = None
    feature_hash: Any = None
    part_path: str | None = None
    error: str | None = None  # the file became unreadable mid-way


def _typed_batch(plan: TablePlan, batch):
    """(typed batch for output, check inputs) of one raw batch."""
    import pyarrow as pa

    text = read.is_text_format(plan.fmt)
    columns: dict[str, ColumnValues] = {}
    non_numeric: dict[str, Any] = {}
    arrays = []
    names = []
    target = None
    tname = plan.target.column
    present_names = set(batch.schema.names)
    for name in plan.output_columns():
        if name in present_names:
            raw = batch.column(name)
        else:  # a JSONL batch without this key
            raw = pa.nulls(batch.num_rows, pa.string()) if text else None
        typ = plan.types.get(name, "string")
        if text and pa.types.is_string(raw.type):
            conv = convert.convert_column(raw, typ, target_rules.TARGET_MISSING_TOKENS if name == tname else None)
            out = conv.array
            if conv.non_numeric is not None and conv.non_numeric.any():
                non_numeric[name] = conv.non_numeric
        else:  # typed tables, and CSV columns Arrow parsed natively
            out = raw
        names.append(name)
        arrays.append(out)
        has_text = text and pa.types.is_string(raw.type)
        if name in plan.features:
            values, nulls = float_values(out)
            columns[name] = ColumnValues(values, nulls, raw if has_text else None)
        if name == tname:
            target = _target_values(name, out, raw if has_text else None)
    typed = pa.RecordBatch.from_arrays(arrays, names=names)
    return typed, columns, non_numeric, target


def _missing_counts(batch) -> dict[str, int]:
    """Null cells per column of a typed batch, NaN included for float columns."""
    import pyarrow as pa
    import pyarrow.compute as pc

    out = {}
    for name, arr in zip(batch.schema.names, batch.columns):
        n = arr.null_count
        if pa.types.is_floating(arr.type):
            n += pc.sum(pc.is_nan(arr)).as_py() or 0
        out[name] = n
    return out


def _target_values(name: str, arr, raw) -> TargetValues:
    """The target column of a batch as the row checks read it (``raw``: its text cells)."""
    import numpy as np
    import pyarrow as pa
    import pyarrow.compute as pc

    if pa.types.is_dictionary(arr.type):
        arr = arr.dictionary_decode()
    if pa.types.is_integer(arr.type) or pa.types.is_floating(arr.type) or pa.types.is_boolean(arr.type) \
            or pa.types.is_decimal(arr.type):
        values, missing = target_floats(arr)
        if raw is not None:
            # 'abc' in a numeric target is DS109, not a missing label
            norm = pc.utf8_lower(pc.utf8_trim_whitespace(raw.fill_null("")))
            tok = pc.is_in(norm, value_set=pa.array(list(target_rules.TARGET_MISSING_TOKENS)))
            missing &= to_numpy(tok)
        return TargetValues(name, values, missing, raw)
    values = arr.to_pylist()
    stripped = [v.strip() if isinstance(v, str) else v for v in values]
    missing = np.asarray([v is None or (isinstance(v, str) and target_rules.is_missing_target_text(v))
                          for v in stripped], dtype=bool)
    return TargetValues(name, stripped, missing, raw)


def _batches(task: ShardTask):
    """The shard's (batch, rows, bad records), read as the plan says."""
    import pyarrow as pa

    plan, opts = task.plan, task.plan.options
    if not read.is_text_format(plan.fmt):
        return typed.iter_typed_batches(plan.path, plan.fmt, task.first_group, task.n_groups,
                                        task.first_row, opts.batch_rows)
    if plan.fmt == "jsonl":
        return read.iter_jsonl_batches(plan.path, plan.encoding, opts.batch_rows)
    arrow = {"int64": pa.int64(), "float64": pa.float64(), "bool": pa.bool_()}
    types = {c: arrow[plan.native[c]] if c in plan.native else pa.string() for c in plan.columns}
    return read.iter_csv_batches(plan.path, plan.encoding, plan.delimiter, plan.columns, column_types=types)


def scan_shard(task: ShardTask) -> ShardResult:
    """Pass 2 for one shard (runs in a worker): checks, kept rows and their stats, hashes."""
    import numpy as np
    import pyarrow as pa

    plan = task.plan
    opts = plan.options
    tcol = plan.target.column
    target_numeric = tcol is not None and plan.types.get(tcol) in ("int64", "float64", "int", "float", "decimal")
    stats = KeptStats(plan.features, tcol, target_numeric, plan.target.task == "classification")
    res = ShardResult(stats=stats)
    writer = CleanWriter(task.part_path, opts.row_group_rows, task.run_id, stats) if task.part_path else None
    rows_all, full_all, feat_all = [], [], []
    try:
        for batch, rows, bad in _batches(task):
            res.seen += len(rows) + len(bad)
            for b in bad:
                res.findings.add(file_rules.bad_record(plan.rel, b))
            if batch is None or batch.num_rows == 0:
                continue
            typed_batch, columns, non_numeric, target = _typed_batch(plan, batch)
            merge_counts(res.missing, _missing_counts(typed_batch))
            res.checked += typed_batch.num_rows
            bc = check_batch(plan.rel, columns, non_numeric, target, plan.target, rows, opts.thresholds)
            bc.findings.apply_policy(opts)
            res.findings.merge(bc.findings)
            err_rows = bc.findings.error_rows()
            error = np.isin(rows, err_rows) if err_rows.size else np.zeros(len(rows), bool)
            keep = ~error
            kept = typed_batch.filter(from_numpy(keep)) if error.any() else typed_batch
            res.kept += kept.num_rows
            if kept.num_rows:
                full, feat = row_hashes(kept, tcol)
                rows_all.append(rows[keep])
                full_all.append(full)
                feat_all.append(feat)
            out = kept.append_column("_row", from_numpy(rows[keep], pa.int64()))
            if writer is not None:
                writer.write(out)  # adds the rows to stats too
            else:
                stats.add(out)
    except (pa.ArrowException, OSError, UnicodeDecodeError) as exc:
        res.error = str(exc)
    finally:
        if writer is not None:
            writer.close()
            res.part_path = task.part_path if writer.writer is not None else None
    if task.hash_buckets:  # a split table: the hashes stay in the staging place, bucketed
        from datasan.sources.tables.dup_buckets import write_buckets

        def joined(parts, dtype):
            return np.concatenate(parts) if parts else np.empty(0, dtype)

        write_buckets(task.hash_prefix, task.hash_buckets, joined(rows_all, np.int64), joined(full_all, np.uint64),
                      joined(feat_all, np.uint64), by_features=tcol is not None)
    elif rows_all:
        res.hash_rows = np.concatenate(rows_all)
        res.full_hash = np.concatenate(full_all)
        res.feature_hash = np.concatenate(feat_all)
    return res
