"""What the table checks mean (rules DS101-DS113), independent of file formats.

* :class:`TargetSummary` / :func:`plan_target`: from the profile of the target
  column, decide the task, the class ids that are distant and the regression
  bounds.  These need the whole column, so they run between the profile pass
  and the row pass.
* :func:`check_batch`: the vectorized row checks on one typed batch.  Returns
  the error mask (rows to quarantine), findings, and what the dataset-level
  checks need.
* :func:`dataset_findings`: column- and dataset-level findings from merged
  statistics (one finding per column, never one per row).
"""

from __future__ import annotations

from datasan.checks.rule import Rule

import math
from dataclasses import dataclass, field
from typing import Any

from datasan.findings import Finding, FindingBuffer, quote
from datasan.findings import format_number as _fmt
from datasan.options import Thresholds


# ------------------------------------------------------------------ rules of this family
NON_FINITE_VALUE = Rule(
    "DS101", "non-finite-value", "error",
    "A numeric feature is NaN, +Inf, -Inf or missing (empty cell / null).",
    what="Every numeric feature value of every row: NaN, infinities, nulls, empty "
    "CSV cells, and strings such as 'nan', 'inf' or '1e400' (which parses to inf).",
    why="One NaN input makes the forward pass NaN, the loss NaN and, after one "
    "optimizer step, every weight NaN: the run is lost.",
    fix="Impute or drop the row; find the join or division that produced it.",
    example="f3 = 'nan' in row 17",
)
MISSING_LABEL = Rule(
    "DS102", "missing-label", "error",
    "The target of a row is missing (null, empty, 'nan', 'None').",
    what="Null or empty targets, and the strings 'nan', 'NaN', 'None', 'null', 'NA'.",
    why="A NaN target makes the loss NaN; a string 'nan' becomes its own class.",
    fix="Label the row or drop it.",
    example="label = '' in row 3",
)
LABEL_OUT_OF_RANGE = Rule(
    "DS103", "label-out-of-range", "error",
    "A class id is negative or not below the number of classes.",
    what="Classification targets below 0, at or above --num-classes, or not among "
    "the given class names.",
    why="cross_entropy with such a target raises a device-side assert on CUDA and "
    "an IndexError (or silent garbage) elsewhere.",
    fix="Map the label into 0..num_classes-1 or drop the row; check --num-classes.",
    example="label = -1 with 10 classes",
)
DISTANT_LABEL = Rule(
    "DS104", "distant-label", "error",
    "A target lies far outside the bulk of the targets.",
    what="Class ids far above every other id and rare (8000 among 0..9), and "
    "regression targets that are extreme robust outliers (both in value and in "
    "log-magnitude, with a conservative limit) or beyond float32 range.",
    why="A class id of 8000 sizes the output head wrong or crashes it; one target of "
    "1e30 dominates MSE, explodes gradients and turns the weights to Inf/NaN.",
    fix="Check the row's source: usually a sentinel value (-999, 9999) or a unit error.",
    example="label = 8000 among labels 0..9",
)
FLOAT32_OVERFLOW_RISK = Rule(
    "DS105", "float32-overflow-risk", "warning",
    "A value is so large (|x| > 1e18) that its square or a sum overflows float32.",
    what="Feature values with magnitude above 1e18.",
    why="float32 tops out at 3.4e38: squaring 1e19 (MSE, variance, L2 norms) gives inf.",
    fix="Rescale the column (log, standardize) or check the value for a unit error.",
    example="f0 = 1e20",
)
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
NON_NUMERIC_VALUE = Rule(
    "DS109", "non-numeric-value", "error",
    "A value in a numeric column is not a number (mixed types).",
    what="In a column where nearly every value is numeric, the values that are not "
    "(e.g. '?', 'n/a', 'abc').",
    why="`astype(float)` raises on them; `to_numeric(errors='coerce')` turns them into "
    "NaN that reach the loss.",
    fix="Fix or drop the row; if the token means 'missing', impute it.",
    example="age = '?' in row 12",
)
DUPLICATE_ROW = Rule(
    "DS110", "duplicate-row", "warning",
    "A row is an exact duplicate of an earlier row.",
    what="Rows whose values (features and target) equal an earlier row's.",
    why="Duplicates weight some samples twice and leak between train and test splits.",
    fix="Deduplicate, or split by group so copies land in the same split.",
    example="row 40 equals row 3",
)
CONFLICTING_DUPLICATE = Rule(
    "DS111", "conflicting-duplicate", "warning",
    "Two rows have identical features but different labels.",
    what="Rows whose features equal an earlier row's while the target differs.",
    why="The model is asked to predict two answers for one input: label noise that "
    "no model can fit.",
    fix="Decide which label is right, or drop both rows.",
    example="rows 5 and 91: same features, labels 2 and 7",
)
NO_TARGET = Rule(
    "DS112", "no-target", "info",
    "No target column was found; label checks were skipped.",
    what="A table with none of the columns label, target, y, class, labels and no "
    "--target option.",
    why="Without a target, missing or distant labels cannot be checked.",
    fix="Pass --target NAME (or set it in the config).",
    example="a table with columns a, b, c",
)
FLOAT32_OVERFLOW = Rule(
    "DS113", "float32-overflow", "error",
    "A finite value exceeds float32 range (|x| > 3.4e38) and becomes inf as float32.",
    what="Feature values larger in magnitude than the largest float32.",
    why="`torch.tensor(x, dtype=torch.float32)` turns them into inf: a non-finite "
    "input as sure as a NaN.",
    fix="Fix the value (usually a unit or parsing error) or drop the row.",
    example="f1 = 1e300",
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
TARGET_LOOKS_LIKE_FEATURE = Rule(
    "DS115", "target-looks-like-feature", "warning",
    "The column named like a target ('y', 'class') looks like a feature; it was not used as the target.",
    what="A target picked by the weak names 'y' or 'class' (no column is named label, target or "
    "labels) when 'y' sits beside both 'x' and 'z' (a coordinate) or another column names an outcome "
    "(survived, outcome, response, diagnosis, churn, died, death, dead, default).",
    why="Label checks on a feature quarantine genuine rows (a width in mm read as a regression target "
    "with distant values, a passenger class read as class ids) while the real label goes unchecked.",
    fix="Name the target: --target FILE=COLUMN (repeatable), --target COLUMN for every table, or "
    "target under [sources.\"<glob>\"] in the config.",
    example="titanic.csv: class, age, sex, survived",
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
    what="A column whose every cell is null, empty or a missing token. The clean file keeps it as "
    "a column of nulls.",
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


#: names that make a column the target, strongest first: 'y' and 'class' are
#: also common feature names (a coordinate, a passenger class), so they come last
TARGET_NAMES = ("label", "target", "labels", "y", "class")
WEAK_TARGET_NAMES = ("y", "class")
#: columns that name an outcome: beside one of them, 'y' or 'class' is a feature
OUTCOME_NAMES = ("survived", "outcome", "response", "diagnosis", "churn", "died", "death", "dead", "default")
FLOAT32_MAX = 3.4028234663852886e38
FLOAT16_MAX = 65504.0
SAMPLE_CAP = 100_000
#: a column is sparse (DS118) only with at least this many missing cells: one
#: NaN in a 4-row table is a row problem (DS101), not a column one
SPARSE_MIN_MISSING = 5
TARGET_MISSING_TOKENS = ("", "nan", "-nan", "+nan", "none", "null", "na", "n/a", "nil")


def find_target(columns: list[str], requested: str | None) -> str | None:
    """The target column: ``requested`` if given (and present), else the first of
    TARGET_NAMES, unless that one looks like a feature (:func:`target_name_doubt`)."""
    if requested:
        return requested if requested in columns else None
    picked = target_by_name(columns)
    if picked is None or target_name_doubt(columns, picked):
        return None
    return picked


def target_by_name(columns: list[str]) -> str | None:
    """The first column named like a target (TARGET_NAMES, any case), or None."""
    lower = {c.lower(): c for c in columns}
    for name in TARGET_NAMES:
        if name in lower:
            return lower[name]
    return None


def target_name_doubt(columns: list[str], picked: str) -> str | None:
    """Why a target picked by a weak name ('y', 'class') looks like a feature, or None."""
    if picked.lower() not in WEAK_TARGET_NAMES:
        return None
    lower = [c.lower() for c in columns if c != picked]
    if picked.lower() == "y":
        # x, y alone is the usual (X, y) naming; x, y, z are coordinates or sizes
        beside = [c for c in columns if c.lower() in ("x", "z") and c != picked]
        if len(beside) == 2:
            return f"it sits between {beside[0]!r} and {beside[1]!r}, like a coordinate"
    outcome = [c for c, lc in zip([c for c in columns if c != picked], lower) if lc in OUTCOME_NAMES]
    if outcome:
        return f"{outcome[0]!r} looks like the label"
    return None


# --------------------------------------------------------------------------- target profile

@dataclass
class TargetSummary:
    """Mergeable profile of a target column.

    ``counts`` maps each distinct present value to its count (None once there
    are more than ``cap`` distinct values); ``sample`` holds up to
    SAMPLE_CAP numeric values drawn uniformly for robust statistics.
    """

    cap: int = 1000
    rows: int = 0
    missing: int = 0
    counts: dict | None = field(default_factory=dict)
    sample: list = field(default_factory=list)
    numeric: bool = True
    integral: bool = True

    def add_keys(self, keys: list) -> None:
        """Count the present values of one batch (python scalars or strings)."""
        if self.counts is None:
            return
        for k in keys:
            self.counts[k] = self.counts.get(k, 0) + 1
        if len(self.counts) > self.cap:
            self.counts = None

    def add_numbers(self, values, seed: int) -> None:
        """Add numeric present values (numpy float64) of one batch to the sample.

        Each batch contributes a uniform draw of at most SAMPLE_CAP // 4
        values; the pooled sample is thinned back to SAMPLE_CAP when it grows
        past four times that, so memory stays bounded whatever the row count.
        """
        import numpy as np

        fin = values[np.isfinite(values)]
        if self.integral and fin.size and not np.array_equal(fin, np.round(fin)):
            self.integral = False
        rng = np.random.default_rng(seed)
        take = min(fin.size, SAMPLE_CAP // 4)
        if take < fin.size:
            fin = fin[rng.integers(0, fin.size, take)]  # with replacement: O(take), not O(n)
        self.sample.append(np.asarray(fin, dtype=np.float64))
        if sum(a.size for a in self.sample) > 4 * SAMPLE_CAP:
            pooled = np.concatenate(self.sample)
            self.sample = [pooled[rng.integers(0, pooled.size, SAMPLE_CAP)]]

    def sample_array(self):
        """The pooled numeric sample as one float64 array."""
        import numpy as np

        return np.concatenate(self.sample) if self.sample else np.empty(0)

    def numeric_keys(self) -> None:
        """Turn string keys into numbers (int when integral) after the column was typed numeric;
        keys that are not numbers are dropped (they are DS109 findings)."""
        if self.counts is None:
            return
        out: dict = {}
        for k, c in self.counts.items():
            try:
                f = float(k)
            except (TypeError, ValueError):
                continue
            key = int(f) if f == f and abs(f) != float("inf") and f.is_integer() else f
            out[key] = out.get(key, 0) + c
        self.counts = out


def is_missing_target_text(text: str | None) -> bool:
    return text is None or text.strip().lower() in TARGET_MISSING_TOKENS


@dataclass
class TargetPlan:
    """What the row pass needs to know about the target."""

    column: str | None
    task: str = "none"  # classification | regression | none
    num_classes: int | None = None
    classes: list | None = None  # names, when given
    distant: set = field(default_factory=set)  # class ids that are distant
    low: float = -math.inf  # regression: values outside [low, high] are distant
    high: float = math.inf
    reason: str = ""  # how the task was decided (for the report)


def plan_target(
    column: str | None,
    summary: TargetSummary | None,
    task: str,
    num_classes: int | None,
    classes: list[str] | None,
    th: Thresholds,
) -> TargetPlan:
    """Decide task, distant class ids and regression bounds from the target's profile."""
    if column is None or summary is None:
        return TargetPlan(column=None, reason="no target column")
    plan = TargetPlan(column=column, num_classes=num_classes, classes=classes)
    if classes and num_classes is None:
        plan.num_classes = len(classes)
    n_present = summary.rows - summary.missing
    distinct = None if summary.counts is None else len(summary.counts)
    if task != "auto":
        plan.task = task
        plan.reason = "--task"
    elif classes or num_classes:
        plan.task = "classification"
        plan.reason = "class count given"
    elif not summary.numeric:
        plan.task = "classification"
        plan.reason = "string labels"
    elif summary.integral and _negative_rows(summary.counts) > max(1, th.distant_tail_fraction * n_present):
        # class ids are never negative; a rare -1 is a sentinel (DS103), many negatives are values
        plan.task = "regression"
        plan.reason = f"integer target with {_negative_rows(summary.counts)} negative values"
    elif summary.integral and distinct is not None and distinct <= th.max_classes and _looks_like_ids(
        summary.counts, n_present, th
    ):
        plan.task = "classification"
        plan.reason = f"integer labels with {distinct} distinct values"
    else:
        plan.task = "regression"
        plan.reason = "continuous target" if not summary.integral else f"{distinct or 'many'} distinct values"

    if plan.task == "classification" and summary.numeric and summary.counts and plan.num_classes is None:
        plan.distant = distant_class_ids(summary.counts, n_present, th)
    if plan.task == "regression" and summary.sample:
        plan.low, plan.high = regression_bounds(summary.sample_array(), th)
    return plan


def _negative_rows(counts: dict | None) -> int:
    """Rows whose (numeric) target is below zero; 0 when the counts were not kept."""
    if not counts:
        return 0
    return sum(c for k, c in counts.items() if isinstance(k, (int, float)) and k < 0)


def _looks_like_ids(counts: dict, n: int, th: Thresholds) -> bool:
    """Integer targets are class ids when there are few distinct values
    (at most 2 * sqrt(rows)), or when they densely cover 0..K (or 1..K) once
    distant ids are set aside; otherwise they are counts or measurements."""
    distinct = len(counts)
    if distinct <= max(2, 2 * math.sqrt(max(n, 1))):
        return True
    far = distant_class_ids(counts, n, th)
    ids = [k for k in counts if k not in far]
    if not ids:
        return False
    lo, hi = min(ids), max(ids)
    return lo in (0, 1) and len(ids) >= 0.5 * (hi - lo + 1)


def distant_class_ids(counts: dict, n: int, th: Thresholds) -> set:
    """Class ids far above the bulk: past a gap (id > gap_factor * (lower id + 1) + 8)
    with at most ``distant_tail_fraction`` of the rows at or above it.

    Walks the sorted distinct ids upward and takes the first such gap, so
    8000 among 0..9 is distant while a dense 0..999 never is.
    """
    ids = sorted(k for k in counts if isinstance(k, (int, float)) and k >= 0 and float(k).is_integer())
    if len(ids) < 2 or n <= 0:
        return set()
    tail = sum(counts[k] for k in ids)
    for prev, cur in zip(ids, ids[1:]):
        tail -= counts[prev]
        if cur > th.gap_factor * (prev + 1) + 8 and tail <= max(1, th.distant_tail_fraction * n):
            return {k for k in ids if k >= cur}
    return set()


def regression_bounds(sample, th: Thresholds) -> tuple[float, float]:
    """[low, high] outside which a regression target is distant.

    A value is distant only when it is a robust outlier both in value
    (|x - median| > outlier_k * 1.4826 * MAD) and in signed log-magnitude
    (log_outlier_k), so heavy-tailed but clean targets (prices, counts) pass;
    anything beyond float32 range always is.
    """
    import numpy as np

    x = sample[np.isfinite(sample)]
    lo, hi = -FLOAT32_MAX, FLOAT32_MAX
    if x.size < 20:
        return lo, hi
    med = float(np.median(x))
    mad = 1.4826 * float(np.median(np.abs(x - med)))
    lx = np.sign(x) * np.log1p(np.abs(x))
    lmed = float(np.median(lx))
    lmad = 1.4826 * float(np.median(np.abs(lx - lmed)))
    if mad == 0 or lmad == 0:
        return lo, hi

    def from_log(v: float) -> float:
        return float(np.sign(v) * np.expm1(min(abs(v), 700.0)))

    hi_lin = med + th.outlier_k * mad
    lo_lin = med - th.outlier_k * mad
    hi_log = from_log(lmed + th.log_outlier_k * lmad)
    lo_log = from_log(lmed - th.log_outlier_k * lmad)
    return max(lo, min(lo_lin, lo_log)), min(hi, max(hi_lin, hi_log))


# --------------------------------------------------------------------------- row checks

@dataclass
class BatchChecks:
    """Outcome of the row checks on one batch."""

    error: Any  # numpy bool mask: rows to quarantine
    findings: FindingBuffer


def _as_ids(values):
    """Integral float class ids as int64 for printing; floats when one is beyond int64."""
    import numpy as np

    return values.astype(np.int64) if np.all(np.abs(values) < 2.0**63) else values


def check_batch(
    source: str,
    columns: dict,  # name -> (numpy values, numpy null mask or None, raw string array or None)
    non_numeric: dict,  # name -> numpy bool mask of cells that are not numbers (text tables)
    target: tuple | None,  # (name, numpy values | list, missing mask, raw strings or None)
    plan: TargetPlan,
    rows,
    th: Thresholds,
) -> BatchChecks:
    """Vectorized row checks of one batch; see the module docstring."""
    import numpy as np

    n = len(rows)
    error = np.zeros(n, dtype=bool)
    out = FindingBuffer()

    def raw_text(raw, idx) -> list[str]:
        return [raw[i].as_py() for i in idx] if raw is not None else [None] * len(idx)

    for name, mask in non_numeric.items():
        idx = np.flatnonzero(mask)
        if idx.size:
            # the target is not among the feature columns: its raw strings come with it
            raw = columns[name][2] if name in columns else (target[3] if target and target[0] == name else None)
            texts = raw_text(raw, idx)
            out.add_rows("DS109", source, rows[idx], column=name,
                         template="Column '{0}' holds {1}, which is not a number.",
                         params=(name, [quote(t) for t in texts]))
            error[idx] = True

    for name, (values, nulls, raw) in columns.items():
        bad_num = non_numeric.get(name)
        if nulls is not None:
            miss = nulls if bad_num is None else (nulls & ~bad_num)
            idx = np.flatnonzero(miss)
            if idx.size:
                if raw is None:
                    out.add_rows("DS101", source, rows[idx], column=name,
                                 template="Feature '{0}' is null.", params=(name,))
                else:
                    out.add_rows("DS101", source, rows[idx], column=name,
                                 template="Feature '{0}' is missing ({1}).",
                                 params=(name, ["empty cell" if not (t or "").strip() else quote(t)
                                                for t in raw_text(raw, idx)]))
                error[idx] = True
        if values.dtype.kind != "f":
            if values.dtype.kind in "iu" and values.size:
                big = np.abs(values.astype(np.float64)) > th.overflow_abs
                idx = np.flatnonzero(big)
                if idx.size:
                    out.add_rows("DS105", source, rows[idx], column=name,
                                 template="Feature '{0}' is {1}: its square overflows float32.",
                                 params=(name, values[idx]))
            continue
        if values.size == 0:
            continue
        lo, hi = values.min(), values.max()
        if np.isfinite(lo) and np.isfinite(hi) and -th.overflow_abs <= lo and hi <= th.overflow_abs:
            continue  # the common case: two passes and done
        finite = np.isfinite(values)
        nonfin = ~finite
        if nulls is not None:
            nonfin &= ~nulls
        idx = np.flatnonzero(nonfin)
        if idx.size:
            if raw is None:
                what = values[idx]
            else:
                what = []
                for i, t in zip(idx, raw_text(raw, idx)):
                    v = _fmt(float(values[i]))
                    spelled = t is not None and t.strip().lower() not in ("nan", "inf", "-inf", "+inf")
                    what.append(f"{quote(t.strip())}, which parses to {v}" if spelled else v)
            out.add_rows("DS101", source, rows[idx], column=name,
                         template="Feature '{0}' is {1}.", params=(name, what))
            error[idx] = True
        with np.errstate(invalid="ignore"):
            mag = np.abs(np.where(finite, values, 0.0))
        idx = np.flatnonzero(mag > FLOAT32_MAX)
        if idx.size:
            out.add_rows("DS113", source, rows[idx], column=name,
                         template="Feature '{0}' is {1}, beyond float32 range: it becomes inf as float32.",
                         params=(name, values[idx].astype(np.float64)))
            error[idx] = True
        idx = np.flatnonzero((mag > th.overflow_abs) & (mag <= FLOAT32_MAX))
        if idx.size:
            out.add_rows("DS105", source, rows[idx], column=name,
                         template="Feature '{0}' is {1}: its square overflows float32.",
                         params=(name, values[idx].astype(np.float64)))

    if target is not None and plan.column is not None:
        error |= _check_target(source, target, plan, rows, out)
    return BatchChecks(error=error, findings=out)


def _check_target(source, target, plan: TargetPlan, rows, out: FindingBuffer):
    import numpy as np

    name, values, missing, raw = target
    n = len(rows)
    error = np.zeros(n, dtype=bool)
    idx = np.flatnonzero(missing)
    if idx.size:
        texts = [raw[i].as_py() for i in idx] if raw is not None else [None] * idx.size
        out.add_rows("DS102", source, rows[idx], column=name, template="Target '{0}' is missing ({1}).",
                     params=(name, ["null" if t is None else "empty" if not t.strip() else quote(t)
                                    for t in texts]))
        error[idx] = True
    present = ~missing
    if isinstance(values, np.ndarray) and values.dtype.kind in "fiu":
        v = values.astype(np.float64, copy=False)
        if plan.task == "regression":
            with np.errstate(invalid="ignore"):
                nonfin = present & ~np.isfinite(v)
                idx = np.flatnonzero(nonfin)
                if idx.size:
                    out.add_rows("DS101", source, rows[idx], column=name,
                                 template="Target '{0}' is {1}.", params=(name, v[idx]))
                    error[idx] = True
                far = present & np.isfinite(v) & ((v < plan.low) | (v > plan.high))
            idx = np.flatnonzero(far)
            if idx.size:
                out.add_rows("DS104", source, rows[idx], column=name,
                             template="Target '{0}' is {1}, far outside the bulk of the targets "
                             "(expected within {2}..{3}).",
                             params=(name, v[idx], _fmt(plan.low), _fmt(plan.high)))
                error[idx] = True
        elif plan.task == "classification":
            with np.errstate(invalid="ignore"):
                nonint = present & (~np.isfinite(v) | (v != np.round(v)))
                neg = present & ~nonint & (v < 0)
                over = present & ~nonint & ~neg & (
                    (v >= plan.num_classes) if plan.num_classes is not None else np.zeros(n, bool))
            for mask, why in ((nonint, "is not an integer class id"),
                              (neg, "is negative"),
                              (over, f"is not below the number of classes ({plan.num_classes})")):
                idx = np.flatnonzero(mask)
                if idx.size:
                    # integral ids print as integers, the rest (1.5, NaN, inf) as floats
                    ids = v[idx] if mask is nonint else _as_ids(v[idx])
                    out.add_rows("DS103", source, rows[idx], column=name,
                                 template="Class id {0} {1}.", params=(ids, why))
                    error[idx] = True
            if plan.distant:
                far = present & ~(nonint | neg | over) & np.isin(v, np.asarray(sorted(plan.distant), dtype=np.float64))
                idx = np.flatnonzero(far)
                if idx.size:
                    out.add_rows("DS104", source, rows[idx], column=name,
                                 template="Class id {0} is far above the other class ids and rare: "
                                 "a typo or sentinel value?", params=(_as_ids(v[idx]),))
                    error[idx] = True
    elif plan.classes is not None:
        allowed = set(plan.classes)
        idx = [i for i in range(n) if present[i] and values[i] not in allowed]
        if idx:
            out.add_rows("DS103", source, rows[np.asarray(idx)], column=name,
                         template="Class {0} is not among the {1} given class names.",
                         params=([quote(values[i]) for i in idx], len(allowed)))
            error[np.asarray(idx)] = True
    return error


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
                out.append(Finding("DS108", f"Column '{c}' has the single value {_fmt(m.min)} in all "
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
            out.append(Finding("DS107", f"{what} '{c}' {reason}: standardize it with the mean/std in "
                               "stats.json.", source=source, column=c))
    for c, k in fp16_counts.items():
        if k:
            out.append(Finding("DS106", f"Column '{c}' has {k} value(s) beyond float16 range "
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
            out.append(Finding("DS117", f"Column '{c}' is empty: it has no value in any row; it was left out "
                               f"of the clean file {policy}.", source=source, column=c))
        else:
            out.append(Finding("DS118", f"Column '{c}' is missing in {share:.1%} of the rows: it was left out of "
                               f"the clean file {policy} and no row was quarantined for it.",
                               source=source, column=c))
    if rows <= 0:
        return out, sparse
    for c, n in missing.items():
        if c == target or n == 0:
            continue
        share = n / rows
        text = types.get(c) == "string"
        if n >= rows:
            sparse[c] = 1.0
            out.append(Finding("DS117", f"Column '{c}' is empty: it has no value in any of its {rows} rows; the "
                               "clean file keeps it as a column of nulls. Drop it.", source=source, column=c))
        elif share > th.sparse_fraction and n >= SPARSE_MIN_MISSING:
            sparse[c] = share
            fate = ("the rows are kept, the clean file holds nulls" if text or types.get(c) not in (
                "int64", "float64", "int", "float", "decimal") else "those rows were quarantined (DS101)")
            out.append(Finding("DS118", f"Column '{c}' is missing in {share:.1%} of the rows ({n} of {rows}); "
                               f"{fate}. To keep the rows without the column, set missing_policy = "
                               '"drop-column" in the config; or impute it with a missing-indicator column.',
                               source=source, column=c))
        elif text:
            out.append(Finding("DS116", f"Text column '{c}' is missing in {n} of {rows} rows ({share:.1%}); the "
                               "clean file keeps them as nulls and the rows are kept.", source=source, column=c))
    return out, sparse


def _repeated(hashes):
    """Positions (ascending) of the entries whose hash occurs more than once.

    One sort of the 64-bit hashes (numpy's, about 0.15 s for 2M rows; faster
    here than a hash table) finds the repeated values; only the (usually few)
    entries holding them are looked at in Python afterwards.
    """
    import numpy as np

    s = np.sort(hashes)
    same = s[1:] == s[:-1]
    if not same.any():
        return np.empty(0, dtype=np.int64)
    repeated = np.unique(s[1:][same])
    return np.flatnonzero(np.isin(hashes, repeated))


def duplicate_findings(source: str, rows, full_hash, feature_hash, has_target: bool) -> FindingBuffer:
    """DS110 for rows equal to an earlier row, DS111 for equal features with another label.

    ``rows`` are data-row indices with one 64-bit hash of the whole row and one
    of its features only (see the table source's row hashing).  Exact
    duplicates have equal features too, so the rows whose feature hash repeats
    hold both kinds.  Everything is numpy over those rows: a row equal to an
    earlier one costs two int64 (its row and the first row) in the findings.
    """
    import numpy as np

    out = FindingBuffer()
    if len(rows) < 2:
        return out
    if np.any(rows[1:] < rows[:-1]):
        order = np.argsort(rows, kind="stable")
        rows, full_hash, feature_hash = rows[order], full_hash[order], feature_hash[order]
    pos = _repeated(feature_hash if has_target else full_hash)  # ascending, so rows ascend too
    if pos.size == 0:
        return out
    if pos.size == rows.size:  # every row repeats (a table of copies): no copies of the arrays
        r, full, feat = rows, full_hash, feature_hash if has_target else full_hash
    else:
        r, full = rows[pos], full_hash[pos]
        feat = feature_hash[pos] if has_target else full
    del pos
    # one stable sort by (features, whole row): equal rows form runs, earliest row first
    order = np.lexsort((full, feat)) if has_target else np.argsort(full, kind="stable")
    n = order.size
    feat_start = np.ones(n, dtype=bool)
    sorted_key = feat[order]
    np.not_equal(sorted_key[1:], sorted_key[:-1], out=feat_start[1:])
    full_start = feat_start.copy()
    if has_target:
        sorted_key = full[order]
        full_start[1:] |= sorted_key[1:] != sorted_key[:-1]
    del sorted_key
    dup = ~full_start
    run_of = np.cumsum(full_start) - 1  # the run each entry belongs to
    dup_rows = r[order[dup]]
    dup_of = r[order[np.flatnonzero(full_start)[run_of[dup]]]]
    del run_of
    _add_in_row_order(out, "DS110", source, dup_rows, "Row {0} is an exact duplicate of row {1}.",
                      dup_rows, dup_of)
    del dup_rows, dup_of, dup
    if has_target:
        starts = np.flatnonzero(feat_start)
        earliest_of_group = np.minimum.reduceat(order, starts)  # a group's earliest row
        firsts = order[full_start]
        earliest = earliest_of_group[(np.cumsum(feat_start) - 1)[full_start]]
        conflict = firsts != earliest
        c_rows = r[firsts[conflict]]
        _add_in_row_order(out, "DS111", source, c_rows,
                          "Rows {0} and {1} have identical features but different labels.",
                          r[earliest[conflict]], c_rows)
    return out


def _add_in_row_order(out: FindingBuffer, code: str, source: str, rows, template: str, *params) -> None:
    """Add a run of findings sorted by row (the order a reader expects)."""
    import numpy as np

    if rows.size and np.any(rows[1:] < rows[:-1]):
        k = np.argsort(rows, kind="stable")
        rows, params = rows[k], tuple(p[k] for p in params)
    out.add_rows(code, source, rows, template=template, params=params)
