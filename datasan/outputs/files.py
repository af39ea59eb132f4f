"""The contract's files, each written whole or not at all (temporary name, then rename)."""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from typing import Any, Callable


def atomic_write(path: str, write: Callable[[str], None]) -> str:
    """Call ``write(tmp)`` for a temporary file beside ``path``, then rename it to ``path``."""
    folder = os.path.dirname(path) or "."
    os.makedirs(folder, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=".tmp-", suffix=os.path.basename(path), dir=folder)
    os.close(fd)
    try:
        write(tmp)
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.remove(tmp)
        raise
    return path


def write_json(path: str, doc: Any) -> str:
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


def write_parquet(path: str, table) -> str:
    import pyarrow.parquet as pq

    return atomic_write(path, lambda tmp: pq.write_table(table, tmp))


def write_csv(path: str, table) -> str:
    import pyarrow.csv as pacsv

    return atomic_write(path, lambda tmp: pacsv.write_csv(table, tmp))


def _install_clean(result, out_dir: str) -> list[str]:
    """Move the staged clean files into out_dir/clean, replacing a previous run's folder."""
    if not result.staging:
        return []
    staged = os.path.join(result.staging, "clean")
    dest = os.path.join(out_dir, "clean")
    written = [os.path.join(dest, rel) for rel in result.clean_files]
    same_fs = os.path.dirname(os.path.abspath(result.staging)) == os.path.abspath(out_dir)
    new = staged
    if not same_fs:
        new = tempfile.mkdtemp(prefix=".datasan-clean-", dir=out_dir)
        shutil.copytree(staged, new, dirs_exist_ok=True)
    old = None
    if os.path.exists(dest):
        old = tempfile.mkdtemp(prefix=".datasan-old-", dir=out_dir)
        os.replace(dest, os.path.join(old, "clean"))
    os.replace(new, dest)
    if old:
        shutil.rmtree(old, ignore_errors=True)
    if same_fs:
        shutil.rmtree(result.staging, ignore_errors=True)
        result.staging = None
    return written


def write_outputs(result, out_dir: str) -> list[str]:
    """Write findings, quarantine (parquet + csv), clean files, index, stats and report."""
    os.makedirs(out_dir, exist_ok=True)
    out = [
        write_parquet(os.path.join(out_dir, "findings.parquet"), result.findings_table),
        write_parquet(os.path.join(out_dir, "quarantine.parquet"), result.quarantine_table),
        write_csv(os.path.join(out_dir, "quarantine.csv"), result.quarantine_table),
    ]
    if result.index_table is not None:
        out.append(write_parquet(os.path.join(out_dir, "index.parquet"), result.index_table))
    out.extend(_install_clean(result, out_dir))
    out.append(write_json(os.path.join(out_dir, "stats.json"), _clean_json(result.stats)))
    result.report["out"] = os.path.abspath(out_dir)
    out.append(write_json(os.path.join(out_dir, "report.json"), _clean_json(result.report)))
    return out
