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


def keep_pandas_out_of_arrow() -> bool:
    """Tell pyarrow, once per process, that pandas is not to be imported for conversions;
    True when this call did it.

    pyarrow 26 imports pandas the first time it builds any array or scalar from Python
    objects or numpy (``pa.table(dict of lists)``, ``pa.scalar``, a compute call with a
    Python value), only to ask whether the input is a pandas object: 0.4-0.7 s of a
    scan's wall time for the small findings and quarantine tables.  Its pandas shim
    tries the import once; this makes that try fail while pandas is hidden, so later
    conversions skip the question.  ``to_pandas()`` still works: the shim imports
    pandas again when pandas is really needed.  Only for processes whose data never
    comes as pandas objects (the command line); a no-op when pandas is loaded already
    or pyarrow has no such shim.
    """
    import sys

    if "pandas" in sys.modules:
        return False
    import pyarrow as pa

    shim = getattr(getattr(pa, "lib", None), "_pandas_api", None)
    if shim is None or not hasattr(type(shim), "have_pandas"):
        return False
    blocker = _NoPandas()
    sys.meta_path.insert(0, blocker)
    try:
        shim.have_pandas  # the shim's one try, which fails now
    finally:
        sys.meta_path.remove(blocker)
    return True


class _NoPandas:
    """A meta path finder for which pandas does not exist."""

    def find_spec(self, name, path=None, target=None):
        if name == "pandas" or name.startswith("pandas."):
            raise ModuleNotFoundError("No module named 'pandas'", name=name)
        return None
