"""The target column: which column it is, its profile, and the plan every row shard needs.

* :func:`find_target` picks the target by name; :func:`target_findings` says
  when there is none (DS112) or when the one named like a target looks like a
  feature (DS115).
* :class:`TargetSummary` / :func:`plan_target`: from the profile of the target
  column, decide the task, the class ids that are distant and the regression
  bounds.  These need the whole column, so they run between the profile pass
  and the row pass.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

from datasan.checks.rule import Rule
from datasan.checks.tables.values import FLOAT32_MAX
from datasan.findings import Finding
from datasan.options import Thresholds

# ------------------------------------------------------------------ rules of this module
NO_TARGET = Rule(
    "DS112", "no-target", "info",
    "No target column was found; label checks were skipped.",
    what="A table with none of the columns label, target, y, class, labels and no "
    "--target option.",
    why="Without a target, missing or distant labels cannot be checked.",
    fix="Pass --target NAME (or set it in the config).",
    example="a table with columns a, b, c",
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


#: names that make a column the target, strongest first: 'y' and 'class' are
#: also common feature names (a coordinate, a passenger class), so they come last
TARGET_NAMES = ("label", "target", "labels", "y", "class")
WEAK_TARGET_NAMES = ("y", "class")
#: columns that name an outcome: beside one of them, 'y' or 'class' is a feature
OUTCOME_NAMES = ("survived", "outcome", "response", "diagnosis", "churn", "died", "death", "dead", "default")
SAMPLE_CAP = 100_000
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




def target_findings(source: str, columns: list[str], requested: str | None) -> list[Finding]:
    """DS112 when the table has no target, DS115 when the column named like one looks like a
    feature; nothing for a table without columns (it is reported as empty)."""
    if requested:
        return [Finding(NO_TARGET.code, f"Target column '{requested}' is not in {source} "
                        f"(columns: {', '.join(columns[:12])}); label checks skipped.", source=source)]
    if not columns:
        return []
    by_name = target_by_name(columns)
    doubt = target_name_doubt(columns, by_name) if by_name else None
    if doubt:
        return [Finding(TARGET_LOOKS_LIKE_FEATURE.code, f"{source}: column '{by_name}' is named like a target "
                        f"but looks like a feature ({doubt}); label checks skipped. Name the target: --target "
                        f"{source}=COLUMN.", source=source, column=by_name)]
    return [Finding(NO_TARGET.code, f"{source} has no target column (label, target, labels, y, class); "
                    "label checks skipped. Pass --target NAME.", source=source)]

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
