"""report.html: one self-contained file, checked as text and in a real browser (chromium via selenium).

Without chromium or chromedriver the browser tests skip with the reason,
except under CI=true, where a skip would hide a broken report: they fail.
"""

from __future__ import annotations

import json
import os
import re
import shutil
from pathlib import Path

import pyarrow.parquet as pq
import pytest
from typer.testing import CliRunner

import datasan
from datasan.cli import app
from datasan.outputs.manifest import OutputMismatch, verify_output
from datasan.outputs.thumbnails import IMAGE_ENDINGS

REPO = Path(__file__).resolve().parents[1]
CHROMIUM, CHROMEDRIVER = "/usr/bin/chromium", "/usr/bin/chromedriver"


# --------------------------------------------------------------------------- data
def make_generated(root: Path) -> Path:
    """A table with NaN / Inf / a bad label and an image folder with one undecodable and one tiny image."""
    import numpy as np
    from PIL import Image

    rng = np.random.default_rng(0)
    d = root / "gen"
    (d / "tables").mkdir(parents=True)
    rows = ["a,b,label"] + [f"{i * 0.5},{100 + i},{i % 3}" for i in range(40)]
    rows[5] = "nan,104,1"
    rows[9] = "1.5,inf,2"
    rows[12] = "2.0,111,-1"
    (d / "tables" / "t.csv").write_text("\n".join(rows) + "\n")
    for cls, n in (("cat", 4), ("dog", 4)):
        (d / "pics" / cls).mkdir(parents=True)
        for i in range(n):
            pixels = rng.integers(0, 256, (30, 40, 3), dtype=np.uint8)
            Image.fromarray(pixels).save(d / "pics" / cls / f"{i}.png")
    (d / "pics" / "cat" / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\n not really")
    Image.fromarray(rng.integers(0, 256, (2, 2, 3), dtype=np.uint8)).save(d / "pics" / "dog" / "tiny.png")
    return d


def flagged_images(out: Path) -> set[tuple[str, str]]:
    """(code, sample) of the images with an error or warning, from findings.parquet."""
    rows = pq.read_table(out / "findings.parquet").to_pylist()
    return {(r["code"], r["sample"]) for r in rows
            if r["severity"] in ("error", "warning") and (r["sample"] or "").lower().endswith(IMAGE_ENDINGS)}


def numeric_columns(out: Path) -> int:
    stats = json.loads((out / "stats.json").read_text())
    return sum(len(t["columns"]) for t in stats["tables"].values())


def make_probed(root: Path) -> Path:
    """A regression table whose row 17 has the highest loss and row 40 a float32 overflow
    (DS401), and eight labelled images: small enough to probe in seconds."""
    import numpy as np
    import pyarrow as pa
    from PIL import Image

    rng = np.random.default_rng(1)
    d = root / "probed"
    d.mkdir(parents=True)
    cols = {f"f{j}": rng.normal(size=120) for j in range(3)}
    cols["y"] = rng.normal(size=120)
    cols["y"][17] = 8.0
    cols["f1"][40] = 1e37
    pq.write_table(pa.table(cols), d / "reg.parquet")
    for cls in ("cat", "dog"):
        (d / "pics" / cls).mkdir(parents=True)
        for i in range(4):
            Image.fromarray(rng.integers(0, 256, (20, 24, 3), dtype=np.uint8)).save(d / "pics" / cls / f"{i}.png")
    return d


@pytest.fixture(scope="module")
def scans(tmp_path_factory):
    """{name: output folder} of a scan of sample_data and of a generated folder (no probe: fast),
    and of a small folder with the probe."""
    tmp = tmp_path_factory.mktemp("html")
    outs = {}
    for name, path, probe in (("sample", REPO / "sample_data", False), ("generated", make_generated(tmp), False),
                              ("probed", make_probed(tmp), True)):
        outs[name] = tmp / f"out-{name}"
        datasan.scan(path, out_dir=str(outs[name]), probe=probe, workers=1, config=False).close()
    return outs


# --------------------------------------------------------------------------- as a file
def test_report_html_is_written_listed_and_carries_the_run_id(scans):
    out = scans["generated"]
    manifest = verify_output(out)
    assert "report.html" in {e["path"] for e in manifest["files"]}
    html = (out / "report.html").read_text()
    assert f'<meta name="datasan-run-id" content="{manifest["run_id"]}">' in html
    # another run's report.html in this folder makes it a mixed folder
    (out / "report.html").write_text(html.replace(manifest["run_id"], "20000101T000000Z-00000000"))
    with pytest.raises(OutputMismatch, match="report.html"):
        verify_output(out)
    (out / "report.html").write_text(html)
    verify_output(out)


def test_report_html_loads_nothing_from_anywhere(scans):
    for out in scans.values():
        html = (out / "report.html").read_text()
        assert not re.search(r"""(src|href)\s*=\s*["']?(https?:|//)""", html)
        assert not re.search(r"url\(\s*['\"]?(https?:|//)", html) and "@import" not in html and "<iframe" not in html
        assert "default-src 'none'" in html  # the browser refuses any load but inline ones


def test_datasan_report_format_html_renders_the_finished_scan(scans):
    out = scans["generated"]
    r = CliRunner().invoke(app, ["report", str(out), "--format", "html"])
    assert r.exit_code == 1  # the data did not pass: the same exit code as scan
    assert r.stdout.startswith("<!DOCTYPE html>") and 'id="verdict" class="verdict failed">FAILED<' in r.stdout
    assert r.stdout.count('class="chart numeric"') == numeric_columns(out) == 3


def test_thumbnails_are_capped_by_the_option(tmp_path):
    data = make_generated(tmp_path)
    out = tmp_path / "o"
    datasan.scan(data, out_dir=str(out), probe=False, workers=1, config=False, report_thumbnails=1).close()
    html = (out / "report.html").read_text()
    assert html.count('class="tile"') == 1
    datasan.scan(data, out_dir=str(out), probe=False, workers=1, config=False, report_thumbnails=0).close()
    assert 'class="tile"' not in (out / "report.html").read_text()


def test_a_thumbnail_is_at_most_128_px_and_a_broken_file_a_placeholder(tmp_path):
    import base64
    import io

    from PIL import Image

    from datasan.outputs.thumbnails import encode, thumbnails

    Image.new("RGB", (640, 200), (9, 9, 9)).save(tmp_path / "wide.png")
    (tmp_path / "bad.png").write_bytes(b"garbage")
    url, err = encode(str(tmp_path / "wide.png"))
    assert err is None and url.startswith("data:image/jpeg;base64,")
    assert Image.open(io.BytesIO(base64.b64decode(url.split(",", 1)[1]))).size == (128, 40)
    tiles = thumbnails(str(tmp_path), [("bad.png", "DS201", "error", "m", []),
                                       ("gone.png", "DS201", "error", "m", []),
                                       ("../wide.png", "DS201", "error", "m", [])])
    assert [t.data_url for t in tiles] == [None, None, None]
    assert tiles[0].error.startswith("UnidentifiedImageError")
    assert tiles[1].error.startswith("no such file") and tiles[2].error.startswith("not a path")


def test_many_thumbnails_are_made_on_threads_in_the_order_asked(tmp_path):
    """From 8 tiles on, Pillow's work runs on a few threads: each tile is the one its sample
    gives alone, in the order asked, broken files and missing ones included."""
    from PIL import Image

    from datasan.outputs.thumbnails import encode, thumbnails

    flagged = []
    for k in range(12):
        name = f"i{k}.png"
        if k == 4:
            (tmp_path / name).write_bytes(b"garbage")
        elif k != 7:  # i7.png is missing
            Image.new("RGB", (64 + 8 * k, 48), (20 * k, 255 - 20 * k, 9)).save(tmp_path / name)
        flagged.append((name, "DS210", "warning", f"m{k}", []))
    tiles = thumbnails(str(tmp_path), flagged)
    assert [t.sample for t in tiles] == [f"i{k}.png" for k in range(12)]
    assert [t.message for t in tiles] == [f"m{k}" for k in range(12)]
    for k, t in enumerate(tiles):
        if k == 4:
            assert t.data_url is None and t.error.startswith("UnidentifiedImageError")
        elif k == 7:
            assert t.data_url is None and t.error.startswith("no such file")
        else:
            assert (t.data_url, t.error) == encode(str(tmp_path / f"i{k}.png"))

def test_histogram_bars_hold_every_kept_value_and_the_mean_lies_inside():
    import numpy as np

    from datasan.outputs.charts import bucket_position, histogram, sketch_bars
    from datasan.stats import Moments

    values = np.r_[np.linspace(-3, 5, 101), 0.0, 1e12]
    entry = Moments.of(values).as_json()
    bars = sketch_bars(entry["sketch"])
    assert sum(c for _, _, c in bars) == 103
    assert all(a <= b for a, b, _ in bars) and all(bars[i][1] <= bars[i + 1][0] for i in range(len(bars) - 1))
    assert [bucket_position(x) for x in (-3.0, -0.1, 0.0, 0.1, 5.0, 1e12)] == sorted(
        bucket_position(x) for x in (-3.0, -0.1, 0.0, 0.1, 5.0, 1e12))
    svg = histogram(entry["sketch"], entry["mean"], entry["std"], "t")
    assert svg.startswith("<svg") and "<!DOCTYPE" not in svg
    assert histogram({"scheme": "x", "index": [], "count": []}, None, None, "t") is None


# --------------------------------------------------------------------------- in a browser
def _skip_or_fail(reason: str):
    if os.environ.get("CI", "").lower() == "true":
        pytest.fail(f"browser test cannot run under CI: {reason}")
    pytest.skip(reason)


@pytest.fixture(scope="module")
def browser(tmp_path_factory):
    """Headless chromium with its console and network logs, offline settings and a fresh profile."""
    try:
        from selenium import webdriver
        from selenium.webdriver.chrome.service import Service
    except ImportError:
        _skip_or_fail("selenium is not installed (pip install -e '.[dev]')")
    for exe in (CHROMIUM, CHROMEDRIVER):
        if not (os.path.isfile(exe) and os.access(exe, os.X_OK)) and not shutil.which(os.path.basename(exe)):
            _skip_or_fail(f"{exe} is missing (apt-get install chromium chromium-driver)")
    opts = webdriver.ChromeOptions()
    opts.binary_location = CHROMIUM if os.path.isfile(CHROMIUM) else shutil.which("chromium")
    for arg in ("--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                "--disable-component-update", "--no-first-run", "--disable-sync", "--window-size=1280,1600",
                f"--user-data-dir={tmp_path_factory.mktemp('chromium-profile')}"):
        opts.add_argument(arg)
    opts.set_capability("goog:loggingPrefs", {"browser": "ALL", "performance": "ALL"})
    driver = webdriver.Chrome(service=Service(CHROMEDRIVER if os.path.isfile(CHROMEDRIVER)
                                              else shutil.which("chromedriver")), options=opts)
    yield driver
    driver.quit()


def _open(driver, report: Path) -> list[str]:
    """Load ``report``; return the URLs the page requested (the start page's requests drained first)."""
    driver.get("about:blank")
    driver.get_log("performance")
    driver.get_log("browser")
    driver.get(report.as_uri())
    events = [json.loads(e["message"])["message"] for e in driver.get_log("performance")]
    return [ev["params"]["request"]["url"] for ev in events if ev["method"] == "Network.requestWillBeSent"]


def _check_page(driver, out: Path, shots: Path, name: str) -> None:
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import Select

    report = out / "report.html"
    requested = _open(driver, report)
    assert [u for u in requested if u != report.as_uri() and not u.startswith("data:")] == []
    assert [e for e in driver.get_log("browser") if e["level"] in ("SEVERE", "WARNING")] == []
    driver.save_screenshot(str(shots / f"{name}-top.png"))

    doc = json.loads((out / "report.json").read_text())
    assert driver.find_element(By.ID, "verdict").text == ("PASSED" if doc["passed"] else "FAILED")
    codes = sorted(doc["findings"]["by_code"])
    assert sorted(r.get_attribute("data-code")
                  for r in driver.find_elements(By.CSS_SELECTOR, "#rule-table tbody tr")) == codes
    tiles = driver.find_elements(By.CSS_SELECTOR, ".tile")
    flagged = flagged_images(out)
    assert len(tiles) == min(len(flagged), 200)
    loaded = driver.execute_script(
        "return Array.from(document.querySelectorAll('img.thumb')).filter(i => i.complete && i.naturalWidth > 0)"
        ".map(i => Math.max(i.naturalWidth, i.naturalHeight))")
    assert len(loaded) + len(driver.find_elements(By.CSS_SELECTOR, ".tile .ph")) == len(tiles)
    assert loaded and max(loaded) <= 128
    charts = driver.find_elements(By.CSS_SELECTOR, ".chart.numeric svg")
    assert len(charts) == numeric_columns(out)

    rows = driver.find_elements(By.CSS_SELECTOR, "#finding-table tbody tr")
    code = codes[-1]
    Select(driver.find_element(By.ID, "filter-code")).select_by_value(code)
    visible = [r for r in rows if r.is_displayed()]
    assert visible and {r.get_attribute("data-code") for r in visible} == {code}
    assert int(driver.find_element(By.ID, "shown").text) == len(visible)
    driver.execute_script("document.getElementById('findings').scrollIntoView()")
    driver.save_screenshot(str(shots / f"{name}-filtered.png"))
    Select(driver.find_element(By.ID, "filter-code")).select_by_value("")
    assert sum(r.is_displayed() for r in rows) == len(rows)


def test_sample_data_report_in_a_browser(browser, scans, tmp_path):
    _check_page(browser, scans["sample"], tmp_path, "sample")
    # what the page was checked against: 31 numeric table columns, 55 (rule, image) pairs
    assert numeric_columns(scans["sample"]) == 31
    assert len(flagged_images(scans["sample"])) == 55
    from selenium.webdriver.common.by import By

    # every box-outside-image tile of the sample data has its box drawn (COCO and YOLO)
    drawn = browser.find_elements(By.CSS_SELECTOR, '.tile[data-code="DS325"][data-boxes="1"] img.thumb')
    assert len(drawn) == 4
    # per class: a bar per class (kept, quarantined stacked), a table row per class (most boxes
    # first), an area chart per class with kept boxes (most kept first: COCO has 3 dogs, 2 cats);
    # COCO quarantines 9 boxes with a readable class, YOLO 7
    for src, classes, areas, quarantined in (
            ("detection/coco/annotations.json", ["cat", "dog", "99"], ["dog", "cat"], 9),
            ("detection/yolo/labels", ["cat", "dog", "5"], ["cat", "dog"], 7)):
        section = browser.find_element(By.CSS_SELECTOR, f'.box-classes[data-source="{src}"]')
        assert len(section.find_elements(By.CSS_SELECTOR, ".class-bars svg g[id*='bar']")) == len(classes)
        assert section.find_element(By.CSS_SELECTOR, ".quarantined-boxes").get_attribute("data-count") == \
            str(quarantined)
        assert [c.get_attribute("data-class") for c in section.find_elements(By.CSS_SELECTOR, ".class-area")] == \
            areas
        assert len(section.find_elements(By.CSS_SELECTOR, ".class-area svg")) == 2
        rows = browser.find_elements(By.CSS_SELECTOR, f'.class-table[data-source="{src}"] tbody tr')
        assert [r.get_attribute("data-class") for r in rows] == classes


def test_generated_report_in_a_browser(browser, scans, tmp_path):
    from selenium.webdriver.common.by import By

    _check_page(browser, scans["generated"], tmp_path, "generated")
    assert flagged_images(scans["generated"]) == {("DS201", "pics/cat/broken.png"), ("DS205", "pics/dog/tiny.png")}
    placeholder = browser.find_element(By.CSS_SELECTOR, '.tile[data-code="DS201"] .ph')
    assert placeholder.text.startswith("cannot show: UnidentifiedImageError")
    assert len(browser.find_elements(By.CSS_SELECTOR, '.tile[data-code="DS205"] img.thumb')) == 1


def test_probe_losses_in_a_browser(browser, scans, tmp_path):
    from selenium.webdriver.common.by import By

    out = scans["probed"]
    report = out / "report.html"
    requested = _open(browser, report)
    assert [u for u in requested if u != report.as_uri() and not u.startswith("data:")] == []
    assert [e for e in browser.get_log("browser") if e["level"] in ("SEVERE", "WARNING")] == []
    browser.execute_script("document.getElementById('probe').scrollIntoView()")
    browser.save_screenshot(str(tmp_path / "probe.png"))
    sources = json.loads((out / "report.json").read_text())["probe"]["sources"]
    assert sorted(sources) == ["pics", "reg.parquet"]
    for src, rep in sources.items():
        section = browser.find_element(By.CSS_SELECTOR, f'.probe-loss[data-source="{src}"]')
        assert len(section.find_elements(By.CSS_SELECTOR, ".loss-chart svg")) == 1
        rows = section.find_elements(By.CSS_SELECTOR, "table.top-losses tbody tr")
        assert [r.get_attribute("data-sample") for r in rows] == [t["sample"] for t in rep["loss"]["top"]]
    table = browser.find_element(By.CSS_SELECTOR, '.probe-loss[data-source="reg.parquet"]')
    top = [r.get_attribute("data-sample") for r in table.find_elements(By.CSS_SELECTOR, "tbody tr")]
    assert len(top) == 10 and top[0] == "reg.parquet#17" and "reg.parquet#40" not in top
    assert table.find_element(By.CSS_SELECTOR, ".non-finite").get_attribute("data-count") == "1"
    assert table.find_elements(By.CSS_SELECTOR, "img.thumb") == []  # table rows have no thumbnail
    pics = browser.find_element(By.CSS_SELECTOR, '.probe-loss[data-source="pics"]')
    assert len(pics.find_elements(By.CSS_SELECTOR, "tbody tr")) == 8  # fewer images than TOP_K
    loaded = browser.execute_script(
        "return Array.from(document.querySelectorAll('.probe-loss[data-source=\"pics\"] img.thumb'))"
        ".filter(i => i.complete && i.naturalWidth > 0).length")
    assert loaded == 8 and pics.find_elements(By.CSS_SELECTOR, ".non-finite") == []


def test_category_labels_from_the_data_cannot_break_a_chart():
    from datasan.outputs.charts import bars

    svg = bars({"a$b^{$c": 3, "x\x1b[2J": 2, "<script>": 1, "$$\\frac{": 4}, "t")
    assert "<script>" not in svg and "&lt;script&gt;" in svg and "\x1b" not in svg
    assert bars({}, "t") is None


def test_offending_boxes_are_found_in_their_label_files_and_drawn_in_red(tmp_path):
    import base64
    import io

    from PIL import Image

    from datasan.outputs.box_overlay import BoxLookup
    from datasan.outputs.thumbnails import encode

    lookup = BoxLookup(str(REPO / "sample_data"))
    assert lookup.box("detection/coco/annotations.json", 4) == ("px", 50.0, 10.0, 40.0, 20.0)
    assert lookup.box("detection/yolo/labels/train/a.txt", 6) == ("norm", 1.5, 0.5, 0.2, 0.2)
    # 'abc', a zero width, NaN, no such row, no such file: nothing to draw
    assert [lookup.box("detection/yolo/labels/train/a.txt", r) for r in (5, 7, 8, 99)] == [None] * 4
    assert lookup.box("detection/coco/annotations.json", 3) is None
    assert lookup.box("nowhere.json", 0) is None and lookup.box("../x.json", 0) is None

    Image.new("RGB", (256, 256), (255, 255, 255)).save(tmp_path / "w.png")
    url, _ = encode(str(tmp_path / "w.png"), (("px", 20.0, 20.0, 100.0, 100.0),))
    thumb = Image.open(io.BytesIO(base64.b64decode(url.split(",", 1)[1]))).convert("RGB")
    r, g, b = thumb.getpixel((10, 30))  # on the box's left edge, halved with the image
    assert r > 180 and g < 90 and b < 90
    assert thumb.getpixel((30, 30))[1] > 200  # inside the box: still white


def test_class_bars_name_the_quarantined_out_of_range_and_distant_labels(scans):
    from datasan.outputs.formats.html import report_context
    from datasan.outputs.view import FindingsView
    from datasan.result import ScanResult

    labels = {entry["source"]: entry for entry in
              report_context(FindingsView(ScanResult.load(scans["sample"])), None)["labels"]}
    assert labels["tables/defects.csv"]["bad"] == {"label-out-of-range": 1, "distant-label": 1}
    assert labels["images/table"]["bad"] == {"distant-image-label": 1, "image-label-out-of-range": 1}
    assert labels["images/split"]["bad"] == {}
    assert labels["tables/defects.csv"]["total"] == 29 and labels["tables/defects.csv"]["svg"].startswith("<svg")


def test_boxes_with_absurd_numbers_are_not_drawn(tmp_path):
    from datasan.outputs.box_overlay import BoxLookup

    anns = [{"bbox": [10 ** 400, 0, 5, 5]}, {"bbox": [1e300, 0, 1e300, 5]}, {"bbox": [True, 0, 5]}, "x",
            {"bbox": ["1", "2", "3", "4"]}]
    (tmp_path / "a.json").write_text('{"annotations": ' + str(anns).replace("'", '"').replace("True", "true") + "}")
    lookup = BoxLookup(str(tmp_path))
    assert [lookup.box("a.json", r) for r in range(5)] == [None, None, None, None, ("px", 1.0, 2.0, 3.0, 4.0)]


def test_report_imports_start_once_and_only_when_workers_scan():
    from types import SimpleNamespace

    from datasan.outputs.warm import warm_report_imports

    def ctx(parallelism, report_html=True):
        return SimpleNamespace(shared={}, options=SimpleNamespace(report_html=report_html),
                               engine=SimpleNamespace(parallelism=parallelism))

    two = ctx(2)
    assert [warm_report_imports(two), warm_report_imports(two)] == [True, False]  # once per scan
    assert warm_report_imports(ctx(1)) is False  # the shards run in this process: no competing thread
    assert warm_report_imports(ctx(4, report_html=False)) is False  # no report, nothing to load
