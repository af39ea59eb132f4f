"""CI output formats parsed back: json, github (regex), junit (xml.etree), markdown, step summary."""

from __future__ import annotations

import json
import re
import xml.etree.ElementTree as ET

import pytest
from typer.testing import CliRunner

import datasan
from datasan.cli import app
from datasan.outputs.formats import render
from datasan.outputs.formats.github import render_github as github_of_view
from datasan.outputs.formats.github import source_line
from datasan.outputs.formats.junit import render_junit as junit_of_view
from datasan.outputs.view import FindingsView


def render_github(result):
    return github_of_view(FindingsView(result))


def render_junit(result):
    return junit_of_view(FindingsView(result))

runner = CliRunner()
GH = re.compile(r"^::(error|warning|notice)(?: ([^:]*))?::(.*)$")


@pytest.fixture
def data(tmp_path, monkeypatch):
    """t.csv: NaN in row 1 (line 3), inf in row 3 (line 5); rows 5 and 6 duplicate (a warning);
    j.jsonl: NaN in record 2 (line 3)."""
    monkeypatch.chdir(tmp_path)
    d = tmp_path / "data"
    d.mkdir()
    (d / "t.csv").write_text("a,b,label\n1,2,0\nnan,3,1\n4,5,0\n6,inf,1\n7,8,0\n9,9,1\n9,9,1\n")
    (d / "j.jsonl").write_text('{"x": 1.0, "label": 0}\n{"x": 2.0, "label": 1}\n{"x": NaN, "label": 0}\n')
    return d


def result_of(path, **kw):
    return datasan.scan(path, probe=False, workers=1, **kw)


def parse_github(text):
    out = []
    for line in text.splitlines():
        m = GH.match(line)
        assert m, line
        props = dict(p.split("=", 1) for p in m.group(2).split(",")) if m.group(2) else {}
        out.append((m.group(1), props, m.group(3)))
    return out


def test_source_line():
    assert source_line("a/t.csv", 0) == 2  # header is line 1
    assert source_line("a/t.TSV", 4) == 6
    assert source_line("t.csv.gz", 1) == 3
    assert source_line("labels/img.txt", 0) == 1  # YOLO: one line per box, no header
    assert source_line("x.jsonl", 2) == 3
    assert source_line("x.parquet", 2) is None
    assert source_line("t.csv", None) is None and source_line(None, 3) is None


def test_github_lines(data):
    """One annotation per (rule, file), at the first finding's line, with the count and the first findings."""
    res = result_of(data)
    lines = parse_github(render_github(res))
    errors = sorted((p["file"], int(p["line"]), p["title"], msg) for lvl, p, msg in lines if lvl == "error")
    assert errors == [
        ("data/j.jsonl", 3, "DS101 non-finite-value", "j.jsonl#2: Feature 'x' is NaN."),
        ("data/t.csv", 3, "DS101 non-finite-value (2 findings)",
         "t.csv#1: Feature 'a' is NaN.%0At.csv#3: Feature 'b' is inf."),
    ]
    warnings = [(p["file"], p["title"]) for lvl, p, _ in lines if lvl == "warning"]
    assert warnings == [("data/t.csv", "DS110 duplicate-row")]
    assert len(lines) == 4  # two errors, one warning, the verdict
    assert lines[-1][0] == "notice" and "FAILED" in lines[-1][2]


def test_github_groups_cap_at_50_lines(tmp_path):
    """60 files with 2 errors each: 48 annotations, one line for the 12 left out, the verdict."""
    d = tmp_path / "many"
    d.mkdir()
    for i in range(60):
        (d / f"t{i:02d}.csv").write_text("a,label\n1,0\nnan,1\n2,0\ninf,1\n")
    lines = parse_github(render_github(result_of(d)))
    assert len(lines) == 50
    assert [lvl for lvl, _, _ in lines[:48]] == ["error"] * 48
    assert all(p["title"] == "DS101 non-finite-value (2 findings)" for _, p, _ in lines[:48])
    assert lines[48] == ("notice", {"title": "datasan"}, "12 more annotation(s) of 24 finding(s) not shown: "
                         "see the step summary or findings.parquet.")
    assert "FAILED: 240 samples, 120 kept, 120 quarantined; 120 finding(s)" in lines[49][2]


def test_github_escapes_newlines_and_percent(data):
    import pyarrow as pa

    res = result_of(data)
    t = res.findings_table
    msgs = ["50% bad\nsecond line"] * t.num_rows
    res.findings_table = t.set_column(t.column_names.index("message"), "message", pa.array(msgs))
    text = render_github(res)
    # the message's own newline is shown as \n, the one between two findings is GitHub's %0A
    assert "50%25 bad\\nsecond line%0At.csv#3: 50%25 bad\\nsecond line" in text
    assert all(GH.match(line) for line in text.splitlines())


def test_github_baseline_findings_are_notices(data, tmp_path):
    datasan.scan(data, out_dir=tmp_path / "base", probe=False, workers=1)
    res = result_of(data, baseline=str(tmp_path / "base"))
    lines = parse_github(render_github(res))
    assert [lvl for lvl, _, _ in lines[:-1]] == ["notice"] * (len(lines) - 1)
    assert all(msg.endswith("(in baseline)") for _, _, msg in lines[:-1])
    assert "passed" in lines[-1][2]


