"""Publishing a run to an object store (``--out s3://bucket/prefix``) as one unit.

An object store has no rename and no lock, so a lease and the order of the
writes make a run whole.  The scan takes the prefix's lease
(:mod:`datasan.outputs.lease`) and makes the run's staging prefix
``<out>/.datasan-staging-<run id>/``; the shard workers write the clean files
straight into it (no row goes through the driver), and the small files
(findings, quarantine, index, stats, reports) are uploaded beside them when
the run is written.  Then, the lease confirmed, manifest.json is written
saying "being published" (listing both runs' files), each file is copied
into place (a server-side copy), the previous run's files this run does not
write are removed, the lease is confirmed again and the final manifest.json
is written last; the staging prefix and the lease go.  Every file carries
the run id, so a reader tells a run cut short (``complete: false``, or files
of two runs) from a complete one.  As on a disk, nothing datasan did not
write is ever replaced, and ``--out`` may not lie inside PATH (nor PATH
inside ``--out``).
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile

from datasan import fs
from datasan.errors import UsageError
from datasan.outputs.folder import STAGING_MARK, STAGING_PREFIX
from datasan.outputs.lease import LEASE
from datasan.outputs.manifest import MANIFEST, file_entry, is_manifest, manifest_doc, owned_entries


def check_places(out: str, path: str | None) -> None:
    """UsageError when ``out`` lies inside PATH or holds it (both on one store)."""
    if path is None or not fs.is_remote(path):
        return
    if fs.inside(out, path):
        raise UsageError(f"the output folder {out} lies inside PATH {path}; datasan never writes under "
                         "PATH: choose another --out")
    if fs.inside(path, out):
        raise UsageError(f"PATH {path} lies inside the output folder {out}; datasan keeps its outputs apart "
                         "from the data: choose another --out")


def _objects(store, base: str) -> dict[str, int]:
    import pyarrow.fs as pafs

    sel = pafs.FileSelector(base, recursive=True, allow_not_found=True)
    return {i.path[len(base):].lstrip("/"): int(i.size or 0)
            for i in store.get_file_info(sel) if i.type == pafs.FileType.File}


def _read_manifest(store, base: str) -> dict | None:
    try:
        with store.open_input_stream(f"{base}/{MANIFEST}") as f:
            doc = json.loads(f.read())
    except (OSError, ValueError):
        return None
    return doc if is_manifest(doc) else None


def check_owner(out: str, force: bool) -> None:
    """UsageError unless ``out`` is empty, new or a datasan output (or ``force``), and can be listed."""
    try:
        store, base = fs.resolve(out)
        found = [r for r in _objects(store, base) if not r.startswith(STAGING_PREFIX) and r != LEASE]
    except OSError as exc:  # unreachable, no such bucket, credentials refused
        raise UsageError(f"cannot write the outputs to {out}: {exc}") from None
    if found and _read_manifest(store, base) is None and not force:
        raise UsageError(f"the output folder {out} holds files and is not a datasan output (no manifest.json): "
                         "choose another --out, or give --force (no file datasan did not write is replaced)")


def _in_way(existing: dict[str, int], rels: list[str], owned: dict[str, list[dict]]) -> list[str]:
    """Objects where this run writes or removes that datasan did not write (or whose size changed)."""
    bad = []
    for rel in rels:
        if rel in existing and not any(e.get("size") == existing[rel] for e in owned.get(rel, [])):
            bad.append(rel)
    return bad


def _remove_stale_staging(store, base: str) -> None:
    """Remove the staging prefixes runs cut short left (only those holding datasan's mark; call
    with the lease held, so no other run is using one)."""
    import pyarrow.fs as pafs

    for info in store.get_file_info(pafs.FileSelector(base, allow_not_found=True)):
        name = info.path.rsplit("/", 1)[-1]
        if info.type == pafs.FileType.Directory and name.startswith(STAGING_PREFIX) \
                and store.get_file_info(f"{info.path}/{STAGING_MARK}").type == pafs.FileType.File:
            store.delete_dir_contents(info.path, missing_dir_ok=True)
            store.delete_dir(info.path)


def claim_remote(out: str, path: str | None, run_id: str, force: bool = False):
    """Check ``out``, take its lease, and make the run's staging prefix there (workers write
    the clean files under it); returns (staging URI, :class:`StoreLease`)."""
    from datasan.outputs.lease import StoreLease

    out = out.rstrip("/")
    check_places(out, path)
    check_owner(out, force)
    try:
        lease = StoreLease.acquire(out, run_id)
    except OSError as exc:
        raise UsageError(f"cannot write the outputs to {out}: {exc}") from None
    staging = fs.join(out, STAGING_PREFIX + run_id)
    try:
        check_owner(out, force)  # again, now that no other run can change it
        store, base = fs.resolve(out)
        _remove_stale_staging(store, base)
        with fs.open_output(fs.join(staging, STAGING_MARK)) as f:
            f.write(run_id.encode() + b"\n")  # marks the prefix as datasan's to remove
    except BaseException as exc:
        lease.release()
        if isinstance(exc, OSError):
            raise UsageError(f"cannot write the outputs to {out}: {exc}") from None
        raise
    return staging, lease


def _put(store, local: str, key: str) -> None:
    with open(local, "rb") as src, store.open_output_stream(key) as dst:
        shutil.copyfileobj(src, dst, 8 << 20)


def _put_json(store, key: str, doc: dict) -> None:
    with store.open_output_stream(key) as dst:
        dst.write(json.dumps(doc, indent=1).encode("utf-8"))


def publish_remote(result, out: str, force: bool = False) -> list[str]:
    """Write every file of ``result`` under the store URI ``out`` (see the module docstring);
    returns their URIs."""
    out = out.rstrip("/")
    ws = result.workspace
    lease = ws.lease if ws.lease is not None and ws.lease.held and ws.lease.out == out else None
    try:
        if lease is None:
            staging, lease = claim_remote(out, result.summary.path, result.run_id, force)
        else:
            staging = fs.join(out, STAGING_PREFIX + result.run_id)
            check_owner(out, force)
        store, base = fs.resolve(out)
        return _publish(result, out, staging, lease, store, base)
    except OSError as exc:
        raise UsageError(f"cannot write the outputs to {out}: {exc}; it holds the previous complete run, or "
                         "files readers refuse (manifest.json not complete): run again to publish") from None
    finally:
        if lease is not None and lease is not ws.lease:
            fs.remove_tree(fs.join(out, STAGING_PREFIX + result.run_id))
        if lease is not None:
            lease.release()
        if lease is ws.lease:
            ws.lease = None


def _clean_entries(result, staging: str) -> list[dict]:
    """The manifest entries of the clean files, in the store's staging prefix: put there by the
    scan's workers, or copied there now from where the result holds them."""
    from datasan.outputs.manifest import file_sha256

    src = result.workspace.staging or result.published
    rels = [f"clean/{rel}" for rel in result.clean_files]
    if rels and src is None:
        raise UsageError("this result's clean files are gone (its staging folder was removed); scan again")
    entries = []
    for rel in rels:
        there = fs.join(staging, rel)
        if src.rstrip("/") != staging:
            fs.copy(fs.join(src, rel), there)
        size, mtime_ns = fs.info(there) or (0, 0)
        entry = {"path": rel, "size": size, "mtime_ns": mtime_ns}
        if not rel.endswith(".parquet"):  # label files carry no run id: the manifest keeps their hash
            with fs.open_read(there) as f:
                entry["sha256"] = file_sha256(f)
        entries.append(entry)
    return entries


