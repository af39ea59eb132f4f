"""Tables (CSV, TSV, JSONL, Parquet, Feather/Arrow) as a source kind.

Two passes over each file, both streaming:

1. **profile** (one task per file): for text tables, per-column type counts
   (every cell is read as a string); for every table, the target column's
   value counts and a numeric sample.  Typed tables read only the target
   column here.
2. **scan** (one task per shard: a file, or a range of row groups of a large
   Parquet/Arrow file): convert, run the row checks, write the kept rows to a
   part file, return findings, mergeable statistics and row hashes.

Between them :func:`plan_table` makes the decisions that need the whole file
(column types, task, distant class ids, regression bounds); after them
:func:`finish_table` merges shards, runs the column/dataset checks and puts
the clean file in place.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from typing import Any

from datasan.checks import tabular as checks
from datasan.discover import FileEntry
from datasan.findings import Finding, FindingBuffer
from datasan.options import ScanOptions
from datasan.sources.base import ScanContext, Source, SourceOutcome
from datasan.sources.regular import NotRegularFile
from datasan.sources.tables import convert, read
from datasan.stats import Moments, category_counts, merge_categories, merge_counts


# --------------------------------------------------------------------------- pass 1: profile

@dataclass
class ProfileTask:
    rel: str
    path: str
    fmt: str
    target: str | None
    options: ScanOptions


@dataclass
class TableProfile:
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
    target_summary: checks.TargetSummary | None = None
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


#: the longest file name most file systems take, in bytes
NAME_MAX = 255


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
        prof.findings.append(Finding("DS007", f"{task.rel} changed after it was listed: {exc}.", source=task.rel))
    except read.UnreadableFile as exc:
        prof.ok = False
        prof.findings.append(Finding("DS001", f"{task.rel} could not be read as {task.fmt.upper()}: "
                                     f"{_short(exc)}", source=task.rel))
    except OSError as exc:
        prof.ok = False
        prof.findings.append(Finding("DS001", f"{task.rel} could not be read: {_short(exc)}", source=task.rel))
    return prof


def _profile_text(task: ProfileTask, prof: TableProfile) -> None:
    import pyarrow as pa

    encoding, note = read.sniff_encoding(task.path)
    for attempt in (encoding, "latin-1"):
        try:
            _profile_text_once(task, prof, attempt)
            if attempt == "latin-1":
                prof.findings.append(Finding(
                    "DS003", f"{task.rel} is not valid UTF-8; it was decoded as latin-1 (check accented "
                    "characters in category names).", source=task.rel))
            elif note:
                prof.findings.append(Finding("DS003", f"{task.rel} is not UTF-8: {note}.", source=task.rel))
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
        _report_duplicate_names(prof, dups)
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
            prof.target = checks.find_target(prof.columns, task.target)
        for name in batch.schema.names:
            tokens = checks.TARGET_MISSING_TOKENS if name == prof.target else None
            c = convert.count_column(batch.column(name), tokens)
            c.nested = name in nested
            prof.counts.setdefault(name, convert.ColumnCounts()).merge(c)
        if prof.target is not None and prof.target in batch.schema.names:
            if summary is None:
                summary = checks.TargetSummary(cap=th.max_classes)
            _target_summary_add(summary, batch.column(prof.target), seed)
            seed += 1
    if prof.target is None:
        prof.target = checks.find_target(prof.columns, task.target)
    prof.target_summary = summary


def _target_summary_add(summary: checks.TargetSummary, raw, seed: int) -> None:
    """Add one batch of an all-string target column to its summary."""
    import numpy as np
    import pyarrow as pa
    import pyarrow.compute as pc

    col = pc.utf8_trim_whitespace(raw.fill_null(""))
    missing = pc.is_in(pc.utf8_lower(col), value_set=pa.array(list(checks.TARGET_MISSING_TOKENS)))
    summary.rows += len(col)
    summary.missing += pc.sum(missing).as_py() or 0
    present = col.filter(pc.invert(missing))
    summary.add_keys(present.to_pylist())
    numeric = pc.match_substring_regex(pc.utf8_lower(present), convert.FLOAT_RE)
    if not pc.all(numeric).as_py() and len(present):
        summary.numeric = False
    nums = pc.cast(pc.utf8_lower(present.filter(numeric)), pa.float64()).to_numpy(zero_copy_only=False)
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

    prof.target = checks.find_target(prof.columns, task.target)
    types = {prof.target: pa.string()} if prof.target else {}
    summary = checks.TargetSummary(cap=task.options.thresholds.max_classes) if prof.target else None
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
                c = convert.count_column(arr, checks.TARGET_MISSING_TOKENS)
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


def _report_duplicate_names(prof: TableProfile, dups: list[str]) -> None:
    for name in dups:
        if name == "_row":
            msg = (f"{prof.rel} has a column named '_row', which datasan's clean files reserve for the "
                   "row index; it is read as '_row.1'.")
        else:
            msg = (f"Column name '{name}' appears more than once in {prof.rel}; the repeats are read as "
                   f"'{name}.1', '{name}.2', ...")
        prof.findings.append(Finding("DS010", msg, source=prof.rel, column=name))


def _short(msg: str, limit: int = 200) -> str:
    """First line of an error message, printable and at most ``limit`` characters."""
    line = str(msg).strip().splitlines()[0] if str(msg).strip() else "unknown error"
    line = "".join(ch if ch.isprintable() else "?" for ch in line)
    return line if len(line) <= limit else line[: limit - 3] + "..."


def _profile_typed(task: ProfileTask, prof: TableProfile) -> None:
    import numpy as np
    import pyarrow as pa
    import pyarrow.compute as pc

    schema = read.typed_schema(task.path, task.fmt)
    names, dups = read.dedupe_names(schema.names)
    _report_duplicate_names(prof, dups)
    prof.columns = names
    prof.arrow_types = {n: _arrow_kind(f.type) for n, f in zip(names, schema)}
    prof.rows, prof.row_groups = read.typed_row_groups(task.path, task.fmt)
    if task.options.missing_policy == "drop-column":
        prof.nulls = read.typed_null_counts(task.path, task.fmt)
    prof.target = checks.find_target(prof.columns, task.target)
    if prof.target is None:
        return
    kind = prof.arrow_types[prof.target]
    summary = checks.TargetSummary(cap=task.options.thresholds.max_classes)
    if kind in ("nested", "temporal", "null"):
        summary.numeric = False
    seed = 0
    try:
        for batch, rows, _ in read.iter_typed_batches(task.path, task.fmt, 0, len(prof.row_groups), 0,
                                                      task.options.batch_rows, columns=[prof.target]):
            col = batch.column(0)
            if pa.types.is_dictionary(col.type):
                col = col.dictionary_decode()
            summary.rows += len(col)
            if kind in ("int", "float", "decimal", "bool"):
                as_float = pc.cast(col, pa.float64())
                vals = np.asarray(as_float.to_numpy(zero_copy_only=False), dtype=np.float64)
                present = ~np.isnan(vals)
                if col.null_count:
                    present &= ~col.is_null().to_numpy(zero_copy_only=False)
                summary.missing += int((~present).sum())
                pv = vals[present]
                if summary.counts is not None:
                    vc = pc.value_counts(pc.drop_null(as_float))
                    uniq = vc.field("values").to_numpy(zero_copy_only=False)
                    cnt = vc.field("counts").to_numpy(zero_copy_only=False)
                    keep_u = ~np.isnan(uniq)
                    for u, c in zip(uniq[keep_u].tolist(), cnt[keep_u].tolist()):
                        key = int(u) if np.isfinite(u) and float(u).is_integer() else u
                        summary.counts[key] = summary.counts.get(key, 0) + c
                    if len(summary.counts) > summary.cap:
                        summary.counts = None
                summary.add_numbers(pv, seed)
            elif kind == "string":
                vals = col.to_pylist()
                present = [v for v in vals if not checks.is_missing_target_text(v)]
                summary.missing += len(vals) - len(present)
                summary.numeric = False
                summary.add_keys([v.strip() for v in present])
            else:
                summary.missing += col.null_count
            seed += 1
    except (pa.ArrowException, OSError) as exc:
        raise read.UnreadableFile(str(exc)) from exc
    prof.target_summary = summary


# --------------------------------------------------------------------------- plan

def check_requested_targets(opts: ScanOptions, sources: list[Source], profiles: list[TableProfile]) -> None:
    """UsageError (exit 2) when a target named in the options is in no table it applies to.

    A typo in --target would otherwise skip every label check and let the gate pass.
    Only tables that could be read count; nothing is checked when none could.
    """
    from fnmatch import fnmatchcase

    from datasan.errors import UsageError

    read_ok = [(s.name, set(p.columns)) for s, p in zip(sources, profiles) if p.ok and p.columns]
    if not read_ok:
        return
    for glob, col in opts.targets.items():
        hits = [(n, cols) for n, cols in read_ok if fnmatchcase(n, glob) or fnmatchcase(n, glob.rstrip("/") + "/*")]
        if not hits:
            raise UsageError(f"--target {glob}={col}: no table matches {glob!r} "
                             f"(tables: {', '.join(n for n, _ in read_ok[:8])})")
        missing = [n for n, cols in hits if col not in cols]
        if missing:
            raise UsageError(f"--target {glob}={col}: {missing[0]} has no column {col!r}")
    if opts.target:
        plain = [cols for n, cols in read_ok if opts.for_source(n).target == opts.target]
        if plain and not any(opts.target in cols for cols in plain):
            raise UsageError(f"target column {opts.target!r} is in none of the {len(plain)} table(s) scanned")


@dataclass
class TablePlan:
    """Decisions for one table that every shard needs."""

    rel: str
    path: str
    fmt: str
    encoding: str
    delimiter: str
    columns: list[str]
    types: dict[str, str]  # text tables: decided type per column; typed: arrow kind
    features: list[str]  # numeric feature columns that are checked
    target: checks.TargetPlan
    options: ScanOptions
    #: CSV columns read with Arrow's own parser in the scan pass (name -> decided type):
    #: clean in the profile, so no raw text is needed for messages
    native: dict[str, str] = field(default_factory=dict)
    #: sparse columns left out of the clean file (missing_policy = "drop-column"), with
    #: their missing share in the profile
    dropped: dict[str, float] = field(default_factory=dict)

    def output_columns(self) -> list[str]:
        """The columns of the clean file, in order (``_row`` aside)."""
        return [c for c in self.columns if c not in self.dropped]


def plan_table(entry: FileEntry, prof: TableProfile, options: ScanOptions) -> tuple[TablePlan, list[Finding]]:
    """Decide column types, features, sparse columns to drop and the target plan from a profile."""
    found: list[Finding] = []
    th = options.thresholds
    types, typing_found = _column_types(prof, options)
    found.extend(typing_found)
    for c, t in types.items():
        if t == "nested":
            found.append(Finding("DS005", f"Column '{c}' holds nested or binary values; it was not checked.",
                                 source=prof.rel, column=c))
    target = prof.target
    summary = prof.target_summary
    if target is not None and summary is not None and types.get(target) in ("int64", "float64", "int", "float",
                                                                           "decimal", "bool"):
        if read.is_text_format(prof.fmt):
            summary.numeric = True
            summary.numeric_keys()
            if types[target] == "float64" and summary.counts:
                summary.integral = all(float(k).is_integer() for k in summary.counts
                                       if k == k and abs(k) != float("inf"))
    elif summary is not None:
        summary.numeric = False
    found.extend(_target_findings(prof, options, target))
    tplan = checks.plan_target(target, summary, options.task, options.num_classes, options.classes, th)
    dropped = _columns_to_drop(prof, options, target) if options.missing_policy == "drop-column" else {}
    numeric = {"int64", "float64", "int", "float", "decimal"}
    features = [c for c in prof.columns if types.get(c) in numeric and c != target and c not in dropped]
    native = {c: t for c, t in prof.native.items() if types.get(c) == t and c != target}
    plan = TablePlan(rel=prof.rel, path=entry.path, fmt=prof.fmt, encoding=prof.encoding,
                     delimiter=prof.delimiter, columns=list(prof.columns), types=types,
                     features=features, target=tplan, options=options, native=native, dropped=dropped)
    return plan, found


def _column_types(prof: TableProfile, options: ScanOptions) -> tuple[dict[str, str], list[Finding]]:
    """Each column's type: declared in the options, else decided from the profile (text
    tables) or the file's own (typed tables); DS114 for whole numbers with codes read as text."""
    from datasan.options import COLUMN_TYPES

    found: list[Finding] = []
    if not read.is_text_format(prof.fmt):
        types = dict(prof.arrow_types)
        for c, t in options.types.items():
            if c in types and COLUMN_TYPES[t] == "string" and types[c] in ("int", "float", "decimal"):
                types[c] = "string"  # an id stored as numbers: no numeric checks
        return types, found
    share = options.thresholds.numeric_share
    types = {}
    for c in prof.columns:
        counts = prof.counts.get(c, convert.ColumnCounts())
        if c in options.types:
            types[c] = COLUMN_TYPES[options.types[c]]
            continue
        types[c] = convert.decide_type(counts, share)
        if types[c] == "string" and convert.mostly_numeric(counts, share) and convert.is_coded_ids(counts):
            codes = ", ".join(repr(e) for e in counts.examples[:3])
            found.append(Finding(
                "DS114", f"Column '{c}' was read as text (an identifier or category): {counts.numeric} of "
                f"{counts.cells - counts.missing} values are whole numbers, {counts.codes} are codes such as "
                f"{codes}. If it is a measurement, declare it in the config (types = {{ {c} = \"float\" }}) "
                "and its codes become DS109 errors.", source=prof.rel, column=c))
    return types, found


