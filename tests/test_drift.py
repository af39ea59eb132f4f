"""Drift against a baseline scan: the mergeable sketch, the comparisons and their findings."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import datasan
from datasan.drift import binned, js_distance
from datasan.stats import CATEGORY_CAP, Moments, ValueCounts, bucket_bounds, bucket_counts
from rule_cases_drift import images, table, two_tables

SCAN = {"probe": False, "workers": 1, "config": False}


def scan(root: Path, out: Path, **options):
    return datasan.scan(root, out_dir=str(out), **{**SCAN, **options})


def drift_codes(result) -> list[tuple[str, str | None]]:
    """(code, column) of every drift finding, sorted."""
    t = result.findings_table
    pairs = zip(t.column("code").to_pylist(), t.column("column").to_pylist())
    return sorted((c, col) for c, col in pairs if c.startswith("DS5"))


@pytest.fixture()
def base(tmp_path) -> Path:
    """The output folder of a baseline scan of ``table(seed=1)``."""
    scan(table(tmp_path / "base"), tmp_path / "base-out")
    return tmp_path / "base-out"


# ------------------------------------------------------------------ the sketch


@pytest.mark.parametrize("pieces", [1, 2, 7])
def test_sketch_merges_exactly_across_shardings(pieces):
    rng = np.random.default_rng(11)
    v = np.concatenate([rng.normal(3, 50, 5000), rng.exponential(1e-3, 500), [0.0, -0.0, 1e300, -1e-300]])
    whole = Moments.of(v).buckets()
    parts = np.array_split(rng.permutation(v), pieces)
    merged = Moments()
    for p in reversed(parts):
        merged.merge(Moments.of(p))
    assert merged.buckets() == whole == bucket_counts(v)
    assert merged.as_json()["sketch"] == Moments.of(v).as_json()["sketch"]
    assert sum(whole.values()) == v.size == merged.count
    # 1e-300 .. 1e300 spans far more than 128 buckets of each sign: the smallest are collapsed
    assert sum(1 for k in whole if k > 0) == 128 and sum(1 for k in whole if k < 0) <= 128
    assert whole[0] == 2  # +0.0 and -0.0, never collapsed


def test_scan_sketch_is_identical_for_any_shards_and_batches(tmp_path):
    import pyarrow as pa
    import pyarrow.parquet as pq

    rng = np.random.default_rng(3)
    d = tmp_path / "d"
    d.mkdir()
    pq.write_table(pa.table({"x": rng.lognormal(0, 2, 5000), "label": rng.integers(0, 4, 5000)}),
                   d / "t.parquet", row_group_size=500)
    one = scan(d, tmp_path / "o1")
    many = scan(d, tmp_path / "o2", workers=2, shard_rows=1000, batch_rows=700)
    a = one.stats["tables"]["t.parquet"]["columns"]["x"]["sketch"]
    assert a == many.stats["tables"]["t.parquet"]["columns"]["x"]["sketch"]
    assert a["scheme"] == "float64-log2-m4-n128" and sum(a["count"]) == 5000
    assert a["index"] == sorted(a["index"]) and len(a["index"]) == len(a["count"])


@settings(max_examples=200, deadline=None)
@given(st.floats(allow_nan=False, allow_infinity=False))
def test_bucket_holds_its_value(x):
    (idx,) = bucket_counts(np.array([x]))
    lo, hi = bucket_bounds(idx)
    if idx == 0:
        assert abs(x) < 2.0 ** -1018
    else:
        assert (idx > 0) == (x > 0)
        assert abs(lo) <= abs(x) < abs(hi) and abs(hi) <= abs(lo) * (1 + 1 / 16) + 1e-300


def test_value_counts_cap_is_the_same_in_any_merge_order():
    import pyarrow as pa

    values = [f"v{i}" for i in range(CATEGORY_CAP + 1)]
    small = [ValueCounts.of(pa.array(values[i::3])) for i in range(3)]  # each under the cap
    for order in ([0, 1, 2], [2, 0, 1]):
        m = ValueCounts()
        for i in order:
            m.merge(small[i])
        assert m.as_json() == {"nulls": 0, "high_cardinality": True, "cap": CATEGORY_CAP}
    ok = ValueCounts.of(pa.array(["a", "b", None, "a"]))
    assert ok.as_json() == {"nulls": 1, "counts": {"a": 2, "b": 1}}


def test_js_distance_over_baseline_bins():
    base = [[i, 10] for i in range(100)]
    p, q = binned(base, base, 20)
    assert len(p) == 20 and p == q and js_distance(p, q) == 0.0
    p, q = binned(base, [[1000, 50]], 20)  # all mass beyond the baseline: the last bin
    assert p == [50] * 20 and q == [0] * 19 + [50]
    jsd = 0.5 * (0.95 * np.log2(0.05 / 0.025) + 0.05 * np.log2(0.05 / 0.525)) + 0.5 * np.log2(1 / 0.525)
    assert js_distance(p, q) == pytest.approx(np.sqrt(jsd), rel=1e-12)
    p, q = binned([[0, 900], [5, 100]], [[0, 1], [3, 1]], 20)  # one bucket over 1/20 of the mass: 2 bins
    assert (p, q) == ([900, 100], [1, 1])


# ------------------------------------------------------------------ comparisons and findings


def test_same_distribution_gives_no_drift_but_lists_every_raw_value(tmp_path, base):
    res = scan(table(tmp_path / "cur", seed=2), tmp_path / "o", baseline=str(base))
    assert drift_codes(res) == []
    drift = json.loads((tmp_path / "o" / "report.json").read_text())["drift"]
    assert drift["compared"] is True and drift["drifted"] == 0
    metrics = sorted((e["metric"], e["column"]) for e in drift["comparisons"])
    assert metrics == [("category_linf", "color"), ("class_linf", "label"), ("js_distance", "x"),
                       ("mean_shift", "x"), ("missing_rate_change", "color"),
                       ("missing_rate_change", "label"), ("missing_rate_change", "x")]
    assert all(isinstance(e["value"], float) and e["value"] < e["limit"] for e in drift["comparisons"])


@pytest.mark.parametrize("how", ["bootstrap", "shuffle", "subsample"])
def test_resampled_data_does_not_drift(tmp_path, base, how):
    rows = (tmp_path / "base" / "t.csv").read_text().splitlines()
    head, body = rows[0], rows[1:]
    rng = np.random.default_rng(7)
    pick = {"bootstrap": rng.integers(0, len(body), len(body)), "shuffle": rng.permutation(len(body)),
            "subsample": rng.choice(len(body), len(body) // 10, replace=False)}[how]
    (tmp_path / "cur").mkdir()
    (tmp_path / "cur" / "t.csv").write_text("\n".join([head] + [body[i] for i in pick]) + "\n")
    assert drift_codes(scan(tmp_path / "cur", tmp_path / "o", baseline=str(base))) == []


def test_shifted_column_and_shrunk_class_are_found(tmp_path, base):
    res = scan(table(tmp_path / "a", seed=2, shift=6.0), tmp_path / "oa", baseline=str(base))
    assert drift_codes(res) == [("DS501", "x"), ("DS502", "x")]
    shift = next(e for e in res.report["drift"]["comparisons"] if e["metric"] == "mean_shift")
    assert 2.5 < shift["value"] < 3.5 and shift["drifted"] is True
    res = scan(table(tmp_path / "b", seed=2, shrink=True), tmp_path / "ob", baseline=str(base))
    assert drift_codes(res) == [("DS503", "label")]
    e = next(e for e in res.report["drift"]["comparisons"] if e["metric"] == "class_linf")
    assert e["worst"] == "0" and e["share"] < e["baseline_share"] / 3


def test_new_and_vanished_classes(tmp_path, base):
    res = scan(table(tmp_path / "a", seed=2, new_class=True), tmp_path / "oa", baseline=str(base))
    assert ("DS504", "label") in drift_codes(res)
    new = next(e for e in res.report["drift"]["comparisons"] if e["metric"] == "new_class")
    assert (new["class"], new["value"]) == ("3", 100)
    res = scan(table(tmp_path / "b", seed=2, drop_class=True), tmp_path / "ob", baseline=str(base))
    assert ("DS505", "label") in drift_codes(res)
    gone = next(e for e in res.report["drift"]["comparisons"] if e["metric"] == "vanished_class")
    assert gone["class"] == "2" and gone["baseline_count"] > 100


def test_new_missing_and_retyped_columns(tmp_path, base):
    res = scan(table(tmp_path / "a", seed=2, extra=True), tmp_path / "oa", baseline=str(base))
    assert drift_codes(res) == [("DS507", "z")]
    res = scan(table(tmp_path / "b", seed=2, no_color=True), tmp_path / "ob", baseline=str(base))
    assert drift_codes(res) == [("DS508", "color")]
    res = scan(table(tmp_path / "c", seed=2, color_ints=True), tmp_path / "oc", baseline=str(base))
    assert ("DS509", "color") in drift_codes(res)
    e = next(e for e in res.report["drift"]["comparisons"] if e["metric"] == "type_change")
    assert (e["baseline_type"], e["type"]) == ("string", "int64")


def test_missing_rate_and_category_drift(tmp_path, base):
    res = scan(table(tmp_path / "a", seed=2, missing=0.15), tmp_path / "oa", baseline=str(base))
    assert ("DS506", "x") in drift_codes(res)
    e = next(e for e in res.report["drift"]["comparisons"]
             if e["metric"] == "missing_rate_change" and e["column"] == "x")
    assert e["baseline_rate"] == 0.0 and e["rate"] == pytest.approx(0.15, abs=0.04)
    res = scan(table(tmp_path / "b", seed=2, one_color=True), tmp_path / "ob", baseline=str(base))
    assert drift_codes(res) == [("DS510", "color")]


def test_sources_and_images(tmp_path):
    scan(two_tables(tmp_path / "b2"), tmp_path / "o2")
    res = scan(table(tmp_path / "one", seed=2), tmp_path / "o1", baseline=str(tmp_path / "o2"))
    assert drift_codes(res) == [("DS513", None)]
    res = scan(two_tables(tmp_path / "two", seed=2), tmp_path / "o3", baseline=str(tmp_path / "o1"))
    assert drift_codes(res) == [("DS514", None)]
    scan(images(tmp_path / "i0"), tmp_path / "oi")
    profile = json.loads((tmp_path / "oi" / "stats.json").read_text())["images"]["imgs"]["profile"]
    assert profile["width"]["count"] == 24 and 16 <= profile["width"]["min"] <= profile["width"]["max"] <= 24
    assert profile["brightness"]["mean"] == pytest.approx(0.5, abs=0.05)
    res = scan(images(tmp_path / "i1", seed=2, bright=0.15), tmp_path / "oi1", baseline=str(tmp_path / "oi"))
    assert set(drift_codes(res)) == {("DS511", "brightness")}
    shift = next(e for e in res.report["drift"]["comparisons"]
                 if e["metric"] == "mean_shift" and e["column"] == "brightness")
    assert shift["drifted"] is True and shift["value"] > 5
    res = scan(images(tmp_path / "i2", seed=2, side=40), tmp_path / "oi2", baseline=str(tmp_path / "oi"))
    assert {c for c, _ in drift_codes(res)} == {"DS512"}
    assert {col for _, col in drift_codes(res)} == {"width", "height"}


@pytest.mark.filterwarnings("ignore:overflow encountered")
def test_overflowed_moments_are_not_compared_and_stay_strict_json():
    from datasan.drift import numeric_comparisons
    from datasan.options import Thresholds

    big = Moments.of(np.array([1.7e308, 1.7e308, 1e308])).as_json()  # the sum overflows: mean inf
    assert big["mean"] == float("inf")
    out = numeric_comparisons("tables", "t.csv", "x", big, big, Thresholds())
    assert [(e["metric"], e["value"], e["drifted"]) for e in out] == [("js_distance", 0.0, False)]
    json.dumps(out, allow_nan=False)


def test_bare_findings_baseline_compares_findings_only(tmp_path, base):
    import shutil

    bare = tmp_path / "copied" / "findings.parquet"
    bare.parent.mkdir()
    shutil.copy(base / "findings.parquet", bare)
    res = scan(table(tmp_path / "a", seed=2, shift=6.0), tmp_path / "o", baseline=str(bare))
    assert drift_codes(res) == []
    drift = res.report["drift"]
    assert drift["compared"] is False and "findings.parquet" in drift["reason"]
    assert res.report["gate"]["baseline"] is True


def test_thresholds_come_from_the_config(tmp_path, base):
    cfg = tmp_path / "datasan.toml"
    cfg.write_text("[thresholds]\ndrift_mean_shift = 10.0\ndrift_js = 0.99\n")
    res = datasan.scan(table(tmp_path / "a", seed=2, shift=6.0), out_dir=str(tmp_path / "o"),
                       probe=False, workers=1, config=str(cfg), baseline=str(base))
    assert drift_codes(res) == []
    assert res.report["drift"]["thresholds"]["drift_mean_shift"] == 10.0
    res = scan(table(tmp_path / "b", seed=2, shift=6.0), tmp_path / "o2", baseline=str(base),
               ignore=["DS502"])
    assert drift_codes(res) == [("DS501", "x")]
