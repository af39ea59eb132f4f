"""YOLO (Ultralytics) box labels: ``labels/<...>/x.txt`` beside ``images/<...>/x.jpg``.

A dataset is one ``labels`` folder (the source); its label files are read in
chunks by :func:`scan_yolo_chunk`.  Every finding about one line carries
``sample`` = the line's image (the label file itself when it has no image),
``source`` = the label file and ``row`` = the 0-based line index; findings about
a whole file (an empty label file without image, an unreadable file) have no
sample, so only boxes are ever quarantined.
"""

from __future__ import annotations

import math
import os
import re
from dataclasses import dataclass, field

from datasan import fs
from datasan.checks.boxes import LABEL_WITHOUT_IMAGE, MALFORMED_BOX, NON_INTEGER_CLASS_ID, UNKNOWN_CLASS
from datasan.checks.files import UNREADABLE_FILE
from datasan.checks import boxes as checks
from datasan.findings import Finding, FindingBuffer
from datasan.options import ScanOptions
from datasan.sources.regular import open_binary

IMAGE_EXTS = {".jpg", ".jpeg", ".png", ".bmp", ".gif", ".tif", ".tiff", ".webp"}
CLASS_FILES = ("classes.txt", "data.yaml", "data.yml")
NOT_LABELS = {"classes.txt", "readme.txt"}


# --------------------------------------------------------------------------- layout (claim time)

def label_layout(rel: str) -> tuple[str, str, str] | None:
    """For ``a/labels/train/x.txt``: (labels dir ``a/labels``, images dir ``a/images``, key ``train/x``)."""
    parts = rel.split("/")
    if not rel.lower().endswith(".txt") or parts[-1].lower() in NOT_LABELS:
        return None
    for k in range(len(parts) - 2, -1, -1):
        if parts[k] == "labels":
            prefix = parts[:k]
            return ("/".join(prefix + ["labels"]), "/".join(prefix + ["images"]),
                    os.path.splitext("/".join(parts[k + 1:]))[0])
    return None


def image_key(rel: str, images_dir: str) -> str | None:
    """``train/x`` for ``<images_dir>/train/x.jpg``; None for files that are not images there."""
    if not rel.startswith(images_dir + "/"):
        return None
    stem, ext = os.path.splitext(rel[len(images_dir) + 1:])
    return stem if ext.lower() in IMAGE_EXTS else None


# --------------------------------------------------------------------------- class names

def parse_classes_txt(text: str) -> list[str]:
    """classes.txt: one class name a line (blank lines ignored)."""
    return [line.strip() for line in text.splitlines() if line.strip()]


def _unquote(s: str) -> str:
    s = s.strip()
    if len(s) >= 2 and s[0] == s[-1] and s[0] in "'\"":
        return s[1:-1]
    return s


def _strip_comment(line: str) -> str:
    return re.sub(r"\s+#.*$", "", line).rstrip()


def parse_yaml_names(text: str) -> list[str] | None:
    """The ``names`` entry of an Ultralytics data.yaml (list, flow list, mapping or flow mapping),
    or ``nc`` when names are absent; None when neither is there.

    A small reader for this one key, so that PyYAML is not a dependency.
    """
    lines = text.splitlines()
    for i, line in enumerate(lines):
        m = re.match(r"^names\s*:(.*)$", line)
        if not m:
            continue
        rest = _strip_comment(m.group(1)).strip()
        if rest.startswith(("[", "{")):
            close = "]" if rest[0] == "[" else "}"
            j = i
            while close not in rest and j + 1 < len(lines):
                j += 1
                rest += " " + _strip_comment(lines[j]).strip()
            body = rest[1:rest.index(close)] if close in rest else rest[1:]
            items = [x for x in (p.strip() for p in body.split(",")) if x]
            if close == "]":
                return [_unquote(x) for x in items]
            return _mapping([tuple(x.split(":", 1)) for x in items if ":" in x])
        seq, pairs = [], []
        for nxt in lines[i + 1:]:
            if not nxt.strip() or nxt.lstrip().startswith("#"):
                continue
            if not nxt[0].isspace() and not nxt.startswith("-"):
                break
            item = _strip_comment(nxt).strip()
            if item.startswith("-"):
                seq.append(_unquote(item[1:]))
            elif ":" in item:
                pairs.append(tuple(item.split(":", 1)))
        if seq:
            return seq
        if pairs:
            return _mapping(pairs)
        return []
    m = re.search(r"^nc\s*:\s*(\d+)", text, re.M)
    return [str(i) for i in range(int(m.group(1)))] if m else None


def _mapping(pairs: list) -> list[str] | None:
    try:
        d = {int(_unquote(k)): _unquote(v) for k, v in pairs}
    except ValueError:
        return None
    if not d:
        return []
    return [d.get(i, str(i)) for i in range(max(d) + 1)]


def read_class_names(path: str) -> list[str] | None:
    """Class names from classes.txt or data.yaml; None when the file holds none."""
    with open_binary(path) as f:
        text = f.read().decode("utf-8", errors="replace")
    if path.lower().endswith(".txt"):
        return parse_classes_txt(text)
    return parse_yaml_names(text)


# --------------------------------------------------------------------------- shard

