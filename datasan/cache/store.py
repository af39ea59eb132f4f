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

A *blob* is an entry whose payload is a file's raw bytes, not a pickle (a table
shard's clean Parquet part, hundreds of MB): it is copied in and out by the
kernel (``copy_file_range``) instead of being read, pickled and written by
Python.  Its checksum is verified when it is stored and on the first read; a
small entry beside it remembers the blob's stat stamp (size, mtime, ctime,
inode) after that, and while the stamp holds the blob is not hashed again.
Any write to the blob's file (a flipped byte, a truncation) changes its mtime
and ctime, so it is hashed and, damaged, dropped like any other entry.
"""

from __future__ import annotations

import hashlib
import io
import os
import pickle
import re
import secrets
import time
from dataclasses import dataclass, field
from typing import Any, Iterator

MAGIC = b"DSCACHE1"
_HEAD = len(MAGIC) + 32 + 8 + 32
_ENTRY = re.compile(r"^[0-9a-f]{64}$")
_TEMP = re.compile(r"^\.tmp-[0-9a-f]{64}-[0-9a-f]+$")
#: a temporary file older than this was left by a scan that died: pruning removes it
STALE_TEMP_SECONDS = 3600.0
#: bytes copied per copy_file_range / read call
_CHUNK = 8 << 20


class MissingBlob(LookupError):
    """An entry names a blob that is gone or damaged: its unit is computed again."""


@dataclass(frozen=True)
class BlobRef:
    """What a pickled entry stores in place of a blob's bytes."""

    key: str
    size: int


@dataclass
class StagedBlob:
    """A file's bytes copied into the cache folder under a temporary name, not yet an entry."""

    key: str
    tmp: str
    size: int


@dataclass
class Staged:
    """A value to store whose blobs were copied in already: :meth:`CacheStore.put` commits
    them (checksum, header, rename) before the value itself."""

    value: Any
    blobs: list[StagedBlob] = field(default_factory=list)


class Blob:
    """A verified blob, open for reading: ``view`` its bytes (a read-only memory map),
    ``fileno`` / ``offset`` where they start in the entry's file (for kernel copies)."""

    def __init__(self, f, mm, size: int) -> None:
        self._f, self._mm = f, mm
        self.size = size
        self.offset = _HEAD
        self.view = memoryview(mm)[_HEAD:_HEAD + size] if mm is not None else memoryview(b"")

    def fileno(self) -> int:
        return self._f.fileno()

    def close(self) -> None:
        self.view.release()
        if self._mm is not None:
            try:
                self._mm.close()
            except BufferError:  # a view of it is still alive somewhere: unmapped when it goes
                pass
        self._f.close()

    def __enter__(self) -> "Blob":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


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
        cannot be written (the caller goes on without the cache).  A :class:`Staged` value's
        blobs are committed first (their sizes are not counted)."""
        if isinstance(value, Staged):
            for blob in value.blobs:
                self.commit_blob(blob)
            value = value.value
        payload = pickle.dumps(value, protocol=pickle.HIGHEST_PROTOCOL)
        head = MAGIC + bytes.fromhex(key) + len(payload).to_bytes(8, "little") + \
            hashlib.blake2b(payload, digest_size=32).digest()
        path = self._file(key)
        folder, tmp = self._temp_of(key)
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

    def _temp_of(self, key: str) -> tuple[str, str]:
        folder = os.path.dirname(self._file(key))
        if folder not in self._folders:
            os.makedirs(folder, mode=0o700, exist_ok=True)
            self._folders.add(folder)
        return folder, os.path.join(folder, f".tmp-{key}-{secrets.token_hex(6)}")

    # ------------------------------------------------------------------ blobs
    def stage_file(self, key: str, src: str) -> StagedBlob:
        """Copy the local file ``src`` into the folder under a temporary name now (the file may
        move or go once this returns); :meth:`commit_blob` makes it entry ``key`` later.
        OSError when it cannot be copied."""
        folder, tmp = self._temp_of(key)
        try:
            with open(src, "rb") as fin, open(tmp, "wb") as fout:
                size = os.fstat(fin.fileno()).st_size
                fout.write(bytes(_HEAD))  # the header once the checksum is known
                fout.flush()
                copy_range(fin.fileno(), 0, size, fout)
        except BaseException:
            _remove(tmp)
            raise
        return StagedBlob(key, tmp, size)

    def commit_blob(self, staged: StagedBlob) -> int:
        """Checksum a staged blob, write its header and rename it into place; its stamp is
        remembered, so reads do not hash it again while it holds."""
        try:
            with open(staged.tmp, "r+b") as f:
                if os.fstat(f.fileno()).st_size != _HEAD + staged.size:
                    raise OSError(f"the staged copy of {staged.key} has the wrong length")
                digest = _hash_range(f, _HEAD, staged.size)
                f.seek(0)
                f.write(MAGIC + bytes.fromhex(staged.key) + staged.size.to_bytes(8, "little") + digest)
            path = self._file(staged.key)
            os.replace(staged.tmp, path)
        except BaseException:
            _remove(staged.tmp)
            raise
        self._remember_stamp(staged.key, path)
        return _HEAD + staged.size

    def abandon(self, value: Any) -> None:
        """Remove the staged copies of a :class:`Staged` value that will not be stored."""
        if isinstance(value, Staged):
            for blob in value.blobs:
                _remove(blob.tmp)

    def open_blob(self, ref: BlobRef) -> Blob | None:
        """The blob ``ref`` names, verified (by its remembered stamp, else its checksum), or
        None (absent, or damaged: then removed and counted)."""
        import mmap

        path = self._file(ref.key)
        try:
            f = open(path, "rb")
        except OSError:
            return None
        try:
            head = f.read(_HEAD)
            st = os.fstat(f.fileno())
            if st.st_size != _HEAD + ref.size or not _head_ok(head, ref.key, st.st_size):
                f.close()
                return self._drop(path)
            mm = mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ) if st.st_size else None
            blob = Blob(f, mm, ref.size)
        except (OSError, ValueError):
            f.close()
            return None
        if self.get(_stamp_key(ref.key)) != _stamp_tuple(st):
            if _digest(blob.view) != head[len(MAGIC) + 40:_HEAD]:
                blob.close()
                return self._drop(path)
        try:
            os.utime(path)  # most recently used
        except OSError:
            pass
        self._remember_stamp(ref.key, path)
        return blob

    def _remember_stamp(self, key: str, path: str) -> None:
        try:
            stamp = _stamp_tuple(os.stat(path))
            if self.get(_stamp_key(key)) != stamp:
                self.put(_stamp_key(key), stamp)
        except OSError:  # it is hashed again next time
            pass

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


def _digest(data) -> bytes:
    """An entry's checksum (a blob's, when its stamp is not remembered: tests count calls)."""
    return hashlib.blake2b(data, digest_size=32).digest()


def _stamp_key(key: str) -> str:
    """The key of the entry that remembers blob ``key``'s stamp once it was verified."""
    return hashlib.blake2b(b"blob-stamp|" + bytes.fromhex(key), digest_size=32).hexdigest()


