"""The output folder: datasan owns only what it wrote, one run is one unit, odd --out places exit 2."""

from __future__ import annotations

import errno
import fcntl
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pyarrow.parquet as pq
import pytest
from typer.testing import CliRunner

from conftest import REPO, tree_digest

import datasan
from datasan.cli import app
from datasan.errors import UsageError
from datasan.outputs.manifest import RUN_ID_KEY, file_sha256, verify_output

runner = CliRunner()
CSV = "a,b,label\n1,2,0\nnan,2,1\n3,4,1\n5,6,0\n"  # row 1 is quarantined (DS101)


def make_table(root: Path, text: str = CSV, name: str = "t.csv") -> Path:
    d = root / "data"
    (d / name).parent.mkdir(parents=True, exist_ok=True)
    (d / name).write_text(text)
    return d


def make_images(root: Path, n: int = 5) -> Path:
    from PIL import Image

    d = root / "pics"
    for i in range(n):
        (d / ("cat" if i % 2 else "dog")).mkdir(parents=True, exist_ok=True)
        Image.new("RGB", (16, 16), (i * 40, 20, 30)).save(d / ("cat" if i % 2 else "dog") / f"{i}.png")
    return d


def scan(path, out, *extra) -> int:
    res = runner.invoke(app, ["scan", str(path), "--out", str(out), "--no-probe", "--workers", "1", *extra])
    return res.exit_code, " ".join(res.output.split())  # rich wraps long messages


def published(out: Path) -> dict[str, str]:
    """sha256 of every file of the published run (the lock file holds the last run's pid)."""
    digest = tree_digest(out)
    digest.pop(".datasan.lock", None)
    return digest


def run_files(out: Path) -> list[str]:
    """Every file under ``out`` but the lock file, as posix paths."""
    return sorted(p.relative_to(out).as_posix() for p in out.rglob("*") if p.is_file() and p.name != ".datasan.lock")


# ------------------------------------------------------------------ 1. ownership
def test_path_inside_out_is_refused_and_untouched(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "clean").mkdir()
    (tmp_path / "clean" / "train.csv").write_text("x,label\n1,0\n")
    before = tree_digest(tmp_path)
    code, output = scan("clean", ".")
    assert code == 2
    assert "lies inside the output folder" in output
    assert tree_digest(tmp_path) == before
    assert sorted(os.listdir(tmp_path)) == ["clean"]


def test_folder_that_is_not_a_datasan_output_is_refused(tmp_path):
    d = make_table(tmp_path)
    proj = tmp_path / "proj"
    (proj / "clean").mkdir(parents=True)
    (proj / "clean" / "keep.py").write_text("print('mine')\n")
    (proj / "notes.txt").write_text("mine\n")
    before = tree_digest(proj)
    code, output = scan(d, proj)
    assert code == 2
    assert "not a datasan output" in output and "clean, notes.txt" in output and "--force" in output
    assert tree_digest(proj) == before
    assert sorted(os.listdir(proj)) == ["clean", "notes.txt"]  # not even a lock file


def test_force_writes_beside_files_it_did_not_write_and_keeps_them(tmp_path):
    d = make_table(tmp_path)
    proj = tmp_path / "proj"
    (proj / "clean").mkdir(parents=True)
    (proj / "clean" / "keep.py").write_text("print('mine')\n")
    code, _ = scan(d, proj, "--force")
    assert code == 1
    assert (proj / "clean" / "keep.py").read_text() == "print('mine')\n"
    manifest = json.loads((proj / "manifest.json").read_text())
    assert sorted(e["path"] for e in manifest["files"]) == [
        "clean/t.csv.parquet", "findings.parquet", "quarantine.csv", "quarantine.parquet", "report.html",
        "report.json", "stats.json"]
    # now a datasan output: the next run needs no --force, and still keeps keep.py
    (d / "t.csv").write_text("a,b,label\n1,2,0\n3,4,1\n")
    code, _ = scan(d, proj)
    assert code == 0
    assert (proj / "clean" / "keep.py").read_text() == "print('mine')\n"
    assert json.loads((proj / "report.json").read_text())["quarantined"] == 0


def test_force_never_replaces_a_file_datasan_did_not_write(tmp_path):
    d = make_table(tmp_path)
    proj = tmp_path / "proj"
    proj.mkdir()
    (proj / "report.json").write_text('{"mine": true}\n')
    (proj / "clean").write_text("a file where datasan's folder would go\n")
    code, output = scan(d, proj, "--force")
    assert code == 2
    assert "clean, report.json" in output and "Nothing was published" in output
    assert (proj / "report.json").read_text() == '{"mine": true}\n'
    assert sorted(os.listdir(proj)) == [".datasan.lock", "clean", "report.json"]


