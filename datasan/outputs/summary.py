"""The terminal summary a person reads after a scan."""

from __future__ import annotations

from typing import Any

EXAMPLES = 3


def render_summary(result, out_dir: str | None, console) -> None:
    """Print findings per rule (with a few examples), counts, where outputs went and the verdict."""
    from rich.table import Table

    from datasan.rules import RULES

    rep = result.report
    ft = result.findings_table
    codes = ft.column("code").to_pylist()
    messages = ft.column("message").to_pylist()
    samples = ft.column("sample").to_pylist()
    sources = ft.column("source").to_pylist()
    sevs = ft.column("severity").to_pylist()
    by_code: dict[str, dict[str, Any]] = {}
    for c, m, smp, src, s in zip(codes, messages, samples, sources, sevs):
        e = by_code.setdefault(c, {"n": 0, "sev": s, "examples": []})
        e["n"] += 1
        if len(e["examples"]) < EXAMPLES:
            where = smp or src or ""
            # many messages already name their file: do not say it twice
            e["examples"].append(f"{where}: {m}" if where and not m.startswith(where) else m)
    if by_code:
        table = Table(title="Findings", show_lines=False, expand=False)
        table.add_column("code", no_wrap=True)
        table.add_column("check", no_wrap=True)
        table.add_column("severity", no_wrap=True)
        table.add_column("count", justify="right")
        table.add_column("examples", overflow="fold")
        colors = {"error": "red", "warning": "yellow", "info": "cyan"}
        order = {"error": 0, "warning": 1, "info": 2}
        for code, e in sorted(by_code.items(), key=lambda kv: (order[kv[1]["sev"]], kv[0])):
            more = e["n"] - len(e["examples"])
            ex = "\n".join(e["examples"]) + (f"\n... and {more} more" if more > 0 else "")
            table.add_row(code, RULES[code].name, f"[{colors[e['sev']]}]{e['sev']}[/]", f"{e['n']:,}", ex)
        console.print(table)
    else:
        console.print("No findings.")
    console.print(
        f"{rep['samples']:,} samples in {len(rep['sources'])} source(s): "
        f"{rep['kept']:,} kept, {rep['quarantined']:,} quarantined "
        f"({rep['seconds']:.2f} s)."
    )
    probe = rep.get("probe") or {}
    if not probe.get("ran"):
        console.print(f"Probe: not run ({probe.get('reason', 'disabled')}).")
    if out_dir:
        console.print(f"Outputs written to {out_dir}/ (findings.parquet, quarantine.parquet/.csv, clean/, "
                      "stats.json, report.json).")
    if result.passed:
        console.print(f"[green]PASSED[/] (fail-on {result.fail_on})")
    else:
        # the table above already lists every rule with examples: keep the verdict to one line
        n = result.gate_failures()
        why = [f"{n:,} finding(s) at or above {result.fail_on}"] if n else []
        if result.quarantine_exceeded():
            why.append(result.quarantine_verdict())
        console.print(f"[red]FAILED[/]: {'; '.join(why) or 'see above'}.", highlight=False)
