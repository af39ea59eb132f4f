"""Machine-readable renderings of a scan for CI: json, github, junit, markdown.

Every renderer returns the text to print on stdout (the CLI prints it; progress
and logs go to stderr).  Which findings fail the gate comes from
:meth:`ScanResult.gating_mask`, so every format agrees with the exit code.
"""

from __future__ import annotations

import json
import os
from typing import Any

from datasan.outputs.digest import EXAMPLES
from datasan.outputs.escape import printable

FORMATS = ("text", "json", "github", "junit", "markdown")
#: annotation lines printed by --format github, the verdict included
MAX_ANNOTATIONS = 50
#: sources listed in the Markdown table of sources that lost samples
SOURCES_SHOWN = 20
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
    """report.json's document (counts, sources, gate verdict); ASCII, so control characters
    and undecodable bytes of file names are JSON escapes, never raw."""
    return json.dumps(result.report, indent=2, default=str, ensure_ascii=True) + "\n"


def _escape_data(s: str) -> str:
    # GitHub's workflow-command escaping; control characters were made visible first
    return s.replace("%", "%25").replace("\r", "%0D").replace("\n", "%0A")


def _escape_prop(s: str) -> str:
    return _escape_data(printable(s)).replace(":", "%3A").replace(",", "%2C")


def _file_for(result, source: str) -> str:
    """The finding's file relative to the current folder (the repository root in CI), posix."""
    root = result.report.get("path") or ""
    full = os.path.join(root, source) if os.path.isdir(root) else root
    try:
        rel = os.path.relpath(full)
    except ValueError:  # another drive on Windows
        rel = full
    return rel.replace(os.sep, "/")


def _level(case) -> str:
    if case.failing:
        return "error"
    if case.severity == "info" or not case.new:
        return "notice"
    return "warning"


def render_github(result) -> str:
    """GitHub Actions workflow commands: one annotation per (level, rule, file), at most
    :data:`MAX_ANNOTATIONS` lines in all (GitHub shows only a few per step anyway).

    A (rule, file) with findings that fail the gate is an ``::error``; other
    errors and warnings ``::warning``; info findings and findings already in
    the baseline ``::notice``.  Each annotation gives the count and the first
    findings; ``file`` is relative to the current folder, ``line`` the 1-based
    line of the first finding in a CSV or label file (see :func:`source_line`).
    A last notice carries the verdict.  The full list is in findings.parquet,
    the per-rule table in the step summary (``--format markdown``).
    """
    from datasan.outputs.digest import cases

    groups = []
    for c in cases(result):
        level = _level(c)
        if level == "error" and c.failing < c.count:  # part of it fails: annotate the rest apart
            groups.append(("error", c, c.failing, c.failing_examples))
            groups.append(("notice" if c.severity == "info" else "warning", c, c.count - c.failing,
                           c.other_examples))
        else:
            groups.append((level, c, c.count, c.failing_examples + c.other_examples))
    rank = {"error": 0, "warning": 1, "notice": 2}
    groups.sort(key=lambda g: (rank[g[0]], -g[2]))
    out = []
    room = MAX_ANNOTATIONS - 1  # the verdict
    if len(groups) > room:
        room -= 1  # and a line saying what was left out
    for level, c, n, examples in groups[:room]:
        props = []
        if c.source:
            props.append(f"file={_escape_prop(_file_for(result, c.source))}")
            line = source_line(c.source, c.first_row)
            if line is not None:
                props.append(f"line={line}")
        props.append(f"title={_escape_prop(f'{c.code} {c.check}' + (f' ({n:,} findings)' if n > 1 else ''))}")
        text = "\n".join(examples[:EXAMPLES])
        if n > len(examples[:EXAMPLES]):
            text += f"\n... and {n - len(examples[:EXAMPLES]):,} more (findings.parquet has every finding)"
        out.append(f"::{level} {','.join(props)}::{_escape_data(text)}")
    left = groups[room:]
    if left:
        out.append(f"::notice title=datasan::{_escape_data(f'{len(left):,} more annotation(s) of ' f'{sum(g[2] for g in left):,} finding(s) not shown: see the step summary or findings.parquet.')}")
    verdict = "passed" if result.passed else "FAILED"
    out.append(f"::notice title=datasan::{_escape_data(_verdict_line(result, verdict))}")
    return "\n".join(out) + "\n"


def _verdict_line(result, verdict: str) -> str:
    rep = result.report
    return (f"datasan {verdict}: {rep.get('samples', 0)} samples, {rep.get('kept', 0)} kept, "
            f"{rep.get('quarantined', 0)} quarantined; {result.gate_failures()} finding(s) fail the gate "
            f"(fail-on {result.fail_on}).")


