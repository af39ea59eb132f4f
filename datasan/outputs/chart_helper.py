"""report.html's charts drawn on two cores: this process and one helper process.

A table of 17 numeric columns gets 17 histograms, each about 30 ms of
matplotlib; with the import, report.html took a quarter of a 2M-row table's
scan.  A helper process is spawned while the scan still runs (:func:`start`,
from the kinds once the scan really computes something: a scan answered by
its cache may draw nothing), imports matplotlib and draws its template figure
there, on the core the scan leaves idle.  When the page is built, every chart
not found in the chart cache is sent to the helper in page order as soon as
it is known (:class:`ChartBatch`); this process then draws from the end of the
page backwards, taking over each chart the helper has not started, until the
two meet.  Both run the same drawing function on the same arguments (the salt
included), so a chart is the same SVG whoever draws it.

The helper never decides anything: when it cannot start, dies, errs or takes
over :data:`RESULT_TIMEOUT` seconds, its charts are drawn here.  It is stopped
once the page's charts are drawn (:func:`stop`) or the scan fails, and it ends
by itself when the process that started it is gone (killed, or stopped by a
signal before the report).
"""

from __future__ import annotations

import os
import sys
import threading
from dataclasses import dataclass
from typing import Any, Callable

#: seconds to wait for a chart the helper has started before drawing it here
RESULT_TIMEOUT = 60.0

_LOCK = threading.Lock()
_HELPER: Any = None  # the ProcessPoolExecutor of the helper, or None
_READY: Any = None  # the helper's first task: done once matplotlib is loaded there
#: charts sent to the helper ahead of their page, by chart store key (see :func:`prefetch`)
_PREFETCHED: dict[str, Any] = {}


def usable_cores() -> int:
    """The cores this process may run on."""
    try:
        return len(os.sched_getaffinity(0))
    except (AttributeError, OSError):  # not on Linux
        return os.cpu_count() or 1


def start() -> bool:
    """Spawn the helper (once; True when this call started it).  Spawned, not forked: no
    copy of this process's threads and memory, and a forkserver the scan's workers use
    keeps the modules it preloads for them."""
    global _HELPER, _READY
    with _LOCK:
        if _HELPER is not None:
            return False
        try:
            from concurrent.futures import ProcessPoolExecutor

            from datasan.engine import _SpawnContext

            pool = ProcessPoolExecutor(max_workers=1, mp_context=_SpawnContext(), initializer=_warm,
                                       initargs=(os.getpid(),))
            ready = pool.submit(_ready)  # the process starts now, not at the first chart
        except Exception:  # noqa: BLE001 - no helper (no processes allowed here): charts drawn here
            return False
        _HELPER, _READY = pool, ready
        return True


def running() -> bool:
    return _HELPER is not None


def has_prefetched() -> bool:
    return bool(_PREFETCHED)


def stop() -> None:
    """End the helper.  Its process is killed, not asked to exit: it holds nothing of value
    once the page's charts are back, and a normal exit would spend a tenth of a second
    tearing matplotlib down while this process waits to join it."""
    global _HELPER
    with _LOCK:
        pool, _HELPER = _HELPER, None
        _PREFETCHED.clear()
    _end(pool)


def prefetch(key: str, draw: Callable[..., str | None], args: tuple, kwargs: dict) -> bool:
    """Send a chart to the helper before its page is built (True when sent): the page takes
    the drawing over when it asks for the same chart (same function, same arguments: the
    same ``key``), and ignores it otherwise."""
    with _LOCK:
        pool = _HELPER
        if pool is None or key in _PREFETCHED:
            return False
        try:
            _PREFETCHED[key] = pool.submit(_draw, draw.__name__, args, kwargs)
        except Exception:  # noqa: BLE001 - a helper that died: the page draws it
            return False
        return True


def _warm(parent: int) -> None:
    """In the helper: end with the process that started it, however that one ends (a scan
    stopped by a signal, killed); then matplotlib imported and the template figure drawn
    before the first chart."""
    threading.Thread(target=_exit_with, args=(parent,), daemon=True, name="datasan-chart-parent").start()
    from datasan.outputs import charts

    charts._drawn_template()