def test_an_output_changed_after_the_run_is_not_replaced(tmp_path):
    d = make_table(tmp_path)
    out = tmp_path / "out"
    assert scan(d, out)[0] == 1
    with open(out / "quarantine.csv", "a") as f:
        f.write("my note\n")
    edited = (out / "quarantine.csv").read_text()
    code, output = scan(d, out)
    assert code == 2 and "quarantine.csv" in output
    assert (out / "quarantine.csv").read_text() == edited


def test_an_output_copied_elsewhere_is_still_recognised(tmp_path):
    """Copies lose the mtime; the sha256 of the manifest still proves datasan wrote the file."""
    import shutil

    d = make_table(tmp_path)
    assert scan(d, tmp_path / "out")[0] == 1
    shutil.copytree(tmp_path / "out", tmp_path / "copy")  # copy2 keeps mtimes: touch them
    for p in (tmp_path / "copy").rglob("*"):
        if p.is_file():
            os.utime(p, (1, 1))
    assert scan(d, tmp_path / "copy")[0] == 1


def test_a_manifest_naming_files_outside_the_folder_is_not_obeyed(tmp_path):
    d = make_table(tmp_path)
    out = tmp_path / "out"
    assert scan(d, out)[0] == 1
    victim = tmp_path / "victim.txt"
    victim.write_text("mine\n")
    doc = json.loads((out / "manifest.json").read_text())
    st = victim.stat()
    doc["files"].append({"path": "../victim.txt", "size": st.st_size, "mtime_ns": st.st_mtime_ns})
    (out / "manifest.json").write_text(json.dumps(doc))
    scan(d, out)
    assert victim.read_text() == "mine\n"


def test_empty_existing_folder_is_used(tmp_path):
    d = make_table(tmp_path)
    (tmp_path / "empty").mkdir()
    assert scan(d, tmp_path / "empty")[0] == 1
    verify_output(tmp_path / "empty")


# ------------------------------------------------------------------ 2. one run, one unit
def test_every_file_carries_the_run_id_and_the_manifest_lists_them(tmp_path):
    d = make_table(tmp_path / "mixed")
    make_images(tmp_path / "mixed" / "data")
    out = tmp_path / "out"
    assert scan(d, out)[0] == 1
    manifest = json.loads((out / "manifest.json").read_text())
    run_id = manifest["run_id"]
    assert manifest["complete"] is True and manifest["datasan_version"] == datasan.__version__
    assert json.loads((out / "report.json").read_text())["run_id"] == run_id
    assert json.loads((out / "stats.json").read_text())["run_id"] == run_id
    parquets = ["findings.parquet", "quarantine.parquet", "index.parquet", "clean/t.csv.parquet"]
    for rel in parquets:
        assert pq.read_metadata(out / rel).metadata[RUN_ID_KEY] == run_id.encode(), rel
    listed = {e["path"]: e for e in manifest["files"]}
    assert sorted(listed) == [p for p in run_files(out) if p != "manifest.json"]
    for rel, e in listed.items():
        assert e["size"] == (out / rel).stat().st_size, rel
        if rel.endswith(".parquet"):  # carries the run id itself
            assert "sha256" not in e
        else:
            assert e["sha256"] == file_sha256(str(out / rel)), rel
    assert verify_output(out)["run_id"] == run_id


def test_a_second_run_removes_the_files_of_the_first_it_does_not_write(tmp_path):
    from datasan import SafeDataset

    pics = make_images(tmp_path)
    out = tmp_path / "out"
    assert scan(pics, out)[0] == 0
    assert (out / "index.parquet").exists() and len(SafeDataset.from_scan(out)) == 5
    table = make_table(tmp_path, "x,label\n1,0\n2,1\n", name="tables/t.csv")
    assert scan(table, out)[0] == 0
    assert run_files(out) == ["clean/tables/t.csv.parquet", "findings.parquet", "manifest.json",
                              "quarantine.csv", "quarantine.parquet", "report.html", "report.json", "stats.json"]
    assert len(SafeDataset.from_scan(out)) == 2
    # and back: the table's clean file and its now empty folders go
    assert scan(pics, out)[0] == 0
    assert not (out / "clean").exists()
    assert len(SafeDataset.from_scan(out)) == 5


