"""Results of pure whole-dataset computations kept in the scan's content cache.

A check across files (the near-duplicate band join) is recomputed on every
scan from the cached per-file results; when those did not change, neither
does its answer.  :func:`cached_call` keeps the answer of a pure function
under a key of its name, every argument (numpy arrays by a digest of their
bytes) and datasan's code, so an unchanged dataset pays one lookup and a
changed one computes it as before.
"""

from __future__ import annotations

from typing import Any, Callable


def cached_call(engine: Any, name: str, fn: Callable[..., Any], *args: Any) -> Any:
    """``fn(*args)``, from the cache of ``engine`` (a CachingEngine) when it holds it; ``fn``
    must be pure: its answer depends on nothing but ``args`` and datasan's code."""
    from datasan.cache import keys
    from datasan.cache.engine import CachingEngine

    if not isinstance(engine, CachingEngine):
        return fn(*args)
    try:
        key = keys.key_of("memo", name, list(args))
    except TypeError:  # an argument the key recipe does not know
        return fn(*args)
    stored = engine.store.get(key)
    if isinstance(stored, tuple) and len(stored) == 1:
        engine.counts["memo_hits"] += 1
        return stored[0]
    value = fn(*args)
    try:
        engine.store.put(key, (value,))
    except Exception:  # a full disk, a value that does not pickle: computed all the same
        pass
    return value
