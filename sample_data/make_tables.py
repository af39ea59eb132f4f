"""Regenerate sample_data/tables/ (deterministic).  Run: python sample_data/make_tables.py

Every defect planted here is listed in sample_data/README.md with the rule
that must catch it; tests/test_sample_data.py checks each one.
"""

from __future__ import annotations

import json
import os

import numpy as np
import pyarrow as pa
import pyarrow.feather as feather
import pyarrow.parquet as pq

HERE = os.path.join(os.path.dirname(os.path.abspath(__file__)), "tables")


def iris_csv() -> None:
    """A real, clean table (scikit-learn's iris), as a user would export it."""
    from sklearn.datasets import load_iris

    d = load_iris()
    names = ["sepal_length", "sepal_width", "petal_length", "petal_width"]
    lines = [",".join(names + ["label"])]
    for row, y in zip(d.data, d.target):
        lines.append(",".join(f"{v:g}" for v in row) + f",{int(y)}")
    with open(os.path.join(HERE, "iris.csv"), "w") as f:
        f.write("\n".join(lines) + "\n")


def defects_csv() -> None:
    """A classification table with one planted defect per row (see README)."""
    rng = np.random.default_rng(7)
    rows = []
    for i in range(40):
        f1, f2, f3 = rng.normal(0, 1, 3)
        rows.append([f"{f1:.4f}", f"{f2:.4f}", f"{f3:.4f}", f"{rng.integers(50000, 90000)}", "1",
                     f"{int(i % 5)}"])
    header = ["f1", "f2", "f3", "price", "version", "label"]
    # planted defects (data row -> change)
    rows[2][0] = "nan"          # DS101 NaN
    rows[3][1] = "inf"          # DS101 +inf
    rows[4][2] = ""             # DS101 empty cell
    rows[5][0] = "1e400"        # DS101 parses to inf
    rows[6][5] = ""             # DS102 empty label
    rows[7][5] = "NaN"          # DS102 'NaN' label
    rows[8][5] = "None"         # DS102 'None' label
    rows[9][5] = "-1"           # DS103 negative class id
    rows[10][5] = "8000"        # DS104 distant class id
    rows[11][1] = "1e20"        # DS105 square overflows float32 (warning only)
    rows[12][2] = "1e300"       # DS113 beyond float32 range
    rows[13][0] = "abc"         # DS109 not a number
    rows[14] = list(rows[15])   # DS110 duplicate: row 15 duplicates row 14
    rows[16] = list(rows[17])
    rows[17][5] = str((int(rows[16][5]) + 1) % 5)  # DS111 same features, other label
    lines = [",".join(header)] + [",".join(r) for r in rows]
    lines.insert(20, "0.1,0.2,0.3,60000,1")  # DS004 ragged line (5 fields) = data row 19
    with open(os.path.join(HERE, "defects.csv"), "w") as f:
        f.write("\n".join(lines) + "\n")


def latin1_csv() -> None:
    text = "city,temp,label\nZürich,12.5,0\nMálaga,21.0,1\nSão Paulo,25.1,1\nKöln,9.8,0\n"
    with open(os.path.join(HERE, "latin1.csv"), "wb") as f:
        f.write(text.encode("latin-1"))  # DS003


def regression_parquet() -> None:
    rng = np.random.default_rng(11)
    n = 500
    income = rng.lognormal(mean=10, sigma=1.0, size=n)  # heavy-tailed but clean: no errors
    x1 = rng.normal(0, 1, n)
    x2 = rng.normal(0, 1, n)
    y = 2.0 * x1 - x2 + rng.normal(0, 0.1, n)
    y[123] = 1e30  # DS104 distant regression target
    x2[200] = np.nan  # DS101 in a typed file
    t = pa.table({"x1": x1, "x2": x2, "income": income, "y": y})
    pq.write_table(t, os.path.join(HERE, "regression.parquet"), row_group_size=128)


def events_jsonl() -> None:
    recs = []
    for i in range(12):
        recs.append(json.dumps({"dur": round(0.5 + i * 0.1, 2), "clicks": i % 4, "meta": {"k": i},
                                "label": i % 2}))
    recs[3] = '{"dur": 0.8, "clicks": 1, "meta": {"k": 3}, "label": 1'  # DS009 malformed line
    recs[5] = json.dumps({"dur": float("nan"), "clicks": 2, "meta": {"k": 5}, "label": 0})  # NaN token
    with open(os.path.join(HERE, "events.jsonl"), "w") as f:
        f.write("\n".join(recs) + "\n")


def pixels_feather() -> None:
    """Pixels left at 0..255 (DS107) and a constant column (DS108)."""
    rng = np.random.default_rng(3)
    n = 64
    cols = {f"px{i}": rng.integers(0, 256, n).astype(np.uint8) for i in range(4)}
    cols["bias"] = np.ones(n, dtype=np.float32)
    cols["label"] = rng.integers(0, 3, n)
    feather.write_feather(pa.table(cols), os.path.join(HERE, "pixels.feather"))


def empty_and_broken() -> None:
    open(os.path.join(HERE, "empty.csv"), "w").close()  # DS002
    with open(os.path.join(HERE, "broken.parquet"), "wb") as f:  # DS001
        f.write(b"PAR1 this is not really a parquet file")


if __name__ == "__main__":
    os.makedirs(HERE, exist_ok=True)
    iris_csv()
    defects_csv()
    latin1_csv()
    regression_parquet()
    events_jsonl()
    pixels_feather()
    empty_and_broken()
    print("wrote", sorted(os.listdir(HERE)))
