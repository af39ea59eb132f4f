"""What the dataset-level image checks mean (the per-image ones run in
``datasan/sources/images/decode.py``, where the pixels are).

Each function looks at small per-image facts gathered from every shard
(mode, content hash, label) and yields findings; none of them touches a file.
"""

from __future__ import annotations

from collections import Counter
from typing import Iterable, Iterator

from datasan.findings import Finding
from datasan.options import ScanOptions


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
            yield Finding("DS207", f"{sample} is {mode} ({_channels(mode)} channel(s)) among {n} of "
                          f"{len(modes)} images that are {common}.", sample=sample, source=sample)


def _channels(mode: str) -> int:
    return {"1": 1, "L": 1, "P": 1, "I": 1, "F": 1, "LA": 2, "La": 2, "PA": 2, "RGB": 3, "YCbCr": 3,
            "LAB": 3, "HSV": 3, "RGBA": 4, "RGBa": 4, "RGBX": 4, "CMYK": 4}.get(mode, 1)


def channels_of(mode: str) -> int:
    """The number of bands of a Pillow mode."""
    return _channels(mode)


def duplicates(digests: Iterable[tuple[str, bytes, str | None]]) -> Iterator[Finding]:
    """DS208 for each image byte-identical to an earlier one; DS209 when their labels differ."""
    first: dict[bytes, tuple[str, str | None]] = {}
    for sample, digest, label in digests:
        seen = first.get(digest)
        if seen is None:
            first[digest] = (sample, label)
            continue
        other, other_label = seen
        if label != other_label and label is not None and other_label is not None:
            yield Finding("DS209", f"{sample} (label {label!r}) is identical to {other} (label {other_label!r}).",
                          sample=sample, source=sample)
        else:
            yield Finding("DS208", f"{sample} is byte-identical to {other}.", sample=sample, source=sample)


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
    from datasan.checks.tabular import distant_class_ids

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
            yield Finding("DS306", f"{sample}: label {label!r} is not one of the {len(classes)} given classes.",
                          sample=sample, source=src, row=row)
            continue
        if not numeric:
            continue
        nc = options.num_classes
        if k < 0 or (nc is not None and k >= nc):
            limit = f"0..{nc - 1}" if nc is not None else "0 or more"
            yield Finding("DS304", f"{sample}: class id {k} is outside {limit}.", sample=sample, source=src, row=row)
        elif k in distant:
            bulk = sorted(x for x in set(ints.values()) if x not in distant and x >= 0)
            yield Finding("DS305", f"{sample}: class id {k} lies far above the other ids "
                          f"({bulk[0]}..{bulk[-1]}).", sample=sample, source=src, row=row)
