"""Baselines: the findings of an earlier scan, so that only new findings fail the gate.

A finding is identified by ``(code, sample, source, row, column)``, never by its
message (messages carry counts and values that change from run to run).
report.json holds no per-finding rows, so a baseline given as report.json (or
as an output folder) means the findings.parquet beside it.  A findings.parquet
inside an output folder (one with a manifest.json) counts only when that
folder holds one complete run; a copied findings.parquet alone is taken as is.
"""

from __future__ import annotations

import os

from datasan.errors import UsageError
from datasan.outputs.manifest import MANIFEST, verify_output

KEY_COLUMNS = ("code", "sample", "source", "row", "column")


def baseline_findings_path(path: str) -> str:
    """The findings.parquet that ``path`` (a findings.parquet, report.json or output folder) means."""
    if os.path.isdir(path):
        cand = os.path.join(path, "findings.parquet")
    elif path.endswith(".json"):
        cand = os.path.join(os.path.dirname(path) or ".", "findings.parquet")
    else:
        cand = path
    if not os.path.isfile(cand):
        raise UsageError(f"baseline {path}: no findings file at {cand} (give a findings.parquet, "
                         "or the report.json / output folder it sits in)")
    return cand


def load_baseline(path: str) -> frozenset[tuple]:
    """The finding keys of a baseline file (UsageError when it cannot be read)."""
    import pyarrow.parquet as pq

    cand = baseline_findings_path(os.fspath(path))
    if cand != os.fspath(path) or os.path.exists(os.path.join(os.path.dirname(cand), MANIFEST)):
        verify_output(os.path.dirname(cand) or ".")  # a scan's output folder must hold one whole run
    try:
        table = pq.read_table(cand)
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
