"""report.html's charts drawn by a helper process beside this one (datasan.outputs.chart_helper):
the same page whoever draws each chart, a helper that dies or hangs leaves its charts to this
process, and the helper starts only for a scan that computes something and writes a report."""

from __future__ import annotations

import time
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

import datasan
from datasan.outputs import chart_helper, charts
from datasan.outputs.formats.html import render_html
from datasan.outputs.view import FindingsView
from datasan.result import ScanResult


def _table(root: Path, rows: int = 2000, columns: int = 12) -> None:
    rng = np.random.default_rng(3)
    cols = {f"f{i}": rng.normal(i, 1 + i, rows) for i in range(columns)}
    cols["f0"][7] = np.nan  # one quarantined row
    cols["label"] = rng.integers(0, 4, rows)
    cols["kind"] = pa.array([("a", "b", "c")[i % 3] for i in range(rows)])
    root.mkdir()
    pq.write_table(pa.table(cols), root / "t.parquet")


@pytest.fixture(scope="module")
def scanned(tmp_path_factory) -> ScanResult:
    """A scan of one table of 12 numeric features, a class label and a category column."""
    tmp = tmp_path_factory.mktemp("helper")
    _table(tmp / "data")
    # one worker: no helper during the scan itself
    datasan.scan(str(tmp / "data"), out_dir=str(tmp / "out"), config=False, probe=False, cache="off", workers=1)
    return ScanResult.load(str(tmp / "out"))


def _page(result: ScanResult) -> str:
    return render_html(FindingsView(result), "out")


def _drawn_here(monkeypatch) -> list[int]:
    """Counts the charts this process draws from now on (each draws one figure)."""
    drawn: list[int] = []
    real = charts._figure
    monkeypatch.setattr(charts, "_figure", lambda: (drawn.append(1), real())[1])
    return drawn


def _ready_helper() -> None:
    chart_helper.stop()
    assert chart_helper.start() is True
    assert chart_helper.start() is False  # one helper at a time
    assert chart_helper._READY.result(timeout=120) is True


@pytest.fixture(autouse=True)
def _no_helper_left():
    yield
    chart_helper.stop()


def test_the_helper_draws_the_same_page_as_this_process(scanned, monkeypatch):
    here = _page(scanned)
    assert here.count("<svg") == 15  # 13 histograms (12 features, the label), class bars, category bars

    _ready_helper()
    monkeypatch.setattr(chart_helper.ChartBatch, "_takes_over", lambda self: False)
    drawn = _drawn_here(monkeypatch)
    assert _page(scanned) == here
    assert drawn == []  # every chart came from the helper
    assert not chart_helper.running()  # stopped once its page was drawn

    # this process drawing from the end while the helper draws from the start: the same page
    _ready_helper()
    monkeypatch.setattr(chart_helper.ChartBatch, "_takes_over", lambda self: True)
    assert _page(scanned) == here
    assert 1 <= len(drawn) <= 15


def test_charts_left_by_a_dead_helper_are_drawn_here(scanned, monkeypatch):
    here = _page(scanned)
    _ready_helper()
    for proc in chart_helper._HELPER._processes.values():
        proc.kill()
        proc.join(30)
    monkeypatch.setattr(chart_helper.ChartBatch, "_takes_over", lambda self: False)
    drawn = _drawn_here(monkeypatch)
    assert _page(scanned) == here
    assert len(drawn) == 15
    assert not chart_helper.running()


def test_a_hung_helper_is_killed_after_the_timeout_and_its_charts_drawn_here(scanned, monkeypatch):
    here = _page(scanned)
    _ready_helper()
    pool = chart_helper._HELPER
    procs = list(pool._processes.values())
    pool.submit(time.sleep, 600)  # the helper is busy for ten minutes: every chart waits behind it
    monkeypatch.setattr(chart_helper, "RESULT_TIMEOUT", 1.0)
    monkeypatch.setattr(chart_helper.ChartBatch, "_takes_over", lambda self: False)
    drawn = _drawn_here(monkeypatch)
    t0 = time.monotonic()
    assert _page(scanned) == here
    assert time.monotonic() - t0 < 60
    assert len(drawn) == 15
    assert not chart_helper.running()
    for proc in procs:
        proc.join(30)
        assert proc.exitcode is not None  # killed, not left sleeping


