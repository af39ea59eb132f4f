"""Regenerate sample_data/images/ (deterministic): python sample_data/make_images.py

Four small image datasets, one per layout, with every image defect datasan
checks (see sample_data/README.md for the rule each must trigger).
"""

from __future__ import annotations

import io
import os
import shutil
import struct
import zlib

import numpy as np
from PIL import Image

HERE = os.path.join(os.path.dirname(os.path.abspath(__file__)), "images")
rng = np.random.default_rng(7)


def noise(w=16, h=16, mode="RGB") -> Image.Image:
    c = {"RGB": 3, "L": 1}[mode]
    a = rng.integers(0, 256, size=(h, w, c) if c > 1 else (h, w), dtype=np.uint8)
    return Image.fromarray(a, mode)


def save(rel: str, im: Image.Image, fmt: str | None = None, **kw) -> str:
    path = os.path.join(HERE, rel)
    os.makedirs(os.path.dirname(path), exist_ok=True)
    im.save(path, format=fmt, **kw)
    return path


def write(rel: str, data: bytes) -> None:
    path = os.path.join(HERE, rel)
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "wb") as f:
        f.write(data)


def png_bytes(im: Image.Image) -> bytes:
    b = io.BytesIO()
    im.save(b, format="PNG")
    return b.getvalue()


def jpeg_bytes(im: Image.Image) -> bytes:
    b = io.BytesIO()
    im.save(b, format="JPEG", quality=80)
    return b.getvalue()


def bomb_png(w: int, h: int) -> bytes:
    """A PNG whose header declares w x h pixels (the pixel data is a few bytes)."""
    def chunk(kind: bytes, body: bytes) -> bytes:
        return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))
    ihdr = struct.pack(">IIBBBBB", w, h, 8, 0, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(b"\0" * 64)) + chunk(b"IEND", b"")


def corrupt_png(im: Image.Image) -> bytes:
    """A PNG whose compressed pixel data is garbage (the chunk CRCs still match)."""
    data = bytearray(png_bytes(im))
    i = data.index(b"IDAT")
    n = struct.unpack(">I", data[i - 4:i])[0]
    body = bytes(b ^ 0x5A for b in data[i + 4:i + 4 + n])
    data[i + 4:i + 4 + n] = body
    data[i + 4 + n:i + 8 + n] = struct.pack(">I", zlib.crc32(b"IDAT" + body))
    return bytes(data)


def main() -> None:
    shutil.rmtree(HERE, ignore_errors=True)
    # ------------------------------------------------------------ folder/: ImageFolder root/<class>/<file>
    for cls in ("cat", "dog"):
        for i in range(4):
            save(f"folder/{cls}/{i}.png", noise())
    save("folder/dgo/0.png", noise())  # misspelt class: DS306 with classes [cat, dog]
    write("folder/cat/truncated.jpg", (lambda b: b[:len(b) * 2 // 3])(jpeg_bytes(noise(32, 32))))  # DS201
    write("folder/cat/empty.png", b"")  # DS201
    write("folder/cat/notes.png", b"this is a text file, not a picture\n")  # DS201
    write("folder/dog/corrupt.png", corrupt_png(noise()))  # DS201
    write("folder/dog/bomb.png", bomb_png(20000, 20000))  # DS202
    save("folder/cat/nan.tif", Image.fromarray(np.array([[0.5, np.nan] * 8] * 16, dtype=np.float32), "F"))  # DS203
    save("folder/cat/blank.png", Image.new("RGB", (16, 16), (40, 80, 120)))  # DS204
    save("folder/dog/tiny.png", noise(4, 4))  # DS205
    save("folder/dog/banner.png", noise(240, 12))  # DS206
    save("folder/cat/gray.png", noise(mode="L"))  # DS207
    shutil.copy(os.path.join(HERE, "folder/cat/0.png"), os.path.join(HERE, "folder/cat/0_copy.png"))  # DS208
    shutil.copy(os.path.join(HERE, "folder/cat/1.png"), os.path.join(HERE, "folder/dog/also_cat_1.png"))  # DS209
    write("folder/cat/really_png.jpg", png_bytes(noise()))  # DS210
    save("folder/stray.png", noise())  # DS301: outside every class folder
    # ------------------------------------------------------------ split/: root/<split>/<class>/<file>
    for split in ("train", "val"):
        for cls in ("cat", "dog"):
            for i in range(3):
                save(f"split/{split}/{cls}/{i}.png", noise())
    shutil.copy(os.path.join(HERE, "split/train/cat/0.png"), os.path.join(HERE, "split/val/cat/leak.png"))  # DS208
    save("split/train/loose.png", noise())  # DS301: in a split folder, outside its class folders
    # ------------------------------------------------------------ table/: images + labels.csv
    rows = ["file,label"]
    for i in range(12):
        save(f"table/img/{i:02d}.png", noise())
        rows.append(f"img/{i:02d}.png,{i % 10}")
    save("table/img/12.png", noise())
    rows.append("img/12.png,8000")  # DS305: distant class id
    save("table/img/13.png", noise())
    rows.append("img/13.png,-1")  # DS304: negative class id
    save("table/img/14.png", noise())
    rows.append("img/14.png,")  # DS301: empty label
    save("table/img/15.png", noise())  # DS301: no row at all
    rows.append("img/99.png,3")  # DS302: file does not exist
    rows.append("../../../etc/passwd,1")  # DS303: outside PATH
    rows.append("/etc/hosts,2")  # DS303: absolute
    rows.append("img/00.png,7")  # DS307: img/00.png is also labelled 0
    write("table/labels.csv", ("\n".join(rows) + "\n").encode())
    # ------------------------------------------------------------ unlabeled/: a folder of images, no labels
    for i in range(5):
        save(f"unlabeled/{i}.jpg", noise(24, 20), quality=85)
    write("unlabeled/snapshot", jpeg_bytes(noise(24, 20)))  # DS210: a JPEG without extension
    save("unlabeled/rgba.png", Image.fromarray(rng.integers(0, 256, (20, 24, 4), dtype=np.uint8), "RGBA"))  # DS207


if __name__ == "__main__":
    main()
