"""Duplicate rows (DS110) and equal features with different labels (DS111), from row hashes."""

from __future__ import annotations

from datasan.checks.rule import Rule
from datasan.findings import FindingBuffer

# ------------------------------------------------------------------ rules of this module
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
    of its features only (see the table source's row hashing).
    """
    return findings_of_pairs(source, duplicate_pairs(rows, full_hash, feature_hash, has_target))


def findings_of_pairs(source: str, pairs) -> FindingBuffer:
    """The DS110 / DS111 findings of :func:`duplicate_pairs`' arrays (of one table, or those of
    its hash buckets concatenated: the findings come out in row order either way)."""
    dup_rows, dup_of, c_rows, c_first = pairs
    out = FindingBuffer()
    _add_in_row_order(out, DUPLICATE_ROW.code, source, dup_rows, "Row {0} is an exact duplicate of row {1}.",
                      dup_rows, dup_of)
    _add_in_row_order(out, CONFLICTING_DUPLICATE.code, source, c_rows,
                      "Rows {0} and {1} have identical features but different labels.", c_first, c_rows)
    return out


def duplicate_pairs(rows, full_hash, feature_hash, has_target: bool):
    """(duplicate rows, the earlier row each equals, conflicting rows, the earliest row with
    their features) as int64 arrays.

    Exact duplicates have equal features too, so the rows whose feature hash
    repeats hold both kinds.  Everything is numpy over those rows.  Rows with
    equal grouping hashes (the feature hash with a target, else the row hash)
    are all that matter to each other, so the rows may be split by that hash
    into buckets and each bucket's pairs computed apart.
    """
    import numpy as np

    none = np.empty(0, dtype=np.int64)
    if len(rows) < 2:
        return none, none, none, none
    if np.any(rows[1:] < rows[:-1]):
        order = np.argsort(rows, kind="stable")
        rows, full_hash, feature_hash = rows[order], full_hash[order], feature_hash[order]
    pos = _repeated(feature_hash if has_target else full_hash)  # ascending, so rows ascend too
    if pos.size == 0:
        return none, none, none, none
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
    del run_of, dup
    if not has_target:
        return dup_rows, dup_of, none, none
    starts = np.flatnonzero(feat_start)
    earliest_of_group = np.minimum.reduceat(order, starts)  # a group's earliest row
    firsts = order[full_start]
    earliest = earliest_of_group[(np.cumsum(feat_start) - 1)[full_start]]
    conflict = firsts != earliest
    return dup_rows, dup_of, r[firsts[conflict]], r[earliest[conflict]]


def _add_in_row_order(out: FindingBuffer, code: str, source: str, rows, template: str, *params) -> None:
    """Add a run of findings sorted by row (the order a reader expects)."""
    import numpy as np

    if not rows.size:
        return
    if np.any(rows[1:] < rows[:-1]):
        k = np.argsort(rows, kind="stable")
        rows, params = rows[k], tuple(p[k] for p in params)
    out.add_rows(code, source, rows, template=template, params=params)
