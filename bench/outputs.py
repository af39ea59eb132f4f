"""Benchmark: rendering the readable outputs of a scan with many findings.

Data: two CSVs of duplicate rows (``--rows`` rows each, 4 columns), so every
row but the first of each is one DS110 finding, plus one NaN row per file.
The scan runs once (``--no-probe``); then each renderer (terminal summary at
80 columns, github, junit, markdown) runs ``--repeat`` times on the loaded
result and the fastest run counts.

Baseline: converting the findings' columns to Python lists, as every
renderer once did.  Grouping and counting now run on Arrow and NumPy arrays,
so a renderer below 1x never built a Python object per finding.

Prints for each output its time, its size in lines and the ratio to the floor.

    PYTHONPATH=. python bench/outputs.py [--rows 250000] [--repeat 3]
"""

from __future__ import annotations

import argparse
import io
import os
import tempfile
import time


def make_data(folder: str, rows: int) -> None:
    for name in ("a.csv", "b.csv"):
        with open(os.path.join(folder, name), "w") as f:
            f.write("x,y,z,label\n")
            f.write("1.5,2.5,3.5,1\n" * rows)
            f.write("nan,0,0,0\n")


def best(fn, repeat: int) -> tuple[float, object]:
    times, out = [], None
    for _ in range(repeat):
        t = time.perf_counter()
        out = fn()
        times.append(time.perf_counter() - t)
    return min(times), out


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--rows", type=int, default=250_000)
    ap.add_argument("--repeat", type=int, default=3)
    args = ap.parse_args()

    from rich.console import Console

    import datasan
    from datasan.outputs.formats import render, write

    with tempfile.TemporaryDirectory() as tmp:
        data = os.path.join(tmp, "data")
        os.mkdir(data)
        make_data(data, args.rows)
        result = datasan.scan(data, probe=False, config=False)
        ft = result.findings_table
        print(f"{ft.num_rows:,} findings ({result.report['findings']['by_code']})")

        floor, _ = best(lambda: [ft.column(c).to_pylist() for c in ft.column_names], args.repeat)
        print(f"{'floor (columns to lists)':28} {floor:7.2f} s")

        def text() -> str:
            console = Console(file=io.StringIO(), width=80)
            write(result, "text", "out", console)
            return console.file.getvalue()

        outputs = {"text (80 columns)": text}
        for fmt in ("github", "junit", "markdown"):
            outputs[fmt] = lambda fmt=fmt: render(result, fmt, "out")
        for name, fn in outputs.items():
            t, out = best(fn, args.repeat)
            print(f"{name:28} {t:7.2f} s  {len(out.splitlines()):6,} lines  {t / floor:5.2f}x the floor")


if __name__ == "__main__":
    main()
