"""The command line: parses options and calls the library, nothing more.

Exit codes (shared/CONTRACT.md): 0 passed, 1 did not pass the gate, 2 could
not run (bad path, option or config), 3 datasan itself failed.
"""

from __future__ import annotations

import sys
from enum import Enum
from typing import Annotated, Optional

import typer

app = typer.Typer(
    name="datasan",
    help="Find the samples that break a training run (NaN/Inf, corrupt files, bad labels), before it starts.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)


class FailOn(str, Enum):
    error = "error"
    warning = "warning"
    never = "never"


class Task(str, Enum):
    auto = "auto"
    classification = "classification"
    regression = "regression"


class Format(str, Enum):
    text = "text"
    json = "json"


def _split(values: Optional[list[str]]) -> list[str]:
    out: list[str] = []
    for v in values or []:
        out.extend(s.strip() for s in v.split(",") if s.strip())
    return out


@app.command()
def scan(
    path: Annotated[str, typer.Argument(help="Folder (or one file) to scan. It is never written to.")],
    out: Annotated[str, typer.Option("--out", "-o", help="Folder that receives the output files.")] = "datasan-out",
    fail_on: Annotated[FailOn, typer.Option(help="Lowest severity that fails the gate (exit 1).")] = FailOn.error,
    probe: Annotated[bool, typer.Option("--probe/--no-probe", help="Run the probe network over kept samples.")] = True,
    target: Annotated[Optional[str], typer.Option(help="Target column of tables (default: label, target, y, class, labels).")] = None,
    task: Annotated[Task, typer.Option(help="Task of the target; auto decides from the values.")] = Task.auto,
    num_classes: Annotated[Optional[int], typer.Option(help="Number of classes: ids must lie in 0..N-1.")] = None,
    classes: Annotated[Optional[str], typer.Option(help="Comma-separated class names; other labels are errors.")] = None,
    workers: Annotated[int, typer.Option(help="Worker processes (0: all cores).")] = 0,
    select: Annotated[Optional[list[str]], typer.Option(help="Only these rule codes or prefixes (e.g. DS1,DS201).")] = None,
    ignore: Annotated[Optional[list[str]], typer.Option(help="Skip these rule codes or prefixes.")] = None,
    format: Annotated[Format, typer.Option("--format", help="What to print on stdout.")] = Format.text,
    probe_model: Annotated[Optional[str], typer.Option(help="Your probe network: module:factory (see the README).")] = None,
    device: Annotated[str, typer.Option(help="Torch device of the probe: cpu, cuda or cuda:N.")] = "cpu",
    probe_batch_size: Annotated[Optional[int], typer.Option(help="Samples per probe batch (default 32768 rows, 64 images).")] = None,
    probe_seed: Annotated[int, typer.Option(help="Seed of the probe network (results are deterministic for a seed).")] = 0,
) -> None:
    """Scan a dataset, write findings, quarantine, clean data and statistics to --out."""
    from rich.console import Console

    from datasan.errors import UsageError
    from datasan.options import ScanOptions

    err = Console(stderr=True)
    try:
        opts = ScanOptions(
            target=target,
            task=task.value,
            num_classes=num_classes,
            classes=_split([classes]) if classes else None,
            fail_on=fail_on.value,
            workers=workers,
            probe=probe,
            select=_split(select),
            ignore=_split(ignore),
            progress=True,
            probe_model=probe_model,
            device=device,
            probe_batch_size=probe_batch_size,
            probe_seed=probe_seed,
        )
        from datasan.pipeline import scan as run_scan

        result = run_scan(path, opts, out_dir=out)
        result.write(out)
    except UsageError as exc:
        err.print(f"[red]error:[/] {exc}")
        raise typer.Exit(2)
    except Exception as exc:  # a bug in datasan, never bad data
        import traceback

        err.print(traceback.format_exc())
        err.print(f"[red]datasan failed (this is a bug in datasan, not in your data):[/] "
                  f"{type(exc).__name__}: {exc}\nPartial results, if any, are in {out}/.")
        raise typer.Exit(3)
    if format == Format.json:
        import json

        sys.stdout.write(json.dumps(result.report, indent=2, default=str) + "\n")
    else:
        from datasan.outputs.summary import render_summary

        render_summary(result, out, Console())
    raise typer.Exit(0 if result.passed else 1)


@app.command()
def rules(
    format: Annotated[Format, typer.Option("--format", help="text (a table) or json.")] = Format.text,
) -> None:
    """List every rule: code, name, default severity and what it finds."""
    from datasan.rules import RULES

    live = [r for r in RULES.values() if not r.retired]
    if format == Format.json:
        import json

        doc = [{"code": r.code, "name": r.name, "severity": r.severity, "summary": r.summary} for r in live]
        sys.stdout.write(json.dumps(doc, indent=2) + "\n")
        return
    from rich.console import Console
    from rich.table import Table

    table = Table(title="datasan rules")
    for col in ("code", "name", "severity", "summary"):
        table.add_column(col, overflow="fold")
    for r in live:
        table.add_row(r.code, r.name, r.severity, r.summary)
    Console().print(table)


@app.command()
def rule(code: Annotated[str, typer.Argument(help="A rule code such as DS101, or its name.")]) -> None:
    """Explain one rule: what it checks, why it breaks training, how to fix it."""
    from rich.console import Console

    from datasan.rules import RULES

    found = RULES.get(code.upper()) or next((r for r in RULES.values() if r.name == code.lower()), None)
    if found is None:
        Console(stderr=True).print(f"[red]error:[/] unknown rule {code!r}; `datasan rules` lists them.")
        raise typer.Exit(2)
    c = Console()
    c.print(f"[bold]{found.code} {found.name}[/] ({found.severity})")
    c.print(found.summary)
    c.print("\n[bold]What it checks[/]\n" + found.what)
    c.print("\n[bold]Why it breaks training[/]\n" + found.why)
    if found.example:
        c.print("\n[bold]Example[/]\n" + found.example, markup=False)
    c.print("\n[bold]How to fix[/]\n" + found.fix)


def _print_version(value: bool) -> None:
    if value:
        from datasan import __version__

        typer.echo(__version__)
        raise typer.Exit(0)


@app.callback()
def _root(
    version: Annotated[bool, typer.Option("--version", callback=_print_version, is_eager=True,
                                          help="Print the version and exit.")] = False,
) -> None:
    """datasan: dataset sanitation before training."""


def main() -> None:
    """Console-script entry point."""
    app()


if __name__ == "__main__":  # pragma: no cover
    main()
