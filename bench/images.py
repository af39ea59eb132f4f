"""Image scan benchmark: `datasan scan --no-probe` against a one-process decode floor.

    PYTHONPATH=$PWD python bench/images.py [--n 3000] [--keep DIR]

Generates N real-photo 256x256 JPEGs (crops of scikit-image's bundled photos,
no download) in a temporary folder, then times, in the same run:

* floor: one Python process that opens, fully decodes and sums every pixel;
* all-cores floor: the same split over one process per core, run at once;
* datasan: `python -m datasan scan DIR --no-probe` on all cores (a subprocess),
  with every image check on (perceptual hashes and scores included).

All are subprocesses timed from start to exit (interpreter start included),
interleaved in each round. Prints the times, datasan's ratio to each floor
(target <= 1.3x the all-cores floor at 3,000 images) and the peak RSS (the
sum over datasan's process tree, polled every 20 ms).
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time

from compiled import compile_datasan  # bench/compiled.py

FLOOR = r"""
import os, sys
import numpy as np
from PIL import Image
root = sys.argv[1]
part, parts = (int(sys.argv[2]), int(sys.argv[3])) if len(sys.argv) > 3 else (0, 1)
total = 0
i = 0
for dirpath, _, names in sorted(os.walk(root)):
    for n in sorted(names):
        i += 1
        if i % parts != part:
            continue
        with Image.open(os.path.join(dirpath, n)) as im:
            im.load()
            total += int(np.asarray(im).sum(dtype=np.uint64))
print(total)
"""


# The contract floor: the floor's decode plus the per-pixel work the image checks need,
# with datasan's own numpy kernels in a bare loop (no records, findings, processes or
# outputs): the file's bytes hashed (exact duplicates), the exact per-channel sums from
# Pillow's histogram, the gray copy and its histogram (brightness percentiles, entropy),
# the 64 x 64 base and its 32 x 32 / 9 x 8 resizes (pHash, dHash), and per 8 images the
# Laplacian variance (blur) and the hashes.  Its ratio to the floor is what these checks
# cost in the least work we know; datasan over it is the rest (start-up, workers, records,
# findings, outputs).
CONTRACT = r"""
import hashlib, io, os, sys
import numpy as np
from PIL import Image
from datasan.sources.images.perceptual import dhashes, entropies, laplacian_variances, percentiles, phashes
root = sys.argv[1]
part, parts = (int(sys.argv[2]), int(sys.argv[3])) if len(sys.argv) > 3 else (0, 1)
L = Image.Resampling.LANCZOS
total, i, batch = 0, 0, []
def flush():
    global total
    hists = np.array([b[0] for b in batch], dtype=np.int64)
    n = len(batch)
    percentiles(hists), entropies(hists)
    phashes(np.frombuffer(b"".join(b[1] for b in batch), np.uint8).reshape(n, 32, 32))
    dhashes(np.frombuffer(b"".join(b[2] for b in batch), np.uint8).reshape(n, 8, 9))
    for size in {b[3].size for b in batch}:
        same = [b[3] for b in batch if b[3].size == size]
        stack = np.frombuffer(b"".join(g.tobytes() for g in same), np.uint8).reshape(len(same), size[1], size[0])
        total += int(laplacian_variances(stack).sum())
    batch.clear()
