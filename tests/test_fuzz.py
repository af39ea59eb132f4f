"""Property-based tests: hostile folders never crash a scan and never break its invariants.

CI runs a bounded, derandomized number of examples (``DATASAN_FUZZ_EXAMPLES``,
default 30); ``bench/fuzz.py`` runs the same property for longer with fresh
randomness and prints what it found.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings

from fuzz_folders import Plan, hostile_folder, materialise

EXAMPLES = int(os.environ.get("DATASAN_FUZZ_EXAMPLES", "30"))
DERANDOMIZE = os.environ.get("DATASAN_FUZZ_RANDOM", "") == ""


def tree_state(root: str) -> dict[bytes, tuple]:
    """Every entry under ``root`` (bytes names, symlinks not followed) with its content or target."""
    out: dict[bytes, tuple] = {}
    broot = os.fsencode(root)
    for dirpath, dirnames, filenames in os.walk(broot, followlinks=False):
        for name in dirnames + filenames:
            p = os.path.join(dirpath, name)
            rel = os.path.relpath(p, broot)
            if os.path.islink(p):
                out[rel] = ("link", os.readlink(p))
            elif os.path.isfile(p):
                with open(p, "rb") as f:
                    out[rel] = ("file", f.read())
            else:
                out[rel] = ("dir",)
    return out


def check_scan_invariants(plan: Plan, probe: bool = False) -> None:
    """Scan a materialised ``plan`` through the CLI and assert every promised invariant."""
    import pyarrow.parquet as pq
    from typer.testing import CliRunner

    from datasan.cli import app

    work = tempfile.mkdtemp(prefix="datasan-fuzz-")
    try:
        data, out = os.path.join(work, "data"), os.path.join(work, "out")
        os.makedirs(data)
        materialise(plan, data)
        before = tree_state(data)
        args = ["scan", data, "--out", out, "--workers", "1", "--format", "json"]
        args.append("--probe" if probe else "--no-probe")
        res = CliRunner().invoke(app, args)
        # exit 0/1 only: 2 would be a usage error (there is none here), 3 a datasan bug
        assert res.exit_code in (0, 1), (res.exit_code, res.output[-3000:], res.exception)
        assert res.exception is None or isinstance(res.exception, SystemExit), res.exception
        assert "Traceback" not in res.output
        assert tree_state(data) == before, "a file under PATH was created, changed or removed"

        report = json.loads(Path(out, "report.json").read_text())
        for s in report["sources"]:
            assert s["kept"] + s["quarantined"] == s["seen"], s
        findings = pq.read_table(os.path.join(out, "findings.parquet")).to_pandas()
        named = set(findings["source"].dropna()) | set(findings["sample"].dropna())
        for rel in plan.broken:
            assert rel.decode() in named, (rel, sorted(named)[:20])
        run_ids = output_run_ids(out)
        assert len(set(run_ids.values())) == 1, run_ids
    finally:
        shutil.rmtree(work, ignore_errors=True)


def output_run_ids(out: str) -> dict[str, str]:
    """The run id each output file carries (JSON documents and Parquet key-value metadata)."""
    import pyarrow.parquet as pq

    ids: dict[str, str] = {}
    for dirpath, _, filenames in os.walk(out):
        for name in filenames:
            p = os.path.join(dirpath, name)
            rel = os.path.relpath(p, out)
            if name.endswith(".json") and dirpath == out:
                doc = json.loads(Path(p).read_text())
                if isinstance(doc, dict) and "run_id" in doc:
                    ids[rel] = doc["run_id"]
            elif name.endswith(".parquet"):
                meta = pq.read_schema(p).metadata or {}
                if b"datasan.run_id" in meta:
                    ids[rel] = meta[b"datasan.run_id"].decode()
    assert "report.json" in ids, sorted(ids)
    return ids


FUZZ_SETTINGS = settings(max_examples=EXAMPLES, deadline=None, database=None, derandomize=DERANDOMIZE,
                         suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large,
                                                HealthCheck.large_base_example])


@FUZZ_SETTINGS
@given(plan=hostile_folder())
def test_hostile_folders_keep_every_invariant(plan):
    check_scan_invariants(plan)


@settings(max_examples=max(3, EXAMPLES // 10), deadline=None, database=None, derandomize=DERANDOMIZE,
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
@given(plan=hostile_folder())
def test_hostile_folders_with_the_probe(plan):
    check_scan_invariants(plan, probe=True)


@pytest.mark.parametrize("name", [b"bad\xffname", b"esc\x1b[31m", b"new\nline", b"x" * 240, b"-rf"])
def test_each_odd_name_keeps_every_invariant(name):
    plan = Plan(files={name + b".csv": b"x,label\n1,0\nnan,1\n"})
    check_scan_invariants(plan)


def test_deep_nesting_and_symlinks_keep_every_invariant():
    plan = Plan(files={b"d/" * 60 + b"t.csv": b"x,label\n1,0\n"},
                links={b"loop": b".", b"up": b"..", b"outside.csv": b"/etc/hostname"})
    check_scan_invariants(plan)
