"""The per-(rule, source) cases and the per-rule gate counts, computed on arrays, agree with a
plain per-finding loop on any findings table (hypothesis)."""

from __future__ import annotations

from dataclasses import dataclass

import pyarrow as pa
from hypothesis import given, settings
from hypothesis import strategies as st

from datasan.outputs.digest import Case, cases, describe, first_per_key
from datasan.outputs.escape import printable
from datasan.outputs.view import FindingsView
from datasan.rules import RULES

CODES = sorted(RULES)[:4]


@dataclass
class Findings:
    """What the view and ``cases`` read of a ScanResult."""

    findings_table: pa.Table
    gating: list[bool]
    new: list[bool]

    def gating_mask(self) -> list[bool]:
        return self.gating

    def new_mask(self) -> list[bool]:
        return self.new


finding = st.tuples(st.sampled_from(CODES), st.sampled_from(["error", "warning"]),
                    st.sampled_from([None, "", "s1", "s2", "s3"]), st.sampled_from([None, "", "a.csv", "b.csv"]),
                    st.one_of(st.none(), st.integers(0, 9)), st.booleans(), st.booleans())


def table_of(rows) -> Findings:
    cols = list(zip(*rows)) if rows else [[]] * 7
    ft = pa.table({"code": pa.array(cols[0], pa.string()), "check": pa.array([RULES[c].name for c in cols[0]], pa.string()),
                   "severity": pa.array(cols[1], pa.string()), "sample": pa.array(cols[2], pa.string()),
                   "source": pa.array(cols[3], pa.string()), "row": pa.array(cols[4], pa.int64()),
                   "message": pa.array([f"m{i % 3} {i}" for i in range(len(rows))], pa.string())})
    return Findings(ft, list(cols[5]), list(cols[6]))


def cases_by_loop(result, examples: int) -> list[Case]:
    ft = result.findings_table.to_pylist()
    out: dict = {}
    for f, gating, new in zip(ft, result.gating, result.new):
        case = out.get((f["code"], f["source"]))
        if case is None:
            case = out[(f["code"], f["source"])] = Case(f["code"], f["check"], f["severity"], f["source"],
                                                        first_row=f["row"])
        case.count += 1
        case.failing += gating
        case.new += new
        bucket = case.failing_examples if gating else case.other_examples
        if len(bucket) < examples:
            bucket.append(describe(f["sample"], f["source"], f["message"]) + ("" if new else " (in baseline)"))
    return list(out.values())


def rule_counts_by_loop(result, examples):
    per: dict = {}
    for f, gating, new in zip(result.findings_table.to_pylist(), result.gating, result.new):
        e = per.setdefault(f["code"], [0, 0, 0, []])
        e[0] += 1
        e[1] += new
        if gating:
            e[2] += 1
            where = f["sample"] or f["source"]
            if where and len(e[3]) < examples and printable(where) not in e[3]:
                e[3].append(printable(where))
    return {c: (n, new, failing, tuple(ex)) for c, (n, new, failing, ex) in sorted(per.items())}


@settings(max_examples=200, deadline=None)
@given(st.lists(finding, max_size=60), st.integers(1, 4))
def test_cases_and_rule_counts_match_a_loop_over_every_finding(rows, examples):
    result = table_of(rows)
    assert cases(result, examples) == cases_by_loop(result, examples)
    got = FindingsView(result).rule_counts(examples)
    assert {c: (r.count, r.new, r.failing, r.failing_examples) for c, r in got.items()} == \
        rule_counts_by_loop(result, examples)


def test_first_per_key_keeps_each_keys_first_positions_in_order():
    import numpy as np

    keys = np.array([5, 1, 5, 5, 1, 7, 5, 1])
    assert first_per_key(keys, 2).tolist() == [0, 1, 2, 4, 5]
    assert first_per_key(keys, 1).tolist() == [0, 1, 5]
    assert first_per_key(np.array([], dtype=np.int64), 3).tolist() == []