def two_runs(tmp_path) -> tuple[Path, Path]:
    one = make_table(tmp_path / "one")
    two = make_table(tmp_path / "two", "a,b,label\n1,2,0\n3,4,1\n")
    assert scan(one, tmp_path / "o1")[0] == 1
    assert scan(two, tmp_path / "o2")[0] == 0
    return tmp_path / "o1", tmp_path / "o2"


def readers_refuse(out: Path, needle: str, findings_alone_ok: bool = False) -> None:
    """`datasan report`, from_scan and a baseline (folder or its findings.parquet) all refuse ``out``.

    A findings.parquet with no manifest beside it is a baseline copied out of its
    folder: taken as is (``findings_alone_ok``)."""
    import re

    res = runner.invoke(app, ["report", str(out)])
    assert res.exit_code == 2 and needle in " ".join(res.output.split()), res.output
    for read in (lambda: datasan.SafeDataset.from_scan(out),
                 lambda: datasan.scan(out.parent / "one" / "data", baseline=str(out), probe=False, workers=1),
                 lambda: datasan.scan(out.parent / "one" / "data", baseline=str(out / "findings.parquet"),
                                      probe=False, workers=1))[:2 if findings_alone_ok else 3]:
        with pytest.raises(UsageError, match=re.escape(needle)):
            read()


def test_readers_refuse_files_of_another_run(tmp_path):
    o1, o2 = two_runs(tmp_path)
    (o1 / "findings.parquet").write_bytes((o2 / "findings.parquet").read_bytes())
    run2 = json.loads((o2 / "manifest.json").read_text())["run_id"]
    readers_refuse(o1, "findings.parquet")
    with pytest.raises(UsageError, match=f"findings.parquet \\((changed|run {run2})"):
        verify_output(o1)


def test_readers_refuse_a_file_of_the_same_size_from_another_run(tmp_path):
    """Same size, so only the embedded run id tells them apart."""
    o1, o2 = two_runs(tmp_path)
    run2 = json.loads((o2 / "manifest.json").read_text())["run_id"]
    rep = json.loads((o1 / "report.json").read_text())
    run1 = rep["run_id"]
    assert len(run1) == len(run2)
    (o1 / "report.json").write_text((o1 / "report.json").read_text().replace(run1, run2))
    readers_refuse(o1, f"report.json (run {run2})")


def test_readers_refuse_missing_files_unlisted_files_and_no_manifest(tmp_path):
    o1, o2 = two_runs(tmp_path)
    (o1 / "quarantine.parquet").unlink()
    readers_refuse(o1, "quarantine.parquet (missing)")
    (o2 / "index.parquet").write_bytes((o2 / "findings.parquet").read_bytes())
    readers_refuse(o2, "index.parquet (not written by run")
    (o2 / "index.parquet").unlink()
    (o2 / "manifest.json").unlink()
    readers_refuse(o2, "no datasan manifest.json", findings_alone_ok=True)
    assert datasan.scan(o2.parent / "two" / "data", baseline=str(o2 / "findings.parquet"), probe=False,
                        workers=1).passed


def test_readers_refuse_an_interrupted_run(tmp_path):
    o1, _ = two_runs(tmp_path)
    doc = json.loads((o1 / "manifest.json").read_text())
    (o1 / "manifest.json").write_text(json.dumps({**doc, "complete": False, "previous": []}))
    readers_refuse(o1, "was being published when it stopped")


def test_a_second_run_into_a_locked_folder_exits_2(tmp_path):
    d = make_table(tmp_path)
    out = tmp_path / "out"
    assert scan(d, out)[0] == 1
    before = published(out)
    fd = os.open(out / ".datasan.lock", os.O_RDWR)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        code, output = scan(d, out)
    finally:
        os.close(fd)
    assert code == 2 and "another datasan run" in output
    assert published(out) == before


def test_stale_staging_folders_are_removed_only_when_marked(tmp_path):
    d = make_table(tmp_path)
    out = tmp_path / "out"
    assert scan(d, out)[0] == 1
    dead = out / ".datasan-staging-20000101T000000Z-deadbeef"
    (dead / "clean").mkdir(parents=True)
    (dead / ".datasan-staging").write_text("20000101T000000Z-deadbeef\n")
    (dead / "clean" / "half.parquet").write_bytes(b"PAR1")
    lookalike = out / ".datasan-staging-mine"
    lookalike.mkdir()
    (lookalike / "x").write_text("not datasan's\n")
    assert scan(d, out)[0] == 1
    assert not dead.exists()
    assert (lookalike / "x").read_text() == "not datasan's\n"


