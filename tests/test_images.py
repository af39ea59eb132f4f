"""Image datasets: every DS2xx / DS30x rule, exact statistics, layouts, safety."""

from __future__ import annotations

import hashlib
import io
import json
import os
import shutil
import struct
import subprocess
import sys
import zlib

import numpy as np
import pytest
from PIL import Image

from datasan.options import ScanOptions, Thresholds
from datasan.pipeline import scan

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SAMPLE = os.path.join(ROOT, "sample_data", "images")
rng = np.random.default_rng(0)


# --------------------------------------------------------------------------- helpers

def rgb(w=16, h=16, channels=3) -> np.ndarray:
    shape = (h, w, channels) if channels > 1 else (h, w)
    return rng.integers(0, 256, size=shape, dtype=np.uint8)


def save(root, rel, arr_or_im, fmt=None, **kw) -> str:
    path = os.path.join(root, rel)
    os.makedirs(os.path.dirname(path), exist_ok=True)
    im = arr_or_im if isinstance(arr_or_im, Image.Image) else Image.fromarray(arr_or_im)
    im.save(path, format=fmt, **kw)
    return path


def write(root, rel, data: bytes) -> str:
    path = os.path.join(root, rel)
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "wb") as f:
        f.write(data)
    return path


def encoded(arr, fmt="PNG", **kw) -> bytes:
    b = io.BytesIO()
    Image.fromarray(arr).save(b, format=fmt, **kw)
    return b.getvalue()


def run(path, out=None, **opts):
    opts.setdefault("workers", 1)
    opts.setdefault("probe", False)
    res = scan(str(path), ScanOptions(**opts), out_dir=str(out) if out else None)
    return res


def findings(res, code=None):
    rows = res.findings_table.to_pylist()
    return [r for r in rows if code is None or r["code"] == code]


def samples(res, code):
    return sorted(r["sample"] for r in findings(res, code))


def quarantined(res):
    return sorted(res.quarantine_table.column("sample").to_pylist())


def index(res):
    return {r["sample"]: r for r in res.index_table.to_pylist()}


def source(res, name):
    return next(s for s in res.report["sources"] if s["source"] == name)


def tree_digest(root) -> str:
    h = hashlib.sha256()
    for d, dirs, files in sorted(os.walk(root)):
        dirs.sort()
        for f in sorted(files):
            p = os.path.join(d, f)
            h.update(p.encode())
            if os.path.isfile(p) and not os.path.islink(p):
                with open(p, "rb") as fh:
                    h.update(fh.read())
    return h.hexdigest()


def bomb_png(w, h) -> bytes:
    def chunk(kind, body):
        return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", w, h, 8, 2, 0, 0, 0))
            + chunk(b"IDAT", zlib.compress(b"\0" * 64)) + chunk(b"IEND", b""))


# --------------------------------------------------------------------------- statistics

def _expected(arrays):
    """Per-channel mean and population std over all pixels, computed independently."""
    flat = np.concatenate([a.reshape(-1, 3).astype(np.float64) / 255.0 for a in arrays])
    return flat.mean(axis=0), flat.std(axis=0)


@pytest.mark.parametrize("workers", [1, 2])
def test_exact_per_channel_stats_over_kept_images(tmp_path, workers):
    root = tmp_path / "data"
    kept = []
    for cls, n in (("cat", 5), ("dog", 4)):
        for i in range(n):
            a = rgb(12 + i, 10)
            save(root, f"digits/{cls}/{i}.png", a)
            kept.append(a)
    g = rgb(channels=1)
    save(root, "digits/dog/gray.png", g)  # L among RGB: counted as RGB (gray replicated), DS207
    kept.append(np.repeat(g[:, :, None], 3, axis=2))
    write(root, "digits/cat/broken.png", encoded(rgb())[:-40])  # quarantined: not in the stats
    res = run(root, workers=workers)
    st = res.stats["images"]["digits"]
    mean, std = _expected(kept)
    assert st["count"] == 10 and st["channels"] == 3
    np.testing.assert_allclose(st["mean"], mean, rtol=0, atol=1e-12)
    np.testing.assert_allclose(st["std"], std, rtol=0, atol=1e-12)
    assert res.stats["labels"]["digits"] == {"cat": 5, "dog": 5}
    assert samples(res, "DS207") == ["digits/dog/gray.png"]
    assert quarantined(res) == ["digits/cat/broken.png"]
    s = source(res, "digits")
    assert (s["seen"], s["kept"], s["quarantined"]) == (11, 10, 1)


