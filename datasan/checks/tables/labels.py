"""Row checks of the target (DS102, DS103, DS104; DS101 for a non-finite regression target)."""

from __future__ import annotations

from datasan.checks.rule import Rule
from datasan.checks.tables.target import TargetPlan
from datasan.checks.tables.values import NON_FINITE_VALUE, TargetValues
from datasan.findings import FindingBuffer, quote
from datasan.findings import format_number as _fmt

# ------------------------------------------------------------------ rules of this module
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


def _as_ids(values):
    """Integral float class ids as int64 for printing; floats when one is beyond int64."""
    import numpy as np

    return values.astype(np.int64) if np.all(np.abs(values) < 2.0**63) else values


def check_target(source: str, target: TargetValues, plan: TargetPlan, rows, out: FindingBuffer):
    """DS102 (missing), DS103 (not a valid class), DS104 (distant) and DS101 (non-finite
    regression target) for the target of one batch; returns the mask of error rows."""
    import numpy as np

    name, values, missing, raw = target.name, target.values, target.missing, target.raw
    n = len(rows)
    error = np.zeros(n, dtype=bool)
    idx = np.flatnonzero(missing)
    if idx.size:
        texts = [raw[i].as_py() for i in idx] if raw is not None else [None] * idx.size
        out.add_rows(MISSING_LABEL.code, source, rows[idx], column=name, template="Target '{0}' is missing ({1}).",
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
                    out.add_rows(NON_FINITE_VALUE.code, source, rows[idx], column=name,
                                 template="Target '{0}' is {1}.", params=(name, v[idx]))
                    error[idx] = True
                far = present & np.isfinite(v) & ((v < plan.low) | (v > plan.high))
            idx = np.flatnonzero(far)
            if idx.size:
                out.add_rows(DISTANT_LABEL.code, source, rows[idx], column=name,
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
                    out.add_rows(LABEL_OUT_OF_RANGE.code, source, rows[idx], column=name,
                                 template="Class id {0} {1}.", params=(ids, why))
                    error[idx] = True
            if plan.distant:
                far = present & ~(nonint | neg | over) & np.isin(v, np.asarray(sorted(plan.distant), dtype=np.float64))
                idx = np.flatnonzero(far)
                if idx.size:
                    out.add_rows(DISTANT_LABEL.code, source, rows[idx], column=name,
                                 template="Class id {0} is far above the other class ids and rare: "
                                 "a typo or sentinel value?", params=(_as_ids(v[idx]),))
                    error[idx] = True
    elif plan.classes is not None:
        allowed = set(plan.classes)
        idx = [i for i in range(n) if present[i] and values[i] not in allowed]
        if idx:
            out.add_rows(LABEL_OUT_OF_RANGE.code, source, rows[np.asarray(idx)], column=name,
                         template="Class {0} is not among the {1} given class names.",
                         params=([quote(values[i]) for i in idx], len(allowed)))
            error[np.asarray(idx)] = True
    return error
