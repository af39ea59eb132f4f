"""Benchmark: the local engine vs the Ray engine on this machine (Ray start-up shown apart).

Scans the 2,000,000 x 17 Parquet of bench/tables.py (split into shards of
``--shard-rows``) and the 3,000 photos of bench/images.py with ``--no-probe``,
once per engine, in this process; Ray is started once before its scans and
its start-up is timed on its own.  Also measured: the driver's cost per Ray
task (an empty shard function over many tasks), the bytes a table shard sends
back to the driver per row, and the peak memory of one worker process.

    python bench/engines.py [--rows 2000000] [--images 3000] [--shard-rows 250000] [--cpus N]

Needs ``pip install "datasan[ray]"``; prints measured numbers only.
"""

from __future__ import annotations

import argparse
import os
import pickle
import shutil
import sys
import tempfile
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))


class PeakRSS:
    """Peak RSS (MiB) of this process with its children, and of the largest single child,
    polled every 20 ms while the block runs.  Ray workers are children of the raylet, so
    ``others`` names extra root pids whose trees count too."""

    def __init__(self, others: list[int] = ()) -> None:
        self.others = list(others)
        self.total = self.child = 0.0
        self._stop = threading.Event()

    def _poll(self) -> None:
        import psutil

        roots = [psutil.Process()] + [psutil.Process(p) for p in self.others]
        while not self._stop.is_set():
            procs = []
            for r in roots:
                try:
                    procs += [r] + r.children(recursive=True)
                except psutil.Error:
                    pass
            sizes = []
            for p in procs:
                try:
                    sizes.append(p.memory_info().rss)
                except psutil.Error:
                    pass
            me = os.getpid()
            self.total = max(self.total, sum(sizes) / 2**20)
            kids = [s for p, s in zip(procs, sizes) if p.pid != me and "ray::" in _name(p)]
            if kids:
                self.child = max(self.child, max(kids) / 2**20)
            time.sleep(0.02)

    def __enter__(self) -> "PeakRSS":
        self._t = threading.Thread(target=self._poll, daemon=True)
        self._t.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._t.join()


def _name(p) -> str:
    try:
        return " ".join(p.cmdline()[:1]) or p.name()
    except Exception:  # noqa: BLE001 - the process ended
        return ""


def _nothing(task: int) -> int:
    return task


def timed_scan(path: str, out: str, **options) -> tuple[float, object]:
    import datasan

    shutil.rmtree(out, ignore_errors=True)
    t0 = time.perf_counter()
    r = datasan.scan(path, out_dir=out, probe=False, config=False, **options)
    return time.perf_counter() - t0, r


def shard_bytes_per_row(table: str, shard_rows: int, split: bool = True) -> float:
    """Pickled size of one table shard's result (what Ray sends to the driver) per row: of a
    split table (row hashes left bucketed in the staging place), or of a table read in one
    shard (hashes returned)."""
    from datasan.discover import discover
    from datasan.options import ScanOptions
    from datasan.sources.tables.kind import _shards
    from datasan.sources.tables.plan import plan_table
    from datasan.sources.tables.profile import ProfileTask, profile_table
    from datasan.sources.tables.scan import scan_shard
    from datasan.sources.base import ScanContext
    from datasan.engine import LocalEngine

    opts = ScanOptions(shard_rows=shard_rows, probe=False)
    f = discover(table).files[0]
    prof = profile_table(ProfileTask(f.rel, f.path, "parquet", None, opts))
    plan, _ = plan_table(f, prof, opts)
    stage = tempfile.mkdtemp()
    os.makedirs(os.path.join(stage, "parts"))
    ctx = ScanContext(root=os.path.dirname(table), options=opts, engine=LocalEngine(1), staging=stage)
    task = _shards(0, plan, prof, ctx)[0]
    if not split:
        task.hash_buckets, task.hash_prefix = 0, None
    res = scan_shard(task)
    size = len(pickle.dumps(res, protocol=5))
    shutil.rmtree(stage)
    return size / max(1, res.seen)


def image_bytes_per_image(images: str, n: int = 128) -> float:
    """Pickled size of one image shard's records (what Ray sends to the driver) per image."""
    from datasan.discover import discover
    from datasan.sources.images.decode import ImageTask, inspect_shard

    files = [(f.rel, f.path) for f in discover(images).files[:n]]
    return len(pickle.dumps(inspect_shard(ImageTask(files)), protocol=5)) / len(files)


