"""Per-file results stored a shard at a time: one bundle entry per shard and one index per
shard function and settings, instead of one entry file per file.

A cold scan of many small files (images, YOLO label files) used to write an
entry per file plus the shard's stat fast-path entry holding the same values
again: thousands of files created and renamed, each value pickled twice.  Now
the shard's entry (keyed by its files' stat stamps, as before) is a *bundle*:
the files' content keys beside their packed results.  An *index* entry, keyed
by the shard function and its settings, maps each file's content key to the
bundle that holds it, so a shard whose files moved to other shards (a file
added before them) or whose stamp changed still finds every unchanged file by
its content.  A bundle answers a lookup only for the content key it stores
next to the value, so a stale or lost index entry costs a recomputation, never
a wrong answer.

The index also remembers each file's stat stamp (size, mtime, ctime, inode)
beside the content key it had: a shard that missed its stat key because one
of its files changed finds the others' content keys from their unchanged
stamps, without reading and hashing them (the same stat fast path the shard
key takes, one file at a time).
"""

from __future__ import annotations

import os
from collections import OrderedDict
from typing import Any

from datasan.cache import keys
from datasan.cache.store import CacheStore

#: bundles kept loaded while a scan looks files up (consecutive misses share bundles)
LOADED_BUNDLES = 8
#: an index keeps the files of earlier scans until it holds this many times the current one's
INDEX_GROWTH = 4


def bundle_value(unit_keys: list[str | None], values: list) -> dict[str, Any]:
    """The stored form of a shard's bundle."""
    return {"units": unit_keys, "values": values}


def bundle_values(stored: Any, n: int) -> list | None:
    """A bundle's values when it answers a whole shard of ``n`` files, else None."""
    if not isinstance(stored, dict):
        return None
    units, values = stored.get("units"), stored.get("values")
    if not isinstance(units, list) or not isinstance(values, list) or len(units) != n or len(values) != n:
        return None
    return values if all(u is not None for u in units) else None


class BundleIndex:
    """The content-key -> bundle index of one shard function and settings (``shared``)."""

    def __init__(self, store: CacheStore, shared: str) -> None:
        self.store = store
        self.key = keys.key_of("bundle-index", shared)
        self._old: dict[str, str] | None = None
        self._old_files: dict[str, tuple] = {}
        self.new: dict[str, str] = {}
        #: absolute path -> (size, mtime_ns, ctime_ns, inode, key parts, content key) of this scan
        self.new_files: dict[str, tuple] = {}
        self._loaded: OrderedDict[str, dict[str, Any]] = OrderedDict()

    def _old_index(self) -> dict[str, str]:
        if self._old is None:
            stored = self.store.get(self.key)
            units = stored.get("units") if isinstance(stored, dict) else None
            files = stored.get("files") if isinstance(stored, dict) else None
            self._old = units if isinstance(units, dict) else {}
            self._old_files = files if isinstance(files, dict) else {}
        return self._old

    def known_key(self, path: str, stamp: Any, parts: Any) -> str | None:
        """The content key an earlier shard gave the file at ``path`` with key parts ``parts``,
        while its stamp is still ``stamp``; None when it was not seen so."""
        if not _plain(parts):
            return None
        self._old_index()
        path = os.path.abspath(path)
        rec = self.new_files.get(path) or self._old_files.get(path)
        if isinstance(rec, tuple) and len(rec) == 6 and rec[:5] == (
                stamp.size, stamp.mtime_ns, stamp.ctime_ns, stamp.ino, parts) and isinstance(rec[5], str):
            return rec[5]
        return None

    def record_files(self, items: list[tuple[Any, list]], unit_keys: list[str | None]) -> None:
        """Remember the content key of each single-file unit: ``items`` are (key parts,
        [(path, stamp)]) of the units, ``unit_keys`` their content keys."""
        for (parts, files), unit_key in zip(items, unit_keys):
            if len(files) != 1 or unit_key is None or not _plain(parts):
                continue
            path, stamp = files[0]
            if stamp is not None:
                self.new_files[os.path.abspath(path)] = (stamp.size, stamp.mtime_ns, stamp.ctime_ns, stamp.ino,
                                                         parts, unit_key)

    def find(self, unit_key: str) -> Any | None:
        """The packed value stored for ``unit_key`` in a bundle, or None."""
        bundle_key = self.new.get(unit_key) or self._old_index().get(unit_key)
        if bundle_key is None:
            return None
        bundle = self._loaded.get(bundle_key)
        if bundle is None:
            stored = self.store.get(bundle_key)
            units = stored.get("units") if isinstance(stored, dict) else None
            values = stored.get("values") if isinstance(stored, dict) else None
            if not isinstance(units, list) or not isinstance(values, list) or len(units) != len(values):
                return None
            bundle = {u: v for u, v in zip(units, values) if u is not None}
            self._loaded[bundle_key] = bundle
            if len(self._loaded) > LOADED_BUNDLES:
                self._loaded.popitem(last=False)
        else:
            self._loaded.move_to_end(bundle_key)
        return bundle.get(unit_key)

    def record(self, unit_keys: list[str | None], bundle_key: str) -> None:
        """Files of this scan whose values ``bundle_key`` holds."""
        for u in unit_keys:
            if u is not None:
                self.new[u] = bundle_key

    def merged(self) -> dict[str, dict]:
        """The index to store: this scan's files, and earlier ones while it stays bounded."""
        old = self._old_index()
        if len(old) + len(self.new) > INDEX_GROWTH * max(len(self.new), 1 << 14):
            return {"units": dict(self.new), "files": dict(self.new_files)}
        return {"units": {**old, **self.new}, "files": {**self._old_files, **self.new_files}}


def _plain(parts: Any) -> bool:
    """Whether ``parts`` compares by value and pickles as itself (a string, or a tuple of
    strings and None): only such key parts are remembered beside a stamp."""
    if isinstance(parts, str):
        return True
    return isinstance(parts, tuple) and all(p is None or isinstance(p, str) for p in parts)
