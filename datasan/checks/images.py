"""What the image checks mean (DS2xx) and the image-label checks (DS301-DS307).

Each function looks at small facts and returns or yields findings; none of
them touches a file.  The per-image ones are called in the workers by
``datasan/sources/images/decode.py``, where the pixels are (facts: a decode
failure, the header, the pixel shape); the dataset-level ones by the image
kind over facts gathered from every shard (mode, content hash, label rows).
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Callable, Iterable, Iterator

from datasan.checks.rule import Rule
from datasan.findings import Finding

if TYPE_CHECKING:  # pragma: no cover
    from datasan.options import ScanOptions
    from datasan.sources.images.layout import LabelRow


# ------------------------------------------------------------------ rules of this family
UNDECODABLE_IMAGE = Rule(
    "DS201", "undecodable-image", "error",
    "An image file cannot be fully decoded.",
    what="Every image is opened and fully decoded (not just `verify()`ed): zero-byte "
    "files, text or garbage with an image extension, truncated files, corrupt "
    "compressed data and formats Pillow cannot decode.",
    why="The DataLoader worker that reaches the file raises (or, with "
    "LOAD_TRUNCATED_IMAGES, silently trains on grey padding) hours into a run.",
    fix="Re-export or re-download the image, or remove it.",
    example="cats/0007.jpg: 'image file is truncated (12 bytes not processed)'",
)
DECOMPRESSION_BOMB = Rule(
    "DS202", "decompression-bomb", "error",
    "An image declares more pixels than the limit (Pillow's MAX_IMAGE_PIXELS by default).",
    what="The width x height in the image header, read without decoding the pixels, "
    "compared with thresholds.max_image_pixels (default 89,478,485, Pillow's).",
    why="Decoding it allocates gigabytes: the worker is OOM-killed, or Pillow raises "
    "DecompressionBombError in the middle of training.",
    fix="Remove the file or resize it offline; raise the limit only for data you trust.",
    example="huge.png: 100000 x 100000 pixels",
)
NON_FINITE_PIXEL = Rule(
    "DS203", "non-finite-pixel", "error",
    "A float image holds NaN or infinite pixels.",
    what="Float images (TIFF mode F): every pixel is checked for NaN, +Inf and -Inf.",
    why="One NaN pixel makes the forward pass, the loss and then every weight NaN.",
    fix="Fix the export (masked or no-data values) or drop the image.",
    example="depth/0003.tif: 12 NaN pixels",
)
CONSTANT_IMAGE = Rule(
    "DS204", "constant-image", "warning",
    "Every pixel of an image has the same value.",
    what="Images whose every pixel is equal (blank, all-black, a single colour).",
    why="Per-image standardization divides by a zero std (NaN); blank frames are "
    "usually capture or export failures that teach the model nothing.",
    fix="Check the capture/export; drop the image if it is a failure.",
    example="frames/0100.png: every pixel is (0, 0, 0)",
)
TINY_IMAGE = Rule(
    "DS205", "tiny-image", "warning",
    "An image is smaller than thresholds.min_image_side pixels on a side (8 by default).",
    what="Width or height below the minimum side.",
    why="Random crops and resizes fail or upsample noise; often a thumbnail or icon "
    "saved by mistake.",
    fix="Remove it or replace it with the full-size image.",
    example="cats/0001.png: 1 x 1 pixels",
)
EXTREME_ASPECT_RATIO = Rule(
    "DS206", "extreme-aspect-ratio", "warning",
    "An image's longer side is more than thresholds.max_aspect (10) times its shorter side.",
    what="The ratio of the longer to the shorter side.",
    why="Resizing to a square squashes it beyond recognition; usually a banner, a "
    "strip of frames or a wrongly reshaped export.",
    fix="Check the image; crop or drop it.",
    example="cats/banner.png: 400 x 20 pixels (aspect 20.0)",
)
INCONSISTENT_IMAGE_MODE = Rule(
    "DS207", "inconsistent-image-mode", "warning",
    "An image's mode or channel count differs from most images of its dataset.",
    what="The Pillow mode (L, RGB, RGBA, CMYK, I;16, F, ...) of each image, compared "
    "with the most common mode of its dataset folder.",
    why="A grayscale or RGBA image among RGB ones breaks batching (tensor shapes differ) "
    "unless every loader converts; 16-bit images scale differently.",
    fix="Convert the image to the dataset's mode, or convert in the loader "
    "(`Image.convert('RGB')`).",
    example="cats/0004.png is L (1 channel) among RGB images",
)
DUPLICATE_IMAGE = Rule(
    "DS208", "duplicate-image", "warning",
    "Two image files have identical content: the same bytes, or the same pixels in another encoding.",
    what="A content hash (BLAKE2b) of every file's bytes, within each dataset folder; images "
    "whose size, exact pixel sums and perceptual hashes agree are decoded again and compared "
    "by a hash of their pixels, so a PNG copy of a JPEG is a duplicate too.",
    why="Duplicates weight some samples twice and, across train/val/test splits, leak "
    "test data into training and inflate the scores.",
    fix="Keep one copy (and only in one split).",
    example="train/cat/1.png is identical to val/cat/9.png",
)
CONFLICTING_DUPLICATE_IMAGE = Rule(
    "DS209", "conflicting-duplicate-image", "warning",
    "Identical image files carry different labels.",
    what="Identical images (same bytes or same pixels, see DS208) whose labels differ; the "
    "message names both.",
    why="The model is asked to predict two classes for the same input: label noise "
    "that caps accuracy and confuses evaluation.",
    fix="Decide the right label and drop the other copy.",
    example="cat/1.png and dog/7.png are identical",
)
IMAGE_EXTENSION_MISMATCH = Rule(
    "DS210", "image-extension-mismatch", "warning",
    "An image's file extension disagrees with its real format.",
    what="The format Pillow detects from the file's bytes, compared with its "
    "extension (a PNG named .jpg, a JPEG without an extension).",
    why="Loaders that choose a decoder by extension fail, and tools that filter by "
    "extension (ImageFolder) skip the file silently.",
    fix="Rename the file to match its format, or re-encode it.",
    example="cats/0005.jpg is a PNG file",
)
MISSING_IMAGE_LABEL = Rule(
    "DS301", "missing-image-label", "error",
    "An image has no label.",
    what="In a labelled image set: an image with no row in the labels table, an "
    "empty or NaN label, or a file outside any class folder of an ImageFolder tree.",
    why="The loader raises a KeyError for it, or a NaN/empty label becomes a class "
    "of its own.",
    fix="Label the image, or move it out of the labelled set.",
    example="cats_and_dogs/stray.jpg sits beside the class folders",
)
LABEL_NAMES_MISSING_FILE = Rule(
    "DS302", "label-names-missing-file", "error",
    "A label row names an image that does not exist.",
    what="Every path in a labels table, resolved against the table's folder: a file "
    "that does not exist, or is not an image of the set. Reported with source = the "
    "table and row = its 0-based data row.",
    why="The Dataset's __getitem__ raises FileNotFoundError when it reaches the row.",
    fix="Restore the image or drop the row.",
    example="labels.csv row 12: img_999.png does not exist",
)
LABEL_PATH_OUTSIDE_ROOT = Rule(
    "DS303", "label-path-outside-root", "error",
    "A label row names a path outside the scanned folder (absolute or with ..).",
    what="Paths in a labels table that are absolute or leave PATH; datasan never opens them.",
    why="The dataset silently depends on files elsewhere (or reads /etc/passwd as an "
    "image): it is not reproducible and may be unsafe.",
    fix="Copy the image into the dataset and use a relative path.",
    example="labels.csv row 3: ../../secret.png",
)
IMAGE_LABEL_OUT_OF_RANGE = Rule(
    "DS304", "image-label-out-of-range", "error",
    "A numeric class id is negative or not below --num-classes.",
    what="Integer labels (from a labels table or numeric class folders) below 0 or at "
    "or above num_classes when it is given.",
    why="cross_entropy raises a device-side assert on CUDA, an IndexError elsewhere.",
    fix="Map the label into 0..num_classes-1, or fix --num-classes.",
    example="label = -1",
)
DISTANT_IMAGE_LABEL = Rule(
    "DS305", "distant-image-label", "error",
    "A numeric class id lies far above all the others.",
    what="Integer labels past a large gap above the bulk and rare (8000 among 0..9), "
    "same rule as DS104.",
    why="The output head is sized by the largest id (or crashes); usually a sentinel value.",
    fix="Fix the label (a typo or sentinel) or drop the image.",
    example="label = 8000 among 0..9",
)
UNKNOWN_IMAGE_CLASS = Rule(
    "DS306", "unknown-image-class", "error",
    "A label is not among the class names given in the options.",
    what="With `classes` set in the options, every label (table value or class folder "
    "name) must be one of them.",
    why="A misspelt class folder ('dgo') becomes a class of its own and shifts every "
    "class index after it.",
    fix="Rename the folder / fix the label, or add the class to the list.",
    example="dgo/0001.jpg with classes [cat, dog]",
)
CONFLICTING_IMAGE_LABELS = Rule(
    "DS307", "conflicting-image-labels", "error",
    "A labels table gives the same image two different labels.",
    what="Two or more rows of the labels tables that resolve to the same image with "
    "different labels.",
    why="Which label the loader uses depends on row order: label noise at best.",
    fix="Keep one row per image.",
    example="labels.csv rows 3 and 9 both name a.png, as cat and dog",
)



# ------------------------------------------------------------------ one image (in the workers)

#: messages of DS201 by the stage where the image failed
_UNDECODABLE = {
    "read": "{s} could not be read: {why}.",
    "empty": "{s} is empty (0 bytes).",
    "identify": "{s} cannot be decoded: {why}.",
    "decode": "{s} cannot be fully decoded: {why}.",
    "frames": "{s}: its frames cannot be counted: {why}.",
    "frame": "{s} cannot be fully decoded: frame {frame} of {frames}: {why}.",
}


@dataclass(frozen=True)
class DecodeFailure:
    """Why an image file could not be used.  ``stage``: "read" (the file), "empty",
    "identify" (no header Pillow can open), "decode" (the pixel data), "frames"
    (counting its frames) or "frame" (frame ``frame`` of ``frames``)."""

    sample: str
    stage: str
    why: str = ""
    frame: int = 0
    frames: int = 0


def undecodable_image(failure: DecodeFailure) -> Finding:
    """DS201 for an image that cannot be read or fully decoded."""
    f = failure
    message = _UNDECODABLE[f.stage].format(s=f.sample, why=f.why, frame=f.frame, frames=f.frames)
    return Finding(UNDECODABLE_IMAGE.code, message, sample=f.sample, source=f.sample)


@dataclass(frozen=True)
class ImageHeader:
    """What an image's header says, before its pixels are decoded."""

    sample: str
    format: str
    extension: str  # lower case, with the dot; "" when the name has none
    width: int
    height: int


