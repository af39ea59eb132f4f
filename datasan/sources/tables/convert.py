"""Decide and apply column types for text tables (CSV, TSV, JSONL).

The profile pass counts, per column, how many cells are missing, numeric and
integer-like (vectorized regexes over Arrow string arrays).  ``decide_type``
turns those counts into a type; ``convert_column`` applies it to a batch and
returns the typed array plus masks of the cells that were missing or not
numbers, which the checks turn into findings.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from datasan.numpy_arrow import to_numpy

# Cells that mean "no value".  'nan' is both: in a numeric column it is a NaN
# float (DS101), in the target a missing label (DS102).
MISSING_TOKENS = ["", "na", "n/a", "null", "none", "nil"]
NAN_TOKENS = ["nan", "-nan", "+nan"]
FLOAT_RE = (
    r"^[+-]?(?:(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?|inf|infinity|nan)$"
)
INT_RE = r"^[+-]?\d{1,18}$"
TRUE_FALSE = ["true", "false"]
#: Non-numeric cells that are garbage in a measurement, never a category: words
#: that mean "no value", and (by regex) cells without a letter or digit ('?',
#: '-') or holding a control byte ('6.2\x1a').  Any other text (a code such as
#: '136A', 'c168', 'C', '5+') is a *code*: a column of whole numbers with codes
#: among them is a column of identifiers or categories.
GARBAGE_WORDS = ["unknown", "missing", "undefined", "error", "n.a.", "#n/a", "#value!", "#ref!", "#div/0!",
                 "#num!", "#null!", "not available", "-nan"]
GARBAGE_RE = r"^[^\p{L}\p{N}]*$|[\x00-\x08\x0b\x0e-\x1f\x7f]"


@dataclass
class ColumnCounts:
    """Mergeable per-column counts from the profile pass."""

    cells: int = 0
    missing: int = 0
    numeric: int = 0
    integer: int = 0
    boolean: int = 0
    #: numeric cells that are NaN ('nan' or a float NaN)
    nan: int = 0
    #: present non-numeric cells that are codes (see GARBAGE_RE), not garbage
    codes: int = 0
    nested: bool = False
    examples: list[str] = field(default_factory=list)  # a few non-numeric values

    def merge(self, other: "ColumnCounts") -> "ColumnCounts":
        self.cells += other.cells
        self.missing += other.missing
        self.numeric += other.numeric
        self.integer += other.integer
        self.boolean += other.boolean
        self.nan += other.nan
        self.codes += other.codes
        self.nested = self.nested or other.nested
        for e in other.examples:
            if len(self.examples) < 5 and e not in self.examples:
                self.examples.append(e)
        return self


def _normalized(arr):
    import pyarrow.compute as pc

    return pc.utf8_lower(pc.utf8_trim_whitespace(arr))


def _cast_all(arr, typ):
    """``arr`` cast to ``typ`` when every cell parses (Arrow's C++ parsers), else None.

    The fast path for the common, clean column: one cast instead of four
    regex and string kernels.  Arrow's number parsing accepts exactly what
    FLOAT_RE / INT_RE accept for unpadded cells ('nan', 'inf', '1e400' -> inf);
    anything else (padding, tokens, text) fails the cast and takes the slow path.
    """
    import pyarrow as pa

    import pyarrow.compute as pc

    if arr.null_count:
        return None
    try:
        out = arr.cast(typ)
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
        return None
    if pa.types.is_integer(typ) and pc.any(pc.match_substring(arr, "x", ignore_case=True)).as_py():
        return None  # Arrow reads '0x10' as 16; datasan calls it not a number
    return out


def count_column(arr, missing_tokens=None) -> ColumnCounts:
    """Profile counts of one all-string Arrow array (``missing_tokens``: cells that mean no value)."""
    import pyarrow as pa
    import pyarrow.compute as pc

    n = len(arr)
    if n and missing_tokens is None:
        if _cast_all(arr, pa.int64()) is not None:
            return ColumnCounts(cells=n, numeric=n, integer=n)
        as_float = _cast_all(arr, pa.float64())
        if as_float is not None:
            return ColumnCounts(cells=n, numeric=n, integer=0, nan=pc.sum(pc.is_nan(as_float)).as_py() or 0)
    norm = _normalized(arr.fill_null(""))
    missing = pc.is_in(norm, value_set=pa.array(list(missing_tokens or MISSING_TOKENS)))
    present = pc.invert(missing)
    numeric = pc.and_(present, pc.match_substring_regex(norm, FLOAT_RE))
    integer = pc.and_(present, pc.match_substring_regex(norm, INT_RE))
    boolean = pc.is_in(norm, value_set=pa.array(TRUE_FALSE))
    other = pc.and_(pc.invert(missing), pc.invert(numeric))
    garbage = pc.or_(pc.match_substring_regex(norm, GARBAGE_RE), pc.is_in(norm, value_set=pa.array(GARBAGE_WORDS)))
    c = ColumnCounts(
        cells=len(arr),
        missing=pc.sum(missing).as_py() or 0,
        numeric=pc.sum(numeric).as_py() or 0,
        integer=pc.sum(integer).as_py() or 0,
        boolean=pc.sum(boolean).as_py() or 0,
        nan=pc.sum(pc.and_(present, pc.is_in(norm, value_set=pa.array(NAN_TOKENS)))).as_py() or 0,
        codes=pc.sum(pc.and_(other, pc.invert(garbage))).as_py() or 0,
    )
    if c.cells - c.missing - c.numeric:
        for v in pc.unique(arr.filter(other)).slice(0, 5).to_pylist():
            c.examples.append(v)
    return c


def decide_type(c: ColumnCounts, numeric_share: float) -> str:
    """'int64', 'float64', 'bool', 'string' or 'nested' for a column's counts.

    A column is numeric when every present cell is a number, or when at least
    ``numeric_share`` of them are, or at least half are and the rest are at
    most 3 distinct tokens (then the others are DS109 findings) -- unless its
    numbers are all whole and some of the rest are codes (:func:`is_coded_ids`):
    then it is text.
    """
    if c.nested:
        return "nested"
    present = c.cells - c.missing
    if present == 0:
        return "string"
    if c.boolean == present:
        return "bool"
    if mostly_numeric(c, numeric_share) and not is_coded_ids(c):
        return "int64" if c.integer == c.numeric else "float64"
    return "string"


def mostly_numeric(c: ColumnCounts, numeric_share: float) -> bool:
    """True when the column's present cells are numbers, save a few odd tokens."""
    present = c.cells - c.missing
    # e.g. '?' or 'unknown' in a numeric column; needs enough numbers to be sure
    few_odd = len(c.examples) <= 3 and c.numeric >= 0.5 * present and c.numeric >= 8
    return c.numeric == present or (c.numeric > 0 and (c.numeric >= numeric_share * present or few_odd))


def is_coded_ids(c: ColumnCounts) -> bool:
    """Whole numbers with some codes among them ('136A', 'c168', 'C', '5+'):
    identifiers or categories, not a measurement with stray garbage."""
    return c.codes > 0 and c.numeric > 0 and c.integer == c.numeric


@dataclass
class Converted:
    """A typed column of one batch, with masks (numpy bool) of missing and non-numeric cells."""

    array: object
    missing: object | None = None
    non_numeric: object | None = None


def convert_column(arr, typ: str, missing_tokens=None) -> Converted:
    """Apply a decided type to an all-string Arrow array; ``missing_tokens`` become nulls."""
    import numpy as np
    import pyarrow as pa
    import pyarrow.compute as pc

    if typ == "nested":
        return Converted(arr)
    if typ == "string":
        # a missing cell stays null, as JSONL and Parquet keep it: never ''
        norm = _normalized(arr.fill_null(""))
        missing = pc.is_in(norm, value_set=pa.array(list(missing_tokens or MISSING_TOKENS)))
        if not pc.any(missing).as_py():
            return Converted(arr)
        return Converted(pc.if_else(missing, pa.scalar(None, pa.string()), arr), to_numpy(missing))
    if typ in ("int64", "float64") and missing_tokens is None:
        fast = _cast_all(arr, pa.int64() if typ == "int64" else pa.float64())
        if fast is not None:
            return Converted(fast, None, np.zeros(len(arr), bool))
    norm = _normalized(arr.fill_null(""))
    missing = pc.is_in(norm, value_set=pa.array(list(missing_tokens or MISSING_TOKENS)))
    if typ == "bool":
        out = pc.if_else(missing, pa.scalar(None, pa.bool_()), pc.equal(norm, "true"))
        return Converted(out, to_numpy(missing), None)
    pattern = INT_RE if typ == "int64" else FLOAT_RE
    ok = pc.match_substring_regex(norm, pattern)
    bad = pc.and_(pc.invert(missing), pc.invert(ok))
    values = pc.if_else(ok, norm, pa.scalar(None, pa.string()))
    if typ == "float64":
        # 'inf'/'infinity'/'nan' in any case: pyarrow parses the lower-cased form
        out = pc.cast(values, pa.float64())
    else:
        out = pc.cast(values, pa.int64())
    return Converted(out, to_numpy(missing),
                     to_numpy(bad) if pc.any(bad).as_py() else np.zeros(len(arr), bool))
