"""Benchmark: false alarms and detections of `--baseline` drift on real tables.

Real data that ships with scikit-learn (no download): wine, breast cancer,
iris, digits (classification) and diabetes (regression).  Each table is
scanned once as the baseline, then compared with

* 20 bootstrap resamples, the rows shuffled, and a random 10 % subsample:
  the same distribution, so any drift finding is a false alarm;
* one column shifted by +3 standard deviations, and class 0 shrunk to a
  fifth of its rows: drift that must be found.

Prints the largest raw value per metric over the no-drift runs (against the
default thresholds), every drift run's verdict, and the totals.

    python bench/drift.py [--seed 0] [--bootstrap 20]
"""

from __future__ import annotations

import argparse
import os
import shutil
import tempfile
from collections import defaultdict


def datasets():
    """(name, DataFrame with a 'target' column, the column to shift, whether it has classes)."""
    from sklearn import datasets as ds

    out = []
    for name, loader, col, classes in (
        ("wine", ds.load_wine, "alcohol", True),
        ("breast_cancer", ds.load_breast_cancer, "mean radius", True),
        ("iris", ds.load_iris, "sepal length (cm)", True),
        ("digits", ds.load_digits, "pixel_3_4", True),
        ("diabetes", ds.load_diabetes, "bmi", False),
    ):
        frame = loader(as_frame=True).frame
        out.append((name, frame, col, classes))
    return out


def scan(df, folder: str, out: str, baseline: str | None = None):
    import datasan

    os.makedirs(folder, exist_ok=True)
    df.to_csv(os.path.join(folder, "t.csv"), index=False)
    opts = {"probe": False, "workers": 1, "config": False, "target": "target"}
    if baseline:
        opts["baseline"] = baseline
    res = datasan.scan(folder, out_dir=out, **opts)
    shutil.rmtree(folder)
    return res


def drift_of(res) -> tuple[list[str], list[dict]]:
    codes = [c for c in res.findings_table.column("code").to_pylist() if c.startswith("DS5")]
    return codes, res.report["drift"]["comparisons"]


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--bootstrap", type=int, default=20)
    args = ap.parse_args()
    import numpy as np

    from datasan.options import Thresholds

    th = Thresholds()
    rng = np.random.default_rng(args.seed)
    work = tempfile.mkdtemp(prefix="datasan-bench-drift-")
    worst: dict[tuple[str, str], float] = defaultdict(float)
    false_alarms, runs, missed = 0, 0, 0
    closest_quiet, weakest_found = (0.0, ""), (float("inf"), "")  # value / limit: the defaults' margins
    print(f"defaults: drift_js {th.drift_js}, drift_mean_shift {th.drift_mean_shift}, drift_class_linf "
          f"{th.drift_class_linf}, drift_missing_rate {th.drift_missing_rate}, drift_noise_z {th.drift_noise_z}, "
          f"drift_bins {th.drift_bins}\n")
    print(f"{'dataset':14} {'run':12} {'js max':>8} {'shift max':>9} {'class linf':>10}  verdict")
    try:
        for name, df, col, classes in datasets():
            base = os.path.join(work, f"{name}-base-out")
            scan(df, os.path.join(work, "d"), base)
            n = len(df)
            same = [(f"bootstrap{i + 1}", df.iloc[rng.integers(0, n, n)]) for i in range(args.bootstrap)]
            same.append(("shuffled", df.iloc[rng.permutation(n)]))
            same.append(("10% sample", df.iloc[rng.choice(n, n // 10, replace=False)]))
            shifted = df.copy()
            shifted[col] = shifted[col] + 3 * df[col].std(ddof=0)
            changed = [("shift+3std", shifted, "DS501/DS502 on " + col)]
            if classes:
                y = df["target"].to_numpy()
                keep = (y != 0) | (rng.random(n) < 0.2)
                changed.append(("class0/5", df[keep], "DS503 on target"))
            for kind, rows in [("same", r) for r in same] + [("drift", r) for r in changed]:
                label, frame = rows[0], rows[1]
                res = scan(frame, os.path.join(work, "d"), os.path.join(work, "o"), baseline=base)
                codes, comps = drift_of(res)
                vals = defaultdict(float)
                ratio = defaultdict(float)
                for e in comps:
                    if isinstance(e.get("value"), float):
                        vals[e["metric"]] = max(vals[e["metric"]], e["value"])
                        if e.get("limit"):
                            ratio[e["metric"]] = max(ratio[e["metric"]], e["value"] / e["limit"])
                if kind == "same":
                    runs += 1
                    false_alarms += bool(codes)
                    closest_quiet = max([closest_quiet, *((r, f"{name} {label} {m}") for m, r in ratio.items())])
                    for m, v in vals.items():
                        worst[(name, m)] = max(worst[(name, m)], v)
                    verdict = "FALSE ALARM " + ",".join(sorted(set(codes))) if codes else "no drift (ok)"
                    if label.startswith("bootstrap") and label != "bootstrap1" and not codes:
                        continue  # one line per dataset for the quiet bootstraps; their maxima below
                else:
                    want = {"shift+3std": {"DS501", "DS502"}, "class0/5": {"DS503"}}[label]
                    found = want & set(codes)
                    metric = {"shift+3std": "mean_shift", "class0/5": "class_linf"}[label]
                    weakest_found = min(weakest_found, (ratio[metric], f"{name} {label} {metric}"))
                    missed += not found
                    verdict = (f"found {','.join(sorted(found))}" if found else f"MISSED (wanted {rows[2]})")
                print(f"{name:14} {label:12} {vals['js_distance']:8.3f} {vals['mean_shift']:9.3f} "
                      f"{vals['class_linf']:10.3f}  {verdict}")
        print("\nlargest raw value over the no-drift runs (bootstraps, shuffle, subsample):")
        print(f"{'dataset':14} {'js_distance':>12} {'mean_shift':>11} {'class_linf':>11} {'category':>9} {'missing':>8}")
        for name in dict.fromkeys(n for n, _ in worst):
            w = {m: worst[(name, m)] for m in ("js_distance", "mean_shift", "class_linf", "category_linf",
                                                "missing_rate_change")}
            print(f"{name:14} {w['js_distance']:12.3f} {w['mean_shift']:11.3f} {w['class_linf']:11.3f} "
                  f"{w['category_linf']:9.3f} {w['missing_rate_change']:8.3f}")
        print(f"\nfalse alarms: {false_alarms} of {runs} no-drift runs; drift missed: {missed}")
        print(f"margins: the no-drift value closest to a finding reached {closest_quiet[0]:.2f} of its limit "
              f"({closest_quiet[1]}); the weakest drift found passed its limit {weakest_found[0]:.2f} times "
              f"({weakest_found[1]})")
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
