"""COCO detection files: one shard per JSON file.

:func:`scan_coco` parses the file (accepting Python's NaN / Infinity tokens),
checks every annotation, applies the rule policy, then writes the cleaned file
(strict JSON, the quarantined annotations left out, everything else kept).

How errors map onto boxes (the quarantine unit): every finding about one
annotation carries ``sample`` = its image's path (or the JSON's own path when
the annotation names no usable image), ``source`` = the JSON and ``row`` = the
annotation's index.  An error that invalidates no box (bad JSON, wrong
structure, a missing image that has no boxes) is reported once about the file
(``sample`` empty), and so is every finding about an image rather than a box
(unlisted image, duplicate image id, unreadable size): a severity override
can then never quarantine something that is not a box, and kept +
quarantined == boxes read always holds.
"""

from __future__ import annotations

import json
import math
import os
import shutil
from dataclasses import dataclass, field
from typing import Any

from datasan import fs
from datasan.checks.boxes import (
    BAD_COCO_ENTRY, COCO_BAD_STRUCTURE, COCO_INVALID_JSON, DUPLICATE_ID, IMAGE_SIZE_UNKNOWN, MALFORMED_BOX,
    MISSING_IMAGE_FILE, NON_STANDARD_JSON_NUMBER, UNKNOWN_CLASS, UNKNOWN_IMAGE_ID, UNLISTED_IMAGE,
    UNSAFE_IMAGE_PATH,
)
from datasan.checks.files import RECORD_TOO_DEEP
from datasan.checks import boxes as checks
from datasan.discover import relative_to_root
from datasan.findings import Finding, FindingBuffer
from datasan.options import ScanOptions
from datasan.sources.regular import open_binary

REQUIRED_KEYS = ("id", "image_id", "category_id", "bbox")
MARKERS = (b'"images"', b'"annotations"', b'"categories"')


def looks_like_coco(path: str) -> bool:
    """True when the file mentions the three COCO keys (a cheap byte scan, no parse)."""
    import mmap

    if _remote(path):
        return _object_mentions(path, MARKERS)
    try:
        with open_binary(path) as f:
            if os.fstat(f.fileno()).st_size == 0:
                return False
            with mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ) as m:
                return all(m.find(k) >= 0 for k in MARKERS)
    except (OSError, ValueError):
        return False


@dataclass
class CocoTask:
    rel: str
    path: str
    root: str
    image_dir: str  # default folder of the images (rel): <json dir>/images or <json dir>
    local_images: list[str]  # image files in the image folders, for the unlisted check
    clean_path: str
    options: ScanOptions


@dataclass
class CocoResult:
    rel: str
    seen: int = 0
    kept: int = 0
    findings: FindingBuffer = field(default_factory=FindingBuffer)
    stats: checks.BoxStats = field(default_factory=checks.BoxStats)
    clean_file: bool = False
    readable: bool = True


@dataclass
class _Image:
    index: int
    sample: str | None  # path relative to PATH (None when unsafe)
    status: str  # "ok", "missing", "unsafe"
    size: tuple[float, float] | None
    size_read: bool = False


def _key(v: Any) -> Any:
    """A hashable key for an id value (lists or dicts as ids are compared by their JSON)."""
    try:
        hash(v)
        return v
    except TypeError:
        return json.dumps(v, sort_keys=True, default=str)


def _header_size(root: str, rel: str) -> tuple[float, float] | None:
    import warnings

    from PIL import Image

    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            with open_binary(os.path.join(root, rel)) as fh, Image.open(fh) as im:
                w, h = im.size
        return (float(w), float(h))
    except Exception:
        return None


def _strict(v: Any) -> Any:
    """``v`` with non-finite floats replaced by None (for strict JSON output)."""
    if isinstance(v, float) and not math.isfinite(v):
        return None
    if isinstance(v, list):
        return [_strict(x) for x in v]
    if isinstance(v, dict):
        return {k: _strict(x) for k, x in v.items()}
    return v