def test_a_folder_left_by_a_killed_first_run_is_still_datasans(tmp_path):
    """Only the lock file and a marked staging folder: no --force needed, the staging goes."""
    d = make_table(tmp_path)
    out = tmp_path / "out"
    dead = out / ".datasan-staging-20000101T000000Z-deadbeef"
    dead.mkdir(parents=True)
    (dead / ".datasan-staging").write_text("20000101T000000Z-deadbeef\n")
    (out / ".datasan.lock").write_text("12345\n")
    assert scan(d, out)[0] == 1
    assert not dead.exists() and verify_output(out)


# ------------------------------------------------------------------ real processes: signals, kill -9, a second run
BLOCKING_RUN = """
import pathlib, sys, time
flag, target = sys.argv.pop(1), sys.argv.pop(1)
if target == "scan":  # stop after the clean files are staged, before the outputs are published
    import datasan.pipeline as mod
    orig = mod.build_quarantine
    def blocked(*a, **k):
        pathlib.Path(flag).touch()
        time.sleep(60)
        return orig(*a, **k)
    mod.build_quarantine = blocked
elif target == "callback":  # SIGTERM lands inside a weakref callback, where Python drops exceptions
    import datasan.pipeline as mod
    import signal, weakref
    orig = mod.build_quarantine
    class Gone:
        pass
    def blocked(*a, **k):
        g = Gone()
        keep = weakref.ref(g, lambda _: signal.raise_signal(signal.SIGTERM))
        del g  # the handler's Interrupted is raised in the callback: "Exception ignored"
        pathlib.Path(flag).touch()
        time.sleep(60)
        return orig(*a, **k)
    mod.build_quarantine = blocked
else:  # stop between two renames of the publication
    import datasan.outputs.files as mod
    orig, moved = mod._move, []
    def blocked(src, dest):
        orig(src, dest)
        moved.append(dest)
        if len(moved) == 2:
            pathlib.Path(flag).touch()
            time.sleep(60)
    mod._move = blocked
from datasan.cli import main
sys.argv[0] = "datasan"
main()
"""


def start_blocked(tmp_path, where: str, data: Path, out: Path) -> tuple[subprocess.Popen, Path]:
    flag = tmp_path / f"flag-{where}"
    env = dict(os.environ, PYTHONPATH=str(REPO))
    p = subprocess.Popen([sys.executable, "-c", BLOCKING_RUN, str(flag), where, "scan", str(data), "--out",
                          str(out), "--no-probe", "--workers", "1"],
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
    deadline = time.monotonic() + 60
    while not flag.exists():
        if p.poll() is not None or time.monotonic() > deadline:
            p.kill()
            raise AssertionError(f"the blocked run never got there: {p.communicate()}")
        time.sleep(0.05)
    return p, flag


def staging_folders(out: Path) -> list[str]:
    return [n for n in os.listdir(out) if n.startswith(".datasan-staging-")]


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT])
def test_signal_removes_the_staging_folder_and_keeps_the_previous_run(tmp_path, sig):
    d = make_table(tmp_path)
    out = tmp_path / "out"
    assert scan(d, out)[0] == 1
    first = verify_output(out)["run_id"]
    before = published(out)
    p, _ = start_blocked(tmp_path, "scan", d, out)
    assert len(staging_folders(out)) == 1
    # meanwhile a second run into the same folder does not interleave: it exits 2
    code, output = scan(d, out)
    assert code == 2 and f"(pid {p.pid})" in output
    p.send_signal(sig)
    _, err = p.communicate(timeout=60)
    assert p.returncode == 128 + sig, err
    assert "Traceback" not in err
    assert staging_folders(out) == []
    assert published(out) == before and verify_output(out)["run_id"] == first
    assert scan(d, out)[0] == 1  # the lock went with the process


def test_a_signal_whose_exception_python_drops_in_a_callback_still_stops_the_run(tmp_path):
    # a stopped service's scan went on for its whole length: SIGTERM had landed in a weakref
    # callback of importlib, where the handler's exception is printed and dropped
    d = make_table(tmp_path)
    out = tmp_path / "out"
    assert scan(d, out)[0] == 1
    before = published(out)
    started = time.monotonic()
    p, _ = start_blocked(tmp_path, "callback", d, out)
    _, err = p.communicate(timeout=50)  # the run sleeps 60 s unless the signal is sent again
    assert p.returncode == 128 + signal.SIGTERM, err
    assert time.monotonic() - started < 50
    assert "Exception ignored" not in err and "Traceback" not in err
    assert staging_folders(out) == [] and published(out) == before


