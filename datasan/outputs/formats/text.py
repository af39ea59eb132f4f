"""The terminal summary a person reads after a scan (also in a CI log, often 80 columns wide).

Layout: sources (worst first), then per rule the kinds of message with counts,
then counts, outputs and the verdict.  Nothing is laid out in narrow table
columns, so a long message wraps at the full width instead of a word per line;
variable-width text (a source, a message) always comes last on its line.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from datasan.outputs.digest import EXAMPLES, RuleDigest, SourceLoss, spread

if TYPE_CHECKING:  # pragma: no cover
    from datasan.outputs.view import FindingsView

#: sources listed in the table; the rest are summed in one line
SOURCES_SHOWN = 15
COLORS = {"error": "red", "warning": "yellow", "info": "cyan"}


def write(view: "FindingsView", out_dir: str | None, console: Any, quiet: bool = False) -> None:
    """Print the sources table, findings per rule, counts, where outputs went and the verdict.

    ``quiet``: the verdict line only.
    """
    if not quiet:
        _print_sources(view.sources, console)
        _print_findings(view.rules, console)
        _print_counts(view, out_dir, console)
    console.print(verdict_line(view), style="green" if view.passed else "red", highlight=False, markup=False)


def verdict_line(view: "FindingsView") -> str:
    """One line: PASSED or FAILED, why, and how much was quarantined."""
    s, v = view.result.summary, view.verdict
    q = f"{s.quarantined:,} of {s.samples:,} samples quarantined ({v.quarantined_fraction:.1%})"
    if v.passed:
        return f"PASSED (fail-on {v.fail_on}): {q}."
    why = []
    if v.failing_findings:
        why.append(f"{v.failing_findings:,} finding(s) at or above {v.fail_on}")
    if v.quarantine_reason:
        why.append(v.quarantine_reason)
    return f"FAILED: {'; '.join(why)}; {q}."


def _print_sources(rows: list[SourceLoss], console: Any) -> None:
    from rich.text import Text

    if not rows:
        return
    console.print(Text(f"Sources ({len(rows):,}, worst first)", style="bold"))
    shown = rows[:SOURCES_SHOWN]
    w = max(4, *(len(f"{r.seen:,}") for r in shown))
    console.print(f"  {'seen':>{w}} {'kept':>{w}} {'quarantined':>11} {'lost':>6}  source", highlight=False)
    for r in shown:
        line = Text(f"  {r.seen:>{w},} {r.kept:>{w},} {r.quarantined:>11,} ")
        line.append(f"{r.lost:>6.1%}" if r.seen else f"{'-':>6}", style="red" if r.quarantined else "")
        line.append(f"  {r.source}")
        console.print(line, highlight=False)
    rest = rows[SOURCES_SHOWN:]
    if rest:
        q = sum(r.quarantined for r in rest)
        console.print(f"  ... and {len(rest):,} more source(s), {q:,} sample(s) quarantined in them.",
                      highlight=False)
    console.print()


def _print_findings(digests: list[RuleDigest], console: Any) -> None:
    from rich.text import Text

    from datasan.rules import RULES

    if not digests:
        console.print("No findings.")
        return
    total = sum(d.count for d in digests)
    console.print(Text(f"Findings ({total:,} in {len(digests)} rule(s))", style="bold"))
    for d in digests:
        head = Text(f"{d.code} ", style="bold")
        head.append(f"{RULES[d.code].name} (")
        head.append(d.severity, style=COLORS.get(d.severity, ""))
        head.append(f"): {d.count:,}")
        console.print(head, highlight=False)
        for kind in d.kinds[:EXAMPLES]:
            _print_indented(console, Text(kind.example), 4)
            how = spread(kind)
            for i, line in enumerate(how):
                _print_indented(console, Text(line, style="dim"), 6 if i == 0 else 8)
        more = d.kinds[EXAMPLES:]
        if more:
            _print_indented(console, Text(f"... and {sum(k.count for k in more):,} more of {len(more):,} "
                                          "other kind(s)", style="dim"), 4)
    console.print()


def _print_indented(console: Any, text: Any, indent: int) -> None:
    """``text`` wrapped at the console's width, every line indented (no trailing padding,
    which rich's Padding would add and CI logs would keep)."""
    from rich.text import Text

    for line in text.wrap(console, max(20, console.width - indent)):
        line.rstrip()
        console.print(Text(" " * indent) + line, highlight=False, soft_wrap=True)


def _print_counts(view: "FindingsView", out_dir: str | None, console: Any) -> None:
    s = view.result.summary
    console.print(f"{s.samples:,} samples in {len(s.sources)} source(s): {s.kept:,} kept, "
                  f"{s.quarantined:,} quarantined ({s.seconds:.2f} s).", highlight=False)
    probe = s.probe or {}
    if not probe.get("ran"):
        console.print(f"Probe: not run ({probe.get('reason', 'disabled')}).", highlight=False)
    if out_dir:
        from rich.text import Text

        _print_indented(console, Text(f"Outputs written to {out_dir}/ (findings.parquet has every finding; "
                                      "quarantine.parquet/.csv, clean/, stats.json, report.json)."), 0)