def _parse(task: CocoTask, res: CocoResult) -> tuple[Any, int]:
    tokens = {"n": 0}

    def constant(name: str) -> float:
        tokens["n"] += 1
        return float(name.replace("Infinity", "inf"))

    with open_binary(task.path) as f:
        raw = f.read()
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        res.findings.add(Finding(COCO_INVALID_JSON.code,
                                 f"{task.rel} is not valid UTF-8 JSON (byte {exc.start}); "
                                 "it was not read.", source=task.rel))
        return None, 0
    try:
        return json.loads(text, parse_constant=constant), tokens["n"]
    except RecursionError:
        res.findings.add(Finding(RECORD_TOO_DEEP.code,
                                 f"{task.rel} is nested deeper than Python's JSON parser can read; "
                                 "it was not read.", source=task.rel))
        return None, 0
    except json.JSONDecodeError as exc:
        res.findings.add(Finding(COCO_INVALID_JSON.code,
                                 f"{task.rel} is not valid JSON: {exc.msg} at line {exc.lineno} "
                                 f"column {exc.colno}; it was not read.", source=task.rel))
    return None, 0


def _structure_problem(doc: Any) -> str | None:
    if not isinstance(doc, dict):
        return f"the top level is a JSON {type(doc).__name__}, not an object"
    bad = [f"{k} is {'missing' if k not in doc else 'a ' + type(doc[k]).__name__}"
           for k in ("images", "annotations", "categories") if not isinstance(doc.get(k), list)]
    return "; ".join(bad) + " (each must be a list)" if bad else None


