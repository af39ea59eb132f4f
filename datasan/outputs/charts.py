"""Inline SVG charts for report.html, drawn by matplotlib from what stats.json already holds.

Histograms come from the mergeable distribution sketches (no clean file is
read again), bars from value and class counts.  Each chart is a small SVG
string with its text kept as text (``svg.fonttype = none``: a third of the
size of glyph outlines) and ids salted per chart, so that many charts can
share one HTML document without their clip paths and markers colliding.

A scan with a content cache keeps each chart's SVG there, keyed by the
function, every argument (the sketch or counts, the salt, the labels),
datasan's code and matplotlib's version (:func:`chart_cache`): a rescan whose
statistics did not change copies its charts instead of drawing them, and
does not import matplotlib when none changed.
"""

from __future__ import annotations

import contextlib
import contextvars
import functools
import io
import math
from typing import Any, Callable, Iterator

#: figure size in inches (at 72 dpi: 320 x 150 px)
SIZE = (4.4, 2.1)
#: bars shown per bar chart; the rest are summed into one "other" bar
MAX_BARS = 25

_COLOR = "#4c72b0"
_MARK = "#c44e52"

#: the cache store charts are kept in while a page is rendered (None: every chart is drawn)
_STORE: contextvars.ContextVar[Any] = contextvars.ContextVar("datasan_chart_store", default=None)


@contextlib.contextmanager
def chart_cache(path: str | None) -> Iterator[None]:
    """The charts of pages built inside this block (:class:`PageCharts`, :class:`AheadCharts`)
    are taken from and kept in the content cache at ``path`` (None: drawn as usual)."""
    store = None
    if path:
        from datasan.cache.store import CacheStore

        store = CacheStore(path)
    token = _STORE.set(store)
    try:
        yield
    finally:
        _STORE.reset(token)


def _template_cache_class():
    import jinja2

    class _TemplateCodeCache(jinja2.BytecodeCache):
        """Jinja2's compiled template code kept in the chart store (when one is set): jinja2
        checks the code's magic (its and Python's versions) and the template's checksum."""

        def _key(self, bucket) -> str:
            from datasan.cache import keys

            return keys.key_of("jinja2-bytecode", jinja2.__version__, bucket.key)

        def load_bytecode(self, bucket) -> None:
            store = _STORE.get()
            stored = store.get(self._key(bucket)) if store is not None else None
            if isinstance(stored, bytes):
                bucket.bytecode_from_string(stored)

        def dump_bytecode(self, bucket) -> None:
            store = _STORE.get()
            if store is not None:
                try:
                    store.put(self._key(bucket), bucket.bytecode_to_string())
                except OSError:
                    pass

    return _TemplateCodeCache


def TemplateCodeCache():  # noqa: N802 (a class made on first use: jinja2 loads lazily)
    """A ``jinja2.BytecodeCache`` that keeps compiled templates in the chart store."""
    return _template_cache_class()()


def _ordered(obj: Any) -> Any:
    """``obj`` with every dict as its items in order (a chart may depend on the order)."""
    if isinstance(obj, dict):
        return ["dict", [[_ordered(k), _ordered(v)] for k, v in obj.items()]]
    if isinstance(obj, (list, tuple)):
        return [_ordered(v) for v in obj]
    return obj


@functools.lru_cache(maxsize=1)
def _matplotlib_identity() -> str:
    """matplotlib's version, read without importing it (an import costs more than a warm page)."""
    import importlib.util
    import os

    spec = importlib.util.find_spec("matplotlib")
    if spec is None or not spec.origin:
        return "none"
    try:
        with open(os.path.join(os.path.dirname(spec.origin), "_version.py"), "rb") as f:
            return spec.origin + "|" + f.read().decode("utf-8", "replace")
    except OSError:
        from importlib.metadata import version

        return spec.origin + "|" + version("matplotlib")


