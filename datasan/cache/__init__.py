"""Incremental scans: shard results kept in a content-addressed cache folder.

A warm scan answers the shard functions of unchanged files from the cache and
runs only what changed; everything after the shards (cross-file checks,
merges, the probe, the outputs) runs as in a cold scan, over the same
results, so the outputs are the same.  ``engine.py`` wraps the scan's engine,
``specs.py`` says what is cached per shard function, ``keys.py`` what a result
depends on, ``store.py`` how entries are kept.
"""

from __future__ import annotations

from typing import Any

from datasan.cache.store import CacheInfo, CacheStore, default_cache_dir

__all__ = ["CacheInfo", "CacheStore", "default_cache_dir", "cache_dir", "with_cache", "finish"]

#: ScanOptions.cache values that mean "no cache"
OFF = ("", "off", "none", "false")
#: ScanOptions.cache value for the per-user folder
DEFAULT = "default"
#: the bound a cache is pruned to after a scan when the options give none
DEFAULT_MAX_BYTES = 2 << 30


def cache_dir(value: str | None) -> str | None:
    """The folder ``ScanOptions.cache`` names: None (no cache) for None or ``off``, the
    per-user folder for ``default``, else the folder given."""
    import os

    if value is None or value.strip().lower() in OFF:
        return None
    if value == DEFAULT:
        return default_cache_dir()
    return os.path.abspath(os.path.expanduser(value))


def with_cache(engine: Any, options: Any) -> tuple[Any, dict[str, Any]]:
    """(the engine the scan uses, report.json's ``cache`` entry so far).

    With a cache folder that can be created, the engine is wrapped by
    :class:`~datasan.cache.engine.CachingEngine`; without one, or when the folder
    cannot be written (a read-only home), the scan runs uncached and says why.
    """
    path = cache_dir(options.cache)
    if path is None:
        return engine, {"enabled": False}
    store = CacheStore(path)
    try:
        store.ensure()
    except OSError as exc:
        return engine, {"enabled": False, "path": path, "error": f"cannot create the cache folder: {exc}"}
    from datasan.cache.engine import CachingEngine

    return CachingEngine(engine, store), {"enabled": True, "path": path}


def finish(engine: Any, entry: dict[str, Any], max_bytes: int | None) -> dict[str, Any]:
    """report.json's ``cache`` entry after the scan, once the folder is pruned to ``max_bytes``."""
    from datasan.cache.engine import CachingEngine

    if not isinstance(engine, CachingEngine):
        return entry
    engine.flush()  # entries still being written count once they are
    c = engine.counts
    pruned = engine.store.prune(DEFAULT_MAX_BYTES if max_bytes is None else max_bytes)
    return {**entry, "hits": c["hits"], "misses": c["misses"], "stored": c["stored"],
            "uncacheable": c["uncacheable"], "corrupt": engine.store.corrupt, "store_errors": c["store_errors"],
            "hashed_files": c["hashed_files"], "pruned": pruned}