def test_the_helper_starts_only_for_a_report_on_more_than_one_core(monkeypatch):
    from datasan.outputs.warm import start_chart_helper

    started: list[int] = []
    monkeypatch.setattr(chart_helper, "start", lambda: (started.append(1), True)[1])

    def ctx(parallelism=2, report_due=True):
        return SimpleNamespace(report_due=report_due, engine=SimpleNamespace(parallelism=parallelism))

    monkeypatch.setattr(chart_helper, "usable_cores", lambda: 2)
    assert start_chart_helper(ctx()) is True and started == [1]
    assert start_chart_helper(ctx(report_due=False)) is False  # no report.html to draw
    assert start_chart_helper(ctx(parallelism=1)) is False  # --workers 1: one core asked for
    monkeypatch.setattr(chart_helper, "usable_cores", lambda: 1)
    assert start_chart_helper(ctx()) is False  # one core: the helper would only compete
    assert started == [1]


def test_a_rescan_answered_by_the_cache_starts_no_helper(tmp_path, monkeypatch):
    started: list[int] = []
    monkeypatch.setattr(chart_helper, "start", lambda: (started.append(1), False)[1])
    monkeypatch.setattr(chart_helper, "usable_cores", lambda: 2)
    _table(tmp_path / "data", rows=500, columns=3)

    def scan(out: str | None) -> None:
        datasan.scan(str(tmp_path / "data"), out_dir=str(tmp_path / out) if out else None, config=False,
                     probe=False, cache=str(tmp_path / "cache"), workers=2).close()

    scan("o1")
    first = len(started)
    assert first >= 1  # computed, with a report to write (asked again at the first result: no-op)
    scan("o2")
    assert len(started) == first  # every shard from the cache: no chart can have changed
    rows = pq.read_table(tmp_path / "data" / "t.parquet")
    pq.write_table(rows.slice(1), tmp_path / "data" / "t.parquet")
    scan(None)
    assert len(started) == first  # computed, but no output folder: no report.html
    pq.write_table(rows.slice(2), tmp_path / "data" / "t.parquet")
    scan("o3")
    assert len(started) > first  # the changed table is scanned again: the helper starts with it


def test_the_helper_ends_when_the_process_that_started_it_is_killed(tmp_path):
    import os
    import signal
    import subprocess
    import sys

    import psutil

    program = ("import os, sys, time\n"
               "from datasan.outputs import chart_helper\n"
               "chart_helper.start(); chart_helper._READY.result(timeout=120)\n"
               "print(*[p.pid for p in chart_helper._HELPER._processes.values()], flush=True)\n"
               "time.sleep(600)\n")
    parent = subprocess.Popen([sys.executable, "-c", program], stdout=subprocess.PIPE, text=True)
    try:
        helpers = [psutil.Process(int(pid)) for pid in parent.stdout.readline().split()]
        assert len(helpers) == 1 and helpers[0].is_running()
    finally:
        os.kill(parent.pid, signal.SIGKILL)  # no exit handler, no stop(): only the helper's own watch
        parent.wait(30)
    gone, alive = psutil.wait_procs(helpers, timeout=30)
    assert alive == [] and len(gone) == 1


def test_charts_sent_ahead_of_the_page_are_the_pages_charts(scanned, monkeypatch):
    import copy

    from datasan.outputs.formats.html import send_charts_ahead

    here = _page(scanned)
    send_charts_ahead(scanned.stats, None)  # no helper: nothing is sent
    assert chart_helper._PREFETCHED == {}
    _ready_helper()
    send_charts_ahead(scanned.stats, None)
    assert len(chart_helper._PREFETCHED) == 15  # every chart of the page
    monkeypatch.setattr(chart_helper.ChartBatch, "_takes_over", lambda self: False)
    drawn = _drawn_here(monkeypatch)
    assert _page(scanned) == here and drawn == []
    assert chart_helper._PREFETCHED == {}  # all taken by the page

    # statistics that changed after they were sent: the stale chart is not used
    _ready_helper()
    stale = copy.deepcopy(scanned.stats)
    stale["tables"]["t.parquet"]["columns"]["f3"]["mean"] += 1.0
    send_charts_ahead(stale, None)
    assert _page(scanned) == here and drawn == []