def test_kill_9_mid_publication_is_refused_by_readers_and_repaired_by_the_next_run(tmp_path):
    one = make_table(tmp_path / "one")
    two = make_table(tmp_path / "two", "a,b,label\n1,2,0\n3,4,1\n")
    out = tmp_path / "out"
    assert scan(one, out)[0] == 1
    p, _ = start_blocked(tmp_path, "publish", two, out)
    p.kill()
    p.communicate(timeout=60)
    assert len(staging_folders(out)) == 1
    res = runner.invoke(app, ["report", str(out)])
    assert res.exit_code == 2 and "was being published when it stopped" in " ".join(res.output.split())
    assert scan(two, out)[0] == 0
    assert staging_folders(out) == []
    doc = verify_output(out)
    assert json.loads((out / "report.json").read_text())["run_id"] == doc["run_id"]
    assert json.loads((out / "report.json").read_text())["quarantined"] == 0


# ------------------------------------------------------------------ 3. odd --out places
def test_out_naming_an_existing_file_exits_2(tmp_path):
    d = make_table(tmp_path)
    (tmp_path / "f").write_text("mine\n")
    code, output = scan(d, tmp_path / "f")
    assert code == 2 and "is not a folder" in output
    assert (tmp_path / "f").read_text() == "mine\n"
    code, output = scan(d, tmp_path / "f" / "sub")
    assert code == 2 and "Not a directory" in output


def test_out_in_a_read_only_place_exits_2(tmp_path, monkeypatch):
    d = make_table(tmp_path)
    ro = tmp_path / "ro"
    real = os.makedirs

    def read_only(path, *a, **k):
        if str(path).startswith(str(ro)):
            raise OSError(errno.EROFS, os.strerror(errno.EROFS), str(path))
        return real(path, *a, **k)

    monkeypatch.setattr(os, "makedirs", read_only)
    code, output = scan(d, ro / "out")
    assert code == 2 and "Read-only file system" in output
    assert not ro.exists()


@pytest.mark.skipif(os.geteuid() == 0, reason="root writes into read-only folders")
def test_out_in_a_folder_without_write_permission_exits_2(tmp_path):
    d = make_table(tmp_path)
    (tmp_path / "locked").mkdir()
    os.chmod(tmp_path / "locked", 0o555)
    try:
        code, output = scan(d, tmp_path / "locked" / "out")
    finally:
        os.chmod(tmp_path / "locked", 0o755)
    assert code == 2 and "Permission denied" in output


def test_full_disk_exits_2_and_keeps_the_previous_run(tmp_path, monkeypatch):
    import datasan.outputs.files as files

    d = make_table(tmp_path)
    out = tmp_path / "out"
    assert scan(d, out)[0] == 1
    first = verify_output(out)["run_id"]
    before = published(out)
    def full(path, table):
        if path.endswith("quarantine.parquet"):  # findings.parquet is written, then the disk is full
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), path)
        return real(path, table)

    real = files.write_parquet
    monkeypatch.setattr(files, "write_parquet", full)
    code, output = scan(d, out)
    assert code == 2 and "No space left on device" in output and "nothing was published" in output
    assert published(out) == before and verify_output(out)["run_id"] == first
    assert staging_folders(out) == []
    # into a new folder: the run leaves no trace, not even the folder it made
    code, _ = scan(d, tmp_path / "new")
    assert code == 2
    assert not (tmp_path / "new").exists()


# ------------------------------------------------------------------ 4. permissions
@pytest.mark.parametrize("umask", [0o022, 0o002])
def test_output_files_honour_the_umask(tmp_path, umask):
    d = make_table(tmp_path)
    make_images(d)
    old = os.umask(umask)
    try:
        assert scan(d, tmp_path / "out")[0] == 1
    finally:
        os.umask(old)
    modes = {rel: (tmp_path / "out" / rel).stat().st_mode & 0o777 for rel in run_files(tmp_path / "out")}
    assert "clean/t.csv.parquet" in modes and "index.parquet" in modes
    assert set(modes.values()) == {0o666 & ~umask}, modes
