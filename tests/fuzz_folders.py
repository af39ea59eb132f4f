"""Hostile dataset folders for property-based tests (hypothesis strategies).

Each strategy draws a *plan* of files (bytes plus what is known to be broken
about them); :func:`materialise` writes a plan under a folder.  The tests and
``bench/fuzz.py`` assert the scan's invariants on whatever hypothesis draws:
no traceback, exit 0/1, every file known to be broken named in the findings,
nothing under PATH written, one run id across the output files and
kept + quarantined == seen for every source.
"""

from __future__ import annotations

import io
import json
import os
from dataclasses import dataclass, field

from hypothesis import strategies as st

#: image formats Pillow writes and datasan reads, with the suffix datasan claims them by
IMAGE_FORMATS = {"PNG": ".png", "JPEG": ".jpg", "GIF": ".gif", "BMP": ".bmp", "WEBP": ".webp", "TIFF": ".tif"}


@dataclass
class Plan:
    """Files to write: relative path (a bytes path, so names need not be UTF-8) -> content."""

    files: dict[bytes, bytes] = field(default_factory=dict)
    #: files whose content is broken beyond repair: the scan must name each of them
    broken: set[bytes] = field(default_factory=set)
    #: symlinks: relative path -> target (may point outside, loop or dangle)
    links: dict[bytes, bytes] = field(default_factory=dict)

    def __repr__(self) -> str:  # hypothesis prints failing plans: names and sizes, not image bytes
        files = {rel: (data if len(data) <= 80 else f"<{len(data)} bytes>") for rel, data in self.files.items()}
        return f"Plan(files={files!r}, broken={sorted(self.broken)!r}, links={self.links!r})"

    def merge(self, other: "Plan", prefix: bytes) -> None:
        for rel, data in other.files.items():
            self.files[prefix + rel] = data
        self.broken |= {prefix + rel for rel in other.broken}
        for rel, target in other.links.items():
            self.links[prefix + rel] = target


def image_bytes(fmt: str, size: tuple[int, int], seed: int, frames: int = 1) -> bytes:
    """A valid image of ``fmt`` with noisy pixels (so compressed data is not trivially short)."""
    import numpy as np
    from PIL import Image

    rng = np.random.default_rng(seed)
    imgs = [Image.fromarray(rng.integers(0, 256, (size[1], size[0], 3), dtype=np.uint8), "RGB")
            for _ in range(frames)]
    buf = io.BytesIO()
    if frames > 1:
        imgs[0].save(buf, fmt, save_all=True, append_images=imgs[1:], duration=50)
    else:
        imgs[0].save(buf, fmt)
    return buf.getvalue()


