"""A store --out end to end: workers stage the clean files in the bucket, a finished run is read
back from it, and the lease keeps two runs publishing to one prefix apart.

moto's standalone server on 127.0.0.1 (test_s3's ``s3`` fixture, one per module).
"""

from __future__ import annotations

import json
import threading

import pytest
from test_ray import _generated, assert_same_run
from test_s3 import BUCKET, SAMPLE, _download, s3  # noqa: F401 - s3 is the fixture

SPLIT = dict(probe=True, shard_rows=400, shard_images=4, select=["DS1", "DS2", "DS3", "DS4"], config=False)


def _keys(store, prefix: str) -> list[str]:
    import pyarrow.fs as pafs

    sel = pafs.FileSelector(prefix, recursive=True, allow_not_found=True)
    return sorted(i.path[len(prefix):].lstrip("/") for i in store.get_file_info(sel)
                  if i.type == pafs.FileType.File)


def _unwritten(path, out, **options):
    """A scan claimed for ``out`` and not yet published."""
    from datasan.config import build_options
    from datasan.pipeline import scan

    options.setdefault("config", False)
    options.setdefault("probe", False)
    config = options.pop("config")
    return scan(str(path), build_options(options, config), out_dir=out)


def _local_run(data, out, **options):
    import datasan

    r = datasan.scan(data, out_dir=str(out), **options)
    (out / ".datasan.lock").unlink(missing_ok=True)  # a local folder's lock; a store has the lease
    return r


def _split_run_in_the_store(s3, tmp_path, name: str, **engine):
    data = tmp_path / "data"
    if not data.exists():
        _generated(data)
    out = f"s3://{BUCKET}/store-runs/{name}"
    r = _unwritten(data, out, **SPLIT, **engine)
    staging = f".datasan-staging-{r.run_id}"
    assert r.workspace.staging == f"{out}/{staging}"
    # the table's 3 shard parts were assembled in the store, beside the label files the workers wrote
    assert "t/big.parquet.parquet" in r.clean_files and len(r.clean_files) == 8
    assert _keys(s3, f"{BUCKET}/store-runs/{name}") == sorted(
        [".datasan-lease.json", f"{staging}/.datasan-staging"] + [f"{staging}/clean/{c}" for c in r.clean_files])
    r.write(out)
    rels = _download(s3, f"{BUCKET}/store-runs/{name}", tmp_path / name)
    assert not [k for k in rels if k.startswith(".datasan")]  # no staging prefix, no lease left
    return r


def test_split_table_parts_go_straight_to_the_store_with_the_local_engine(s3, tmp_path):
    _generated(tmp_path / "data")
    _local_run(tmp_path / "data", tmp_path / "local", workers=1, **SPLIT)
    r = _split_run_in_the_store(s3, tmp_path, "pool", workers=2)
    assert_same_run(tmp_path / "local", tmp_path / "pool")
    table = next(s for s in r.summary.sources if s["source"] == "t/big.parquet")
    assert (table["seen"], table["kept"], table["quarantined"]) == (1200, 1195, 5)


def test_split_table_parts_go_straight_to_the_store_with_the_ray_engine(s3, ray_cluster, tmp_path):
    _generated(tmp_path / "data")
    _local_run(tmp_path / "data", tmp_path / "local", workers=1, **SPLIT)
    _split_run_in_the_store(s3, tmp_path, "ray", engine="ray", workers=0)
    assert_same_run(tmp_path / "local", tmp_path / "ray")


def test_late_drops_rewrite_the_clean_file_in_the_store(s3, tmp_path):
    import datasan

    _generated(tmp_path / "data")
    opts = dict(probe=False, shard_rows=400, select=["DS1"], severity={"DS110": "error"}, config=False)
    _local_run(tmp_path / "data" / "t", tmp_path / "local", workers=1, **opts)
    r = datasan.scan(tmp_path / "data" / "t", out_dir=f"s3://{BUCKET}/store-runs/late", workers=1, **opts)
    _download(s3, f"{BUCKET}/store-runs/late", tmp_path / "late")
    assert_same_run(tmp_path / "local", tmp_path / "late")
    assert (r.summary.sources[0]["kept"], r.summary.quarantined) == (1194, 6)  # the duplicate row too


# ------------------------------------------------------------------ reading a finished run
def test_report_load_and_verify_read_a_run_in_the_store(s3, tmp_path):
    from typer.testing import CliRunner

    import datasan
    from datasan.cli import app
    from datasan.outputs.manifest import OutputMismatch, verify_output
    from datasan.result import ScanResult

    out = f"s3://{BUCKET}/store-runs/read"
    local = datasan.scan(SAMPLE / "tables", out_dir=str(tmp_path / "local"), probe=False, config=False)
    r = datasan.scan(SAMPLE / "tables", out_dir=out, probe=False, config=False)
    assert verify_output(out)["run_id"] == r.run_id
    back = ScanResult.load(out)
    assert back.findings_table.replace_schema_metadata(None).equals(local.findings_table)
    assert (back.summary.samples, back.summary.quarantined, back.passed) == \
        (local.summary.samples, local.summary.quarantined, False)
    assert back.summary.quarantined == 16
    runner = CliRunner()
    for fmt in ("text", "json", "markdown", "github", "junit", "html"):
        res = runner.invoke(app, ["report", out, "--format", fmt])
        assert res.exit_code == 1, (fmt, res.output)  # defects.csv fails the gate, as the scan did
    res = runner.invoke(app, ["report", out, "--format", "json"])
    doc = json.loads(res.stdout)
    same = json.loads(runner.invoke(app, ["report", str(tmp_path / "local"), "--format", "json"]).stdout)
    assert (doc["findings"], doc["gate"], doc["out"]) == (same["findings"], same["gate"], out)
    assert f'content="{r.run_id}"' in runner.invoke(app, ["report", out, "--format", "html"]).stdout
    # a file of another run put in place: the folder is mixed and readers refuse it
    datasan.scan(SAMPLE / "tables" / "iris.csv", out_dir=f"s3://{BUCKET}/store-runs/other", probe=False, config=False)
    s3.copy_file(f"{BUCKET}/store-runs/other/findings.parquet", f"{BUCKET}/store-runs/read/findings.parquet")
    with pytest.raises(OutputMismatch, match=r"findings.parquet \(changed: \d+ bytes, the run wrote \d+\)"):
        verify_output(out)
    assert runner.invoke(app, ["report", out]).exit_code == 2
    with pytest.raises(OutputMismatch, match="no such folder"):
        verify_output(f"s3://{BUCKET}/store-runs/nothing")


