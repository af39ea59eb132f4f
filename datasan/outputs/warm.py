"""report.html's libraries loaded, and its chart helper started, while the scan works.

Jinja2 and matplotlib take about a second to import, and report.html is
drawn at the very end of every scan.  While the shards run in worker
processes this process mostly waits for their results, so the import is
started then, in a daemon thread, and the report no longer adds it to the
scan's wall time.  With one worker (the shards run in this process) it would
only compete with the scan, so it is left to the report itself.

The chart helper (:mod:`datasan.outputs.chart_helper`) is a process of its
own: it does not compete for this process's interpreter, so it is started
also while a shard runs here, as soon as the scan computes something.
"""

from __future__ import annotations

from typing import Any

#: what the report imports before its first chart
REPORT_MODULES = ("jinja2", "matplotlib.figure", "matplotlib.backends.backend_svg")
_STARTED = "report_imports_started"


def warm_report_imports(ctx: Any) -> bool:
    """Start importing REPORT_MODULES in the background, once per scan (``ctx``: the
    ScanContext), when report.html will be written and workers run the shards; True when
    this call started it.  A scan answered from its cache so far sends the workers nothing:
    the import would only compete with it (and its charts may all be cached)."""
    if ctx.shared.get(_STARTED) or not ctx.options.report_html or ctx.engine.parallelism <= 1 \
            or not getattr(ctx.engine, "sent_work", True):
        return False
    ctx.shared[_STARTED] = True
    start_chart_helper(ctx)
    from datasan.outputs import chart_helper

    # with the helper drawing the charts, this process needs only the template engine; the
    # template is compiled on the same thread (0.1-0.3 s that the page no longer waits for)
    store = getattr(ctx.engine, "store", None)
    import_in_background(("jinja2",) if chart_helper.running() else REPORT_MODULES,
                         then=_compile_template, args=(getattr(store, "path", None),))
    return True


def _compile_template(cache_path: str | None) -> None:
    from datasan.outputs.formats.html import compile_template

    compile_template(cache_path)


def start_chart_helper(ctx: Any) -> bool:
    """Spawn report.html's chart helper when this scan writes report.html, may use more than
    one core (``--workers``) and the machine has them; True when this call started it."""
    if not getattr(ctx, "report_due", False) or ctx.engine.parallelism <= 1:
        return False
    from datasan.outputs import chart_helper

    return chart_helper.usable_cores() > 1 and chart_helper.start()


def when_work_starts(ctx: Any, fn: Any, here: bool) -> None:
    """Call ``fn()`` once the scan computes shards: now when they run in this process
    (``here``) and the engine computes every shard; when the engine is a content cache,
    once it computes the first shard it could not answer (or, on its workers, once the
    first result is back).  Shards on an uncached engine's workers: the kind calls it at
    the first result."""
    hooks = getattr(ctx.engine, "work_hooks", None)
    if hooks is not None:
        hooks.append(fn)
    elif here:
        fn()


def import_in_background(modules: tuple[str, ...], then: Any = None, args: tuple = ()) -> None:
    """Import ``modules`` in order on a daemon thread, then call ``then(*args)`` there when
    given (a module that fails to import stops the rest, and ``then``: it is reported where
    it is used)."""
    import threading

    threading.Thread(target=_import_all, args=(modules, then, args), daemon=True, name="datasan-imports").start()


def _import_all(modules: tuple[str, ...], then: Any = None, args: tuple = ()) -> None:
    import importlib

    for name in modules:
        try:
            importlib.import_module(name)
        except Exception:  # a missing or broken library is reported where it is used
            return
    if then is not None:
        try:
            then(*args)
        except Exception:  # the page does it again and reports what fails
            return