@st.composite
def images(draw) -> Plan:
    """An image folder of 1-2 classes with valid, truncated, garbage and empty files."""
    plan = Plan()
    n = draw(st.integers(1, 5))
    for i in range(n):
        fmt = draw(st.sampled_from(sorted(IMAGE_FORMATS)))
        cls = draw(st.sampled_from([b"cat", b"dog"]))
        size = (draw(st.integers(8, 40)), draw(st.integers(8, 40)))
        frames = draw(st.integers(2, 3)) if fmt == "GIF" and draw(st.booleans()) else 1
        data = image_bytes(fmt, size, seed=draw(st.integers(0, 2**16)), frames=frames)
        rel = cls + b"/" + f"img{i}".encode() + IMAGE_FORMATS[fmt].encode()
        how = draw(st.sampled_from(["valid", "valid", "truncated", "garbage", "empty", "header"]))
        if how == "truncated":
            # cut inside the pixel data: well past the header, well before the end
            cut = draw(st.integers(len(data) // 4, max(len(data) // 4, len(data) // 2)))
            data = data[:cut]
            plan.broken.add(rel)
        elif how == "garbage":
            data = draw(st.binary(min_size=1, max_size=200))
            plan.broken.add(rel)
        elif how == "empty":
            data = b""
            plan.broken.add(rel)
        elif how == "header":
            data = data[: min(len(data), 16)]
            plan.broken.add(rel)
        plan.files[rel] = data
    return plan


def _csv_cell(draw) -> str:
    return draw(st.one_of(
        st.floats(allow_nan=True, allow_infinity=True).map(repr),
        st.integers(-10**20, 10**20).map(str),
        st.sampled_from(["", "NaN", "nan", "inf", "-Infinity", "?", "NA", "None", "1e400", "0x1F", "7a"]),
        st.text(alphabet=st.characters(blacklist_categories=("Cs",)), max_size=8),
    ))


@st.composite
def tables(draw) -> Plan:
    """CSV / TSV / JSONL / Parquet files: ragged, binary, odd encodings, odd values."""
    plan = Plan()
    kind = draw(st.sampled_from(["csv", "ragged", "binary", "latin1", "utf16", "jsonl", "badjsonl",
                                 "parquet", "truncparquet"]))
    ncol = draw(st.integers(1, 4))
    header = [f"f{j}" for j in range(ncol - 1)] + ["label"]
    nrows = draw(st.integers(0, 12))
    rows = [[_csv_cell(draw) for _ in range(ncol)] for _ in range(nrows)]
    if kind in ("csv", "ragged", "latin1", "utf16"):
        import csv

        buf = io.StringIO()
        w = csv.writer(buf, lineterminator="\n")
        w.writerow(header)
        for r in rows:
            w.writerow(r)
        text = buf.getvalue()
        if kind == "ragged":
            text += ",".join(["1"] * (ncol + 2)) + "\n"
        enc = {"latin1": "latin-1", "utf16": "utf-16"}.get(kind, "utf-8")
        plan.files[b"t.csv"] = text.encode(enc, errors="replace")
    elif kind == "binary":
        plan.files[b"t.csv"] = b"\x00\x01\x02\xff\xfe" + draw(st.binary(max_size=100))
        plan.broken.add(b"t.csv")
    elif kind in ("jsonl", "badjsonl"):
        lines = [json.dumps(dict(zip(header, r))) for r in rows]
        if kind == "badjsonl":
            lines.append(draw(st.sampled_from(["{", "[1,2]", "nul", '{"a": NaN', "\x00"])))
        plan.files[b"t.jsonl"] = ("\n".join(lines) + "\n").encode("utf-8", errors="surrogatepass")
    else:
        import pyarrow as pa
        import pyarrow.parquet as pq

        cols = {h: [draw(st.floats(allow_nan=True, allow_infinity=True)) for _ in range(nrows)]
                for h in header}
        buf = io.BytesIO()
        pq.write_table(pa.table(cols), buf)
        data = buf.getvalue()
        if kind == "truncparquet":
            data = data[: draw(st.integers(0, max(0, len(data) - 9)))]
            plan.broken.add(b"t.parquet")
        plan.files[b"t.parquet"] = data
    return plan


@st.composite
def coco(draw) -> Plan:
    """A COCO detection set whose annotations file may be malformed or hold broken boxes."""
    plan = Plan()
    plan.files[b"images/a.png"] = image_bytes("PNG", (32, 24), seed=1)
    boxes = draw(st.lists(st.lists(st.one_of(
        st.floats(allow_nan=True, allow_infinity=True, width=32), st.integers(-50, 100), st.none(),
        st.text(max_size=3)), min_size=0, max_size=5), max_size=4))
    doc = {
        "images": [{"id": 1, "file_name": draw(st.sampled_from(["a.png", "missing.png", "../../etc/passwd"])),
                    "width": 32, "height": 24}],
        "annotations": [{"id": i, "image_id": draw(st.sampled_from([1, 2, "1", None])),
                         "category_id": draw(st.sampled_from([1, 7, -1, None])), "bbox": b}
                        for i, b in enumerate(boxes)],
        "categories": [{"id": 1, "name": "thing"}],
    }
    if draw(st.booleans()):
        del doc[draw(st.sampled_from(["images", "annotations", "categories"]))]
    text = json.dumps(doc, allow_nan=True)
    if draw(st.integers(0, 4)) == 0:
        text = text[: len(text) // 2]
        plan.broken.add(b"annotations.json")
    plan.files[b"annotations.json"] = text.encode()
    return plan


@st.composite
def yolo(draw) -> Plan:
    """A YOLO set: an image and a label file of random tokens."""
    plan = Plan()
    plan.files[b"images/train/a.png"] = image_bytes("PNG", (20, 20), seed=2)
    token = st.one_of(st.sampled_from(["0", "1", "-1", "nan", "inf", "0.5", "1.5", "-0.2", "x", "1e9"]),
                      st.floats(allow_nan=True, allow_infinity=True).map(repr))
    lines = draw(st.lists(st.lists(token, min_size=0, max_size=7).map(" ".join), max_size=5))
    plan.files[b"labels/train/a.txt"] = ("\n".join(lines) + "\n").encode()
    if draw(st.booleans()):
        plan.files[b"labels/train/orphan.txt"] = b"0 0.5 0.5 0.1 0.1\n"
    return plan


_NAME_CHARS = st.characters(blacklist_categories=("Cs",), blacklist_characters="/\x00")


@st.composite
def odd_name(draw) -> bytes:
    """A file-name stem: unicode, spaces, control characters, leading dashes, non-UTF-8 bytes, long."""
    return draw(st.one_of(
        st.text(_NAME_CHARS, min_size=1, max_size=12).map(lambda s: s.encode("utf-8", "surrogateescape")),
        st.sampled_from([b"-rf", b" space ", b"tab\there", b"esc\x1b[31m", b"new\nline", b"bad\xffname",
                         b"\xe9t\xe9", b"x" * 200, b"#hash", b"a%2Fb", b".hidden"]),
    )).replace(b"/", b"_") or b"x"


@st.composite
def hostile_folder(draw) -> Plan:
    """A folder mixing sources of every kind under odd names, with nesting and symlinks."""
    plan = Plan()
    parts = draw(st.lists(st.sampled_from(["images", "tables", "coco", "yolo"]), min_size=1, max_size=3))
    for i, part in enumerate(parts):
        sub = {"images": images, "tables": tables, "coco": coco, "yolo": yolo}[part]()
        prefix = f"{part}{i}/".encode()
        if draw(st.booleans()):
            prefix = b"deep/" * draw(st.integers(1, 20)) + prefix
        plan.merge(draw(sub), prefix)
    # a table under an odd name (its id must survive every output format)
    stem = draw(odd_name())
    name = stem[:240] + b".csv"
    plan.files[name] = b"x,label\n1,0\nnan,1\n"
    if draw(st.booleans()):
        plan.links[b"loop"] = b"."
    if draw(st.booleans()):
        plan.links[b"outside.csv"] = b"/etc/hostname"
    if draw(st.booleans()):
        plan.links[b"dangling.png"] = b"nowhere.png"
    return plan


def materialise(plan: Plan, root: str) -> None:
    """Write ``plan`` under ``root`` (a str path; file names are bytes)."""
    broot = os.fsencode(root)
    for rel, data in plan.files.items():
        path = os.path.join(broot, rel)
        os.makedirs(os.path.dirname(path), exist_ok=True)
        with open(path, "wb") as f:
            f.write(data)
    for rel, target in plan.links.items():
        path = os.path.join(broot, rel)
        os.makedirs(os.path.dirname(path) or broot, exist_ok=True)
        if not os.path.lexists(path):
            os.symlink(target, path)
