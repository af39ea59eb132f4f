"""The image shard function: read, hash, check the header, decode fully, measure.

Runs in worker processes: module-level, pure, picklable in and out.  One
image is decoded at a time and dropped before the next; a shard returns only
small per-image records (size, mode, content hash, exact pixel sums and the
findings about that image).
"""

from __future__ import annotations

import hashlib
import os
import stat
import warnings
from dataclasses import dataclass, field

from datasan.findings import Finding
from datasan.sources.images.perceptual import Perceptual, Reduced, perceptual_batch, reduce_image
from datasan.sources.images.pixels import PixelSums
from datasan.stats import Moments
from datasan.checks import images as checks
from datasan.checks.image_quality import QualityLimits, quality_findings

#: extensions that name an image, and the Pillow formats each may hold
EXT_FORMATS: dict[str, tuple[str, ...]] = {
    ".jpg": ("JPEG", "MPO"), ".jpeg": ("JPEG", "MPO"), ".jpe": ("JPEG", "MPO"), ".jfif": ("JPEG",),
    ".png": ("PNG",), ".bmp": ("BMP",), ".dib": ("BMP", "DIB"), ".gif": ("GIF",),
    ".tif": ("TIFF",), ".tiff": ("TIFF",), ".webp": ("WEBP",),
}
IMAGE_EXTENSIONS = frozenset(EXT_FORMATS)
#: modes whose loader form is one gray channel; every other mode is read as RGB
GRAY_MODES = frozenset({"1", "L", "LA", "La", "I", "I;16", "I;16L", "I;16B", "I;16N", "F"})
SIXTEEN_BIT = frozenset({"I", "I;16", "I;16L", "I;16B", "I;16N"})


def sniff_image(head: bytes) -> str | None:
    """The image format named by a file's first bytes, or None."""
    if head.startswith(b"\xff\xd8\xff"):
        return "JPEG"
    if head.startswith(b"\x89PNG\r\n\x1a\n"):
        return "PNG"
    if head[:6] in (b"GIF87a", b"GIF89a"):
        return "GIF"
    if head[:4] in (b"II*\x00", b"MM\x00*"):
        return "TIFF"
    if head[:4] == b"RIFF" and head[8:12] == b"WEBP":
        return "WEBP"
    if head[:2] == b"BM" and len(head) >= 18 and int.from_bytes(head[14:18], "little") in (12, 40, 52, 56, 64, 108, 124):
        return "BMP"
    if head[4:12] in (b"ftypheic", b"ftypheix", b"ftypmif1", b"ftypavif"):
        return "HEIF"
    return None


@dataclass
class ImageTask:
    """One shard: ``files`` = (sample id, absolute path) pairs.

    ``form`` None measures each image in its own loader form (gray or RGB);
    "L" or "RGB" forces that form (a second pass for the images whose form
    differs from their dataset's).  ``checks`` False only measures.
    """

    files: list[tuple[str, str]]
    max_pixels: int = 89_478_485
    min_side: int = 8
    max_aspect: float = 10.0
    form: str | None = None
    checks: bool = True
    quality: QualityLimits = field(default_factory=QualityLimits)


@dataclass(slots=True)
class ImageRecord:
    """What one image contributes: facts for index.parquet, its findings and its pixel sums."""

    sample: str
    ok: bool = False
    width: int = 0
    height: int = 0
    mode: str = ""
    format: str = ""
    bytes: int = 0
    digest: bytes = b""
    form: str = ""  # loader form the pixel sums are in: "L" or "RGB"
    sums: PixelSums | None = None  # integer images
    fmoments: list | None = None  # float images: one Moments per channel
    perceptual: Perceptual | None = None  # hashes and scores (8-bit images, checks on)
    findings: list[Finding] = field(default_factory=list)


#: files up to this size are read into memory once (hash, then decode from the bytes);
#: larger ones are hashed in a streaming pass and decoded from the file
IN_MEMORY_BYTES = 64 << 20


def _read_regular(path: str) -> tuple[bytes | None, int, bytes]:
    """(the bytes, or None for a large file; size; BLAKE2b digest).

    Never blocks on a FIFO (O_NONBLOCK) and refuses anything but a regular file.
    """
    from datasan import fs

    if fs.is_remote(path):
        return _read_object(path)
    fd = os.open(path, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0))
    try:
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode):
            raise OSError(f"not a regular file (mode {stat.filemode(st.st_mode)})")
        h = hashlib.blake2b(digest_size=16)
        chunks: list[bytes] | None = [] if st.st_size <= IN_MEMORY_BYTES else None
        size = 0
        while True:
            b = os.read(fd, 1 << 20)
            if not b:
                break
            size += len(b)
            h.update(b)
            if chunks is not None:
                chunks.append(b)
        return (b"".join(chunks) if chunks is not None else None), size, h.digest()
    finally:
        os.close(fd)


