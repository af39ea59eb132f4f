"""Machine-readable renderings of a scan for CI: json, github, junit, markdown.

Every renderer returns the text to print on stdout (the CLI prints it; progress
and logs go to stderr).  Which findings fail the gate comes from
:meth:`ScanResult.gating_mask`, so every format agrees with the exit code.
"""

from __future__ import annotations

import json
import os
from typing import Any

FORMATS = ("text", "json", "github", "junit", "markdown")
EXAMPLES = 3
#: table formats whose first line is a header: data row r sits on line r + 2
HEADER_TEXT = (".csv", ".tsv", ".csv.gz", ".tsv.gz", ".csv.bz2", ".tsv.bz2", ".csv.xz", ".tsv.xz")
#: line-per-record formats without a header: record r sits on line r + 1
LINE_TEXT = (".jsonl", ".ndjson", ".txt", ".jsonl.gz", ".ndjson.gz")


def source_line(source: str | None, row: int | None) -> int | None:
    """The 1-based line of ``row`` in ``source`` (CSV/TSV: row + 2; JSONL, YOLO .txt: row + 1), else None.

    A CSV field with an embedded newline shifts later lines; datasan reports the
    data row, so the line is exact for the usual one-line records.
    """
    if source is None or row is None:
        return None
    name = source.lower()
    if name.endswith(HEADER_TEXT):
        return int(row) + 2
    if name.endswith(LINE_TEXT):
        return int(row) + 1
    return None


def _rows(result) -> list[dict[str, Any]]:
    ft = result.findings_table
    cols = {c: ft.column(c).to_pylist() for c in ft.column_names}
    gating = result.gating_mask()
    new = result.new_mask()
    return [dict({c: cols[c][i] for c in cols}, gating=gating[i], new=new[i]) for i in range(ft.num_rows)]


def render(result, fmt: str, out_dir: str | None = None) -> str:
    """Render ``result`` as ``fmt`` (one of FORMATS except text, which the CLI prints with rich)."""
    if fmt == "json":
        return render_json(result)
    if fmt == "github":
        return render_github(result)
    if fmt == "junit":
        return render_junit(result)
    if fmt == "markdown":
        return render_markdown(result, out_dir)
    raise ValueError(f"unknown format {fmt!r}")


def render_json(result) -> str:
    """report.json's document (counts, sources, gate verdict)."""
    return json.dumps(result.report, indent=2, default=str) + "\n"


def _escape_data(s: str) -> str:
    return s.replace("%", "%25").replace("\r", "%0D").replace("\n", "%0A")


def _escape_prop(s: str) -> str:
    return _escape_data(s).replace(":", "%3A").replace(",", "%2C")


def _file_for(result, source: str) -> str:
    """The finding's file relative to the current folder (the repository root in CI), posix."""
    root = result.report.get("path") or ""
    full = os.path.join(root, source) if os.path.isdir(root) else root
    try:
        rel = os.path.relpath(full)
    except ValueError:  # another drive on Windows
        rel = full
    return rel.replace(os.sep, "/")


def render_github(result) -> str:
    """GitHub Actions workflow commands: one ``::error`` / ``::warning`` / ``::notice`` per finding.

    Findings that fail the gate are ``::error``; other errors and warnings
    ``::warning``; info findings and findings already in the baseline
    ``::notice``.  ``file`` is relative to the current folder, ``line`` the
    1-based line of a CSV row or label-file line (see :func:`source_line`).
    """
    out = []
    for r in _rows(result):
        if r["gating"]:
            level = "error"
        elif r["severity"] == "info" or not r["new"]:
            level = "notice"
        else:
            level = "warning"
        props = []
        if r["source"]:
            props.append(f"file={_escape_prop(_file_for(result, r['source']))}")
            line = source_line(r["source"], r["row"])
            if line is not None:
                props.append(f"line={line}")
        props.append(f"title={_escape_prop(r['code'] + ' ' + r['check'])}")
        where = r["sample"] or r["source"]
        msg = (f"{where}: " if where else "") + r["message"] + ("" if r["new"] else " (in baseline)")
        out.append(f"::{level} {','.join(props)}::{_escape_data(msg)}")
    verdict = "passed" if result.passed else "FAILED"
    out.append(f"::notice title=datasan::{_escape_data(_verdict_line(result, verdict))}")
    return "\n".join(out) + "\n"


def _verdict_line(result, verdict: str) -> str:
    rep = result.report
    return (f"datasan {verdict}: {rep.get('samples', 0)} samples, {rep.get('kept', 0)} kept, "
            f"{rep.get('quarantined', 0)} quarantined; {result.gate_failures()} finding(s) fail the gate "
            f"(fail-on {result.fail_on}).")


