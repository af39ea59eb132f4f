"""Exact, mergeable pixel sums for integer images.

For 8- and 16-bit images the per-channel count, sum and sum of squares are
Python integers: they add (and subtract) exactly, in any order, across
shards, workers and a later cluster.  Only the final mean and std are
rounded, once (an integer ratio converted to float is correctly rounded).
Float images (mode F) use :class:`~datasan.stats.Moments` (Chan merge).
"""

from __future__ import annotations

from dataclasses import dataclass, field

from datasan.stats import ChannelMoments, Moments


@dataclass(slots=True)
class PixelSums:
    """Per-channel ``n`` (pixels per channel), ``s`` (sum) and ``q`` (sum of squares)
    of integer pixels whose full scale is ``scale`` (255 or 65535)."""

    scale: int
    n: int = 0
    s: list[int] = field(default_factory=list)
    q: list[int] = field(default_factory=list)

    @classmethod
    def of_histogram(cls, hist, channels: int, scale: int = 255) -> "PixelSums":
        """From a Pillow ``Image.histogram()`` (``scale + 1`` bins per channel, concatenated)."""
        import numpy as np

        h = np.asarray(hist, dtype=np.int64).reshape(channels, scale + 1)
        k = np.arange(scale + 1, dtype=np.int64)
        # int64 is exact: n * scale**2 < 2**63 for any image under 2e9 pixels (16-bit) or 1e14 (8-bit)
        return cls(scale, int(h[0].sum()), [int(v) for v in h @ k], [int(v) for v in h @ (k * k)])

    @classmethod
    def of_array(cls, arr, scale: int) -> "PixelSums":
        """From an integer numpy array of shape (H, W) or (H, W, C)."""
        import numpy as np

        a = arr.reshape(arr.shape[0] * arr.shape[1], -1).astype(np.int64)
        out = cls(scale, n=int(a.shape[0]))
        for c in range(a.shape[1]):
            col = a[:, c]
            out.s.append(int(col.sum()))
            out.q.append(int(np.dot(col, col)))
        return out

    def replicated(self, channels: int) -> "PixelSums":
        """A one-channel image's sums as a ``channels``-channel image (gray -> RGB)."""
        return PixelSums(self.scale, self.n, self.s * channels, self.q * channels)

    def add(self, other: "PixelSums", sign: int = 1) -> "PixelSums":
        """Add (sign=1) or subtract (sign=-1) ``other`` in place; returns self."""
        if other.scale != self.scale:
            raise ValueError("pixel sums of different scales")
        if not self.s:
            self.s, self.q = [0] * len(other.s), [0] * len(other.q)
        self.n += sign * other.n
        self.s = [a + sign * b for a, b in zip(self.s, other.s)]
        self.q = [a + sign * b for a, b in zip(self.q, other.q)]
        return self

    def moments(self) -> ChannelMoments:
        """Per-channel moments of pixel / scale (0..1); exact up to one final rounding."""
        out = ChannelMoments()
        for s, q in zip(self.s, self.q):
            m = Moments()
            if self.n:
                m.count = self.n
                m.mean = s / (self.n * self.scale)
                m.m2 = (self.n * q - s * s) / (self.n * self.scale * self.scale)
            out.channels.append(m)
        return out
