"""How the image quality and near-duplicate defaults were chosen (docs/images.md).

    PYTHONPATH=$PWD python bench/image_thresholds.py [--n 3000]

Normal images: crops (random size and place) of the photos that ship inside
scikit-image (``skimage.data``) and scikit-learn (``load_sample_images``),
resized by a random factor and saved as JPEG at a random quality, no download.
Prints, per score, the percentiles of the normal images and the share each
default flags (target: at most 2 %), then, for near duplicates, the share of
edited copies found (recall) and the pairs of different photos reported
(false pairs) at each Hamming distance.
"""

from __future__ import annotations

import argparse
import io

PHOTOS = ("astronaut", "camera", "coffee", "chelsea", "rocket", "coins", "moon", "grass", "gravel", "brick",
          "cell", "immunohistochemistry", "hubble_deep_field", "retina", "page", "text", "colorwheel")


def photos() -> dict[str, object]:
    """name -> uint8 array, every bundled photo that loads without a download."""
    import numpy as np
    from skimage import data
    from sklearn.datasets import load_sample_images

    out = {}
    for name in PHOTOS:
        try:
            a = getattr(data, name)()
        except Exception:  # not bundled in this version
            continue
        out[name] = np.asarray(a, dtype=np.uint8)
    for k, a in enumerate(load_sample_images().images):
        out[f"sklearn{k}"] = a
    return out


def variant(a, rng):
    """A random crop (25-100 % of each side), resize (0.3-1.0) and JPEG re-encode of ``a``."""
    from PIL import Image

    h, w = a.shape[:2]
    ch, cw = int(h * rng.uniform(0.25, 1.0)), int(w * rng.uniform(0.25, 1.0))
    y, x = int(rng.integers(0, h - ch + 1)), int(rng.integers(0, w - cw + 1))
    im = Image.fromarray(a[y:y + ch, x:x + cw])
    f = rng.uniform(0.3, 1.0)
    im = im.resize((max(16, int(cw * f)), max(16, int(ch * f))), Image.Resampling.BILINEAR)
    return reencode(im, int(rng.integers(50, 96)))


def reencode(im, quality: int):
    from PIL import Image

    b = io.BytesIO()
    im.save(b, "JPEG", quality=quality)
    b.seek(0)
    out = Image.open(b)
    out.load()
    return out


def edits(im, rng):
    """Copies a user would call the same picture: recompressed, resized, brightened, trimmed."""
    from PIL import ImageEnhance

    w, h = im.size
    yield "jpeg q40", reencode(im, 40)
    yield "resize 0.5", im.resize((max(16, w // 2), max(16, h // 2)))
    yield "brightness 1.2", ImageEnhance.Brightness(im).enhance(1.2)
    yield "trim 3 %", im.crop((int(w * 0.03), int(h * 0.03), w - int(w * 0.03), h - int(h * 0.03)))


def main() -> None:
    import numpy as np

    from datasan.checks.image_quality import QualityLimits
    from datasan.sources.images.perceptual import perceptual

    ap = argparse.ArgumentParser()
    ap.add_argument("--n", type=int, default=3000)
    args = ap.parse_args()
    rng = np.random.default_rng(0)
    src = photos()
    names = sorted(src)
    print(f"{len(names)} photos: {', '.join(names)}")
    facts, origin, ims = [], [], []
    for k in range(args.n):
        name = names[k % len(names)]
        im = variant(src[name], rng)
        facts.append(perceptual(im))
        origin.append(name)
        if k < 300:
            ims.append(im)
    lim = QualityLimits()
    blur = np.array([f.blur for f in facts])
    p95 = np.array([f.p95 for f in facts])
    p5 = np.array([f.p5 for f in facts])
    ent = np.array([f.entropy for f in facts])
    pct = (0.5, 1, 2, 5, 50)
    for label, v, flag in (("blur (Laplacian variance)", blur, blur < lim.min_blur),
                           ("p95 luminance", p95, p95 < lim.dark_p95),
                           ("entropy (bits)", ent, ent < lim.min_entropy)):
        q = ", ".join(f"p{p:g} {np.percentile(v, p):.1f}" for p in pct)
        print(f"{label}: {q}; default flags {flag.mean() * 100:.2f} %")
    print("blur share flagged by min_blur: " + ", ".join(f"{t:g}: {(blur < t).mean() * 100:.2f} %"
                                                        for t in (2, 3, 3.5, 4, 5, 10, 30)))
    q = ", ".join(f"p{100 - p:g} {np.percentile(p5, 100 - p):.1f}" for p in pct)
    print(f"p5 luminance: {q}; default flags {(p5 > lim.bright_p5).mean() * 100:.2f} %")
    flagged = (blur < lim.min_blur) | (p95 < lim.dark_p95) | (p5 > lim.bright_p5) | (ent < lim.min_entropy)
    print(f"any of DS214-DS217: {flagged.mean() * 100:.2f} % of {args.n} normal images")
    by_photo = {n: float(np.mean([flagged[i] for i in range(args.n) if origin[i] == n])) for n in names}
    print("flagged share by photo: " + ", ".join(f"{n} {v * 100:.0f} %" for n, v in by_photo.items() if v))
    near_dup_report(facts, origin, ims, rng)


def near_dup_report(facts, origin, ims, rng) -> None:
    import numpy as np

    from datasan.sources.images.perceptual import perceptual

    ph = np.array([f.phash for f in facts], dtype=np.uint64)
    dh = np.array([f.dhash for f in facts], dtype=np.uint64)
    dist = {}
    for im_i, im in enumerate(ims):
        base = perceptual(im)
        for what, e in edits(im, rng):
            f = perceptual(e)
            d = max(bin(base.phash ^ f.phash).count("1"), bin(base.dhash ^ f.dhash).count("1"))
            dist.setdefault(what, []).append(d)
    other = np.array(origin)
    for bits in (2, 4, 6, 8):
        recall = ", ".join(f"{w} {np.mean(np.array(v) <= bits) * 100:.0f} %" for w, v in dist.items())
        false = 0
        for i in range(len(ph)):
            close = (np.bitwise_count(ph[i + 1:] ^ ph[i]) <= bits) & (np.bitwise_count(dh[i + 1:] ^ dh[i]) <= bits)
            false += int((close & (other[i + 1:] != other[i])).sum())
        print(f"near_duplicate_bits {bits}: found {recall}; pairs of different photos reported: {false}")


if __name__ == "__main__":
    main()
