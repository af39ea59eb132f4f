"""What the box checks mean, independent of the label format that carries the boxes.

Each function looks at one box and returns its problems as ``(code, message)``
pairs; the COCO and YOLO readers (``datasan/sources/boxes``) decide what a box
is, which sample it belongs to and how its findings are quarantined.
"""

from __future__ import annotations

from datasan.checks.rule import Rule

import math
from dataclasses import dataclass, field
from typing import Any

from datasan.stats import Moments, merge_counts


# ------------------------------------------------------------------ rules of this family
COCO_INVALID_JSON = Rule(
    "DS320", "coco-invalid-json", "error",
    "A COCO annotation file is not valid JSON.",
    what="A .json file that names images, annotations and categories but does not parse.",
    why="pycocotools and torchvision's CocoDetection raise on it before the first batch; "
    "nothing in the file can be used.",
    fix="Re-export the annotations; a truncated download or a hand edit is the usual cause.",
    example='{"images": [], "annotations": [',
)
COCO_BAD_STRUCTURE = Rule(
    "DS321", "coco-bad-structure", "error",
    "A COCO file's top level is wrong (not an object, or images/annotations/categories not lists).",
    what="The top-level JSON value and the types of its images, annotations and categories "
    "entries. One finding per file; its boxes are not read.",
    why="COCO loaders index these lists directly and fail with a KeyError or TypeError.",
    fix="Fix the exporter so that it writes the three lists.",
    example='{"images": {}, "annotations": [], "categories": []}',
)
NON_STANDARD_JSON_NUMBER = Rule(
    "DS322", "non-standard-json-number", "warning",
    "A JSON file uses NaN / Infinity tokens, which strict JSON parsers reject.",
    what="The Python-style tokens NaN, Infinity and -Infinity anywhere in a COCO file "
    "(Python's json module writes and accepts them; JSON does not).",
    why="Another loader (JSON.parse, orjson, simdjson, Go, Rust) rejects the whole file; "
    "Python silently yields NaN coordinates.",
    fix="Use the cleaned file in clean/ (strict JSON, non-finite values as null outside "
    "quarantined boxes) or fix the exporter (json.dump(..., allow_nan=False)).",
    example='"bbox": [10, NaN, 20, 30]',
)
DEGENERATE_BOX = Rule(
    "DS323", "degenerate-box", "error",
    "A box has width or height <= 0.",
    what="COCO bbox (x, y, w, h) and YOLO 'class xc yc w h' lines whose w or h is zero "
    "or negative.",
    why="Box regression encodes log(w / prior_w): a zero width gives -inf and the loss "
    "turns NaN (the textbook cause of a NaN box loss); IoU divides by zero area.",
    fix="Drop the box or fix its coordinates (often x2/y2 written where w/h belong).",
    example="bbox [10, 10, 0, 25]",
)
NON_FINITE_BOX = Rule(
    "DS324", "non-finite-box", "error",
    "A box coordinate is NaN or infinite.",
    what="Every coordinate of every box (COCO bbox, YOLO line).",
    why="One NaN coordinate makes the box loss NaN and, after one step, every weight NaN.",
    fix="Drop the box and find the division that produced it in the export.",
    example="0 0.5 nan 0.2 0.3",
)
BOX_OUTSIDE_IMAGE = Rule(
    "DS325", "box-outside-image", "error",
    "A box lies outside its image (beyond a small tolerance), or YOLO values leave [0, 1].",
    what="COCO boxes whose edges pass the image border by more than "
    "thresholds.box_tolerance of the image side (at least 1 px); image size from the "
    "JSON or, when missing, the image header. YOLO values outside [0, 1] and boxes whose "
    "edges pass 0 or 1 by more than the tolerance.",
    why="Ultralytics drops the whole label file when a value is outside [0, 1]; other "
    "pipelines clip the box to a sliver or crash in augmentation (albumentations raises).",
    fix="Clip boxes that only overlap the border slightly; drop the others and check the "
    "export's coordinate convention (pixels vs normalized, xyxy vs xywh).",
    example="bbox [600, 10, 100, 50] in a 640x480 image",
)
UNKNOWN_CLASS = Rule(
    "DS326", "unknown-class", "error",
    "A box's class is not in the class list.",
    what="COCO category_id not among the categories' ids; YOLO class id negative or not "
    "below the number of names in classes.txt / data.yaml.",
    why="A class id past the head's size raises a device-side assert on CUDA, or indexes "
    "garbage; an unknown category is silently dropped by some loaders.",
    fix="Add the category, or map the box to the right class id.",
    example="category_id 99 with categories 1..3",
)
NON_INTEGER_CLASS_ID = Rule(
    "DS327", "non-integer-class-id", "error",
    "A YOLO class id is not an integer.",
    what="The first field of a YOLO line: '1.5', 'car' or '' are not class ids.",
    why="Ultralytics casts with int(float(x)), silently turning 1.5 into class 1; other "
    "loaders raise.",
    fix="Write the integer index of the class (see classes.txt).",
    example="car 0.5 0.5 0.2 0.2",
)
MALFORMED_BOX = Rule(
    "DS328", "malformed-box", "error",
    "A box record cannot be read: wrong field count, not a number, missing keys, bad bytes.",
    what="COCO annotations that are not objects, lack id, image_id, category_id or bbox, or "
    "whose bbox is not a list of 4 numbers; YOLO lines without exactly 5 fields, with "
    "unparseable numbers or with bytes that are not UTF-8.",
    why="Collate functions need a fixed-length numeric box; these records raise in a "
    "DataLoader worker hours into a run.",
    fix="Repair or drop the record; polygons (segmentation labels) belong in a "
    "segmentation dataset.",
    example="0 0.5 0.5 0.2",
)
UNKNOWN_IMAGE_ID = Rule(
    "DS329", "unknown-image-id", "error",
    "A COCO annotation's image_id is not among the images.",
    what="Each annotation's image_id against the ids of the images list.",
    why="The box has no image: pycocotools raises a KeyError, other loaders drop it.",
    fix="Add the image entry, or drop the annotation.",
    example="image_id 77 with images 1..10",
)
MISSING_IMAGE_FILE = Rule(
    "DS330", "missing-image-file", "error",
    "An image listed in a COCO file does not exist.",
    what="Each image's file_name, relative to the JSON's folder or an images/ folder "
    "beside it. Every box on such an image is quarantined (one finding per box); an "
    "image with no boxes gives one finding about the file (sample empty).",
    why="The loader raises FileNotFoundError in a worker process mid-epoch.",
    fix="Restore the image, or remove the image entry and its annotations.",
    example='"file_name": "img_404.jpg" with no such file',
)
UNSAFE_IMAGE_PATH = Rule(
    "DS331", "unsafe-image-path", "error",
    "A label file names an image path that is absolute or leaves PATH; it was not opened.",
    what="COCO file_name values that are absolute or climb out with '..'.",
    why="Such paths read files that are not part of the dataset (or fail on another machine).",
    fix="Make file_name relative to the dataset folder.",
    example='"file_name": "../../etc/passwd"',
)
LABEL_WITHOUT_IMAGE = Rule(
    "DS332", "label-without-image", "error",
    "A YOLO label file has no image.",
    what="labels/<...>/x.txt for which no images/<...>/x.<image extension> exists. Every box "
    "in it is quarantined (sample = the label file); an empty one gives one finding.",
    why="Its boxes never reach training, and it usually means images were renamed or lost.",
    fix="Restore the image or remove the label file.",
    example="labels/train/img_9.txt without images/train/img_9.jpg",
)
UNLISTED_IMAGE = Rule(
    "DS333", "unlisted-image", "warning",
    "An image file beside a COCO file is not listed in its images.",
    what="Image files in the folders that the COCO file's images live in, but not named by "
    "any of its image entries.",
    why="The image is silently left out of training (or was meant to be a negative).",
    fix="Add an image entry (with no annotations for a background image) or remove it.",
    example="images/img_extra.jpg, not in images[]",
)
DUPLICATE_ID = Rule(
    "DS334", "duplicate-id", "warning",
    "Two COCO annotations, images or categories share an id.",
    what="Repeated ids in the annotations, images and categories lists.",
    why="pycocotools keeps only the last entry per id: evaluation silently loses boxes, "
    "and image_id lookups pick the wrong image.",
    fix="Renumber the ids uniquely.",
    example='two annotations with "id": 7',
)
TINY_BOX = Rule(
    "DS335", "tiny-box", "warning",
    "A COCO box is under 1 px wide or high.",
    what="Boxes with 0 < w < thresholds.min_box_px or 0 < h < thresholds.min_box_px (pixels).",
    why="Sub-pixel boxes vanish at the feature stride, give near-degenerate log(w) "
    "targets and are usually annotation slips.",
    fix="Drop the box or check its units.",
    example="bbox [10, 10, 0.4, 12]",
)
BACKGROUND_IMAGES = Rule(
    "DS336", "background-images", "info",
    "Images in a YOLO set have no label file (background images).",
    what="Images under images/ with no matching labels/ file; one finding per dataset.",
    why="Legal (Ultralytics treats them as negatives), but a large number can mean the "
    "labels were written to the wrong folder.",
    fix="Nothing, if the images are meant as negatives.",
    example="images/train/bg_001.jpg without labels/train/bg_001.txt",
)
BAD_COCO_ENTRY = Rule(
    "DS337", "bad-coco-entry", "warning",
    "A COCO image or category entry is malformed and was ignored.",
    what="Image entries that are not objects or lack id / file_name, and category entries "
    "that are not objects or lack id; also image width/height that are not positive numbers.",
    why="Loaders raise on them, or use a wrong image size when rescaling boxes.",
    fix="Repair the entry in the exporter.",
    example='{"id": 3}  (an image without file_name)',
)
IMAGE_SIZE_UNKNOWN = Rule(
    "DS338", "image-size-unknown", "warning",
    "An image's size is neither in the label file nor readable from its header.",
    what="COCO images without width/height whose file header cannot be read; the "
    "out-of-image check is skipped for their boxes.",
    why="Without the size, boxes outside the image cannot be found.",
    fix="Add width and height to the image entry, or fix the image file.",
    example='{"id": 1, "file_name": "broken.jpg"}',
)
NO_CLASS_LIST = Rule(
    "DS339", "no-class-list", "info",
    "A YOLO set has no classes.txt or data.yaml names; class ids were checked only for sign.",
    what="The labels folder, its parents up to PATH, for classes.txt, data.yaml or data.yml "
    "with a names entry.",
    why="Without the class list, ids past the model's head cannot be found.",
    fix="Add classes.txt (one name a line) or data.yaml with names.",
    example="yolo/labels/... with no classes.txt",
)


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
        return [(NON_FINITE_BOX.code, f"non-finite coordinate {', '.join(bad)}")]
    return []


