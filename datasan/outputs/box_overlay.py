"""Where the offending boxes of box findings lie, for drawing them over report.html's thumbnails.

A box finding names its label file (``source``) and the box's ``row`` (the
annotation's index in a COCO file, the line's index in a YOLO file).  The
label files are read again from PATH, each at most once per report and only
up to :data:`MAX_LABEL_BYTES`; a box whose numbers are not finite or not
positive is not drawn (the finding's message says what is wrong with it).
"""

from __future__ import annotations

import json
import math
import os
from typing import Any

#: label files larger than this are not read again for the overlay
MAX_LABEL_BYTES = 64 << 20

#: a box: ("px", x, y, w, h) in pixels or ("norm", cx, cy, w, h) as fractions of the image
Box = tuple[str, float, float, float, float]


class BoxLookup:
    """The boxes of (label file, row) pairs under ``root``, each label file read once."""

    def __init__(self, root: str) -> None:
        self.root = root
        self._files: dict[str, Any] = {}

    def box(self, source: str | None, row: int | None) -> Box | None:
        """The box of ``row`` in label file ``source``; None when it cannot be drawn."""
        if source is None or row is None or row < 0:
            return None
        rows = self._load(source)
        if rows is None or row >= len(rows):
            return None
        return _drawable(rows[row], "px" if source.endswith(".json") else "norm")

    def _load(self, source: str) -> list | None:
        if source not in self._files:
            self._files[source] = _read_rows(self.root, source)
        return self._files[source]


def _read_rows(root: str, source: str) -> list | None:
    """COCO: the annotations' bbox lists; YOLO: each line's numbers after the class."""
    if source.startswith("/") or ".." in source.split("/"):
        return None
    path = os.path.join(root, *source.split("/"))
    try:
        if not os.path.isfile(path) or os.path.getsize(path) > MAX_LABEL_BYTES:
            return None
        if source.endswith(".json"):
            with open(path, encoding="utf-8") as f:
                doc = json.load(f)
            anns = doc.get("annotations") if isinstance(doc, dict) else None
            return [a.get("bbox") if isinstance(a, dict) else None for a in anns] if isinstance(anns, list) else None
        if source.endswith(".txt"):
            with open(path, encoding="utf-8", errors="replace") as f:
                return [line.split()[1:] for line in f.read().split("\n")]
    except (OSError, ValueError, RecursionError):
        return None
    return None


def _drawable(values: Any, kind: str) -> Box | None:
    if not isinstance(values, (list, tuple)) or len(values) != 4:
        return None
    try:
        nums = [float(v) for v in values]
    except (TypeError, ValueError, OverflowError):  # OverflowError: an int past float range
        return None
    if not all(math.isfinite(v) and abs(v) < 1e12 for v in nums) or nums[2] <= 0 or nums[3] <= 0:
        return None
    return (kind, *nums)  # type: ignore[return-value]


def pixel_rect(box: Box, width: int, height: int) -> tuple[float, float, float, float]:
    """(x0, y0, x1, y1) of ``box`` in an image of ``width`` x ``height`` pixels."""
    kind, a, b, w, h = box
    if kind == "norm":
        a, b, w, h = (a - w / 2) * width, (b - h / 2) * height, w * width, h * height
    return a, b, a + w, b + h
