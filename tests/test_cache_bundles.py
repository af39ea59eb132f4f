"""Per-file results stored a shard at a time: a cold image scan writes one bundle per shard and
one index (not an entry per image); the index finds unchanged files of a changed shard by
content; a lost index or a damaged bundle costs recomputation, never a wrong answer."""

from __future__ import annotations

from pathlib import Path

from test_cache import Rescans, _images

from datasan.cache import CacheStore


def _entries(cache: Path) -> dict[Path, object]:
    store = CacheStore(str(cache))
    return {p: store.get(p.name) for p in (cache / "entries").rglob("*") if p.is_file()}


def _is_bundle(value) -> bool:
    return isinstance(value, dict) and set(value) == {"units", "values"}


def _change_one_image(data: Path) -> None:
    import numpy as np
    from PIL import Image

    Image.fromarray(np.zeros((24, 24, 3), np.uint8) + 90).save(data / "cat" / "001.png")


def _setup(tmp_path: Path) -> tuple[Path, Rescans]:
    data = tmp_path / "imgs"
    _images(data)  # 13 images: 12 and a broken one
    rs = Rescans(tmp_path, data, shard_images=4)
    first = rs.scan()
    assert (first["hits"], first["misses"], first["stored"]) == (0, 13, 13)
    return data, rs


def test_a_cold_image_scan_writes_a_bundle_per_shard_and_one_index(tmp_path):
    _, rs = _setup(tmp_path)
    values = list(_entries(rs.cache).values())
    bundles = [v for v in values if _is_bundle(v)]
    # 4 shards of at most 4 images, 1 index, the near-duplicate join's answer (cache/memo.py)
    assert (len(values), len(bundles)) == (6, 4)
    assert sorted(len(b["units"]) for b in bundles) == [1, 4, 4, 4]


def test_unchanged_files_of_a_changed_shard_come_from_the_index(tmp_path):
    data, rs = _setup(tmp_path)
    _change_one_image(data)
    c = rs.scan()
    assert (c["hits"], c["misses"], c["stored"], c["corrupt"]) == (12, 1, 1, 0)
    # the shard's 3 unchanged images are known by their stamps: only the changed one is read
    assert c["hashed_files"] == 1


def test_a_file_with_a_new_stamp_is_hashed_again_and_found_by_content(tmp_path):
    import os

    data, rs = _setup(tmp_path)
    _change_one_image(data)
    touched = data / "cat" / "003.png"  # same bytes, a new mtime
    st = touched.stat()
    os.utime(touched, ns=(st.st_atime_ns, st.st_mtime_ns + 1_000_000_000))
    c = rs.scan()
    assert (c["hits"], c["misses"], c["hashed_files"], c["corrupt"]) == (12, 1, 2, 0)
    c = rs.scan()  # nothing changed: every shard by its stat key, nothing read
    assert (c["hits"], c["misses"], c["hashed_files"]) == (13, 0, 0)


def test_a_file_replaced_at_the_same_path_is_read_again(tmp_path):
    data, rs = _setup(tmp_path)
    (data / "cat" / "001.png").rename(data / "cat" / "001b.png")
    _change_one_image(data)  # a new file (other pixels, inode and stamp) where the renamed one was
    c = rs.scan()  # both read; 001b.png is a new sample (its id is in the key): computed too
    assert (c["hits"], c["misses"], c["hashed_files"], c["corrupt"]) == (12, 2, 2, 0)


def test_a_lost_index_recomputes_the_changed_shard(tmp_path):
    data, rs = _setup(tmp_path)
    # the index maps content keys to bundle keys (the other entry: the join's answer, a tuple)
    index = [p for p, v in _entries(rs.cache).items() if isinstance(v, dict) and not _is_bundle(v)]
    assert len(index) == 1
    index[0].unlink()
    _change_one_image(data)
    c = rs.scan()  # the shard's 3 unchanged images cannot be found by content: computed again
    assert (c["hits"], c["misses"], c["stored"], c["corrupt"]) == (9, 4, 4, 0)
    _change_one_image(data)  # same pixels, new stamp: found by content in the new index
    c = rs.scan()
    assert (c["hits"], c["misses"], c["corrupt"]) == (13, 0, 0)


def test_a_damaged_bundle_is_dropped_and_its_shard_recomputed(tmp_path):
    _, rs = _setup(tmp_path)
    path = next(p for p, v in _entries(rs.cache).items() if _is_bundle(v) and len(v["units"]) == 4)
    raw = bytearray(path.read_bytes())
    raw[len(raw) // 2] ^= 0xFF
    path.write_bytes(bytes(raw))
    c = rs.scan()
    assert (c["hits"], c["misses"], c["stored"], c["corrupt"]) == (9, 4, 4, 1)
    c = rs.scan()
    assert (c["hits"], c["misses"], c["corrupt"]) == (13, 0, 0)


def test_a_packed_image_record_comes_back_equal():
    from datasan.cache.specs import pack_record, unpack_record
    from datasan.findings import Finding
    from datasan.sources.images.decode import ImageRecord
    from datasan.sources.images.perceptual import Perceptual
    from datasan.sources.images.pixels import PixelSums

    full = ImageRecord("a/b.png", True, 64, 32, "RGB", "PNG", 1234, b"\1" * 16, "RGB",
                       PixelSums(255, 2048, [1, 2, 3], [4, 5, 6]), None,
                       Perceptual(2 ** 64 - 1, 7, 1.5, 3, 100, 250, 6.5, False),
                       [Finding("DS201", "m", sample="a/b.png", source="a/b.png")])
    bare = ImageRecord("c.png")
    for rec in (full, bare):
        packed = pack_record(rec)
        assert all(not hasattr(v, "__dataclass_fields__") for v in packed[:-1])  # plain values
        assert unpack_record(packed) == rec
