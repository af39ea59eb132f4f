"""Shared test helpers: scanning into tmp folders and reading the contract files back."""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
SAMPLE = REPO / "sample_data"


def tree_digest(path: Path) -> dict[str, str]:
    """sha256 of every file under ``path`` (to prove PATH is never modified)."""
    out = {}
    for root, dirs, files in os.walk(path, followlinks=False):
        for name in files:
            p = Path(root) / name
            if p.is_symlink() or not p.is_file():
                out[str(p.relative_to(path))] = "special"
                continue
            out[str(p.relative_to(path))] = hashlib.sha256(p.read_bytes()).hexdigest()
    return out


class Scanned:
    """A scan written to an output folder, with the contract files loaded."""

    def __init__(self, result, out: Path) -> None:
        import pyarrow.parquet as pq

        self.result = result
        self.out = out
        self.findings = pq.read_table(out / "findings.parquet").to_pandas()
        self.quarantine = pq.read_table(out / "quarantine.parquet").to_pandas()
        self.report = json.loads((out / "report.json").read_text())
        self.stats = json.loads((out / "stats.json").read_text())
        self.run_id = self.stats.pop("run_id")  # differs per run; the statistics themselves do not

    def codes(self, source: str | None = None) -> list[str]:
        f = self.findings if source is None else self.findings[self.findings["source"] == source]
        return sorted(f["code"].tolist())

    def rows(self, code: str, source: str | None = None) -> list[int]:
        f = self.findings[self.findings["code"] == code]
        if source is not None:
            f = f[f["source"] == source]
        return sorted(int(r) for r in f["row"].dropna().tolist())

    def clean(self, rel: str):
        import pyarrow.parquet as pq

        return pq.read_table(self.out / "clean" / f"{rel}.parquet")

    def source(self, name: str) -> dict:
        return next(s for s in self.report["sources"] if s["source"] == name)


def seal_output(out: Path, run_id: str = "hand-built") -> None:
    """Make a hand-built output folder one complete run: stamp the run id into its
    Parquet and JSON files and write the manifest, as ``datasan scan`` does."""
    import pyarrow.parquet as pq

    from datasan.outputs.files import with_run_id, write_json
    from datasan.outputs.manifest import MANIFEST, file_entry, manifest_doc

    rels = []
    for p in sorted(out.rglob("*")):
        if not p.is_file() or p.name.startswith("."):
            continue
        if p.suffix == ".parquet":
            pq.write_table(with_run_id(pq.read_table(p), run_id), p)
        elif p.name in ("report.json", "stats.json"):
            p.write_text(json.dumps({**json.loads(p.read_text()), "run_id": run_id}))
        rels.append(p.relative_to(out).as_posix())
    write_json(str(out / MANIFEST), manifest_doc(run_id, [file_entry(str(out), r) for r in rels], True))


@pytest.fixture(autouse=True)
def _private_user_cache(tmp_path_factory, monkeypatch):
    """Each test gets its own per-user cache folder: CLI scans cache by default, and a
    result cached by one test must never answer another test's (patched) shard function."""
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path_factory.mktemp("xdg-cache")))


@pytest.fixture
def scan_to(tmp_path):
    """scan_to(path, **options) -> Scanned, written to a fresh folder under tmp_path."""
    import datasan

    counter = {"n": 0}

    def run(path, **options) -> Scanned:
        counter["n"] += 1
        out = tmp_path / f"out{counter['n']}"
        options.setdefault("probe", False)
        # report.html has its own tests (test_html_report.py); drawing it for every scan here
        # would triple the suite's time
        options.setdefault("report_html", False)
        options.setdefault("workers", 1)
        result = datasan.scan(path, out_dir=str(out), **options)
        return Scanned(result, out)

    return run


def _import_ray():
    if os.environ.get("CI", "").lower() == "true":
        import ray  # CI installs .[ray]: a missing ray is a failure there, not a skip

        return ray
    return pytest.importorskip("ray", reason='ray is not installed (pip install "datasan[ray]")')


@pytest.fixture(scope="session")
def ray_cluster():
    """A two-node Ray cluster for the session, this process connected to it."""
    ray = _import_ray()
    from ray.cluster_utils import Cluster

    cluster = Cluster(initialize_head=True, head_node_args={"num_cpus": 1, "include_dashboard": False})
    cluster.add_node(num_cpus=1)
    cluster.wait_for_nodes()
    ray.init(address=cluster.address, log_to_driver=False)
    yield ray
    ray.shutdown()
    cluster.shutdown()
