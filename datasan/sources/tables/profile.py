"""Pass 1 over a table (one task per file, in a worker): what the plan needs to know.

For text tables, per-column type counts (every cell is read as a string, or
natively by Arrow when a column parses cleanly); for every table, the target
column's value counts and a numeric sample.  Typed tables read only the target
column here.  Problems with the file itself become DS0xx findings.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from datasan.checks import files as file_rules
from datasan.checks.tables import target as target_rules
from datasan.findings import Finding
from datasan.numpy_arrow import to_numpy
from datasan.options import ScanOptions
from datasan.sources.regular import NotRegularFile
from datasan.sources.tables import convert, read, typed


@dataclass
class ProfileTask:
    """One file to profile, with the options of its source."""

    rel: str
    path: str
    fmt: str
    target: str | None
    options: ScanOptions


@dataclass
class TableProfile:
    """What the profile pass learnt about one table (``ok`` False: it could not be read)."""

    rel: str
    fmt: str
    ok: bool = True
    encoding: str = "utf-8"
    delimiter: str = ","
    columns: list[str] = field(default_factory=list)
    arrow_types: dict[str, str] = field(default_factory=dict)  # typed tables: name -> type kind
    counts: dict[str, convert.ColumnCounts] = field(default_factory=dict)  # text tables
    #: CSV columns Arrow parsed natively in the profile (name -> 'int64'/'float64'/'bool')
    #: without a missing or non-finite cell: the scan pass reads them natively too
    native: dict[str, str] = field(default_factory=dict)
    target: str | None = None
    target_summary: target_rules.TargetSummary | None = None
    rows: int = 0
    row_groups: list[int] = field(default_factory=list)
    findings: list[Finding] = field(default_factory=list)
    #: typed tables: nulls per column from the file's metadata (None: unknown)
    nulls: dict[str, int] | None = None


def _arrow_kind(t) -> str:
    import pyarrow as pa

    if pa.types.is_dictionary(t):
        return _arrow_kind(t.value_type)
    if pa.types.is_boolean(t):
        return "bool"
    if pa.types.is_integer(t):
        return "int"
    if pa.types.is_floating(t):
        return "float"
    if pa.types.is_decimal(t):
        return "decimal"
    if pa.types.is_string(t) or pa.types.is_large_string(t):
        return "string"
    if pa.types.is_temporal(t):
        return "temporal"
    if pa.types.is_null(t):
        return "null"
    return "nested"  # lists, structs, maps, binary, unions


def profile_table(task: ProfileTask) -> TableProfile:
    """Pass 1 for one file (runs in a worker)."""
    prof = TableProfile(rel=task.rel, fmt=task.fmt)
    try:
        if read.is_text_format(task.fmt):
            _profile_text(task, prof)
        else:
            _profile_typed(task, prof)
    except NotRegularFile as exc:
        prof.ok = False
        prof.findings.append(file_rules.changed_after_listing(task.rel, str(exc)))
    except read.UnreadableFile as exc:
        prof.ok = False
        prof.findings.append(file_rules.unreadable_file(task.rel, short_reason(exc), as_format=task.fmt))
    except OSError as exc:
        prof.ok = False
        prof.findings.append(file_rules.unreadable_file(task.rel, short_reason(exc)))
    return prof


def _profile_text(task: ProfileTask, prof: TableProfile) -> None:
    import pyarrow as pa

    encoding, note = read.sniff_encoding(task.path)
    for attempt in (encoding, "latin-1"):
        try:
            _profile_text_once(task, prof, attempt)
            if attempt == "latin-1":
                prof.findings.append(file_rules.text_encoding(task.rel))
            elif note:
                prof.findings.append(file_rules.text_encoding(task.rel, note))
            return
        except (UnicodeDecodeError, pa.ArrowInvalid) as exc:
            msg = str(exc)
            if attempt == "latin-1" or not ("UTF8" in msg or "UTF-8" in msg or isinstance(exc, UnicodeDecodeError)):
                raise read.UnreadableFile(msg) from exc
            # start over in latin-1: forget what the failed attempt counted
            fresh = TableProfile(rel=task.rel, fmt=task.fmt)
            prof.__dict__.update(fresh.__dict__)


def _profile_text_once(task: ProfileTask, prof: TableProfile, encoding: str) -> None:
    import pyarrow as pa

    prof.encoding = encoding
    if task.fmt == "jsonl":
        batches = read.iter_jsonl_batches(task.path, encoding, task.options.batch_rows)
    else:
        prof.delimiter = read.sniff_delimiter(task.path, encoding, task.fmt)
        names = read.csv_column_names(task.path, encoding, prof.delimiter)
        if not names:
            prof.columns = []
            return
        names, dups = read.dedupe_names(names)
        prof.findings.extend(file_rules.duplicate_column_name(prof.rel, d) for d in dups)
        prof.columns = list(names)
        try:
            _profile_csv_native(task, prof, encoding, names)
            return
        except pa.ArrowInvalid as exc:
            if "UTF8" in str(exc) or "UTF-8" in str(exc):
                raise
            # a later block does not fit the types Arrow inferred from the first:
            # profile again with every cell as a string
            prof.counts, prof.native, prof.rows, prof.target_summary = {}, {}, 0, None
            prof.target = None
        batches = read.iter_csv_batches(task.path, encoding, prof.delimiter, names)
    th = task.options.thresholds
    summary = None
    seed = 0
    for batch, rows, bad in batches:
        prof.rows += len(rows) + len(bad)
        if batch is None:
            continue
        nested = set()
        if batch.schema.metadata and b"nested" in batch.schema.metadata:
            import json

            nested = set(json.loads(batch.schema.metadata[b"nested"]))
        for name in batch.schema.names:
            if name not in prof.columns:
                prof.columns.append(name)
        if prof.target is None:
            prof.target = target_rules.find_target(prof.columns, task.target)
        for name in batch.schema.names:
            tokens = target_rules.TARGET_MISSING_TOKENS if name == prof.target else None
            c = convert.count_column(batch.column(name), tokens)
            c.nested = name in nested
            prof.counts.setdefault(name, convert.ColumnCounts()).merge(c)
        if prof.target is not None and prof.target in batch.schema.names:
            if summary is None:
                summary = target_rules.TargetSummary(cap=th.max_classes)
            _target_summary_add(summary, batch.column(prof.target), seed)
            seed += 1
    if prof.target is None:
        prof.target = target_rules.find_target(prof.columns, task.target)
    prof.target_summary = summary


def _target_summary_add(summary: target_rules.TargetSummary, raw, seed: int) -> None:
    """Add one batch of an all-string target column to its summary."""
    import numpy as np
    import pyarrow as pa
    import pyarrow.compute as pc

    col = pc.utf8_trim_whitespace(raw.fill_null(""))
    missing = pc.is_in(pc.utf8_lower(col), value_set=pa.array(list(target_rules.TARGET_MISSING_TOKENS)))
    summary.rows += len(col)
    summary.missing += pc.sum(missing).as_py() or 0
    present = col.filter(pc.invert(missing))
    summary.add_keys(present.to_pylist())
    numeric = pc.match_substring_regex(pc.utf8_lower(present), convert.FLOAT_RE)
    if not pc.all(numeric).as_py() and len(present):
        summary.numeric = False
    nums = to_numpy(pc.cast(pc.utf8_lower(present.filter(numeric)), pa.float64()))
    summary.add_numbers(np.asarray(nums, dtype=np.float64), seed)


def _profile_csv_native(task: ProfileTask, prof: TableProfile, encoding: str, names: list[str]) -> None:
    """The profile pass with Arrow's own CSV type inference and number parsing.

    Much faster than regexes over every cell: numeric columns are counted from
    null counts and finiteness.  The target and every column Arrow reads as
    text still go through :func:`convert.count_column`.  Raises ArrowInvalid
    when a later block does not fit the inferred types.
    """
    import pyarrow as pa
    import pyarrow.compute as pc

    prof.target = target_rules.find_target(prof.columns, task.target)
    types = {prof.target: pa.string()} if prof.target else {}
    summary = target_rules.TargetSummary(cap=task.options.thresholds.max_classes) if prof.target else None
    nonfinite: dict[str, int] = {}
    kinds: dict[str, str] = {}
    seed = 0
    for batch, rows, bad in read.iter_csv_batches(task.path, encoding, prof.delimiter, names,
                                                  column_types=types):
        prof.rows += len(rows) + len(bad)
        if batch is None:
            continue
        for name in batch.schema.names:
            arr = batch.column(name)
            t = arr.type
            n, nulls = len(arr), arr.null_count
            if name == prof.target:
                c = convert.count_column(arr, target_rules.TARGET_MISSING_TOKENS)
                _target_summary_add(summary, arr, seed)
            elif pa.types.is_integer(t):
                c = convert.ColumnCounts(cells=n, missing=nulls, numeric=n - nulls, integer=n - nulls)
                kinds[name] = "int64"
            elif pa.types.is_floating(t):
                c = convert.ColumnCounts(cells=n, missing=nulls, numeric=n - nulls,
                                         nan=pc.sum(pc.is_nan(arr)).as_py() or 0)
                fin = pc.sum(pc.is_finite(arr)).as_py() or 0
                nonfinite[name] = nonfinite.get(name, 0) + (n - nulls - fin)
                kinds[name] = "float64"
            elif pa.types.is_boolean(t):
                c = convert.ColumnCounts(cells=n, missing=nulls, boolean=n - nulls)
                kinds[name] = "bool"
            elif pa.types.is_null(t):
                c = convert.ColumnCounts(cells=n, missing=n)
                kinds[name] = "null"
            else:  # text, or what Arrow reads as dates and times: count the text
                c = convert.count_column(arr if pa.types.is_string(t) else arr.cast(pa.string()))
                kinds[name] = "text"
            prof.counts.setdefault(name, convert.ColumnCounts()).merge(c)
        seed += 1
    prof.target_summary = summary
    for name, kind in kinds.items():
        c = prof.counts[name]
        if kind in ("int64", "float64", "bool") and c.missing == 0 and not nonfinite.get(name):
            prof.native[name] = kind


def short_reason(msg, limit: int = 200) -> str:
    """First line of an error message, printable and at most ``limit`` characters."""
    line = str(msg).strip().splitlines()[0] if str(msg).strip() else "unknown error"
    line = "".join(ch if ch.isprintable() else "?" for ch in line)
    return line if len(line) <= limit else line[: limit - 3] + "..."


def _profile_typed(task: ProfileTask, prof: TableProfile) -> None:
    import numpy as np
    import pyarrow as pa
    import pyarrow.compute as pc

    schema = typed.typed_schema(task.path, task.fmt)
    names, dups = read.dedupe_names(schema.names)
    prof.findings.extend(file_rules.duplicate_column_name(prof.rel, d) for d in dups)
    prof.columns = names
    prof.arrow_types = {n: _arrow_kind(f.type) for n, f in zip(names, schema)}
    prof.rows, prof.row_groups = typed.typed_row_groups(task.path, task.fmt)
    if task.options.missing_policy == "drop-column":
        prof.nulls = typed.typed_null_counts(task.path, task.fmt)
    prof.target = target_rules.find_target(prof.columns, task.target)
    if prof.target is None:
        return
    kind = prof.arrow_types[prof.target]
    summary = target_rules.TargetSummary(cap=task.options.thresholds.max_classes)
    if kind in ("nested", "temporal", "null"):
        summary.numeric = False
    seed = 0
    try:
        for batch, rows, _ in typed.iter_typed_batches(task.path, task.fmt, 0, len(prof.row_groups), 0,
                                                      task.options.batch_rows, columns=[prof.target]):
            col = batch.column(0)
            if pa.types.is_dictionary(col.type):
                col = col.dictionary_decode()
            summary.rows += len(col)
            if kind in ("int", "float", "decimal", "bool"):
                as_float = pc.cast(col, pa.float64())
                vals = np.asarray(to_numpy(as_float), dtype=np.float64)
                present = ~np.isnan(vals)
                if col.null_count:
                    present &= ~to_numpy(col.is_null())
                summary.missing += int((~present).sum())
                pv = vals[present]
                if summary.counts is not None:
                    vc = pc.value_counts(pc.drop_null(as_float))
                    uniq = to_numpy(vc.field("values"))
                    cnt = to_numpy(vc.field("counts"))
                    keep_u = ~np.isnan(uniq)
                    for u, c in zip(uniq[keep_u].tolist(), cnt[keep_u].tolist()):
                        key = int(u) if np.isfinite(u) and float(u).is_integer() else u
                        summary.counts[key] = summary.counts.get(key, 0) + c
                    if len(summary.counts) > summary.cap:
                        summary.counts = None
                summary.add_numbers(pv, seed)
            elif kind == "string":
                vals = col.to_pylist()
                present = [v for v in vals if not target_rules.is_missing_target_text(v)]
                summary.missing += len(vals) - len(present)
                summary.numeric = False
                summary.add_keys([v.strip() for v in present])
            else:
                summary.missing += col.null_count
            seed += 1
    except (pa.ArrowException, OSError) as exc:
        raise read.UnreadableFile(str(exc)) from exc
    prof.target_summary = summary


