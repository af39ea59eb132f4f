"""A stored clean Parquet part given a new run id without decoding its rows.

The run id sits only in the file's footer: in the key-value metadata, and inside
Arrow's serialized schema (``ARROW:schema``, base64) that pyarrow keeps there too.
Run ids have one length, so the new id replaces the old one byte for byte: the
footer keeps its length and every column chunk keeps its offset, and the part is
written back as stored but for those bytes.  Re-encoding a 2M-row part took
most of a warm scan's time.  Anything unexpected (another id length, the old id
found more than once, a footer that does not read back with the new id and the
same rows) answers None, and the caller re-encodes the rows instead.
"""

from __future__ import annotations

import base64

from datasan.outputs.manifest import RUN_ID_KEY

_MAGIC = b"PAR1"
_ARROW_SCHEMA = b"ARROW:schema"


def restamped_footer(data: bytes, run_id: str) -> tuple[memoryview, bytes] | None:
    """(the part's bytes before its footer, the footer and trailer naming ``run_id``), or None."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    view = memoryview(data)
    if len(data) < 12 or bytes(view[-4:]) != _MAGIC:
        return None
    start = len(data) - 8 - int.from_bytes(view[-8:-4], "little")
    if start < 4:
        return None
    try:
        meta = pq.ParquetFile(pa.BufferReader(data)).metadata
    except (OSError, ValueError, pa.ArrowException):
        return None
    kv = meta.metadata or {}
    old, new = kv.get(RUN_ID_KEY), run_id.encode()
    if old is None or len(old) != len(new):
        return None
    footer = bytes(view[start:-8])
    if old != new:
        footer = _replaced(footer, kv.get(_ARROW_SCHEMA), old, new)
        if footer is None:
            return None
    tail = footer + bytes(view[-8:])
    # a footer reads on its own (the column chunks' offsets are not followed when it is opened)
    if not _reads_back(_MAGIC + tail, meta, new):
        return None
    return view[:start], tail


def _replaced(footer: bytes, arrow: bytes | None, old: bytes, new: bytes) -> bytes | None:
    """``footer`` with ``old`` replaced by ``new`` in the key-value metadata and in Arrow's
    schema, or None when either is not found exactly once."""
    if arrow is not None:
        raw = base64.b64decode(arrow)
        if base64.b64encode(raw) != arrow or raw.count(old) != 1 or footer.count(arrow) != 1:
            return None
        footer = footer.replace(arrow, base64.b64encode(raw.replace(old, new)))
    if footer.count(old) != 1:
        return None
    return footer.replace(old, new)


def _reads_back(data: bytes, meta, run_id: bytes) -> bool:
    """Whether the patched file's footer reads with ``run_id`` and the stored rows and schema."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    try:
        pf = pq.ParquetFile(pa.BufferReader(data))
    except (OSError, ValueError, pa.ArrowException):
        return False
    got = pf.metadata
    arrow_meta = pf.schema_arrow.metadata or {}
    return (got.metadata.get(RUN_ID_KEY) == run_id and arrow_meta.get(RUN_ID_KEY) == run_id
            and got.num_rows == meta.num_rows and got.num_row_groups == meta.num_row_groups
            and got.schema.equals(meta.schema))
