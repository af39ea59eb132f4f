"""Discovery: symlinks, loops, special files and unknown files are findings, never hangs (DS006-DS008)."""

from __future__ import annotations

import os
import threading

from datasan.discover import discover, relative_to_root


def test_symlink_outside_and_loop_and_inside(tmp_path):
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "secret.csv").write_text("a,label\n1,0\n")
    d = tmp_path / "d"
    (d / "sub").mkdir(parents=True)
    (d / "sub" / "t.csv").write_text("a,label\n1,0\n")
    os.symlink(outside, d / "escape")
    os.symlink(outside / "secret.csv", d / "escape.csv")
    os.symlink(d, d / "sub" / "loop")
    os.symlink(d / "sub" / "t.csv", d / "alias.csv")
    os.symlink(d / "missing.csv", d / "dangling.csv")
    disc = discover(d)
    assert [f.rel for f in disc.files] == ["alias.csv", "sub/t.csv"]
    got = sorted((f.code, f.source) for f in disc.findings)
    assert got == [("DS006", "dangling.csv"), ("DS006", "escape"), ("DS006", "escape.csv"),
                   ("DS006", "sub/loop")]


def test_fifo_is_skipped_without_blocking(tmp_path, scan_to):
    d = tmp_path / "d"
    d.mkdir()
    os.mkfifo(d / "pipe.csv")
    (d / "t.csv").write_text("a,label\n1,0\n2,1\n")
    done = {}

    def run():
        done["s"] = scan_to(d)

    t = threading.Thread(target=run, daemon=True)
    t.start()
    t.join(60)
    assert not t.is_alive(), "scan blocked on a FIFO"
    s = done["s"]
    assert s.codes() == ["DS007"]
    assert s.findings.iloc[0]["source"] == "pipe.csv"


def test_unknown_and_hidden_files(tmp_path, scan_to):
    d = tmp_path / "d"
    (d / ".git").mkdir(parents=True)
    (d / ".git" / "config").write_text("x")
    (d / ".DS_Store").write_bytes(b"\0\1")
    (d / "notes.docx").write_bytes(b"PK")
    (d / "t.csv").write_text("a,label\n1,0\n2,1\n")
    s = scan_to(d)
    assert s.codes() == ["DS008"]
    assert s.findings.iloc[0]["source"] == "notes.docx"
    assert s.findings.iloc[0]["severity"] == "info"


def test_single_file_path(tmp_path, scan_to):
    f = tmp_path / "one.csv"
    f.write_text("a,label\n1,0\nnan,1\n")
    s = scan_to(f)
    assert s.rows("DS101", "one.csv") == [1]
    assert s.quarantine["sample"].tolist() == ["one.csv#1"]


def test_relative_to_root_never_leaves_root(tmp_path):
    root = tmp_path / "r"
    (root / "a").mkdir(parents=True)
    assert relative_to_root(str(root), "x.png", "a") == "a/x.png"
    assert relative_to_root(str(root), "../x.png", "a") == "x.png"
    assert relative_to_root(str(root), "../../x.png", "a") is None
    assert relative_to_root(str(root), "/etc/passwd", "") is None
    assert relative_to_root(str(root), "", "") is None