def _target_findings(prof: TableProfile, options: ScanOptions, target: str | None) -> list[Finding]:
    """DS112 (no target) or DS115 (the target by name looks like a feature)."""
    if target is not None:
        return []
    if options.target:
        return [Finding("DS112", f"Target column '{options.target}' is not in {prof.rel} "
                        f"(columns: {', '.join(prof.columns[:12])}); label checks skipped.", source=prof.rel)]
    if not prof.columns:
        return []
    by_name = checks.target_by_name(prof.columns)
    doubt = checks.target_name_doubt(prof.columns, by_name) if by_name else None
    if doubt:
        return [Finding("DS115", f"{prof.rel}: column '{by_name}' is named like a target but looks like a "
                        f"feature ({doubt}); label checks skipped. Name the target: --target "
                        f"{prof.rel}=COLUMN.", source=prof.rel, column=by_name)]
    return [Finding("DS112", f"{prof.rel} has no target column (label, target, labels, y, class); "
                    "label checks skipped. Pass --target NAME.", source=prof.rel)]


def missing_in_profile(prof: TableProfile) -> tuple[dict[str, int] | None, int]:
    """(missing cells per column, rows) as the profile saw them: null, empty, a missing
    token or NaN; (None, rows) when it could not tell (a typed table without null statistics)."""
    if read.is_text_format(prof.fmt):
        rows = max((cnt.cells for cnt in prof.counts.values()), default=0)
        # a JSONL key first seen late is missing from every earlier record
        return {c: cnt.missing + cnt.nan + rows - cnt.cells for c, cnt in prof.counts.items()}, rows
    return prof.nulls, prof.rows


