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

    global _DCT32
    if _DCT32 is None:
        _DCT32 = np.ascontiguousarray(_dct_matrix(32)[:8])  # only the 8 lowest frequencies are kept
    a = np.asarray(small32, dtype=np.float64)
    # einsum, not @: a matrix product goes to the threaded BLAS, whose threads compete
    # with the other workers (the table checks avoid np.dot for the same reason)
    low = np.einsum("kj,lj->kl", np.einsum("ki,ij->kj", _DCT32, a), _DCT32)
    return _bits(low > np.median(low))


def dhash_of(small9x8) -> int:
    """dHash of a 9 wide x 8 high gray image."""
    import numpy as np

    a = np.asarray(small9x8, dtype=np.int16)
    return _bits(a[:, 1:] > a[:, :-1])


def _bits(mask) -> int:
    import numpy as np

    return int.from_bytes(np.packbits(mask.ravel()).tobytes(), "big")


def laplacian_variance(gray) -> float:
    """Variance of the 4-neighbour Laplacian of a gray image (0 when under 3 x 3)."""
    import numpy as np

    a = np.asarray(gray, dtype=np.int16)
    if a.shape[0] < 3 or a.shape[1] < 3:
        return 0.0
    # in place in int16 (the Laplacian lies in +-1020) and exact integer sums: no float
    # temporaries and no BLAS call (a threaded dot product stalls on a busy machine)
    lap = a[1:-1, :-2] + a[1:-1, 2:]
    lap += a[:-2, 1:-1]
    lap += a[2:, 1:-1]
    lap -= a[1:-1, 1:-1] * np.int16(4)
    n = lap.size
    s = int(lap.sum(dtype=np.int64))
    q = int(np.einsum("ij,ij->", lap, lap, dtype=np.int64))
    return (n * q - s * s) / (n * n)


def percentiles_and_entropy(hist) -> tuple[int, int, int, float]:
    """(p5, p50, p95, entropy in bits) of a 256-bin histogram."""
    import numpy as np

    h = np.asarray(hist, dtype=np.int64)
    n = int(h.sum())
    if n == 0:
        return 0, 0, 0, 0.0
    cum = np.cumsum(h)
    # the smallest level at or below which at least q of the pixels lie
    p5, p50, p95 = (int(np.searchsorted(cum, q * n)) for q in (0.05, 0.50, 0.95))
    p = h[h > 0] / n
    return p5, p50, p95, float(-(p * np.log2(p)).sum())


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


def perceptual(im, rgb_hist=None) -> Perceptual | None:
    """The perceptual facts of a loaded Pillow image, or None for 16-bit and float images.

    ``rgb_hist``: the image's RGB histogram when the caller has it (768 bins);
    the exact channel comparison runs only when its three parts are equal.
    """
    from PIL import Image

    if im.mode not in EIGHT_BIT:
        return None
    gray = im if im.mode == "L" else im.convert("L")
    p5, p50, p95, entropy = percentiles_and_entropy(gray.histogram())
    work = _working_copy(gray)
    # a box-filtered 64 x 64 first: Lanczos from the full working copy costs 3x more
    # and the hashes only look at the lowest frequencies
    base = work.resize((64, 64), Image.Resampling.BOX) if min(work.size) > 64 else work
    small = base.resize((32, 32), Image.Resampling.LANCZOS)
    tiny = base.resize((9, 8), Image.Resampling.LANCZOS)
    gray_rgb = False
    if im.mode == "RGB":
        same = rgb_hist is None or (list(rgb_hist[:256]) == list(rgb_hist[256:512]) == list(rgb_hist[512:768]))
        gray_rgb = same and _channels_equal(im)
    return Perceptual(phash_of(small), dhash_of(tiny), laplacian_variance(work), p5, p50, p95, entropy, gray_rgb)