def concat_rows_per_s(table: str, parts: int) -> float:
    """Rows per second one task assembles a split table's clean parts into one file at."""
    import pyarrow.parquet as pq

    from datasan.sources.tables.output import AssembleTask, assemble_parts

    work = tempfile.mkdtemp()
    pf = pq.ParquetFile(table)
    groups = list(range(pf.num_row_groups))
    paths = []
    for k in range(parts):
        mine = groups[k::parts]
        if mine:
            paths.append(os.path.join(work, f"{k}.parquet"))
            pq.write_table(pf.read_row_groups(mine), paths[-1])
    t0 = time.perf_counter()
    assemble_parts(AssembleTask(paths, os.path.join(work, "clean.parquet"), "bench"))
    took = time.perf_counter() - t0
    shutil.rmtree(work)
    return pf.metadata.num_rows / took


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--rows", type=int, default=2_000_000)
    ap.add_argument("--images", type=int, default=3000)
    ap.add_argument("--shard-rows", type=int, default=250_000)
    ap.add_argument("--cpus", type=int, default=os.cpu_count() or 1)
    ap.add_argument("--tasks", type=int, default=2000, help="empty tasks for the driver cost per task")
    args = ap.parse_args()

    import ray
    from images import make_images
    from tables import generate

    work = tempfile.mkdtemp(prefix="datasan-bench-engines-")
    try:
        table_dir = os.path.join(work, "table")
        os.makedirs(table_dir)
        table = os.path.join(table_dir, "big.parquet")
        generate(table, args.rows)
        images = os.path.join(work, "images")
        make_images(images, args.images)
        print(f"data: {args.rows:,} rows x 17 columns ({args.rows // args.shard_rows} shards of "
              f"{args.shard_rows:,}), {args.images:,} JPEG images 256x256; {args.cpus} CPUs")

        tab_opts = dict(shard_rows=args.shard_rows, workers=args.cpus)
        with PeakRSS() as mem:
            t_lt, _ = timed_scan(table_dir, os.path.join(work, "o1"), **tab_opts)
        print(f"local  table : {t_lt:6.2f} s  {args.rows / t_lt:10,.0f} rows/s  "
              f"{args.rows / t_lt / args.cpus:9,.0f} rows/s/core  peak RSS {mem.total:5.0f} MiB")
        t_li, _ = timed_scan(images, os.path.join(work, "o2"), workers=args.cpus)
        print(f"local  images: {t_li:6.2f} s  {args.images / t_li:10,.0f} img/s   "
              f"{args.images / t_li / args.cpus:9,.1f} img/s/core")

        t0 = time.perf_counter()
        ray.init(num_cpus=args.cpus, include_dashboard=False, log_to_driver=False)
        t_start = time.perf_counter() - t0
        print(f"ray start-up : {t_start:6.2f} s (once per session; not in the times below)")
        raylet = [p.pid for p in __import__("psutil").process_iter(["cmdline"])
                  if "raylet" in " ".join(p.info["cmdline"] or [])]
        from datasan.ray_engine import RayEngine

        with RayEngine() as eng:  # the first tasks also start the workers: warm them apart
            t0 = time.perf_counter()
            list(eng.map_ordered(_nothing, range(args.cpus * 2)))
            t_warm = time.perf_counter() - t0
            t0 = time.perf_counter()
            list(eng.map_ordered(_nothing, range(args.tasks)))
            per_task = (time.perf_counter() - t0) / args.tasks
        print(f"ray  workers : {t_warm:6.2f} s to start {args.cpus} workers; driver cost per task "
              f"{per_task * 1e3:.2f} ms ({args.tasks} empty tasks, {2 * args.cpus} in flight)")
        with PeakRSS(raylet) as mem:
            t_rt, _ = timed_scan(table_dir, os.path.join(work, "o3"), engine="ray", **tab_opts)
        print(f"ray    table : {t_rt:6.2f} s  {args.rows / t_rt:10,.0f} rows/s  "
              f"{args.rows / t_rt / args.cpus:9,.0f} rows/s/core  peak RSS {mem.total:5.0f} MiB "
              f"(one worker at most {mem.child:4.0f} MiB)")
        with PeakRSS(raylet) as mem:
            t_ri, _ = timed_scan(images, os.path.join(work, "o4"), engine="ray", workers=args.cpus)
        print(f"ray    images: {t_ri:6.2f} s  {args.images / t_ri:10,.0f} img/s   "
              f"{args.images / t_ri / args.cpus:9,.1f} img/s/core  (one worker at most {mem.child:4.0f} MiB)")
        ray.shutdown()
        for split in (True, False):
            per_row = shard_bytes_per_row(table, args.shard_rows, split)
            how = "split table: hashes bucketed on the workers" if split else "one-shard table: hashes returned"
            print(f"table shard result sent to the driver ({how}): {per_row:.1f} bytes per row "
                  f"({per_row * args.shard_rows / 2**20:.2f} MiB per shard of {args.shard_rows:,})")
        print(f"image shard result sent to the driver: {image_bytes_per_image(images):.0f} bytes per image")
        rate = concat_rows_per_s(table, max(1, args.rows // args.shard_rows))
        print(f"one task assembling the clean parts of a split table into one file: {rate:,.0f} rows/s")
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