def _read_object(uri: str) -> tuple[bytes | None, int, bytes]:
    """:func:`_read_regular` for an object of a store (one streaming pass; kept in memory
    only up to IN_MEMORY_BYTES)."""
    from datasan import fs

    h = hashlib.blake2b(digest_size=16)
    with fs.open_input(uri) as f:
        size = f.size()
        chunks: list[bytes] | None = [] if size <= IN_MEMORY_BYTES else None
        while True:
            b = f.read(1 << 20)
            if not b:
                break
            h.update(b)
            if chunks is not None:
                chunks.append(b)
    return (b"".join(chunks) if chunks is not None else None), size, h.digest()


def _open_header(data: bytes | None, path: str):
    """Image.open (header only) with Pillow's own bomb guard off: datasan checks the size itself."""
    import io

    from PIL import Image

    old = Image.MAX_IMAGE_PIXELS
    Image.MAX_IMAGE_PIXELS = None
    try:
        if data is None and _is_remote(path):
            from datasan.sources.regular import open_binary

            return Image.open(open_binary(path))  # Pillow closes it with the image
        return Image.open(io.BytesIO(data) if data is not None else path)
    finally:
        Image.MAX_IMAGE_PIXELS = old


def _is_remote(path: str) -> bool:
    from datasan import fs

    return fs.is_remote(path)


def _head(path: str) -> bytes:
    from datasan.sources.regular import open_binary

    with (open_binary(path) if _is_remote(path) else open(path, "rb")) as f:
        return f.read(32)


def _form_of(mode: str) -> str:
    return "L" if mode in GRAY_MODES else "RGB"


def _measure(im, form: str, rec: ImageRecord) -> tuple[bool, list | None]:
    """Fill rec.sums / rec.fmoments in ``form``; return (every pixel is equal, the RGB
    histogram when one was taken)."""
    import numpy as np

    mode = im.mode
    native = _form_of(mode)
    if mode == "F" or mode in SIXTEEN_BIT:
        arr = np.asarray(im)
        if mode == "F":
            m = Moments.of(arr.astype(np.float64, copy=False).ravel(), sketch=False)  # no drift sketch of pixels
            rec.fmoments = [m] * (3 if form == "RGB" else 1)
            constant = m.count > 0 and m.min == m.max
        else:
            sums = PixelSums.of_array(arr, 65535)
            rec.sums = sums.replicated(3) if form == "RGB" else sums
            constant = bool(arr.size) and int(arr.min()) == int(arr.max())
        rec.form = form
        return constant, None
    if mode == form:
        img = im
    elif native == "L" and form == "RGB":
        img = im if mode == "L" else im.convert("L")
    else:
        img = im.convert(form)
    bands = 1 if img.mode == "L" else 3
    raw = img.histogram()
    hist = np.asarray(raw, dtype=np.int64).reshape(bands, 256)
    sums = PixelSums.of_histogram(hist, bands)
    rec.sums = sums.replicated(3) if (bands == 1 and form == "RGB") else sums
    rec.form = form
    return bool((np.count_nonzero(hist, axis=1) <= 1).all()), (raw if img is im and bands == 3 else None)


def _frames_finding(im, rel: str, max_pixels: int) -> Finding | None:
    """Decode every frame after the first (animated GIF/PNG/WebP, multi-page TIFF): a loader
    that plays the animation reaches a truncated later frame even when frame 0 is fine.
    The bomb limit covers frames x pixels.  Returns the finding, or None when every frame
    decodes; leaves ``im`` on frame 0."""
    try:
        n = int(getattr(im, "n_frames", 1) or 1)
    except Exception as exc:  # counting frames walks the file: a broken one fails here
        return checks.undecodable_image(checks.DecodeFailure(rel, "frames", str(exc)))
    if n <= 1:
        return None
    w, h = im.size
    bomb = checks.decompression_bomb(checks.ImageHeader(rel, "", "", w, h), max_pixels, frames=n)
    if bomb is not None:
        return bomb
    try:
        for i in range(1, n):
            im.seek(i)
            im.load()
        i = 0
        im.seek(0)
        im.load()
    except Exception as exc:  # noqa: BLE001 - Pillow raises many types for bad frame data
        return checks.undecodable_image(checks.DecodeFailure(rel, "frame", str(exc), frame=i, frames=n))
    return None


def _failed(rec: ImageRecord, stage: str, why: str = "") -> ImageRecord:
    rec.findings.append(checks.undecodable_image(checks.DecodeFailure(rec.sample, stage, why)))
    return rec


