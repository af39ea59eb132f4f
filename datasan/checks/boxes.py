"""What the box checks mean, independent of the label format that carries the boxes.

Each function looks at one box and returns its problems as ``(code, message)``
pairs; the COCO and YOLO readers (``datasan/sources/boxes``) decide what a box
is, which sample it belongs to and how its findings are quarantined.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

from datasan.stats import Moments, merge_counts

Problem = tuple[str, str]


def is_number(v: Any) -> bool:
    """True for JSON numbers (int or float, not bool)."""
    return isinstance(v, (int, float)) and not isinstance(v, bool)


def box4(value: Any) -> list[float] | None:
    """``value`` as 4 floats when it is a list of 4 JSON numbers, else None."""
    if type(value) is not list or len(value) != 4:
        return None
    for v in value:
        if type(v) is not float and type(v) is not int:  # exact types: bool is not a number here
            return None
    return [to_float(v) for v in value]


def to_float(v: int | float) -> float:
    """``float(v)``, with ints beyond float range as +-inf instead of OverflowError."""
    try:
        return float(v)
    except OverflowError:
        return math.inf if v > 0 else -math.inf


def _fmt(v: float) -> str:
    return f"{v:g}" if isinstance(v, float) else str(v)


def nonfinite_problems(values: list[float], names: tuple[str, ...]) -> list[Problem]:
    """DS324 when some value is NaN or infinite (nothing else can be checked then)."""
    if math.isfinite(sum(values)):  # the common case in one test (an overflowing sum looks closer)
        return []
    bad = [f"{n}={_fmt(v)}" for n, v in zip(names, values) if not math.isfinite(v)]
    if bad:
        return [("DS324", f"non-finite coordinate {', '.join(bad)}")]
    return []


def coco_box_problems(bbox: list[float], size: tuple[float, float] | None, tolerance: float,
                      min_px: float) -> list[Problem]:
    """Problems of a COCO ``[x, y, w, h]`` box (pixels) in an image of ``size`` (w, h) or unknown size."""
    found = nonfinite_problems(bbox, ("x", "y", "w", "h"))
    if found:
        return found
    x, y, w, h = bbox
    if w <= 0 or h <= 0:
        found.append(("DS323", f"degenerate box: width {_fmt(w)}, height {_fmt(h)} (must be > 0)"))
    elif w < min_px or h < min_px:
        found.append(("DS335", f"tiny box: {_fmt(w)} x {_fmt(h)} px (under {_fmt(min_px)} px)"))
    if size is not None:
        iw, ih = size
        tx, ty = max(1.0, tolerance * iw), max(1.0, tolerance * ih)
        if x < -tx or y < -ty or x + w > iw + tx or y + h > ih + ty:
            found.append(("DS325", f"box [{_fmt(x)}, {_fmt(y)}, {_fmt(w)}, {_fmt(h)}] lies outside the "
                                   f"{_fmt(iw)}x{_fmt(ih)} image (tolerance {tx:g} x {ty:g} px)"))
    return found


def yolo_box_problems(xc: float, yc: float, w: float, h: float, tolerance: float) -> list[Problem]:
    """Problems of a normalized YOLO box (center x, center y, width, height)."""
    vals = [xc, yc, w, h]
    found = nonfinite_problems(vals, ("x_center", "y_center", "width", "height"))
    if found:
        return found
    if w <= 0 or h <= 0:
        found.append(("DS323", f"degenerate box: width {_fmt(w)}, height {_fmt(h)} (must be > 0)"))
    out = [f"{n}={_fmt(v)}" for n, v in zip(("x_center", "y_center", "width", "height"), vals)
           if v < 0 or v > 1]
    if out:
        found.append(("DS325", f"normalized coordinate outside [0, 1]: {', '.join(out)}"))
    elif w > 0 and h > 0:
        x0, x1, y0, y1 = xc - w / 2, xc + w / 2, yc - h / 2, yc + h / 2
        if x0 < -tolerance or y0 < -tolerance or x1 > 1 + tolerance or y1 > 1 + tolerance:
            found.append(("DS325", f"box edges x {x0:.4g}..{x1:.4g}, y {y0:.4g}..{y1:.4g} leave the image "
                                   f"(tolerance {tolerance:g})"))
    return found


@dataclass
class BoxStats:
    """Mergeable statistics of the kept boxes of one label source: counts per class
    and moments of width, height and aspect (width / height)."""

    classes: dict[str, int] = field(default_factory=dict)
    width: Moments = field(default_factory=Moments)
    height: Moments = field(default_factory=Moments)
    aspect: Moments = field(default_factory=Moments)

    @classmethod
    def of(cls, classes: list[str], widths: list[float], heights: list[float]) -> "BoxStats":
        """Statistics of the kept boxes given as parallel lists."""
        import numpy as np

        st = cls()
        for c in classes:
            st.classes[c] = st.classes.get(c, 0) + 1
        w = np.asarray(widths, dtype=np.float64)
        h = np.asarray(heights, dtype=np.float64)
        st.width, st.height = Moments.of(w), Moments.of(h)
        with np.errstate(divide="ignore", invalid="ignore"):
            st.aspect = Moments.of(w / h) if len(w) else Moments()
        return st

    def merge(self, other: "BoxStats") -> "BoxStats":
        merge_counts(self.classes, other.classes)
        self.width.merge(other.width)
        self.height.merge(other.height)
        self.aspect.merge(other.aspect)
        return self

    def as_json(self, units: str) -> dict[str, Any]:
        """The stats.json ``boxes`` entry."""
        return {"count": self.width.count, "units": units, "width": self.width.as_json(),
                "height": self.height.as_json(), "aspect": self.aspect.as_json()}
