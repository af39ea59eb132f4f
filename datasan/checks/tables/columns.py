"""Column- and dataset-level findings of a table, one per column, never one per row.

DS106-DS108 read the merged statistics of the kept rows; DS114 reads the
profile of a text column; DS116-DS118 count missing cells over every row read.
"""

from __future__ import annotations

from datasan.checks.rule import Rule
from datasan.checks.tables.target import TargetPlan
from datasan.findings import Finding
from datasan.findings import format_number as _fmt
from datasan.options import Thresholds

# ------------------------------------------------------------------ rules of this module
FLOAT16_OVERFLOW = Rule(
    "DS106", "float16-overflow", "warning",
    "A column has values beyond float16 range (|x| > 65504).",
    what="Per column, the count of values with magnitude above 65504.",
    why="Under mixed precision (AMP, fp16) these values become inf in the first layer.",
    fix="Standardize the column, or train in bfloat16 / float32.",
    example="price with values up to 3e6",
)
UNNORMALIZED_SCALE = Rule(
    "DS107", "unnormalized-scale", "warning",
    "A column's scale is far from unit, or orders of magnitude unlike the others.",
    what="Numeric features whose standard deviation or magnitude is far from 1, or "
    "differs from the median feature scale by over 1000x.",
    why="Unscaled inputs saturate activations and make one feature dominate the "
    "gradient; pixels left at 0..255 are the classic case.",
    fix="Standardize with the mean/std in stats.json (computed on the clean rows).",
    example="pixel columns ranging 0..255",
)
CONSTANT_COLUMN = Rule(
    "DS108", "constant-column", "warning",
    "A numeric column has a single value (std 0).",
    what="Numeric features whose kept values are all equal.",
    why="Standardizing divides by std = 0, giving NaN or Inf for the whole column.",
    fix="Drop the column, or guard the division (std + eps).",
    example="version = 1 in every row",
)
CODED_NUMERIC_COLUMN = Rule(
    "DS114", "coded-numeric-column", "warning",
    "A column of whole numbers with some codes ('136A', 'c168', 'C', '5+') was read as text.",
    what="A CSV/TSV/JSONL column whose values are mostly whole numbers but also hold codes: "
    "text with a letter or digit that is not a word for 'missing' (identifiers such as '207a', "
    "ordinal bins such as '5+' or '<1'). Such a column is a column of identifiers or categories, "
    "so it is kept as text and its rows are not quarantined. Numbers with stray garbage ('6.2\\x1a', "
    "'?', 'unknown') or codes among decimal numbers stay DS109 errors on their rows.",
    why="Reading an identifier column as numbers turns '136A' into a non-number and every such row "
    "into a false error; treating ids as a numeric feature gives the model a meaningless order.",
    fix="Nothing if it is an id or category. If it is a measurement, declare its type in the config "
    "(types = { family = \"float\" }, or per source under [sources.\"<glob>\"]): its codes then "
    "become DS109 errors on their rows.",
    example="family = 1, 2, ..., 136, '136A', 137 (Galton's heights)",
)
MISSING_TEXT_VALUE = Rule(
    "DS116", "missing-text-value", "warning",
    "A text (categorical) column has missing values.",
    what="Per text column, the number of null, empty or NA/None/null cells. The clean file keeps "
    "them as nulls (never as ''); the rows are kept.",
    why="Encoders treat a missing category differently: pandas get_dummies drops it, sklearn's "
    "OneHotEncoder raises on None, a vocabulary lookup maps '' to a real token.",
    fix="Impute a category (\"unknown\") or drop the rows, knowingly; see the count per column.",
    example="sex missing in 11 of 344 penguins",
)
EMPTY_COLUMN = Rule(
    "DS117", "empty-column", "warning",
    "A column has no value in any row.",
    what="A column whose every cell is null, empty or a missing token. A text column stays in the "
    "clean file as a column of nulls; a numeric one makes every row incomplete, and with "
    "missing_policy = \"quarantine\" (the default) every row is quarantined (DS101) and the "
    "finding says so; with missing_policy = \"drop-column\" the column leaves the clean file.",
    why="An all-missing feature carries no information and makes every row incomplete: dropping "
    "incomplete rows then drops the whole table.",
    fix="Drop the column, or find why the export left it empty.",
    example="a column 'notes' with an empty cell in every row",
)
SPARSE_COLUMN = Rule(
    "DS118", "sparse-column", "warning",
    "A column is missing in more than thresholds.sparse_fraction (20 %) of the rows.",
    what="Per column, the share of rows where it is null, empty, a missing token or NaN. With "
    "missing_policy = \"quarantine\" (the default) the rows with a missing numeric value are "
    "quarantined (DS101) and the finding says how many; with missing_policy = \"drop-column\" "
    "the column leaves the clean file and no row is quarantined for it.",
    why="Dropping every row with a NaN can remove most of a table because of one column; imputing "
    "a mostly-missing column invents most of its values.",
    fix="Drop the column (missing_policy = \"drop-column\" in the config, per source if needed), or "
    "impute it with a missing-indicator column.",
    example="repub vote share missing in 62 % of the rows",
)


#: a column is sparse (DS118) only with at least this many missing cells: one
#: NaN in a 4-row table is a row problem (DS101), not a column one
SPARSE_MIN_MISSING = 5


# --------------------------------------------------------------------------- dataset checks