def _columns_to_drop(prof: TableProfile, options: ScanOptions, target: str | None) -> dict[str, float]:
    """Columns missing in more than thresholds.sparse_fraction of the rows (never the target)."""
    missing, rows = missing_in_profile(prof)
    if not missing or rows == 0:
        return {}
    limit = options.thresholds.sparse_fraction
    return {c: missing[c] / rows for c in prof.columns
            if c != target and c in missing and missing[c] / rows > limit
            and missing[c] >= checks.SPARSE_MIN_MISSING}


# --------------------------------------------------------------------------- pass 2: scan

@dataclass
class ShardTask:
    plan: TablePlan
    first_group: int
    n_groups: int
    first_row: int
    part_path: str | None  # where to write kept rows
    run_id: str = ""  # stamped into the part's Parquet metadata


@dataclass
class ShardResult:
    seen: int = 0
    kept: int = 0
    findings: FindingBuffer = field(default_factory=FindingBuffer)
    moments: dict[str, Moments] = field(default_factory=dict)
    fp16: dict[str, int] = field(default_factory=dict)
    labels: dict = field(default_factory=dict)
    categories: dict = field(default_factory=dict)  # drift: value counts of string columns
    #: missing cells (null or NaN) per output column over every row read
    missing: dict[str, int] = field(default_factory=dict)
    #: rows that reached the checks (rows read, less ragged or malformed records)
    checked: int = 0
    hash_rows: Any = None
    full_hash: Any = None
    feature_hash: Any = None
    part_path: str | None = None
    part_rows: int = 0
    error: str | None = None  # the file became unreadable mid-way