def test_safe_dataset_from_a_run_in_the_store(s3, tmp_path):
    import datasan
    from datasan import SafeDataset

    datasan.scan(SAMPLE / "images" / "folder", out_dir=str(tmp_path / "local"), probe=False, config=False)
    datasan.scan(f"s3://{BUCKET}/data/images/folder", out_dir=f"s3://{BUCKET}/store-runs/images", probe=False,
                 config=False)
    a = SafeDataset.from_scan(tmp_path / "local")
    b = SafeDataset.from_scan(f"s3://{BUCKET}/store-runs/images")  # images read from the bucket
    assert len(a) == len(b) > 0 and [a.sample_id(i) for i in range(len(a))] == [b.sample_id(i) for i in range(len(b))]
    (xa, ya), (xb, yb) = a[len(a) - 1], b[len(b) - 1]
    assert ya == yb and bool((xa == xb).all())
    datasan.scan(SAMPLE / "tables" / "iris.csv", out_dir=f"s3://{BUCKET}/store-runs/iris", probe=False, config=False,
                 target="label")
    rows = SafeDataset.from_scan(f"s3://{BUCKET}/store-runs/iris")
    assert len(rows) == 150 and rows[0][0].shape == (4,)


# ------------------------------------------------------------------ the lease
def test_two_runs_publishing_to_one_prefix_do_not_mix(s3, tmp_path):
    import datasan
    from datasan.errors import UsageError
    from datasan.outputs.manifest import verify_output

    out = f"s3://{BUCKET}/store-runs/race"
    start = threading.Barrier(2)
    won, refused = [], []

    def run(path):
        start.wait()
        try:
            won.append(datasan.scan(path, out_dir=out, probe=False, config=False))
        except UsageError as exc:
            refused.append(str(exc))

    threads = [threading.Thread(target=run, args=(SAMPLE / "tables" / name,)) for name in ("iris.csv", "defects.csv")]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert (len(won), len(refused)) == (1, 1) and "another datasan run" in refused[0]
    assert verify_output(out)["run_id"] == won[0].run_id  # one whole run, named by the manifest
    assert not [k for k in _keys(s3, f"{BUCKET}/store-runs/race") if k.startswith(".datasan")]


def test_a_run_that_lost_its_lease_publishes_nothing(s3, tmp_path):
    import datasan
    from datasan.errors import UsageError
    from datasan.outputs.manifest import verify_output

    out = f"s3://{BUCKET}/store-runs/lost"
    first = datasan.scan(SAMPLE / "tables" / "iris.csv", out_dir=out, probe=False, config=False)
    r = _unwritten(SAMPLE / "tables" / "defects.csv", out)
    # the lease expired while this run stalled and another run took it
    with s3.open_output_stream(f"{BUCKET}/store-runs/lost/.datasan-lease.json") as f:
        f.write(json.dumps({"datasan_lease": 1, "run_id": "the-other", "expires": 4e9}).encode())
    with pytest.raises(UsageError, match="no longer holds the lease"):
        r.write(out)
    assert verify_output(out)["run_id"] == first.run_id  # the previous complete run is untouched
    r.close()
    with s3.open_input_stream(f"{BUCKET}/store-runs/lost/.datasan-lease.json") as f:
        assert json.loads(f.read())["run_id"] == "the-other"  # not ours to remove
    with pytest.raises(UsageError, match="another datasan run, run the-other"):
        datasan.scan(SAMPLE / "tables" / "iris.csv", out_dir=out, probe=False, config=False)


def test_the_expired_lease_of_a_killed_run_is_taken_over(s3, tmp_path):
    import datasan

    out = f"s3://{BUCKET}/store-runs/expired"
    with s3.open_output_stream(f"{BUCKET}/store-runs/expired/.datasan-lease.json") as f:
        f.write(json.dumps({"datasan_lease": 1, "run_id": "killed", "expires": 1.0}).encode())
    r = datasan.scan(SAMPLE / "tables" / "iris.csv", out_dir=out, probe=False, config=False)
    assert json.loads(s3.open_input_stream(f"{BUCKET}/store-runs/expired/manifest.json").read())["run_id"] == r.run_id
    assert ".datasan-lease.json" not in _keys(s3, f"{BUCKET}/store-runs/expired")