def extension_mismatch(header: ImageHeader, formats_of_extension: tuple[str, ...]) -> Finding | None:
    """DS210 when the detected format is not one the file's extension may hold."""
    h = header
    if not h.format or h.format in formats_of_extension:
        return None
    return Finding(IMAGE_EXTENSION_MISMATCH.code,
                   f"{h.sample} is a {h.format} file but its extension is {h.extension or '(none)'}.",
                   sample=h.sample, source=h.sample)


def decompression_bomb(header: ImageHeader, max_pixels: int, frames: int = 1) -> Finding | None:
    """DS202 when the image's pixels over all its ``frames`` pass ``max_pixels``."""
    s, w, h = header.sample, header.width, header.height
    if frames * w * h <= max_pixels:
        return None
    if frames > 1:
        message = (f"{s} has {frames} frames of {w} x {h} = {frames * w * h:,} pixels, over the limit "
                   f"of {max_pixels:,}; its later frames were not decoded.")
    else:
        message = f"{s} declares {w} x {h} = {w * h:,} pixels, over the limit of {max_pixels:,}; it was not decoded."
    return Finding(DECOMPRESSION_BOMB.code, message, sample=s, source=s)


def non_finite_pixels(sample: str, nan: int, inf: int) -> Finding | None:
    """DS203 when a float image holds ``nan`` NaN or ``inf`` infinite pixels."""
    if not nan and not inf:
        return None
    return Finding(NON_FINITE_PIXEL.code, f"{sample} has {nan} NaN and {inf} infinite pixels.",
                   sample=sample, source=sample)


