"""Benchmark: `datasan scan --no-probe` on tables vs the tightest bare-pyarrow floor.

The floor does the least any cleaning job must do, as tightly as pyarrow
allows: stream record batches (no pre-buffering), mask rows holding a
non-finite float, per-column sum and sum of squares with pyarrow compute,
write the kept rows (no dictionary encoding for floats, row groups of
>= 262,144 rows, snappy).  The contract floor is the same program plus the
least that keeping the output contract and finding duplicate rows (DS110)
take: each kept row's original number `_row` in the clean file, null counts
per column, a 64-bit hash of each kept row (one multiply-xor per column) and
one sort of the hashes; its ratio to the floor is the part of the 1.2x target
that no implementation of the contract can give back.  Both run as subprocesses, so both pay interpreter
start-up and imports.  Runs are interleaved (floor, datasan, floor, ...) so
drift on the shared machine hits both alike; each figure is printed as
min / median / max over the runs.  Peak RSS is the sum over the process tree
(datasan's workers included), polled every 20 ms; CPU is user + system of the
whole tree (less noisy than wall time on a loaded machine).

    python bench/tables.py                  # 2M x 17 Parquet, 5 interleaved rounds
    python bench/tables.py --scale          # + 1M / 4M / 16M rows: time per row, memory
    python bench/tables.py --wide           # + 1,000 columns x 200k rows
    python bench/tables.py --csv            # + the 2M rows as CSV vs pyarrow.csv + the same floor
    python bench/tables.py --all --repeat 3

Targets at 2M x 17: datasan <= 1.2x the floor's time, peak RSS <= 800 MiB.
"""

from __future__ import annotations

import argparse
import os
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time

from compiled import compile_datasan  # bench/compiled.py

FLOOR = r'''
import sys
import pyarrow as pa, pyarrow.compute as pc, pyarrow.parquet as pq
src, dst = sys.argv[1], sys.argv[2]
# "contract": also what every cleaner that keeps the output contract and finds duplicate
# rows must do, in the least work we know: the original row number `_row` on each kept
# row, null counts per column, a 64-bit hash of each kept row (one multiply-xor per
# column) and one sort of the hashes at the end
contract = sys.argv[3:] == ["contract"]
if contract:
    import numpy as np
if src.endswith(".csv"):
    import pyarrow.csv as pcsv
    batches = pcsv.open_csv(src)  # streaming, block by block
else:
    batches = pq.ParquetFile(src, pre_buffer=False).iter_batches(batch_size=131072)
GROUP = 262144
writer, buf, buffered, sums = None, [], 0, {}
hashes, nulls, start = [], {}, 0
def flush():
    global writer, buf, buffered
    t = pa.Table.from_batches(buf)
    if writer is None:
        dict_cols = [f.name for f in t.schema if not pa.types.is_floating(f.type)]
        writer = pq.ParquetWriter(dst, t.schema, use_dictionary=dict_cols or False, compression="snappy")
    writer.write_table(t, row_group_size=max(GROUP, t.num_rows))
    buf, buffered = [], 0
def row_hash(b):
    h = np.zeros(b.num_rows, np.uint64)
    for i, c in enumerate(b.columns):
        v = c.to_numpy(zero_copy_only=False)
        v = v.view(np.uint64) if v.dtype == np.float64 else v.astype(np.uint64)
        h ^= v * np.uint64(0x9E3779B97F4A7C15 + 2 * i)
    return h
for b in batches:
    mask = None
    for c in b.columns:
        if pa.types.is_floating(c.type):
            ok = pc.is_finite(c)
            mask = ok if mask is None else pc.and_kleene(mask, ok)
    kept = b.filter(mask) if mask is not None else b
    for name, c in zip(kept.schema.names, kept.columns):
        if pa.types.is_integer(c.type) or pa.types.is_floating(c.type):
            s, q = sums.get(name, (0.0, 0.0))
            c = pc.cast(c, pa.float64())
            sums[name] = (s + (pc.sum(c).as_py() or 0.0), q + (pc.sum(pc.multiply(c, c)).as_py() or 0.0))
    if contract:
        for name, c in zip(b.schema.names, b.columns):
            nulls[name] = nulls.get(name, 0) + c.null_count
        rows = pa.array(np.arange(start, start + b.num_rows))
        start += b.num_rows
        hashes.append(row_hash(kept))
        kept = kept.append_column("_row", rows.filter(mask) if mask is not None else rows)
    buf.append(kept)
    buffered += kept.num_rows
    if buffered >= GROUP:
        flush()
if buf:
    flush()
if writer is not None:
    writer.close()
if contract and hashes:
    s = np.sort(np.concatenate(hashes))
    repeated = int((s[1:] == s[:-1]).sum())
'''


