"""Benchmark: mislabeled samples (DS407) found by the probe, against a kNN baseline, and its cost.

Quality (``--part quality``): real classification data shipping with
scikit-learn, scanned with ``datasan.scan`` (probe on) with 5 % of the labels
flipped at random to another class (seeded), then unflipped:

* tables: iris, wine, breast cancer, digits (8x8 pixels as 64 columns);
* images: digits 8x8 written as PNG files in class folders; and real photos
  (scikit-image's astronaut, coffee, chelsea, rocket, and scikit-learn's china
  and flower) cut into 32x32 crops, one class per photo.

Recall and precision of the DS407 flags against the flipped samples, and the
share of samples flagged on the unflipped data (targets: >= 0.9, >= 0.9,
<= 1 %), printed beside two baselines:

* kNN: scikit-learn's 10-nearest-neighbour classifier, 5-fold cross-validated
  predictions on standardized features (raw pixels for images), flagging every
  sample whose prediction differs from its label;
* SVM + CL: what a cleanlab user would do with a good model of their own:
  scikit-learn's RBF SVM (probabilities calibrated by Platt scaling), 5-fold
  out-of-fold probabilities on standardized features, flagged by the same
  confident learning datasan applies to its own probabilities
  (``datasan.probe.labels.confident_learning``); only the model differs.

``--seeds 1,2,3`` repeats the flips with each seed (5 % of iris is 8 samples:
one seed's recall moves in steps of 0.125) and prints the mean over the seeds.

Cost (``--part time``): a 1,000,000-row x 32-feature classification Parquet
file (10 Gaussian classes); the probe's cost is ``scan`` minus ``scan
--no-probe`` as fresh subprocesses, fastest of ``--repeat``, with the label
estimate (default) and without it (``--ignore DS407``: the probe as it was).
Target: with <= 2x without.

    PYTHONPATH=. python bench/label_noise.py [--part quality|time|all] [--rows 1000000] [--repeat 2]
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

RATE = 0.05


def flip(y, rate: float, seed: int):
    """``y`` with round(rate * n) labels moved to another class at random, and the flipped positions."""
    import numpy as np

    rng = np.random.default_rng(seed)
    classes = np.unique(y)
    idx = np.sort(rng.choice(len(y), int(round(rate * len(y))), replace=False))
    out = y.copy()
    for i in idx:
        out[i] = rng.choice(classes[classes != y[i]])
    return out, set(idx.tolist())


def tables():
    """(name, X, y) of scikit-learn's classification tables."""
    from sklearn import datasets

    for name in ("iris", "wine", "breast_cancer", "digits"):
        d = getattr(datasets, f"load_{name}")()
        yield name, d.data, d.target


def photo_crops(size: int = 32, per_photo: int = 150, seed: int = 0):
    """Random size x size crops of six real photos; the class is the photo."""
    import numpy as np
    from skimage import data as skd
    from sklearn.datasets import load_sample_images

    photos = {n: getattr(skd, n)() for n in ("astronaut", "coffee", "chelsea", "rocket")}
    photos.update(zip(("china", "flower"), load_sample_images().images))
    rng = np.random.default_rng(seed)
    xs, ys = [], []
    for c, (name, img) in enumerate(sorted(photos.items())):
        h, w = img.shape[:2]
        for _ in range(per_photo):
            r, q = rng.integers(0, h - size), rng.integers(0, w - size)
            xs.append(img[r:r + size, q:q + size, :3])
            ys.append(c)
    return np.stack(xs), np.asarray(ys)


def image_sets():
    """(name, uint8 images, y): digits 8x8 (0..16 scaled to 0..255) and the photo crops."""
    import numpy as np
    from sklearn.datasets import load_digits

    d = load_digits()
    yield "digits-images", (d.images * (255 / 16)).astype(np.uint8), d.target
    x, y = photo_crops()
    yield "photo-crops", x, y


def write_table(folder: str, x, y) -> str:
    import numpy as np
    import pyarrow as pa
    import pyarrow.parquet as pq

    cols = {f"f{j}": np.asarray(x[:, j], dtype=np.float64) for j in range(x.shape[1])}
    cols["label"] = np.asarray(y, dtype=np.int64)
    os.makedirs(folder, exist_ok=True)
    pq.write_table(pa.table(cols), os.path.join(folder, "data.parquet"))
    return folder


def write_images(folder: str, x, y) -> str:
    from PIL import Image

    for i, (img, lab) in enumerate(zip(x, y)):
        d = os.path.join(folder, "set", f"c{lab}")
        os.makedirs(d, exist_ok=True)
        Image.fromarray(img).save(os.path.join(d, f"{i:05d}.png"))
    return folder


