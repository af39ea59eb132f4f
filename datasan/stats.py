"""Mergeable statistics.

Every partial statistic here merges exactly (up to float rounding) with
Chan et al.'s pairwise formula, so shards, worker processes and later a
cluster can compute pieces independently and combine them in any order.

The distribution sketch and the value counts are integer counts over keys
that do not depend on the data seen so far, so they merge *exactly*: the same
values split into any pieces, merged in any order, give the same sketch.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any


@dataclass
class Moments:
    """count, mean, M2 (sum of squared deviations), min and max of finite values,
    plus the counts of nulls, NaN, +Inf and -Inf seen beside them."""

    count: int = 0
    mean: float = 0.0
    m2: float = 0.0
    min: float = math.inf
    max: float = -math.inf
    nulls: int = 0
    nan: int = 0
    posinf: int = 0
    neginf: int = 0
    #: distribution sketch of the finite values: (raw bucket keys, counts), numpy int64
    #: arrays sorted by key (see :func:`raw_buckets`; :meth:`buckets` gives the public
    #: indices); None when not tracked (image pixels)
    sketch: Any = None

    @classmethod
    def of(cls, values, nulls: int = 0, sketch: bool = True) -> "Moments":
        """Moments of a numpy array (any numeric dtype); non-finite values are counted, not summed.

        With ``sketch`` the finite values are also counted into log-scale buckets
        (:func:`bucket_counts`) for drift comparisons.
        """
        import numpy as np

        v = np.asarray(values)
        if v.dtype.kind == "b":
            v = v.astype(np.int8)
        m = cls(nulls=int(nulls), sketch=raw_buckets(v[:0]) if sketch else None)
        if v.size == 0:
            return m
        lo, hi = v.min(), v.max()  # NaN and inf show up here: no separate isfinite pass when clean
        if v.dtype.kind == "f" and not (np.isfinite(lo) and np.isfinite(hi)):
            finite = np.isfinite(v)
            if not finite.all():
                nan = np.isnan(v)
                m.nan = int(nan.sum())
                m.posinf = int((v == np.inf).sum())
                m.neginf = int((v == -np.inf).sum())
                v = v[finite]
            if v.size == 0:
                return m
            lo, hi = v.min(), v.max()
        n = v.size
        # float64 accumulation; two-pass within the chunk for accuracy.  No
        # np.dot: BLAS kernels tuned for other CPUs (OPENBLAS_CORETYPE) made
        # it 15x slower than square-and-sum here.
        mean = float(v.mean(dtype=np.float64))
        d = v.astype(np.float64, copy=False) - mean
        with np.errstate(over="ignore"):  # |x| > 1e154: M2 is inf, honestly
            np.square(d, out=d)
        m.count = int(n)
        m.mean = mean
        m.m2 = float(d.sum())
        m.min = float(lo)
        m.max = float(hi)
        if sketch:
            m.sketch = raw_buckets(v)
        return m

    def merge(self, other: "Moments") -> "Moments":
        """Combine with ``other`` in place (Chan's formula) and return self."""
        self._merge_sketch(other)
        self.nulls += other.nulls
        self.nan += other.nan
        self.posinf += other.posinf
        self.neginf += other.neginf
        if other.count == 0:
            return self
        if self.count == 0:
            self.count, self.mean, self.m2 = other.count, other.mean, other.m2
            self.min, self.max = other.min, other.max
            return self
        n = self.count + other.count
        delta = other.mean - self.mean
        self.mean += delta * other.count / n
        self.m2 += other.m2 + delta * delta * self.count * other.count / n
        self.count = n
        self.min = min(self.min, other.min)
        self.max = max(self.max, other.max)
        return self

    def _merge_sketch(self, other: "Moments") -> None:
        # an empty untracked Moments() is the neutral start of every merge; a
        # tracked sketch merged with untracked values is no longer complete: dropped
        if other.sketch is None and other.count == 0:
            return
        if self.sketch is None and self.count == 0:
            self.sketch = other.sketch  # arrays are never changed in place: sharing is safe
        elif self.sketch is None or other.sketch is None:
            self.sketch = None
        else:
            self.sketch = _merge_raw(self.sketch, other.sketch)

    def buckets(self) -> dict[int, int] | None:
        """The sketch as {bucket index: count} (see :func:`bucket_counts`); None when untracked."""
        return None if self.sketch is None else _public(*self.sketch)

    @property
    def std(self) -> float:
        """Population standard deviation (NaN when empty)."""
        return math.sqrt(self.m2 / self.count) if self.count else math.nan

    def as_json(self) -> dict[str, Any]:
        """The contract's stats.json entry for one column."""
        empty = self.count == 0
        return {
            "count": self.count,
            "nulls": self.nulls,
            "nan": self.nan,
            "posinf": self.posinf,
            "neginf": self.neginf,
            "mean": None if empty else self.mean,
            "std": None if empty else self.std,
            "min": None if empty else self.min,
            "max": None if empty else self.max,
            **({"sketch": sketch_json(self.buckets())} if self.sketch is not None else {}),
        }


@dataclass
class ChannelMoments:
    """Per-channel pixel moments (for image mean/std); merges like :class:`Moments`."""

    channels: list[Moments] = field(default_factory=list)

    def merge(self, other: "ChannelMoments") -> "ChannelMoments":
        if not self.channels:
            self.channels = [Moments().merge(c) for c in other.channels]
            return self
        if len(other.channels) != len(self.channels):
            raise ValueError("channel counts differ")
        for a, b in zip(self.channels, other.channels):
            a.merge(b)
        return self


#: the sketch's scheme, recorded beside its buckets in stats.json
SKETCH_SCHEME = "float64-log2-m4-n128"
#: float64 bits below the 11 exponent bits and the top 4 mantissa bits: 16 buckets per
#: power of two, so a bucket spans at most 1/16 of its lower edge (6.25 %)
SKETCH_SHIFT = 48
#: buckets kept per sign (8 powers of two): the smallest magnitudes of a wider column are
#: collapsed into its lowest kept bucket (zero aside), as DDSketch's collapsing store does
SKETCH_BUCKETS = 128


def bucket_counts(values) -> dict[int, int]:
    """Counts of finite ``values`` per log-scale bucket index.

    The index of x is ``a = bits(|x|) >> 48`` (the float64 exponent and the top 4
    mantissa bits), negated for negative x; 0 holds zero (and |x| < 2**-1018).
    Per sign the 128 largest magnitudes are kept; smaller ones (zero aside) are
    counted in the lowest kept bucket.
    Buckets are fixed in advance, like HdrHistogram's or DDSketch's, so counts
    from any pieces of a column add up to exactly the counts of the whole.
    """
    return _public(*raw_buckets(values))


def raw_buckets(values):
    """(keys, counts) of finite ``values``: sorted int64 arrays, a key being ``2 a + sign``
    (a: the bucket of |x|, sign: 1 for x < 0).  Keeping both signs of a magnitude side by
    side keeps the keys of a column in one short range: one compact bincount per batch."""
    import numpy as np

    f = np.asarray(values).astype(np.float64, copy=False)
    if f.size == 0:
        return np.zeros(0, np.int64), np.zeros(0, np.int64)
    b = f.view(np.int64)
    k = b >> (SKETCH_SHIFT - 1)  # a and one more mantissa bit; the sign smeared above them
    k &= (1 << (64 - SKETCH_SHIFT)) - 2  # 2 a: the extra bit and the sign's copies cleared
    k += b < 0
    base = int(k.min())
    k -= base
    counts = np.bincount(k)
    keys = np.flatnonzero(counts)
    return _collapse(keys + base, counts[keys].astype(np.int64, copy=False))


def _collapse(keys, counts):
    """Keep the SKETCH_BUCKETS largest magnitudes of each sign; add the smaller ones (zero
    aside) into the smallest kept.  Exact in any merge order: a bucket collapsed in a piece
    is below that piece's top SKETCH_BUCKETS, hence below the whole's."""
    import numpy as np

    if keys.size <= SKETCH_BUCKETS:
        return keys, counts
    groups = []
    for sign in (0, 1):
        m = ((keys & 1) == sign) & (keys > 1)  # keys 0 and 1: the zero bucket, never collapsed
        kg, cg = keys[m], counts[m]
        if kg.size > SKETCH_BUCKETS:
            low = cg[:-SKETCH_BUCKETS].sum()
            kg, cg = kg[-SKETCH_BUCKETS:], cg[-SKETCH_BUCKETS:].copy()
            cg[0] += low
        groups.append((kg, cg))
    zero = keys <= 1
    keys = np.concatenate([keys[zero], groups[0][0], groups[1][0]])
    counts = np.concatenate([counts[zero], groups[0][1], groups[1][1]])
    order = np.argsort(keys, kind="stable")
    return keys[order], counts[order]


def _merge_raw(a, b):
    """The sum of two raw sketches (sorted keys, counts)."""
    import numpy as np

    keys = np.concatenate([a[0], b[0]])
    counts = np.concatenate([a[1], b[1]])
    if not keys.size:  # two empty sketches (label files without a kept box)
        return keys, counts
    order = np.argsort(keys, kind="stable")
    keys, counts = keys[order], counts[order]
    first = np.flatnonzero(np.r_[True, keys[1:] != keys[:-1]])
    return _collapse(keys[first], np.add.reduceat(counts, first) if keys.size else counts)


def _public(keys, counts) -> dict[int, int]:
    """{signed bucket index: count} of a raw sketch; +0.0 and -0.0 share index 0."""
    import numpy as np

    a = keys >> 1
    idx = np.where(keys & 1, -a, a)
    out: dict[int, int] = {}
    for i, c in zip(idx.tolist(), counts.tolist()):
        out[i] = out.get(i, 0) + c
    return out


def bucket_bounds(index: int) -> tuple[float, float]:
    """The [low, high) range of values (by magnitude; negated for a negative index) of a bucket."""
    import numpy as np

    a = abs(int(index))
    low, high = np.array([a << SKETCH_SHIFT, (a + 1) << SKETCH_SHIFT], dtype=np.int64).view(np.float64)
    sign = -1.0 if index < 0 else 1.0
    return sign * float(low), sign * float(high)


def sketch_json(sketch: dict[int, int]) -> dict[str, Any]:
    """The stats.json form of a sketch: its scheme, the bucket indices in increasing order
    and their counts (two flat lists: a third of the size of [index, count] pairs, indented)."""
    keys = sorted(sketch)
    return {"scheme": SKETCH_SCHEME, "index": keys, "count": [sketch[k] for k in keys]}


def sketch_buckets(entry: dict[str, Any]) -> list[tuple[int, int]]:
    """The (index, count) pairs of a stats.json sketch entry."""
    return list(zip(entry["index"], entry["count"]))


#: distinct values counted per categorical column; a column with more is only
#: marked high-cardinality (exact counts would grow with the data)
CATEGORY_CAP = 1000


@dataclass
class ValueCounts:
    """Exact counts of the values of a categorical column, up to :data:`CATEGORY_CAP`
    distinct values.  Over the cap only ``nulls`` and the fact are kept, which is the
    same whatever the merge order: the union of the pieces passes the cap exactly
    when the whole column does."""

    counts: dict[str, int] | None = field(default_factory=dict)  # None: over the cap
    nulls: int = 0

    @classmethod
    def of(cls, arr) -> "ValueCounts":
        """Counts of a pyarrow array (strings, dictionary or bool; keys as strings)."""
        import pyarrow as pa
        import pyarrow.compute as pc

        if isinstance(arr, pa.ChunkedArray):
            arr = arr.combine_chunks()
        if pa.types.is_dictionary(arr.type):
            arr = arr.dictionary_decode()
        vc = pc.value_counts(arr.drop_null())
        out = cls(nulls=arr.null_count)
        if len(vc) > CATEGORY_CAP:  # an id-like column: no Python dict of every value
            out.counts = None
            return out
        keys = vc.field("values").cast(pa.string()).to_pylist()
        out.counts = dict(zip(keys, vc.field("counts").to_pylist()))
        out._cap()
        return out

    def _cap(self) -> None:
        if self.counts is not None and len(self.counts) > CATEGORY_CAP:
            self.counts = None

    def merge(self, other: "ValueCounts") -> "ValueCounts":
        """Add ``other`` in place; returns self."""
        self.nulls += other.nulls
        if self.counts is None or other.counts is None:
            self.counts = None
        else:
            merge_counts(self.counts, other.counts)
            self._cap()
        return self

    def as_json(self) -> dict[str, Any]:
        """The stats.json entry: nulls, and counts sorted by value or ``high_cardinality``."""
        if self.counts is None:
            return {"nulls": self.nulls, "high_cardinality": True, "cap": CATEGORY_CAP}
        return {"nulls": self.nulls, "counts": dict(sorted(self.counts.items()))}


def category_counts(batch, exclude) -> dict[str, ValueCounts]:
    """Value counts of every string, dictionary or bool column of an Arrow batch not in ``exclude``."""
    import pyarrow as pa

    skip = set(exclude)
    out = {}
    for name, arr in zip(batch.schema.names, batch.columns):
        t = arr.type
        if name in skip or not (pa.types.is_string(t) or pa.types.is_large_string(t)
                                or pa.types.is_dictionary(t) or pa.types.is_boolean(t)):
            continue
        out[name] = ValueCounts.of(arr)
    return out


def merge_categories(into: dict[str, ValueCounts], other: dict[str, ValueCounts]) -> dict[str, ValueCounts]:
    """Merge per-column value counts (``category_counts`` results) into ``into``."""
    for name, vc in other.items():
        if name in into:
            into[name].merge(vc)
        else:
            into[name] = ValueCounts(dict(vc.counts) if vc.counts is not None else None, vc.nulls)
    return into


def image_profile(store, rows) -> dict[str, Any]:
    """Per-image brightness (mean pixel, 0..1, over all channels), width, height and
    aspect (width / height) of the images ``rows`` of an image record store, as
    :meth:`Moments.as_json` entries with their sketches (stats.json ``profile``)."""
    import numpy as np

    rows = list(rows)
    width = np.array([store.width[i] for i in rows], dtype=np.float64)
    height = np.array([store.height[i] for i in rows], dtype=np.float64)
    bright = []
    for i in rows:
        sums = store.sums(i)
        if sums is not None and sums.n and sums.s:
            bright.append(sum(sums.s) / (sums.n * len(sums.s) * sums.scale))
        elif i in store.fmoments:
            bright.append(float(np.mean([m.mean for m in store.fmoments[i]])))
    with np.errstate(divide="ignore", invalid="ignore"):
        aspect = width / height
    return {"brightness": Moments.of(np.array(bright, dtype=np.float64)).as_json(),
            "width": Moments.of(width).as_json(), "height": Moments.of(height).as_json(),
            "aspect": Moments.of(aspect).as_json()}


def merge_counts(into: dict, other: dict) -> dict:
    """Add the counts of ``other`` into ``into`` (label histograms)."""
    for k, v in other.items():
        into[k] = into.get(k, 0) + v
    return into
