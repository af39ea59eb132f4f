"""Between the passes: the decisions about a table that need the whole file.

Column types, the feature columns, sparse columns to drop and the target plan
(task, distant class ids, regression bounds), from the table's profile.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from datasan.checks import files as file_rules
from datasan.checks.tables import columns as column_rules
from datasan.checks.tables import target as target_rules
from datasan.discover import FileEntry
from datasan.findings import Finding
from datasan.options import ScanOptions
from datasan.sources.base import Source
from datasan.sources.tables import convert, read
from datasan.sources.tables.profile import TableProfile


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
    target: target_rules.TargetPlan
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
            found.append(file_rules.unsupported_column(prof.rel, c))
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
    if target is None:
        found.extend(target_rules.target_findings(prof.rel, prof.columns, options.target))
    tplan = target_rules.plan_target(target, summary, options.task, options.num_classes, options.classes, th)
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
            found.append(column_rules.coded_numeric_column(prof.rel, c, counts.cells, counts.missing,
                                                           counts.numeric, counts.codes, counts.examples))
    return types, found


def missing_in_profile(prof: TableProfile) -> tuple[dict[str, int] | None, int]:
    """(missing cells per column, rows) as the profile saw them: null, empty, a missing
    token or NaN; (None, rows) when it could not tell (a typed table without null statistics)."""
    if read.is_text_format(prof.fmt):
        rows = max((cnt.cells for cnt in prof.counts.values()), default=0)
        # a JSONL key first seen late is missing from every earlier record
        return {c: cnt.missing + cnt.nan + rows - cnt.cells for c, cnt in prof.counts.items()}, rows
    return prof.nulls, prof.rows


def _columns_to_drop(prof: TableProfile, options: ScanOptions, target: str | None) -> dict[str, float]:
    """Columns missing in more than thresholds.sparse_fraction of the rows (never the target):
    with at least SPARSE_MIN_MISSING missing cells, or missing in every row (an empty column
    is a column problem in a table of any size)."""
    missing, rows = missing_in_profile(prof)
    if not missing or rows == 0:
        return {}
    limit = options.thresholds.sparse_fraction
    return {c: missing[c] / rows for c in prof.columns
            if c != target and c in missing and missing[c] / rows > limit
            and (missing[c] >= column_rules.SPARSE_MIN_MISSING or missing[c] >= rows)}


