"""Pages of a finished run's tables, read a row group at a time."""

from __future__ import annotations

import math
from typing import Any

#: the most rows one page returns
MAX_PAGE = 1000


def read_page(path: str, offset: int, limit: int) -> dict[str, Any]:
    """{total, offset, limit, items} of the Parquet file ``path``; only the row groups that
    hold the page are read."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    limit = max(0, min(limit, MAX_PAGE))
    offset = max(0, offset)
    pf = pq.ParquetFile(path)
    total = pf.metadata.num_rows
    pieces, start = [], 0
    for g in range(pf.num_row_groups):
        n = pf.metadata.row_group(g).num_rows
        if start + n > offset and start < offset + limit:
            t = pf.read_row_group(g)
            lo = max(0, offset - start)
            pieces.append(t.slice(lo, offset + limit - start - lo))
        start += n
        if start >= offset + limit:
            break
    items = pa.concat_tables(pieces).to_pylist() if pieces else []
    return {"total": total, "offset": offset, "limit": limit, "items": [_plain(r) for r in items]}


def _plain(row: dict[str, Any]) -> dict[str, Any]:
    # JSON has no NaN or Infinity: a non-finite number is sent as its name
    return {k: (str(v) if isinstance(v, float) and not math.isfinite(v) else v) for k, v in row.items()}
