"""The command line: parses options and calls the library, nothing more.

Exit codes (docs/outputs.md): 0 passed, 1 did not pass the gate, 2 could
not run (bad path, option or config), 3 datasan itself failed.
"""

from __future__ import annotations

import inspect
import sys
from enum import Enum
from typing import Annotated, Any, Optional

import typer
from typer.core import TyperCommand, TyperGroup


class _NoFlagTypes:
    """Help without a ``<bool>`` type beside flags (``--version``, ``--help``, ``--no-probe``):
    a flag takes no value, so typer's type column only misleads there."""

    def get_params(self, ctx):
        params = super().get_params(ctx)
        for p in params:
            if getattr(p, "is_bool_flag", False) and p.metavar is None:
                p.metavar = ""
        return params


class _Group(_NoFlagTypes, TyperGroup):
    pass


class _Command(_NoFlagTypes, TyperCommand):
    pass


app = typer.Typer(
    name="datasan",
    cls=_Group,
    help="Find the samples that break a training run (NaN/Inf, corrupt files, bad labels), before it starts.",
    no_args_is_help=True,
    # --install-completion / --show-completion for bash, zsh, fish and PowerShell
    add_completion=True,
    pretty_exceptions_enable=False,
)


class FailOn(str, Enum):
    error = "error"
    warning = "warning"
    never = "never"


def _formats() -> type[Enum]:
    from datasan.outputs.formats import FORMATS

    return _choice_type("ScanFormat", tuple(FORMATS))


QUIET_HELP = ("Text format: print only the verdict line. Other formats: no progress bar and no gate "
              "summary on stderr.")


def _choice_type(name: str, choices: tuple[str, ...]) -> type[Enum]:
    """A str Enum of ``choices``: how typer shows ``[a|b|c]`` and completes the values."""
    return Enum(name, {c: c for c in choices}, type=str)  # type: ignore[return-value]


ScanFormat = _formats()


def _option_parameter(name: str, flag) -> inspect.Parameter:
    """The typer parameter of one ScanOptions field's :class:`~datasan.options.Flag`.

    Every such option defaults to None (not given), so the config file's value,
    else the field's default, applies.
    """
    import dataclasses
    import typing

    from datasan.options import ScanOptions, meta_of

    f = next(f for f in dataclasses.fields(ScanOptions) if f.name == name)
    meta = meta_of(f)
    if meta.choices:
        value_type: Any = _choice_type(name.title().replace("_", ""), meta.choices)
    elif flag.repeat:
        value_type = list[str]
    elif flag.type is not None:
        value_type = flag.type
    else:
        hint = typing.get_type_hints(ScanOptions)[name]
        value_type = next((a for a in typing.get_args(hint) if a is not type(None)), hint)
    annotation = Annotated[Optional[value_type], typer.Option(*flag.decls, help=flag.help)]
    return inspect.Parameter(name, inspect.Parameter.KEYWORD_ONLY, default=None, annotation=annotation)


def _scan_parameters(fixed: inspect.Signature) -> inspect.Signature:
    """``scan``'s own parameters with the ScanOptions flags inserted before ``--format``.

    The options' order on ``--help`` is the order of the ScanOptions fields,
    split after ``--ignore`` by the command's own ``--format`` and ``--config``.
    """
    from datasan.options import cli_flags

    options = [_option_parameter(name, flag) for name, flag in cli_flags()]
    split = next(i for i, p in enumerate(options) if p.name == "baseline")
    own = [p for p in fixed.parameters.values() if p.kind is not inspect.Parameter.VAR_KEYWORD]
    head = [p for p in own if p.name in ("path", "out", "force")]
    middle = [p for p in own if p.name in ("format", "config")]
    tail = [p for p in own if p.name not in {q.name for q in head + middle}]
    return fixed.replace(parameters=head + options[:split] + middle + options[split:] + tail)


