"""report.html's charts are kept in the scan's content cache: a rescan whose statistics did
not change draws none and shows the same SVGs; a changed column's chart is drawn again."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from test_cache import _scan, _tables

from datasan.outputs import charts


def _svgs(out: Path) -> list[str]:
    return re.findall(r"<svg.*?</svg>", (out / "report.html").read_text(), flags=re.S)


def _drawn(monkeypatch) -> list[int]:
    """Counts the charts drawn from now on (each draws one figure)."""
    drawn: list[int] = []
    real = charts._figure

    def counted():
        drawn.append(1)
        return real()

    monkeypatch.setattr(charts, "_figure", counted)
    return drawn


def test_a_warm_report_copies_its_charts_and_redraws_only_what_changed(tmp_path, monkeypatch):
    data = tmp_path / "data"
    data.mkdir()
    _tables(data)
    cache = tmp_path / "cache"
    uncached = _svgs_of(tmp_path / "u1", data, None)
    assert len(uncached) >= 4  # x, z, label histograms and the label bars, at least
    assert _svgs_of(tmp_path / "c1", data, cache) == uncached
    drawn = _drawn(monkeypatch)
    assert _svgs_of(tmp_path / "w1", data, cache) == uncached and drawn == []

    # one column changes: its histogram is drawn again, the others come from the cache
    t = pq.read_table(data / "big.parquet")
    t = t.set_column(t.schema.get_field_index("z"), "z", pa.array(np.linspace(-5, 5, t.num_rows)))
    pq.write_table(t, data / "big.parquet", row_group_size=500)
    drawn.clear()
    warm = _svgs_of(tmp_path / "w2", data, cache)
    redrawn = len(drawn)
    drawn.clear()
    cold = _svgs_of(tmp_path / "u2", data, None)
    assert warm == cold and warm != uncached
    assert 1 <= redrawn < len(drawn)


def test_a_damaged_chart_entry_is_drawn_again(tmp_path, monkeypatch):
    from datasan.cache import CacheStore

    data = tmp_path / "data"
    data.mkdir()
    (data / "t.csv").write_text("a,label\n1,0\n2,1\n3,1\n")
    cache = tmp_path / "cache"
    first = _svgs_of(tmp_path / "o1", data, cache)
    store = CacheStore(str(cache))
    for p in (cache / "entries").rglob("*"):  # every chart's entry (an SVG in a 1-tuple): cut short
        v = store.get(p.name) if p.is_file() else None
        if isinstance(v, tuple) and len(v) == 1:
            p.write_bytes(p.read_bytes()[:50])
    drawn = _drawn(monkeypatch)
    assert _svgs_of(tmp_path / "o2", data, cache) == first and len(drawn) == len(first)


def _svgs_of(out: Path, data: Path, cache: Path | None) -> list[str]:
    _scan(data, out, cache, shard_rows=1000, report_html=True).write(str(out))
    return _svgs(out)


def _counting_compiles(monkeypatch) -> list[str]:
    """The threads that compile a template from now on, one entry per compilation."""
    import threading

    import jinja2

    compiled: list[str] = []
    real = jinja2.Environment.compile

    def counted(self, *args, **kwargs):
        compiled.append(threading.current_thread().name)
        return real(self, *args, **kwargs)

    monkeypatch.setattr(jinja2.Environment, "compile", counted)
    return compiled


def test_the_page_template_s_code_is_kept_in_the_cache(tmp_path, monkeypatch):
    from datasan.outputs.formats import html

    data = tmp_path / "data"
    data.mkdir()
    (data / "t.csv").write_text("a,label\n1,0\n2,1\n3,1\n")
    cache = tmp_path / "cache"
    html._compiled_template.cache_clear()  # a new process: the template is loaded again
    first = _svgs_of(tmp_path / "o1", data, cache)
    compiled = _counting_compiles(monkeypatch)
    html._compiled_template.cache_clear()
    assert _svgs_of(tmp_path / "o2", data, cache) == first and compiled == []
    html._compiled_template.cache_clear()
    _svgs_of(tmp_path / "o3", data, None)  # no cache: compiled as before (one worker: by the page)
    assert compiled == ["MainThread"]
    html._compiled_template.cache_clear()


def test_the_page_template_is_compiled_in_the_background_once_and_kept_in_the_cache(tmp_path, monkeypatch):
    """While workers scan, the import thread compiles the template after jinja2; the page then
    takes that one (it never compiles a second), and its code reaches the content cache."""
    import threading
    from types import SimpleNamespace

    from datasan.cache.store import CacheStore
    from datasan.outputs.formats import html
    from datasan.outputs.warm import warm_report_imports

    compiled = _counting_compiles(monkeypatch)
    cache = tmp_path / "cache"
    ctx = SimpleNamespace(shared={}, options=SimpleNamespace(report_html=True),
                          engine=SimpleNamespace(parallelism=2, store=CacheStore(str(cache))))
    html._compiled_template.cache_clear()  # a new process
    assert warm_report_imports(ctx) is True
    for t in threading.enumerate():
        if t.name == "datasan-imports":
            t.join(60)
    assert compiled == ["datasan-imports"]
    page_template = html._template()
    assert compiled == ["datasan-imports"]  # the page takes the one compiled in the background
    html._compiled_template.cache_clear()  # the next process: its code comes from the cache
    html.compile_template(str(cache))
    assert compiled == ["datasan-imports"] and html._template() is not page_template
    html._compiled_template.cache_clear()
    html.compile_template(None)  # no cache: compiled
    assert compiled == ["datasan-imports", "MainThread"]
    html._compiled_template.cache_clear()


def test_a_scan_with_workers_compiles_the_page_template_once(tmp_path, monkeypatch):
    from PIL import Image

    from datasan.outputs.formats import html

    data = tmp_path / "data"
    for k in range(4):
        (data / f"c{k % 2}").mkdir(parents=True, exist_ok=True)
        Image.fromarray(np.full((16, 16, 3), 40 * k + 10, np.uint8)).save(data / f"c{k % 2}" / f"{k}.png")
    compiled = _counting_compiles(monkeypatch)
    html._compiled_template.cache_clear()
    _scan(data, tmp_path / "o1", None, workers=2, report_html=True).write(str(tmp_path / "o1"))
    # on the import thread or, when the scan ends first, by the page: once either way
    assert len(compiled) == 1
    assert (tmp_path / "o1" / "report.html").read_text().rstrip().endswith("</html>")
    html._compiled_template.cache_clear()