def scan_coco(task: CocoTask) -> CocoResult:
    """Check one COCO file and write its cleaned copy (runs in a worker)."""
    res = CocoResult(task.rel)
    try:
        doc, tokens = _parse(task, res)
    except OSError as exc:
        res.findings.add(Finding(COCO_INVALID_JSON.code, f"{task.rel} could not be read: {exc}", source=task.rel))
        doc, tokens = None, 0
    if doc is None:
        res.readable = False
        res.findings.apply_policy(task.options)
        return res
    problem = _structure_problem(doc)
    if problem:
        res.readable = False
        res.findings.add(Finding(COCO_BAD_STRUCTURE.code,
                                 f"{task.rel} is not a COCO file: {problem}; its boxes were not read.",
                                 source=task.rel))
        res.findings.apply_policy(task.options)
        return res
    fb = res.findings
    if tokens:
        fb.add(Finding(NON_STANDARD_JSON_NUMBER.code,
                       f"{task.rel} contains {tokens} NaN/Infinity token(s), which strict JSON parsers "
                       "reject; the clean copy writes them as null.", source=task.rel))
    categories = _categories(task, doc["categories"], fb)
    images = _images(task, doc["images"], fb)
    anns = doc["annotations"]
    res.seen = len(anns)
    th = task.options.thresholds
    boxes_per_image: dict[Any, int] = {}
    seen_ids: dict[Any, int] = {}
    box_of: dict[int, tuple[str, list[float]]] = {}
    class_of: dict[int, str] = {}
    for i, a in enumerate(anns):
        if not isinstance(a, dict):
            fb.add(Finding(MALFORMED_BOX.code, f"annotation {i} is a JSON {type(a).__name__}, not an object.",
                           sample=task.rel, source=task.rel, row=i))
            continue
        img = images.get(_key(a.get("image_id"))) if "image_id" in a else None
        sample = img.sample if img is not None and img.sample is not None else task.rel

        def add(code: str, msg: str, column: str | None = None) -> None:
            fb.add(Finding(code, f"annotation {i} (id {a.get('id')!r}): {msg}.", sample=sample,
                           source=task.rel, row=i, column=column))

        missing = [k for k in REQUIRED_KEYS if k not in a]
        if missing:
            add(MALFORMED_BOX.code, f"missing required key(s) {', '.join(missing)}")
        if "id" in a:
            k = _key(a["id"])
            if k in seen_ids:
                add(DUPLICATE_ID.code,
                    f"duplicate annotation id {a['id']!r} (first used by annotation {seen_ids[k]})", "id")
            else:
                seen_ids[k] = i
        if "image_id" in a:
            if img is None:
                add(UNKNOWN_IMAGE_ID.code,
                    f"image_id {a['image_id']!r} is not among the {len(images)} image ids", "image_id")
            else:
                boxes_per_image[_key(a["image_id"])] = boxes_per_image.get(_key(a["image_id"]), 0) + 1
                if img.status == "missing":
                    add(MISSING_IMAGE_FILE.code, f"its image {img.sample} (images[{img.index}]) does not exist")
                elif img.status == "unsafe":
                    add(UNSAFE_IMAGE_PATH.code,
                        f"its image (images[{img.index}]) has a path outside PATH; it was not opened")
        if "category_id" in a and _key(a["category_id"]) not in categories:
            add(UNKNOWN_CLASS.code,
                f"category_id {a['category_id']!r} is not among the category ids "
                f"{_preview(list(categories))}", "category_id")
        if "category_id" in a:
            cat = categories.get(_key(a["category_id"]))
            class_of[i] = cat if cat is not None else str(a["category_id"])
        if "bbox" not in a:
            continue
        box = checks.box4(a["bbox"])
        if box is None:
            add(MALFORMED_BOX.code,
                f"bbox {json.dumps(a['bbox'], default=str)[:80]} is not a list of 4 numbers", "bbox")
            continue
        size = None
        if img is not None and img.status == "ok":
            size = _image_size(task, img, fb)
        for code, msg in checks.coco_box_problems(box, size, th.box_tolerance,
                                                  th.min_box_px):
            add(code, msg, "bbox")
        box_of[i] = (class_of.get(i, "None"), box)
    for key, img in images.items():
        if boxes_per_image.get(key):
            continue
        if img.status == "missing":
            fb.add(Finding(MISSING_IMAGE_FILE.code,
                           f"image {img.sample} (images[{img.index}]) does not exist; no box refers "
                           "to it.", source=task.rel))
        elif img.status == "unsafe":
            fb.add(Finding(UNSAFE_IMAGE_PATH.code, f"images[{img.index}] names a path outside PATH; it was not opened.",
                           source=task.rel))
    listed = {img.sample for img in images.values() if img.sample}
    for rel in task.local_images:
        if rel not in listed:
            fb.add(Finding(UNLISTED_IMAGE.code, f"{rel} is not listed in the images of {task.rel}.",
                           source=task.rel))
    fb.apply_policy(task.options)
    bad = _quarantined_rows(fb)
    res.kept = res.seen - len(bad)
    kept_boxes = [box_of[i] for i in range(len(anns)) if i not in bad and i in box_of]
    res.stats = checks.BoxStats.of([c for c, _ in kept_boxes], [b[2] for _, b in kept_boxes],
                                   [b[3] for _, b in kept_boxes],
                                   [class_of[i] for i in sorted(bad) if i in class_of])
    if not bad and not tokens and not _has_bom(task.path):
        # already strict JSON with every box kept: the clean copy is the file itself
        with open_binary(task.path) as src, fs.open_output(task.clean_path) as dst:
            shutil.copyfileobj(src, dst, 1 << 20)
    else:
        clean = dict(doc)
        clean["annotations"] = [a for i, a in enumerate(anns) if i not in bad]
        try:
            text = json.dumps(clean, ensure_ascii=False, allow_nan=False)
        except ValueError:
            text = json.dumps(_strict(clean), ensure_ascii=False, allow_nan=False)
        with fs.open_output(task.clean_path) as f:  # on disk, or in the store of a remote --out
            f.write(text.encode("utf-8"))
    res.clean_file = True
    return res


def _has_bom(path: str) -> bool:
    with open_binary(path) as f:
        return f.read(3) == b"\xef\xbb\xbf"


def _quarantined_rows(fb: FindingBuffer) -> set[int]:
    """Rows of the error findings that name a sample, after the rule policy (what is quarantined)."""
    return {r for r, s, smp in zip(fb.column("row"), fb.column("severity"), fb.column("sample"))
            if s == "error" and smp is not None and r is not None}