def _float_values(arr):
    """(values as numpy, null mask or None) of a numeric Arrow array."""
    import numpy as np
    import pyarrow as pa
    import pyarrow.compute as pc

    if isinstance(arr, pa.ChunkedArray):
        arr = arr.combine_chunks()
    if pa.types.is_dictionary(arr.type):
        arr = arr.dictionary_decode()
    if pa.types.is_decimal(arr.type):
        arr = pc.cast(arr, pa.float64())
    nulls = arr.is_null().to_numpy(zero_copy_only=False) if arr.null_count else None
    if nulls is not None:
        if pa.types.is_floating(arr.type):
            values = np.asarray(arr.fill_null(0.0).to_numpy(zero_copy_only=False))
        else:
            values = np.asarray(arr.fill_null(0).to_numpy(zero_copy_only=False))
    else:
        values = np.asarray(arr.to_numpy(zero_copy_only=False))
    return values, nulls


def _typed_batch(plan: TablePlan, batch):
    """(typed batch for output, check inputs) of one raw batch."""
    import pyarrow as pa

    text = read.is_text_format(plan.fmt)
    columns: dict[str, tuple] = {}
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
            conv = convert.convert_column(raw, typ, checks.TARGET_MISSING_TOKENS if name == tname else None)
            out = conv.array
            if conv.non_numeric is not None and conv.non_numeric.any():
                non_numeric[name] = conv.non_numeric
        else:  # typed tables, and CSV columns Arrow parsed natively
            out = raw
        names.append(name)
        arrays.append(out)
        has_text = text and pa.types.is_string(raw.type)
        if name in plan.features:
            values, nulls = _float_values(out)
            columns[name] = (values, nulls, raw if has_text else None)
        if name == tname:
            target = _target_inputs(plan, name, out, raw if has_text else None)
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


def _target_inputs(plan: TablePlan, name: str, arr, raw):
    import numpy as np
    import pyarrow as pa
    import pyarrow.compute as pc

    if pa.types.is_dictionary(arr.type):
        arr = arr.dictionary_decode()
    if pa.types.is_integer(arr.type) or pa.types.is_floating(arr.type) or pa.types.is_boolean(arr.type) \
            or pa.types.is_decimal(arr.type):
        values = np.asarray(pc.cast(arr, pa.float64()).to_numpy(zero_copy_only=False), dtype=np.float64)
        missing = np.isnan(values)
        if arr.null_count:
            missing |= arr.is_null().to_numpy(zero_copy_only=False)
        if raw is not None:
            # 'abc' in a numeric target is DS109, not a missing label
            norm = pc.utf8_lower(pc.utf8_trim_whitespace(raw.fill_null("")))
            tok = pc.is_in(norm, value_set=pa.array(list(checks.TARGET_MISSING_TOKENS)))
            missing &= tok.to_numpy(zero_copy_only=False)
        return (name, values, missing, raw)
    values = arr.to_pylist()
    stripped = [v.strip() if isinstance(v, str) else v for v in values]
    missing = np.asarray([v is None or (isinstance(v, str) and checks.is_missing_target_text(v))
                          for v in stripped], dtype=bool)
    return (name, stripped, missing, raw)


