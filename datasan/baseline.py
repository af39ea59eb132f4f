"""Baselines: the findings of an earlier scan, so that only new findings fail the gate.

A finding is identified by ``(code, sample, source, row, column)``, never by its
message (messages carry counts and values that change from run to run).
report.json holds no per-finding rows, so a baseline given as report.json (or
as an output folder) means the findings.parquet beside it.  A findings.parquet
inside an output folder (one with a manifest.json) counts only when that
folder holds one complete run; a copied findings.parquet alone is taken as is.
Each may be a local path or a store URI (``s3://bucket/runs/last``).
"""

from __future__ import annotations

import os

from datasan import fs
from datasan.errors import UsageError
from datasan.outputs.manifest import MANIFEST, verify_output

KEY_COLUMNS = ("code", "sample", "source", "row", "column")


def baseline_findings_path(path: str) -> str:
    """The findings.parquet that ``path`` (a findings.parquet, report.json or output folder,
    local or a store URI) means."""
    path = fs.local_path(path)
    try:
        if fs.is_dir(path):
            cand = fs.join(path, "findings.parquet")
        elif path.endswith(".json"):
            cand = fs.join(fs.dirname(path), "findings.parquet")
        else:
            cand = path
        there = fs.is_file(cand)
    except OSError as exc:  # a store that cannot be reached or refuses the credentials
        raise UsageError(f"baseline {path} cannot be read: {exc}") from None
    if not there:
        raise UsageError(f"baseline {path}: no findings file at {cand} (give a findings.parquet, "
                         "or the report.json / output folder it sits in)")
    return cand


def load_baseline(path: str) -> frozenset[tuple]:
    """The finding keys of a baseline file (UsageError when it cannot be read)."""
    path = fs.local_path(os.fspath(path))
    cand = baseline_findings_path(path)
    folder = fs.dirname(cand)
    if cand != path or fs.exists(fs.join(folder, MANIFEST)):
        verify_output(folder)  # a scan's output folder must hold one whole run
    try:
        table = fs.parquet_file(cand).read()
    except Exception as exc:  # a bad file given on the command line: a usage problem
        raise UsageError(f"baseline {cand} is not a readable findings.parquet: {exc}") from exc
    missing = [c for c in KEY_COLUMNS if c not in table.column_names]
    if missing:
        raise UsageError(f"baseline {cand} lacks the column(s) {', '.join(missing)} of findings.parquet")
    return frozenset(finding_keys(table))


def finding_keys(table) -> list[tuple]:
    """One key per row of a findings table: (code, sample, source, row, column)."""
    cols = [table.column(c).to_pylist() for c in KEY_COLUMNS]
    return list(zip(*cols))
