"""--engine ray: the same findings, quarantine, clean files, index and statistics as the local engine.

One Ray instance serves the whole test session (conftest's ``ray_cluster``): a
simulated two-node cluster, one CPU per node, so tasks really land on two
raylets.  Without ray the tests skip on a laptop and fail under CI=true.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from run_compare import close_json, files_of, table_of

REPO = Path(__file__).resolve().parent.parent
SAMPLE = REPO / "sample_data"


# ------------------------------------------------------------------ comparing two runs
def _scan(path: Path, out: Path, **options):
    import datasan

    options.setdefault("config", False)
    return datasan.scan(path, out_dir=str(out), **options)


def assert_same_run(a: Path, b: Path) -> None:
    """Two output folders hold the same findings, quarantine, clean files, index and stats."""
    names = files_of(a)
    assert names == files_of(b)
    for rel in ("findings.parquet", "quarantine.parquet", "index.parquet"):
        if rel in names:
            assert table_of(a / rel).equals(table_of(b / rel)), rel
    for rel in names:
        if rel.startswith("clean/"):
            if rel.endswith(".parquet"):
                assert table_of(a / rel).equals(table_of(b / rel)), rel
            else:
                assert (a / rel).read_bytes() == (b / rel).read_bytes(), rel
    sa, sb = (json.loads((d / "stats.json").read_text()) for d in (a, b))
    sa.pop("run_id"), sb.pop("run_id")
    close_json(sa, sb, "stats")
    ra, rb = (json.loads((d / "report.json").read_text()) for d in (a, b))
    counts = ("samples", "kept", "quarantined", "files")
    assert [ra[k] for k in counts] == [rb[k] for k in counts]
    assert ra["sources"] == rb["sources"]


# ------------------------------------------------------------------ generated data
def _generated(root: Path) -> Path:
    """A Parquet table of 6 row groups with defects in several of them (rows duplicated across
    groups), an image folder with a broken image, and the sample COCO/YOLO box labels."""
    import shutil

    import numpy as np
    import pyarrow as pa
    import pyarrow.parquet as pq
    from PIL import Image

    rng = np.random.default_rng(3)
    n = 1200
    x = rng.normal(size=(n, 3))
    x[[5, 450, 1100], 0] = np.nan
    x[700, 1] = np.inf
    x[900] = x[100]  # a duplicate of a row in another shard
    y = (x[:, 2] > 0).astype(np.int64)
    y[333] = -1
    y[900] = y[100]
    (root / "t").mkdir(parents=True)
    pq.write_table(pa.table({"a": x[:, 0], "b": x[:, 1], "c": x[:, 2], "label": y}), root / "t" / "big.parquet",
                   row_group_size=200)
    for k in range(12):
        d = root / "imgs" / ("cat" if k % 2 else "dog")
        d.mkdir(parents=True, exist_ok=True)
        Image.fromarray(rng.integers(0, 256, (12, 12, 3), dtype=np.uint8)).save(d / f"{k}.png")
    (root / "imgs" / "cat" / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\n not really")
    shutil.copytree(SAMPLE / "detection" / "coco", root / "coco")
    shutil.copytree(SAMPLE / "detection" / "yolo", root / "yolo")
    return root


def test_sample_data_matches_the_local_engine(ray_cluster, tmp_path):
    local = _scan(SAMPLE, tmp_path / "local", workers=1, probe=False)
    ray = _scan(SAMPLE, tmp_path / "ray", engine="ray", probe=False)
    assert_same_run(tmp_path / "local", tmp_path / "ray")
    assert local.summary.quarantined == ray.summary.quarantined == 50
    assert json.loads((tmp_path / "ray" / "report.json").read_text())["options"]["engine"] == "ray"


def test_split_table_images_boxes_and_probe_match_the_local_engine(ray_cluster, tmp_path):
    data = _generated(tmp_path / "data")
    opts = dict(probe=True, shard_rows=400, shard_images=4, select=["DS1", "DS2", "DS3", "DS4"])
    _scan(data, tmp_path / "local", workers=1, **opts)
    r = _scan(data, tmp_path / "ray", engine="ray", **opts)
    assert_same_run(tmp_path / "local", tmp_path / "ray")
    table = next(s for s in r.summary.sources if s["source"] == "t/big.parquet")
    # 3 NaN, 1 inf, 1 negative class id; the duplicate pair spans shards 0 and 2
    assert (table["seen"], table["kept"], table["quarantined"]) == (1200, 1195, 5)
    dup = r.findings[r.findings["code"] == "DS110"]
    assert dup["row"].tolist() == [900]
    assert r.summary.probe["ran"] is True


def test_config_engine_key_and_the_cli_flag_choose_ray(ray_cluster, tmp_path):
    from typer.testing import CliRunner

    import datasan
    from datasan.cli import app

    (tmp_path / "datasan.toml").write_text('engine = "ray"\nprobe = false\n')
    r = datasan.scan(SAMPLE / "tables" / "iris.csv", config=str(tmp_path / "datasan.toml"))
    assert r.summary.options["engine"] == "ray"
    res = CliRunner().invoke(app, ["scan", str(SAMPLE / "tables" / "iris.csv"), "--engine", "ray", "--no-probe",
                                   "--out", str(tmp_path / "o"), "--config", str(tmp_path / "datasan.toml")])
    assert res.exit_code == 0, res.output
    assert json.loads((tmp_path / "o" / "report.json").read_text())["options"]["engine"] == "ray"


def _flaky_scan_shard(task):
    """scan_shard, but the first call kills its worker process (a marker beside the data folder
    says it happened: Ray workers do not see the test's environment changes)."""
    from datasan.sources.tables.scan import scan_shard

    marker = os.path.join(os.path.dirname(os.path.dirname(os.path.dirname(task.plan.path))), "killed")
    try:
        fd = os.open(marker, os.O_CREAT | os.O_EXCL | os.O_WRONLY)
    except FileExistsError:
        return scan_shard(task)
    os.close(fd)
    os._exit(1)  # the worker dies mid-scan, as an out-of-memory kill would end it


def test_a_worker_killed_mid_scan_is_retried_with_identical_results(ray_cluster, tmp_path, monkeypatch):
    import ray.cloudpickle

    from datasan.sources.tables import kind

    ray.cloudpickle.register_pickle_by_value(sys.modules[__name__])  # the workers cannot import tests/
    data = _generated(tmp_path / "data")
    opts = dict(probe=False, shard_rows=400, select=["DS1"])
    _scan(data, tmp_path / "local", workers=1, **opts)
    marker = tmp_path / "killed"  # data/t/big.parquet -> tmp_path/killed
    monkeypatch.setattr(kind, "scan_shard", _flaky_scan_shard)
    try:
        _scan(data, tmp_path / "ray", engine="ray", **opts)
    finally:
        ray.cloudpickle.unregister_pickle_by_value(sys.modules[__name__])
    assert marker.exists()  # a worker really died
    assert_same_run(tmp_path / "local", tmp_path / "ray")


def test_engine_ray_without_ray_exits_2_with_the_install_command(tmp_path):
    code = (
        "import sys; sys.modules['ray'] = None\n"  # ray unimportable, installed or not
        "from datasan.cli import main; sys.argv = ['datasan', 'scan', sys.argv[1], '--engine', 'ray',"
        " '--out', sys.argv[2]]; main()"
    )
    p = subprocess.run([sys.executable, "-c", code, str(SAMPLE / "tables"), str(tmp_path / "out")],
                       capture_output=True, text=True, cwd=tmp_path)
    assert p.returncode == 2
    assert 'pip install "datasan[ray]"' in " ".join(p.stderr.split())  # rich wraps long lines
    assert not (tmp_path / "out").exists()  # nothing written


def test_ray_is_imported_only_for_engine_ray(tmp_path):
    code = ("import sys, datasan; datasan.scan(sys.argv[1], probe=False, workers=1, config=False);"
            "print('ray' in sys.modules)")
    p = subprocess.run([sys.executable, "-c", code, str(SAMPLE / "tables" / "iris.csv")],
                       capture_output=True, text=True, cwd=tmp_path)
    assert p.returncode == 0, p.stderr
    assert p.stdout.strip() == "False"


def test_ray_address_defaults_to_the_environment(monkeypatch):
    from conftest import _import_ray

    _import_ray()
    from datasan.ray_engine import RayEngine

    monkeypatch.setenv("RAY_ADDRESS", "ray://head:10001")
    assert RayEngine().address == "ray://head:10001"
    assert RayEngine("auto").address == "auto"
    monkeypatch.delenv("RAY_ADDRESS")
    assert RayEngine().address is None  # a local instance with this machine's cores


def test_cli_starts_and_stops_its_own_local_instance(ray_cluster, tmp_path):
    """Without --ray-address or RAY_ADDRESS the command starts a new local instance (not the
    session's cluster, though one runs on this machine) and stops it when the scan ends."""
    env = {k: v for k, v in os.environ.items() if k != "RAY_ADDRESS"}
    p = subprocess.run([sys.executable, "-m", "datasan", "scan", str(SAMPLE / "tables" / "iris.csv"), "--engine",
                        "ray", "--no-probe", "--out", str(tmp_path / "o"), "--quiet"],
                       capture_output=True, text=True, cwd=tmp_path, env=env, timeout=300)
    assert p.returncode == 0, p.stderr[-2000:]
    report = json.loads((tmp_path / "o" / "report.json").read_text())
    assert report["options"]["engine"] == "ray" and report["kept"] == 150


def test_every_node_must_see_the_local_paths_workers_use(ray_cluster, tmp_path):
    from datasan.errors import UsageError
    from datasan.ray_engine import RayEngine

    engine = RayEngine()
    engine.check_shared_paths([str(SAMPLE), str(tmp_path)])  # the simulated nodes share this disk
    with pytest.raises(UsageError, match="does not see .*gone"):
        engine.check_shared_paths([str(SAMPLE), str(tmp_path / "gone")])


def test_cli_joins_a_running_cluster_by_its_address(ray_cluster, tmp_path):
    address = ray_cluster.get_runtime_context().gcs_address
    p = subprocess.run([sys.executable, "-m", "datasan", "scan", str(SAMPLE / "tables" / "defects.csv"),
                        "--engine", "ray", "--ray-address", address, "--no-probe", "--out", str(tmp_path / "o"),
                        "--quiet"], capture_output=True, text=True, cwd=tmp_path, timeout=300)
    assert p.returncode == 1, p.stderr[-2000:]  # defects.csv fails the gate: 12 rows quarantined
    report = json.loads((tmp_path / "o" / "report.json").read_text())
    assert (report["options"]["engine"], report["kept"], report["quarantined"]) == ("ray", 29, 12)
