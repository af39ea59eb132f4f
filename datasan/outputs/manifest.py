"""manifest.json: the list of files one run wrote, and the check that a folder holds one whole run.

The manifest is datasan's mark of ownership (only files it lists are ever
replaced or removed) and the commit marker of a run: it is written last.
While a run is being published it says ``"complete": false`` and also lists
the previous run's files (``previous``), so that a run killed half-way leaves
a folder that readers refuse and that the next run still knows it owns.
"""

from __future__ import annotations

import hashlib
import json
import os
from typing import Any, Iterable

from datasan.errors import UsageError

MANIFEST = "manifest.json"
#: key of the run id in the key-value metadata of every Parquet file datasan writes
RUN_ID_KEY = b"datasan.run_id"
FORMAT = 1


class OutputMismatch(UsageError):
    """An output folder does not hold one complete run (missing, changed or mixed files)."""


def new_run_id() -> str:
    """A fresh run id: UTC time (sortable, readable) plus 32 random bits."""
    import secrets
    import time

    return time.strftime("%Y%m%dT%H%M%SZ", time.gmtime()) + "-" + secrets.token_hex(4)


def file_sha256(path) -> str:
    """sha256 of a file (a path, or a binary file object already open), read in 1 MiB blocks."""
    h = hashlib.sha256()
    if not isinstance(path, (str, os.PathLike)):
        for block in iter(lambda: path.read(1 << 20), b""):
            h.update(block)
        return h.hexdigest()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def file_entry(root: str, rel: str) -> dict[str, Any]:
    """The manifest entry of ``root/rel``: path, size, mtime_ns, and sha256 for files that do
    not carry the run id themselves (Parquet files carry it in their metadata: hashing
    gigabytes of clean Parquet would cost a good share of a scan)."""
    full = os.path.join(root, rel)
    st = os.stat(full)
    entry = {"path": rel, "size": st.st_size, "mtime_ns": st.st_mtime_ns}
    if not rel.endswith(".parquet"):
        entry["sha256"] = file_sha256(full)
    return entry


def manifest_doc(run_id: str, files: list[dict], complete: bool, previous: Iterable[dict] = ()) -> dict:
    """A manifest document (``previous`` only while publishing; its entries carry their ``run_id``)."""
    from datasan import __version__

    doc: dict[str, Any] = {"datasan_manifest": FORMAT, "run_id": run_id, "datasan_version": __version__,
                           "complete": complete, "files": files}
    if not complete:
        doc["previous"] = list(previous)
    return doc


def read_manifest(out_dir: str) -> dict | None:
    """The manifest of ``out_dir`` (a folder or a store URI); None when there is none or it is
    not datasan's."""
    from datasan import fs

    try:
        doc = json.loads(fs.read_bytes(fs.join(os.fspath(out_dir), MANIFEST)))
    except (OSError, ValueError):
        return None
    return doc if is_manifest(doc) else None


def is_manifest(doc: object) -> bool:
    """True when ``doc`` (parsed JSON) is a datasan manifest of this format."""
    return (isinstance(doc, dict) and doc.get("datasan_manifest") == FORMAT
            and isinstance(doc.get("run_id"), str) and isinstance(doc.get("files"), list))


def owned_entries(doc: dict | None) -> dict[str, list[dict]]:
    """Every file a manifest says datasan wrote, by path (both runs' while one was being published)."""
    out: dict[str, list[dict]] = {}
    if doc is None:
        return out
    entries = [{**e, "run_id": doc["run_id"]} for e in doc.get("files") or [] if isinstance(e, dict)]
    entries += [e for e in doc.get("previous") or [] if isinstance(e, dict)]
    for e in entries:
        if _safe_rel(e.get("path")):
            out.setdefault(e["path"], []).append(e)
    return out


def _safe_rel(rel: Any) -> bool:
    # an edited manifest must not make datasan replace or remove a file outside the folder
    return (isinstance(rel, str) and rel != "" and not rel.startswith("/") and "\\" not in rel
            and all(part not in ("", ".", "..") for part in rel.split("/")))