def _store_key(name: str, args: tuple, kwargs: dict) -> str | None:
    """The chart store's key of chart ``name`` drawn from these arguments (None: an argument
    the key recipe does not know; such a chart is drawn, not kept)."""
    from datasan.cache import keys

    try:
        return keys.key_of("chart", name, _matplotlib_identity(), _ordered(list(args)),
                           _ordered(sorted(kwargs.items())))
    except TypeError:
        return None


def _stored(store: Any, key: str) -> tuple[bool, str | None]:
    """(found, svg) of ``key`` in the chart store."""
    stored = store.get(key)
    if isinstance(stored, tuple) and len(stored) == 1 and (stored[0] is None or isinstance(stored[0], str)):
        return True, stored[0]
    return False, None


def _keep(store: Any, key: str, svg: str | None) -> None:
    try:
        store.put(key, (svg,))
    except OSError:  # a cache that cannot be written: the page is drawn all the same
        pass


def _lookup(store: Any, chart: Callable[..., str | None], args: tuple,
            kwargs: dict) -> tuple[str | None, bool, str | None]:
    """(the store key, found, svg) of a chart call; not found without a store or a key."""
    key = _store_key(chart.__name__, args, kwargs)
    if key is None or store is None:
        return key, False, None
    found, svg = _stored(store, key)
    return key, found, svg


class AheadCharts:
    """Charts sent to the chart helper before their page is built (the same calls the page
    will make; one already in the chart store is not sent)."""

    def __init__(self) -> None:
        self._store = _STORE.get()

    def add(self, chart: Callable[..., str | None], *args: Any, **kwargs: Any) -> int:
        from datasan.outputs import chart_helper

        key, found, _ = _lookup(self._store, chart, args, kwargs)
        if key is not None and not found:
            chart_helper.prefetch(key, chart, args, kwargs)
        return -1


class PageCharts:
    """The charts of one page, drawn together: each is taken from the chart store when it is
    there, else drawn by a :class:`~datasan.outputs.chart_helper.ChartBatch` (on two cores
    while a helper runs).  :meth:`add` takes a chart function of this module and its
    arguments and returns the chart's index in :meth:`results`."""

    def __init__(self) -> None:
        from datasan.outputs.chart_helper import ChartBatch

        self._store = _STORE.get()
        self._batch = ChartBatch()
        self._keys: list[str | None] = []  # the store key of each chart to keep once drawn

    def add(self, chart: Callable[..., str | None], *args: Any, **kwargs: Any) -> int:
        from datasan.outputs import chart_helper

        key = svg = None
        found = False
        # a key finds the chart in the store or among the charts sent ahead
        if self._store is not None or chart_helper.has_prefetched():
            key, found, svg = _lookup(self._store, chart, args, kwargs)
        self._keys.append(None if found else key)
        return self._batch.add(chart, args, kwargs, svg, done=found, key=key)

    def results(self) -> list[str | None]:
        svgs = self._batch.results()
        if self._store is not None:
            for key, svg in zip(self._keys, svgs):
                if key is not None:
                    _keep(self._store, key, svg)
        return svgs


def _figure():
    """A new figure and its axes, as :func:`_new_figure` makes them, copied from a template
    that was drawn once: a fresh figure makes its axis ticks, lines and labels on its first
    draw, which was two fifths of a chart's time (17 histograms of a table: 1.2 -> 0.8 s)."""
    import pickle

    template = _drawn_template()
    if template is None:
        return _new_figure()
    fig = pickle.loads(template)
    return fig, fig.axes[0]


@functools.lru_cache(maxsize=1)
def _drawn_template() -> bytes | None:
    """A pickled :func:`_new_figure` after one draw (None when a figure does not pickle)."""
    import pickle

    fig, _ = _new_figure()
    _svg(fig, "template")
    try:
        return pickle.dumps(fig)
    except Exception:  # noqa: BLE001 - a matplotlib that cannot pickle figures: build each one
        return None


