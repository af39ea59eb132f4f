"""Arrow arrays to and from numpy without importing pandas.

``pyarrow.array(ndarray)`` asks pyarrow's pandas shim whether the array is a
pandas object, and ``Array.to_numpy`` goes through Arrow's pandas conversion,
which imports pandas when it is installed: 0.3-0.6 s of start-up in every
process, a third of the time a bare-pyarrow program needs to clean a 2M-row
table.  For null-free numbers and booleans both directions are plain buffer
views (booleans are bit-packed), so these helpers build them directly and
leave everything else to pyarrow, with the same results.
"""

from __future__ import annotations

from typing import Any


def from_numpy(values: Any, type: Any = None):
    """A null-free Arrow array of a 1-D numeric or bool ndarray (cast to ``type`` when given)."""
    import numpy as np
    import pyarrow as pa

    a = np.ascontiguousarray(values)
    if a.dtype == np.bool_:
        arr = pa.Array.from_buffers(pa.bool_(), len(a), [None, pa.py_buffer(np.packbits(a, bitorder="little"))])
    else:
        arr = pa.Array.from_buffers(pa.from_numpy_dtype(a.dtype), len(a), [None, pa.py_buffer(a)])
    return arr if type is None or arr.type == type else arr.cast(type)


def to_numpy(arr: Any):
    """``arr.to_numpy(zero_copy_only=False)`` of an Arrow array, without pyarrow's pandas
    conversion for null-free numbers (a read-only view) and booleans (a new array)."""
    import numpy as np
    import pyarrow as pa

    if isinstance(arr, pa.ChunkedArray):
        arr = arr.combine_chunks()
    t = arr.type
    if arr.null_count == 0 and (pa.types.is_integer(t) or pa.types.is_floating(t)):
        dtype = np.dtype(t.to_pandas_dtype())
        if len(arr) == 0:
            return np.zeros(0, dtype)
        return np.frombuffer(arr.buffers()[1], dtype=dtype, count=len(arr), offset=arr.offset * dtype.itemsize)
    if arr.null_count == 0 and pa.types.is_boolean(t):
        if len(arr) == 0:
            return np.zeros(0, np.bool_)
        bits = np.frombuffer(arr.buffers()[1], np.uint8)
        return np.unpackbits(bits, count=arr.offset + len(arr), bitorder="little")[arr.offset:].view(np.bool_)
    return arr.to_numpy(zero_copy_only=False)
