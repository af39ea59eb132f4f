"""Thumbnails of flagged images for report.html: at most 128 px, JPEG, inline as data URLs.

Images are read from PATH (read only) when the report is rendered; a file
that does not decode, or is gone since the scan, becomes a placeholder tile
with the decoder's error, so a broken image is shown, never a crash.
"""

from __future__ import annotations

import base64
import io
import os
from dataclasses import dataclass

from datasan.sources.images.decode import IMAGE_EXTENSIONS

#: longest side of a thumbnail, in pixels
SIDE = 128
#: file endings of samples that are images: those the image kind reads
IMAGE_ENDINGS = tuple(sorted(IMAGE_EXTENSIONS))
#: images larger than this (width x height, from the header) are not decoded for a thumbnail
MAX_PIXELS = 50_000_000


@dataclass(frozen=True)
class Thumbnail:
    """One tile: the sample, why it is shown, and its image as a data URL or the error instead."""

    sample: str
    code: str
    severity: str
    message: str
    data_url: str | None
    error: str | None
    #: offending boxes drawn over the image
    boxes: int = 0


def _inside(root: str, sample: str) -> str | None:
    # sample ids are relative posix paths; anything else is not read
    if sample.startswith("/") or ".." in sample.split("/"):
        return None
    return os.path.join(root, *sample.split("/"))


def encode(path: str, boxes: tuple = ()) -> tuple[str | None, str | None]:
    """(data URL of a <= SIDE px JPEG thumbnail, None), or (None, the error) when it cannot be made.

    ``boxes`` (see :mod:`datasan.outputs.box_overlay`) are drawn over it in red."""
    try:
        from PIL import Image, ImageDraw

        from datasan.outputs.box_overlay import pixel_rect

        with Image.open(path) as im:
            width, height = im.size
            if width * height > MAX_PIXELS:
                return None, f"{width}x{height} pixels: too large to decode for a thumbnail"
            im.draft("RGB", (SIDE, SIDE))  # JPEG: decode at a reduced scale, much faster
            im.thumbnail((SIDE, SIDE))
            rgb = im.convert("RGB")
        if boxes:
            sx, sy = rgb.width / width, rgb.height / height
            draw = ImageDraw.Draw(rgb)
            for box in boxes:
                x0, y0, x1, y1 = pixel_rect(box, width, height)
                draw.rectangle([x0 * sx, y0 * sy, max(x1 * sx, x0 * sx + 1), max(y1 * sy, y0 * sy + 1)],
                               outline=(230, 0, 0), width=2)
        buf = io.BytesIO()
        rgb.save(buf, format="JPEG", quality=80)
    except Exception as exc:  # any decoder failure is what the tile shows
        return None, f"{type(exc).__name__}: {exc}"[:300]
    return "data:image/jpeg;base64," + base64.b64encode(buf.getvalue()).decode("ascii"), None


def thumbnails(root: str, flagged: list[tuple]) -> list[Thumbnail]:
    """One tile per (sample, code, severity, message, box locations) of ``flagged``, images read
    under ``root``; box locations are (label file, row) pairs whose boxes are drawn over it."""
    from datasan.outputs.box_overlay import BoxLookup

    lookup = BoxLookup(root)
    jobs = [(sample, tuple(b for b in (lookup.box(src, row) for src, row in where) if b is not None))
            for sample, _, _, _, where in flagged]
    tiles = []
    for (sample, code, severity, message, _), (url, err, boxes) in zip(flagged, _made(root, jobs)):
        tiles.append(Thumbnail(sample, code, severity, message, url, err, boxes if url else 0))
    return tiles


def _made(root: str, jobs: list[tuple[str, tuple]]) -> list[tuple[str | None, str | None, int]]:
    """(data URL, error, boxes drawn) of each (sample, boxes), in order; Pillow decodes,
    resizes and encodes without holding the interpreter, so a few threads share the cores."""
    if len(jobs) < 8:
        return [_tile(root, sample, boxes) for sample, boxes in jobs]
    from concurrent.futures import ThreadPoolExecutor

    from datasan.outputs.chart_helper import usable_cores

    with ThreadPoolExecutor(max_workers=max(1, min(4, usable_cores()))) as pool:
        return list(pool.map(lambda job: _tile(root, *job), jobs))


def _tile(root: str, sample: str, boxes: tuple) -> tuple[str | None, str | None, int]:
    path = _inside(root, sample)
    if path is None:
        return None, "not a path under the scanned folder", 0
    if not os.path.isfile(path):
        return None, "no such file (moved or removed since the scan)", 0
    url, err = encode(path, boxes)
    # the decoder names the file by its absolute path; the tile already names the sample
    return url, err.replace(path, sample) if err else err, len(boxes)
