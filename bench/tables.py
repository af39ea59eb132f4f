"""Benchmark: `datasan scan --no-probe` on a 2,000,000 x 17 Parquet vs a bare-pyarrow floor.

The floor does the least any cleaning job must do: stream record batches,
mask rows holding a non-finite float, accumulate column sums, write the kept
rows (same Parquet writer settings as datasan's clean files).  Both run as
subprocesses, so both pay interpreter start-up and imports; peak RSS is the
sum over the process tree (datasan's workers included), polled every 20 ms.

    python bench/tables.py [--rows 2000000] [--repeat 3]

Targets: datasan <= 1.3x the floor's time, peak RSS <= 800 MiB.
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import time

FLOOR = r'''
import sys
import numpy as np, pyarrow as pa, pyarrow.compute as pc, pyarrow.parquet as pq
src, dst = sys.argv[1], sys.argv[2]
pre_buffer = sys.argv[3] == "1"
pf = pq.ParquetFile(src, pre_buffer=pre_buffer)
writer = None
sums = None
buf, buffered = [], 0
def flush():
    global writer, buf, buffered
    if not buf:
        return
    t = pa.Table.from_batches(buf)
    if writer is None:
        dict_cols = [f.name for f in t.schema if not pa.types.is_floating(f.type)]
        writer = pq.ParquetWriter(dst, t.schema, use_dictionary=dict_cols or False, compression="snappy")
    writer.write_table(t, row_group_size=max(262144, t.num_rows))
    buf, buffered = [], 0
for b in pf.iter_batches(batch_size=131072):
    mask = None
    for c in b.columns:
        if pa.types.is_floating(c.type):
            ok = pc.is_finite(c).fill_null(False)
            mask = ok if mask is None else pc.and_(mask, ok)
    kept = b.filter(mask)
    s = np.array([pc.sum(c).as_py() or 0 for c in kept.columns], dtype=np.float64)
    sums = s if sums is None else sums + s
    buf.append(kept); buffered += kept.num_rows
    if buffered >= 262144:
        flush()
flush()
writer.close()
'''


def generate(path: str, rows: int) -> None:
    import numpy as np
    import pyarrow as pa
    import pyarrow.parquet as pq

    rng = np.random.default_rng(0)
    cols = {}
    for i in range(16):
        v = rng.standard_normal(rows)
        v[rng.integers(0, rows, 5)] = np.nan  # a few NaN per column
        cols[f"f{i}"] = v
    cols["label"] = rng.integers(0, 10, rows)
    pq.write_table(pa.table(cols), path, row_group_size=131072)


def run_measured(cmd: list[str]) -> tuple[float, float, int]:
    """(wall seconds, peak RSS MiB of the process tree, exit code)."""
    import psutil

    t0 = time.perf_counter()
    p = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    proc = psutil.Process(p.pid)
    peak = 0
    while p.poll() is None:
        try:
            rss = proc.memory_info().rss + sum(c.memory_info().rss for c in proc.children(recursive=True))
            peak = max(peak, rss)
        except psutil.Error:
            pass
        time.sleep(0.02)
    wall = time.perf_counter() - t0
    if p.returncode not in (0, 1):
        sys.stderr.write(p.stderr.read().decode())
    return wall, peak / 2**20, p.returncode


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--rows", type=int, default=2_000_000)
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--workers", type=int, default=0)
    args = ap.parse_args()
    work = tempfile.mkdtemp(prefix="datasan-bench-tables-")
    try:
        data = os.path.join(work, "data")
        os.makedirs(data)
        src = os.path.join(data, "big.parquet")
        t = time.perf_counter()
        generate(src, args.rows)
        print(f"generated {args.rows:,} x 17 Parquet ({os.path.getsize(src) / 2**20:.0f} MiB) "
              f"in {time.perf_counter() - t:.1f} s")
        floor_cmd = [sys.executable, "-c", FLOOR, src, os.path.join(work, "floor.parquet"), "1"]
        # the same floor reading without pre-buffering, as datasan does: isolates that one setting
        tuned_cmd = [sys.executable, "-c", FLOOR, src, os.path.join(work, "floor2.parquet"), "0"]
        ds_cmd = [sys.executable, "-m", "datasan", "scan", data, "--no-probe", "--out", os.path.join(work, "out"),
                  "--workers", str(args.workers), "--format", "json"]
        floors, tuned, scans = [], [], []
        for i in range(args.repeat):  # interleaved, so drift hits all alike
            floors.append(run_measured(floor_cmd))
            tuned.append(run_measured(tuned_cmd))
            scans.append(run_measured(ds_cmd))
            print(f"  run {i + 1}: floor {floors[-1][0]:.2f} s / {floors[-1][1]:.0f} MiB   "
                  f"floor without pre-buffer {tuned[-1][0]:.2f} s / {tuned[-1][1]:.0f} MiB   "
                  f"datasan {scans[-1][0]:.2f} s / {scans[-1][1]:.0f} MiB (exit {scans[-1][2]})")
        f_t = min(x[0] for x in floors)
        t_t = min(x[0] for x in tuned)
        d_t = min(x[0] for x in scans)
        d_rss = max(x[1] for x in scans)
        f_rss = max(x[1] for x in floors)
        t_rss = max(x[1] for x in tuned)
        print(f"floor (bare pyarrow, defaults) best of {args.repeat}: {f_t:.2f} s, peak RSS {f_rss:.0f} MiB")
        print(f"floor without pre-buffer best of {args.repeat}: {t_t:.2f} s, peak RSS {t_rss:.0f} MiB")
        print(f"datasan scan --no-probe best of {args.repeat}: {d_t:.2f} s, peak RSS {d_rss:.0f} MiB")
        print(f"ratio datasan/floor: {d_t / f_t:.2f}x (target <= 1.3x); vs the floor without pre-buffer: "
              f"{d_t / t_t:.2f}x; peak RSS {d_rss:.0f} MiB (target <= 800 MiB)")
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
