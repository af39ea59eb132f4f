"""A cached clean part gets the new run's id by a footer patch: same bytes but for the id,
same rows; anything unexpected falls back to re-encoding the rows."""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from datasan.cache.restamp import restamped_footer
from datasan.cache.specs import _restamp_part
from datasan.outputs.manifest import RUN_ID_KEY
from datasan.sources.tables.output import open_parquet

OLD = "20250131T120000Z-1a2b3c4d"
NEW = "20261201T063000Z-deadbeef"


def _part(path, run_id: str, strings=None) -> bytes:
    n = 5000
    t = pa.table({"x": np.arange(n, dtype="float64"), "s": pa.array(strings or [f"v{i % 7}" for i in range(n)]),
                  "_row": np.arange(n, dtype="int64")})
    w = open_parquet(str(path), t.schema, run_id)
    w.write_table(t, row_group_size=2000)
    w.close()
    return path.read_bytes()


def _ids(path) -> tuple[bytes, bytes]:
    return pq.read_metadata(path).metadata[RUN_ID_KEY], pq.read_schema(path).metadata[RUN_ID_KEY]


def test_the_footer_patch_keeps_every_byte_but_the_run_id(tmp_path):
    data = _part(tmp_path / "old.parquet", OLD)
    body, tail = restamped_footer(data, NEW)
    out = tmp_path / "new.parquet"
    out.write_bytes(bytes(body) + tail)
    new = out.read_bytes()
    assert len(new) == len(data) and bytes(body) == data[:len(body)]
    assert sum(a != b for a, b in zip(new, data)) > 0 and new.count(OLD.encode()) == 0
    assert _ids(out) == (NEW.encode(), NEW.encode())
    assert pq.read_table(out).to_pydict() == pq.read_table(tmp_path / "old.parquet").to_pydict()


def test_unexpected_parts_are_re_encoded(tmp_path):
    assert restamped_footer(b"not parquet at all", NEW) is None
    data = _part(tmp_path / "old.parquet", OLD)
    assert restamped_footer(data, "run-2") is None  # another length
    # the old id also in the column statistics: not patched blindly
    tricky = _part(tmp_path / "tricky.parquet", OLD, strings=[OLD] * 5000)
    assert restamped_footer(tricky, NEW) is None
    _restamp_part(tricky, str(tmp_path / "out.parquet"), NEW, 2000)
    assert _ids(tmp_path / "out.parquet") == (NEW.encode(), NEW.encode())
    assert pq.read_table(tmp_path / "out.parquet").column("s").to_pylist() == [OLD] * 5000


def test_a_warm_scan_s_clean_table_carries_its_own_run_id(tmp_path):
    import json

    from test_cache import table_rescans

    rs = table_rescans(tmp_path)
    rs.scan()
    c = rs.scan()
    assert (c["hits"], c["misses"]) == (6, 0)
    warm = tmp_path / "warm2"
    run_id = json.loads((warm / "report.json").read_text())["run_id"].encode()
    clean = warm / "clean" / "big.parquet.parquet"
    assert _ids(clean) == (run_id, run_id)
    assert pq.read_table(clean).num_rows == 3000 - 4  # 3 NaN rows and the distant class id