def scan(
    path: Annotated[str, typer.Argument(help="Folder (or one file) to scan. It is never written to.")],
    *,
    out: Annotated[str, typer.Option("--out", "-o", help="Folder that receives the output files.")] = "datasan-out",
    force: Annotated[bool, typer.Option(
        "--force", help="Write into a non-empty --out that is not a datasan output; files datasan did not "
        "write are still never replaced or removed.")] = False,
    format: Annotated[ScanFormat, typer.Option(
        "--format", help="What to print on stdout: text, json (report), github (annotations), "
        "junit (XML), markdown or html (the page report.html holds).")] = ScanFormat.text,
    config: Annotated[Optional[str], typer.Option(
        "--config", help="Config file (datasan.toml or a pyproject.toml with \\[tool.datasan]); "
        "default: found from the current folder upward.")] = None,
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help=QUIET_HELP)] = False,
    no_cache: Annotated[bool, typer.Option("--no-cache", help="Use no content cache (as --cache off).")] = False,
    **given: Any,
) -> None:
    """Scan a dataset, write findings, quarantine, clean data and statistics to --out."""
    from rich.console import Console

    from datasan.errors import UsageError

    err = Console(stderr=True)
    try:
        from datasan.config import build_options
        from datasan.options import options_from_cli

        opts = build_options(options_from_cli(given), config)
        opts.progress = not quiet
        # the command line caches by default (a Python caller asks for it): see the README
        opts.cache = "off" if no_cache else (opts.cache or "default")
        from datasan.numpy_arrow import keep_pandas_out_of_arrow
        from datasan.pipeline import scan as run_scan

        keep_pandas_out_of_arrow()  # this process reads files, never pandas objects
        result = run_scan(path, opts, out_dir=out, force=force)
        result.write(out)
    except UsageError as exc:
        from rich.markup import escape

        err.print(f"[red]error:[/] {escape(str(exc))}", highlight=False)
        raise typer.Exit(2)
    except KeyboardInterrupt as exc:  # SIGINT, or SIGTERM while the output folder was held
        signum = getattr(exc, "signum", 2)
        err.print(f"interrupted (signal {signum}); nothing new was published to {out}/", highlight=False)
        raise typer.Exit(128 + signum)
    except Exception as exc:  # a bug in datasan, never bad data
        import traceback

        err.print(traceback.format_exc())
        err.print(f"[red]datasan failed (this is a bug in datasan, not in your data):[/] "
                  f"{type(exc).__name__}: {exc}\nNothing new was published to {out}/; partial results, "
                  f"if any, are in its .datasan-staging-* folder (removed by the next run).")
        raise typer.Exit(3)
    _print_result(result, format, out, err, quiet, code=3 if result.internal_errors else None)


scan.__signature__ = _scan_parameters(inspect.signature(scan, eval_str=True))  # type: ignore[attr-defined]
app.command(cls=_Command)(scan)


def _internal_error_message(result, out: str) -> str:
    """Why a scan that wrote every output still exits 3."""
    lines = [f"datasan failed on {len(result.internal_errors)} source(s) (this is a bug in datasan, not "
             "in your data); their files are quarantined under DS011 and every other result is in "
             f"{out}/:"]
    lines += [f"  {e['source']}: {e['error']}" for e in result.internal_errors]
    return "\n".join(lines)


@app.command(cls=_Command)
def report(
    out: Annotated[str, typer.Argument(
        help="An output folder written by `datasan scan` (a path, or a store URI: s3://bucket/out).")] = "datasan-out",
    format: Annotated[ScanFormat, typer.Option(
        "--format", help="text, json, github, junit, markdown or html (as for scan).")] = ScanFormat.text,
    fail_on: Annotated[Optional[FailOn], typer.Option(
        help="Judge again at this severity. [default: the scan's]")] = None,
    baseline: Annotated[Optional[str], typer.Option(
        "--baseline", help="Only findings not in this findings.parquet fail the gate.")] = None,
    max_quarantine_fraction: Annotated[Optional[float], typer.Option(
        "--max-quarantine-fraction", help="Fail only when more than this share of some source is quarantined.")] = None,
    max_total_quarantine_fraction: Annotated[Optional[float], typer.Option(
        "--max-total-quarantine-fraction", help="Fail when more than this share of all samples is quarantined.")] = None,
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help=QUIET_HELP)] = False,
) -> None:
    """Print a finished scan's results again in another format (no rescan); exit 0/1 as scan."""
    from rich.console import Console

    from datasan.errors import UsageError

    err = Console(stderr=True)
    try:
        from datasan.baseline import load_baseline
        from datasan.result import ScanResult

        from datasan.options import check_value

        for name, limit in (("max_quarantine_fraction", max_quarantine_fraction),
                            ("max_total_quarantine_fraction", max_total_quarantine_fraction)):
            if limit is not None:
                try:
                    check_value(name, limit)
                except ValueError as exc:
                    raise UsageError(str(exc)) from None
        result = ScanResult.load(out)
        result.set_gate(fail_on.value if fail_on else None, max_quarantine_fraction,
                        load_baseline(baseline) if baseline else None, max_total_quarantine_fraction)
    except UsageError as exc:
        from rich.markup import escape

        err.print(f"[red]error:[/] {escape(str(exc))}", highlight=False)
        raise typer.Exit(2)
    _print_result(result, format, out, err, quiet)