def _publish(result, out: str, staging_uri: str, lease, store, base: str) -> list[str]:
    from datasan.outputs.files import stage_outputs

    stage = tempfile.mkdtemp(prefix="datasan-publish-")
    staging = fs.resolve(staging_uri)[1]
    try:
        rels = stage_outputs(result, stage, out, clean=False)
        entries = [file_entry(stage, rel) for rel in rels] + _clean_entries(result, staging_uri)
        prev = _read_manifest(store, base)
        owned = owned_entries(prev)
        new = [e["path"] for e in entries]
        old = [p for p in owned if p not in set(new)]
        existing = _objects(store, base)
        in_way = _in_way(existing, new + old, owned)
        if prev is None and MANIFEST in existing:
            in_way.insert(0, MANIFEST)
        if in_way:
            raise UsageError(f"{out} holds files datasan did not write (or that changed since it wrote them) "
                             f"where this run's files go: {', '.join(in_way[:8])}; move them away or choose "
                             "another --out. Nothing was published.")
        for rel in rels:
            _put(store, os.path.join(stage, rel), f"{staging}/{rel}")
        journal = [e for es in owned.values() for e in es]
        lease.confirm()
        _put_json(store, f"{base}/{MANIFEST}", manifest_doc(result.run_id, entries, False, journal))
        for rel in new:
            store.copy_file(f"{staging}/{rel}", f"{base}/{rel}")
        for rel in old:
            if rel in existing:
                store.delete_file(f"{base}/{rel}")
        lease.confirm()
        _put_json(store, f"{base}/{MANIFEST}", manifest_doc(result.run_id, entries, True))
        store.delete_dir_contents(staging, missing_dir_ok=True)
        store.delete_dir(staging)
    finally:
        shutil.rmtree(stage, ignore_errors=True)
    if result.workspace.staging == staging_uri:
        result.workspace.staging = None  # gone with the publish
    result.published = out
    return [f"{out}/{rel}" for rel in new] + [f"{out}/{MANIFEST}"]
