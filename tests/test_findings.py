"""Findings cost a small bounded amount per row: templated runs, capped quotes, contract types."""

from __future__ import annotations

import tracemalloc

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from datasan.checks.tables.duplicates import duplicate_findings
from datasan.findings import Finding, FindingBuffer, quote


def test_quote_caps_a_cell_at_80_characters_with_its_length():
    assert quote("abc") == "'abc'"
    assert quote("x" * 80) == repr("x" * 80)
    assert quote("y" * 1_000_000) == f"{'y' * 80!r}… (1,000,000 characters)"


def test_template_runs_materialise_exact_sentences_in_order():
    fb = FindingBuffer()
    fb.add(Finding("DS002", "t.csv has no data rows.", source="t.csv"))
    fb.add_rows("DS110", "t.csv", np.array([3, 4]), template="Row {0} is an exact duplicate of row {1}.",
                params=(np.array([3, 4]), np.array([0, 1])))
    fb.add_rows("DS101", "t.csv", [7, 9], column="f", template="Feature '{0}' is {1}.",
                params=("f", np.array([np.nan, -np.inf])))
    fb.add_rows("DS109", "t.csv", [8], column="g", template="Column '{0}' holds {1}, which is not a number.",
                params=("g", ["'?'"]))
    t = fb.to_arrow().to_pydict()
    assert t["code"] == ["DS002", "DS110", "DS110", "DS101", "DS101", "DS109"]
    assert t["check"][1] == "duplicate-row" and t["severity"][1:] == ["warning", "warning", "error", "error", "error"]
    assert t["sample"] == [None, "t.csv#3", "t.csv#4", "t.csv#7", "t.csv#9", "t.csv#8"]
    assert t["row"] == [None, 3, 4, 7, 9, 8]
    assert t["column"] == [None, None, None, "f", "f", "g"]
    assert t["message"] == [
        "t.csv has no data rows.",
        "Row 3 is an exact duplicate of row 0.",
        "Row 4 is an exact duplicate of row 1.",
        "Feature 'f' is NaN.",
        "Feature 'f' is -inf.",
        "Column 'g' holds '?', which is not a number.",
    ]
    assert list(fb.error_rows()) == [7, 8, 9]
    assert [e[1] for e in fb.errors()] == ["t.csv#7", "t.csv#9", "t.csv#8"]
    assert [f.message for f in fb][1] == "Row 3 is an exact duplicate of row 0."


def test_a_duplicate_row_holds_16_bytes_until_written():
    n = 200_000
    rows = np.arange(n, dtype=np.int64)
    same = np.zeros(n, dtype=np.uint64)
    tracemalloc.start()
    try:
        before = tracemalloc.get_traced_memory()[0]
        fb = duplicate_findings("big.parquet", rows, same, same, True)
        held = tracemalloc.get_traced_memory()[0] - before
    finally:
        tracemalloc.stop()
    assert len(fb) == n - 1
    assert held <= 16 * n + 4096  # the row and the row it repeats, one int64 each


def test_duplicate_rows_are_exact_in_findings_parquet(scan_to, tmp_path):
    d = tmp_path / "d"
    d.mkdir()
    (d / "t.csv").write_text("a,b,label\n1,2,0\n1,2,0\n3,4,1\n1,2,0\n3,4,2\n3,4,1\n")
    s = scan_to(d)
    dup = s.findings[s.findings["code"] == "DS110"]
    assert dup["row"].tolist() == [1, 3, 5]
    assert dup["message"].tolist() == ["Row 1 is an exact duplicate of row 0.",
                                       "Row 3 is an exact duplicate of row 0.",
                                       "Row 5 is an exact duplicate of row 2."]
    conflict = s.findings[s.findings["code"] == "DS111"]
    assert conflict["message"].tolist() == ["Rows 2 and 4 have identical features but different labels."]


def test_a_huge_cell_is_quoted_short_and_the_message_column_stays_string(scan_to, tmp_path):
    d = tmp_path / "d"
    d.mkdir()
    values = [f"{i}.5" for i in range(30)]
    values[7] = "z" * 1_000_000
    (d / "t.csv").write_text("x,label\n" + "".join(f"{v},0\n" for v in values))
    s = scan_to(d)
    bad = s.findings[s.findings["code"] == "DS109"]
    assert bad["row"].tolist() == [7]
    assert bad["message"].tolist() == [
        f"Column 'x' holds {'z' * 80!r}… (1,000,000 characters), which is not a number."]
    table = pq.read_table(s.out / "findings.parquet")
    assert all(table.schema.field(c).type == pa.string()
               for c in ("code", "check", "severity", "sample", "source", "column", "message"))
    assert s.findings["message"].map(type).eq(str).all()  # plain strings for pandas readers
