"""Mergeable statistics: any split, merged in any order, equals the one-pass result."""

from __future__ import annotations

import math

import numpy as np
import pytest

from datasan.stats import Moments


def test_moments_match_numpy_and_count_non_finite():
    v = np.array([1.0, 2.0, np.nan, np.inf, -np.inf, 4.0, 10.0])
    m = Moments.of(v, nulls=2)
    fin = v[np.isfinite(v)]
    assert (m.count, m.nulls, m.nan, m.posinf, m.neginf) == (4, 2, 1, 1, 1)
    assert m.mean == pytest.approx(fin.mean())
    assert m.std == pytest.approx(fin.std())
    assert (m.min, m.max) == (1.0, 10.0)


@pytest.mark.parametrize("splits", [[1], [3, 7], [100, 200, 999, 5000]])
def test_chan_merge_is_exact_in_any_order(splits):
    rng = np.random.default_rng(5)
    v = rng.normal(1e6, 3.0, 10000)  # a large offset stresses the merge
    parts = np.split(v, splits)
    merged = Moments()
    for p in reversed(parts):
        merged.merge(Moments.of(p))
    assert merged.count == v.size
    assert merged.mean == pytest.approx(v.mean(), rel=1e-14)
    assert merged.std == pytest.approx(v.std(), rel=1e-9)
    assert (merged.min, merged.max) == (v.min(), v.max())


def test_empty_moments_json_has_nulls():
    j = Moments().as_json()
    assert j["count"] == 0 and j["mean"] is None and j["std"] is None
    assert math.isnan(Moments().std)


def test_integer_and_bool_values():
    m = Moments.of(np.array([1, 2, 3], dtype=np.int64))
    assert (m.count, m.mean, m.min, m.max) == (3, 2.0, 1.0, 3.0)
    m = Moments.of(np.array([True, False, True]))
    assert m.mean == pytest.approx(2 / 3)


def test_two_empty_sketches_merge_into_an_empty_one():
    import numpy as np

    from datasan.stats import Moments

    m = Moments.of(np.empty(0)).merge(Moments.of(np.empty(0)))
    assert m.count == 0 and m.buckets() == {}
    assert m.merge(Moments.of(np.array([0.5]))).buckets() == Moments.of(np.array([0.5])).buckets()


def test_clean_writer_statistics_equal_the_batches_added_inline(tmp_path):
    """CleanWriter adds the kept rows' statistics on its writer thread: the same values, to
    the last bit, as adding the same batches in order, empty batches and a last partial
    row group included; the file holds every row."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    from datasan.sources.tables.output import CleanWriter, KeptStats

    rng = np.random.default_rng(11)
    batches = []
    for n in (700, 0, 512, 1, 0, 999):
        x = rng.normal(1e3, 7.0, n)
        x[::97] = np.nan
        batches.append(pa.record_batch({"x": x, "y": rng.integers(0, 4, n), "_row": np.arange(n)}))
    inline = KeptStats(["x"], "y", True, True)
    for b in batches:
        inline.add(b)
    threaded = KeptStats(["x"], "y", True, True)
    w = CleanWriter(str(tmp_path / "part.parquet"), 600, "run-1", threaded)
    for b in batches:
        w.write(b)
    w.close()
    assert threaded.stats_json("t", 2212) == inline.stats_json("t", 2212)
    assert threaded.moments["x"].m2 == inline.moments["x"].m2  # not approximately: the same sums
    assert threaded.labels == inline.labels and sum(threaded.labels.values()) == 2212
    assert pq.read_metadata(tmp_path / "part.parquet").num_rows == 2212
