"""Incremental scans: a warm scan (answered from the content cache) writes exactly what a cold
scan writes, after files are added, changed, removed or renamed; options and thresholds
miss; damaged entries are dropped and recomputed; the folder stays within its bound."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

from typer.testing import CliRunner

from conftest import SAMPLE
from run_compare import close_json, table_of

import datasan
from datasan.cache import CacheStore
from datasan.cli import app

VOLATILE_REPORT = {"run_id", "started", "seconds", "cache", "out"}


def _scan(path: Path, out: Path, cache: Path | None, **options):
    options.setdefault("probe", False)
    options.setdefault("report_html", False)
    options.setdefault("workers", 1)
    return datasan.scan(str(path), out_dir=str(out), config=False, cache=str(cache) if cache else "off", **options)


def assert_same_outputs(cold: Path, warm: Path, skip: tuple[str, ...] = ()) -> None:
    """Findings, quarantine, clean files, index and stats equal; report.json equal but for timings."""
    names = sorted(p.relative_to(cold).as_posix() for p in cold.rglob("*") if p.is_file())
    assert names == sorted(p.relative_to(warm).as_posix() for p in warm.rglob("*") if p.is_file())
    for rel in names:
        if rel.endswith(".parquet"):
            a, b = table_of(cold / rel), table_of(warm / rel)
            assert a.schema == b.schema and a.to_pandas().equals(b.to_pandas()), rel  # NaN equals NaN
        elif rel.endswith(".csv") or rel.startswith("clean/"):
            assert (cold / rel).read_bytes() == (warm / rel).read_bytes(), rel
    stats = [json.loads((d / "stats.json").read_text()) for d in (cold, warm)]
    for s in stats:
        s.pop("run_id")
    close_json(stats[0], stats[1], "stats")
    reports = [json.loads((d / "report.json").read_text()) for d in (cold, warm)]
    for r in reports:
        for k in VOLATILE_REPORT | set(skip):
            r.pop(k, None)
    assert reports[0] == reports[1]


class Rescans:
    """Scans of one folder: each warm scan through the cache is checked against a cold scan."""

    def __init__(self, tmp: Path, data: Path, **options) -> None:
        self.tmp, self.data, self.options, self.n = tmp, data, options, 0
        self.cache = tmp / "cache"

    def scan(self, **more) -> dict:
        self.n += 1
        opts = {**self.options, **more}
        cold = self.tmp / f"cold{self.n}"
        warm = self.tmp / f"warm{self.n}"
        _scan(self.data, cold, None, **opts)
        result = _scan(self.data, warm, self.cache, **opts)
        assert_same_outputs(cold, warm)
        return result.summary.cache


def table_rescans(tmp: Path) -> Rescans:
    """Rescans of ``tmp``/data holding :func:`_tables` (big.parquet in 3 shards of 2 row groups)."""
    data = tmp / "data"
    data.mkdir()
    _tables(data)
    return Rescans(tmp, data, shard_rows=1000)


def _tables(root: Path, rows: int = 3000) -> None:
    import numpy as np
    import pyarrow as pa
    import pyarrow.parquet as pq

    rng = np.random.default_rng(7)
    x = rng.normal(size=rows)
    x[[5, 1700, 2900]] = np.nan
    y = rng.integers(0, 3, rows)
    y[2500] = 400  # a distant class id
    big = pa.table({"x": x, "z": rng.normal(size=rows) * 10, "label": y})
    pq.write_table(big, root / "big.parquet", row_group_size=500)  # 6 row groups
    root.joinpath("small.csv").write_text("a,b,label\n1,2,0\n3,inf,1\n1,2,0\n5,6,1\n")


def test_sample_data_warm_scan_equals_cold_and_runs_no_shard(tmp_path, monkeypatch):
    from datasan.cache import keys

    monkeypatch.setattr(keys, "STAT_FAST_PATH_BYTES", 0)  # every file takes the stat fast path
    data = tmp_path / "data"
    shutil.copytree(SAMPLE, data)
    rs = Rescans(tmp_path, data)
    first = rs.scan()
    assert first["hits"] == 0 and first["misses"] > 0 and first["stored"] == first["misses"]
    second = rs.scan()
    # every shard answered from the cache: no shard function ran, no file was hashed again
    assert second["misses"] == 0 and second["uncacheable"] == 0 and second["hashed_files"] == 0
    assert second["hits"] == first["stored"]


def test_tables_in_shards_add_change_delete_rename(tmp_path):
    rs = table_rescans(tmp_path)  # big.parquet: 3 shards of 2 row groups
    data = rs.data
    rs.scan()
    c = rs.scan()
    assert (c["hits"], c["misses"]) == (6, 0)  # 2 profiles + 3 shards + 1 csv shard
    (data / "new.csv").write_text("a,label\n1,0\nnan,1\n")
    c = rs.scan()
    assert (c["hits"], c["misses"]) == (6, 2)
    (data / "small.csv").write_text("a,b,label\n1,2,0\n3,4,1\n")
    c = rs.scan()
    assert (c["hits"], c["misses"]) == (6, 2)
    (data / "new.csv").rename(data / "renamed.csv")  # a new name is a new sample id: recomputed
    c = rs.scan()
    assert (c["hits"], c["misses"]) == (6, 2)
    (data / "renamed.csv").unlink()
    c = rs.scan()
    assert (c["hits"], c["misses"]) == (6, 0)


def test_changed_threshold_or_rule_selection_misses(tmp_path):
    rs = table_rescans(tmp_path)
    rs.scan()
    c = rs.scan(thresholds={"scale_limit": 5.0})
    assert c["hits"] == 0 and c["misses"] == 6
    c = rs.scan(ignore=["DS101"])
    assert c["hits"] == 0 and c["misses"] == 6
    c = rs.scan(workers=2, fail_on="warning")  # where it runs and the gate change no result
    assert c["misses"] == 0


def _images(root: Path, n: int = 12) -> None:
    import numpy as np
    from PIL import Image

    rng = np.random.default_rng(3)
    for k in range(n):
        folder = root / ("cat" if k % 2 else "dog")
        folder.mkdir(parents=True, exist_ok=True)
        Image.fromarray(rng.integers(0, 256, (24, 24, 3), dtype=np.uint8)).save(folder / f"{k:03d}.png")
    (root / "dog" / "000.png").write_bytes((root / "dog" / "002.png").read_bytes())  # a duplicate
    (root / "cat" / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\n not an image")


def test_images_add_change_delete_rename(tmp_path):
    import numpy as np
    from PIL import Image

    data = tmp_path / "imgs"
    _images(data)
    rs = Rescans(tmp_path, data, shard_images=4)
    rs.scan()
    c = rs.scan()
    assert (c["hits"], c["misses"]) == (13, 0)
    Image.fromarray(np.zeros((24, 24, 3), np.uint8) + 90).save(data / "cat" / "001.png")  # changed
    shutil.copy(data / "dog" / "004.png", data / "cat" / "new.png")  # added: a duplicate across files
    c = rs.scan()
    assert (c["hits"], c["misses"]) == (12, 2)
    (data / "dog" / "006.png").rename(data / "cat" / "006.png")  # renamed: new sample id and label
    (data / "dog" / "008.png").unlink()
    c = rs.scan()
    assert (c["hits"], c["misses"]) == (12, 1)


def test_yolo_labels_change(tmp_path):
    data = tmp_path / "det"
    shutil.copytree(SAMPLE / "detection" / "yolo", data)
    rs = Rescans(tmp_path, data)
    rs.scan()
    c = rs.scan()
    assert c["misses"] == 0 and c["hits"] > 0
    label = sorted(data.rglob("labels/**/*.txt"))[0]
    label.write_text("0 0.5 0.5 0.2 0.2\n7 0.5 0.5 2.0 0.2\n")
    c2 = rs.scan()
    assert c2["misses"] == 1 and c2["hits"] == c["hits"] - 1


def test_damaged_entries_are_dropped_and_recomputed(tmp_path):
    rs = table_rescans(tmp_path)
    rs.scan()
    store = CacheStore(str(rs.cache))
    entries = sorted(p for p in (rs.cache / "entries").rglob("*") if p.is_file())
    # the largest entries hold the shards' clean parts: flip a byte in one, cut another short
    big = sorted(entries, key=lambda p: p.stat().st_size)[-2:]
    raw = bytearray(big[0].read_bytes())
    raw[len(raw) // 2] ^= 0xFF
    big[0].write_bytes(bytes(raw))
    big[1].write_bytes(big[1].read_bytes()[:100])
    c = rs.scan()
    assert c["corrupt"] == 2 and c["misses"] == 2 and c["stored"] == 2
    assert store.info().entries == len(entries)
    c = rs.scan()
    assert c["corrupt"] == 0 and c["misses"] == 0


def test_prune_keeps_the_folder_within_its_bound(tmp_path):
    data = tmp_path / "data"
    data.mkdir()
    _tables(data)
    cache = tmp_path / "cache"
    r = _scan(data, tmp_path / "o1", cache, shard_rows=1000, cache_max_bytes=20_000)
    store = CacheStore(str(cache))
    assert r.summary.cache["pruned"] > 0 and store.info().bytes <= 20_000
    (cache / "entries" / "keep.txt").write_text("not datasan's")
    runner = CliRunner()
    got = runner.invoke(app, ["cache", "prune", "--cache", str(cache), "--max-bytes", "0"])
    assert got.exit_code == 0, got.output
    assert store.info().entries == 0 and (cache / "entries" / "keep.txt").exists()
    got = runner.invoke(app, ["cache", "info", "--cache", str(cache)])
    assert got.output.splitlines() == [f"path: {cache}", "entries: 0", "bytes: 0"]


def test_command_line_caches_by_default_and_no_cache_turns_it_off(tmp_path, monkeypatch):
    data = tmp_path / "data"
    data.mkdir()
    (data / "t.csv").write_text("a,label\n1,0\n2,1\n")
    monkeypatch.chdir(tmp_path)
    from datasan.outputs.formats import html

    html._compiled_template.cache_clear()  # compiled once per process: compiled (and kept) here, whatever ran before
    runner = CliRunner()
    for k, extra in enumerate(([], [], ["--no-cache"])):
        got = runner.invoke(app, ["scan", str(data), "--out", f"o{k}", "--no-probe", "--workers", "1",
                                  "--format", "json", *extra])
        assert got.exit_code == 0, got.output
        cache = json.loads((tmp_path / f"o{k}" / "report.json").read_text())["cache"]
        if k == 2:
            assert cache == {"enabled": False}
        else:
            assert cache["path"].endswith("datasan") and (cache["hits"], cache["misses"]) == ((0, 2), (2, 0))[k]
    got = runner.invoke(app, ["cache", "clear"])
    # the profile, the shard, report.html's three charts (a, label, the label bars) and its
    # compiled template
    assert got.exit_code == 0 and got.output.startswith("removed 6 entries")


def test_a_cache_folder_that_cannot_be_made_leaves_the_scan_uncached(tmp_path):
    data = tmp_path / "data"
    data.mkdir()
    (data / "t.csv").write_text("a,label\n1,0\n")
    blocker = tmp_path / "file"
    blocker.write_text("x")
    r = _scan(data, tmp_path / "o", blocker / "sub")
    assert r.summary.cache["enabled"] is False and "cannot create" in r.summary.cache["error"]
    assert r.summary.samples == 1


def test_ray_engine_warm_scan_equals_a_cold_local_scan(ray_cluster, tmp_path):
    data = tmp_path / "data"
    data.mkdir()
    _tables(data)
    _images(data / "imgs")
    cache = tmp_path / "cache"
    _scan(data, tmp_path / "cold", None, shard_rows=1000)
    first = _scan(data, tmp_path / "ray1", cache, shard_rows=1000, engine="ray").summary.cache
    (data / "small.csv").write_text("a,b,label\n1,2,0\n")
    _scan(data, tmp_path / "cold2", None, shard_rows=1000)
    second = _scan(data, tmp_path / "ray2", cache, shard_rows=1000, engine="ray").summary.cache
    assert first["hits"] == 0 and (second["hits"], second["misses"]) == (first["stored"] - 2, 2)
    assert_same_outputs(tmp_path / "cold2", tmp_path / "ray2", skip=("options",))  # engine: ray


def test_concurrent_scans_share_one_cache(tmp_path):
    import subprocess
    import sys

    data = tmp_path / "data"
    data.mkdir()
    _tables(data)
    _images(data / "imgs")
    cache = tmp_path / "cache"
    code = ("import sys, datasan; datasan.scan(sys.argv[1], out_dir=sys.argv[2], config=False, probe=False, "
            "report_html=False, workers=1, shard_rows=1000, cache=sys.argv[3])")
    procs = [subprocess.Popen([sys.executable, "-c", code, str(data), str(tmp_path / f"c{k}"), str(cache)])
             for k in range(3)]
    assert [p.wait(timeout=300) for p in procs] == [0, 0, 0]
    _scan(data, tmp_path / "cold", None, shard_rows=1000)
    warm = _scan(data, tmp_path / "warm", cache, shard_rows=1000).summary.cache
    assert warm["misses"] == 0 and warm["corrupt"] == 0
    for d in ("c0", "c1", "c2", "warm"):
        assert_same_outputs(tmp_path / "cold", tmp_path / d)


def test_a_touched_file_is_hashed_again_and_still_hits(tmp_path, monkeypatch):
    import os

    from datasan.cache import keys

    monkeypatch.setattr(keys, "STAT_FAST_PATH_BYTES", 0)
    rs = table_rescans(tmp_path)
    data = rs.data
    rs.scan()
    st = os.stat(data / "big.parquet")
    os.utime(data / "big.parquet", ns=(st.st_atime_ns, st.st_mtime_ns + 10**9))  # same bytes, new mtime
    c = rs.scan()
    assert (c["hashed_files"], c["misses"], c["hits"]) == (1, 0, 6)
