"""Comparing two scans' outputs: JSON values to 1e-12 and Parquet tables without their run id."""

from __future__ import annotations

from pathlib import Path

import pytest


def close_json(a, b, where: str) -> None:
    """JSON values equal, floats to 1e-12 (relative or absolute), NaN equal to NaN."""
    if isinstance(a, float) or isinstance(b, float):
        assert a == pytest.approx(b, rel=1e-12, abs=1e-12, nan_ok=True), where
    elif isinstance(a, dict):
        assert isinstance(b, dict) and a.keys() == b.keys(), where
        for k in a:
            close_json(a[k], b[k], f"{where}.{k}")
    elif isinstance(a, list):
        assert isinstance(b, list) and len(a) == len(b), where
        for i, (x, y) in enumerate(zip(a, b)):
            close_json(x, y, f"{where}[{i}]")
    else:
        assert a == b, where


def table_of(path: Path):
    """A Parquet file's table without schema metadata: the run id differs per run, the rows do not."""
    import pyarrow.parquet as pq

    return pq.read_table(path).replace_schema_metadata(None)


def files_of(out: Path) -> list[str]:
    """Every file under ``out``, relative, sorted."""
    return sorted(p.relative_to(out).as_posix() for p in out.rglob("*") if p.is_file())
