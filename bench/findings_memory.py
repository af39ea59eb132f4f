"""Benchmark: peak memory of `datasan scan --no-probe` when every row is a finding.

A Parquet of N identical rows x 20 columns makes N - 1 DS110 findings
(exact duplicate rows); the baseline is the same scan of N distinct rows
(no findings) of the same size, so the difference is what the findings cost.  Each scan runs
as a subprocess; peak RSS is the sum over the process tree (workers
included), polled every 20 ms.  Output goes to a throw-away folder.

    python bench/findings_memory.py [--rows 2000000] [--also 5000000]

Target (2M identical rows x 20 columns): peak RSS <= 800 MiB.
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import tempfile

COLUMNS = 20


def generate(path: str, rows: int, identical: bool) -> None:
    """``rows`` x 20 Parquet: 19 float64 features and an int label, all rows equal when ``identical``."""
    import numpy as np
    import pyarrow as pa
    import pyarrow.parquet as pq

    rng = np.random.default_rng(0)
    cols = {}
    for i in range(COLUMNS - 1):
        cols[f"f{i}"] = np.full(rows, 0.5 + i) if identical else rng.standard_normal(rows)
    cols["label"] = np.zeros(rows, dtype=np.int64) if identical else rng.integers(0, 10, rows)
    pq.write_table(pa.table(cols), path, row_group_size=131072)


def run_measured(cmd: list[str]) -> tuple[float, float, int]:
    """(wall seconds, peak RSS MiB of the process tree, exit code): bench/tables.py's measure."""
    sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
    from tables import run_measured as measured

    wall, _cpu, peak, rc = measured(cmd)
    return wall, peak, rc


def measure(work: str, rows: int, identical: bool, workers: int) -> tuple[float, float, int, int]:
    """Generate, scan and count findings: (seconds, peak MiB, exit code, findings)."""
    import pyarrow.parquet as pq

    kind = "identical" if identical else "distinct"
    data = os.path.join(work, f"{kind}-{rows}")
    out = data + "-out"
    os.makedirs(data)
    generate(os.path.join(data, "big.parquet"), rows, identical)
    cmd = [sys.executable, "-m", "datasan", "scan", "--no-cache", data, "--no-probe", "--out", out,
           "--workers", str(workers)]  # the text summary a person gets
    wall, peak, rc = run_measured(cmd)
    n = pq.ParquetFile(os.path.join(out, "findings.parquet")).metadata.num_rows if rc in (0, 1) else -1
    shutil.rmtree(data, ignore_errors=True)
    shutil.rmtree(out, ignore_errors=True)
    return wall, peak, rc, n


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--rows", type=int, default=2_000_000)
    ap.add_argument("--also", type=int, nargs="*", default=[5_000_000],
                    help="more row counts to measure the same way")
    ap.add_argument("--workers", type=int, default=0)
    args = ap.parse_args()
    work = tempfile.mkdtemp(prefix="datasan-bench-findings-")
    try:
        for i, rows in enumerate([args.rows] + list(args.also)):
            base = measure(work, rows, False, args.workers)
            dup = measure(work, rows, True, args.workers)
            extra = (dup[1] - base[1]) * 2**20 / max(dup[3], 1)
            verdict = f"; target <= 800 MiB: {'met' if dup[1] <= 800 else 'NOT met'}" if i == 0 else ""
            print(f"{rows:,} rows x {COLUMNS}: distinct (baseline) {base[0]:.2f} s, peak RSS {base[1]:.0f} MiB, "
                  f"{base[3]:,} findings (exit {base[2]}) | identical {dup[0]:.2f} s, peak RSS {dup[1]:.0f} MiB, "
                  f"{dup[3]:,} findings (exit {dup[2]}) | {extra:.0f} B per finding over the baseline{verdict}")
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
