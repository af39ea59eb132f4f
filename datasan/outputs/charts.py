"""Inline SVG charts for report.html, drawn by matplotlib from what stats.json already holds.

Histograms come from the mergeable distribution sketches (no clean file is
read again), bars from value and class counts.  Each chart is a small SVG
string with its text kept as text (``svg.fonttype = none``: a third of the
size of glyph outlines) and ids salted per chart, so that many charts can
share one HTML document without their clip paths and markers colliding.
"""

from __future__ import annotations

import io
import math
from typing import Any

#: figure size in inches (at 72 dpi: 320 x 150 px)
SIZE = (4.4, 2.1)
#: bars shown per bar chart; the rest are summed into one "other" bar
MAX_BARS = 25

_COLOR = "#4c72b0"
_MARK = "#c44e52"


def _figure():
    # a bare Figure (no pyplot): no global figure registry, no backend selection
    from matplotlib.figure import Figure

    fig = Figure(figsize=SIZE)
    # fixed margins: tight_layout would draw every chart twice
    fig.subplots_adjust(left=0.14, right=0.98, top=0.96, bottom=0.27)
    ax = fig.add_subplot()
    ax.tick_params(labelsize=7)
    for side in ("top", "right"):
        ax.spines[side].set_visible(False)
    return fig, ax


def _svg(fig, salt: str) -> str:
    import warnings

    import matplotlib

    buf = io.StringIO()
    with matplotlib.rc_context({"svg.fonttype": "none", "svg.hashsalt": salt}), warnings.catch_warnings():
        # a column name with a control character or a rare script has no glyph in the
        # measuring font; the SVG keeps it as text and the browser draws it
        warnings.filterwarnings("ignore", message="Glyph .* missing from font")
        fig.savefig(buf, format="svg", metadata={"Date": None, "Creator": None})
    text = buf.getvalue()
    # the XML prolog and DOCTYPE do not belong inside HTML
    return text[text.index("<svg"):]


def sketch_bars(sketch: dict[str, Any]) -> list[tuple[float, float, int]]:
    """(left, right, count) of each bucket of a stats.json sketch, in increasing value order.

    When a sign kept its full SKETCH_BUCKETS buckets, its smallest one also holds every
    smaller magnitude (collapsed): that bucket is given the range down to zero."""
    from datasan.stats import SKETCH_BUCKETS, bucket_bounds, sketch_buckets

    pairs = sketch_buckets(sketch)
    bars = []
    for sign in (1, -1):
        mine = sorted((i for i, _ in pairs if i * sign > 0), key=abs)
        collapsed = mine[0] if len(mine) >= SKETCH_BUCKETS else None
        for i, count in pairs:
            if i * sign > 0:
                low, high = sorted(map(abs, bucket_bounds(i)))
                if i == collapsed:
                    low = 0.0
                bars.append((low, high, count) if sign > 0 else (-high, -low, count))
    bars += [(0.0, 0.0, c) for i, c in pairs if i == 0]
    bars.sort()
    return bars


def _stairs(ax, segments: list[tuple[float, float, int]]) -> None:
    """Draw (left, right, count) segments as one filled step path, empty gaps as zero steps:
    one artist instead of a patch per bucket (a column has up to 257 buckets) keeps a
    chart fast to draw and small as SVG."""
    edges, heights = [segments[0][0]], []
    for left, right, count in segments:
        if left > edges[-1]:
            heights.append(0)
            edges.append(left)
        heights.append(count)
        edges.append(right)
    ax.stairs(heights, edges, fill=True, color=_COLOR, linewidth=0)


def _wide(bars: list[tuple[float, float, int]]) -> bool:
    """True when the kept values span more than three decades (or both signs beyond one):
    a linear axis would squeeze all but the largest bucket into one pixel."""
    mags = [abs(v) for left, right, _ in bars for v in (left, right) if v != 0]
    return bool(mags) and max(mags) / min(mags) >= 1e3


def bucket_position(x: float) -> float:
    """Where ``x`` lies among the sketch's signed bucket indices: its bucket index plus the
    fraction of the bucket below it, negated for x < 0 (monotone in x)."""
    from datasan.stats import SKETCH_SHIFT, bucket_bounds

    import numpy as np

    a = int(np.array([abs(x)], dtype=np.float64).view(np.int64)[0] >> SKETCH_SHIFT)
    low, high = bucket_bounds(a)
    frac = (abs(x) - low) / (high - low) if high > low else 0.0
    return a + frac if x >= 0 else -(a + frac)


class _IndexAxis:
    """An axis of sketch buckets, one unit each, with the empty indices between zero and the
    smallest magnitude present left out: a log-like axis that also takes zero and negative
    values (a symlog axis cannot span 1e-300..1e300)."""

    def __init__(self, indices: list[int]) -> None:
        nonzero = [abs(i) for i in indices if i]
        self.offset = (min(nonzero) - 1) if nonzero else 0

    def __call__(self, x: float) -> float:
        p = bucket_position(x)
        return 0.0 if x == 0 else math.copysign(max(abs(p) - self.offset, 0.0), p)

    def index_x(self, i: int) -> int:
        """The left edge of bucket ``i`` (right edge for a negative one) on this axis."""
        return 0 if i == 0 else (abs(i) - self.offset) * (1 if i > 0 else -1)


