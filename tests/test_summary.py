"""The terminal summary: sources worst first, repeated messages collapsed, --quiet, 80 columns."""

from __future__ import annotations

import io

import pyarrow as pa
import pytest
from rich.console import Console
from typer.testing import CliRunner

from datasan.cli import app
from datasan.findings import schema
from datasan.outputs.digest import rule_digests, source_losses, spread
from datasan.outputs.formats.text import SOURCES_SHOWN, _print_sources

runner = CliRunner()


@pytest.fixture
def data(tmp_path, monkeypatch):
    """a.csv: 30 duplicate rows and a NaN; b.csv: 10 duplicates; n0..n2.csv: no target column."""
    monkeypatch.chdir(tmp_path)
    d = tmp_path / "d"
    d.mkdir()
    (d / "a.csv").write_text("a,label\n" + "5,1\n" * 31 + "nan,0\n" + "1,0\n")
    (d / "b.csv").write_text("a,label\n" + "7,0\n" * 11 + "1,1\n")
    for i in range(3):
        (d / f"n{i}.csv").write_text("x,z\n1,2\n3,4\n")
    return d


def scan_text(*args):
    r = runner.invoke(app, ["scan", "d", "--no-probe", "--workers", "1", "--out", "o", *args],
                      env={"COLUMNS": "80"})
    assert r.exit_code == 1, r.output
    return r.stdout.splitlines()


def block(lines, title):
    """The lines of the section that starts with ``title``, up to the blank line."""
    start = next(i for i, line in enumerate(lines) if line.startswith(title))
    end = lines.index("", start)
    return lines[start:end]


def test_summary_at_80_columns(data):
    lines = scan_text()
    assert max(len(line) for line in lines) <= 80
    assert all(line == line.rstrip() for line in lines)  # no padding for CI logs to keep
    assert block(lines, "Sources") == [
        "Sources (5, worst first)",
        "  seen kept quarantined   lost  source",
        "    33   32           1   3.0%  a.csv",
        "    12   12           0   0.0%  b.csv",
        "     2    2           0   0.0%  n0.csv",
        "     2    2           0   0.0%  n1.csv",
        "     2    2           0   0.0%  n2.csv",
    ]
    findings = block(lines, "Findings")
    # a message shorter than the width stays on one line; bulk duplicates get one line per source
    i = findings.index("DS110 duplicate-row (warning): 40")
    assert findings[i + 1:i + 5] == ["    a.csv#1: Row 1 is an exact duplicate of row 0.",
                                     "      x40 like this:",
                                     "        30 in a.csv",
                                     "        10 in b.csv"]
    assert "    a.csv#31: Feature 'a' is NaN." in findings
    # the same advice for three tables is shown once, with its count
    i = findings.index("DS112 no-target (info): 3")
    assert findings[i + 1].startswith("    n0.csv has no target column")
    assert "      x3 like this, one in each of 3 sources" in findings[i + 2:i + 4]
    assert not any(line.startswith("    n1.csv") for line in findings)
    assert lines[-1] == "FAILED: 1 finding(s) at or above error; 1 of 51 samples quarantined (2.0%)."


def test_quiet_prints_the_verdict_only(data):
    assert scan_text("--quiet") == ["FAILED: 1 finding(s) at or above error; 1 of 51 samples quarantined (2.0%)."]
    r = runner.invoke(app, ["report", "o", "-q", "--fail-on", "never"])
    assert r.exit_code == 0
    assert r.stdout.splitlines() == ["PASSED (fail-on never): 1 of 51 samples quarantined (2.0%)."]


def test_quiet_keeps_stderr_free_in_other_formats(data):
    r = runner.invoke(app, ["scan", "d", "--no-probe", "--workers", "1", "--out", "o", "--format", "json", "-q"])
    assert r.exit_code == 1 and r.stderr == ""
    r = runner.invoke(app, ["scan", "d", "--no-probe", "--workers", "1", "--out", "o", "--format", "json"])
    assert "datasan gate failed" in r.stderr


def test_sources_worst_first_and_capped():
    report = {"sources": [{"source": f"s{i:02d}.csv", "seen": 100, "kept": 100 - i, "quarantined": i}
                          for i in range(SOURCES_SHOWN + 5)]
              + [{"source": "broken.parquet", "seen": 0, "kept": 0, "quarantined": 0}]}
    order = [s.source for s in source_losses(report)]
    assert order[:3] == ["s19.csv", "s18.csv", "s17.csv"] and order[-2:] == ["broken.parquet", "s00.csv"]  # ties by name
    console = Console(file=io.StringIO(), width=80)
    _print_sources(source_losses(report), console)
    lines = console.file.getvalue().splitlines()
    assert lines[0] == "Sources (21, worst first)"
    assert lines[2] == "   100   81          19  19.0%  s19.csv"
    assert len(lines) == 2 + SOURCES_SHOWN + 2  # title, header, rows, the rest summed, a blank line
    assert lines[-2] == "  ... and 6 more source(s), 10 sample(s) quarantined in them."


def findings_table(rows):
    cols = {name: [r.get(name) for r in rows] for name in schema().names}
    return pa.table(cols, schema=schema())


def test_digest_collapses_repeated_messages():
    rows = [dict(code="DS112", check="no-target", severity="info", source=f"t/{i}.csv",
                 message=f"t/{i}.csv has no target column; label checks skipped. Pass --target NAME.")
            for i in range(120)]
    rows += [dict(code="DS110", check="duplicate-row", severity="warning", source=src, sample=f"{src}#{r}", row=r,
                  message=f"Row {r} is an exact duplicate of row {r // 2}.")
             for src, n in (("big.csv", 30_000), ("small.csv", 7_634)) for r in range(1, n + 1)]
    dup, no_target = rule_digests(findings_table(rows))
    assert (dup.code, dup.count, len(dup.kinds)) == ("DS110", 37_634, 1)
    assert dup.kinds[0].example == "big.csv#1: Row 1 is an exact duplicate of row 0."
    assert spread(dup.kinds[0]) == ["x37,634 like this:", "30,000 in big.csv", "7,634 in small.csv"]
    assert (no_target.code, no_target.count, len(no_target.kinds)) == ("DS112", 120, 1)
    assert spread(no_target.kinds[0]) == ["x120 like this, one in each of 120 sources"]


def test_digest_keeps_different_messages_apart():
    rows = [dict(code="DS109", check="non-numeric-value", severity="error", source="t.csv", row=r,
                 sample=f"t.csv#{r}", message=f"Column 'f' holds {cell!r}, which is not a number.")
            for r, cell in enumerate(["abc", "abc", "xyz"])]
    (d,) = rule_digests(findings_table(rows))
    assert [(k.example, k.count) for k in d.kinds] == [
        ("t.csv#0: Column 'f' holds 'abc', which is not a number.", 2),
        ("t.csv#2: Column 'f' holds 'xyz', which is not a number.", 1)]
    assert spread(d.kinds[0]) == ["x2 like this in t.csv"] and spread(d.kinds[1]) == []