def test_stats_of_16bit_and_float_images(tmp_path):
    root = tmp_path / "d"
    a16 = rng.integers(0, 65536, size=(8, 9), dtype=np.uint16)
    save(root, "depth/a.png", Image.fromarray(a16))
    f = np.linspace(-1.0, 2.0, 72, dtype=np.float32).reshape(8, 9)
    save(root, "depth/b.tif", Image.fromarray(f, "F"))
    res = run(root)
    st = res.stats["images"]["depth"]
    vals = np.concatenate([a16.ravel() / 65535.0, f.ravel().astype(np.float64)])
    assert st["channels"] == 1 and st["count"] == 2
    assert st["mean"][0] == pytest.approx(vals.mean(), abs=1e-12)
    assert st["std"][0] == pytest.approx(vals.std(), abs=1e-12)


def test_recompute_stats_after_probe_removes_samples(tmp_path):
    import pyarrow.compute as pc

    from datasan.engine import LocalEngine
    from datasan.sources.base import ScanContext
    from datasan.sources.images import ImageKind, recompute_stats
    from datasan.discover import discover

    root = tmp_path / "d"
    arrs = {}
    for i in range(6):
        arrs[f"set/c{i % 2}/{i}.png"] = a = rgb()
        save(root, f"set/c{i % 2}/{i}.png", a)
    ctx = ScanContext(str(root), ScanOptions(workers=1), LocalEngine(1), str(tmp_path / "stage"))
    kind = ImageKind()
    sources, rest = kind.claim(discover(root).files, ctx)
    (oc,), _ = kind.run(sources, ctx)
    gone = "set/c0/2.png"
    oc.index = oc.index.filter(pc.not_equal(oc.index.column("sample"), gone))
    oc.kept -= 1
    recompute_stats(oc, ctx)
    mean, std = _expected([a for k, a in arrs.items() if k != gone])
    np.testing.assert_allclose(oc.stats["images"]["set"]["mean"], mean, rtol=0, atol=1e-12)
    np.testing.assert_allclose(oc.stats["images"]["set"]["std"], std, rtol=0, atol=1e-12)
    assert oc.stats["images"]["set"]["count"] == 5
    assert oc.stats["labels"]["set"] == {"c0": 2, "c1": 3}


# --------------------------------------------------------------------------- per-image rules