def _row_hashes(batch, target: str | None):
    """(full row hash, feature-only hash) as uint64 arrays; deterministic across processes.

    Each column is mixed through a multiply-xorshift bijection before it is
    combined, so rows that differ only in high float bits (1.0 vs 2.0) still
    hash apart.  All operations are in place to keep it to a few passes.
    """
    import numpy as np

    n = batch.num_rows
    feat = np.full(n, 0x9E3779B97F4A7C15, dtype=np.uint64)
    tgt = np.zeros(n, dtype=np.uint64)
    tmp = np.empty(n, dtype=np.uint64)
    prime = np.uint64(0x100000001B3)
    for i, name in enumerate(batch.schema.names):
        h = _column_hash(batch.column(i), (0xBF58476D1CE4E5B9 * (2 * i + 1)) & 0xFFFFFFFFFFFFFFFF)
        np.right_shift(h, np.uint64(31), out=tmp)
        np.bitwise_xor(h, tmp, out=h)
        if name == target:
            tgt = h
        else:
            np.bitwise_xor(feat, h, out=feat)
            np.multiply(feat, prime, out=feat)
    full = tgt * np.uint64(0xD6E8FEB86659FD93)
    np.bitwise_xor(full, feat, out=full)
    np.multiply(full, np.uint64(0xFF51AFD7ED558CCD), out=full)
    np.right_shift(full, np.uint64(33), out=tmp)
    np.bitwise_xor(full, tmp, out=full)
    return full, feat


def _column_hash(arr, mult: int):
    """A fresh uint64 array: each value's bits times the odd constant ``mult``
    (equal values, equal hashes; the caller mixes further)."""
    import numpy as np
    import pyarrow as pa

    t = arr.type
    if pa.types.is_dictionary(t):
        arr = arr.dictionary_decode()
        t = arr.type
    if (pa.types.is_integer(t) or pa.types.is_floating(t) or pa.types.is_boolean(t)) and arr.null_count == 0:
        v = np.asarray(arr.to_numpy(zero_copy_only=False))
        if v.dtype.kind == "f":
            h = np.add(v, 0.0, dtype=np.float64).view(np.uint64)  # fresh; -0.0 + 0.0 == +0.0
        else:
            h = v.astype(np.int64).view(np.uint64)
        np.multiply(h, np.uint64(mult), out=h)
        return h
    import pandas as pd

    try:
        strings = arr.cast(pa.string())
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
        strings = pa.array([None if v is None else repr(v) for v in arr.to_pylist()], type=pa.string())
    obj = strings.to_numpy(zero_copy_only=False)
    h = np.asarray(pd.util.hash_array(obj, categorize=False), dtype=np.uint64).copy()
    np.multiply(h, np.uint64(mult), out=h)
    return h


class _PartWriter:
    """Writes kept rows to one Parquet part in row groups of ``group_rows``.

    Encoding and compressing Parquet is the most expensive step of a table
    scan and pyarrow releases the GIL while doing it, so row groups are
    written on a background thread while the next batches are read and
    checked.  The queue holds at most one row group (bounded memory).
    """

    def __init__(self, path: str, group_rows: int, run_id: str = "") -> None:
        import queue
        import threading

        self.path = path
        self.run_id = run_id
        self.group_rows = group_rows
        self.buf: list = []
        self.buffered = 0
        self.writer = None
        self.rows = 0
        self.error: BaseException | None = None
        self._q: queue.Queue = queue.Queue(maxsize=1)
        self._thread = threading.Thread(target=self._run, name="datasan-part-writer", daemon=True)
        self._thread.start()

    def write(self, batch) -> None:
        if batch.num_rows == 0 and (self.writer is not None or self.buf):
            return
        self.buf.append(batch)
        self.buffered += batch.num_rows
        if self.buffered >= self.group_rows:
            self._flush()

    def _flush(self) -> None:
        import pyarrow as pa

        if not self.buf:
            return
        table = pa.Table.from_batches(self.buf)
        self.buf, self.buffered = [], 0
        self.rows += table.num_rows
        self._q.put(table)

    def _run(self) -> None:
        import pyarrow as pa
        import pyarrow.parquet as pq

        while True:
            table = self._q.get()
            if table is None:
                return
            if self.error is not None:
                continue
            try:
                if self.writer is None:
                    # dictionaries rarely pay for floats and cost a second encoding attempt
                    dict_cols = [f.name for f in table.schema if not pa.types.is_floating(f.type)]
                    self.writer = pq.ParquetWriter(self.path, _stamped(table.schema, self.run_id),
                                                   use_dictionary=dict_cols or False, compression="snappy")
                self.writer.write_table(table, row_group_size=max(self.group_rows, table.num_rows))
            except BaseException as exc:  # surfaced by close()
                self.error = exc

    def close(self) -> None:
        self._flush()
        self._q.put(None)
        self._thread.join()
        if self.writer is not None:
            self.writer.close()
        if self.error is not None:
            raise self.error


