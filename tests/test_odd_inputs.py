"""Odd inputs are findings, never exit 3; a source datasan fails on never sinks the others."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pyarrow.parquet as pq
from typer.testing import CliRunner

from datasan.cli import app
from conftest import tree_digest

runner = CliRunner()

TABLE = "x,label\n1,0\n2,1\n"


def _png(path: Path, seed: int = 0) -> None:
    import numpy as np
    from PIL import Image

    path.parent.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    Image.fromarray(rng.integers(0, 256, (16, 16, 3), dtype=np.uint8)).save(path)


def test_non_utf8_file_name_is_a_finding_and_every_writer_survives_it(tmp_path, scan_to):
    data = tmp_path / "data"
    (data / "imgs").mkdir(parents=True)
    with open(os.fsencode(data) + b"/bad\xffname.csv", "wb") as f:
        f.write(TABLE.encode())
    _png(data / "imgs" / "a.png")
    import numpy as np
    from PIL import Image

    Image.fromarray(np.full((16, 16, 3), 7, np.uint8)).save(os.fsencode(data) + b"/imgs/caf\xe9.png")
    before = tree_digest(data)
    s = scan_to(data)
    assert s.codes() == ["DS012", "DS012", "DS204"]  # DS204: the constant image
    assert sorted(s.findings[s.findings["code"] == "DS012"]["source"]) == ["bad\\xffname.csv",
                                                                            "imgs/caf\\xe9.png"]
    src = s.source("bad\\xffname.csv")
    assert (src["seen"], src["kept"], src["quarantined"]) == (2, 2, 0)
    assert s.clean("bad\\xffname.csv").column("_row").to_pylist() == [0, 1]
    assert sorted(pq.read_table(s.out / "index.parquet").column("sample").to_pylist()) == [
        "imgs/a.png", "imgs/caf\\xe9.png"]
    assert s.report["internal_errors"] == []
    assert tree_digest(data) == before
    res = runner.invoke(app, ["scan", str(data), "--out", str(tmp_path / "cli"), "--no-probe",
                              "--workers", "1", "--format", "junit"])
    assert res.exit_code == 0, res.output


def test_file_name_too_long_for_its_clean_copy_gets_a_shortened_recorded_name(tmp_path, scan_to):
    data = tmp_path / "data"
    data.mkdir()
    name = "a" * 247 + ".csv"  # 251 bytes: clean/<name>.parquet would be 259
    (data / name).write_text(TABLE)
    (data / "ok.csv").write_text(TABLE)
    s = scan_to(data)
    assert s.codes() == ["DS013"]
    clean_file = s.source(name)["clean_file"]
    assert clean_file.startswith("clean/" + "a" * 238 + "~") and clean_file.endswith(".parquet")
    assert len(os.path.basename(clean_file).encode()) == 255
    assert pq.read_table(s.out / clean_file).column("_row").to_pylist() == [0, 1]
    assert s.source("ok.csv")["clean_file"] == "clean/ok.csv.parquet"
    # the same name twice gives the same clean file (deterministic)
    assert scan_to(data).source(name)["clean_file"] == clean_file
    from datasan.scan_dataset import ScanDataset

    assert len(ScanDataset(str(s.out), source=name)) == 2  # served from its shortened clean file
    assert len(ScanDataset(str(s.out), source="*.csv")) == 4


def test_jsonl_record_nested_3000_deep_is_quarantined_as_record_too_deep(tmp_path, scan_to):
    data = tmp_path / "data"
    data.mkdir()
    deep = '{"x": ' + "[" * 3000 + "]" * 3000 + ', "label": 1}'
    (data / "t.jsonl").write_text('{"x": 1, "label": 0}\n' + deep + '\n{"x": 2, "label": 0}\n')
    s = scan_to(data)
    assert s.codes() == ["DS014"]
    assert s.rows("DS014", "t.jsonl") == [1]
    assert s.quarantine["sample"].tolist() == ["t.jsonl#1"]
    src = s.source("t.jsonl")
    assert (src["seen"], src["kept"]) == (3, 2)


def _remove_deep(top: Path) -> None:
    """Remove the chain top/d/d/... without recursion (shutil.rmtree, and so pytest's own
    clean-up of old tmp folders, recurses once per level and would fail on it)."""
    import shutil

    while (top / "d").exists():
        if (top / "d" / "d").exists():
            os.rename(top / "d" / "d", top / "next")
        shutil.rmtree(top / "d")
        if (top / "next").exists():
            os.rename(top / "next", top / "d")


def test_folders_1500_deep_stop_at_the_depth_limit_with_a_finding(tmp_path, scan_to):
    from datasan.discover import MAX_DEPTH

    data = tmp_path / "data"
    data.mkdir()
    (data / "ok.csv").write_text(TABLE)
    fd = os.open(data, os.O_RDONLY)
    try:  # os.makedirs itself recurses once per level: build the tree relative to a descriptor
        for i in range(1500):
            os.mkdir("d", dir_fd=fd)
            new = os.open("d", os.O_RDONLY, dir_fd=fd)
            os.close(fd)
            fd = new
            if i == 9:
                with open(os.open("shallow.csv", os.O_WRONLY | os.O_CREAT, 0o644, dir_fd=fd), "w") as f:
                    f.write(TABLE)
        os.close(fd)
        s = scan_to(data)
        assert s.codes() == ["DS015"]
        deep = s.findings[s.findings["code"] == "DS015"]["source"].iloc[0]
        assert deep == "/".join(["d"] * (MAX_DEPTH + 1))
        assert sorted(x["source"] for x in s.report["sources"]) == ["d/" * 10 + "shallow.csv", "ok.csv"]
    finally:
        _remove_deep(data)


def test_unlisted_images_beside_a_labels_table_join_its_set(tmp_path, scan_to):
    data = tmp_path / "data"
    _png(data / "a.png", 1)
    _png(data / "b.png", 2)
    (data / "img").mkdir()
    (data / "img" / "broken.jpg").write_bytes(b"\xff\xd8\xff\xe0garbage")
    (data / "labels.csv").write_text("file,label\nimg/broken.jpg,0\n")
    s = scan_to(data)
    assert s.codes() == ["DS201", "DS301", "DS301"]
    src = s.source(".")
    assert (src["seen"], src["kept"], src["quarantined"]) == (3, 0, 3)
    assert s.report["internal_errors"] == []


def _two_tables(tmp_path: Path) -> Path:
    data = tmp_path / "data"
    data.mkdir()
    (data / "a.csv").write_text(TABLE)
    (data / "b.csv").write_text("x,label\n1,0\n2,1\n3,0\n")
    return data


def _break_table_checks(monkeypatch, name: str) -> None:
    from datasan.checks.tables import columns

    real = columns.dataset_findings

    def broken(source, *args, **kwargs):
        if source == name:
            raise ZeroDivisionError("planted bug")
        return real(source, *args, **kwargs)

    monkeypatch.setattr(columns, "dataset_findings", broken)


def test_a_source_that_raises_is_quarantined_as_internal_error_and_the_rest_is_written(
        tmp_path, scan_to, monkeypatch):
    data = _two_tables(tmp_path)
    _break_table_checks(monkeypatch, "b.csv")
    s = scan_to(data)
    assert s.codes() == ["DS011"]
    f = s.findings.iloc[0]
    assert (f["sample"], f["source"], f["severity"]) == ("b.csv", "b.csv", "error")
    assert "ZeroDivisionError: planted bug" in f["message"] and "(at datasan/sources/tables/kind.py:" in f["message"]
    assert s.quarantine[["sample", "codes"]].values.tolist() == [["b.csv", "DS011"]]
    b = s.source("b.csv")
    assert (b["unit"], b["seen"], b["kept"], b["quarantined"]) == ("files", 1, 0, 1)
    a = s.source("a.csv")
    assert (a["seen"], a["kept"]) == (2, 2)
    assert s.clean("a.csv").num_rows == 2
    assert sorted(p.name for p in (s.out / "clean").iterdir()) == ["a.csv.parquet"]
    [err] = s.report["internal_errors"]
    assert err["source"] == "b.csv" and err["kind"] == "tables"
    assert s.result.internal_errors == [err] and not s.result.passed


def test_cli_exits_3_after_writing_everything_when_a_source_fails(tmp_path, monkeypatch):
    data = _two_tables(tmp_path)
    _break_table_checks(monkeypatch, "a.csv")
    out = tmp_path / "out"
    res = runner.invoke(app, ["scan", str(data), "--out", str(out), "--no-probe", "--workers", "1",
                              "--fail-on", "never"])
    assert res.exit_code == 3, res.output
    assert "bug in datasan" in res.output and "ZeroDivisionError" in res.output and str(out) in res.output
    names = sorted(p.name for p in out.iterdir())
    assert names == [".datasan.lock", "clean", "findings.parquet", "manifest.json", "quarantine.csv",
                     "quarantine.parquet", "report.html", "report.json", "stats.json"]
    report = json.loads((out / "report.json").read_text())
    assert [e["source"] for e in report["internal_errors"]] == ["a.csv"]
    assert report["quarantined"] == 1 and report["kept"] == 3


def test_a_source_that_breaks_kept_plus_quarantined_is_isolated(tmp_path, scan_to, monkeypatch):
    import datasan.sources.tables as tables

    data = _two_tables(tmp_path)
    real = tables.TableKind.run

    def lossy(self, sources, ctx):
        outcomes, extra = real(self, sources, ctx)
        for oc in outcomes:
            if oc.source.name == "a.csv":
                oc.kept -= 1  # a row lost
        return outcomes, extra

    monkeypatch.setattr(tables.TableKind, "run", lossy)
    s = scan_to(data)
    assert s.codes() == ["DS011"]
    assert "InvariantError: kept 1 + quarantined 0 != rows seen 2" in s.findings["message"].iloc[0]
    assert s.quarantine["sample"].tolist() == ["a.csv"]
    assert s.source("b.csv")["kept"] == 3
    for src in s.report["sources"]:
        assert src["kept"] + src["quarantined"] == src["seen"]


def test_csv_header_longer_than_64_kib_is_read(tmp_path, scan_to):
    data = tmp_path / "data"
    data.mkdir()
    names = [f"feature_{i:05d}" for i in range(5000)] + ["label"]  # a 70 KB header line
    rows = [",".join(["0.5"] * 5000 + ["0"]), ",".join(["1.5"] * 4999 + ["nan", "1"])]
    (data / "wide.csv").write_text(",".join(names) + "\n" + "\n".join(rows) + "\n")
    s = scan_to(data)
    assert s.codes() == ["DS101"]
    assert s.findings["column"].tolist() == ["feature_04999"]
    assert s.quarantine["sample"].tolist() == ["wide.csv#1"]
    assert s.clean("wide.csv").num_columns == 5002  # every column, plus _row


def _gif(frames: int, size: int = 32) -> bytes:
    import io

    import numpy as np
    from PIL import Image

    rng = np.random.default_rng(0)
    ims = [Image.fromarray(rng.integers(0, 256, (size, size, 3), dtype=np.uint8)) for _ in range(frames)]
    buf = io.BytesIO()
    ims[0].save(buf, format="GIF", save_all=True, append_images=ims[1:], duration=100)
    return buf.getvalue()


def test_truncated_animated_gif_is_undecodable_though_frame_0_is_fine(tmp_path, scan_to):
    data = tmp_path / "data"
    data.mkdir()
    good = _gif(3)
    (data / "ok.gif").write_bytes(good)
    (data / "cut.gif").write_bytes(good[: int(len(good) * 0.8)])  # frames 0 and 1 intact
    s = scan_to(data)
    assert s.codes() == ["DS201"]
    f = s.findings.iloc[0]
    assert f["sample"] == "cut.gif" and "frame 2 of 3" in f["message"]
    assert pq.read_table(s.out / "index.parquet").column("sample").to_pylist() == ["ok.gif"]


def test_the_bomb_limit_counts_every_frame(tmp_path, scan_to):
    data = tmp_path / "data"
    data.mkdir()
    (data / "anim.gif").write_bytes(_gif(5))  # 5 x 32 x 32 = 5,120 pixels
    s = scan_to(data, thresholds={"max_image_pixels": 4096})
    assert s.codes() == ["DS202"]
    assert "5 frames of 32 x 32 = 5,120 pixels" in s.findings["message"].iloc[0]


def _swap_for_fifo_after_discovery(monkeypatch, *rels: str) -> None:
    """Discovery sees regular files; then each named file becomes a FIFO (no writer ever
    opens it: a reader that blocks on it hangs the test)."""
    import datasan.pipeline as pipeline

    real = pipeline.discover

    def swapped(path):
        found = real(path)
        for rel in rels:
            p = os.path.join(found.root, rel)
            os.replace(p, p + ".orig")
            os.mkfifo(p)
        return found

    monkeypatch.setattr(pipeline, "discover", swapped)


def test_files_swapped_for_fifos_after_discovery_are_findings_not_hangs(tmp_path, scan_to, monkeypatch):
    import signal

    data = tmp_path / "data"
    data.mkdir()
    (data / "a.csv").write_text(TABLE)
    (data / "b.csv").write_text(TABLE)
    (data / "t.parquet").write_bytes(b"")  # replaced below
    import pyarrow as pa

    pq.write_table(pa.table({"x": [1.0, 2.0], "label": [0, 1]}), data / "t.parquet")
    _png(data / "imgs" / "a.png", 1)
    _png(data / "imgs" / "b.png", 2)
    (data / "coco").mkdir()
    (data / "coco" / "ann.json").write_text(json.dumps(
        {"images": [], "annotations": [], "categories": []}))
    _swap_for_fifo_after_discovery(monkeypatch, "b.csv", "t.parquet", "imgs/b.png", "coco/ann.json")
    signal.alarm(60)  # a regression hangs: fail instead of blocking the suite
    try:
        s = scan_to(data)
    finally:
        signal.alarm(0)
    by_source = dict(zip(s.findings["source"], s.findings["code"]))
    assert by_source == {"b.csv": "DS007", "t.parquet": "DS007", "imgs/b.png": "DS201",
                         "coco/ann.json": "DS007"}
    assert "now a FIFO" in " ".join(s.findings["message"])
    assert (s.source("a.csv")["kept"], s.source("imgs")["kept"]) == (2, 1)
