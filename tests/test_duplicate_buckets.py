"""The duplicate check of a split table runs on the engine from bucketed row hashes, with the
same DS110 / DS111 findings as the check over all hashes at once."""

from __future__ import annotations

import numpy as np
import pytest


def _hashes(n: int, seed: int):
    """Rows 0..n-1 with hashes drawn from a small pool, so equal rows and equal features with
    other labels are common and spread over every shard."""
    rng = np.random.default_rng(seed)
    feat = rng.integers(0, 40, n).astype(np.uint64) * np.uint64(0x9E3779B97F4A7C15)
    label = rng.integers(0, 3, n).astype(np.uint64)
    full = feat ^ (label * np.uint64(0xBF58476D1CE4E5B9)) ^ np.uint64(7)
    return np.arange(n, dtype=np.int64), full, feat


@pytest.mark.parametrize("has_target", [True, False])
@pytest.mark.parametrize("shards", [2, 3, 7])
def test_buckets_find_the_same_findings_as_all_hashes_at_once(tmp_path, has_target, shards):
    from datasan.checks.tables.duplicates import duplicate_findings, findings_of_pairs
    from datasan.sources.tables.dup_buckets import (BucketTask, bucket_count, bucket_file, bucket_pairs,
                                                    concat_pairs, write_buckets)

    rows, full, feat = _hashes(500, seed=0)
    whole = duplicate_findings("t.parquet", rows, full, feat, has_target).to_arrow()
    buckets = bucket_count(shards)
    cuts = np.linspace(0, len(rows), shards + 1).astype(int)
    prefixes = [str(tmp_path / f"0-{k}") for k in range(shards)]
    for k, prefix in enumerate(prefixes):
        lo, hi = cuts[k], cuts[k + 1]
        write_buckets(prefix, buckets, rows[lo:hi], full[lo:hi], feat[lo:hi], by_features=has_target)
    assert len(list(tmp_path.iterdir())) == shards * buckets
    pairs = [bucket_pairs(BucketTask([bucket_file(p, b) for p in prefixes], has_target)) for b in range(buckets)]
    split = findings_of_pairs("t.parquet", concat_pairs(pairs)).to_arrow()
    assert split.equals(whole)
    codes = whole.column("code").to_pylist()
    distinct_rows = len(np.unique(full))  # every row past the first of its kind is a duplicate
    # every other label among rows of equal features is one conflict
    conflicts = distinct_rows - len(np.unique(feat)) if has_target else 0
    assert (codes.count("DS110"), codes.count("DS111")) == (500 - distinct_rows, conflicts)
    assert (500 - distinct_rows, conflicts) == ((382, 78) if has_target else (382, 0))
    assert not list(tmp_path.iterdir())  # each bucket task removes its files


def test_bucket_count_is_a_power_of_two_capped():
    from datasan.sources.tables.dup_buckets import MAX_BUCKETS, bucket_count

    assert [bucket_count(s) for s in (2, 3, 4, 5, 64, 250)] == [2, 4, 4, 8, 64, MAX_BUCKETS]


def test_a_split_table_sends_no_row_hashes_to_the_driver(tmp_path, monkeypatch):
    """shard_rows small (4 shards) vs large (one shard): the same findings; the split shards
    return no hashes."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    import datasan
    from datasan.sources.tables import kind
    from datasan.sources.tables.scan import scan_shard

    rng = np.random.default_rng(5)
    x = rng.integers(0, 6, size=(800, 2)).astype(np.float64)  # few distinct rows: many duplicates
    y = rng.integers(0, 2, 800)
    (tmp_path / "d").mkdir()
    pq.write_table(pa.table({"a": x[:, 0], "b": x[:, 1], "label": y}), tmp_path / "d" / "t.parquet",
                   row_group_size=100)
    sent = []

    def spy(task):
        res = scan_shard(task)
        sent.append(res.hash_rows is not None)
        return res

    monkeypatch.setattr(kind, "scan_shard", spy)
    opts = dict(probe=False, workers=1, config=False, report_html=False, target="label")
    one = datasan.scan(tmp_path / "d", out_dir=str(tmp_path / "one"), **opts)
    assert sent == [True]
    split = datasan.scan(tmp_path / "d", out_dir=str(tmp_path / "split"), shard_rows=200, **opts)
    assert sent == [True, False, False, False, False]
    a = one.findings_table.replace_schema_metadata(None)
    b = split.findings_table.replace_schema_metadata(None)
    assert a.equals(b)
    codes = a.column("code").to_pylist()
    distinct = len({(*r, c) for r, c in zip(x.tolist(), y.tolist())})
    conflicts = distinct - len({tuple(r) for r in x.tolist()})
    assert (codes.count("DS110"), codes.count("DS111")) == (800 - distinct, conflicts) == (728, 36)