@dataclass(slots=True)
class _Pending:
    """What an image's checks still need once its shard's perceptual facts are computed."""

    rec: ImageRecord
    constant: bool
    reduced: Reduced | None


def inspect_image(rel: str, path: str, task: ImageTask) -> ImageRecord:
    """Read, check and measure one image (see the module docstring)."""
    return _finish([_inspect(rel, path, task)], task)[0]


def _inspect(rel: str, path: str, task: ImageTask) -> ImageRecord | _Pending:
    """Everything one image needs its decoded pixels for; a :class:`_Pending` when its
    per-image checks wait for the perceptual facts (see :func:`_finish`)."""
    import numpy as np
    from PIL import ImageFile

    ImageFile.LOAD_TRUNCATED_IMAGES = False
    rec = ImageRecord(rel)
    try:
        data, rec.bytes, rec.digest = _read_regular(path)
    except OSError as exc:
        return _failed(rec, "read", str(exc.strerror or exc))
    if not rec.bytes:
        return _failed(rec, "empty")
    try:
        im = _open_header(data, path)
    except Exception as exc:  # Pillow raises many types for bad headers
        sniffed = sniff_image(data[:32] if data is not None else _head(path))
        if sniffed == "HEIF":
            why = "its format (HEIF/AVIF) is not supported by Pillow"
        elif sniffed:
            why = f"its {sniffed} header is corrupt or truncated ({_stable_text(exc)})"
        else:
            why = f"it is not an image Pillow can identify ({type(exc).__name__})"
        return _failed(rec, "identify", why)
    with im:
        w, h = im.size
        rec.width, rec.height, rec.mode, rec.format = int(w), int(h), im.mode, im.format or ""
        ext = os.path.splitext(rel)[1].lower()
        header = checks.ImageHeader(rel, rec.format, ext, w, h)
        if task.checks:
            mismatch = checks.extension_mismatch(header, EXT_FORMATS.get(ext, ()))
            if mismatch is not None:
                rec.findings.append(mismatch)
        bomb = checks.decompression_bomb(header, task.max_pixels)
        if bomb is not None:
            rec.findings.append(bomb)
            return rec
        try:
            im.load()
        except Exception as exc:  # truncated, corrupt data, unsupported codec ...
            return _failed(rec, "decode", str(exc))
        bad_frames = _frames_finding(im, rel, task.max_pixels)
        if bad_frames is not None:
            rec.findings.append(bad_frames)
            return rec
        rec.ok = True
        if task.checks and im.mode == "F":
            arr = np.asarray(im)
            if not np.isfinite(arr).all():
                rec.findings.append(checks.non_finite_pixels(rel, int(np.isnan(arr).sum()),
                                                             int(np.isinf(arr).sum())))
                return rec
        form = task.form or _form_of(im.mode)
        constant, rgb_hist = _measure(im, form, rec)
        if not task.checks:
            return rec
        # from the image already decoded: no second decode for the perceptual facts
        return _Pending(rec, constant, reduce_image(im, rgb_hist))


def _finish(items: list, task: ImageTask) -> list[ImageRecord]:
    """The records of ``items`` (from :func:`_inspect`), with the perceptual facts of all
    of them computed at once and the per-image checks that read them."""
    pending = [p for p in items if isinstance(p, _Pending)]
    facts = iter(perceptual_batch([p.reduced for p in pending if p.reduced is not None]))
    for p in pending:
        rec = p.rec
        w, h = rec.width, rec.height
        if p.reduced is not None:
            rec.perceptual = next(facts)
        rec.findings.extend(checks.pixel_findings(checks.PixelFacts(rec.sample, w, h, p.constant), task.min_side,
                                                  task.max_aspect))
        # a constant (DS204) or tiny (DS205) image has no texture to judge: one finding, the cause
        if rec.perceptual is not None and not p.constant and min(w, h) >= task.min_side:
            rec.findings.extend(quality_findings(rec.sample, rec.perceptual, task.quality))
    return [p.rec if isinstance(p, _Pending) else p for p in items]


def inspect_shard(task: ImageTask) -> list[ImageRecord]:
    """The shard function: one record per file of the task, in order."""
    with warnings.catch_warnings():
        # Pillow warns about odd metadata (EXIF, ICC) of images it decodes fine: not findings
        warnings.simplefilter("ignore")
        return _finish([_inspect(rel, path, task) for rel, path in task.files], task)


def _stable_text(exc: BaseException) -> str:
    """The exception's message without object addresses (Pillow names ``<_io.BytesIO object at
    0x7f...>``), so a finding reads the same on every run, worker and engine."""
    import re

    return re.sub(r"<([\w.]+) object at 0x[0-9a-fA-F]+>", r"\1", str(exc))
