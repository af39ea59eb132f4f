"""Row checks of numeric feature values (DS101, DS105, DS109, DS113), vectorized per batch.

The table source hands each batch over as typed facts (:class:`ColumnValues`,
:class:`TargetValues`); nothing here knows a file format.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from datasan.checks.rule import Rule
from datasan.findings import FindingBuffer, quote
from datasan.findings import format_number as _fmt
from datasan.options import Thresholds

# ------------------------------------------------------------------ rules of this module
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
FLOAT32_OVERFLOW_RISK = Rule(
    "DS105", "float32-overflow-risk", "warning",
    "A value is so large (|x| > 1e18) that its square or a sum overflows float32.",
    what="Feature values with magnitude above 1e18.",
    why="float32 tops out at 3.4e38: squaring 1e19 (MSE, variance, L2 norms) gives inf.",
    fix="Rescale the column (log, standardize) or check the value for a unit error.",
    example="f0 = 1e20",
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
FLOAT32_OVERFLOW = Rule(
    "DS113", "float32-overflow", "error",
    "A finite value exceeds float32 range (|x| > 3.4e38) and becomes inf as float32.",
    what="Feature values larger in magnitude than the largest float32.",
    why="`torch.tensor(x, dtype=torch.float32)` turns them into inf: a non-finite "
    "input as sure as a NaN.",
    fix="Fix the value (usually a unit or parsing error) or drop the row.",
    example="f1 = 1e300",
)


FLOAT32_MAX = 3.4028234663852886e38
FLOAT16_MAX = 65504.0


# --------------------------------------------------------------------------- facts

@dataclass
class ColumnValues:
    """One numeric feature column of a batch, as the row checks read it."""

    values: Any  # numpy array (nulls filled with 0)
    nulls: Any = None  # numpy bool mask of null cells, or None when there are none
    raw: Any = None  # the cells as read (an Arrow string array) for text tables, else None


@dataclass
class TargetValues:
    """The target column of a batch, as the row checks read it."""

    name: str
    values: Any  # float64 numpy array for a numeric target, else a list of (stripped) values
    missing: Any  # numpy bool mask of missing targets
    raw: Any = None  # the cells as read (an Arrow string array) for text tables, else None


def raw_text(raw, idx) -> list[str | None]:
    """The cells at ``idx`` as read (None when the table was typed)."""
    return [raw[i].as_py() for i in idx] if raw is not None else [None] * len(idx)


# --------------------------------------------------------------------------- row checks

def check_non_numeric(source: str, non_numeric: dict, columns: dict[str, ColumnValues],
                      target: TargetValues | None, rows, out: FindingBuffer, error) -> None:
    """DS109 for each cell of a numeric column that is not a number (text tables);
    ``non_numeric`` maps a column to its mask.  Marks the rows in ``error``."""
    import numpy as np

    for name, mask in non_numeric.items():
        idx = np.flatnonzero(mask)
        if idx.size:
            # the target is not among the feature columns: its raw strings come with it
            raw = columns[name].raw if name in columns else (target.raw if target and target.name == name else None)
            texts = raw_text(raw, idx)
            out.add_rows(NON_NUMERIC_VALUE.code, source, rows[idx], column=name,
                         template="Column '{0}' holds {1}, which is not a number.",
                         params=(name, [quote(t) for t in texts]))
            error[idx] = True


def check_features(source: str, columns: dict[str, ColumnValues], non_numeric: dict, rows,
                   th: Thresholds, out: FindingBuffer, error) -> None:
    """DS101 (missing or non-finite), DS113 (beyond float32) and DS105 (square overflows
    float32) for the numeric feature columns of one batch.  Marks error rows in ``error``."""
    import numpy as np

    for name, col in columns.items():
        values, nulls, raw = col.values, col.nulls, col.raw
        bad_num = non_numeric.get(name)
        if nulls is not None:
            miss = nulls if bad_num is None else (nulls & ~bad_num)
            idx = np.flatnonzero(miss)
            if idx.size:
                if raw is None:
                    out.add_rows(NON_FINITE_VALUE.code, source, rows[idx], column=name,
                                 template="Feature '{0}' is null.", params=(name,))
                else:
                    out.add_rows(NON_FINITE_VALUE.code, source, rows[idx], column=name,
                                 template="Feature '{0}' is missing ({1}).",
                                 params=(name, ["empty cell" if not (t or "").strip() else quote(t)
                                                for t in raw_text(raw, idx)]))
                error[idx] = True
        if values.dtype.kind != "f":
            if values.dtype.kind in "iu" and values.size:
                big = np.abs(values.astype(np.float64)) > th.overflow_abs
                idx = np.flatnonzero(big)
                if idx.size:
                    out.add_rows(FLOAT32_OVERFLOW_RISK.code, source, rows[idx], column=name,
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
            out.add_rows(NON_FINITE_VALUE.code, source, rows[idx], column=name,
                         template="Feature '{0}' is {1}.", params=(name, what))
            error[idx] = True
        with np.errstate(invalid="ignore"):
            mag = np.abs(np.where(finite, values, 0.0))
        idx = np.flatnonzero(mag > FLOAT32_MAX)
        if idx.size:
            out.add_rows(FLOAT32_OVERFLOW.code, source, rows[idx], column=name,
                         template="Feature '{0}' is {1}, beyond float32 range: it becomes inf as float32.",
                         params=(name, values[idx].astype(np.float64)))
            error[idx] = True
        idx = np.flatnonzero((mag > th.overflow_abs) & (mag <= FLOAT32_MAX))
        if idx.size:
            out.add_rows(FLOAT32_OVERFLOW_RISK.code, source, rows[idx], column=name,
                         template="Feature '{0}' is {1}: its square overflows float32.",
                         params=(name, values[idx].astype(np.float64)))