def flagged_by_datasan(folder: str, images: bool) -> tuple[set[int], float]:
    """Positions datasan flags DS407, and the seconds of its label estimate."""
    import datasan

    opts = {"target": None if images else "label", "probe": True}
    with datasan.scan(folder, **opts) as r:
        f = r.findings
        f = f[f["code"] == "DS407"]
        if images:
            pos = {int(os.path.basename(s).split(".")[0]) for s in f["sample"]}
        else:
            pos = {int(v) for v in f["row"]}
        secs = sum(s.get("label_noise", {}).get("seconds", 0.0) for s in r.report["probe"]["sources"].values())
    return pos, secs


def flagged_by_knn(x, y, images: bool) -> set[int]:
    import numpy as np
    from sklearn.model_selection import StratifiedKFold, cross_val_predict
    from sklearn.neighbors import KNeighborsClassifier
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    x = x.reshape(len(x), -1).astype(np.float64)
    model = KNeighborsClassifier(10) if images else make_pipeline(StandardScaler(), KNeighborsClassifier(10))
    pred = cross_val_predict(model, x, y, cv=StratifiedKFold(5, shuffle=True, random_state=0))
    return set(np.flatnonzero(pred != y).tolist())


def flagged_by_svm_cl(x, y, images: bool) -> set[int]:
    """Confident learning (datasan's own) over an RBF SVM's 5-fold out-of-fold probabilities."""
    import numpy as np
    from sklearn.calibration import CalibratedClassifierCV
    from sklearn.model_selection import StratifiedKFold, cross_val_predict
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler
    from sklearn.svm import SVC

    from datasan.probe.labels import confident_learning

    x = x.reshape(len(x), -1).astype(np.float64)
    model = make_pipeline(StandardScaler(), CalibratedClassifierCV(SVC(), ensemble=False))
    probs = cross_val_predict(model, x, y, cv=StratifiedKFold(5, shuffle=True, random_state=0),
                              method="predict_proba")
    verdicts, _, _ = confident_learning(probs, np.asarray(y, dtype=np.int64))
    return set(np.flatnonzero(verdicts.suspect).tolist())


def measure(flagged: set[int], flipped: set[int], n: int) -> tuple[float, float, float]:
    """(recall, precision, share flagged): recall and precision are NaN without flips."""
    tp = len(flagged & flipped)
    if not flipped:
        return float("nan"), float("nan"), len(flagged) / n
    return tp / len(flipped), tp / max(1, len(flagged)), len(flagged) / n


def scores(flagged: set[int], flipped: set[int], n: int) -> str:
    tp = len(flagged & flipped)
    if not flipped:
        return f"{len(flagged):4d} flagged = {len(flagged) / n:6.2%} of {n}"
    rec, prec, _ = measure(flagged, flipped, n)
    return f"recall {rec:4.2f} precision {prec:4.2f} ({tp}/{len(flipped)} flips, {len(flagged)} flags)"


def mean_scores(rows: list[tuple[float, float, float]], flipped: bool) -> str:
    import numpy as np

    r, p, f = np.asarray(rows).mean(axis=0)
    return f"recall {r:4.2f} precision {p:4.2f} (mean)" if flipped else f"{f:6.2%} flagged (mean)"


def quality(work: str, seeds: list[int]) -> None:
    print(f"{'data':15s} {'labels':12s} | {'datasan DS407':50s} | {'kNN baseline (10-NN, 5-fold)':50s} | "
          "SVM + confident learning (5-fold)")
    sets = [(n, x, y, False) for n, x, y in tables()] + [(n, x, y, True) for n, x, y in image_sets()]
    for name, x, y, images in sets:
        for rate in (RATE, 0.0):
            rows: dict[str, list] = {"ours": [], "knn": [], "svm": []}
            for seed in (seeds if rate else seeds[:1]):
                yy, flipped = flip(y, rate, seed) if rate else (y, set())
                folder = os.path.join(work, f"{name}-{rate}")
                (write_images if images else write_table)(folder, x, yy)
                t = time.perf_counter()
                ours, est = flagged_by_datasan(folder, images)
                dt = time.perf_counter() - t
                knn, svm = flagged_by_knn(x, yy, images), flagged_by_svm_cl(x, yy, images)
                what = f"{rate:.0%} seed {seed}" if rate else "unflipped"
                print(f"{name:15s} {what:12s} | {scores(ours, flipped, len(y)):50s} | "
                      f"{scores(knn, flipped, len(y)):50s} | {scores(svm, flipped, len(y))}"
                      f"   [scan {dt:.1f} s, label estimate {est:.1f} s]", flush=True)
                for k, v in (("ours", ours), ("knn", knn), ("svm", svm)):
                    rows[k].append(measure(v, flipped, len(y)))
                shutil.rmtree(folder, ignore_errors=True)
            if rate and len(seeds) > 1:
                print(f"{name:15s} {'5% mean':12s} | " + " | ".join(
                    f"{mean_scores(rows[k], True):50s}" for k in ("ours", "knn", "svm")).rstrip(), flush=True)


