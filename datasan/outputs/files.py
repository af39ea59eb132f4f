"""Writing a run's files and publishing them as one unit.

Every file is first written into the run's staging folder (inside OUT, so
moving it is a rename).  Publishing then: checks that no file in the way is
one datasan did not write, writes manifest.json as "being published" (listing
both runs' files), renames the new files into place, removes the previous
run's files this run does not write, and writes the final manifest.json last,
the commit marker.  SIGINT/SIGTERM wait until those renames are done.
"""

from __future__ import annotations

import json
import os
import secrets
from typing import Any, Callable

from datasan.errors import UsageError
from datasan.outputs.folder import OutputFolder, claim_output, deferred_signals, environment_error, inside
from datasan.outputs.manifest import (MANIFEST, RUN_ID_KEY, file_entry, manifest_doc, owned_entries, read_manifest,
                                      still_as_written)


def atomic_write(path: str, write: Callable[[str], None]) -> str:
    """Call ``write(tmp)`` for a temporary file beside ``path``, then rename it to ``path``.

    The temporary file is created like any new file (mode 0666 less the umask).
    """
    folder = os.path.dirname(path) or "."
    os.makedirs(folder, exist_ok=True)
    tmp = os.path.join(folder, f".tmp-{secrets.token_hex(6)}-{os.path.basename(path)}")
    os.close(os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666))
    try:
        write(tmp)
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.remove(tmp)
        raise
    return path


def write_json(path: str, doc: Any) -> str:
    """Write ``doc`` as indented JSON (atomically)."""
    def w(tmp: str) -> None:
        with open(tmp, "w", encoding="utf-8") as f:
            json.dump(doc, f, indent=2, sort_keys=False, allow_nan=False, default=_json_default)
            f.write("\n")

    return atomic_write(path, w)


def _json_default(o: Any):
    try:
        import numpy as np

        if isinstance(o, np.generic):
            return o.item()
    except ImportError:  # pragma: no cover
        pass
    raise TypeError(f"not JSON serializable: {type(o).__name__}")


def _clean_json(doc: Any) -> Any:
    """Replace NaN/inf floats (not valid JSON) with None."""
    import math

    if isinstance(doc, dict):
        return {k: _clean_json(v) for k, v in doc.items()}
    if isinstance(doc, list):
        return [_clean_json(v) for v in doc]
    if isinstance(doc, float) and not math.isfinite(doc):
        return None
    return doc


def with_run_id(table, run_id: str):
    """``table`` with the run id in its schema metadata (stored as Parquet key-value metadata)."""
    meta = dict(table.schema.metadata or {})
    meta[RUN_ID_KEY] = run_id.encode()
    return table.replace_schema_metadata(meta)


def write_text(path: str, text: str) -> str:
    """Write ``text`` as UTF-8 (atomically)."""
    def w(tmp: str) -> None:
        with open(tmp, "w", encoding="utf-8") as f:
            f.write(text)

    return atomic_write(path, w)


def write_parquet(path: str, table) -> str:
    """Write a pyarrow Table as Parquet (atomically)."""
    import pyarrow.parquet as pq

    return atomic_write(path, lambda tmp: pq.write_table(table, tmp))


def write_csv(path: str, table) -> str:
    """Write a pyarrow Table as CSV (atomically)."""
    import pyarrow.csv as pacsv

    return atomic_write(path, lambda tmp: pacsv.write_csv(table, tmp))


# ------------------------------------------------------------------ staging
def _stage_clean(result, stage: str) -> list[str]:
    """The clean files in ``stage/clean``: already there when the scan staged them in this
    folder, else copied from where the scan staged (or last published) them, on disk or in
    a store."""
    from datasan import fs

    rels = [f"clean/{rel}" for rel in result.clean_files]
    src = result.workspace.staging or result.published
    if rels and src is None:
        raise UsageError("this result's clean files are gone (its staging folder was removed); scan again")
    if rels and src and (fs.is_remote(src) or not (os.path.isdir(stage) and os.path.samefile(src, stage))):
        for rel in rels:
            fs.copy(fs.join(src, rel), os.path.join(stage, rel))
    return rels


def stage_outputs(result, stage: str, out_dir: str, clean: bool = True) -> list[str]:
    """Write every file of the run into ``stage`` (the clean files only with ``clean``); return
    their paths relative to it."""
    run_id = result.run_id
    rels = []

    def put(rel: str, write: Callable[[str, Any], str], doc: Any) -> None:
        write(os.path.join(stage, rel), doc)
        rels.append(rel)

    put("findings.parquet", write_parquet, with_run_id(result.findings_table, run_id))
    quarantine = with_run_id(result.quarantine_table, run_id)
    put("quarantine.parquet", write_parquet, quarantine)
    put("quarantine.csv", write_csv, quarantine)
    if result.index_table is not None:
        put("index.parquet", write_parquet, with_run_id(result.index_table, run_id))
    if result.label_quality_table is not None:
        put("label_quality.parquet", write_parquet, with_run_id(result.label_quality_table, run_id))
    if clean:
        rels.extend(_stage_clean(result, stage))
    put("stats.json", write_json, {"run_id": run_id, **_clean_json(result.stats)})
    result.summary.out = out_dir if "://" in out_dir else os.path.abspath(out_dir)
    put("report.json", write_json, _clean_json(result.report))
    if result.report["options"].get("report_html", True):
        from datasan.outputs.formats.html import render_html
        from datasan.outputs.view import FindingsView

        put("report.html", write_text, render_html(FindingsView(result), result.summary.out))
    return rels