def coco_box_problems(bbox: list[float], size: tuple[float, float] | None, tolerance: float,
                      min_px: float) -> list[Problem]:
    """Problems of a COCO ``[x, y, w, h]`` box (pixels) in an image of ``size`` (w, h) or unknown size."""
    found = nonfinite_problems(bbox, ("x", "y", "w", "h"))
    if found:
        return found
    x, y, w, h = bbox
    if w <= 0 or h <= 0:
        found.append((DEGENERATE_BOX.code, f"degenerate box: width {_fmt(w)}, height {_fmt(h)} (must be > 0)"))
    elif w < min_px or h < min_px:
        found.append((TINY_BOX.code, f"tiny box: {_fmt(w)} x {_fmt(h)} px (under {_fmt(min_px)} px)"))
    if size is not None:
        iw, ih = size
        tx, ty = max(1.0, tolerance * iw), max(1.0, tolerance * ih)
        if x < -tx or y < -ty or x + w > iw + tx or y + h > ih + ty:
            found.append((BOX_OUTSIDE_IMAGE.code,
                          f"box [{_fmt(x)}, {_fmt(y)}, {_fmt(w)}, {_fmt(h)}] lies outside the "
                          f"{_fmt(iw)}x{_fmt(ih)} image (tolerance {tx:g} x {ty:g} px)"))
    return found


