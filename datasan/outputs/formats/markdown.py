"""``--format markdown``: a summary for PR comments and ``$GITHUB_STEP_SUMMARY``."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from datasan.outputs.digest import EXAMPLES
from datasan.outputs.escape import printable

if TYPE_CHECKING:  # pragma: no cover
    from datasan.outputs.view import FindingsView

#: sources listed in the Markdown table of sources that lost samples
SOURCES_SHOWN = 20


def _md_cell(s: str) -> str:
    return printable(s).replace("|", "\\|").replace("<", "&lt;")


def render_markdown(view: "FindingsView", out_dir: str | None = None) -> str:
    """Verdict, counts, the sources that lost samples (worst first), one table row per rule with
    its kinds of message and its new and failing counts."""
    from datasan.outputs.digest import spread

    summary, v = view.result.summary, view.verdict
    lines = [f"## datasan: {'✅ passed' if v.passed else '❌ failed'}", ""]
    lines.append(f"{summary.samples:,} samples in {len(summary.sources)} source(s): "
                 f"{summary.kept:,} kept, {summary.quarantined:,} quarantined "
                 f"({v.quarantined_fraction:.2%}). Gate: fail-on `{v.fail_on}`"
                 + (f", max quarantine fraction {v.max_quarantine_fraction:g} per source"
                    if v.max_quarantine_fraction is not None else "")
                 + (f", max total quarantine fraction {v.max_total_quarantine_fraction:g}"
                    if v.max_total_quarantine_fraction is not None else "")
                 + (", against a baseline" if v.baseline else "") + ".")
    lines.append("")
    losing = [s for s in view.sources if s.quarantined]
    if losing:
        lines += ["| source | seen | kept | quarantined | lost |", "|---|---:|---:|---:|---:|"]
        for s in losing[:SOURCES_SHOWN]:
            lines.append(f"| {_md_cell(s.source)} | {s.seen:,} | {s.kept:,} | {s.quarantined:,} | {s.lost:.1%} |")
        if len(losing) > SOURCES_SHOWN:
            lines.append(f"| ... and {len(losing) - SOURCES_SHOWN:,} more | | | "
                         f"{sum(s.quarantined for s in losing[SOURCES_SHOWN:]):,} | |")
        lines.append("")
    counts = view.rule_counts()
    if view.rules:
        lines += ["| code | check | severity | findings | new | failing | examples |",
                  "|---|---|---|---:|---:|---:|---|"]
        for d in view.rules:
            ex = []
            for k in d.kinds[:EXAMPLES]:
                how = spread(k)
                if len(how) > 1:
                    how = [how[0].rstrip(":") + ": " + ", ".join(how[1:])]
                ex.append(_md_cell(k.example) + (f" ({_md_cell(how[0])})" if how else ""))
            if len(d.kinds) > EXAMPLES:
                ex.append(f"... and {sum(k.count for k in d.kinds[EXAMPLES:]):,} more")
            c = counts[d.code]
            lines.append(f"| {d.code} | {c.name} | {d.severity} | {d.count} | {c.new} | {c.failing} | "
                         f"{'<br>'.join(ex)} |")
    else:
        lines.append("No findings.")
    if not v.passed:
        lines += ["", "> " + _md_cell(view.gate_summary())]
    if out_dir:
        lines += ["", f"Outputs: `{printable(out_dir)}/` (findings.parquet, quarantine.parquet/.csv, clean/, "
                      "stats.json, report.json)."]
    return "\n".join(lines) + "\n"


def write(view: "FindingsView", out_dir: str | None, console: Any, quiet: bool = False) -> None:
    """Print :func:`render_markdown` on stdout."""
    console.file.write(render_markdown(view, out_dir))