def render_junit(result) -> str:
    """JUnit XML: a testsuite per rule, a testcase per (rule, source), a ``<failure>`` per finding
    that fails the gate (errors by default); other findings go to the testcase's system-out.

    Two extra testcases keep the report meaningful: ``datasan.gate`` (fails when
    the quarantine is over ``max_quarantine_fraction``) is always present.
    """
    import xml.etree.ElementTree as ET

    from datasan.rules import RULES

    cases: dict[tuple[str, str], list[dict]] = {}
    for r in _rows(result):
        cases.setdefault((r["code"], r["source"] or "(dataset)"), []).append(r)
    root = ET.Element("testsuites", name="datasan")
    suites: dict[str, Any] = {}
    totals = {"tests": 0, "failures": 0}
    for (code, source), rows in sorted(cases.items()):
        suite = suites.get(code)
        if suite is None:
            suite = suites[code] = ET.SubElement(root, "testsuite", name=f"{code} {RULES[code].name}")
        case = ET.SubElement(suite, "testcase", classname=f"datasan.{code}", name=source)
        notes = []
        for r in rows:
            where = r["sample"] or r["source"] or ""
            text = f"{where}: {r['message']}" if where else r["message"]
            if r["row"] is not None:
                text += f" (row {r['row']}" + (f", column {r['column']}" if r["column"] else "") + ")"
            if r["gating"]:
                f = ET.SubElement(case, "failure", message=text[:500], type=f"{code} {r['check']}")
                f.text = text
            else:
                notes.append(f"[{r['severity']}{'' if r['new'] else ', in baseline'}] {text}")
        if notes:
            ET.SubElement(case, "system-out").text = "\n".join(notes)
    gate_suite = ET.SubElement(root, "testsuite", name="datasan gate")
    case = ET.SubElement(gate_suite, "testcase", classname="datasan.gate", name="max-quarantine-fraction")
    if result.quarantine_exceeded():
        f = ET.SubElement(case, "failure", message="too much quarantined", type="max-quarantine-fraction")
        f.text = result.gate_summary()
    for suite in root.findall("testsuite"):
        n_cases = len(suite.findall("testcase"))
        n_fail = sum(1 for c in suite.findall("testcase") if c.find("failure") is not None)  # failed tests
        suite.set("tests", str(n_cases))
        suite.set("failures", str(n_fail))
        suite.set("errors", "0")
        suite.set("skipped", "0")
        totals["tests"] += n_cases
        totals["failures"] += n_fail
    root.set("tests", str(totals["tests"]))
    root.set("failures", str(totals["failures"]))
    root.set("errors", "0")
    ET.indent(root)
    return '<?xml version="1.0" encoding="UTF-8"?>\n' + ET.tostring(root, encoding="unicode") + "\n"


def _md_cell(s: str) -> str:
    return str(s).replace("|", "\\|").replace("\n", " ")


def render_markdown(result, out_dir: str | None = None) -> str:
    """A Markdown summary (verdict, counts, one table row per rule with examples) for PR comments
    and ``$GITHUB_STEP_SUMMARY``."""
    from datasan.rules import RULES

    rep = result.report
    verdict = "✅ passed" if result.passed else "❌ failed"
    lines = [f"## datasan: {verdict}", ""]
    lines.append(f"{rep.get('samples', 0):,} samples in {len(rep.get('sources', []))} source(s): "
                 f"{rep.get('kept', 0):,} kept, {rep.get('quarantined', 0):,} quarantined "
                 f"({result.quarantined_fraction():.2%}). Gate: fail-on `{result.fail_on}`"
                 + (f", max quarantine fraction {result.max_quarantine_fraction:g} per source"
                    if result.max_quarantine_fraction is not None else "")
                 + (f", max total quarantine fraction {result.max_total_quarantine_fraction:g}"
                    if result.max_total_quarantine_fraction is not None else "")
                 + (", against a baseline" if result.baseline is not None else "") + ".")
    lines.append("")
    per: dict[str, dict[str, Any]] = {}
    for r in _rows(result):
        e = per.setdefault(r["code"], {"sev": r["severity"], "n": 0, "new": 0, "gating": 0, "ex": []})
        e["n"] += 1
        e["new"] += r["new"]
        e["gating"] += r["gating"]
        if len(e["ex"]) < EXAMPLES:
            where = r["sample"] or r["source"]
            e["ex"].append(f"`{where}`: {r['message']}" if where else r["message"])
    if per:
        lines += ["| code | check | severity | findings | new | failing | examples |",
                  "|---|---|---|---:|---:|---:|---|"]
        order = {"error": 0, "warning": 1, "info": 2}
        for code, e in sorted(per.items(), key=lambda kv: (order[kv[1]["sev"]], kv[0])):
            ex = "<br>".join(_md_cell(x) for x in e["ex"])
            lines.append(f"| {code} | {RULES[code].name} | {e['sev']} | {e['n']} | {e['new']} | "
                         f"{e['gating']} | {ex} |")
    else:
        lines.append("No findings.")
    if not result.passed:
        lines += ["", "> " + _md_cell(result.gate_summary())]
    if out_dir:
        lines += ["", f"Outputs: `{out_dir}/` (findings.parquet, quarantine.parquet/.csv, clean/, stats.json, "
                      "report.json)."]
    return "\n".join(lines) + "\n"


def append_step_summary(result, out_dir: str | None = None) -> str | None:
    """Append the Markdown summary to ``$GITHUB_STEP_SUMMARY`` when it is set; returns the path."""
    path = os.environ.get("GITHUB_STEP_SUMMARY")
    if not path:
        return None
    with open(path, "a", encoding="utf-8") as f:
        f.write(render_markdown(result, out_dir) + "\n")
    return path