def yolo_box_problems(xc: float, yc: float, w: float, h: float, tolerance: float) -> list[Problem]:
    """Problems of a normalized YOLO box (center x, center y, width, height)."""
    vals = [xc, yc, w, h]
    found = nonfinite_problems(vals, ("x_center", "y_center", "width", "height"))
    if found:
        return found
    if w <= 0 or h <= 0:
        found.append((DEGENERATE_BOX.code, f"degenerate box: width {_fmt(w)}, height {_fmt(h)} (must be > 0)"))
    out = [f"{n}={_fmt(v)}" for n, v in zip(("x_center", "y_center", "width", "height"), vals)
           if v < 0 or v > 1]
    if out:
        found.append((BOX_OUTSIDE_IMAGE.code, f"normalized coordinate outside [0, 1]: {', '.join(out)}"))
    elif w > 0 and h > 0:
        x0, x1, y0, y1 = xc - w / 2, xc + w / 2, yc - h / 2, yc + h / 2
        if x0 < -tolerance or y0 < -tolerance or x1 > 1 + tolerance or y1 > 1 + tolerance:
            found.append((BOX_OUTSIDE_IMAGE.code,
                          f"box edges x {x0:.4g}..{x1:.4g}, y {y0:.4g}..{y1:.4g} leave the image "
                          f"(tolerance {tolerance:g})"))
    return found


#: classes whose boxes get distributions of their own; a source with more keeps only the
#: counts per class (per-class sketches would grow with the number of classes)
CLASS_CAP = 1000


