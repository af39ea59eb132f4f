"""The terminal summary a person reads after a scan."""

from __future__ import annotations

from typing import Any

EXAMPLES = 3


def _per_code(ft) -> dict[str, dict[str, Any]]:
    """code -> count, severity of its first finding and its first EXAMPLES examples.

    Only those few rows become Python objects: millions of duplicate-row
    findings must not cost a Python string each just to be counted.
    """
    import pyarrow.compute as pc

    out: dict[str, dict[str, Any]] = {}
    codes = ft.column("code")
    vc = pc.value_counts(codes)
    for code, n in zip(vc.field("values").to_pylist(), vc.field("counts").to_pylist()):
        examples, severity = [], None
        for i in _first_indices(codes, code, EXAMPLES):
            # a one-row slice is free; take() would concatenate every chunk of the table
            r = ft.slice(i, 1).select(["message", "sample", "source", "severity"]).to_pylist()[0]
            where, m = r["sample"] or r["source"] or "", r["message"]
            severity = severity or r["severity"]
            # many messages already name their file: do not say it twice
            examples.append(f"{where}: {m}" if where and not m.startswith(where) else m)
        out[code] = {"n": n, "sev": severity, "examples": examples}
    return out


def _first_indices(column, value, k: int) -> list[int]:
    """Positions of the first ``k`` entries equal to ``value``, chunk by chunk."""
    import pyarrow.compute as pc

    found: list[int] = []
    offset = 0
    for chunk in column.chunks:
        if len(found) < k:
            hits = pc.indices_nonzero(pc.equal(chunk, value).fill_null(False))
            found.extend(offset + int(j) for j in hits.slice(0, k - len(found)).to_pylist())
        offset += len(chunk)
    return found


def render_summary(result, out_dir: str | None, console) -> None:
    """Print findings per rule (with a few examples), counts, where outputs went and the verdict."""
    from rich.table import Table

    from datasan.rules import RULES

    rep = result.report
    by_code = _per_code(result.findings_table)
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
            why.append(f"{result.quarantined_fraction():.1%} quarantined, more than "
                       f"{result.max_quarantine_fraction:g}")
        console.print(f"[red]FAILED[/]: {'; '.join(why) or 'see above'}.", highlight=False)