def _preview(values: list, n: int = 8) -> str:
    shown = ", ".join(repr(v) for v in values[:n])
    return f"[{shown}{', ...' if len(values) > n else ''}]"


def _categories(task: CocoTask, cats: list, fb: FindingBuffer) -> dict[Any, str]:
    out: dict[Any, str] = {}
    for j, c in enumerate(cats):
        if not isinstance(c, dict) or "id" not in c:
            fb.add(Finding(BAD_COCO_ENTRY.code, f"categories[{j}] is not an object with an id; it was ignored.",
                           source=task.rel))
            continue
        k = _key(c["id"])
        if k in out:
            fb.add(Finding(DUPLICATE_ID.code, f"categories[{j}] repeats category id {c['id']!r}.", source=task.rel))
            continue
        out[k] = str(c.get("name", c["id"]))
    return out


def _images(task: CocoTask, imgs: list, fb: FindingBuffer) -> dict[Any, _Image]:
    out: dict[Any, _Image] = {}
    json_dir = os.path.dirname(task.rel)
    for j, e in enumerate(imgs):
        if not isinstance(e, dict) or "id" not in e or not isinstance(e.get("file_name"), str) \
                or not e["file_name"]:
            fb.add(Finding(BAD_COCO_ENTRY.code,
                           f"images[{j}] is not an object with an id and a file_name; it was ignored.",
                           source=task.rel))
            continue
        fn = e["file_name"]
        direct = relative_to_root(task.root, fn, json_dir)
        if direct is None:
            img = _Image(j, None, "unsafe", None)
        else:
            beside = relative_to_root(task.root, fn, task.image_dir) if task.image_dir != json_dir else None
            found = next((r for r in (direct, beside)
                          if r is not None and _is_file(task.root, r)), None)
            img = _Image(j, found or (beside or direct), "ok" if found else "missing", None)
        w, h = e.get("width"), e.get("height")
        if ("width" in e or "height" in e) and not all(
                checks.is_number(v) and math.isfinite(checks.to_float(v)) and v > 0 for v in (w, h)):
            fb.add(Finding(BAD_COCO_ENTRY.code,
                           f"images[{j}] has width {w!r}, height {h!r}: not positive numbers; the "
                           "size is read from the image file.", source=task.rel))
        elif "width" in e:
            img.size, img.size_read = (float(w), float(h)), True
        k = _key(e["id"])
        if k in out:
            fb.add(Finding(DUPLICATE_ID.code,
                           f"images[{j}] repeats image id {e['id']!r} (first images[{out[k].index}]); "
                           "boxes use the first.", source=task.rel))
            continue
        out[k] = img
    return out


def _image_size(task: CocoTask, img: _Image, fb: FindingBuffer) -> tuple[float, float] | None:
    if not img.size_read:
        img.size_read = True
        img.size = _header_size(task.root, img.sample)
        if img.size is None:
            fb.add(Finding(IMAGE_SIZE_UNKNOWN.code,
                           f"{img.sample} has no width/height in {task.rel} and its header cannot be "
                           "read; its boxes were not checked against the image border.",
                           source=task.rel))
    return img.size


def _remote(path: str) -> bool:
    from datasan import fs

    return fs.is_remote(path)


def _object_mentions(uri: str, keys: tuple[bytes, ...]) -> bool:
    """:func:`looks_like_coco` for an object of a store: a streaming byte scan (no map), with
    an overlap so that a key split between two reads is still found."""
    tail = max(len(k) for k in keys)
    left = set(keys)
    prev = b""
    try:
        with open_binary(uri) as f:
            while left:
                chunk = f.read(1 << 20)
                if not chunk:
                    break
                window = prev + chunk
                left = {k for k in left if window.find(k) < 0}
                prev = window[-tail:]
    except (OSError, ValueError):
        return False
    return not left


def _is_file(root: str, rel: str) -> bool:
    """Whether ``rel`` under ``root`` is a file (an object, under a store's URI)."""
    from datasan import fs

    if fs.is_remote(root):
        return fs.kind(fs.join(root, rel)) == "file"
    return os.path.isfile(os.path.join(root, rel))