@dataclass
class ClassBoxes:
    """Moments (with sketches) of the width, height, area and aspect of one class's kept
    boxes, and how many of its boxes were quarantined."""

    width: Moments = field(default_factory=Moments)
    height: Moments = field(default_factory=Moments)
    area: Moments = field(default_factory=Moments)
    aspect: Moments = field(default_factory=Moments)
    quarantined: int = 0

    @classmethod
    def of(cls, w, h) -> "ClassBoxes":
        """The distributions of boxes of widths ``w`` and heights ``h`` (numpy float64 arrays)."""
        import numpy as np

        with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
            return cls(Moments.of(w), Moments.of(h), Moments.of(w * h), Moments.of(w / h))

    def merge(self, other: "ClassBoxes") -> "ClassBoxes":
        """Combine with ``other`` in place and return self."""
        for name in ("width", "height", "area", "aspect"):
            getattr(self, name).merge(getattr(other, name))
        self.quarantined += other.quarantined
        return self

    def as_json(self) -> dict[str, Any]:
        """The stats.json entry of one class."""
        return {"count": self.width.count, "quarantined": self.quarantined,
                **{name: getattr(self, name).as_json() for name in ("width", "height", "area", "aspect")}}


@dataclass
class BoxStats:
    """Mergeable statistics of the kept boxes of one label source: counts per class,
    moments of width, height and aspect (width / height), and per class (up to
    CLASS_CAP classes) the same with area and the count of quarantined boxes."""

    classes: dict[str, int] = field(default_factory=dict)
    width: Moments = field(default_factory=Moments)
    height: Moments = field(default_factory=Moments)
    aspect: Moments = field(default_factory=Moments)
    #: None once the classes seen (kept or quarantined) exceed CLASS_CAP: the same in any
    #: merge order, since the union of the pieces exceeds it exactly when the whole does
    per_class: dict[str, ClassBoxes] | None = field(default_factory=dict)

    @classmethod
    def of(cls, classes: list[str], widths: list[float], heights: list[float],
           quarantined: list[str] = ()) -> "BoxStats":
        """Statistics of the kept boxes given as parallel lists, and of the classes of the
        quarantined boxes whose class could be read."""
        import numpy as np

        st = cls()
        for c in classes:
            st.classes[c] = st.classes.get(c, 0) + 1
        w = np.asarray(widths, dtype=np.float64)
        h = np.asarray(heights, dtype=np.float64)
        st.width, st.height = Moments.of(w), Moments.of(h)
        with np.errstate(divide="ignore", invalid="ignore"):
            st.aspect = Moments.of(w / h) if len(w) else Moments()
        st.per_class = _per_class(classes, w, h, quarantined)
        return st

    def merge(self, other: "BoxStats") -> "BoxStats":
        """Combine with ``other`` in place and return self."""
        merge_counts(self.classes, other.classes)
        self.width.merge(other.width)
        self.height.merge(other.height)
        self.aspect.merge(other.aspect)
        if self.per_class is None or other.per_class is None:
            self.per_class = None
        else:
            for name, cb in other.per_class.items():
                self.per_class.setdefault(name, ClassBoxes()).merge(cb)
            if len(self.per_class) > CLASS_CAP:
                self.per_class = None
        return self

    def as_json(self, units: str) -> dict[str, Any]:
        """The stats.json ``boxes`` entry."""
        out = {"count": self.width.count, "units": units, "width": self.width.as_json(),
               "height": self.height.as_json(), "aspect": self.aspect.as_json()}
        if self.per_class is None:
            out["per_class_over_cap"] = CLASS_CAP
        else:
            out["per_class"] = {name: self.per_class[name].as_json() for name in sorted(self.per_class)}
        return out


def _per_class(classes: list[str], w, h, quarantined) -> dict[str, ClassBoxes] | None:
    """{class: ClassBoxes} of parallel kept-box lists plus quarantined classes; None over CLASS_CAP."""
    import numpy as np

    names = sorted(set(classes) | set(quarantined))
    if len(names) > CLASS_CAP:
        return None
    out = {name: ClassBoxes() for name in names}
    if classes:
        labels = np.asarray(classes, dtype=object)
        order = np.argsort(labels, kind="stable")
        sorted_labels = labels[order]
        starts = np.flatnonzero(np.r_[True, sorted_labels[1:] != sorted_labels[:-1]])
        for lo, hi in zip(starts, np.r_[starts[1:], len(order)]):
            pick = order[lo:hi]
            out[sorted_labels[lo]] = ClassBoxes.of(w[pick], h[pick])
    for name in quarantined:
        out[name].quarantined += 1
    return out
