"""Benchmark: the probe's cost vs. the per-sample loop people use to find a NaN-making row.

Data: a 1,000,000-row x 32-feature regression Parquet file (standard normal
features, target = a linear function + noise) with 5 rows carrying a finite
1e38 in one feature (float32 can hold it; its square cannot).

* probe cost = wall time of ``datasan scan`` minus ``datasan scan --no-probe``,
  both as fresh subprocesses (so the probe's ``import torch`` is included);
  each is run ``--repeat`` times and the fastest run counts.
* per-sample loop = batch_size=1 forward + MSE loss + isfinite check through an
  MLP of the probe's shape (32 -> 32 -> 32 -> 1: the same seeded network), in this process, over the
  first ``--loop-rows`` rows of the same data, extrapolated linearly to all
  rows (the loop's cost per row is flat; data loading and torch import are
  not counted, which favours the loop), fastest of ``--repeat`` runs.

Prints both times, the ratio (target >= 10x) and whether all 5 rows were flagged.

    PYTHONPATH=. python bench/probe.py [--rows 1000000] [--loop-rows 20000] [--repeat 2]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time

BAD_ROWS = (17, 250_001, 499_999, 777_777, 999_998)


def make_data(path: str, rows: int, features: int = 32, seed: int = 0) -> list[int]:
    import numpy as np
    import pyarrow as pa
    import pyarrow.parquet as pq

    rng = np.random.default_rng(seed)
    bad = [r for r in BAD_ROWS if r < rows] or [rows // 2]
    cols = {}
    w = rng.normal(size=features)
    y = np.zeros(rows)
    for j in range(features):
        v = rng.normal(size=rows)
        y += w[j] * v
        cols[f"f{j}"] = v
    for k, r in enumerate(bad):
        cols[f"f{(3 + 7 * k) % features}"][r] = 1e38
    cols["y"] = y + rng.normal(scale=0.1, size=rows)
    pq.write_table(pa.table(cols), path, row_group_size=131_072)
    return bad


def timed_scan(data_dir: str, out: str, probe: bool) -> tuple[float, dict]:
    cmd = [sys.executable, "-m", "datasan", "scan", "--no-cache", data_dir, "--out", out, "--format", "json",
           "--fail-on", "never"]
    if not probe:
        cmd.append("--no-probe")
    t = time.perf_counter()
    proc = subprocess.run(cmd, capture_output=True, text=True, env={**os.environ})
    dt = time.perf_counter() - t
    if proc.returncode not in (0, 1):
        raise SystemExit(f"scan failed ({proc.returncode}):\n{proc.stderr[-3000:]}")
    return dt, json.loads(proc.stdout)


def per_sample_loop(path: str, n: int) -> tuple[float, list[int]]:
    """Seconds for batch_size=1 forward + loss over the first ``n`` rows, and the rows found."""
    import numpy as np
    import pyarrow.parquet as pq
    import torch

    from datasan.probe.models import default_mlp

    table = pq.ParquetFile(path).read_row_groups([0]).slice(0, n)
    feats = [c for c in table.column_names if c != "y"]
    x = torch.from_numpy(np.stack([table.column(c).to_numpy() for c in feats], axis=1).astype(np.float32))
    y = torch.from_numpy(table.column("y").to_numpy().astype(np.float32))
    model = default_mlp(len(feats), 1, 0)
    found = []
    t = time.perf_counter()
    with torch.no_grad():
        for i in range(x.shape[0]):
            out = model(x[i:i + 1])
            loss = torch.nn.functional.mse_loss(out.squeeze(1), y[i:i + 1], reduction="none")
            if not bool(torch.isfinite(loss).all()):
                found.append(i)
    return time.perf_counter() - t, found


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--rows", type=int, default=1_000_000)
    ap.add_argument("--loop-rows", type=int, default=20_000)
    ap.add_argument("--repeat", type=int, default=2)
    ap.add_argument("--keep", help="keep the data in this folder")
    args = ap.parse_args()
    work = tempfile.mkdtemp(prefix="datasan-bench-probe-")
    data_dir = args.keep or os.path.join(work, "data")
    os.makedirs(data_dir, exist_ok=True)
    path = os.path.join(data_dir, "regression.parquet")
    t = time.perf_counter()
    bad = make_data(path, args.rows)
    print(f"data: {args.rows:,} rows x 32 features, {len(bad)} rows with a 1e38 "
          f"({time.perf_counter() - t:.1f} s to write, {os.path.getsize(path) / 1e6:.0f} MB)")
    try:
        with_probe, without = [], []
        report = None
        for _ in range(args.repeat):
            dt, rep = timed_scan(data_dir, os.path.join(work, "out-probe"), True)
            if not with_probe or dt < min(with_probe):
                report = rep
            with_probe.append(dt)
            dt, _ = timed_scan(data_dir, os.path.join(work, "out-noprobe"), False)
            without.append(dt)
        probe_cost = min(with_probe) - min(without)
        loops = [per_sample_loop(path, min(args.loop_rows, args.rows)) for _ in range(args.repeat)]
        loop_s, loop_found = min(loops)
        loop_n = min(args.loop_rows, args.rows)
        loop_full = loop_s * args.rows / loop_n
        import pyarrow.parquet as pq

        q = pq.read_table(os.path.join(work, "out-probe", "quarantine.parquet")).to_pydict()
        flagged = sorted(int(s.rsplit("#", 1)[1]) for s, c in zip(q["sample"], q["codes"]) if "DS401" in c)
        probe = report["probe"]
        print(f"scan --no-probe : {min(without):7.2f} s  (runs: {', '.join(f'{v:.2f}' for v in without)})")
        print(f"scan (probe on) : {min(with_probe):7.2f} s  (runs: {', '.join(f'{v:.2f}' for v in with_probe)})")
        print(f"probe cost      : {probe_cost:7.2f} s  (difference of the fastest runs; torch import included; "
              f"the fastest run's own probe clock, torch import included: {probe['seconds']:.2f} s over "
              f"{probe['samples_probed']:,} rows)")
        stages = probe["sources"]["regression.parquet"].get("stage_seconds", {})
        print("probe stages    : " + ", ".join(f"{k} {v:.2f} s" for k, v in stages.items()))
        print(f"per-sample loop : {loop_full:7.2f} s  (batch_size=1 forward + loss, measured over {loop_n:,} rows "
              f"in {loop_s:.2f} s (fastest of {args.repeat}) and extrapolated linearly to {args.rows:,})")
        print(f"ratio           : {loop_full / probe_cost:7.1f}x  (target >= 10x)")
        print(f"flagged DS401   : {flagged} (expected {bad}): {'all found' if flagged == bad else 'MISMATCH'}")
        print(f"loop found      : {loop_found} among its first {loop_n:,} rows")
        if flagged != bad:
            raise SystemExit(1)
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