def test_junit_one_failure_per_rule_and_source(data):
    res = result_of(data)
    root = ET.fromstring(render_junit(res))
    assert root.tag == "testsuites"
    cases = {(c.get("classname"), c.get("name")): c for c in root.iter("testcase")}
    t_fail = cases[("datasan.DS101", "t.csv")].findall("failure")
    assert len(t_fail) == 1
    assert t_fail[0].get("message") == "2 non-finite-value finding(s) in t.csv fail the gate"
    assert t_fail[0].text.splitlines() == ["t.csv#1: Feature 'a' is NaN.", "t.csv#3: Feature 'b' is inf."]
    assert len(cases[("datasan.DS101", "j.jsonl")].findall("failure")) == 1
    assert int(root.get("failures")) == 2  # testcases that fail: (DS101, t.csv) and (DS101, j.jsonl)
    assert int(root.get("tests")) == len(cases)
    assert len(root.findall(".//failure")) == 2
    gate = cases[("datasan.gate", "max-quarantine-fraction")]
    assert gate.find("failure") is None
    # warnings are reported, not failed
    dup = cases[("datasan.DS110", "t.csv")]
    assert dup.find("failure") is None
    assert dup.find("system-out").text.splitlines() == [
        "1 warning finding(s) that do not fail the gate:", "t.csv#6: Row 6 is an exact duplicate of row 5."]
    for suite in root.findall("testsuite"):
        assert int(suite.get("tests")) == len(suite.findall("testcase"))


def test_junit_caps_examples(tmp_path):
    d = tmp_path / "d"
    d.mkdir()
    (d / "t.csv").write_text("a,label\n" + "nan,0\n" * 1104 + "1,1\n")
    root = ET.fromstring(render_junit(result_of(d)))
    (failure,) = root.findall(".//failure")
    assert failure.get("message") == "1,104 non-finite-value finding(s) in t.csv fail the gate"
    assert failure.text.splitlines() == ["t.csv#0: Feature 'a' is NaN.", "t.csv#1: Feature 'a' is NaN.",
                                         "t.csv#2: Feature 'a' is NaN.",
                                         "... and 1,101 more (findings.parquet has every finding)"]


def test_junit_quarantine_fraction_failure(data):
    res = result_of(data, max_quarantine_fraction=0.1)  # 3 of 10 quarantined
    root = ET.fromstring(render_junit(res))
    assert len(root.findall(".//failure")) == 1
    gate = next(c for c in root.iter("testcase") if c.get("classname") == "datasan.gate")
    assert "more than max_quarantine_fraction 0.1" in gate.find("failure").text


def test_markdown_table(data):
    res = result_of(data)
    md = render(res, "markdown", "out")
    assert md.startswith("## datasan: ❌ failed")
    rows = [line for line in md.splitlines() if line.startswith("| DS")]
    ds101 = next(r for r in rows if r.startswith("| DS101 |"))
    cells = [c.strip() for c in ds101.strip("|").split("|")]
    assert cells[:6] == ["DS101", "non-finite-value", "error", "3", "3", "3"]
    assert "10 samples in 2 source(s): 7 kept, 3 quarantined (30.00%)" in md


def test_json_format_is_the_report(data):
    res = result_of(data)
    doc = json.loads(render(res, "json"))
    assert doc["passed"] is False and doc["quarantined"] == 3
    assert doc["findings"]["by_code"]["DS101"] == 3


@pytest.mark.parametrize("fmt", ["json", "github", "junit", "markdown", "text"])
def test_cli_formats_on_stdout(data, fmt, tmp_path, monkeypatch):
    summary = tmp_path / "summary.md"
    monkeypatch.setenv("GITHUB_STEP_SUMMARY", str(summary))
    r = runner.invoke(app, ["scan", "data", "--no-probe", "--workers", "1", "--format", fmt])
    assert r.exit_code == 1
    out = r.stdout
    if fmt == "json":
        assert json.loads(out)["quarantined"] == 3
    elif fmt == "github":
        assert len([x for x in parse_github(out) if x[0] == "error"]) == 2  # (DS101, t.csv), (DS101, j.jsonl)
        assert summary.read_text().startswith("## datasan: ❌ failed")
    elif fmt == "junit":
        assert len(ET.fromstring(out).findall(".//failure")) == 2
    elif fmt == "markdown":
        assert out.startswith("## datasan")
    else:
        assert "FAILED" in out
    if fmt != "github":
        assert not summary.exists()
    if fmt != "text":
        assert "datasan gate failed" in r.stderr


