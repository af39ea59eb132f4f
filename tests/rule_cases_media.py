"""Rule cases (see tests/test_rule_cases.py) for images (DS2xx), image labels and
boxes (DS3xx) and the probe (DS4xx)."""

from __future__ import annotations

import io
import json
import zlib
from pathlib import Path

from rule_case import Case, write


# --------------------------------------------------------------------------- images

def _pixels(name: str, w: int = 16, h: int = 16, mode: str = "RGB"):
    """Noise pixels, different for every name (no accidental duplicates or constant images)."""
    import numpy as np

    rng = np.random.default_rng(zlib.crc32(name.encode()))
    shape = (h, w) if mode == "L" else (h, w, 3)
    return rng.integers(0, 256, size=shape, dtype=np.uint8)


def _png(path: Path, w: int = 16, h: int = 16, mode: str = "RGB", fmt: str = "PNG", pixels=None) -> Path:
    from PIL import Image

    buf = io.BytesIO()
    arr = _pixels(str(path.name), w, h, mode) if pixels is None else pixels
    Image.fromarray(arr, mode).save(buf, fmt)
    return write(path, buf.getvalue())


def _photos(root: Path, *names: str) -> Path:
    """An unlabeled image folder: no label findings, only the per-image ones."""
    for n in names or ("a.png", "b.png"):
        _png(root / "photos" / n)
    return root


def _undecodable(root: Path) -> Path:
    write(root / "photos" / "b.png", b"these bytes are not an image")
    return _photos(root, "a.png")


def _float_tiff(root: Path, nan: bool) -> Path:
    import numpy as np
    from PIL import Image

    a = np.linspace(0.0, 1.0, 256, dtype=np.float32).reshape(16, 16)
    if nan:
        a[3, 4] = np.nan
    (root / "depth").mkdir()
    Image.fromarray(a, "F").save(root / "depth" / "a.tif")
    return root


def _constant(root: Path) -> Path:
    import numpy as np

    _png(root / "photos" / "c.png", pixels=np.zeros((16, 16, 3), dtype=np.uint8))
    return _photos(root, "a.png")


def _sized(w: int, h: int):
    def build(root: Path) -> Path:
        _png(root / "photos" / "s.png", w, h)
        return _photos(root, "a.png")
    return build


def _one_image(w: int, h: int):
    def build(root: Path) -> Path:
        _png(root / "photos" / "s.png", w, h)
        return root
    return build


def _modes(odd: str):
    def build(root: Path) -> Path:
        for n in ("a.png", "b.png", "c.png"):
            _png(root / "photos" / n)
        _png(root / "photos" / "d.png", mode=odd)
        return root
    return build


def _copies(root: Path, folders: tuple[str, str], same: bool) -> Path:
    first = _png(root / folders[0] / "a.png")
    if same:
        write(root / folders[1] / "b.png", first.read_bytes())
    else:
        _png(root / folders[1] / "b.png")
    return root


def _named(name: str):
    def build(root: Path) -> Path:
        _png(root / "photos" / name, fmt="PNG")
        return _photos(root, "a.png")
    return build


# --------------------------------------------------------------------------- image labels

def _classes(root: Path, *classes: str, stray: bool = False) -> Path:
    for c in classes:
        _png(root / "pets" / c / f"{c}.png")
    if stray:
        _png(root / "pets" / "stray.png")
    return root


def _table_set(*rows: str):
    """Images a.png and b.png under t/img and a labels table of ``rows`` (file,label)."""
    def build(root: Path) -> Path:
        _png(root / "t" / "img" / "a.png")
        _png(root / "t" / "img" / "b.png")
        write(root / "t" / "labels.csv", "file,label\n" + "".join(r + "\n" for r in rows))
        return root
    return build


def _distant(far: bool):
    def build(root: Path) -> Path:
        rows = ["file,label"]
        for i in range(20):
            _png(root / "t" / f"{i}.png", 8, 8)
            rows.append(f"{i}.png,{i % 10}")
        _png(root / "t" / "x.png", 8, 8)
        rows.append(f"x.png,{8000 if far else 3}")
        write(root / "t" / "labels.csv", "\n".join(rows) + "\n")
        return root
    return build


