"""``--format junit``: JUnit XML for GitLab, Jenkins and Azure (a testsuite per rule, a testcase
per rule and source)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from datasan.outputs.escape import printable

if TYPE_CHECKING:  # pragma: no cover
    from datasan.outputs.view import FindingsView


def render_junit(view: "FindingsView") -> str:
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

    from datasan.rules import RULES

    root = ET.Element("testsuites", name="datasan")
    suites: dict[str, Any] = {}
    for c in sorted(view.cases, key=lambda c: (c.code, c.source or "")):
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
    if view.verdict.quarantine_reason:
        f = ET.SubElement(case, "failure", message="too much quarantined", type="max-quarantine-fraction")
        f.text = printable(view.gate_summary())
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




def write(view: "FindingsView", out_dir: str | None, console: Any, quiet: bool = False) -> None:
    """Print :func:`render_junit` on stdout."""
    console.file.write(render_junit(view))