def _on_index_axis(ax, sketch: dict[str, Any]) -> _IndexAxis:
    from datasan.stats import bucket_bounds, sketch_buckets

    pairs = sketch_buckets(sketch)
    axis = _IndexAxis([i for i, _ in pairs])
    # a negative bucket spans (-high, -low]: its bar lies left of its index
    xs = [axis.index_x(i) - (1 if i < 0 else 0) for i, _ in pairs]
    _stairs(ax, [(x, x + 1, c) for x, (_, c) in zip(xs, pairs)])
    chosen = sorted({pairs[0][0], pairs[-1][0], *[pairs[k][0] for k in range(0, len(pairs), max(1, len(pairs) // 4))]})
    ticks = [axis.index_x(i) for i in chosen]
    labels = [f"{min(bucket_bounds(i), key=abs):.2g}" if i else "0" for i in chosen]
    ax.set_xticks(ticks, labels, fontsize=6)
    return axis


def histogram(sketch: dict[str, Any] | None, mean: float | None, std: float | None, salt: str,
              xlabel: str = "", lo: float | None = None, hi: float | None = None) -> str | None:
    """An SVG histogram of a sketch with the mean marked and mean ± std shaded; None without buckets.

    Values spanning under three decades get a linear value axis; wider ones an axis of
    sketch buckets (16 per power of two), labelled with the bucket edges."""
    if not sketch or not sketch.get("index"):
        return None
    bars = sketch_bars(sketch)
    fig, ax = _figure()
    ylabel = "kept values per bucket"
    if _wide(bars):
        where = _on_index_axis(ax, sketch)
        xlabel = (xlabel + " " if xlabel else "") + "(log-scaled buckets)"
    else:
        _stairs(ax, _densities(bars, lo, hi))
        ylabel = "kept values per unit"
        where = float
        if lo is not None and hi is not None and math.isfinite(lo) and math.isfinite(hi):
            # a bucket is up to 6 % of its edge wide: show the values' range, not the buckets'
            pad = (hi - lo) * 0.05 or abs(hi) * 0.05 or 1.0
            ax.set_xlim(lo - pad, hi + pad)
    if mean is not None and math.isfinite(mean):
        ax.axvline(where(mean), color=_MARK, linewidth=1.2, label="mean")
        if std is not None and math.isfinite(std) and std > 0 and math.isfinite(mean - std) \
                and math.isfinite(mean + std):
            ax.axvspan(where(mean - std), where(mean + std), color=_MARK, alpha=0.12, linewidth=0,
                       label="mean ± std")
        ax.legend(fontsize=6, frameon=False, loc="upper right")
    ax.set_ylabel(ylabel, fontsize=7)
    if xlabel:
        ax.set_xlabel(xlabel, fontsize=7)
    return _svg(fig, salt)


def _densities(bars: list[tuple[float, float, int]], lo: float | None,
               hi: float | None) -> list[tuple[float, float, float]]:
    """(left, right, count / width) with each bucket cut to the column's [min, max]: buckets
    grow with their values (16 per power of two), so raw counts would dip towards zero
    and jump at every power of two."""
    if lo is None or hi is None or not (math.isfinite(lo) and math.isfinite(hi)):
        lo, hi = bars[0][0], bars[-1][1]
    sliver = ((hi - lo) or abs(hi) or 1.0) / 100
    if hi == lo:
        return [(lo - sliver / 2, lo + sliver / 2, sum(b[2] for b in bars) / sliver)]
    out: list[tuple[float, float, float]] = []
    counts: list[int] = []
    for k, (left, right, count) in enumerate(bars):
        left, right = max(left, lo), min(right, hi)
        if right <= left:
            # zeros, or a column of one value: up to 1 % of the range wide, short of the next bucket
            nxt = max(bars[k + 1][0], lo) if k + 1 < len(bars) else math.inf
            right = min(left + sliver, nxt)
        if out and left < out[-1][1] or right <= left:
            # nothing left between its neighbours: its values join the previous bucket
            if out:
                counts[-1] += count
                continue
            right = left + sliver
        out.append((left, right, 0.0))
        counts.append(count)
    return [(left, right, c / (right - left)) for (left, right, _), c in zip(out, counts)]


def bars(counts: dict[str, int], salt: str, xlabel: str = "") -> str | None:
    """An SVG bar chart of ``counts`` (largest first, at most MAX_BARS bars); None when empty."""
    if not counts:
        return None
    items = sorted(counts.items(), key=lambda kv: (-kv[1], str(kv[0])))
    if len(items) > MAX_BARS:
        rest = sum(c for _, c in items[MAX_BARS - 1:])
        items = items[:MAX_BARS - 1] + [(f"{len(items) - MAX_BARS + 1} others", rest)]
    fig, ax = _figure()
    names = [str(k)[:16] for k, _ in items]
    ax.bar(range(len(items)), [c for _, c in items], color=_COLOR, linewidth=0)
    ax.set_xticks(range(len(items)), names, rotation=45 if len(items) > 6 else 0,
                  ha="right" if len(items) > 6 else "center", fontsize=6)
    ax.set_ylabel("count", fontsize=7)
    if xlabel:
        ax.set_xlabel(xlabel, fontsize=7)
    return _svg(fig, salt)
