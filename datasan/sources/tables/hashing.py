"""Row hashes for the duplicate checks: 64 bits per row, deterministic across processes."""

from __future__ import annotations

from datasan.numpy_arrow import to_numpy


def row_hashes(batch, target: str | None):
    """(full row hash, feature-only hash) as uint64 arrays; deterministic across processes.

    Each column is mixed through a multiply-xorshift bijection before it is
    combined, so rows that differ only in high float bits (1.0 vs 2.0) still
    hash apart.  All operations are in place to keep it to a few passes.
    """
    import numpy as np

    n = batch.num_rows
    feat = np.full(n, 0x9E3779B97F4A7C15, dtype=np.uint64)
    tgt = np.zeros(n, dtype=np.uint64)
    tmp = np.empty(n, dtype=np.uint64)
    prime = np.uint64(0x100000001B3)
    for i, name in enumerate(batch.schema.names):
        h = _column_hash(batch.column(i), (0xBF58476D1CE4E5B9 * (2 * i + 1)) & 0xFFFFFFFFFFFFFFFF)
        np.right_shift(h, np.uint64(31), out=tmp)
        np.bitwise_xor(h, tmp, out=h)
        if name == target:
            tgt = h
        else:
            np.bitwise_xor(feat, h, out=feat)
            np.multiply(feat, prime, out=feat)
    full = tgt * np.uint64(0xD6E8FEB86659FD93)
    np.bitwise_xor(full, feat, out=full)
    np.multiply(full, np.uint64(0xFF51AFD7ED558CCD), out=full)
    np.right_shift(full, np.uint64(33), out=tmp)
    np.bitwise_xor(full, tmp, out=full)
    return full, feat


def _column_hash(arr, mult: int):
    """A fresh uint64 array: each value's bits times the odd constant ``mult``
    (equal values, equal hashes; the caller mixes further)."""
    import numpy as np
    import pyarrow as pa

    t = arr.type
    if pa.types.is_dictionary(t):
        arr = arr.dictionary_decode()
        t = arr.type
    if (pa.types.is_integer(t) or pa.types.is_floating(t) or pa.types.is_boolean(t)) and arr.null_count == 0:
        v = np.asarray(to_numpy(arr))
        if v.dtype.kind == "f":
            h = np.add(v, 0.0, dtype=np.float64).view(np.uint64)  # fresh; -0.0 + 0.0 == +0.0
        else:
            h = v.astype(np.int64).view(np.uint64)
        np.multiply(h, np.uint64(mult), out=h)
        return h
    import pandas as pd

    try:
        strings = arr.cast(pa.string())
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
        strings = pa.array([None if v is None else repr(v) for v in arr.to_pylist()], type=pa.string())
    obj = to_numpy(strings)
    h = np.asarray(pd.util.hash_array(obj, categorize=False), dtype=np.uint64).copy()
    np.multiply(h, np.uint64(mult), out=h)
    return h


