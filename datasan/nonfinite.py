"""Is a sample finite?  The walk :class:`~datasan.safe_dataset.SafeDataset` runs over each item.

It walks tuples, lists, mappings, dataclasses, pandas and numpy containers
without recursion, so a self-referencing or very deep sample is a bad sample,
not a RecursionError.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Mapping
from typing import Any

import torch

#: nesting deeper than this is a bad sample: collating it would overflow Python's stack
MAX_DEPTH = 100


def _children(obj: Any, path: str) -> list[tuple[Any, str]] | None:
    """The parts of a container with their paths, or None when ``obj`` is not one."""
    if isinstance(obj, Mapping):
        return [(v, f"{path}[{k!r}]") for k, v in obj.items()]
    if isinstance(obj, (list, tuple)):
        return [(v, f"{path}[{i}]") for i, v in enumerate(obj)]
    if dataclasses.is_dataclass(obj) and not isinstance(obj, type):
        return [(getattr(obj, f.name), f"{path}.{f.name}") for f in dataclasses.fields(obj)]
    return None


def _array_reason(arr, path: str) -> str | None:
    import numpy as np

    if arr.dtype.kind in "fc":
        finite = np.isfinite(arr)
        if not finite.all():
            n_nan = int(np.isnan(arr).sum())
            n_inf = int((~finite).sum()) - n_nan
            return f"{path} holds {n_nan} NaN and {n_inf} Inf value(s)"
    return None


def _tensor_reason(t: torch.Tensor, path: str) -> str | None:
    if t.is_floating_point() or t.is_complex():
        finite = torch.isfinite(t)
        if not bool(finite.all()):
            n_nan = int(torch.isnan(t).sum())
            n_inf = int((~finite).sum()) - n_nan
            return f"{path} holds {n_nan} NaN and {n_inf} Inf value(s)"
    return None


def nonfinite_reason(obj: Any, path: str = "item") -> str | None:
    """A sentence naming the first NaN or Inf in ``obj`` (or why ``obj`` cannot be used), else None.

    Walks tuples, lists, mappings, dataclasses, pandas Series/DataFrames and
    object ndarrays with an explicit stack, not recursion: a self-referencing
    or 5,000-deep sample gets a reason (a reference cycle, nesting deeper
    than MAX_DEPTH, which no collate function could take) instead of raising
    RecursionError.  Integer and bool data cannot be non-finite.
    """
    import numpy as np

    stack: list[tuple[Any, str, int, frozenset]] = [(obj, path, 0, frozenset())]
    while stack:
        item, where, depth, ancestors = stack.pop()
        if isinstance(item, torch.Tensor):
            reason = _tensor_reason(item, where)
        elif isinstance(item, float):
            reason = None if math.isfinite(item) else f"{where} is {item}"
        elif isinstance(item, (str, bytes, int)) or item is None:
            reason = None
        else:
            if type(item).__module__.split(".")[0] == "pandas" and hasattr(item, "to_numpy"):
                item = item.to_numpy()
            kids = None
            if isinstance(item, np.ndarray) or type(item).__module__ == "numpy":
                arr = np.asarray(item)
                if arr.dtype != object:
                    reason = _array_reason(arr, where)
                    if reason:
                        return reason
                    continue
                kids = [(v, f"{where}[{', '.join(map(str, i))}]") for i, v in np.ndenumerate(arr)]
            else:
                kids = _children(item, where)
            if kids is None:
                continue
            if id(item) in ancestors:
                return f"{where} contains itself (a reference cycle)"
            if depth >= MAX_DEPTH:
                return f"{where} is nested more than {MAX_DEPTH} levels deep"
            inner = ancestors | {id(item)}
            stack.extend((v, p, depth + 1, inner) for v, p in reversed(kids))
            continue
        if reason:
            return reason
    return None