def _new_figure():
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
    """True when the largest magnitude is over 1,000 times the median non-zero magnitude: on
    a linear axis the bulk of the values would be one bar (a heavy tail, a sentinel)."""
    mags = sorted((max(abs(left), abs(right)), count) for left, right, count in bars if left or right)
    half, seen = sum(c for _, c in mags) / 2, 0
    for mag, count in mags:
        seen += count
        if seen >= half:
            return mags[-1][0] > 1e3 * mag
    return False


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
    values (a symlog axis cannot span 1e-300..1e300).  Zero is [0, 1], the smallest positive
    bucket [1, 2], the smallest negative one [-1, 0]."""

    def __init__(self, indices: list[int]) -> None:
        nonzero = [abs(i) for i in indices if i]
        self.offset = (min(nonzero) - 1) if nonzero else 0

    def __call__(self, x: float) -> float:
        """The position of value ``x``."""
        if x == 0:
            return 0.5
        p = abs(bucket_position(x)) - self.offset
        return max(p, 1.0) if x > 0 else min(1.0 - p, 0.0)

    def left(self, i: int) -> int:
        """The left edge of bucket ``i``'s bar."""
        return 0 if i == 0 else (abs(i) - self.offset) * (1 if i > 0 else -1)


def _on_index_axis(ax, sketch: dict[str, Any]) -> _IndexAxis:
    from datasan.stats import bucket_bounds, sketch_buckets

    pairs = sketch_buckets(sketch)
    axis = _IndexAxis([i for i, _ in pairs])
    _stairs(ax, [(axis.left(i), axis.left(i) + 1, c) for i, c in pairs])
    step = max(1, len(pairs) // 4)
    chosen = sorted({pairs[0][0], pairs[-1][0], *[pairs[k][0] for k in range(0, len(pairs), step)]})
    # each tick sits on its bar's left edge: the low bound of a positive bucket, -high of a negative one
    labels = [f"{max(bucket_bounds(i), key=abs) if i < 0 else bucket_bounds(i)[0]:.2g}" if i else "0"
              for i in chosen]
    ax.set_xticks([axis.left(i) for i in chosen], labels, fontsize=6)
    return axis


def histogram(sketch: dict[str, Any] | None, mean: float | None, std: float | None, salt: str,
              xlabel: str = "", lo: float | None = None, hi: float | None = None, note: str = "",
              ylabel: str = "kept values") -> str | None:
    """An SVG histogram of a sketch with the mean marked and mean ± std shaded; None without buckets.

    Values spanning under three decades get a linear value axis; wider ones an axis of
    sketch buckets (16 per power of two), labelled with the bucket edges.  ``note`` is
    written in red in the top left corner (what the histogram cannot show)."""
    if not sketch or not sketch.get("index"):
        return None
    bars = sketch_bars(sketch)
    fig, ax = _figure()
    if _wide(bars):
        where = _on_index_axis(ax, sketch)
        xlabel = (xlabel + " " if xlabel else "") + "(log-scaled buckets)"
        ylabel += " per bucket"
    else:
        _stairs(ax, _rebinned(bars, lo, hi))
        where = float
        if lo is not None and hi is not None and math.isfinite(lo) and math.isfinite(hi):
            # a bucket is up to 6 % of its edge wide: show the values' range, not the buckets'
            pad = (hi - lo) * 0.05 or abs(hi) * 0.05 or 1.0
            ax.set_xlim(lo - pad, hi + pad)
    if mean is not None and math.isfinite(mean):
        ax.axvline(where(mean), color=_MARK, linewidth=1.2)
        if std is not None and math.isfinite(std) and std > 0 and math.isfinite(mean - std) \
                and math.isfinite(mean + std):
            ax.axvspan(where(mean - std), where(mean + std), color=_MARK, alpha=0.12, linewidth=0)
        # no legend: the page says what the line and the band are, and a legend is a tenth of
        # a histogram's drawing time
    if note:
        ax.text(0.01, 0.97, note, transform=ax.transAxes, fontsize=6, color=_MARK, va="top")
    ax.set_ylabel(ylabel, fontsize=7)
    if xlabel:
        ax.set_xlabel(xlabel, fontsize=7)
    return _svg(fig, salt)


#: equal-width bins of a linear histogram
BINS = 40


def _rebinned(bars: list[tuple[float, float, int]], lo: float | None,
              hi: float | None) -> list[tuple[float, float, float]]:
    """(left, right, count) of BINS equal bins over [min, max], each bucket's count spread
    evenly over the bins it overlaps.  Sketch buckets grow with their values (16 per power
    of two): drawn as they are, counts would dip towards zero and jump at powers of two."""
    import numpy as np

    if lo is None or hi is None or not (math.isfinite(lo) and math.isfinite(hi)):
        lo, hi = bars[0][0], bars[-1][1]
    if hi <= lo:
        half = (abs(hi) or 1.0) / 200
        return [(lo - half, lo + half, float(sum(b[2] for b in bars)))]
    edges = np.linspace(lo, hi, BINS + 1)
    counts = np.zeros(BINS)
    for left, right, count in bars:
        left, right = max(left, lo), min(right, hi)
        if right <= left:  # zeros, or values on the column's min or max
            counts[min(int(np.searchsorted(edges, left, side="right")) - 1, BINS - 1)] += count
            continue
        overlap = np.clip(np.minimum(right, edges[1:]) - np.maximum(left, edges[:-1]), 0, None)
        counts += count * overlap / (right - left)
    return [(float(a), float(b), float(c)) for a, b, c in zip(edges[:-1], edges[1:], counts)]


def _label(value: Any) -> str:
    """A category as a tick label: printable, cut to 16 characters, ``$`` escaped (matplotlib
    would read ``$...$`` as mathtext and may fail on it)."""
    from datasan.outputs.escape import printable

    text = printable(value)
    return (text[:15] + "…" if len(text) > 16 else text).replace("$", r"\$")


def bars(counts: dict[str, int], salt: str, xlabel: str = "", marked: dict[str, int] | None = None,
         marked_label: str = "quarantined") -> str | None:
    """An SVG bar chart of ``counts`` (largest first, at most MAX_BARS bars); None when empty.

    ``marked`` counts (per key, e.g. quarantined boxes) are stacked in red on top of
    their key's bar; keys only in ``marked`` get a bar of their own.  Each bar carries
    the SVG id ``<salt>bar<i>``, so a page can count them."""
    marked = marked or {}
    counts = {**{k: 0 for k in marked}, **counts}
    if not counts:
        return None
    items = sorted(counts.items(), key=lambda kv: (-(kv[1] + marked.get(kv[0], 0)), str(kv[0])))
    extra = [marked.get(k, 0) for k, _ in items]
    if len(items) > MAX_BARS:
        rest = sum(c for _, c in items[MAX_BARS - 1:])
        items = items[:MAX_BARS - 1] + [(f"{len(items) - MAX_BARS + 1} others", rest)]
        extra = extra[:MAX_BARS - 1] + [sum(extra[MAX_BARS - 1:])]
    fig, ax = _figure()
    names = [_label(k) for k, _ in items]
    heights = [c for _, c in items]
    for i, patch in enumerate(ax.bar(range(len(items)), heights, color=_COLOR, linewidth=0)):
        patch.set_gid(f"{salt}bar{i}")
    if any(extra):
        ax.bar(range(len(items)), extra, bottom=heights, color=_MARK, linewidth=0, label=marked_label)
        ax.legend(fontsize=6, frameon=False, loc="upper right")
    ax.set_xticks(range(len(items)), names, rotation=45 if len(items) > 6 else 0,
                  ha="right" if len(items) > 6 else "center", fontsize=6)
    ax.set_ylabel("count", fontsize=7)
    if xlabel:
        ax.set_xlabel(xlabel, fontsize=7)
    return _svg(fig, salt)