def test_undecodable_images_DS201(tmp_path):
    root = tmp_path / "d"
    for i in range(3):
        save(root, f"u/{i}.png", rgb())
    write(root, "u/empty.png", b"")
    write(root, "u/text.jpg", b"hello, I am not a picture\n" * 3)
    jpg = encoded(rgb(32, 32), "JPEG", quality=90)
    write(root, "u/truncated.jpg", jpg[: len(jpg) * 2 // 3])  # header intact: only a full decode sees it
    png = bytearray(encoded(rgb()))
    i = png.index(b"IDAT")
    n = struct.unpack(">I", png[i - 4:i])[0]
    body = bytes(b ^ 0x5A for b in png[i + 4:i + 4 + n])
    png[i + 4:i + 4 + n] = body
    png[i + 4 + n:i + 8 + n] = struct.pack(">I", zlib.crc32(b"IDAT" + body))
    write(root, "u/corrupt.png", bytes(png))
    write(root, "u/phone.jpg", b"\0\0\0\x18ftypheic" + b"\0" * 64)  # HEIF: not decodable by Pillow
    res = run(root)
    bad = ["u/corrupt.png", "u/empty.png", "u/phone.jpg", "u/text.jpg", "u/truncated.jpg"]
    assert samples(res, "DS201") == bad
    assert quarantined(res) == bad
    assert sorted(index(res)) == ["u/0.png", "u/1.png", "u/2.png"]
    msgs = {r["sample"]: r["message"] for r in findings(res, "DS201")}
    assert "truncated" in msgs["u/truncated.jpg"] and "0 bytes" in msgs["u/empty.png"]
    assert "HEIF" in msgs["u/phone.jpg"]
    s = source(res, "u")
    assert s["kept"] + s["quarantined"] == s["seen"] == 8


def test_decompression_bomb_DS202_from_header(tmp_path):
    root = tmp_path / "d"
    save(root, "b/ok.png", rgb())
    write(root, "b/bomb.png", bomb_png(50_000, 50_000))  # 2.5e9 pixels: decoding would need 7.5 GB
    res = run(root)
    assert samples(res, "DS202") == ["b/bomb.png"]
    assert "50000 x 50000" in findings(res, "DS202")[0]["message"]
    # the limit is an option
    res = run(root, thresholds=Thresholds(max_image_pixels=100))
    assert samples(res, "DS202") == ["b/bomb.png", "b/ok.png"]


def test_non_finite_float_pixels_DS203(tmp_path):
    root = tmp_path / "d"
    f = np.ones((8, 8), dtype=np.float32)
    f[0, 0], f[1, 1], f[2, 2] = np.nan, np.inf, -np.inf
    save(root, "f/bad.tif", Image.fromarray(f, "F"))
    save(root, "f/good.tif", Image.fromarray(np.arange(64, dtype=np.float32).reshape(8, 8), "F"))
    res = run(root)
    assert samples(res, "DS203") == ["f/bad.tif"]
    assert "1 NaN and 2 infinite" in findings(res, "DS203")[0]["message"]
    assert res.stats["images"]["f"]["mean"] == [31.5]


def test_constant_tiny_and_aspect_DS204_DS205_DS206(tmp_path):
    root = tmp_path / "d"
    save(root, "w/ok.png", rgb())
    save(root, "w/blank.png", Image.new("RGB", (16, 16), (1, 2, 3)))
    save(root, "w/tiny.png", rgb(5, 9))
    save(root, "w/banner.png", rgb(220, 20))
    save(root, "w/tall.png", rgb(10, 101))
    save(root, "w/edge.png", rgb(100, 10))  # aspect exactly 10: fine
    res = run(root)
    assert samples(res, "DS204") == ["w/blank.png"]
    assert samples(res, "DS205") == ["w/tiny.png"]
    assert samples(res, "DS206") == ["w/banner.png", "w/tall.png"]
    assert quarantined(res) == []  # warnings keep the image
    assert len(index(res)) == 6


def test_mode_outliers_DS207(tmp_path):
    root = tmp_path / "d"
    for i in range(4):
        save(root, f"m/{i}.png", rgb())
    save(root, "m/gray.png", rgb(channels=1))
    save(root, "m/alpha.png", rgb(channels=4))
    save(root, "m/cmyk.jpg", Image.fromarray(rgb(channels=4), "CMYK"))
    save(root, "m/deep.png", Image.fromarray(rng.integers(0, 65536, (16, 16), dtype=np.uint16)))
    res = run(root)
    assert samples(res, "DS207") == ["m/alpha.png", "m/cmyk.jpg", "m/deep.png", "m/gray.png"]
    idx = index(res)
    assert (idx["m/alpha.png"]["mode"], idx["m/alpha.png"]["channels"]) == ("RGBA", 4)
    assert (idx["m/cmyk.jpg"]["mode"], idx["m/cmyk.jpg"]["channels"]) == ("CMYK", 4)
    assert res.stats["images"]["m"]["channels"] == 3


def test_gray_dataset_with_rgb_outlier_is_measured_as_gray(tmp_path):
    root = tmp_path / "d"
    grays = [rgb(channels=1) for _ in range(3)]
    for i, g in enumerate(grays):
        save(root, f"g/{i}.png", g)
    c = rgb()
    save(root, "g/color.png", c)
    res = run(root)
    as_l = np.asarray(Image.fromarray(c).convert("L"))
    vals = np.concatenate([g.ravel() for g in grays] + [as_l.ravel()]) / 255.0
    st = res.stats["images"]["g"]
    assert st["channels"] == 1
    assert st["mean"][0] == pytest.approx(vals.mean(), abs=1e-12)
    assert st["std"][0] == pytest.approx(vals.std(), abs=1e-12)
    assert samples(res, "DS207") == ["g/color.png"]


def test_duplicates_DS208_and_conflicting_DS209(tmp_path):
    root = tmp_path / "d"
    for cls in ("cat", "dog"):
        for i in range(2):
            save(root, f"pets/{cls}/{i}.png", rgb())
    shutil.copy(root / "pets/cat/0.png", root / "pets/cat/0_again.png")
    shutil.copy(root / "pets/cat/1.png", root / "pets/dog/really_cat.png")
    res = run(root)
    assert samples(res, "DS208") == ["pets/cat/0_again.png"]
    assert samples(res, "DS209") == ["pets/dog/really_cat.png"]
    msg = findings(res, "DS209")[0]["message"]
    assert "pets/cat/1.png" in msg and "'cat'" in msg and "'dog'" in msg


def test_extension_mismatch_DS210_and_magic_bytes(tmp_path):
    root = tmp_path / "d"
    save(root, "x/a.png", rgb())
    write(root, "x/b.jpg", encoded(rgb(), "PNG"))
    write(root, "x/c", encoded(rgb(), "JPEG"))  # no extension: found by its magic bytes
    write(root, "x/d.dat", encoded(rgb(), "PNG"))
    write(root, "x/notes.bin", b"just some bytes, no image")
    res = run(root)
    assert samples(res, "DS210") == ["x/b.jpg", "x/c", "x/d.dat"]
    assert sorted(index(res)) == ["x/a.png", "x/b.jpg", "x/c", "x/d.dat"]
    assert index(res)["x/c"]["format"] == "JPEG"
    assert [r["source"] for r in findings(res, "DS008")] == ["x/notes.bin"]


# --------------------------------------------------------------------------- layouts and labels

def test_imagefolder_split_layout_and_stray_DS301(tmp_path):
    root = tmp_path / "d"
    for split in ("train", "val"):
        for cls in ("a", "b"):
            save(root, f"ds/{split}/{cls}/0.png", rgb())
    save(root, "ds/train/loose.png", rgb())
    save(root, "ds/stray.png", rgb())
    res = run(root)
    assert samples(res, "DS301") == ["ds/stray.png", "ds/train/loose.png"]
    idx = index(res)
    assert idx["ds/val/b/0.png"]["label"] == "b" and idx["ds/val/b/0.png"]["split"] == "val"
    assert res.stats["labels"]["ds"] == {"a": 2, "b": 2}
    assert source(res, "ds")["layout"] == "split-folders"


def test_unlabeled_folder_has_no_label_errors(tmp_path):
    root = tmp_path / "d"
    for i in range(3):
        save(root, f"photos/{i}.jpg", rgb(), quality=90)
    save(root, "photos/2024/x.jpg", rgb(), quality=90)
    res = run(root)
    assert findings(res) == []
    assert {r["label"] for r in index(res).values()} == {None}
    assert source(res, "photos")["layout"] == "unlabeled" and source(res, "photos")["seen"] == 4
    assert "photos" not in res.stats["labels"]


def test_several_datasets_each_keyed_by_folder(tmp_path):
    root = tmp_path / "d"
    for cls in ("0", "1", "2"):
        save(root, f"images/digits/{cls}/a.png", rgb())
    save(root, "images/loose/a.png", rgb())
    res = run(root)
    assert sorted(res.stats["images"]) == ["images/digits", "images/loose"]
    assert index(res)["images/digits/2/a.png"]["label"] == "2"


def _table_set(root):
    for i in range(12):
        save(root, f"tab/img/{i:02d}.png", rgb())
    rows = ["file,label"] + [f"img/{i:02d}.png,{i % 10}" for i in range(10)]
    rows += ["img/10.png,", "img/99.png,3", "../../outside.png,1", "/etc/hosts,2", "img/00.png,5"]
    write(root, "tab/labels.csv", ("\n".join(rows) + "\n").encode())


def test_labels_table_DS301_DS302_DS303_DS307(tmp_path):
    root = tmp_path / "d"
    _table_set(root)
    save(tmp_path, "outside.png", rgb())  # exists, but outside PATH: must never be opened
    res = run(root)
    assert samples(res, "DS301") == ["tab/img/10.png", "tab/img/11.png"]  # empty label, no row
    (f302,) = findings(res, "DS302")
    assert (f302["sample"], f302["source"], f302["row"]) == (None, "tab/labels.csv", 11)
    assert [(r["sample"], r["source"], r["row"]) for r in findings(res, "DS303")] == [
        (None, "tab/labels.csv", 12), (None, "tab/labels.csv", 13)]
    (f307,) = findings(res, "DS307")
    assert (f307["sample"], f307["row"]) == ("tab/img/00.png", 14)
    assert quarantined(res) == ["tab/img/00.png", "tab/img/10.png", "tab/img/11.png"]
    idx = index(res)
    assert idx["tab/img/03.png"]["label"] == "3" and "outside.png" not in str(sorted(idx))
    s = source(res, "tab")
    assert (s["seen"], s["kept"], s["layout"], s["label_tables"]) == (12, 9, "table", ["tab/labels.csv"])
    # the labels table is the image kind's, not a data table
    assert res.stats["tables"] == {} and [x["kind"] for x in res.report["sources"]] == ["images"]


def test_labels_table_class_ids_DS304_DS305(tmp_path):
    root = tmp_path / "d"
    rows = ["image,y"]
    for i in range(20):
        save(root, f"t/{i}.png", rgb())
        rows.append(f"{i}.png,{i % 10}")
    save(root, "t/far.png", rgb())
    rows.append("far.png,8000")
    save(root, "t/neg.png", rgb())
    rows.append("neg.png,-1")
    write(root, "t/labels.csv", ("\n".join(rows) + "\n").encode())
    res = run(root)
    assert samples(res, "DS305") == ["t/far.png"]
    assert samples(res, "DS304") == ["t/neg.png"]
    res = run(root, num_classes=5)
    assert len(samples(res, "DS304")) == 12  # -1, 8000 and the ten with ids 5..9
    assert findings(res, "DS304")[0]["source"] == "t/labels.csv"


def test_labels_table_formats_parquet_and_jsonl(tmp_path):
    import pyarrow as pa
    import pyarrow.parquet as pq

    root = tmp_path / "d"
    for i in range(3):
        save(root, f"p/{i}.png", rgb())
        save(root, f"j/{i}.png", rgb())
    pq.write_table(pa.table({"path": ["0.png", "1.png", "2.png"], "target": [0, 1, None]}),
                   str(root / "p/meta.parquet"))
    write(root, "j/labels.jsonl", b'{"filename": "0.png", "class": "x"}\n{"filename": "1.png", "class": "y"}\n')
    res = run(root)
    assert samples(res, "DS301") == ["j/2.png", "p/2.png"]
    assert res.stats["labels"]["p"] == {"0": 1, "1": 1}
    assert res.stats["labels"]["j"] == {"x": 1, "y": 1}


def test_unknown_class_name_DS306(tmp_path):
    root = tmp_path / "d"
    for cls in ("cat", "dog", "dgo"):
        save(root, f"pets/{cls}/0.png", rgb())
    res = run(root, classes=["cat", "dog"])
    assert samples(res, "DS306") == ["pets/dgo/0.png"]
    assert quarantined(res) == ["pets/dgo/0.png"]


def test_box_image_dirs_are_detection_images(tmp_path):
    from datasan.discover import discover
    from datasan.engine import LocalEngine
    from datasan.sources.base import ScanContext
    from datasan.sources.images import ImageKind

    root = tmp_path / "d"
    for i in range(2):
        save(root, f"det/images/train/{i}.jpg", rgb(), quality=90)
        save(root, f"det/images/val/{i}.jpg", rgb(), quality=90)
    save(root, "det/images/stray.jpg", rgb(), quality=90)
    files = discover(root).files
    ctx = ScanContext(str(root), ScanOptions(workers=1), LocalEngine(1), str(tmp_path / "s"),
                      shared={"box_image_dirs": {"det/images"}})
    sources, rest = ImageKind().claim(files, ctx)
    assert [(s.name, s.meta["set"].layout, len(s.files)) for s in sources] == [("det/images", "boxes", 5)]
    outcomes, _ = ImageKind().run(sources, ctx)
    assert len(outcomes[0].findings) == 0  # no DS301 for detection images, no class inference
    assert set(outcomes[0].index.column("label").to_pylist()) == {None}
    # without the note, the same tree is an ImageFolder with classes train and val
    ctx.shared = {}
    sources, _ = ImageKind().claim(files, ctx)
    assert [s.meta["set"].layout for s in sources] == ["folders"]


def test_image_labels_option(tmp_path):
    from datasan.errors import UsageError

    root = tmp_path / "d"
    for cls in ("a", "b"):
        save(root, f"s/{cls}/0.png", rgb())
    res = run(root, image_labels="none")
    assert source(res, "s")["layout"] == "unlabeled"
    with pytest.raises(UsageError):
        run(root, image_labels="bogus")


# --------------------------------------------------------------------------- safety

def test_symlinks_fifos_and_path_never_written(tmp_path):
    root = tmp_path / "d"
    for i in range(3):
        save(root, f"pics/{i}.png", rgb())
    save(tmp_path, "secret.png", rgb())
    os.symlink(tmp_path / "secret.png", root / "pics/escape.png")
    os.symlink(root / "pics", root / "pics/loop")
    os.symlink(root / "pics/0.png", root / "pics/alias.png")  # inside PATH: read (a duplicate)
    os.mkfifo(root / "pics/pipe.png")
    before = tree_digest(root)
    res = run(root, out=tmp_path / "out", workers=2)
    res.write(tmp_path / "out")
    assert tree_digest(root) == before
    assert sorted(index(res)) == ["pics/0.png", "pics/1.png", "pics/2.png", "pics/alias.png"]
    assert samples(res, "DS208") == ["pics/alias.png"]
    assert sorted(r["source"] for r in findings(res, "DS006")) == ["pics/escape.png", "pics/loop"]
    assert [r["source"] for r in findings(res, "DS007")] == ["pics/pipe.png"]


def test_fifo_swapped_in_after_discovery_does_not_block(tmp_path):
    from datasan.sources.images.decode import ImageTask, inspect_image

    p = tmp_path / "x.png"
    os.mkfifo(p)
    rec = inspect_image("x.png", str(p), ImageTask([]))
    assert [f.code for f in rec.findings] == ["DS201"] and not rec.ok


# --------------------------------------------------------------------------- sample_data and the CLI

def test_sample_data_images_every_defect(tmp_path):
    res = run(SAMPLE, classes=None)
    counts = res.report["findings"]["by_code"]
    assert counts == {"DS201": 4, "DS202": 1, "DS203": 1, "DS204": 1, "DS205": 1, "DS206": 1, "DS207": 3,
                      "DS208": 2, "DS209": 1, "DS210": 2, "DS213": 1, "DS301": 4, "DS302": 1, "DS303": 2, "DS304": 1,
                      "DS305": 1, "DS307": 1}
    for s in res.report["sources"]:
        assert s["kept"] + s["quarantined"] == s["seen"]
    assert res.report["samples"] == 60 and res.report["kept"] == 47
    res = run(SAMPLE, classes=["cat", "dog"], select=["DS306"])
    assert [s for s in samples(res, "DS306") if s.startswith("folder/")] == ["folder/dgo/0.png"]


def test_cli_subprocess_on_sample_images(tmp_path):
    out = tmp_path / "out"
    env = dict(os.environ, PYTHONPATH=ROOT)
    p = subprocess.run([sys.executable, "-m", "datasan", "scan", SAMPLE, "--out", str(out), "--no-probe",
                        "--workers", "2", "--format", "json"], env=env, capture_output=True, text=True)
    assert p.returncode == 1, p.stderr
    stats = json.loads((out / "stats.json").read_text())
    assert sorted(stats["images"]) == ["folder", "split", "table", "unlabeled"]
    import pyarrow.parquet as pq

    idx = pq.read_table(out / "index.parquet")
    assert {"sample", "label", "width", "height", "mode", "channels"} <= set(idx.column_names)
    assert idx.num_rows == 47


def test_large_files_are_hashed_streaming_and_decoded_from_disk(tmp_path, monkeypatch):
    from datasan.sources.images import decode

    root = tmp_path / "d"
    a = rgb()
    save(root, "big/a.png", a)
    shutil.copy(root / "big/a.png", root / "big/b.png")
    write(root, "big/cut.png", encoded(rgb())[:-30])
    small = index(run(root))
    monkeypatch.setattr(decode, "IN_MEMORY_BYTES", 0)
    res = run(root)
    assert index(res)["big/a.png"]["hash"] == small["big/a.png"]["hash"]
    assert samples(res, "DS208") == ["big/b.png"] and samples(res, "DS201") == ["big/cut.png"]
    np.testing.assert_allclose(res.stats["images"]["big"]["mean"], _expected([a])[0], atol=1e-12)


def test_labels_table_paths_relative_to_path_are_accepted(tmp_path):
    root = tmp_path / "d"
    for i in range(2):
        save(root, f"set/img/{i}.png", rgb())
    write(root, "set/labels.csv", b"path,class\nset/img/0.png,a\nimg/1.png,b\n")
    res = run(root)
    assert findings(res) == []
    assert res.stats["labels"]["set"] == {"a": 1, "b": 1}


def test_unreadable_labels_table_is_DS001_and_its_images_unlabeled(tmp_path):
    root = tmp_path / "d"
    save(root, "t/a.png", rgb())
    write(root, "t/labels.csv", b'file,label\n"a.png,0\n')  # unterminated quote
    res = run(root)
    (f,) = findings(res, "DS001")
    assert (f["source"], f["sample"]) == ("t/labels.csv", None)
    assert samples(res, "DS301") == ["t/a.png"]
    assert source(res, "t")["seen"] == 1 and res.stats["tables"] == {}


def test_label_file_and_per_source_classes_from_config(tmp_path, scan_to):
    """`label_file` names a labels table anywhere under PATH; `sources` globs give per-dataset classes."""
    from PIL import Image

    d = tmp_path / "d"
    (d / "imgs").mkdir(parents=True)
    (d / "meta").mkdir()
    rng = np.random.default_rng(0)
    for i in range(4):
        Image.fromarray(rng.integers(0, 255, (16, 16, 3), dtype=np.uint8)).save(d / "imgs" / f"{i}.png")
    (d / "meta" / "labels.csv").write_text("file,label\nimgs/0.png,cat\nimgs/1.png,dog\nimgs/2.png,cow\n"
                                           "imgs/3.png,cat\n")
    s = scan_to(d, label_file="meta/labels.csv", sources={"meta": {"classes": ["cat", "dog"]}})
    assert [src["source"] for src in s.report["sources"]] == ["meta"]  # the table's folder is the dataset
    import pyarrow.parquet as pq

    idx = pq.read_table(s.out / "index.parquet").to_pandas().set_index("sample")
    assert idx.loc["imgs/0.png", "label"] == "cat"
    assert s.quarantine["sample"].tolist() == ["imgs/2.png"]
    assert s.codes() == ["DS306"]
    (d / "meta" / "other.csv").write_text("a,b\n1,2\n")
    s = scan_to(d, label_file="meta/other.csv")
    assert "DS001" in s.codes()
