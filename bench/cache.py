"""Incremental scan benchmark: cold scan vs warm scans from the content cache.

    PYTHONPATH=$PWD python bench/cache.py [--images 20000] [--rows 2000000] [--changed 0.01]

Generates N small real-photo images (64x64 JPEG crops of scikit-image's bundled
photos, no download) in class folders and an R-row x 17 Parquet table in a
temporary folder, then times `python -m datasan scan` subprocesses (interpreter
start included, all cores), with `--no-probe` and with the probe:

* uncached: `--no-cache` (what a scan cost before the cache);
* cold: an empty cache (the scan plus hashing every file and storing every result);
* warm: nothing changed;
* warm, changed: `--changed` of the images rewritten with other pixels
  (the table unchanged), then a scan.

Prints each time, the cache's hits and misses from report.json, cold / uncached
(target: <= 1.1x) and warm / cold side by side (target: warm with 1 % changed
<= 10 % of cold).
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import shutil
import sys
import tempfile
import time

from compiled import compile_datasan  # bench/compiled.py


def photos():
    from skimage import data

    out = []
    for name in ("astronaut", "coffee", "chelsea", "rocket", "hubble_deep_field", "immunohistochemistry"):
        try:
            a = getattr(data, name)()
        except Exception:  # not bundled in this scikit-image
            continue
        if a.ndim == 3 and a.shape[2] == 3:
            out.append(a)
    return out


def write_image(path: str, pics, rng) -> None:
    import numpy as np
    from PIL import Image

    a = pics[int(rng.integers(0, len(pics)))]
    y = int(rng.integers(0, a.shape[0] - 64))
    x = int(rng.integers(0, a.shape[1] - 64))
    Image.fromarray(np.ascontiguousarray(a[y:y + 64, x:x + 64])).save(path, quality=90)


def make_images(folder: str, n: int) -> list[str]:
    import numpy as np

    pics, rng, paths = photos(), np.random.default_rng(0), []
    for i in range(n):
        sub = os.path.join(folder, f"class{i % 10}")
        os.makedirs(sub, exist_ok=True)
        paths.append(os.path.join(sub, f"{i:06d}.jpg"))
        write_image(paths[-1], pics, rng)
    return paths


def make_table(path: str, rows: int) -> None:
    here = os.path.dirname(os.path.abspath(__file__))
    spec = importlib.util.spec_from_file_location("bench_tables", os.path.join(here, "tables.py"))
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    mod.generate(path, rows)


def scan(data: str, out: str, cache: str | None, probe: bool) -> tuple[float, float, dict]:
    """Wall seconds, CPU seconds (user + system over the scan's process tree, its pool's
    workers included, polled every 20 ms) and report.json's cache entry."""
    from images import timed  # the benches' one measure of a process tree

    cmd = [sys.executable, "-m", "datasan", "scan", data, "--out", out, "--quiet", "--force",
           "--probe" if probe else "--no-probe"]
    cmd += ["--cache", cache] if cache else ["--no-cache"]
    wall, _, cpu = timed(cmd, dict(os.environ))
    with open(os.path.join(out, "report.json")) as f:
        return wall, cpu, json.load(f)["cache"]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--images", type=int, default=20000)
    ap.add_argument("--rows", type=int, default=2_000_000)
    ap.add_argument("--changed", type=float, default=0.01)
    ap.add_argument("--no-probe-only", action="store_true", help="skip the scans with the probe")
    ap.add_argument("--probe-only", action="store_true", help="skip the scans without the probe")
    args = ap.parse_args()
    print(compile_datasan(), flush=True)
    import numpy as np

    work = tempfile.mkdtemp(prefix="datasan-bench-cache-")
    try:
        data = os.path.join(work, "data")
        t0 = time.perf_counter()
        paths = make_images(os.path.join(data, "images"), args.images)
        if args.rows:
            make_table(os.path.join(data, "table.parquet"), args.rows)
        print(f"data: {args.images:,} 64x64 JPEGs + {args.rows:,} x 17 Parquet rows "
              f"(generated in {time.perf_counter() - t0:.1f} s); {args.changed:.1%} of the images changed "
              f"for the warm rescans; {os.cpu_count()} cores")
        pics, rng = photos(), np.random.default_rng(1)
        print("wall seconds (CPU seconds of the process tree); misses = shard units computed")
        print("| scan | uncached | cold (empty cache) | warm, unchanged | warm, changed | cold / uncached | "
              "warm / cold | changed / cold | misses cold / warm / changed |")
        print("|---|---|---|---|---|---|---|---|---|", flush=True)
        modes = [False] if args.no_probe_only else [True] if args.probe_only else [False, True]
        for probe in modes:
            label = "probe" if probe else "--no-probe"
            cache = os.path.join(work, f"cache-{label}")
            out = os.path.join(work, "out")
            uncached = scan(data, out, None, probe)
            cold = scan(data, out, cache, probe)
            warm = scan(data, out, cache, probe)
            for i in rng.choice(len(paths), max(1, int(len(paths) * args.changed)), replace=False):
                write_image(paths[int(i)], pics, rng)
            changed = scan(data, out, cache, probe)
            cells = [f"{w:.2f} s ({c:.2f} s)" for w, c, _ in (uncached, cold, warm, changed)]
            ratios = [f"{cold[0] / uncached[0]:.2f}x ({cold[1] / uncached[1]:.2f}x CPU)"]
            ratios += [f"{x[0] / cold[0]:.1%} ({x[1] / cold[1]:.1%} CPU)" for x in (warm, changed)]
            misses = " / ".join(str(x[2]["misses"]) for x in (cold, warm, changed))
            print(f"| {label} | {' | '.join(cells)} | {' | '.join(ratios)} | {misses} |", flush=True)
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