@dataclass(frozen=True)
class PixelFacts:
    """The size of a decoded image and whether every pixel has the same value."""

    sample: str
    width: int
    height: int
    constant: bool


def pixel_findings(facts: PixelFacts, min_side: int, max_aspect: float) -> list[Finding]:
    """DS204 (constant image), DS205 (tiny) or else DS206 (extreme aspect ratio)."""
    s, w, h = facts.sample, facts.width, facts.height
    found = []
    if facts.constant:
        found.append(Finding(CONSTANT_IMAGE.code, f"{s}: every pixel has the same value.", sample=s, source=s))
    if min(w, h) < min_side:
        found.append(Finding(TINY_IMAGE.code, f"{s} is {w} x {h} pixels, below the minimum side of {min_side}.",
                             sample=s, source=s))
    elif max(w, h) / max(1, min(w, h)) > max_aspect:
        found.append(Finding(EXTREME_ASPECT_RATIO.code, f"{s} is {w} x {h} pixels (aspect "
                             f"{max(w, h) / min(w, h):.1f}, over {max_aspect:g}).", sample=s, source=s))
    return found


# ------------------------------------------------------------------ labels of a set

@dataclass
class ImageLabels:
    """The label of every image of a set (None: unlabelled), the (table, row) each label
    was read from, and the findings about the labels."""

    labels: dict[str, str | None] = field(default_factory=dict)
    where: dict[str, tuple[str, int | None]] = field(default_factory=dict)
    findings: list[Finding] = field(default_factory=list)