def make_big(path: str, rows: int, features: int = 32, classes: int = 10, seed: int = 0) -> None:
    import numpy as np
    import pyarrow as pa
    import pyarrow.parquet as pq

    rng = np.random.default_rng(seed)
    centers = rng.normal(scale=1.5, size=(classes, features))
    y = rng.integers(0, classes, size=rows)
    cols = {f"f{j}": centers[y, j] + rng.normal(size=rows) for j in range(features)}
    cols["label"] = y
    pq.write_table(pa.table(cols), path, row_group_size=131_072)


def timed_scan(data: str, out: str, *extra: str) -> tuple[float, dict]:
    # --no-cache: the scans with and without the probe must both read everything
    cmd = [sys.executable, "-m", "datasan", "scan", "--no-cache", data, "--out", out, "--format", "json",
           "--fail-on", "never", "--target", "label", *extra]
    t = time.perf_counter()
    proc = subprocess.run(cmd, capture_output=True, text=True)
    dt = time.perf_counter() - t
    if proc.returncode not in (0, 1):
        raise SystemExit(f"scan failed ({proc.returncode}):\n{proc.stderr[-3000:]}")
    return dt, json.loads(proc.stdout)


def cost(work: str, rows: int, repeat: int) -> None:
    data = os.path.join(work, "big")
    os.makedirs(data, exist_ok=True)
    make_big(os.path.join(data, "classes.parquet"), rows)
    runs: dict[str, list[float]] = {"no-probe": [], "probe without labels": [], "probe with labels": []}
    clocks: dict[str, list[float]] = {"probe without labels": [], "probe with labels": []}
    reports = {}
    args = {"no-probe": ("--no-probe",), "probe without labels": ("--ignore", "DS407"), "probe with labels": ()}
    for _ in range(repeat):
        for k, extra in args.items():
            dt, rep = timed_scan(data, os.path.join(work, "out"), *extra)
            if not runs[k] or dt < min(runs[k]):
                reports[k] = rep
            runs[k].append(dt)
            if k in clocks:
                clocks[k].append(rep["probe"]["seconds"])
    base = min(runs["no-probe"])
    for k, v in runs.items():
        print(f"scan, {k:21s}: {min(v):7.2f} s  (runs: {', '.join(f'{t:.2f}' for t in v)})")
    before = min(runs["probe without labels"]) - base
    after = min(runs["probe with labels"]) - base
    own = {k: min(v) for k, v in clocks.items()}
    print(f"probe own clock : {own['probe without labels']:.2f} s without labels, {own['probe with labels']:.2f} s "
          f"with: {own['probe with labels'] / own['probe without labels']:.2f}x (fastest runs; torch import included; "
          "label_quality.parquet's writing not included)")
    src = reports["probe with labels"]["probe"]["sources"]["classes.parquet"]
    ln = src.get("label_noise", {})
    print(f"probe cost      : {before:.2f} s without labels, {after:.2f} s with: {after / before:.2f}x (target <= 2x)")
    print(f"label estimate  : {ln.get('seconds')} s by its own clock; trained on {ln.get('trained_on'):,} rows "
          f"({ln.get('folds')} folds x {ln.get('epochs')} epochs, batch {ln.get('batch_size')}), "
          f"scored {ln.get('scored'):,}; flagged {ln.get('flagged'):,}")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--part", choices=("quality", "time", "all"), default="all")
    ap.add_argument("--rows", type=int, default=1_000_000)
    ap.add_argument("--repeat", type=int, default=2)
    ap.add_argument("--seeds", default="1", help="flip seeds, comma-separated (a mean line when several)")
    args = ap.parse_args()
    work = tempfile.mkdtemp(prefix="datasan-bench-labels-")
    try:
        if args.part in ("quality", "all"):
            quality(work, [int(v) for v in args.seeds.split(",")])
        if args.part in ("time", "all"):
            cost(work, args.rows, args.repeat)
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