def _print_result(result, format: ScanFormat, out: str, err, quiet: bool = False,
                  code: int | None = None) -> None:
    """Print ``result`` on stdout in ``format`` and exit 0 (passed) or 1, or ``code`` when given."""
    from rich.console import Console

    from datasan.outputs.formats import write

    write(result, format.value, out, Console(), quiet)
    if not result.passed and format != ScanFormat.text and not quiet:
        err.print(result.gate_summary(), markup=False, highlight=False)
    if code == 3:
        err.print(_internal_error_message(result, out), markup=False, highlight=False)
    raise typer.Exit(code if code is not None else (0 if result.passed else 1))


class RulesFormat(str, Enum):
    text = "text"
    json = "json"
    markdown = "markdown"


@app.command(cls=_Command)
def rules(
    format: Annotated[RulesFormat, typer.Option("--format", help="text (a table), json or markdown.")] = RulesFormat.text,
) -> None:
    """List every rule: code, name, default severity and what it finds."""
    from datasan.rules import RULES

    live = [r for r in RULES.values() if not r.retired]
    if format == RulesFormat.markdown:
        lines = ["| code | name | severity | finds |", "|---|---|---|---|"]
        lines += [f"| {r.code} | `{r.name}` | {r.severity} | {r.summary} |" for r in live]
        sys.stdout.write("\n".join(lines) + "\n")
        return
    if format == RulesFormat.json:
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


@app.command(cls=_Command)
def rule(code: Annotated[str, typer.Argument(help="A rule code such as DS101, or its name.")]) -> None:
    """Explain one rule: what it checks, why it breaks training, how to fix it."""
    from rich.console import Console

    from datasan.rules import RULES

    found = RULES.get(code.upper()) or next((r for r in RULES.values() if r.name == code.lower()), None)
    if found is None:
        Console(stderr=True).print(f"[red]error:[/] unknown rule {code!r}; `datasan rules` lists them.")
        raise typer.Exit(2)
    from rich.text import Text

    c = Console()

    def section(title: str, body: str) -> None:
        c.print()
        c.print(Text(title, style="bold"))
        c.print(Text(body))  # rule text is plain: brackets such as [x, y, w, h] must survive

    c.print(Text(f"{found.code} {found.name}", style="bold") + Text(f" ({found.severity})"))
    c.print(Text(found.summary))
    section("What it checks", found.what)
    section("Why it breaks training", found.why)
    if found.example:
        section("Example", found.example)
    section("How to fix", found.fix)


def _engines() -> tuple[str, ...]:
    from datasan.options import ENGINES

    return ENGINES


@app.command(cls=_Command)
def serve(
    root: Annotated[list[str], typer.Option(
        "--root", help="A folder the service may scan (repeatable); every other path is refused (403).")],
    host: Annotated[str, typer.Option("--host", help="Address to listen on; beyond loopback a --token-file "
                                      "is required.")] = "127.0.0.1",
    port: Annotated[int, typer.Option("--port", help="Port to listen on.")] = 8765,
    state: Annotated[str, typer.Option(
        "--state", help="SQLite file of jobs and gate verdicts; runs are kept in runs/ beside it.")]
    = "datasan-serve.sqlite",
    workers: Annotated[int, typer.Option("--workers", help="Scans running at once; more wait in the queue.")] = 2,
    token_file: Annotated[Optional[str], typer.Option(
        "--token-file", help="File holding the bearer token every request must carry (except /healthz).")] = None,
    config: Annotated[Optional[str], typer.Option(
        "--config", help="Config file every scan starts from (default: none).")] = None,
    engine: Annotated[_choice_type("ServeEngine", _engines()), typer.Option(  # type: ignore[valid-type]
        "--engine", help="Where the scans' shards run. [default: local]")] = "local",
    ray_address: Annotated[Optional[str], typer.Option("--ray-address", help="Ray cluster for --engine ray.")]
    = None,
    keep_runs: Annotated[int, typer.Option("--keep-runs", help="Output folders kept; older ones are removed.")]
    = 200,
    max_body: Annotated[int, typer.Option("--max-body", help="Largest request body in bytes (413 beyond).")]
    = 65536,
    rate_limit: Annotated[float, typer.Option(
        "--rate-limit", help="Requests per second per client address, bursts of twice that (429 beyond; "
        "0: no limit).")] = 50.0,
    cache: Annotated[Optional[str], typer.Option(
        "--cache", metavar="DIR", help="Content cache the scans share, so a gate after a change rescans "
        "only what changed. [default: cache/ beside --state]")] = None,
    no_cache: Annotated[bool, typer.Option("--no-cache", help="Scan everything every time.")] = False,
) -> None:
    """Serve the gate over HTTP: submit scans, read their results, ask GET /gate (needs the serve extra)."""
    from rich.console import Console

    from datasan.errors import UsageError

    try:
        from datasan.serve import require_extra, run
        from datasan.serve.settings import ServeSettings, check_settings, read_token

        require_extra()
        settings = check_settings(ServeSettings(
            roots=root, state=state, host=host, port=port, workers=workers,
            token=read_token(token_file) if token_file else None, config=config or False,
            engine=getattr(engine, "value", engine), ray_address=ray_address, keep_runs=keep_runs,
            max_body=max_body, rate=rate_limit, cache=None if no_cache else (cache or "")))
    except UsageError as exc:
        from rich.markup import escape

        Console(stderr=True).print(f"[red]error:[/] {escape(str(exc))}", highlight=False)
        raise typer.Exit(2)
    run(settings)