@dataclass
class YoloFile:
    rel: str
    path: str
    image: str | None  # the image it labels (rel), None when there is none


@dataclass
class YoloTask:
    files: list[YoloFile]
    names: list[str] | None
    clean_root: str  # the staging clean/ folder
    options: ScanOptions


@dataclass
class YoloResult:
    seen: int = 0
    kept: int = 0
    findings: FindingBuffer = field(default_factory=FindingBuffer)
    stats: checks.BoxStats = field(default_factory=checks.BoxStats)
    clean_files: list[str] = field(default_factory=list)


def _line_problems(text: str, names: list[str] | None, tolerance: float) -> tuple[list, int | None, list]:
    """(problems, class id, [w, h]) of one label line."""
    fields = text.split()
    if len(fields) != 5:
        hint = " (a segmentation polygon?)" if len(fields) > 5 and len(fields) % 2 == 1 else ""
        return [(MALFORMED_BOX.code,
                 f"{len(fields)} fields, expected 5 (class x_center y_center width height){hint}")], \
            None, []
    found = []
    cls = None
    try:
        cls = int(fields[0])
    except ValueError:
        try:
            f0 = float(fields[0])
            if math.isfinite(f0) and f0 == int(f0):
                cls = int(f0)
        except ValueError:
            pass
        if cls is None:
            found.append((NON_INTEGER_CLASS_ID.code, f"class id {fields[0]!r} is not an integer"))
    if cls is not None and (cls < 0 or (names is not None and cls >= len(names))):
        n = f"the {len(names)} classes 0..{len(names) - 1}" if names is not None else "class ids >= 0"
        found.append((UNKNOWN_CLASS.code, f"class id {cls} is outside {n}"))
    try:
        xc, yc, w, h = (float(v) for v in fields[1:])
    except ValueError:
        bad = [v for v in fields[1:] if not _is_float(v)]
        found.append((MALFORMED_BOX.code, f"not a number: {', '.join(repr(v) for v in bad)}"))
        return found, cls, []
    found.extend(checks.yolo_box_problems(xc, yc, w, h, tolerance))
    return found, cls, [w, h]


def _is_float(v: str) -> bool:
    try:
        float(v)
        return True
    except ValueError:
        return False


def scan_yolo_chunk(task: YoloTask) -> YoloResult:
    """Check a chunk of label files and write their cleaned copies (runs in a worker)."""
    res = YoloResult()
    tol = task.options.thresholds.box_tolerance
    classes: list[str] = []
    widths: list[float] = []
    heights: list[float] = []
    dropped: list[str] = []  # classes of the quarantined boxes
    for lf in task.files:
        fb = FindingBuffer()
        try:
            with open_binary(lf.path) as f:
                raw = f.read()
        except OSError as exc:
            res.findings.add(Finding(UNREADABLE_FILE.code, f"{lf.rel} could not be read: {exc}", source=lf.rel))
            continue
        if raw.startswith(b"\xef\xbb\xbf"):
            raw = raw[3:]
        lines = raw.split(b"\n")
        sample = lf.image or lf.rel
        boxes: dict[int, tuple[bytes, int | None, list]] = {}
        for idx, line in enumerate(lines):
            line = line.rstrip(b"\r")
            if not line.strip():
                continue
            found: list = []
            cls, wh = None, []
            try:
                text = line.decode("utf-8")
            except UnicodeDecodeError as exc:
                found.append((MALFORMED_BOX.code, f"bytes that are not UTF-8 ({line[exc.start:exc.start + 4]!r})"))
            else:
                found, cls, wh = _line_problems(text, task.names, tol)
            if lf.image is None:
                found.insert(0, (LABEL_WITHOUT_IMAGE.code, "the label file has no image"))
            for code, msg in found:
                fb.add(Finding(code, f"{lf.rel} line {idx + 1}: {msg}.", sample=sample, source=lf.rel, row=idx))
            boxes[idx] = (line, cls, wh)
        if lf.image is None and not boxes:
            fb.add(Finding(LABEL_WITHOUT_IMAGE.code, f"{lf.rel} has no image (and no boxes).", source=lf.rel))
        fb.apply_policy(task.options)
        bad = {r for r, s, smp in zip(fb.column("row"), fb.column("severity"), fb.column("sample"))
               if s == "error" and smp is not None and r is not None}
        res.seen += len(boxes)
        res.kept += len(boxes) - len(bad)
        kept_lines = []
        for idx, (line, cls, wh) in boxes.items():
            if idx in bad:
                if cls is not None:
                    dropped.append(_class_name(cls, task.names))
                continue
            kept_lines.append(line)
            if wh and cls is not None:
                classes.append(_class_name(cls, task.names))
                widths.append(wh[0])
                heights.append(wh[1])
        with fs.open_output(fs.join(task.clean_root, lf.rel)) as f:
            f.write(b"".join(x + b"\n" for x in kept_lines))
        res.clean_files.append(lf.rel)
        res.findings.merge(fb)
    res.stats = checks.BoxStats.of(classes, widths, heights, dropped)
    return res


def _class_name(cls: int, names: list[str] | None) -> str:
    """The class's name from the class list, else its id as text."""
    return names[cls] if names is not None and 0 <= cls < len(names) else str(cls)