def folder_labels(names: list[str], label_of: Callable[[str], str | None], tree: str) -> ImageLabels:
    """Labels of an ImageFolder tree: each image's class folder (``label_of``); DS301 for
    an image outside every class folder."""
    out = ImageLabels()
    for smp in names:
        lab = out.labels[smp] = label_of(smp)
        if lab is None:
            out.findings.append(Finding(MISSING_IMAGE_LABEL.code, f"{smp} lies outside every class folder of "
                                        f"the ImageFolder tree {tree}.", sample=smp, source=smp))
    return out


def table_labels(rows: Iterable["LabelRow"], names: list[str], tables: list[str]) -> ImageLabels:
    """Labels from the rows of labels tables: DS302 for a row naming no image of the set,
    DS303 for a path outside PATH, DS307 for an image labelled twice differently and
    DS301 for an image with an empty label or no row."""
    out = ImageLabels()
    labels, add = out.labels, out.findings.append
    samples = set(names)
    first: dict[str, tuple[str, int]] = {}
    for row in rows:
        where = f"{row.table} row {row.row}"
        if row.rel is None:
            if not row.raw:
                add(Finding(LABEL_NAMES_MISSING_FILE.code, f"{where} has an empty path.",
                            source=row.table, row=row.row))
            else:
                add(Finding(LABEL_PATH_OUTSIDE_ROOT.code, f"{where} names {row.raw!r}, a path outside PATH "
                            "(absolute or through '..'); it was not opened.", source=row.table, row=row.row))
            continue
        if row.rel not in samples:
            add(Finding(LABEL_NAMES_MISSING_FILE.code, f"{where} names {row.raw!r}, which is not an image file "
                        "of this dataset (it does not exist or is no image).", source=row.table, row=row.row))
            continue
        if row.rel in first:
            if row.label != labels[row.rel]:
                t0, r0 = first[row.rel]
                add(Finding(CONFLICTING_IMAGE_LABELS.code, f"{row.rel} is labelled {labels[row.rel]!r} in {t0} "
                            f"row {r0} and {row.label!r} in {where}.", sample=row.rel, source=row.table,
                            row=row.row))
            continue
        first[row.rel] = out.where[row.rel] = (row.table, row.row)
        labels[row.rel] = row.label
        if row.label is None:
            add(Finding(MISSING_IMAGE_LABEL.code, f"{row.rel} has an empty label in {where}.",
                        sample=row.rel, source=row.table, row=row.row))
    for smp in names:
        if smp not in first:
            labels[smp] = None
            add(Finding(MISSING_IMAGE_LABEL.code, f"{smp} has no row in {', '.join(tables)}.",
                        sample=smp, source=tables[0] if tables else smp))
    return out


# ------------------------------------------------------------------ the whole set