def scan_shard(task: ShardTask) -> ShardResult:
    """Pass 2 for one shard (runs in a worker): checks, stats, hashes, kept rows."""
    import numpy as np
    import pyarrow as pa

    plan = task.plan
    opts = plan.options
    th = opts.thresholds
    res = ShardResult()
    moments_cols = list(plan.features)
    tcol = plan.target.column
    target_numeric = tcol is not None and plan.types.get(tcol) in ("int64", "float64", "int", "float", "decimal")
    if target_numeric:
        moments_cols.append(tcol)
    writer = _PartWriter(task.part_path, opts.row_group_rows, task.run_id) if task.part_path else None
    rows_all, full_all, feat_all = [], [], []
    if read.is_text_format(plan.fmt):
        if plan.fmt == "jsonl":
            batches = read.iter_jsonl_batches(plan.path, plan.encoding, opts.batch_rows)
        else:
            arrow = {"int64": pa.int64(), "float64": pa.float64(), "bool": pa.bool_()}
            types = {c: arrow[plan.native[c]] if c in plan.native else pa.string() for c in plan.columns}
            batches = read.iter_csv_batches(plan.path, plan.encoding, plan.delimiter, plan.columns,
                                            column_types=types)
    else:
        batches = read.iter_typed_batches(plan.path, plan.fmt, task.first_group, task.n_groups,
                                          task.first_row, opts.batch_rows)
    try:
        for batch, rows, bad in batches:
            res.seen += len(rows) + len(bad)
            for b in bad:
                res.findings.add(Finding(b.code, b.message, sample=f"{plan.rel}#{b.row}", source=plan.rel,
                                         row=b.row))
            if batch is None or batch.num_rows == 0:
                continue
            typed, columns, non_numeric, target = _typed_batch(plan, batch)
            merge_counts(res.missing, _missing_counts(typed))
            res.checked += typed.num_rows
            bc = checks.check_batch(plan.rel, columns, non_numeric, target, plan.target, rows, th)
            bc.findings.apply_policy(opts)
            res.findings.merge(bc.findings)
            err_rows = bc.findings.error_rows()
            error = np.isin(rows, err_rows) if err_rows.size else np.zeros(len(rows), bool)
            keep = ~error
            kept_idx = np.flatnonzero(keep)
            res.kept += int(kept_idx.size)
            all_kept = kept_idx.size == len(rows)
            for name in moments_cols:
                if name in columns:
                    values, nulls, _ = columns[name]
                else:
                    values, nulls = target[1], target[2]
                kv = values if all_kept else values[keep]  # no copy in the common case
                knull = 0
                if nulls is not None:
                    knulls = nulls if all_kept else nulls[keep]
                    knull = int(knulls.sum())
                    if knull:
                        kv = kv[~knulls]
                m = Moments.of(kv, nulls=knull)
                res.moments.setdefault(name, Moments()).merge(m)
                if name != tcol and kv.dtype.kind in "fiu" and kv.size and (
                        m.max > checks.FLOAT16_MAX or m.min < -checks.FLOAT16_MAX):
                    with np.errstate(invalid="ignore"):
                        big = int((np.abs(kv.astype(np.float64, copy=False)) > checks.FLOAT16_MAX).sum())
                    res.fp16[name] = res.fp16.get(name, 0) + big
            if target is not None and plan.target.task == "classification":
                tv = target[1]
                if isinstance(tv, np.ndarray):
                    kvals = tv[keep]
                    u, c = np.unique(kvals, return_counts=True)
                    merge_counts(res.labels, {(int(a) if float(a).is_integer() else float(a)): int(b)
                                              for a, b in zip(u.tolist(), c.tolist())})
                else:
                    for i in kept_idx:
                        res.labels[tv[i]] = res.labels.get(tv[i], 0) + 1
            kept = typed.filter(pa.array(keep)) if error.any() else typed
            merge_categories(res.categories, category_counts(kept, [*plan.features, tcol]))  # drift
            if kept.num_rows:
                full, feat = _row_hashes(kept, tcol)
                rows_all.append(rows[keep])
                full_all.append(full)
                feat_all.append(feat)
            if writer is not None:
                out = kept.append_column("_row", pa.array(rows[keep], type=pa.int64()))
                writer.write(out)
    except (pa.ArrowException, OSError, UnicodeDecodeError) as exc:
        res.error = str(exc)
    finally:
        if writer is not None:
            writer.close()
            res.part_path = task.part_path if writer.writer is not None else None
            res.part_rows = writer.rows
    if rows_all:
        res.hash_rows = np.concatenate(rows_all)
        res.full_hash = np.concatenate(full_all)
        res.feature_hash = np.concatenate(feat_all)
    return res


