"""Large clean parts are stored as blobs: copied in and out by the kernel, hashed when stored
and, once verified, not again while their stat stamp holds; a damaged or lost blob is
dropped and its shard computed again, never trusted."""

from __future__ import annotations

from pathlib import Path

import pytest

from test_cache import table_rescans

from datasan.cache import specs, store as store_mod


@pytest.fixture
def blobs(monkeypatch):
    """Every clean part becomes a blob; returns the list of blob checksums computed on reads."""
    monkeypatch.setattr(specs, "BLOB_BYTES", 0)
    hashed = []
    real = store_mod._digest

    def counted(data):
        hashed.append(len(data))
        return real(data)

    monkeypatch.setattr(store_mod, "_digest", counted)
    return hashed


def _blob_files(cache: Path) -> list[Path]:
    """Entry files whose payload is a Parquet file (the blobs)."""
    out = []
    for p in (cache / "entries").rglob("*"):
        if p.is_file() and not p.name.startswith("."):
            with open(p, "rb") as f:
                f.seek(store_mod._HEAD)
                if f.read(4) == b"PAR1":
                    out.append(p)
    return sorted(out)


def test_warm_scans_copy_blobs_without_hashing_them_again(tmp_path, blobs):
    rs = table_rescans(tmp_path)
    cold = rs.scan()  # the outputs of each warm scan equal a cold scan's (checked by scan())
    assert cold["stored"] == cold["misses"] == 6 and len(_blob_files(rs.cache)) == 4  # one per shard (3 + the CSV)
    warm = rs.scan()
    assert (warm["hits"], warm["misses"], warm["corrupt"]) == (6, 0, 0)
    assert blobs == []  # their stamps were remembered when they were stored
    warm = rs.scan()
    assert (warm["hits"], warm["misses"]) == (6, 0) and blobs == []


def test_a_damaged_blob_is_dropped_and_its_shard_recomputed(tmp_path, blobs):
    rs = table_rescans(tmp_path)
    rs.scan()
    one, two, *_ = _blob_files(rs.cache)
    raw = bytearray(one.read_bytes())
    raw[len(raw) // 2] ^= 0xFF
    one.write_bytes(bytes(raw))
    two.write_bytes(two.read_bytes()[:100])
    c = rs.scan()
    assert c["corrupt"] == 2 and c["misses"] == 2 and c["stored"] == 2 and c["hits"] == 4
    assert len(blobs) == 1  # the flipped one was hashed (the cut one fails on its length)
    c = rs.scan()
    assert (c["corrupt"], c["misses"], c["hits"]) == (0, 0, 6)


def test_a_blob_whose_stamp_is_forgotten_is_hashed_once(tmp_path, blobs):
    rs = table_rescans(tmp_path)
    rs.scan()
    blob = _blob_files(rs.cache)[0]
    stamp = Path(store_mod.CacheStore(str(rs.cache))._file(store_mod._stamp_key(blob.name)))
    stamp.unlink()
    c = rs.scan()
    assert (c["hits"], c["misses"], c["corrupt"]) == (6, 0, 0) and len(blobs) == 1
    c = rs.scan()
    assert (c["hits"], c["misses"]) == (6, 0) and len(blobs) == 1  # remembered again


def test_a_lost_blob_recomputes_its_shard(tmp_path, blobs):
    rs = table_rescans(tmp_path)
    rs.scan()
    _blob_files(rs.cache)[1].unlink()
    c = rs.scan()
    assert (c["hits"], c["misses"], c["stored"], c["corrupt"]) == (5, 1, 1, 0)
    c = rs.scan()
    assert (c["hits"], c["misses"]) == (6, 0)


def test_copy_range_appends_through_a_kernel_copy_or_a_plain_writer(tmp_path):
    import io

    src = tmp_path / "src"
    src.write_bytes(bytes(range(256)) * 100)
    with open(src, "rb") as f:
        with open(tmp_path / "dst", "wb") as out:
            out.write(b"head")
            store_mod.copy_range(f.fileno(), 10, 1000, out)
            out.write(b"tail")
        buf = io.BytesIO()
        store_mod.copy_range(f.fileno(), 10, 1000, buf)
    want = src.read_bytes()[10:1010]
    assert (tmp_path / "dst").read_bytes() == b"head" + want + b"tail" and buf.getvalue() == want