def test_cli_baseline_and_max_quarantine_fraction(data):
    assert runner.invoke(app, ["scan", "data", "--no-probe", "--workers", "1", "--out", "b"]).exit_code == 1
    r = runner.invoke(app, ["scan", "data", "--no-probe", "--workers", "1", "--baseline", "b/findings.parquet"])
    assert r.exit_code == 0, r.output
    # per source: j.jsonl loses 1 of 3 (33.3 %), t.csv 2 of 7; in total 3 of 10
    r = runner.invoke(app, ["scan", "data", "--no-probe", "--workers", "1", "--max-quarantine-fraction", "0.34"])
    assert r.exit_code == 0, r.output
    r = runner.invoke(app, ["scan", "data", "--no-probe", "--workers", "1", "--max-quarantine-fraction", "0.3"])
    assert r.exit_code == 1
    assert "j.jsonl lost 1 of 3 samples" in r.output
    r = runner.invoke(app, ["scan", "data", "--no-probe", "--workers", "1", "--max-total-quarantine-fraction", "0.3"])
    assert r.exit_code == 0, r.output
    r = runner.invoke(app, ["scan", "data", "--no-probe", "--workers", "1", "--max-total-quarantine-fraction", "0.29"])
    assert r.exit_code == 1
    r = runner.invoke(app, ["scan", "data", "--no-probe", "--workers", "1", "--baseline", "missing.parquet"])
    assert r.exit_code == 2 and "no findings file" in r.output


def test_report_command_renders_a_finished_scan(data):
    assert runner.invoke(app, ["scan", "data", "--no-probe", "--workers", "1", "--out", "o"]).exit_code == 1
    r = runner.invoke(app, ["report", "o", "--format", "junit"])
    assert r.exit_code == 1
    assert len(ET.fromstring(r.stdout).findall(".//failure")) == 2
    r = runner.invoke(app, ["report", "o", "--format", "json", "--max-quarantine-fraction", "0.34"])
    assert r.exit_code == 0 and json.loads(r.stdout)["gate"]["max_quarantine_fraction"] == 0.34
    r = runner.invoke(app, ["report", "o", "--format", "json", "--max-total-quarantine-fraction", "0.3"])
    assert r.exit_code == 0 and json.loads(r.stdout)["gate"]["max_total_quarantine_fraction"] == 0.3
    r = runner.invoke(app, ["report", "o", "--format", "github", "--baseline", "o"])
    assert r.exit_code == 0 and "::error" not in r.stdout
    assert runner.invoke(app, ["report", "o", "--fail-on", "never"]).exit_code == 0
    r = runner.invoke(app, ["report", "missing"])
    assert r.exit_code == 2 and "not a complete datasan output folder" in r.output


def test_real_subprocess_keeps_stdout_machine_readable(data, tmp_path):
    """Progress and logs go to stderr: stdout of --format github is nothing but workflow commands."""
    import os
    import subprocess
    import sys
    from pathlib import Path

    env = dict(os.environ, PYTHONPATH=str(Path(__file__).resolve().parent.parent))
    env.pop("GITHUB_STEP_SUMMARY", None)
    p = subprocess.run([sys.executable, "-m", "datasan", "scan", "data", "--no-probe", "--workers", "1",
                        "--format", "github"], capture_output=True, text=True, env=env, cwd=tmp_path)
    assert p.returncode == 1, p.stderr
    assert [lvl for lvl, _, _ in parse_github(p.stdout)].count("error") == 2
    assert "datasan gate failed" in p.stderr


HOSTILE = "bad\x1b[31m\rname\u202e.csv"  # ESC (recolours a terminal), CR (rewrites a log line), bidi override
RAW_CONTROL = re.compile("[\x00-\x08\x0b-\x1f\x7f\u202e]")  # what may never reach an output raw


@pytest.mark.parametrize("fmt", ["json", "github", "junit", "markdown", "text"])
def test_control_characters_in_file_names_are_escaped(tmp_path, monkeypatch, fmt):
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("GITHUB_STEP_SUMMARY", raising=False)
    (tmp_path / "h").mkdir()
    (tmp_path / "h" / HOSTILE).write_text("a,label\n1,0\nnan,1\n2,0\n")
    r = runner.invoke(app, ["scan", "h", "--no-probe", "--workers", "1", "--format", fmt])
    assert r.exit_code == 1
    assert not RAW_CONTROL.search(r.stdout) and not RAW_CONTROL.search(r.stderr)
    shown = "bad\\x1b[31m\\rname\\u202e.csv"
    if fmt == "json":
        doc = json.loads(r.stdout)
        assert [s["source"] for s in doc["sources"]] == [HOSTILE]  # JSON escapes lose nothing
    elif fmt == "github":
        (error, verdict) = parse_github(r.stdout)
        assert error[1]["file"] == f"h/{shown}" and error[2] == f"{shown}#1: Feature 'a' is NaN."
    elif fmt == "junit":
        root = ET.fromstring(r.stdout.encode())  # valid XML
        case = next(c for c in root.iter("testcase") if c.get("classname") == "datasan.DS101")
        assert case.get("name") == shown
        assert case.find("failure").text == f"{shown}#1: Feature 'a' is NaN."
    elif fmt == "markdown":
        assert f"| {shown} | 3 | 2 | 1 | 33.3% |" in r.stdout
    else:
        assert f"    {shown}#1: Feature 'a' is NaN." in r.stdout.splitlines()
