"""Mergeable statistics.

Every partial statistic here merges exactly (up to float rounding) with
Chan et al.'s pairwise formula, so shards, worker processes and later a
cluster can compute pieces independently and combine them in any order.
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

    @classmethod
    def of(cls, values, nulls: int = 0) -> "Moments":
        """Moments of a numpy array (any numeric dtype); non-finite values are counted, not summed."""
        import numpy as np

        v = np.asarray(values)
        if v.dtype.kind == "b":
            v = v.astype(np.int8)
        m = cls(nulls=int(nulls))
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
        return m

    def merge(self, other: "Moments") -> "Moments":
        """Combine with ``other`` in place (Chan's formula) and return self."""
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


def merge_counts(into: dict, other: dict) -> dict:
    """Add the counts of ``other`` into ``into`` (label histograms)."""
    for k, v in other.items():
        into[k] = into.get(k, 0) + v
    return into