# --------------------------------------------------------------------------- COCO and YOLO

def _coco(**change):
    """A COCO file with one image and one box; ``change`` replaces the annotation's keys,
    ``images=`` / ``categories=`` the lists, ``text=`` the whole file, ``extra_image``
    writes an image the file does not list, ``broken_image`` garbage instead of a.png."""
    def build(root: Path) -> Path:
        d = root / "coco"
        if change.pop("broken_image", False):
            write(d / "images" / "a.png", b"not an image")
        else:
            _png(d / "images" / "a.png", 64, 48)
        if change.pop("extra_image", False):
            _png(d / "images" / "b.png", 64, 48)
        ann = {"id": 1, "image_id": 1, "category_id": 1, "bbox": [10, 10, 20, 20]}
        doc = {"images": change.pop("images", [{"id": 1, "file_name": "a.png", "width": 64, "height": 48}]),
               "annotations": [], "categories": change.pop("categories", [{"id": 1, "name": "cat"}])}
        text = change.pop("text", None)
        extra = change.pop("annotations", [])
        ann.update(change)
        doc["annotations"] = [ann, *extra]
        write(d / "ann.json", text if text is not None else json.dumps(doc))
        return root
    return build


_CLEAN = _coco()


def _coco_json(annotation_keys: str) -> str:
    """The text of a COCO file whose one annotation has ``annotation_keys`` (raw JSON text:
    tokens json.dumps would not write)."""
    return ('{"images": [{"id": 1, "file_name": "a.png", "width": 64, "height": 48}], "annotations": '
            '[{"id": 1, "image_id": 1, "category_id": 1, ' + annotation_keys + '}], '
            '"categories": [{"id": 1, "name": "cat"}]}')


def _yolo(lines: str = "0 0.5 0.5 0.2 0.2\n", classes: bool = True, ghost: bool = False,
          background: bool = False):
    def build(root: Path) -> Path:
        d = root / "y"
        _png(d / "images" / "a.png", 32, 32)
        write(d / "labels" / "a.txt", lines)
        if classes:
            write(d / "classes.txt", "cat\ndog\n")
        if ghost:
            write(d / "labels" / "g.txt", "0 0.5 0.5 0.2 0.2\n")
        if background:
            _png(d / "images" / "bg.png", 32, 32)
        return root
    return build


# --------------------------------------------------------------------------- probe

def _regression(name: str = "r.csv", rows: int = 40, cell: tuple[int, str, str] | None = None):
    """A regression table x0, x1, target (noise); ``cell`` = (row, column, text) replaces one value."""
    def build(root: Path) -> Path:
        import numpy as np

        rng = np.random.default_rng(7)
        x = rng.normal(size=(rows, 2))
        y = rng.uniform(1.0, 2.0, size=rows)
        table = [[f"{x[i, 0]:.6f}", f"{x[i, 1]:.6f}", f"{y[i]:.6f}"] for i in range(rows)]
        if cell is not None:
            r, col, text = cell
            table[r][("x0", "x1", "target").index(col)] = text
        write(root / name, "x0,x1,target\n" + "".join(",".join(t) + "\n" for t in table))
        return root
    return build


def _one_feature(value: str):
    def build(root: Path) -> Path:
        rows = [f"{1 + i / 10:.1f},{1 + i / 7:.6f}" for i in range(20)]
        rows[5] = f"{value},1.5"
        write(root / "f.csv", "x,target\n" + "\n".join(rows) + "\n")
        return root
    return build


def _no_target(root: Path) -> Path:
    write(root / "t.csv", "a,b\n" + "".join(f"{i}.5,{i * 2}.25\n" for i in range(10)))
    return root


# --------------------------------------------------------------------------- perceptual (DS211-DS218)

