"""What a cached shard result depends on, as digests.

A key is a BLAKE2b digest of: the cache format, datasan's own code (every
source file of the package, so an edited checkout never reads results of the
code it replaced), the shard function, the task's settings in a canonical form
(dicts and sets sorted, so the same options give the same bytes in every
process whatever the hash seed) and the content identity of the files the task
reads.  Options that cannot change a shard's result (where it runs, the cache
itself, the gate's thresholds) are left out so that they do not cause misses.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
from functools import lru_cache
from typing import Any

#: bumped when the entry layout or the key recipe changes
FORMAT = 1
#: files from this size on are not hashed again while their stat stamp holds (hashing a
#: small file costs less than reading the entry that would remember its digest)
STAT_FAST_PATH_BYTES = 1 << 20

#: ScanOptions fields no shard function reads: where and how fast it runs, the gate, the
#: outputs after the merge, the probe (which is never cached)
NEUTRAL_OPTIONS = frozenset({
    "cache", "cache_max_bytes", "workers", "engine", "ray_address", "progress", "fail_on", "baseline",
    "max_quarantine_fraction", "max_total_quarantine_fraction", "report_html", "report_thumbnails",
    "probe", "probe_model", "device", "probe_batch_size", "probe_seed", "probe_timeout",
})


def _digest(data: bytes) -> bytes:
    return hashlib.blake2b(data, digest_size=32).digest()


@lru_cache(maxsize=1)
def code_digest() -> str:
    """A digest of datasan's version and every ``.py`` file of the installed package."""
    from datasan import __version__

    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    h = hashlib.blake2b(f"datasan {__version__} cache {FORMAT}".encode(), digest_size=32)
    for folder, dirs, names in os.walk(root):
        dirs[:] = sorted(d for d in dirs if d != "__pycache__")
        for name in sorted(names):
            if name.endswith(".py"):
                path = os.path.join(folder, name)
                h.update(os.path.relpath(path, root).encode() + b"\0")
                with open(path, "rb") as f:
                    h.update(_digest(f.read()))
    return h.hexdigest()


def canonical(obj: Any) -> Any:
    """``obj`` as JSON-ready values whose serialization does not depend on the process."""
    from datasan.options import ScanOptions

    if obj is None or isinstance(obj, (bool, int, str)):
        return obj
    if isinstance(obj, float):
        return ["f", obj.hex()]
    if isinstance(obj, bytes):
        return ["b", obj.hex()]
    if isinstance(obj, ScanOptions):
        fields = {f.name: getattr(obj, f.name) for f in dataclasses.fields(obj) if f.name not in NEUTRAL_OPTIONS}
        return ["ScanOptions", canonical(fields)]
    if dataclasses.is_dataclass(obj) and not isinstance(obj, type):
        fields = {f.name: getattr(obj, f.name) for f in dataclasses.fields(obj)}
        return [type(obj).__qualname__, canonical(fields)]
    if isinstance(obj, dict):
        items = [[canonical(k), canonical(v)] for k, v in obj.items()]
        return ["d", sorted(items, key=lambda kv: json.dumps(kv[0], sort_keys=True))]
    if isinstance(obj, (set, frozenset)):
        return ["s", sorted((canonical(v) for v in obj), key=lambda v: json.dumps(v, sort_keys=True))]
    if isinstance(obj, (list, tuple)):
        return ["l" if isinstance(obj, list) else "t", [canonical(v) for v in obj]]
    if hasattr(obj, "tobytes") and hasattr(obj, "dtype"):  # a numpy array or scalar
        return ["a", str(obj.dtype), list(getattr(obj, "shape", ())), _digest(obj.tobytes()).hex()]
    # an object this recipe does not know: no key (never a guess that could collide)
    raise TypeError(f"cannot key a {type(obj).__name__}")


def key_of(*parts: Any) -> str:
    """The hex key of ``parts`` (canonical values, file identities) under this code."""
    doc = json.dumps([code_digest(), [canonical(p) for p in parts]], sort_keys=True, separators=(",", ":"))
    return _digest(doc.encode()).hex()


@dataclasses.dataclass(frozen=True)
class Stamp:
    """What ``stat`` says of a file: compared again after a shard ran, to catch a file that
    changed while it was read (its result is then not stored)."""

    size: int
    mtime_ns: int
    ctime_ns: int
    ino: int


def stat_key(path: str, stamp: Stamp) -> str:
    """The key of the stat fast path's entry: the file's content digest while its stamp holds."""
    doc = f"stat|{FORMAT}|{os.path.abspath(path)}|{stamp.size}|{stamp.mtime_ns}|{stamp.ctime_ns}|{stamp.ino}"
    return _digest(doc.encode()).hex()


def stat_group_key(shared: str, items: list[tuple[Any, list[tuple[str, Stamp]]]]) -> str:
    """The key of a shard's stat fast path: ``shared`` (a :func:`key_of` digest, so the code
    and settings are in it) and each item's parts and files' absolute paths and stamps.
    Written out directly: the canonical form of tens of thousands of stamps cost a warm
    scan more than reading its entries."""
    h = hashlib.blake2b(f"group|{FORMAT}|{shared}\0".encode(), digest_size=32)
    for item_parts, files in items:
        h.update(json.dumps(canonical(item_parts), sort_keys=True).encode() + b"\0")
        for path, s in files:  # four numbers last: a "|" in a path cannot shift a field
            # fsencode: a name that is not valid UTF-8 comes back as its own bytes
            h.update(os.fsencode(os.path.abspath(path)) + f"|{s.size}|{s.mtime_ns}|{s.ctime_ns}|{s.ino}\0".encode())
        h.update(b"\1")
    return h.hexdigest()


def stamp_of(path: str) -> Stamp | None:
    """The local file's stamp, or None (a remote object, or a file that cannot be stat'ed)."""
    from datasan import fs

    if fs.is_remote(path):
        return None
    try:
        st = os.stat(path)
    except OSError:
        return None
    return Stamp(st.st_size, st.st_mtime_ns, st.st_ctime_ns, st.st_ino)


def hash_file(path: str) -> str:
    """BLAKE2b of a local file's bytes (OSError when it cannot be read)."""
    h = hashlib.blake2b(digest_size=32)
    with open(path, "rb") as f:
        while chunk := f.read(1 << 20):
            h.update(chunk)
    return h.hexdigest()


def remote_identity(uri: str) -> str | None:
    """An object's identity from its store's listing: size and modification time (objects are
    replaced whole, so a new upload changes the time); None when the store does not say."""
    import pyarrow.fs as pafs

    from datasan import fs

    try:
        store, p = fs.resolve(uri)
        info = store.get_file_info(p)
    except (OSError, ValueError):
        return None
    if info.type != pafs.FileType.File or info.mtime_ns is None:
        return None
    return f"{uri}|{info.size}|{info.mtime_ns}"