def _exit_with(parent: int) -> None:
    import time

    while os.getppid() == parent:
        time.sleep(0.5)
    os._exit(0)


def _ready() -> bool:
    return True


def _draw(name: str, args: tuple, kwargs: dict) -> str | None:
    """In the helper: chart ``name`` of datasan.outputs.charts drawn."""
    from datasan.outputs import charts

    return getattr(charts, name)(*args, **kwargs)


@dataclass(slots=True)
class _Chart:
    draw: Callable[..., str | None]
    args: tuple
    kwargs: dict
    svg: str | None = None
    future: Any = None  # the helper's drawing, while it may still come from there
    done: bool = False

    def draw_here(self) -> None:
        self.svg, self.done = self.draw(*self.args, **self.kwargs), True


class ChartBatch:
    """The charts of one page, in page order: each is a cached SVG, or drawn by the helper
    (when one runs) or here.  :meth:`add` returns the chart's index in :meth:`results`."""

    def __init__(self) -> None:
        self._pool, self._ready = _HELPER, _READY
        self._charts: list[_Chart] = []

    def add(self, draw: Callable[..., str | None], args: tuple, kwargs: dict, svg: Any = None,
            done: bool = False, key: str | None = None) -> int:
        """Queue ``draw(*args, **kwargs)`` (``draw``: a chart function of
        datasan.outputs.charts; ``key``: its chart store key, to find it among the charts
        sent ahead), or record its ``svg`` when ``done`` (from the cache)."""
        chart = _Chart(draw, args, kwargs, svg, done=done)
        if not done and key is not None:
            with _LOCK:
                chart.future = _PREFETCHED.pop(key, None)
        if not done and chart.future is None and self._pool is not None:
            try:
                chart.future = self._pool.submit(_draw, draw.__name__, args, kwargs)
            except Exception:  # noqa: BLE001 - a helper that died or was stopped: drawn here
                self._pool = None
        self._charts.append(chart)
        return len(self._charts) - 1

    def results(self) -> list[str | None]:
        """Every chart's SVG (None: nothing to draw), in order."""
        # from the end backwards, take over what the helper has not started, when this process
        # has matplotlib loaded or the helper does not have it yet (importing it here costs
        # as much as drawing several charts)
        for chart in reversed(self._charts):
            if chart.done:
                continue
            if chart.future is not None and not (self._takes_over() and chart.future.cancel()):
                break  # the helper has it (and every chart before it), or keeps it
            chart.draw_here()
        failed = False
        for chart in self._charts:
            if not chart.done and not failed:
                try:
                    chart.svg, chart.done = chart.future.result(timeout=RESULT_TIMEOUT), True
                except Exception:  # noqa: BLE001 - died, timed out or failed there
                    failed = True
                    _abandon(self._pool)
            if not chart.done:  # drawn here: after one failure, every chart the helper had left
                chart.draw_here()
        return [chart.svg for chart in self._charts]

    def _takes_over(self) -> bool:
        """Whether this process should draw the helper's next chart from the end."""
        if "matplotlib.figure" in sys.modules:
            return True
        ready = self._ready
        return ready is None or not ready.done() or ready.exception() is not None


def _abandon(pool: Any) -> None:
    """Stop a helper that failed (one that hangs must not hold up this process's exit)."""
    global _HELPER
    with _LOCK:
        if _HELPER is pool:
            _HELPER = None
    _end(pool)


def _end(pool: Any) -> None:
    """Kill the pool's process and join the pool's manager thread (a thread left running
    would keep the command line from its fast exit)."""
    if pool is None:
        return
    for proc in list((getattr(pool, "_processes", None) or {}).values()):
        try:
            proc.kill()
        except Exception:  # noqa: BLE001 - already gone
            pass
    pool.shutdown(wait=True, cancel_futures=True)