def _stamp_tuple(st: os.stat_result) -> tuple[int, int, int, int]:
    return (st.st_size, st.st_mtime_ns, st.st_ctime_ns, st.st_ino)


def _hash_range(f, offset: int, size: int) -> bytes:
    """BLAKE2b of ``size`` bytes of the open file ``f`` from ``offset``."""
    h = hashlib.blake2b(digest_size=32)
    buf = bytearray(min(_CHUNK, max(size, 1)))
    view = memoryview(buf)
    f.seek(offset)
    left = size
    while left > 0:
        n = f.readinto(view[:min(left, len(buf))])
        if not n:
            raise OSError("the file is shorter than its header says")
        h.update(view[:n])
        left -= n
    return h.digest()


def copy_range(src_fd: int, offset: int, size: int, dst) -> None:
    """Append ``size`` bytes of ``src_fd`` from ``offset`` to the binary writer ``dst``: a kernel
    copy (``copy_file_range``, no bytes through Python) when ``dst`` is a local file, else (an
    object store's stream, a kernel or file system without it) read and written."""
    import errno

    done = 0
    if isinstance(dst, (io.BufferedWriter, io.BufferedRandom, io.FileIO)) and hasattr(os, "copy_file_range"):
        dst.flush()
        out = dst.fileno()
        pos = os.lseek(out, 0, os.SEEK_CUR)
        try:
            while done < size:
                n = os.copy_file_range(src_fd, out, min(size - done, 1 << 30), offset + done, pos + done)
                if n == 0:
                    raise OSError("the source file is shorter than expected")
                done += n
        except OSError as exc:
            if exc.errno not in (errno.EXDEV, errno.ENOSYS, errno.EINVAL, errno.EOPNOTSUPP, errno.EPERM):
                raise
        os.lseek(out, pos + done, os.SEEK_SET)
    while done < size:
        chunk = os.pread(src_fd, min(_CHUNK, size - done), offset + done)
        if not chunk:
            raise OSError("the source file is shorter than expected")
        dst.write(chunk)
        done += len(chunk)


def _remove(path: str) -> bool:
    try:
        os.remove(path)
        return True
    except OSError:
        return False