# ------------------------------------------------------------------ publishing
def _move(src: str, dest: str) -> None:
    os.makedirs(os.path.dirname(dest), exist_ok=True)
    os.replace(src, dest)


def conflicts(out: str, rels: list[str], owned: dict[str, list[dict]]) -> list[str]:
    """Paths under ``out`` that stand in the way of ``rels`` and that datasan did not write
    (or that were changed since): a file, link or folder where a run file goes, or a
    non-folder where one of its folders goes."""
    bad: list[str] = []
    for rel in rels:
        parts = rel.split("/")
        for i in range(1, len(parts)):
            anc = "/".join(parts[:i])
            full = os.path.join(out, anc)
            if os.path.lexists(full) and (os.path.islink(full) or not os.path.isdir(full)):
                bad.append(anc)
        full = os.path.join(out, rel)
        if os.path.lexists(full) and not still_as_written(full, owned.get(rel, [])):
            bad.append(rel)
    return sorted(set(bad))


def _prune_empty_parents(out: str, rel: str) -> None:
    parent = os.path.dirname(rel)
    while parent:
        try:
            os.rmdir(os.path.join(out, parent))
        except OSError:  # not empty (other files, maybe the user's) or gone
            return
        parent = os.path.dirname(parent)


def publish(folder: OutputFolder, entries: list[dict]) -> None:
    """Move the staged files of ``entries`` into place as one unit (see the module docstring).

    UsageError, before anything is moved, when a file in the way is not datasan's.
    """
    out, stage = folder.out, folder.staging
    prev = read_manifest(out)
    owned = owned_entries(prev)
    new = [e["path"] for e in entries]
    old = [p for p in owned if p not in set(new)]
    in_way = conflicts(out, new + old, owned)
    if prev is None and os.path.lexists(os.path.join(out, MANIFEST)):
        in_way.insert(0, MANIFEST)
    if in_way:
        shown = ", ".join(in_way[:8]) + (f" and {len(in_way) - 8} more" if len(in_way) > 8 else "")
        raise UsageError(f"{out} holds files datasan did not write (or that changed since it wrote them) "
                         f"where this run's files go: {shown}; move them away or choose another --out. "
                         "Nothing was published.")
    journal = [e for es in owned.values() for e in es]  # each entry names its run
    with deferred_signals():
        _write_manifest(folder, manifest_doc(folder.run_id, entries, False, journal))
        for rel in new:
            _move(os.path.join(stage, rel), os.path.join(out, rel))
        for rel in old:
            if os.path.lexists(os.path.join(out, rel)):
                os.remove(os.path.join(out, rel))
                _prune_empty_parents(out, rel)
        _write_manifest(folder, manifest_doc(folder.run_id, entries, True))


def _write_manifest(folder: OutputFolder, doc: dict) -> None:
    # written in the staging folder, then renamed: a kill -9 leaves no temporary file in OUT
    staged = write_json(os.path.join(folder.staging, MANIFEST), doc)
    os.replace(staged, os.path.join(folder.out, MANIFEST))


def write_outputs(result, out_dir: str, force: bool = False) -> list[str]:
    """Write and publish every file of ``result`` into ``out_dir``; returns the paths published.

    Uses the folder the scan claimed when it is ``out_dir``, else claims
    ``out_dir`` (lock, ownership checks; ``force`` as for the scan).  A full
    disk or a read-only place is a UsageError; the folder then still holds
    its previous complete run.
    """
    from datasan import fs

    out_dir = fs.local_path(out_dir)
    if fs.is_remote(out_dir):
        from datasan.outputs.remote import publish_remote

        return publish_remote(result, out_dir, force=force)
    held = result.workspace
    folder = held.output
    if folder is None or not folder.held or not _same_place(folder.out, out_dir):
        folder = claim_output(out_dir, result.summary.path, result.run_id, force=force)
    keep_staging = False
    try:
        rels = stage_outputs(result, folder.staging, out_dir)
        entries = [file_entry(folder.staging, rel) for rel in rels]
        publish(folder, entries)
    except UsageError:
        raise
    except Exception as exc:
        env = environment_error(exc, out_dir)
        if env is not None:
            raise env from exc
        keep_staging = True  # a bug: the staged files are the partial results the message names
        raise
    finally:
        if folder is held.output:
            if keep_staging:
                held.owned = False  # outlives the result: the message names it
            else:
                held.staging = None
            held.output = None
        folder.release(remove_staging=not keep_staging)
    result.published = os.fspath(out_dir)
    return [os.path.join(out_dir, e["path"]) for e in entries] + [os.path.join(out_dir, MANIFEST)]


def _same_place(a: str, b: str) -> bool:
    return os.path.exists(a) and os.path.exists(b) and inside(a, b) and inside(b, a)