def still_as_written(path: str, entries: list[dict]) -> bool:
    """True when the file at ``path`` is one datasan wrote (same size, and same mtime or sha256)."""
    try:
        st = os.lstat(path)
    except OSError:
        return False
    import stat

    if not stat.S_ISREG(st.st_mode):
        return False
    same_size = [e for e in entries if e.get("size") == st.st_size]
    if not same_size:
        return False
    if any(e.get("mtime_ns") == st.st_mtime_ns for e in same_size):
        return True
    # a copied folder keeps the content but not the mtime: the hash, or the run id a
    # Parquet file carries, decides
    if path.endswith(".parquet"):
        rid = run_id_of(path, path)
        return any(e.get("run_id") == rid for e in same_size)
    return any(e.get("sha256") == file_sha256(path) for e in same_size)


def run_id_of(full: str, rel: str) -> str | None | bool:
    """The run id carried by the file (report.json / stats.json key, Parquet metadata), on disk
    or in a store; False when the file carries none by design (CSV, clean label files)."""
    from datasan import fs

    if rel in ("report.json", "stats.json"):
        try:
            doc = json.loads(fs.read_bytes(full))
        except (OSError, ValueError):
            return None
        return doc.get("run_id") if isinstance(doc, dict) else None
    if rel == "report.html":
        return _html_run_id(full)
    if rel.endswith(".parquet"):
        try:
            md = fs.parquet_file(full).metadata.metadata or {}
        except Exception:  # not Parquet at all: it disagrees with the manifest
            return None
        value = md.get(RUN_ID_KEY)
        return value.decode("utf-8", "replace") if value is not None else None
    return False


def _html_run_id(full: str) -> str | None:
    """The run id in report.html's ``<meta name="datasan-run-id">`` (in its first lines)."""
    import re

    from datasan import fs

    try:
        with fs.open_read(full) as f:
            head = f.read(4096).decode("utf-8", "replace")
    except OSError:
        return None
    m = re.search(r'<meta name="datasan-run-id" content="([^"]*)">', head)
    return m.group(1) if m else None


#: the files at the top of an output folder that belong to a run (clean/ holds the rest)
TOP_FILES = ("findings.parquet", "quarantine.parquet", "quarantine.csv", "index.parquet", "stats.json",
             "report.json", "report.html")


def verify_output(out_dir: str | os.PathLike) -> dict:
    """Check that ``out_dir`` holds one complete run; return its manifest.

    Raises :class:`OutputMismatch` (a UsageError: exit 2) naming the files
    when the folder has no manifest, holds an interrupted run, lacks a listed
    file, has one whose size changed, has a file that carries another run's
    id, or has a run file (findings.parquet, ...) the manifest does not list.
    Contents are compared by size and embedded run id; the manifest's sha256
    (of the files that carry no run id) lets anyone check those byte for byte.
    ``out_dir`` may be a store URI (``s3://bucket/out``).
    """
    from datasan import fs

    out = fs.local_path(os.fspath(out_dir))
    what = f"{out} is not a complete datasan output folder"
    try:
        there = fs.kind(out) == "dir" if fs.is_remote(out) else os.path.isdir(out)
    except OSError as exc:  # a store that cannot be reached or refuses the credentials
        raise UsageError(f"cannot read {out}: {exc}") from None
    if not there:
        raise OutputMismatch(f"{what}: no such folder")
    doc = read_manifest(out)
    if doc is None:
        raise OutputMismatch(f"{what}: it has no datasan {MANIFEST} (not written by datasan, written by a "
                             "version before manifests, or its first run was interrupted); scan again")
    run_id = doc["run_id"]
    if not doc.get("complete"):
        raise OutputMismatch(f"{what}: run {run_id} was being published when it stopped "
                             f"({MANIFEST} says incomplete); scan again into it to replace it")
    problems: list[str] = []
    listed = set()
    for e in doc["files"]:
        rel = e.get("path")
        listed.add(rel)
        full = fs.join(out, rel)
        found = fs.info(full) if _safe_rel(rel) else None
        if found is None:
            problems.append(f"{rel} (missing)")
            continue
        size = found[0]
        if size != e.get("size"):
            problems.append(f"{rel} (changed: {size} bytes, the run wrote {e.get('size')})")
            continue
        rid = run_id_of(full, rel)
        if rid is not False and rid != run_id:
            problems.append(f"{rel} (run {rid or 'unknown'})")
    for rel in TOP_FILES:
        if rel not in listed and fs.info(fs.join(out, rel)) is not None:
            problems.append(f"{rel} (not written by run {run_id})")
    if problems:
        raise OutputMismatch(f"{what}: its files disagree with run {run_id} of its {MANIFEST}: "
                             + "; ".join(problems))
    return doc