def generate(path: str, rows: int, floats: int = 16, chunk: int = 1_048_576) -> None:
    """``rows`` x (``floats`` float64 + an int label) with a few NaN per column, written in
    row groups of 131,072 (as Parquet, or as CSV when ``path`` ends with .csv)."""
    import numpy as np
    import pyarrow as pa
    import pyarrow.csv as pcsv
    import pyarrow.parquet as pq

    rng = np.random.default_rng(0)
    writer = None
    try:
        for start in range(0, rows, chunk):  # in chunks, so 16M rows do not need 2 GiB at once
            n = min(chunk, rows - start)
            cols = {}
            for i in range(floats):
                v = rng.standard_normal(n)
                v[rng.integers(0, n, max(1, 5 * n // rows))] = np.nan  # ~5 NaN per column
                cols[f"f{i}"] = v
            cols["label"] = rng.integers(0, 10, n)
            t = pa.table(cols)
            if writer is None:
                writer = pcsv.CSVWriter(path, t.schema) if path.endswith(".csv") else \
                    pq.ParquetWriter(path, t.schema)
            if path.endswith(".csv"):
                writer.write_table(t)
            else:
                writer.write_table(t, row_group_size=131072)
    finally:
        if writer is not None:
            writer.close()


def run_measured(cmd: list[str]) -> tuple[float, float, float, int]:
    """(wall seconds, CPU seconds, peak RSS MiB of the process tree, exit code)."""
    import psutil

    before = resource.getrusage(resource.RUSAGE_CHILDREN)
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
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    err = p.stderr.read().decode()
    if p.returncode not in (0, 1):
        sys.stderr.write(err)
    return wall, cpu, peak / 2**20, p.returncode


def spread(xs: list[float], fmt: str = "{:.2f}") -> str:
    """'median (min-max)' of ``xs``."""
    return f"{fmt.format(statistics.median(xs))} ({fmt.format(min(xs))}-{fmt.format(max(xs))})"


def compare(work: str, src: str, repeat: int, workers: int, label: str) -> dict:
    """Interleaved floor / datasan runs on ``src``; prints each round, returns the runs."""
    floor_cmd = [sys.executable, "-c", FLOOR, src, os.path.join(work, "floor.parquet")]
    data = os.path.dirname(src)
    # --no-cache: every round scans from scratch (the CLI caches by default)
    ds_cmd = [sys.executable, "-m", "datasan", "scan", "--no-cache", data, "--no-probe",
              "--out", os.path.join(work, "out"), "--workers", str(workers), "--format", "json"]
    contract_cmd = floor_cmd + ["contract"]
    floors, contracts, scans = [], [], []
    for i in range(repeat):
        floors.append(run_measured(floor_cmd))
        contracts.append(run_measured(contract_cmd))
        scans.append(run_measured(ds_cmd))
        print(f"  {label} round {i + 1}: floor {floors[-1][0]:.2f} s ({floors[-1][1]:.2f} s CPU) "
              f"{floors[-1][2]:.0f} MiB | contract floor {contracts[-1][0]:.2f} s ({contracts[-1][1]:.2f} s CPU) "
              f"| datasan {scans[-1][0]:.2f} s ({scans[-1][1]:.2f} s CPU) "
              f"{scans[-1][2]:.0f} MiB (exit {scans[-1][3]})", flush=True)
    ratios = [s[0] / f[0] for f, s in zip(floors, scans)]
    cpu_ratios = [s[1] / f[1] for f, s in zip(floors, scans)]
    return {"floor": floors, "contract": contracts, "datasan": scans, "ratio": ratios, "cpu_ratio": cpu_ratios,
            "contract_ratio": [c[0] / f[0] for f, c in zip(floors, contracts)],
            "over_contract": [s[0] / c[0] for c, s in zip(contracts, scans)]}


def summary(label: str, rows: int, r: dict) -> None:
    """Print the spread of one comparison."""
    f, d = r["floor"], r["datasan"]
    print(f"{label}: floor {spread([x[0] for x in f])} s wall, {spread([x[1] for x in f])} s CPU, "
          f"peak {max(x[2] for x in f):.0f} MiB")
    print(f"{' ' * len(label)}  datasan {spread([x[0] for x in d])} s wall, {spread([x[1] for x in d])} s CPU, "
          f"peak {max(x[2] for x in d):.0f} MiB")
    print(f"{' ' * len(label)}  ratio per round (wall) {spread(r['ratio'])}x, (CPU) {spread(r['cpu_ratio'])}x")
    print(f"{' ' * len(label)}  contract floor {spread([x[0] for x in r['contract']])} s wall: "
          f"{spread(r['contract_ratio'])}x the floor; datasan / contract floor {spread(r['over_contract'])}x")


def table_row(label: str, rows: int, r: dict) -> str:
    f, d = r["floor"], r["datasan"]
    fm = statistics.median(x[0] for x in f)
    dm = statistics.median(x[0] for x in d)
    return (f"| {label} | {fm:.2f} | {dm:.2f} | {statistics.median(r['ratio']):.2f}x | "
            f"{dm / rows * 1e9:.0f} | {statistics.median(x[1] for x in d) / rows * 1e9:.0f} | "
            f"{max(x[2] for x in f):.0f} | {max(x[2] for x in d):.0f} |")


def scenario(work: str, name: str, rows: int, floats: int, ext: str, repeat: int, workers: int) -> dict:
    """Generate one data set in its own folder and compare on it."""
    folder = os.path.join(work, name)
    os.makedirs(folder)
    src = os.path.join(folder, f"big{ext}")
    t = time.perf_counter()
    generate(src, rows, floats)
    print(f"{name}: generated {rows:,} x {floats + 1} {ext[1:]} ({os.path.getsize(src) / 2**20:.0f} MiB) "
          f"in {time.perf_counter() - t:.1f} s", flush=True)
    try:
        return compare(work, src, repeat, workers, name)
    finally:
        shutil.rmtree(folder, ignore_errors=True)
        shutil.rmtree(os.path.join(work, "out"), ignore_errors=True)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--rows", type=int, default=2_000_000)
    ap.add_argument("--repeat", type=int, default=5)
    ap.add_argument("--workers", type=int, default=0)
    ap.add_argument("--scale", action="store_true", help="also 1M, 4M, 16M rows x 17")
    ap.add_argument("--wide", action="store_true", help="also 1,000 columns x 200k rows")
    ap.add_argument("--csv", action="store_true", help="also the same rows as CSV")
    ap.add_argument("--all", action="store_true", help="--scale --wide --csv")
    ap.add_argument("--no-main", action="store_true", help="skip the default 2M x 17 Parquet comparison")
    args = ap.parse_args()
    print(compile_datasan(), flush=True)
    if args.all:
        args.scale = args.wide = args.csv = True
    work = tempfile.mkdtemp(prefix="datasan-bench-tables-")
    rows_out = []
    try:
        if not args.no_main:
            r = scenario(work, "main", args.rows, 16, ".parquet", args.repeat, args.workers)
            summary(f"{args.rows:,} x 17 Parquet", args.rows, r)
            rows_out.append(table_row(f"{args.rows:,} x 17 Parquet", args.rows, r))
            print("targets: ratio <= 1.2x, datasan peak RSS <= 800 MiB", flush=True)
        if args.scale:
            for n in (1_000_000, 4_000_000, 16_000_000):
                r = scenario(work, f"rows{n}", n, 16, ".parquet", args.repeat, args.workers)
                rows_out.append(table_row(f"{n:,} x 17 Parquet", n, r))
        if args.wide:
            r = scenario(work, "wide", 200_000, 999, ".parquet", args.repeat, args.workers)
            rows_out.append(table_row("200,000 x 1,000 Parquet", 200_000, r))
        if args.csv:
            r = scenario(work, "csv", args.rows, 16, ".csv", args.repeat, args.workers)
            rows_out.append(table_row(f"{args.rows:,} x 17 CSV", args.rows, r))
        print()
        print("| data | floor s | datasan s | ratio | datasan ns/row (wall) | datasan ns/row (CPU) "
              "| floor peak MiB | datasan peak MiB |")
        print("|---|---|---|---|---|---|---|---|")
        for line in rows_out:
            print(line)
        print(f"(medians of {args.repeat} interleaved rounds; ratio: median of the per-round ratios)")
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
