"""Near-duplicate images (DS211, DS212) and duplicates across train/val/test splits (DS213).

The image kind finds the pairs (``datasan/sources/images/neardup.py``: a band
join over 64-bit pHash and dHash); this module says what a pair means.  Each
finding names both images.
"""

from __future__ import annotations

from typing import Iterator, Sequence

from datasan.checks.rule import Rule
from datasan.findings import Finding

NEAR_DUPLICATE_IMAGE = Rule(
    "DS211", "near-duplicate-image", "warning",
    "Two images are the same picture re-encoded, resized, recompressed or slightly edited.",
    what="64-bit pHash and dHash of every image; two images of one dataset folder and split "
    "whose hashes both differ in at most thresholds.near_duplicate_bits bits (default 6; -1 "
    "turns it off) are near duplicates. Pixel-identical images are DS208 instead.",
    why="Near copies weight some samples twice, and a model that memorises them looks "
    "better than it is; they are not byte-identical, so file hashes miss them.",
    fix="Keep one of them.",
    example="cats/0012.jpg is a near duplicate of cats/0003.png (pHash 2 bits, dHash 3 bits apart)",
)
CONFLICTING_NEAR_DUPLICATE_IMAGE = Rule(
    "DS212", "conflicting-near-duplicate-image", "warning",
    "Near-duplicate images (see DS211) carry different labels.",
    what="A near-duplicate pair (or a pixel-identical one in different encodings) whose "
    "labels differ; the message names both images and both labels.",
    why="The same picture is taught as two classes: label noise that caps accuracy.",
    fix="Decide the right label and drop the other copy.",
    example="dog/0101.jpg (label 'dog') is a near duplicate of cat/0044.jpg (label 'cat')",
)
SPLIT_LEAKAGE = Rule(
    "DS213", "split-leakage", "warning",
    "The same picture (identical or near duplicate) is in two of the train / val / test splits.",
    what="In a `root/<split>/<class>/` tree, every pair of pixel-identical or near-duplicate "
    "images (see DS211) in different split folders; reported on the evaluation side "
    "(val or test), naming both images and splits.",
    why="Test images seen in training inflate every score measured on the split: the "
    "model looks better than it will be on new data.",
    fix="Remove the copy from the evaluation split (or from train), so each picture is in one split.",
    example="test/cat/0007.jpg is a near duplicate of train/cat/0911.jpg (leakage test -> train)",
)


def near_duplicate_findings(samples: Sequence[str], labels: Sequence[str | None], splits: Sequence[str | None],
                            near: Sequence[int], conflict: Sequence[int], leak: Sequence[int]) -> Iterator[Finding]:
    """DS213, DS212 and DS211 from each image's earliest partner of each kind (-1: none).

    ``samples``, ``labels``, ``splits`` and the partner positions are parallel.
    """
    for j, s in enumerate(samples):
        i = leak[j]
        if i >= 0:
            yield Finding(SPLIT_LEAKAGE.code, f"{s} ({splits[j]}) is the same picture as {samples[i]} "
                          f"({splits[i]}): leakage between the {splits[j]} and {splits[i]} splits.",
                          sample=s, source=s)
        i = conflict[j]
        if i >= 0:
            yield Finding(CONFLICTING_NEAR_DUPLICATE_IMAGE.code, f"{s} (label {labels[j]!r}) is a near duplicate of "
                          f"{samples[i]} (label {labels[i]!r}).", sample=s, source=s)
            continue
        i = near[j]
        if i >= 0:
            yield Finding(NEAR_DUPLICATE_IMAGE.code, f"{s} is a near duplicate of {samples[i]}.",
                          sample=s, source=s)