def mode_outliers(modes: dict[str, str]) -> Iterator[Finding]:
    """DS207 for every image whose mode differs from the most common mode of its set."""
    if len(modes) < 2:
        return
    counts = Counter(modes.values())
    common, n = sorted(counts.items(), key=lambda kv: (-kv[1], kv[0]))[0]
    if n == len(modes):
        return
    for sample, mode in modes.items():
        if mode != common:
            yield Finding(INCONSISTENT_IMAGE_MODE.code,
                          f"{sample} is {mode} ({_channels(mode)} channel(s)) among {n} of "
                          f"{len(modes)} images that are {common}.", sample=sample, source=sample)


def _channels(mode: str) -> int:
    return {"1": 1, "L": 1, "P": 1, "I": 1, "F": 1, "LA": 2, "La": 2, "PA": 2, "RGB": 3, "YCbCr": 3,
            "LAB": 3, "HSV": 3, "RGBA": 4, "RGBa": 4, "RGBX": 4, "CMYK": 4}.get(mode, 1)


def channels_of(mode: str) -> int:
    """The number of bands of a Pillow mode."""
    return _channels(mode)


def duplicates(digests: Iterable[tuple[str, bytes, str | None, bytes]]) -> Iterator[Finding]:
    """DS208 for each image identical to an earlier one; DS209 when their labels differ.

    Each item: (sample, identity key, label, byte digest); the key is the byte
    digest, or a hash of the pixels for images that may be another encoding of
    the same pixels.
    """
    first: dict[bytes, tuple[str, str | None, bytes]] = {}
    for sample, key, label, digest in digests:
        seen = first.get(key)
        if seen is None:
            first[key] = (sample, label, digest)
            continue
        other, other_label, other_digest = seen
        how = "byte-identical to" if digest == other_digest else "pixel-identical (another encoding) to"
        if label != other_label and label is not None and other_label is not None:
            yield Finding(CONFLICTING_DUPLICATE_IMAGE.code,
                          f"{sample} (label {label!r}) is {how} {other} (label {other_label!r}).",
                          sample=sample, source=sample)
        else:
            yield Finding(DUPLICATE_IMAGE.code, f"{sample} is {how} {other}.", sample=sample, source=sample)


def _as_int(label: str) -> int | None:
    t = label.strip()
    if t.lstrip("-").isdigit():
        return int(t)
    return None


def label_value_findings(labels: dict[str, str], options: ScanOptions, source_of: dict[str, tuple[str, int | None]]
                         ) -> Iterator[Finding]:
    """DS304 / DS305 for integer class ids, DS306 for names outside ``options.classes``.

    ``labels`` maps each labelled sample to its label; ``source_of`` gives the
    (source, row) a label was read from.
    """
    from datasan.checks.tables.target import distant_class_ids

    if not labels:
        return
    ints = {s: _as_int(v) for s, v in labels.items()}
    numeric = all(v is not None for v in ints.values())
    classes = options.classes
    distant: set = set()
    if numeric:
        counts = Counter(ints.values())
        distant = distant_class_ids(dict(counts), len(ints), options.thresholds)
    for sample, label in labels.items():
        src, row = source_of.get(sample, (sample, None))
        k = ints[sample]
        if classes:
            if label in classes or (k is not None and 0 <= k < len(classes)):
                continue
            yield Finding(UNKNOWN_IMAGE_CLASS.code,
                          f"{sample}: label {label!r} is not one of the {len(classes)} given classes.",
                          sample=sample, source=src, row=row)
            continue
        if not numeric:
            continue
        nc = options.num_classes
        if k < 0 or (nc is not None and k >= nc):
            limit = f"0..{nc - 1}" if nc is not None else "0 or more"
            yield Finding(IMAGE_LABEL_OUT_OF_RANGE.code,
                          f"{sample}: class id {k} is outside {limit}.", sample=sample, source=src, row=row)
        elif k in distant:
            bulk = sorted(x for x in set(ints.values()) if x not in distant and x >= 0)
            yield Finding(DISTANT_IMAGE_LABEL.code, f"{sample}: class id {k} lies far above the other ids "
                          f"({bulk[0]}..{bulk[-1]}).", sample=sample, source=src, row=row)
