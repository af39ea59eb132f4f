"""The console script's fast exit (datasan.cli._leave): the exit status, everything written to
stdout, the atexit handlers, and no interpreter teardown, unless a profiler, a tracer or a
running thread needs the normal exit."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

SAMPLE = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "sample_data")

PROGRAM = r"""
import atexit, sys, threading
marks = sys.argv[1]
def mark(text, open=open):  # open kept: the teardown clears builtins
    with open(marks, "a") as f:
        f.write(text + "\n")
atexit.register(mark, "atexit")
class Torn:
    def __del__(self):  # runs when the interpreter tears its modules down
        mark("teardown")
keep = Torn()
setup = sys.argv[2]
if setup == "profiler":
    def profile(frame, event, arg):  # notes the normal exit's wait for threads
        if event == "call" and frame.f_code.co_name == "_shutdown" and frame.f_code.co_filename.endswith("threading.py"):
            mark("exit")
    sys.setprofile(profile)
elif setup == "thread":
    # still running when the command is done: it ends once the interpreter starts its exit
    threading.Thread(target=lambda: (threading.main_thread().join(), mark("thread")), daemon=False).start()
from datasan.cli import main
sys.argv = ["datasan", *sys.argv[3:]]
main()
"""


def run(tmp_path, setup: str, *args: str) -> tuple[subprocess.CompletedProcess, list[str]]:
    marks = tmp_path / "marks.txt"
    proc = subprocess.run([sys.executable, "-c", PROGRAM, str(marks), setup, *args], capture_output=True,
                          text=True, timeout=300)
    return proc, marks.read_text().split() if marks.exists() else []


@pytest.mark.parametrize("setup", ["plain", "profiler", "thread"])
def test_a_scan_exits_with_its_status_its_whole_output_and_its_exit_handlers(tmp_path, setup):
    proc, marks = run(tmp_path, setup, "scan", os.path.join(SAMPLE, "tables"), "--no-probe", "--no-cache",
                      "--out", str(tmp_path / "out"), "--format", "json")
    assert proc.returncode == 1, proc.stderr  # sample_data/tables holds errors
    doc = json.loads(proc.stdout)  # every byte of the report reached the pipe
    assert doc["run_id"] == json.loads((tmp_path / "out" / "report.json").read_text())["run_id"]
    assert doc["passed"] is False
    if setup == "plain":
        # the handlers ran; the teardown that frees every module's objects did not
        assert marks == ["atexit"]
    elif setup == "profiler":
        assert marks == ["exit", "atexit"]  # the normal exit: a profiler writes its results there
    else:
        assert marks == ["thread", "atexit", "teardown"]  # the running thread was waited for


@pytest.mark.parametrize("args,status", [(["--version"], 0), (["scan", "/no/such/folder"], 2)])
def test_other_statuses_are_kept(tmp_path, args, status):
    proc, marks = run(tmp_path, "plain", *args)
    assert proc.returncode == status
    assert marks == ["atexit"]
    if status == 0:
        assert proc.stdout.strip() == __import__("datasan").__version__
    else:
        assert "no such file or folder" in proc.stderr
