"""Benchmark: what publishing a run as one unit costs (staging, sha256 for the manifest, renames).

Scans bench/tables.py's 2,000,000 x 17 Parquet in-process, then times
``ScanResult.write`` (the small output files written into the staging folder,
the non-Parquet ones hashed for manifest.json, everything renamed into place)
into a new folder and again into the same folder (the previous run's files
are checked and replaced), against what a sha256 of every published file
would add (the reason Parquet files carry the run id instead of a hash).
Best of ``--repeat``.

    python bench/publish.py [--rows 2000000] [--repeat 3]
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))


def main() -> None:
    from tables import generate

    from datasan.options import ScanOptions
    from datasan.outputs.manifest import file_sha256, read_manifest
    from datasan.pipeline import scan

    ap = argparse.ArgumentParser()
    ap.add_argument("--rows", type=int, default=2_000_000)
    ap.add_argument("--repeat", type=int, default=3)
    args = ap.parse_args()
    work = tempfile.mkdtemp(prefix="datasan-bench-outputs-")
    try:
        data = os.path.join(work, "data")
        os.makedirs(data)
        generate(os.path.join(data, "big.parquet"), args.rows)
        fresh, again, hashing = [], [], []
        for i in range(args.repeat):
            out = os.path.join(work, f"out{i}")
            for times in (fresh, again):  # a new folder, then the same folder again
                res = scan(data, ScanOptions(probe=False, workers=1), out_dir=out)
                t = time.perf_counter()
                res.write(out)
                times.append(time.perf_counter() - t)
            files = [os.path.join(out, e["path"]) for e in read_manifest(out)["files"]]
            t = time.perf_counter()
            for f in files:
                file_sha256(f)
            hashing.append(time.perf_counter() - t)
            size = sum(os.path.getsize(f) for f in files)
            print(f"  run {i + 1}: write into a new folder {fresh[-1]:.3f} s, into the same folder again "
                  f"{again[-1]:.3f} s; sha256 of the {len(files)} files ({size / 2**20:.0f} MiB) {hashing[-1]:.3f} s")
        print(f"best of {args.repeat}: write {min(fresh):.3f} s into a new folder, {min(again):.3f} s into the "
              f"same folder again; a sha256 of every file would add {min(hashing):.3f} s "
              f"({size / 2**20 / min(hashing):.0f} MiB/s)")
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