cache_app = typer.Typer(cls=_Group, help="Inspect or empty the content cache of incremental scans.",
                        no_args_is_help=True)
app.add_typer(cache_app, name="cache")
CacheDir = Annotated[Optional[str], typer.Option(
    "--cache", help="The cache folder. [default: the config's, else ~/.cache/datasan]", metavar="DIR")]


def _cache_store(cache: str | None):
    from datasan.cache import CacheStore, cache_dir, default_cache_dir
    from datasan.config import build_options

    if cache is None:
        try:
            cache = build_options({}).cache
        except Exception:  # a broken config file does not hide the default cache
            cache = None
    return CacheStore(cache_dir(cache or "default") or default_cache_dir())


@cache_app.command("info", cls=_Command)
def cache_info(cache: CacheDir = None) -> None:
    """Print the cache folder, its entries and bytes."""
    info = _cache_store(cache).info()
    typer.echo(f"path: {info.path}\nentries: {info.entries}\nbytes: {info.bytes}")


@cache_app.command("prune", cls=_Command)
def cache_prune(cache: CacheDir = None, max_bytes: Annotated[Optional[int], typer.Option(
        "--max-bytes", help="Keep at most this many bytes. [default: cache_max_bytes, 2 GiB]", min=0)] = None
                ) -> None:
    """Remove the least recently used entries until the cache fits its bound."""
    from datasan.config import build_options

    store = _cache_store(cache)
    if max_bytes is None:
        max_bytes = build_options({}).cache_max_bytes
    removed = store.prune(max_bytes)
    info = store.info()
    typer.echo(f"removed {removed} entries; {info.entries} entries, {info.bytes} bytes left in {info.path}")


@cache_app.command("clear", cls=_Command)
def cache_clear(cache: CacheDir = None) -> None:
    """Remove every entry of the cache (files datasan did not write stay)."""
    store = _cache_store(cache)
    removed = store.clear()
    typer.echo(f"removed {removed} entries from {store.path}")


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
    """Console-script entry point: runs the command, then leaves without tearing the
    interpreter down (see :func:`_leave`)."""
    try:
        app()
    except SystemExit as exc:
        _leave(exc.code)
        raise
    _leave(0)


def _leave(status: object) -> None:
    """End the process now with ``status`` (a SystemExit's code), once the command has done
    everything.

    A normal exit frees every object of every module one by one (pyarrow,
    matplotlib, numpy: 0.1-0.4 s after a scan, a tenth of a table scan's time)
    although the process is about to vanish.  Like mypy's fast exit this runs
    the exit handlers (atexit: multiprocessing's cleanup, logging, temporary
    folders, Ray), flushes stdout and stderr, and ends the process.  It returns
    (and the interpreter exits as usual) when a thread other than daemons is still
    running, under a profiler or a tracer (coverage, a debugger, ``python -m
    cProfile``: they write their results at exit), and for a status that is not an
    int (a message Python prints).
    """
    import sys
    import threading

    code = 0 if status is None else status
    if not isinstance(code, int) or sys.getprofile() is not None or sys.gettrace() is not None:
        return
    if any(t is not threading.main_thread() and not t.daemon and t.is_alive() for t in threading.enumerate()):
        return
    import atexit
    import os

    atexit._run_exitfuncs()  # the handlers a normal exit runs, in the same (reverse) order
    for stream in (sys.stdout, sys.stderr):
        try:
            if stream is not None:
                stream.flush()
        except (OSError, ValueError):  # a closed pipe (datasan ... | head) or stream: nothing to keep
            pass
    os._exit(code & 0xFF)  # as the system truncates a status: sys.exit(-1) is 255


if __name__ == "__main__":  # pragma: no cover
    main()