def render_junit(result) -> str:
    """JUnit XML: a testsuite per rule, a testcase per (rule, source).

    A testcase fails with one ``<failure>`` when findings of its rule in its
    source fail the gate (errors by default): the message gives the count, the
    body the first findings.  Other findings go to the testcase's system-out,
    counted, with their first examples.  ``datasan.gate`` (fails when the
    quarantine is over ``max_quarantine_fraction``) is always present.  Text
    from the data is made printable, so the XML stays valid whatever the file
    names hold.
    """
    import xml.etree.ElementTree as ET

    from datasan.outputs.digest import cases
    from datasan.rules import RULES

    root = ET.Element("testsuites", name="datasan")
    suites: dict[str, Any] = {}
    for c in sorted(cases(result), key=lambda c: (c.code, c.source or "")):
        suite = suites.get(c.code)
        if suite is None:
            suite = suites[c.code] = ET.SubElement(root, "testsuite", name=f"{c.code} {RULES[c.code].name}")
        source = printable(c.source) if c.source else "(dataset)"
        case = ET.SubElement(suite, "testcase", classname=f"datasan.{c.code}", name=source)
        if c.failing:
            f = ET.SubElement(case, "failure", type=f"{c.code} {c.check}",
                              message=f"{c.failing:,} {c.check} finding(s) in {source} fail the gate")
            f.text = _with_more(c.failing_examples, c.failing)
        other = c.count - c.failing
        if other:
            head = f"{other:,} {c.severity} finding(s) that do not fail the gate:"
            ET.SubElement(case, "system-out").text = head + "\n" + _with_more(c.other_examples, other)
    gate_suite = ET.SubElement(root, "testsuite", name="datasan gate")
    case = ET.SubElement(gate_suite, "testcase", classname="datasan.gate", name="max-quarantine-fraction")
    if result.quarantine_exceeded():
        f = ET.SubElement(case, "failure", message="too much quarantined", type="max-quarantine-fraction")
        f.text = printable(result.gate_summary())
    totals = {"tests": 0, "failures": 0}
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


def _with_more(examples: list[str], n: int) -> str:
    text = "\n".join(examples)
    if n > len(examples):
        text += f"\n... and {n - len(examples):,} more (findings.parquet has every finding)"
    return text


def _md_cell(s: str) -> str:
    return printable(s).replace("|", "\\|").replace("<", "&lt;")


def render_markdown(result, out_dir: str | None = None) -> str:
    """A Markdown summary for PR comments and ``$GITHUB_STEP_SUMMARY``: verdict, counts, the
    sources that lost samples (worst first), one table row per rule with its kinds of message."""
    from datasan.outputs.digest import rule_digests, source_losses, spread
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
    losing = [s for s in source_losses(rep) if s.quarantined]
    if losing:
        lines += ["| source | seen | kept | quarantined | lost |", "|---|---:|---:|---:|---:|"]
        for s in losing[:SOURCES_SHOWN]:
            lines.append(f"| {_md_cell(s.source)} | {s.seen:,} | {s.kept:,} | {s.quarantined:,} | {s.lost:.1%} |")
        if len(losing) > SOURCES_SHOWN:
            lines.append(f"| ... and {len(losing) - SOURCES_SHOWN:,} more | | | "
                         f"{sum(s.quarantined for s in losing[SOURCES_SHOWN:]):,} | |")
        lines.append("")
    codes = result.findings_table.column("code").to_pylist()
    new, failing = {}, {}
    for c, n_, g in zip(codes, result.new_mask(), result.gating_mask()):
        new[c] = new.get(c, 0) + n_
        failing[c] = failing.get(c, 0) + g
    digests = rule_digests(result.findings_table)
    if digests:
        lines += ["| code | check | severity | findings | new | failing | examples |",
                  "|---|---|---|---:|---:|---:|---|"]
        for d in digests:
            ex = []
            for k in d.kinds[:EXAMPLES]:
                how = spread(k)
                if len(how) > 1:
                    how = [how[0].rstrip(":") + ": " + ", ".join(how[1:])]
                ex.append(_md_cell(k.example) + (f" ({_md_cell(how[0])})" if how else ""))
            if len(d.kinds) > EXAMPLES:
                ex.append(f"... and {sum(k.count for k in d.kinds[EXAMPLES:]):,} more")
            lines.append(f"| {d.code} | {RULES[d.code].name} | {d.severity} | {d.count} | {new[d.code]} | "
                         f"{failing[d.code]} | {'<br>'.join(ex)} |")
    else:
        lines.append("No findings.")
    if not result.passed:
        lines += ["", "> " + _md_cell(result.gate_summary())]
    if out_dir:
        lines += ["", f"Outputs: `{printable(out_dir)}/` (findings.parquet, quarantine.parquet/.csv, clean/, "
                      "stats.json, report.json)."]
    return "\n".join(lines) + "\n"
def append_step_summary(result, out_dir: str | None = None) -> str | None:
    """Append the Markdown summary to ``$GITHUB_STEP_SUMMARY`` when it is set; returns the path."""
    path = os.environ.get("GITHUB_STEP_SUMMARY")
    if not path:
        return None
    with open(path, "a", encoding="utf-8") as f:
        f.write(render_markdown(result, out_dir) + "\n")
    return path
