"""Perceptual facts of one decoded image: hashes, sharpness, luminance, information.

Computed in the workers from the image the shard already decoded (no second
decode): a grayscale copy made by Pillow in C, a working copy of at most
``WORK_SIDE`` pixels on its longer side for the sharpness and the hashes, and
the full-resolution gray histogram for the luminance percentiles and the
entropy.  The hashes are the usual algorithms (as in the ``imagehash``
library) computed on that working copy:

* pHash: 32 x 32 Lanczos-reduced gray, 2-D DCT-II, the 8 x 8 lowest
  frequencies compared with their median (64 bits);
* dHash: 9 x 8 Lanczos-reduced gray, each pixel compared with its right
  neighbour (64 bits).
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

#: longer side of the gray working copy for the sharpness and the hashes: the
#: Laplacian variance is measured at one scale, so images of any size compare
#: (128 would cost a fifth, but a Gaussian blur of radius 5 then scores like sharp
#: smooth photos: measured in bench/image_thresholds.py)
WORK_SIDE = 256
#: modes whose pixels Pillow converts to 8-bit gray without losing range
EIGHT_BIT = frozenset({"1", "L", "LA", "La", "P", "PA", "RGB", "RGBA", "RGBa", "RGBX", "CMYK", "YCbCr",
                       "LAB", "HSV"})


@dataclass(slots=True)
class Perceptual:
    """What one image looks like, in numbers small enough to keep per image.

    ``phash`` / ``dhash``: 64-bit hashes (unsigned); ``blur``: variance of the
    Laplacian of the gray working copy (low: blurry); ``p5`` / ``p50`` /
    ``p95``: luminance percentiles 0..255 over every pixel; ``entropy``:
    Shannon entropy of the gray histogram in bits (0..8); ``gray_rgb``: an
    RGB image whose three channels are equal everywhere.
    """

    phash: int
    dhash: int
    blur: float
    p5: int
    p50: int
    p95: int
    entropy: float
    gray_rgb: bool = False


def pixel_digest(path: str) -> bytes | None:
    """A 16-byte hash of an image file's decoded pixels (mode, size, bytes of frame 0): the
    same for a JPEG and its PNG copy.  None when the file no longer decodes.

    Hashing every image's pixels costs more than a third of its decode, so the
    scan computes this only for the few images whose size, exact pixel sums and
    both hashes already agree with another's (candidates for identity).
    """
    from PIL import Image

    try:
        with Image.open(path) as im:
            im.load()
            h = hashlib.blake2b(digest_size=16)
            h.update(f"{im.mode} {im.size[0]}x{im.size[1]};".encode())
            h.update(im.tobytes())
            return h.digest()
    except Exception:  # changed or removed since the scan read it: no identity claimed
        return None


def _dct_matrix(n: int):
    import numpy as np

    k = np.arange(n)[:, None]
    x = np.arange(n)[None, :]
    return np.cos(np.pi * k * (2 * x + 1) / (2 * n))


_DCT32 = None


def phash_of(small32) -> int:
    """pHash of a 32 x 32 gray image."""
    import numpy as np

    return int(phashes(np.asarray(small32, dtype=np.uint8)[None])[0])


def phashes(small):
    """pHashes (uint64) of a stack of 32 x 32 gray images, shape (n, 32, 32)."""
    import numpy as np

    global _DCT32
    if _DCT32 is None:
        _DCT32 = np.ascontiguousarray(_dct_matrix(32)[:8])  # only the 8 lowest frequencies are kept
    a = np.asarray(small, dtype=np.float64)
    # einsum, not @: a matrix product goes to the threaded BLAS, whose threads compete
    # with the other workers (the table checks avoid np.dot for the same reason).  Each
    # image's coefficients come out bit for bit as when it is transformed alone (a test
    # pins it), so a hash does not depend on the shard an image lands in.
    low = np.einsum("bkj,lj->bkl", np.einsum("ki,bij->bkj", _DCT32, a), _DCT32).reshape(len(a), 64)
    return _words(low > np.median(low, axis=1)[:, None])


def dhash_of(small9x8) -> int:
    """dHash of a 9 wide x 8 high gray image."""
    import numpy as np

    return int(dhashes(np.asarray(small9x8, dtype=np.uint8)[None])[0])


def dhashes(tiny):
    """dHashes (uint64) of a stack of 9 wide x 8 high gray images, shape (n, 8, 9)."""
    import numpy as np

    a = np.asarray(tiny, dtype=np.int16)
    return _words((a[:, :, 1:] > a[:, :, :-1]).reshape(len(a), 64))


def _words(mask):
    """Each row of 64 booleans as one uint64, first bit highest."""
    import numpy as np

    return np.packbits(mask, axis=1).view(">u8").ravel().astype(np.uint64)


def laplacian_variance(gray) -> float:
    """Variance of the 4-neighbour Laplacian of a gray image (0 when under 3 x 3)."""
    import numpy as np

    return float(laplacian_variances(np.asarray(gray, dtype=np.uint8)[None])[0])


def laplacian_variances(stack):
    """:func:`laplacian_variance` of each image of a stack of equally sized gray images, shape (n, h, w)."""
    import numpy as np

    n, h, w = np.shape(stack)
    if h < 3 or w < 3:
        return np.zeros(n)
    # each image as one flat row, so that every step is one long contiguous numpy loop
    # (slicing rows and columns of the 3-D stack made 254 short loops per image: 3x slower).
    # The Laplacian at flat position p of an inner row reads p-1, p+1, p-w and p+w; in the
    # first and last column that wraps into the neighbouring row, so those are zeroed.
    # int16 in place (the Laplacian lies in +-1020), no BLAS call (a threaded dot product
    # stalls on a busy machine).
    a = np.asarray(stack, dtype=np.int16).reshape(n, h * w)
    m = (h - 2) * w
    lap = a[:, w - 1:w - 1 + m] + a[:, w + 1:w + 1 + m]
    lap += a[:, :m]
    lap += a[:, 2 * w:2 * w + m]
    lap -= a[:, w:w + m] * np.int16(4)
    grid = lap.reshape(n, h - 2, w)
    grid[:, :, 0] = 0
    grid[:, :, -1] = 0
    # sums in float64 are exact integers here (|sum of squares| < 2**53 for any working
    # copy of WORK_SIDE) and vectorize better than an int64 accumulation
    f = lap.astype(np.float64)
    s = f.sum(axis=1).astype(np.int64)
    q = np.einsum("ij,ij->i", f, f).astype(np.int64)
    k = (h - 2) * (w - 2)
    # exact integers up to the division (k * q < 2**63)
    return (k * q - s * s) / (k * k)


def percentiles_and_entropy(hist) -> tuple[int, int, int, float]:
    """(p5, p50, p95, entropy in bits) of a 256-bin histogram."""
    p5, p50, p95 = (int(v) for v in percentiles([hist])[0])
    return p5, p50, p95, float(entropies([hist])[0])


def percentiles(hists):
    """Luminance p5, p50, p95 of each row of ``hists`` (n x 256 counts): the smallest level at
    or below which at least 5 / 50 / 95 % of the pixels lie (0 for an empty histogram)."""
    import numpy as np

    h = np.asarray(hists, dtype=np.int64)
    cum = np.cumsum(h, axis=1)
    n = cum[:, -1:]
    return np.stack([(cum < q * n).sum(axis=1) for q in (0.05, 0.50, 0.95)], axis=1) * (n > 0)


def entropies(hists):
    """Shannon entropy in bits of each row of ``hists`` (n x 256 counts; 0 for an empty one)."""
    import numpy as np

    h = np.asarray(hists, dtype=np.int64)
    n = h.sum(axis=1, keepdims=True)
    p = h / np.maximum(n, 1)
    with np.errstate(divide="ignore", invalid="ignore"):
        t = np.where(h > 0, p * np.log2(np.where(h > 0, p, 1.0)), 0.0)
    return -t.sum(axis=1)


def _channels_equal(im) -> bool:
    from PIL import ImageChops

    r, g, b = im.split()[:3]
    return ImageChops.difference(r, g).getbbox() is None and ImageChops.difference(g, b).getbbox() is None


def _working_copy(gray):
    """``gray`` box-reduced to at most WORK_SIDE pixels on its longer side: Pillow's integer
    ``reduce`` first (4x cheaper than a general resize), a box resize for the rest."""
    from PIL import Image

    w, h = gray.size
    k = max(w, h) // WORK_SIDE
    work = gray.reduce(k) if k > 1 else gray
    w, h = work.size
    if max(w, h) > WORK_SIDE:
        scale = WORK_SIDE / max(w, h)
        work = work.resize((max(1, round(w * scale)), max(1, round(h * scale))), Image.Resampling.BOX)
    return work


@dataclass(slots=True)
class Reduced:
    """What Pillow makes of one image in C, kept until its shard computes the facts of
    all its images at once (numpy calls per batch, not per image): the full-resolution
    gray histogram, the gray working copy and the two small copies the hashes read."""

    hist: list
    work: bytes
    size: tuple[int, int]
    small: bytes  # 32 x 32
    tiny: bytes  # 9 x 8
    gray_rgb: bool


def reduce_image(im, rgb_hist=None) -> Reduced | None:
    """The :class:`Reduced` copies of a loaded Pillow image, or None for 16-bit and float images.

    ``rgb_hist``: the image's RGB histogram when the caller has it (768 bins);
    the exact channel comparison runs only when its three parts are equal.
    """
    from PIL import Image

    if im.mode not in EIGHT_BIT:
        return None
    gray = im if im.mode == "L" else im.convert("L")
    work = _working_copy(gray)
    # a box-filtered 64 x 64 first: Lanczos from the full working copy costs 3x more
    # and the hashes only look at the lowest frequencies; sides that are multiples of 64
    # take Pillow's integer block mean (3x cheaper than a general box resize)
    w, h = work.size
    if min(w, h) <= 64:
        base = work
    elif w % 64 == 0 and h % 64 == 0:
        base = work.reduce((w // 64, h // 64))
    else:
        base = work.resize((64, 64), Image.Resampling.BOX)
    small = base.resize((32, 32), Image.Resampling.LANCZOS)
    tiny = base.resize((9, 8), Image.Resampling.LANCZOS)
    gray_rgb = False
    if im.mode == "RGB":
        same = rgb_hist is None or (rgb_hist[:256] == rgb_hist[256:512] == rgb_hist[512:768])
        gray_rgb = same and _channels_equal(im)
    return Reduced(gray.histogram(), work.tobytes(), work.size, small.tobytes(), tiny.tobytes(), gray_rgb)


#: images per numpy call of the Laplacian: 8 working copies of 256 x 256 keep its
#: temporaries (~1 MB each) in the CPU cache; 64 was 1.6x slower per image
LAPLACIAN_BATCH = 8


def perceptual_batch(items: list[Reduced]) -> list[Perceptual]:
    """The :class:`Perceptual` facts of each reduced image, computed for all of them at once.

    Every number is what the image gives alone (integer arithmetic, and a DCT
    whose per-image results do not depend on the batch), so facts do not depend
    on how images were split into shards.
    """
    import numpy as np

    n = len(items)
    if not n:
        return []
    hists = np.array([r.hist for r in items], dtype=np.int64)
    pct = percentiles(hists).tolist()
    ent = entropies(hists).tolist()
    ph = phashes(np.frombuffer(b"".join(r.small for r in items), np.uint8).reshape(n, 32, 32)).tolist()
    dh = dhashes(np.frombuffer(b"".join(r.tiny for r in items), np.uint8).reshape(n, 8, 9)).tolist()
    blur = [0.0] * n
    by_size: dict[tuple[int, int], list[int]] = {}
    for i, r in enumerate(items):
        by_size.setdefault(r.size, []).append(i)
    for (w, h), rows in by_size.items():
        for k in range(0, len(rows), LAPLACIAN_BATCH):
            part = rows[k:k + LAPLACIAN_BATCH]
            stack = np.frombuffer(b"".join(items[i].work for i in part), np.uint8).reshape(len(part), h, w)
            for i, v in zip(part, laplacian_variances(stack).tolist()):
                blur[i] = v
    return [Perceptual(ph[i], dh[i], blur[i], *pct[i], ent[i], items[i].gray_rgb) for i in range(n)]


def perceptual(im, rgb_hist=None) -> Perceptual | None:
    """The perceptual facts of a loaded Pillow image, or None for 16-bit and float images
    (see :func:`reduce_image`)."""
    r = reduce_image(im, rgb_hist)
    return None if r is None else perceptual_batch([r])[0]
