"""The process pool: workers run shard functions without re-running the caller's main module.

The scripts below call ``datasan.scan`` at module level with no ``__main__``
guard, as users write them; a worker that re-ran the script would print its
marker again (and scan again, breaking the pool).
"""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap

import pytest

from conftest import REPO

from datasan.engine import LocalEngine

pytestmark = pytest.mark.skipif(not os.path.exists("/proc/self"), reason="worker pids read from /proc/self")

#: the body every caller runs: a scan, a gate and a pool whose workers report their pid
#: (os.readlink("/proc/self") is a picklable stdlib function that returns the caller's pid)
BODY = """
print("MAIN RAN")
import os
import datasan
from datasan.engine import LocalEngine

r = datasan.scan("data", out_dir="out", workers=2, probe=False, config=False)
print("SCAN", r.report["samples"], r.report["quarantined"])
try:
    datasan.gate("data", workers=2, probe=False, config=False)
except datasan.DataGateError as exc:
    print("GATE", exc.result.report["quarantined"])
with LocalEngine(2) as engine:
    pids = set(engine.map_ordered(os.readlink, ["/proc/self"] * 4))
print("OWN_PID_IN_WORKERS", str(os.getpid()) in pids)
"""

PROBE = """
r = datasan.scan("imgs", workers=2, probe=True, probe_batch_size=1, config=False)
print("PROBED", r.report["probe"]["samples_probed"])
"""


@pytest.fixture
def folder(tmp_path):
    """data/: three CSVs, one NaN row each; imgs/: an ImageFolder of 4 labelled PNGs."""
    from PIL import Image

    (tmp_path / "data").mkdir()
    for i in range(3):
        (tmp_path / "data" / f"t{i}.csv").write_text("a,b,label\n1,2,0\nnan,3,1\n4,5,0\n")
    for cls in ("a", "b"):
        (tmp_path / "imgs" / cls).mkdir(parents=True)
        for i in range(2):
            Image.new("RGB", (16, 16), (40 * i, 90, 200 if cls == "a" else 10)).save(
                tmp_path / "imgs" / cls / f"{i}.png")
    return tmp_path


def run(args, cwd, stdin=None):
    env = dict(os.environ, PYTHONPATH=str(REPO))
    p = subprocess.run([sys.executable, *args], capture_output=True, text=True, cwd=cwd, env=env,
                       input=stdin, timeout=300)
    assert p.returncode == 0, p.stderr[-3000:]
    return p.stdout.splitlines()


def assert_ran_once_in_parallel(lines):
    assert lines.count("MAIN RAN") == 1
    assert "SCAN 9 3" in lines and "GATE 3" in lines
    assert "OWN_PID_IN_WORKERS False" in lines


def test_pool_runs_tasks_in_other_processes():
    with LocalEngine(2) as engine:
        pids = list(engine.map_ordered(os.readlink, ["/proc/self"] * 4))
    assert len(pids) == 4 and str(os.getpid()) not in pids


def test_unguarded_script_file(folder):
    """``python script.py`` with scan, gate and the probe (images go through the pool) at module level."""
    (folder / "script.py").write_text(BODY + PROBE)
    lines = run(["script.py"], folder)
    assert_ran_once_in_parallel(lines)
    assert "PROBED 4" in lines


def test_unguarded_module(folder):
    """``python -m mod``: workers would re-run it by name (init_main_from_name)."""
    (folder / "scanmod.py").write_text(BODY)
    assert_ran_once_in_parallel(run(["-m", "scanmod"], folder))


def test_script_on_stdin(folder):
    """``python - < script``: __file__ names no file, yet the scan keeps its workers."""
    assert_ran_once_in_parallel(run(["-"], folder, stdin=BODY))


def test_notebook_cell(folder):
    """A notebook runs cells in a ``__main__`` without ``__file__`` (IPython's stand-in module)."""
    driver = textwrap.dedent("""
        import sys, types
        cell = sys.stdin.read()
        nb = types.ModuleType("__main__")
        sys.modules["__main__"] = nb
        exec(compile(cell, "<ipython-input-1>", "exec"), nb.__dict__)
    """)
    assert_ran_once_in_parallel(run(["-c", driver], folder, stdin=BODY))


def test_local_engine_offers_the_engine_protocol_and_starts_afresh_after_close():
    import typing

    from datasan.engine import Engine, LocalEngine

    engine = LocalEngine(2)
    members = {n for n in vars(Engine) if not n.startswith("_")} | set(typing.get_type_hints(Engine))
    assert members == {"preload", "parallelism", "map_ordered", "close"}
    assert [n for n in members if not hasattr(engine, n)] == []
    assert engine.parallelism == 2
    for _ in range(2):  # closed between the runs: the second builds a new pool
        with engine:
            assert list(engine.map_ordered(abs, [-3, 1, -2])) == [3, 1, 2]
        assert engine._pool is None
