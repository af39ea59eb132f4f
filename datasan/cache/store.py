"""The cache folder: verified entries written atomically, bounded by bytes (least recently used
go first).

Layout: ``<dir>/entries/<2 hex>/<64 hex key>``, one file per entry::

    b"DSCACHE1" | key (32 bytes) | payload length (8, little-endian) | BLAKE2b(payload) (32) | payload

An entry is written to a temporary name in its folder and renamed into place,
so a reader sees a whole entry or none, also while other scans share the
folder.  A read checks the magic, the key, the length and the checksum; an
entry that fails any of them is removed and counts as a miss, never trusted.
A hit touches the entry's mtime: pruning removes the oldest first.  Only
files named like entries (or this module's temporary files) are ever
removed, so a cache pointed at a folder that holds other files leaves them.
"""

from __future__ import annotations

import hashlib
import os
import pickle
import re
import secrets
import time
from dataclasses import dataclass
from typing import Any, Iterator

MAGIC = b"DSCACHE1"
_HEAD = len(MAGIC) + 32 + 8 + 32
_ENTRY = re.compile(r"^[0-9a-f]{64}$")
_TEMP = re.compile(r"^\.tmp-[0-9a-f]{64}-[0-9a-f]+$")
#: a temporary file older than this was left by a scan that died: pruning removes it
STALE_TEMP_SECONDS = 3600.0


def default_cache_dir() -> str:
    """The per-user cache folder: ``$XDG_CACHE_HOME/datasan``, else ``~/.cache/datasan``."""
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return os.path.join(base, "datasan")


@dataclass
class CacheInfo:
    """What ``datasan cache info`` prints."""

    path: str
    entries: int
    bytes: int


class CacheStore:
    """Entries under ``path`` (created on first write, private to the user)."""

    def __init__(self, path: str) -> None:
        self.path = os.path.abspath(os.path.expanduser(path))
        self.entries_dir = os.path.join(self.path, "entries")
        #: entries found damaged (and removed) by this object's reads
        self.corrupt = 0
        self._folders: set[str] = set()  # made already: one makedirs per folder, not per entry

    def _file(self, key: str) -> str:
        return os.path.join(self.entries_dir, key[:2], key)

    def ensure(self) -> None:
        """Create the folder (mode 0700: entries are unpickled, so only the user may write them)."""
        os.makedirs(self.entries_dir, mode=0o700, exist_ok=True)

    # ------------------------------------------------------------------ entries
    def put(self, key: str, value: Any) -> int:
        """Store ``value`` under ``key``; returns the entry's size.  OSError when the folder
        cannot be written (the caller goes on without the cache)."""
        payload = pickle.dumps(value, protocol=pickle.HIGHEST_PROTOCOL)
        head = MAGIC + bytes.fromhex(key) + len(payload).to_bytes(8, "little") + \
            hashlib.blake2b(payload, digest_size=32).digest()
        path = self._file(key)
        folder = os.path.dirname(path)
        if folder not in self._folders:
            os.makedirs(folder, mode=0o700, exist_ok=True)
            self._folders.add(folder)
        tmp = os.path.join(folder, f".tmp-{key}-{secrets.token_hex(6)}")
        try:
            try:
                f = open(tmp, "wb")
            except FileNotFoundError:  # the folder was removed since (a cache cleared meanwhile)
                os.makedirs(folder, mode=0o700, exist_ok=True)
                f = open(tmp, "wb")
            with f:
                f.write(head)
                f.write(payload)
            os.replace(tmp, path)
        except BaseException:
            try:
                os.remove(tmp)
            except OSError:
                pass
            raise
        return len(head) + len(payload)

    def _read_payload(self, key: str) -> memoryview | None:
        path = self._file(key)
        try:
            with open(path, "rb") as f:
                data = f.read()
        except OSError:  # absent, or removed by a concurrent prune
            return None
        if not _head_ok(data[:_HEAD], key, len(data)):
            return self._drop(path)
        payload = memoryview(data)[_HEAD:]  # no copy of a large entry
        if hashlib.blake2b(payload, digest_size=32).digest() != data[len(MAGIC) + 40:_HEAD]:
            return self._drop(path)
        try:
            os.utime(path)  # most recently used
        except OSError:
            pass
        return payload

    def _drop(self, path: str) -> None:
        self.corrupt += 1
        try:
            os.remove(path)
        except OSError:
            pass
        return None

    def discard(self, key: str) -> None:
        """Remove the entry under ``key`` (one that could not be used), counted as damaged."""
        self._drop(self._file(key))

    def has(self, key: str) -> bool:
        """Whether an entry of the right length is stored under ``key`` (its header only: the
        checksum is verified by :meth:`get`, which a caller must be ready to see fail)."""
        path = self._file(key)
        try:
            with open(path, "rb") as f:
                head = f.read(_HEAD)
                size = os.fstat(f.fileno()).st_size
        except OSError:
            return False
        if not _head_ok(head, key, size):
            self._drop(path)
            return False
        return True

    def get(self, key: str) -> Any | None:
        """The value stored under ``key``, or None (absent, damaged, or written by code that
        can no longer read it: then it is removed like a damaged one)."""
        payload = self._read_payload(key)
        if payload is None:
            return None
        try:
            return pickle.loads(payload)
        except Exception:
            self._drop(self._file(key))
            return None

    # ------------------------------------------------------------------ the whole folder
    def _files(self) -> Iterator[tuple[str, os.stat_result, bool]]:
        """(path, stat, is a temporary file) of every file this store wrote."""
        try:
            folders = os.listdir(self.entries_dir)
        except OSError:
            return
        for sub in folders:
            folder = os.path.join(self.entries_dir, sub)
            try:
                names = os.listdir(folder)
            except OSError:
                continue
            for name in names:
                temp = bool(_TEMP.match(name))
                if not (temp or _ENTRY.match(name)):
                    continue
                path = os.path.join(folder, name)
                try:
                    yield path, os.stat(path), temp
                except OSError:
                    continue

    def info(self) -> CacheInfo:
        """Entries and bytes stored."""
        entries = total = 0
        for _, st, temp in self._files():
            if not temp:
                entries += 1
                total += st.st_size
        return CacheInfo(self.path, entries, total)

    def prune(self, max_bytes: int) -> int:
        """Remove the least recently used entries until at most ``max_bytes`` remain (and
        temporary files left by dead scans); returns the number of entries removed."""
        now = time.time()
        live = []
        for path, st, temp in self._files():
            if temp:
                if now - st.st_mtime > STALE_TEMP_SECONDS:
                    _remove(path)
                continue
            live.append((st.st_mtime_ns, path, st.st_size))
        total = sum(s for _, _, s in live)
        removed = 0
        for _, path, size in sorted(live):
            if total <= max_bytes:
                break
            if _remove(path):
                removed += 1
            total -= size
        return removed

    def clear(self) -> int:
        """Remove every entry; returns how many."""
        return self.prune(0)


def _head_ok(head: bytes, key: str, file_size: int) -> bool:
    """Whether an entry's header has the magic, ``key`` and a length that fills the file."""
    if len(head) < _HEAD or head[:len(MAGIC)] != MAGIC or head[len(MAGIC):len(MAGIC) + 32] != bytes.fromhex(key):
        return False
    return int.from_bytes(head[len(MAGIC) + 32:len(MAGIC) + 40], "little") == file_size - _HEAD


def _remove(path: str) -> bool:
    try:
        os.remove(path)
        return True
    except OSError:
        return False
