"""Perceptual image checks: near duplicates and leakage (DS211-DS213), pixel-identical copies
(DS208), blur / exposure / information / gray-as-RGB (DS214-DS218), index.parquet scores."""

from __future__ import annotations

import io
import os

import numpy as np
import pytest
from hypothesis import given, settings, strategies as st
from PIL import Image, ImageFilter
from skimage import data

from datasan.options import ScanOptions, Thresholds
from datasan.pipeline import scan
from datasan.sources.images.neardup import band_edges, near_partners
from datasan.sources.images.perceptual import (laplacian_variances, percentiles_and_entropy, perceptual, perceptual_batch,
                                               reduce_image)

ASTRONAUT = data.astronaut()


def crop(k: int, side: int = 96) -> np.ndarray:
    y, x = 40 + 90 * (k % 4), 40 + 90 * (k // 4 % 4)
    return np.ascontiguousarray(ASTRONAUT[y:y + side, x:x + side])


def save(root, rel, arr, fmt="PNG", **kw) -> str:
    path = os.path.join(root, rel)
    os.makedirs(os.path.dirname(path), exist_ok=True)
    Image.fromarray(arr).save(path, format=fmt, **kw)
    return path


def run(path, **opts):
    opts.setdefault("workers", 1)
    opts.setdefault("probe", False)
    return scan(str(path), ScanOptions(**opts))


def by_code(res) -> dict[str, list[dict]]:
    out: dict[str, list[dict]] = {}
    for f in res.findings_table.to_pylist():
        out.setdefault(f["code"], []).append(f)
    return out


# --------------------------------------------------------------------------- the band join

def brute_force(ph, dh, exact, split, label, bits, train):
    n = len(ph)
    near, conflict, leak = [-1] * n, [-1] * n, [-1] * n
    for j in range(n):
        for i in range(j):
            close = bin(ph[i] ^ ph[j]).count("1") <= bits and bin(dh[i] ^ dh[j]).count("1") <= bits
            same = exact[i] == exact[j]
            if not (close or same):
                continue
            if split[i] >= 0 and split[j] >= 0 and split[i] != split[j]:
                v, o = (i, j) if (split[i] != train and split[j] == train) else (j, i)
                leak[v] = o if leak[v] < 0 else min(leak[v], o)
            elif not same:
                if label[i] >= 0 and label[j] >= 0 and label[i] != label[j]:
                    conflict[j] = i if conflict[j] < 0 else min(conflict[j], i)
                else:
                    near[j] = i if near[j] < 0 else min(near[j], i)
    return near, conflict, leak


@settings(max_examples=60, deadline=None)
@given(st.data())
def test_band_join_equals_the_quadratic_comparison(draw):
    n = draw.draw(st.integers(0, 40))
    bits = draw.draw(st.integers(0, 8))
    # a few base hashes and nearby variants, so that close pairs exist
    bases = draw.draw(st.lists(st.integers(0, 2**64 - 1), min_size=1, max_size=4))
    ph, dh = [], []
    for _ in range(n):
        b = bases[draw.draw(st.integers(0, len(bases) - 1))]
        flips = draw.draw(st.lists(st.integers(0, 63), max_size=10))
        for f in flips:
            b ^= 1 << f
        ph.append(b)
        dh.append(b ^ (1 << draw.draw(st.integers(0, 63))) if draw.draw(st.booleans()) else b)
    exact = [draw.draw(st.integers(0, 3)) * 1000 + (k if draw.draw(st.booleans()) else 0) for k in range(n)]
    split = [draw.draw(st.integers(-1, 2)) for _ in range(n)]
    label = [draw.draw(st.integers(-1, 2)) for _ in range(n)]
    # pixel-identical images have identical hashes
    first: dict[int, int] = {}
    for k in range(n):
        if exact[k] in first:
            ph[k], dh[k] = ph[first[exact[k]]], dh[first[exact[k]]]
        first.setdefault(exact[k], k)
    got = near_partners(np.array(ph, np.uint64), np.array(dh, np.uint64), np.array(exact, np.int64),
                        np.array(split, np.int64), np.array(label, np.int64), bits, train=0)
    want = brute_force(ph, dh, exact, split, label, bits, 0)
    assert (got.near.tolist(), got.conflict.tolist(), got.leak.tolist()) == want


def test_bands_cover_64_bits_once():
    for bits in range(32):
        edges = band_edges(bits)
        assert len(edges) == bits + 1
        assert sum(w for _, w in edges) == 64 and edges[-1][0] + edges[-1][1] == 64


# --------------------------------------------------------------------------- perceptual facts

def test_percentiles_and_entropy_are_exact_on_a_known_histogram():
    hist = [0] * 256
    hist[10], hist[100], hist[200], hist[250] = 25, 25, 25, 25
    assert percentiles_and_entropy(hist) == (10, 100, 250, 2.0)


def reference_laplacian_variance(gray: np.ndarray) -> float:
    """The 4-neighbour Laplacian of the inner pixels, its population variance, the plain way."""
    a = gray.astype(np.float64)
    lap = a[1:-1, :-2] + a[1:-1, 2:] + a[:-2, 1:-1] + a[2:, 1:-1] - 4 * a[1:-1, 1:-1]
    return float(lap.var())


@pytest.mark.parametrize("shape", [(3, 3), (3, 17), (17, 3), (40, 41), (255, 190), (256, 256)])
def test_laplacian_variance_is_the_plain_formula_for_every_image_of_a_stack(shape):
    rng = np.random.default_rng(sum(shape))
    stack = rng.integers(0, 256, (5, *shape), dtype=np.uint8)
    stack[1] = 0  # flat: 0
    stack[2] = np.indices(shape).sum(axis=0) % 2 * 255  # a checkerboard: every Laplacian is +-1020
    stack[3] = ASTRONAUT[:shape[0], :shape[1], 1]  # a photo
    got = laplacian_variances(stack)
    assert got.tolist() == pytest.approx([reference_laplacian_variance(g) for g in stack], rel=1e-12, abs=1e-9)
    assert got[1] == 0.0 and (got[2] > 1000.0 ** 2) == (shape != (3, 3))  # 3 x 3: one inner pixel, no spread
    # each image's value is its own, whichever stack it is computed in
    assert [laplacian_variances(g[None])[0] for g in stack] == got.tolist()


def test_laplacian_variance_of_images_under_three_pixels_is_zero():
    assert laplacian_variances(np.zeros((2, 2, 9), np.uint8)).tolist() == [0.0, 0.0]


def test_hashes_survive_recompression_and_resize_but_not_another_photo():
    a = Image.fromarray(crop(0, 128))
    b = io.BytesIO()
    a.save(b, "JPEG", quality=50)
    again = Image.open(io.BytesIO(b.getvalue()))
    again.load()
    small = a.resize((64, 64))
    other = Image.fromarray(crop(5, 128))
    pa, pj, ps, po = (perceptual(x) for x in (a, again, small, other))
    dist = lambda x, y: max(bin(x.phash ^ y.phash).count("1"), bin(x.dhash ^ y.dhash).count("1"))  # noqa: E731
    assert dist(pa, pj) <= 6 and dist(pa, ps) <= 6 and dist(pa, po) > 12


def test_sixteen_bit_and_float_images_have_no_perceptual_facts():
    assert perceptual(Image.fromarray(np.arange(256, dtype=np.uint16).reshape(16, 16) * 200)) is None
    assert perceptual(Image.fromarray(np.ones((16, 16), np.float32), "F")) is None


def test_facts_of_a_batch_are_each_images_own():
    # a shard computes its images' facts at once: each must be what the image gives alone
    # (so facts do not depend on the shard it lands in), flat and tiny images included
    ims = [Image.fromarray(crop(k, side)) for k, side in ((0, 96), (1, 96), (2, 40), (3, 300), (4, 96))]
    ims += [Image.new("L", (96, 96), v) for v in (0, 7, 255)] + [Image.new("RGB", (96, 96), (9, 9, 9))]
    ims += [Image.fromarray(crop(5, 96)).convert("L"), Image.new("L", (2, 2), 5)]
    alone = [perceptual(im) for im in ims]
    together = perceptual_batch([reduce_image(im) for im in ims])
    assert together == alone
    assert perceptual_batch([reduce_image(im) for im in ims[::-1]]) == alone[::-1]


# --------------------------------------------------------------------------- scans

def split_tree(root):
    save(root, "ds/train/cat/a.png", crop(0))
    save(root, "ds/train/cat/b.png", crop(1))
    save(root, "ds/train/dog/c.png", crop(2))
    save(root, "ds/train/cat/b_small.jpg", np.asarray(Image.fromarray(crop(1)).resize((80, 80))), "JPEG",
         quality=85)  # near duplicate of b.png, same class and split
    save(root, "ds/train/cat/c_as_cat.jpg", crop(2), "JPEG", quality=60)  # near duplicate of dog/c.png
    save(root, "ds/test/cat/a.jpg", crop(0), "JPEG", quality=75)  # near copy of a train image
    save(root, "ds/test/dog/d.png", crop(3))
    # a PNG copy of a JPEG (same pixels, other bytes) in one split
    path = save(root, "ds/test/dog/e.jpg", crop(4), "JPEG", quality=90)
    with Image.open(path) as im:
        im.save(os.path.join(root, "ds/test/dog/e_copy.png"))
    return root


def test_near_duplicates_conflicts_leakage_and_pixel_identity(tmp_path):
    res = run(split_tree(tmp_path))
    found = by_code(res)
    assert [f["sample"] for f in found["DS211"]] == ["ds/train/cat/b_small.jpg"]
    assert [f["sample"] for f in found["DS212"]] == ["ds/train/dog/c.png"]
    assert "'cat'" in found["DS212"][0]["message"] and "ds/train/cat/c_as_cat.jpg" in found["DS212"][0]["message"]
    assert [f["sample"] for f in found["DS213"]] == ["ds/test/cat/a.jpg"]
    leak = found["DS213"][0]["message"]
    assert "ds/train/cat/a.png" in leak and "(test)" in leak and "(train)" in leak
    assert [f["sample"] for f in found["DS208"]] == ["ds/test/dog/e_copy.png"]
    assert "pixel-identical" in found["DS208"][0]["message"]
    assert sorted(found) == ["DS208", "DS211", "DS212", "DS213"]
    src = res.report["sources"][0]
    assert src["kept"] + src["quarantined"] == src["seen"] == 9


def test_findings_do_not_depend_on_workers(tmp_path):
    root = split_tree(tmp_path / "d")
    one = run(root, workers=1, shard_images=2).findings_table.to_pylist()
    two = run(root, workers=2, shard_images=3).findings_table.to_pylist()
    assert one == two


def test_near_duplicate_bits_minus_one_turns_the_join_off(tmp_path):
    res = run(split_tree(tmp_path), thresholds=Thresholds(near_duplicate_bits=-1))
    assert sorted(by_code(res)) == ["DS208"]


def test_near_duplicate_bits_outside_its_range_is_a_usage_error(tmp_path):
    from datasan.errors import UsageError

    save(tmp_path, "p/a.png", crop(0))
    with pytest.raises(UsageError, match="near_duplicate_bits"):
        import datasan

        datasan.scan(tmp_path, thresholds={"near_duplicate_bits": 32}, probe=False, config=False)


def quality_set(root):
    """One normal photo and one of each defect, each from another part of the photo
    (no near duplicates among them)."""
    save(root, "p/ok.png", crop(0))
    save(root, "p/blurred.png", np.asarray(Image.fromarray(crop(1)).filter(ImageFilter.GaussianBlur(6))))
    save(root, "p/dark.png", (crop(2) // 12).astype(np.uint8))
    save(root, "p/bright.png", (240 + crop(3) // 16).astype(np.uint8))
    colours = np.array([(0, 0, 0), (80, 20, 20), (20, 160, 60), (220, 220, 250)], np.uint8)
    save(root, "p/levels.png", colours[crop(4).mean(axis=2).astype(np.uint8) // 64])  # 2 bits of gray
    g = crop(5).mean(axis=2).astype(np.uint8)
    save(root, "p/gray.png", np.ascontiguousarray(np.stack([g, g, g], axis=2)))
    save(root, "p/blank.png", np.zeros((32, 32, 3), np.uint8))  # constant: DS204 only
    save(root, "p/icon.png", np.full((4, 4, 3), 7, np.uint8) + np.eye(4, dtype=np.uint8)[:, :, None])  # DS205 only
    return root


def test_quality_warnings_one_per_defect(tmp_path):
    res = run(quality_set(tmp_path))
    got = sorted((f["code"], f["sample"]) for f in res.findings_table.to_pylist())
    assert got == [("DS204", "p/blank.png"), ("DS205", "p/icon.png"), ("DS214", "p/blurred.png"),
                   ("DS215", "p/dark.png"), ("DS216", "p/bright.png"), ("DS217", "p/levels.png"),
                   ("DS218", "p/gray.png")]
    assert res.report["kept"] == 8  # warnings quarantine nothing


def test_quality_checks_turn_off_at_their_neutral_limits(tmp_path):
    off = Thresholds(min_blur=0, dark_p95=0, bright_p5=255, min_entropy=0)
    res = run(quality_set(tmp_path), thresholds=off)
    assert sorted({f["code"] for f in res.findings_table.to_pylist()}) == ["DS204", "DS205", "DS218"]


def test_index_carries_the_scores(tmp_path):
    import pyarrow.parquet as pq

    root = quality_set(tmp_path / "d")
    save(root, "p/deep.png", (np.arange(256, dtype=np.uint16).reshape(16, 16) * 200), "PNG")
    out = tmp_path / "out"
    with scan(str(root), ScanOptions(workers=1, probe=False), out_dir=str(out)) as res:
        res.write(str(out))
    idx = {r["sample"]: r for r in pq.read_table(out / "index.parquet").to_pylist()}
    ok = idx["p/ok.png"]
    assert len(ok["phash"]) == 16 and len(ok["dhash"]) == 16 and int(ok["phash"], 16) == perceptual(
        Image.open(root / "p/ok.png")).phash
    assert ok["blur"] > 20 and 0 <= ok["brightness_p5"] <= ok["brightness_p50"] <= ok["brightness_p95"] <= 255
    assert idx["p/dark.png"]["brightness_p95"] < 30 and idx["p/blank.png"]["entropy"] == 0.0
    deep = idx["p/deep.png"]
    assert deep["mode"].startswith("I") and deep["phash"] is None and deep["blur"] is None