def dataset_findings(
    source: str,
    stats: dict,  # name -> Moments over kept rows
    features: list[str],
    fp16_counts: dict,
    plan: TargetPlan,
    th: Thresholds,
) -> list[Finding]:
    """One finding per column for scale, constant and float16 problems."""
    out: list[Finding] = []
    scaled = [c for c in features if stats.get(c) is not None and stats[c].count >= 2]
    stds = sorted(stats[c].std for c in scaled if stats[c].std > 0)
    median_std = stds[len(stds) // 2] if stds else None
    checked = list(scaled)
    if plan.task == "regression" and plan.column and stats.get(plan.column) and stats[plan.column].count >= 2:
        checked.append(plan.column)
    for c in checked:
        m = stats[c]
        what = "Target" if c == plan.column else "Column"
        if m.min == m.max:
            if c != plan.column:
                out.append(Finding(CONSTANT_COLUMN.code, f"Column '{c}' has the single value {_fmt(m.min)} in all "
                                   f"{m.count} kept rows (std 0).", source=source, column=c))
            continue
        mag = max(abs(m.min), abs(m.max))
        ratio = (m.std / median_std) if median_std else 1.0
        reason = None
        if m.std > th.scale_limit or mag > th.scale_limit:
            reason = f"ranges {_fmt(m.min)}..{_fmt(m.max)} (std {_fmt(m.std)}), far from unit scale"
        elif m.std < 1.0 / (th.scale_limit ** 2):
            reason = f"has std {_fmt(m.std)}, far below unit scale"
        elif (len(scaled) >= 3 and c != plan.column and not 0.1 <= m.std <= 10.0
              and (ratio > th.scale_ratio or ratio < 1.0 / th.scale_ratio)):
            # a column near unit scale is never blamed for its neighbours' scale
            reason = f"has std {_fmt(m.std)}, {ratio:.3g}x the median column's"
        if reason:
            out.append(Finding(UNNORMALIZED_SCALE.code, f"{what} '{c}' {reason}: standardize it with the mean/std in "
                               "stats.json.", source=source, column=c))
    for c, k in fp16_counts.items():
        if k:
            out.append(Finding(FLOAT16_OVERFLOW.code, f"Column '{c}' has {k} value(s) beyond float16 range "
                               f"(|x| > 65504): they become inf under AMP.", source=source, column=c))
    return out


def missing_findings(
    source: str,
    missing: dict,  # column -> missing cells (null or NaN) over every row read
    rows: int,
    types: dict,
    target: str | None,
    dropped: dict,  # column -> missing share in the profile, left out of the clean file
    th: Thresholds,
) -> tuple[list[Finding], dict[str, float]]:
    """DS116 (missing text), DS117 (empty column), DS118 (sparse column), one per column;
    and the share missing of every sparse column."""
    out: list[Finding] = []
    sparse: dict[str, float] = {}
    policy = '(missing_policy = "drop-column")'
    for c, share in dropped.items():
        sparse[c] = share
        if share >= 1.0:
            out.append(Finding(EMPTY_COLUMN.code, f"Column '{c}' is empty: it has no value in any row; it was left out "
                               f"of the clean file {policy}.", source=source, column=c))
        else:
            out.append(Finding(SPARSE_COLUMN.code, f"Column '{c}' is missing in {share:.1%} of the rows: it was left out of "
                               f"the clean file {policy} and no row was quarantined for it.",
                               source=source, column=c))
    if rows <= 0:
        return out, sparse
    for c, n in missing.items():
        if c == target or n == 0:
            continue
        share = n / rows
        text = types.get(c) == "string"
        numeric = not text and types.get(c) in ("int64", "float64", "int", "float", "decimal")
        if n >= rows:
            sparse[c] = 1.0
            fate = ("so every row was quarantined (DS101). To keep the rows without it, set missing_policy = "
                    '"drop-column" in the config, or drop the column' if numeric else
                    "the clean file keeps it as a column of nulls. Drop it")
            out.append(Finding(EMPTY_COLUMN.code, f"Column '{c}' is empty: it has no value in any of its {rows} rows; "
                               f"{fate}.", source=source, column=c))
        elif share > th.sparse_fraction and n >= SPARSE_MIN_MISSING:
            sparse[c] = share
            fate = "those rows were quarantined (DS101)" if numeric else "the rows are kept, the clean file holds nulls"
            out.append(Finding(SPARSE_COLUMN.code, f"Column '{c}' is missing in {share:.1%} of the rows ({n} of {rows}); "
                               f"{fate}. To keep the rows without the column, set missing_policy = "
                               '"drop-column" in the config; or impute it with a missing-indicator column.',
                               source=source, column=c))
        elif text:
            out.append(Finding(MISSING_TEXT_VALUE.code, f"Text column '{c}' is missing in {n} of {rows} rows ({share:.1%}); the "
                               "clean file keeps them as nulls and the rows are kept.", source=source, column=c))
    return out, sparse



def coded_numeric_column(source: str, column: str, cells: int, missing: int, numeric: int, codes: int,
                         examples: list) -> Finding:
    """DS114: a column of whole numbers with some codes was read as text (an id or category)."""
    shown = ", ".join(repr(e) for e in examples[:3])
    return Finding(
        CODED_NUMERIC_COLUMN.code, f"Column '{column}' was read as text (an identifier or category): {numeric} of "
        f"{cells - missing} values are whole numbers, {codes} are codes such as "
        f"{shown}. If it is a measurement, declare it in the config (types = {{ {column} = \"float\" }}) "
        "and its codes become DS109 errors.", source=source, column=column)
