"""report.html's libraries loaded while the scan's worker processes do the work.

Jinja2 and matplotlib take about a second to import, and report.html is
drawn at the very end of every scan.  While the shards run in worker
processes this process mostly waits for their results, so the import is
started then, in a daemon thread, and the report no longer adds it to the
scan's wall time.  With one worker (the shards run in this process) it would
only compete with the scan, so it is left to the report itself.
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
    import_in_background(REPORT_MODULES)
    return True


def import_in_background(modules: tuple[str, ...]) -> None:
    """Import ``modules`` in order on a daemon thread (a module that fails to import stops the
    rest: it is reported where it is used)."""
    import threading

    threading.Thread(target=_import_all, args=(modules,), daemon=True, name="datasan-imports").start()


def _import_all(modules: tuple[str, ...]) -> None:
    import importlib

    for name in modules:
        try:
            importlib.import_module(name)
        except Exception:  # a missing or broken library is reported where it is used
            return