def _photo(k: int = 0, side: int = 96):
    """A real photo crop (scikit-image's bundled astronaut, no download), different for each k."""
    import numpy as np
    from skimage import data

    a = data.astronaut()
    y, x = 40 + 90 * (k % 4), 40 + 90 * (k // 4 % 4)
    return np.ascontiguousarray(a[y:y + side, x:x + side])


def _save(path: Path, arr, fmt: str = "PNG", **kw) -> Path:
    from PIL import Image

    buf = io.BytesIO()
    Image.fromarray(arr).save(buf, fmt, **kw)
    return write(path, buf.getvalue())


def _pair(first: str, second: str, same: bool):
    """``first`` a photo (PNG); ``second`` its JPEG re-encode (``same``) or another photo."""
    def build(root: Path) -> Path:
        _save(root / first, _photo(0))
        _save(root / second, _photo(0 if same else 5), "JPEG", quality=70)
        return root
    return build


def _classes_pair(same_class: bool):
    def build(root: Path) -> Path:
        _save(root / "pets/cat/a.png", _photo(0))
        _save(root / f"pets/{'cat' if same_class else 'dog'}/b.jpg", _photo(0), "JPEG", quality=70)
        _save(root / "pets/dog/c.png", _photo(6))
        return root
    return build


def _edited(edit):
    def build(root: Path) -> Path:
        _save(root / "photos/a.png", _photo(1))
        _save(root / "photos/b.png", _photo(2) if edit is None else edit(_photo(2)))
        return root
    return build


def _blurred(a):
    from PIL import Image, ImageFilter

    return __import__("numpy").asarray(Image.fromarray(a).filter(ImageFilter.GaussianBlur(6)))


def _dark(a):
    return (a // 12).astype(a.dtype)


def _overexposed(a):
    return (240 + a // 16).astype(a.dtype)


def _four_levels(a):
    return (a // 64 * 64).astype(a.dtype)  # 2 bits of information per pixel at most


def _gray_rgb(a):
    import numpy as np

    g = a.mean(axis=2).astype(np.uint8)
    return np.ascontiguousarray(np.stack([g, g, g], axis=2))


def _blobs(flip: bool):
    """Three well-separated classes of 20 rows (x0, x1, label); ``flip`` files row 7 under another class."""
    def build(root: Path) -> Path:
        import numpy as np

        rng = np.random.default_rng(5)
        label = np.repeat(np.arange(3), 20)
        x = rng.normal(scale=0.3, size=(60, 2)) + np.array([[0, 0], [4, 0], [0, 4]])[label]
        if flip:
            label[7] = 2
        write(root / "blobs.csv", "x0,x1,label\n" + "".join(f"{a:.5f},{b:.5f},{c}\n" for (a, b), c in zip(x, label)))
        return root
    return build


PROBE = {"probe": True}

CASES = {
    "DS201": Case(_undecodable, _photos),
    "DS202": Case(_one_image(16, 16), _one_image(9, 9), options={"thresholds": {"max_image_pixels": 100}}),
    "DS203": Case(lambda r: _float_tiff(r, nan=True), lambda r: _float_tiff(r, nan=False)),
    "DS204": Case(_constant, _photos),
    "DS205": Case(_sized(4, 4), _sized(16, 16)),
    "DS206": Case(_sized(200, 10), _sized(40, 10)),
    "DS207": Case(_modes("L"), _modes("RGB")),
    "DS208": Case(lambda r: _copies(r, ("photos", "photos"), True), lambda r: _copies(r, ("photos", "photos"), False)),
    "DS209": Case(lambda r: _copies(r, ("pets/cat", "pets/dog"), True),
                  lambda r: _copies(r, ("pets/cat", "pets/dog"), False)),
    "DS210": Case(_named("b.jpg"), _named("b.png")),
    "DS211": Case(_pair("photos/a.png", "photos/b.jpg", True), _pair("photos/a.png", "photos/b.jpg", False)),
    "DS212": Case(_classes_pair(False), _classes_pair(True)),
    "DS213": Case(_pair("ds/train/cat/a.png", "ds/test/cat/b.jpg", True),
                  _pair("ds/train/cat/a.png", "ds/test/cat/b.jpg", False)),
    "DS214": Case(_edited(_blurred), _edited(None)),
    "DS215": Case(_edited(_dark), _edited(None)),
    "DS216": Case(_edited(_overexposed), _edited(None)),
    "DS217": Case(_edited(_four_levels), _edited(None)),
    "DS218": Case(_edited(_gray_rgb), _edited(None)),
    "DS301": Case(lambda r: _classes(r, "cat", "dog", stray=True), lambda r: _classes(r, "cat", "dog")),
    "DS302": Case(_table_set("img/a.png,x", "img/b.png,y", "img/zz.png,x"), _table_set("img/a.png,x", "img/b.png,y")),
    "DS303": Case(_table_set("img/a.png,x", "img/b.png,y", "../../out.png,x"),
                  _table_set("img/a.png,x", "img/b.png,y")),
    "DS304": Case(_table_set("img/a.png,0", "img/b.png,-1"), _table_set("img/a.png,0", "img/b.png,1")),
    "DS305": Case(_distant(True), _distant(False)),
    "DS306": Case(lambda r: _classes(r, "cat", "dog", "dgo"), lambda r: _classes(r, "cat", "dog"),
                  options={"classes": ["cat", "dog"]}),
    "DS307": Case(_table_set("img/a.png,x", "img/b.png,y", "img/a.png,y"),
                  _table_set("img/a.png,x", "img/b.png,y", "img/a.png,x")),
    "DS320": Case(_coco(text='{"images": [], "annotations": [], "categories": ['), _CLEAN),
    "DS321": Case(_coco(text='{"images": {}, "annotations": [], "categories": []}'), _CLEAN),
    "DS322": Case(_coco(text=_coco_json('"bbox": [10, 10, 20, 20], "score": NaN')), _CLEAN),
    "DS323": Case(_coco(bbox=[10, 10, 0, 20]), _CLEAN),
    "DS324": Case(_coco(text=_coco_json('"bbox": [10, 1e400, 20, 20]')), _CLEAN),
    "DS325": Case(_coco(bbox=[60, 10, 30, 20]), _CLEAN),
    "DS326": Case(_coco(category_id=9), _CLEAN),
    "DS327": Case(_yolo("1.5 0.5 0.5 0.2 0.2\n"), _yolo()),
    "DS328": Case(_coco(bbox="10 10 20 20"), _CLEAN),
    "DS329": Case(_coco(image_id=7), _CLEAN),
    "DS330": Case(_coco(images=[{"id": 1, "file_name": "missing.png", "width": 64, "height": 48}]), _CLEAN),
    "DS331": Case(_coco(images=[{"id": 1, "file_name": "../../../out.png", "width": 64, "height": 48}]), _CLEAN),
    "DS332": Case(_yolo(ghost=True), _yolo()),
    "DS333": Case(_coco(extra_image=True), _CLEAN),
    "DS334": Case(_coco(annotations=[{"id": 1, "image_id": 1, "category_id": 1, "bbox": [5, 5, 20, 20]}]), _CLEAN),
    "DS335": Case(_coco(bbox=[10, 10, 0.5, 0.5]), _CLEAN),
    "DS336": Case(_yolo(background=True), _yolo()),
    "DS337": Case(_coco(images=[{"id": 1, "file_name": "a.png", "width": 64, "height": 48}, {"file_name": "b.png"}]),
                  _CLEAN),
    "DS338": Case(_coco(broken_image=True, images=[{"id": 1, "file_name": "a.png"}]),
                  _coco(images=[{"id": 1, "file_name": "a.png"}])),
    "DS339": Case(_yolo(classes=False), _yolo()),
    "DS401": Case(_regression(cell=(17, "x1", "1e38")), _regression(), options=PROBE),
    "DS402": Case(_regression(cell=(9, "target", "0")), _regression(),
                  options={**PROBE, "probe_model": "rule_case_models:zero_linear_sqrt_loss"}),
    "DS403": Case(_regression(cell=(3, "x0", "70000")), _regression(), options=PROBE),
    "DS404": Case(_one_feature("3.4e38"), _one_feature("1.2"),
                  options={**PROBE, "probe_model": "rule_case_models:tiny_linear_l1_loss"}),
    "DS405": Case(_regression(rows=60, cell=(11, "x0", "30000")), _regression(rows=60), options=PROBE),
    "DS406": Case(_no_target, _regression(), options=PROBE),
    "DS407": Case(_blobs(flip=True), _blobs(flip=False), options=PROBE),
}