# --------------------------------------------------------------------------- merge

def _concat_parts(parts: list[str], dest: str) -> None:
    """Stream several Parquet parts into one file (only for files split into shards)."""
    import pyarrow.parquet as pq

    writer = None
    try:
        for p in parts:
            pf = pq.ParquetFile(p)
            for i in range(pf.num_row_groups):
                t = pf.read_row_group(i)
                if writer is None:
                    writer = pq.ParquetWriter(dest, t.schema, compression="snappy")
                writer.write_table(t)
    finally:
        if writer is not None:
            writer.close()
    for p in parts:
        os.remove(p)


def _stamped(schema, run_id: str):
    """``schema`` carrying the run id (Parquet key-value metadata of the clean file)."""
    from datasan.outputs.manifest import RUN_ID_KEY

    return schema.with_metadata({**(schema.metadata or {}), RUN_ID_KEY: run_id.encode()}) if run_id else schema


def _empty_clean(plan: TablePlan, dest: str, schema=None, run_id: str = "") -> None:
    """A clean file with the table's columns and no rows."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    if schema is None:
        fields = []
        for c in plan.output_columns():
            t = plan.types.get(c, "string")
            fields.append(pa.field(c, {"int64": pa.int64(), "float64": pa.float64(), "bool": pa.bool_()}
                                   .get(t, pa.string())))
        schema = pa.schema(fields)
    schema = schema.append(pa.field("_row", pa.int64()))
    pq.write_table(_stamped(schema, run_id).empty_table(), dest)


class TableKind:
    """The table source kind (see the module docstring)."""

    name = "tables"

    def claim(self, files: list[FileEntry], ctx: ScanContext) -> tuple[list[Source], list[FileEntry]]:
        sources, rest = [], []
        for f in files:
            fmt = read.table_format(f.rel)
            if fmt is None:
                rest.append(f)
            else:
                sources.append(Source(kind="table", name=f.rel, files=[f], meta={"format": fmt}))
        return sources, rest

    def run(self, sources: list[Source], ctx: ScanContext) -> tuple[list[SourceOutcome], FindingBuffer]:
        opts = ctx.options
        outcomes: list[SourceOutcome] = []
        loose = FindingBuffer()
        if not sources:
            return outcomes, loose
        # per-source settings from the config (issue 6): each source gets its own options
        src_opts = {s.name: opts.for_source(s.name) for s in sources}
        tasks = [ProfileTask(s.name, s.files[0].path, s.meta["format"], src_opts[s.name].target, src_opts[s.name])
                 for s in sources]
        profiles = list(ctx.engine.map_ordered(profile_table, tasks))
        check_requested_targets(opts, sources, profiles)
        shard_tasks: list[ShardTask] = []
        plans: dict[str, tuple[Source, TablePlan | None, list[Finding], TableProfile]] = {}
        os.makedirs(os.path.join(ctx.staging, "parts"), exist_ok=True)
        for i, (src, prof) in enumerate(zip(sources, profiles)):
            found = list(prof.findings)
            if src.files[0].size == 0:
                found = [Finding("DS002", f"{src.name} is empty (0 bytes).", source=src.name)]
                plans[src.name] = (src, None, found, prof)
                continue
            if not prof.ok:
                plans[src.name] = (src, None, found, prof)
                continue
            plan, more = plan_table(src.files[0], prof, src_opts[src.name])
            found.extend(more)
            plans[src.name] = (src, plan, found, prof)
            if read.is_text_format(plan.fmt) and not plan.columns and prof.rows == 0:
                found.append(Finding("DS002", f"{src.name} has no header and no data rows.", source=src.name))
                plans[src.name] = (src, None, found, prof)
                continue
            if read.is_text_format(plan.fmt) or not prof.row_groups:
                shard_tasks.append(ShardTask(plan, 0, len(prof.row_groups), 0,
                                             os.path.join(ctx.staging, "parts", f"{i}-0.parquet"), ctx.run_id))
                continue
            # split large typed files into runs of row groups of about shard_rows rows
            start, acc, first_row, k = 0, 0, 0, 0
            for g, size in enumerate(prof.row_groups):
                acc += size
                if acc >= opts.shard_rows or g == len(prof.row_groups) - 1:
                    shard_tasks.append(ShardTask(plan, start, g - start + 1, first_row,
                                                 os.path.join(ctx.staging, "parts", f"{i}-{k}.parquet"),
                                                 ctx.run_id))
                    first_row += acc
                    start, acc, k = g + 1, 0, k + 1
        results: dict[str, list[ShardResult]] = {}
        for task, res in zip(shard_tasks, ctx.engine.map_ordered(scan_shard, shard_tasks)):
            results.setdefault(task.plan.rel, []).append(res)
            if ctx.progress is not None:
                ctx.progress.advance(res.seen)
        for src in sources:
            s, plan, found, prof = plans[src.name]
            outcomes.append(self._finish(src, plan, found, prof, results.get(src.name, []), ctx))
        return outcomes, loose

    def _finish(self, src, plan, found, prof, results, ctx) -> SourceOutcome:
        import numpy as np

        opts = ctx.options.for_source(src.name)  # per-source settings (issue 6)
        fb = FindingBuffer()
        fb.extend(found)
        if plan is None:
            fb.apply_policy(opts)
            readable = not any(f.code == "DS001" for f in found)
            return SourceOutcome(src, "rows", 0, 0, fb, report={"format": src.meta["format"], "readable": readable})
        seen = sum(r.seen for r in results)
        kept = sum(r.kept for r in results)
        moments: dict[str, Moments] = {}
        fp16: dict[str, int] = {}
        labels: dict = {}
        categories: dict = {}
        for r in results:
            fb.merge(r.findings)
            for k, m in r.moments.items():
                moments.setdefault(k, Moments()).merge(m)
            merge_counts(fp16, r.fp16)
            merge_counts(labels, r.labels)
            merge_categories(categories, r.categories)  # drift
            if r.error:
                fb.add(Finding("DS001", f"{src.name} could not be read past row {r.seen}: {_short(r.error)}",
                               source=src.name))
        if seen == 0 and not any(r.error for r in results):
            fb.add(Finding("DS002", f"{src.name} has no data rows.", source=src.name))
        th = opts.thresholds
        fb.extend(checks.dataset_findings(src.name, moments, plan.features, fp16, plan.target, th))
        missing: dict[str, int] = {}
        for r in results:
            merge_counts(missing, r.missing)
        missing_found, sparse = checks.missing_findings(src.name, missing, sum(r.checked for r in results),
                                                        plan.types, plan.target.column, plan.dropped, th)
        fb.extend(missing_found)
        hashed = [r for r in results if r.hash_rows is not None]
        if hashed:
            fb.merge(checks.duplicate_findings(
                src.name,
                np.concatenate([r.hash_rows for r in hashed]),
                np.concatenate([r.full_hash for r in hashed]),
                np.concatenate([r.feature_hash for r in hashed]),
                plan.target.column is not None,
            ))
        fb.apply_policy(opts)
        # the clean file: the parts, in order
        clean_rel = clean_name(src.name)
        if clean_rel != f"{src.name}.parquet":
            fb.add(Finding("DS013", f"The clean file of {src.name} would pass the 255-byte file name limit; "
                           f"it was written as clean/{clean_rel}.", source=src.name))
        dest = os.path.join(ctx.staging, "clean", clean_rel)
        os.makedirs(os.path.dirname(dest), exist_ok=True)
        parts = [r.part_path for r in results if r.part_path]
        if len(parts) == 1:
            os.replace(parts[0], dest)
        elif parts:
            _concat_parts(parts, dest)
        else:
            _empty_clean(plan, dest, None, ctx.run_id)
        stats_cols = {k: m.as_json() for k, m in moments.items()}
        stats = {"tables": {src.name: {"rows": kept, "columns": stats_cols,  # drift: types, categories
                                       "types": {c: plan.types.get(c, "string") for c in plan.output_columns()},
                                       "categories": {c: v.as_json() for c, v in sorted(categories.items())}}}}
        if plan.target.task == "classification":
            stats["labels"] = {src.name: {str(k): v for k, v in sorted(labels.items(), key=lambda kv: str(kv[0]))}}
        tp = plan.target
        report = {
            "format": plan.fmt,
            "target": tp.column,
            "task": tp.task,
            "task_reason": tp.reason,
            "num_classes": tp.num_classes if tp.num_classes is not None else (
                (int(max(labels)) + 1) if labels and all(isinstance(k, int) for k in labels) else
                (len(labels) if labels else None)),
            "features": plan.features,
            "sparse_columns": {c: round(v, 4) for c, v in sparse.items()},
            "dropped_columns": list(plan.dropped),
            "encoding": plan.encoding if read.is_text_format(plan.fmt) else None,
            "clean_file": f"clean/{clean_rel}",
            "missing": dict(sorted(missing.items())),  # drift: missing cells per column over rows read
            "rows_read": sum(r.checked for r in results),
        }
        oc = SourceOutcome(src, "rows", seen, kept, fb, stats=stats, clean_files=[clean_rel], report=report)
        # Row findings decided over the whole table (duplicates) are warnings by
        # default; a config can make them errors after their rows were written.
        import numpy as np

        written = [r.findings.error_rows() for r in results]
        done = np.concatenate(written) if written else np.empty(0, np.int64)
        late = np.setdiff1d(fb.error_rows(), done)
        if late.size:
            from datasan.sources.tables.rewrite import rewrite_table

            oc.kept -= int(late.size)
            rewrite_table(oc, ctx, dest, late, plan.features, tp.column, tp.task)
        return oc