for dirpath, _, names in sorted(os.walk(root)):
    for n in sorted(names):
        i += 1
        if i % parts != part:
            continue
        with open(os.path.join(dirpath, n), "rb") as f:
            data = f.read()
        hashlib.blake2b(data, digest_size=16).digest()
        with Image.open(io.BytesIO(data)) as im:
            im.load()
            h = im.histogram()
            total += sum(h)
            gray = im.convert("L") if im.mode != "L" else im
            w, hh = gray.size
            base = gray.reduce((w // 64, hh // 64)) if w % 64 == 0 and hh % 64 == 0 else gray.resize((64, 64), Image.Resampling.BOX)
            batch.append((gray.histogram(), base.resize((32, 32), L).tobytes(), base.resize((9, 8), L).tobytes(), gray))
            if len(batch) == 8:
                flush()
if batch:
    flush()
print(total)
"""

def parallel_floor(folder: str, env: dict, program: str = FLOOR) -> float:
    """Wall seconds of ``program`` (the floor) split over one process per core, run at once:
    what the machine's cores really deliver (on a shared or SMT machine, less than N x)."""
    n = os.cpu_count() or 1
    t0 = time.perf_counter()
    procs = [subprocess.Popen([sys.executable, "-c", program, folder, str(k), str(n)], env=env,
                              stdout=subprocess.DEVNULL) for k in range(n)]
    for p in procs:
        p.wait()
    return time.perf_counter() - t0


def make_images(folder: str, n: int) -> None:
    import numpy as np
    from PIL import Image
    from skimage import data

    photos = []
    for name in ("astronaut", "coffee", "chelsea", "rocket", "hubble_deep_field", "immunohistochemistry"):
        try:
            a = getattr(data, name)()
        except Exception:  # not bundled in this scikit-image
            continue
        if a.ndim == 3 and a.shape[2] == 3 and min(a.shape[:2]) >= 256:
            photos.append(a)
    rng = np.random.default_rng(0)
    for i in range(n):
        a = photos[i % len(photos)]
        y = int(rng.integers(0, a.shape[0] - 255))
        x = int(rng.integers(0, a.shape[1] - 255))
        crop = a[y:y + 256, x:x + 256]
        if rng.random() < 0.5:
            crop = crop[:, ::-1]
        sub = os.path.join(folder, f"{i // 500:02d}")
        os.makedirs(sub, exist_ok=True)
        Image.fromarray(np.ascontiguousarray(crop)).save(os.path.join(sub, f"{i:05d}.jpg"), quality=90)


def timed(cmd: list[str], env: dict) -> tuple[float, int, float]:
    """Wall seconds, peak RSS (bytes, summed over the process tree) and CPU seconds
    (user + system, summed over every process of the tree, workers included) of ``cmd``."""
    import psutil

    t0 = time.perf_counter()
    p = subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    proc = psutil.Process(p.pid)
    peak = 0
    cpu: dict[int, float] = {}
    while p.poll() is None:
        try:
            tree = [proc] + proc.children(recursive=True)
            rss = 0
            for q in tree:
                with q.oneshot():
                    rss += q.memory_info().rss
                    t = q.cpu_times()
                    cpu[q.pid] = t.user + t.system  # own time only: reaped children are in the tree already
            peak = max(peak, rss)
        except psutil.Error:
            pass
        time.sleep(0.02)
    wall = time.perf_counter() - t0
    out, err = p.communicate()
    if p.returncode not in (0, 1):
        print(err, file=sys.stderr)
        raise SystemExit(f"{cmd[:4]} failed with exit status {p.returncode}")
    return wall, peak, sum(cpu.values())


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--n", type=int, default=3000)
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--keep", help="generate into (and keep) this folder")
    args = ap.parse_args()
    print(compile_datasan(), flush=True)
    env = dict(os.environ)
    repo = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    env["PYTHONPATH"] = repo + (os.pathsep + env["PYTHONPATH"] if env.get("PYTHONPATH") else "")
    with tempfile.TemporaryDirectory() as tmp:
        folder = args.keep or os.path.join(tmp, "photos")
        if not os.path.isdir(folder) or not os.listdir(folder):
            t = time.perf_counter()
            make_images(folder, args.n)
            print(f"generated {args.n} 256x256 JPEGs in {time.perf_counter() - t:.1f} s")
        size = sum(os.path.getsize(os.path.join(d, f)) for d, _, fs in os.walk(folder) for f in fs)
        print(f"dataset: {args.n} images, {size / 1e6:.1f} MB, {os.cpu_count()} cores")
        floors, scans, pfloors, pcontracts = [], [], [], []
        for r in range(args.repeat):
            fw, fpeak, fcpu = timed([sys.executable, "-c", FLOOR, folder], env)
            out = os.path.join(tmp, f"out{r}")
            # --no-cache: every round scans from scratch (the CLI caches by default)
            sw, speak, scpu = timed([sys.executable, "-m", "datasan", "scan", "--no-cache", folder, "--out", out,
                                     "--no-probe", "--fail-on", "never"], env)
            pw = parallel_floor(folder, env)
            pc = parallel_floor(folder, env, CONTRACT)
            floors.append((fw, fpeak, fcpu))
            scans.append((sw, speak, scpu))
            pfloors.append(pw)
            pcontracts.append(pc)
            print(f"run {r}: floor {fw:.2f} s ({fcpu:.2f} s CPU), datasan {sw:.2f} s ({scpu:.2f} s CPU, "
                  f"all processes), ratio {sw / fw:.2f}x; floor split over {os.cpu_count()} processes "
                  f"{pw:.2f} s ({pw / fw:.2f}x); contract floor split so {pc:.2f} s ({pc / pw:.2f}x the "
                  f"all-cores floor)")
        # best of the runs: the machine may be shared, the minimum is the least disturbed
        fw, fpeak, fcpu = min(floors)
        sw, speak, scpu = min(scans)
        print(f"floor (one process: open, decode, sum): {fw:.2f} s  ({args.n / fw:.0f} images/s), "
              f"peak RSS {fpeak / 2**20:.0f} MiB")
        print(f"datasan scan --no-probe (all cores):    {sw:.2f} s  ({args.n / sw:.0f} images/s), "
              f"peak RSS {speak / 2**20:.0f} MiB (process tree)")
        print(f"ratio datasan / floor: {sw / fw:.2f}x wall, {scpu / fcpu:.2f}x CPU")
        pw = min(pfloors)
        print(f"all-cores floor: the floor split over {os.cpu_count()} concurrent processes took "
              f"{pw:.2f} s = {pw / fw:.2f}x the floor; datasan / that: {sw / pw:.2f}x (target <= 1.3x)")
        per_run = sorted(s[0] / p for s, p in zip(scans, pfloors))
        print("datasan / all-cores floor per run (same round): " + ", ".join(f"{r:.2f}x" for r in per_run))
        per_run = sorted(c / p for c, p in zip(pcontracts, pfloors))
        print("all-cores contract floor (the checks' per-pixel work in a bare loop) / all-cores floor per run: "
              + ", ".join(f"{r:.2f}x" for r in per_run))
        per_run = sorted(s[0] / c for s, c in zip(scans, pcontracts))
        print("datasan / all-cores contract floor per run: " + ", ".join(f"{r:.2f}x" for r in per_run))


if __name__ == "__main__":
    main()
