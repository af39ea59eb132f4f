"""``--format github``: GitHub Actions workflow commands (annotations), and the Markdown
summary appended to ``$GITHUB_STEP_SUMMARY``."""

from __future__ import annotations

import os
from typing import TYPE_CHECKING, Any

from datasan.outputs.digest import EXAMPLES
from datasan.outputs.escape import printable

if TYPE_CHECKING:  # pragma: no cover
    from datasan.outputs.digest import Case
    from datasan.outputs.view import FindingsView

#: annotation lines printed by --format github, the verdict included
MAX_ANNOTATIONS = 50
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


def _escape_data(s: str) -> str:
    # GitHub's workflow-command escaping; control characters were made visible first
    return s.replace("%", "%25").replace("\r", "%0D").replace("\n", "%0A")


def _escape_prop(s: str) -> str:
    return _escape_data(printable(s)).replace(":", "%3A").replace(",", "%2C")


def _file_for(view: "FindingsView", source: str) -> str:
    """The finding's file relative to the current folder (the repository root in CI), posix."""
    root = view.result.summary.path or ""
    full = os.path.join(root, source) if os.path.isdir(root) else root
    try:
        rel = os.path.relpath(full)
    except ValueError:  # another drive on Windows
        rel = full
    return rel.replace(os.sep, "/")


def _level(case: "Case") -> str:
    if case.failing:
        return "error"
    if case.severity == "info" or not case.new:
        return "notice"
    return "warning"


def render_github(view: "FindingsView") -> str:
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
    groups = []
    for c in view.cases:
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
            props.append(f"file={_escape_prop(_file_for(view, c.source))}")
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
    out.append(f"::notice title=datasan::{_escape_data(_verdict_line(view))}")
    return "\n".join(out) + "\n"


def _verdict_line(view: "FindingsView") -> str:
    s, v = view.result.summary, view.verdict
    return (f"datasan {'passed' if v.passed else 'FAILED'}: {s.samples} samples, {s.kept} kept, "
            f"{s.quarantined} quarantined; {v.failing_findings} finding(s) fail the gate (fail-on {v.fail_on}).")




def write(view: "FindingsView", out_dir: str | None, console: Any, quiet: bool = False) -> None:
    """Print the annotations; append the Markdown summary to ``$GITHUB_STEP_SUMMARY`` when set."""
    console.file.write(render_github(view))
    append_step_summary(view, out_dir)


def append_step_summary(view: "FindingsView", out_dir: str | None = None) -> str | None:
    """Append the Markdown summary to ``$GITHUB_STEP_SUMMARY`` when it is set; returns the path."""
    from datasan.outputs.formats.markdown import render_markdown

    path = os.environ.get("GITHUB_STEP_SUMMARY")
    if not path:
        return None
    with open(path, "a", encoding="utf-8") as f:
        f.write(render_markdown(view, out_dir) + "\n")
    return path
