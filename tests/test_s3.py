"""PATH (and --out) on an S3-compatible store: moto's standalone server on 127.0.0.1, started here.

The scan of sample_data read from the bucket gives the same findings,
quarantine, clean rows, index and statistics as the scan of the local copy.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
from test_ray import assert_same_run

REPO = Path(__file__).resolve().parent.parent
SAMPLE = REPO / "sample_data"
BUCKET = "datasan-test"


def _import_moto_server():
    if os.environ.get("CI", "").lower() == "true":
        from moto.server import ThreadedMotoServer  # CI installs .[dev]: a skip would hide a failure

        return ThreadedMotoServer
    return pytest.importorskip("moto.server", reason='moto[server] is not installed (pip install -e ".[dev]")'
                               ).ThreadedMotoServer


@pytest.fixture(scope="module")
def s3():
    """A moto S3 server on 127.0.0.1 with sample_data uploaded under s3://datasan-test/data;
    the standard AWS variables point at it while the module's tests run."""
    import logging

    import pyarrow.fs as pafs

    server_cls = _import_moto_server()
    logging.getLogger("werkzeug").setLevel(logging.WARNING)  # one line per request otherwise
    server = server_cls(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    env = {"AWS_ENDPOINT_URL": f"http://{host}:{port}", "AWS_ACCESS_KEY_ID": "testing",
           "AWS_SECRET_ACCESS_KEY": "testing", "AWS_DEFAULT_REGION": "us-east-1"}
    saved = {k: os.environ.get(k) for k in env}
    os.environ.update(env)
    from datasan import fs
    from datasan.outputs import lease

    fs._filesystem.cache_clear()
    settle, lease.SETTLE_S = lease.SETTLE_S, 0.2  # one server, no clock to wait for
    store = pafs.S3FileSystem(endpoint_override=env["AWS_ENDPOINT_URL"], allow_bucket_creation=True)
    store.create_dir(BUCKET)
    pafs.copy_files(str(SAMPLE), f"{BUCKET}/data", destination_filesystem=store)
    yield store
    lease.SETTLE_S = settle
    fs._filesystem.cache_clear()
    for k, v in saved.items():
        if v is None:
            os.environ.pop(k, None)
        else:
            os.environ[k] = v
    server.stop()


def _scan(path, out, **options):
    import datasan

    options.setdefault("config", False)
    options.setdefault("probe", False)
    options.setdefault("workers", 1)
    return datasan.scan(path, out_dir=str(out), **options)


def test_a_bucket_scans_like_the_local_copy(s3, tmp_path):
    local = _scan(SAMPLE, tmp_path / "local")
    remote = _scan(f"s3://{BUCKET}/data", tmp_path / "remote")
    assert remote.summary.path == f"s3://{BUCKET}/data"
    assert (remote.summary.samples, remote.summary.quarantined) == (local.summary.samples, 50)
    assert_same_run(tmp_path / "local", tmp_path / "remote")


def _download(store, prefix: str, dest: Path) -> list[str]:
    """Copy every object under ``prefix`` to ``dest``; their relative keys, sorted."""
    import pyarrow.fs as pafs

    rels = []
    for info in store.get_file_info(pafs.FileSelector(prefix, recursive=True)):
        if info.type == pafs.FileType.File:
            rel = info.path[len(prefix):].lstrip("/")
            rels.append(rel)
            (dest / rel).parent.mkdir(parents=True, exist_ok=True)
            with store.open_input_stream(info.path) as f:
                (dest / rel).write_bytes(f.read())
    return sorted(rels)


def test_bucket_to_bucket_publishes_one_whole_run_with_the_manifest_last(s3, tmp_path):
    from datasan.outputs.manifest import verify_output

    before = _download(s3, f"{BUCKET}/data", tmp_path / "before")
    _scan(SAMPLE, tmp_path / "local")
    out = f"s3://{BUCKET}/runs/one"
    _scan(f"s3://{BUCKET}/data", out)
    for name, mark in ((".datasan-staging-cut-short", True), (".datasan-staging-not-ours", False)):
        with s3.open_output_stream(f"{BUCKET}/runs/one/{name}/findings.parquet") as f:
            f.write(b"left behind")
        if mark:
            with s3.open_output_stream(f"{BUCKET}/runs/one/{name}/.datasan-staging") as f:
                f.write(b"an earlier run\n")
    _scan(f"s3://{BUCKET}/data", out)  # a second run replaces the first and removes its own stale staging
    rels = _download(s3, f"{BUCKET}/runs/one", tmp_path / "remote")
    # this run's staging prefix and the one a run cut short left are gone; an unmarked one stays
    assert [r for r in rels if r.startswith(".datasan-staging-")] == [".datasan-staging-not-ours/findings.parquet"]
    (tmp_path / "remote" / ".datasan-staging-not-ours" / "findings.parquet").unlink()
    rels.remove(".datasan-staging-not-ours/findings.parquet")
    assert "manifest.json" in rels and ".datasan.lock" not in rels
    doc = json.loads((tmp_path / "remote" / "manifest.json").read_text())
    assert doc["complete"] is True and sorted(e["path"] for e in doc["files"]) == \
        sorted(r for r in rels if r != "manifest.json")
    verify_output(tmp_path / "remote")  # one complete run: every file carries the manifest's run id
    (tmp_path / "local" / ".datasan.lock").unlink(missing_ok=True)
    assert_same_run(tmp_path / "local", tmp_path / "remote")
    assert _download(s3, f"{BUCKET}/data", tmp_path / "after") == before  # PATH untouched


def test_ray_engine_reads_and_writes_the_bucket_like_the_local_engine(s3, ray_cluster, tmp_path):
    _scan(SAMPLE, tmp_path / "local")
    _scan(f"s3://{BUCKET}/data", f"s3://{BUCKET}/runs/ray", engine="ray", workers=0)
    _download(s3, f"{BUCKET}/runs/ray", tmp_path / "ray")
    (tmp_path / "local" / ".datasan.lock").unlink(missing_ok=True)
    assert_same_run(tmp_path / "local", tmp_path / "ray")


def test_out_inside_path_and_foreign_objects_are_refused(s3, tmp_path):
    import datasan
    from datasan.errors import UsageError

    with pytest.raises(UsageError, match="lies inside PATH"):
        datasan.scan(f"s3://{BUCKET}/data", out_dir=f"s3://{BUCKET}/data/out", probe=False, config=False)
    with s3.open_output_stream(f"{BUCKET}/theirs/notes.txt") as f:
        f.write(b"not datasan's")
    with pytest.raises(UsageError, match="not a datasan output"):
        datasan.scan(SAMPLE / "tables", out_dir=f"s3://{BUCKET}/theirs", probe=False, config=False)
    with s3.open_output_stream(f"{BUCKET}/theirs2/report.json") as f:
        f.write(b"{}")
    with pytest.raises(UsageError, match="datasan did not write"):
        datasan.scan(SAMPLE / "tables", out_dir=f"s3://{BUCKET}/theirs2", force=True, probe=False, config=False)
    with s3.open_input_stream(f"{BUCKET}/theirs2/report.json") as f:
        assert f.read() == b"{}"
    assert not [r for r in _download(s3, f"{BUCKET}/data", tmp_path / "d") if r.startswith("out/")]


def test_one_object_and_a_missing_prefix(s3, tmp_path):
    import datasan
    from datasan.errors import UsageError

    one = _scan(f"s3://{BUCKET}/data/tables/defects.csv", tmp_path / "one")
    src = one.summary.sources[0]
    assert (src["source"], src["seen"], src["kept"]) == ("defects.csv", 41, 29)
    with pytest.raises(UsageError, match="no such file or folder"):
        datasan.scan(f"s3://{BUCKET}/nothing-here", probe=False, config=False)


def test_an_unreachable_store_exits_2_naming_it(tmp_path, monkeypatch):
    import socket

    from typer.testing import CliRunner

    from datasan import fs
    from datasan.cli import app

    with socket.socket() as sock:  # a port nothing listens on
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    for k, v in {"AWS_ENDPOINT_URL": f"http://127.0.0.1:{port}", "AWS_ACCESS_KEY_ID": "x",
                 "AWS_SECRET_ACCESS_KEY": "y", "AWS_DEFAULT_REGION": "us-east-1"}.items():
        monkeypatch.setenv(k, v)
    fs._filesystem.cache_clear()
    try:
        runner = CliRunner()
        r = runner.invoke(app, ["scan", f"s3://{BUCKET}/data", "--no-probe", "--out", str(tmp_path / "o")])
        assert r.exit_code == 2 and f"cannot read s3://{BUCKET}/data" in " ".join(r.output.split())
        r = runner.invoke(app, ["scan", str(SAMPLE / "tables"), "--no-probe", "--out", f"s3://{BUCKET}/out"])
        assert r.exit_code == 2 and f"cannot write the outputs to s3://{BUCKET}/out" in " ".join(r.output.split())
    finally:
        fs._filesystem.cache_clear()
    assert not (tmp_path / "o").exists()


def test_file_uri_is_the_local_path(tmp_path):
    _scan(SAMPLE / "tables", tmp_path / "a")
    _scan((SAMPLE / "tables").as_uri(), (tmp_path / "b").as_uri())
    assert_same_run(tmp_path / "a", tmp_path / "b")
    assert json.loads((tmp_path / "b" / "report.json").read_text())["path"] == str(SAMPLE / "tables")


def test_a_bucket_rescans_from_the_local_cache(s3, tmp_path):
    uri = f"s3://{BUCKET}/data"
    cache = str(tmp_path / "cache")
    cold = _scan(uri, tmp_path / "cold", cache=cache).summary.cache
    warm = _scan(uri, tmp_path / "warm", cache=cache).summary.cache
    assert cold["hits"] == 0 and cold["stored"] > 0 and cold["uncacheable"] == 0
    # objects are known by size and modification time from the listing: nothing is read again
    assert (warm["hits"], warm["misses"], warm["hashed_files"]) == (cold["stored"], 0, 0)
    assert_same_run(tmp_path / "cold", tmp_path / "warm")
    key = f"{BUCKET}/data/tables/iris.csv"
    original = (SAMPLE / "tables" / "iris.csv").read_bytes()
    try:
        with s3.open_output_stream(key) as f:
            f.write(b"sepal,label\n1.0,0\nnan,1\n")
        changed = _scan(uri, tmp_path / "changed", cache=cache).summary.cache
        assert changed["misses"] == 2 and changed["hits"] == cold["stored"] - 2  # its profile and its shard
        _scan(uri, tmp_path / "uncached")
        assert_same_run(tmp_path / "uncached", tmp_path / "changed")
    finally:
        with s3.open_output_stream(key) as f:
            f.write(original)


def test_a_warm_scan_into_a_bucket_restores_cached_clean_files_there(s3, tmp_path):
    """Cached clean parts and YOLO label copies are put back into the run's staging prefix in the
    store (not a local folder), so a warm bucket-to-bucket run equals a cold one."""
    cache = str(tmp_path / "cache")
    cold = _scan(f"s3://{BUCKET}/data", f"s3://{BUCKET}/runs/cached-cold", cache=cache).summary.cache
    warm = _scan(f"s3://{BUCKET}/data", f"s3://{BUCKET}/runs/cached-warm", cache=cache).summary.cache
    assert cold["hits"] == 0 and cold["stored"] > 0
    assert (warm["hits"], warm["misses"]) == (cold["stored"], 0)
    _download(s3, f"{BUCKET}/runs/cached-cold", tmp_path / "cold")
    _download(s3, f"{BUCKET}/runs/cached-warm", tmp_path / "warm")
    assert_same_run(tmp_path / "cold", tmp_path / "warm")


def test_a_baseline_in_the_bucket_gates_and_compares_like_a_local_one(s3, tmp_path):
    """--baseline may name a run published to the store: as its folder, report.json or findings.parquet."""
    import datasan

    out = f"s3://{BUCKET}/runs/baseline"
    first = _scan(f"s3://{BUCKET}/data", out)
    assert not first.passed  # sample_data holds errors: without a baseline the gate fails
    _scan(f"s3://{BUCKET}/data", tmp_path / "local-base")
    local = _scan(SAMPLE, tmp_path / "vs-local", baseline=str(tmp_path / "local-base"))
    want_drift = json.loads((tmp_path / "vs-local" / "report.json").read_text())["drift"]
    for baseline in (out, f"{out}/report.json", f"{out}/findings.parquet"):
        res = _scan(SAMPLE, tmp_path / "vs-bucket", baseline=baseline, force=True)
        assert res.passed and res.verdict.new_findings == 0, baseline
        assert res.verdict.failing_findings == local.verdict.failing_findings == 0
        drift = json.loads((tmp_path / "vs-bucket" / "report.json").read_text())["drift"]
        # a findings.parquet beside its manifest counts as the folder: its statistics are compared too
        assert (drift["compared"], drift["baseline"], drift["baseline_run_id"]) == (True, baseline, first.run_id)
        assert [(c["metric"], c["column"], c["value"]) for c in drift["comparisons"]] == \
            [(c["metric"], c["column"], c["value"]) for c in want_drift["comparisons"]]
    with pytest.raises(datasan.UsageError, match="no findings file"):
        _scan(SAMPLE, tmp_path / "missing", baseline=f"s3://{BUCKET}/runs/nothing-here")
