"""Where files live: local paths, ``file://`` URIs and object stores (``s3://``, ``gs://``, ``hdfs://``).

One layer, pyarrow.fs, serves every store.  pyarrow is already a dependency
and its readers (Parquet, CSV, Arrow IPC) read a pyarrow file handle with
ranged reads and no extra copy; fsspec would add a package per store (s3fs,
gcsfs) and a Python file layer under those same readers.

Credentials and endpoints come from the standard environment of each store
(``AWS_ACCESS_KEY_ID``, ``AWS_SECRET_ACCESS_KEY``, ``AWS_SESSION_TOKEN``,
``AWS_REGION``, ``AWS_ENDPOINT_URL`` / ``AWS_ENDPOINT_URL_S3`` for an
S3-compatible server; ``GOOGLE_APPLICATION_CREDENTIALS``; Hadoop's own).
A local path never goes through this module's remote branch, so local scans
keep their exact behaviour (non-blocking opens, symlink rules).
"""

from __future__ import annotations

import os
import re
from functools import lru_cache
from typing import Any
from urllib.parse import unquote, urlparse

_SCHEME = re.compile(r"^([a-zA-Z][a-zA-Z0-9+.-]*)://")

#: the standard variables of the object stores: workers read PATH and write clean files with the
#: driver's endpoint and credentials (a node's own IAM role needs none of them)
STORAGE_ENV = ("AWS_ENDPOINT_URL", "AWS_ENDPOINT_URL_S3", "AWS_REGION", "AWS_DEFAULT_REGION", "AWS_PROFILE",
               "AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "GOOGLE_APPLICATION_CREDENTIALS")


def storage_env() -> dict[str, str]:
    """The :data:`STORAGE_ENV` variables set in this process."""
    return {k: os.environ[k] for k in STORAGE_ENV if os.environ.get(k)}


def adopt_storage_env(env: dict[str, str]) -> None:
    """Make this (worker) process use exactly the store settings ``env`` of the driver."""
    for k in STORAGE_ENV:
        if k in env:
            os.environ[k] = env[k]
        else:
            os.environ.pop(k, None)
    _filesystem.cache_clear()


def scheme_of(path: str) -> str | None:
    """The lower-case URI scheme of ``path`` (``s3``), None for a plain path."""
    m = _SCHEME.match(path)
    return m.group(1).lower() if m else None


def is_remote(path: str | os.PathLike) -> bool:
    """True for a URI of a store other than this machine's file system (``s3://...``)."""
    if isinstance(path, str) and "://" not in path:  # the common case, without the pattern
        return False
    s = scheme_of(os.fspath(path)) if isinstance(path, (str, os.PathLike)) else None
    return s is not None and s != "file"


def local_path(path: str | os.PathLike) -> str:
    """``path`` with a ``file://`` URI turned into a plain path; any other path unchanged."""
    path = os.fspath(path)
    if scheme_of(path) == "file":
        return unquote(urlparse(path).path) or "/"
    return path


def dirname(path: str) -> str:
    """The folder (or prefix) holding ``path``, for a URI or a local path ('.' for a bare name)."""
    if is_remote(path):
        return path.rstrip("/").rsplit("/", 1)[0]
    return os.path.dirname(path) or "."


def is_dir(path: str) -> bool:
    """Whether ``path`` names a folder (a local path) or a prefix with objects under it (a URI)."""
    return kind(path) == "dir" if is_remote(path) else os.path.isdir(path)


def join(root: str, rel: str) -> str:
    """``rel`` (posix, relative) under ``root``, for a URI or a local path."""
    if is_remote(root):
        return root.rstrip("/") + "/" + rel
    return os.path.join(root, rel)


def _s3(region_hint: str | None = None):
    import pyarrow.fs as pafs

    kw: dict[str, Any] = {}
    endpoint = os.environ.get("AWS_ENDPOINT_URL_S3") or os.environ.get("AWS_ENDPOINT_URL")
    if endpoint:
        kw["endpoint_override"] = endpoint
    region = os.environ.get("AWS_REGION") or os.environ.get("AWS_DEFAULT_REGION") or region_hint
    if region:
        kw["region"] = region
    return pafs.S3FileSystem(**kw)


@lru_cache(maxsize=16)
def _filesystem(scheme: str, netloc: str):
    import pyarrow.fs as pafs

    if scheme in ("s3", "s3a"):
        # S3FileSystem() itself reads the keys and the region; the endpoint it does not
        return _s3()
    fs, _ = pafs.FileSystem.from_uri(f"{scheme}://{netloc}/")
    return fs


def resolve(uri: str) -> tuple[Any, str]:
    """(pyarrow FileSystem, path inside it) of a remote URI."""
    u = urlparse(uri)
    scheme = u.scheme.lower()
    fs = _filesystem(scheme, u.netloc)
    if scheme in ("s3", "s3a", "gs", "gcs"):
        return fs, (u.netloc + unquote(u.path)).rstrip("/")
    return fs, unquote(u.path).rstrip("/") or "/"


def open_input(uri: str):
    """A random-access, read-only pyarrow file (an ``io.IOBase``) of a remote object."""
    fs, p = resolve(uri)
    return fs.open_input_file(p)


def kind(uri: str) -> str:
    """'file', 'dir' or 'missing' for a remote URI (a prefix with objects under it is a 'dir')."""
    import pyarrow.fs as pafs

    fs, p = resolve(uri)
    t = fs.get_file_info(p).type
    if t == pafs.FileType.File:
        return "file"
    if t == pafs.FileType.Directory:
        return "dir"
    return "missing"


def exists(path: str) -> bool:
    """Whether a local path or a remote URI names something."""
    return kind(path) != "missing" if is_remote(path) else os.path.exists(path)


def list_files(uri: str) -> list[tuple[str, str, int]]:
    """(posix path relative to ``uri``, its URI, size) of every object under a remote prefix,
    sorted; one object when ``uri`` names one."""
    import pyarrow.fs as pafs

    fs, p = resolve(uri)
    info = fs.get_file_info(p)
    if info.type == pafs.FileType.File:
        return [(p.rsplit("/", 1)[-1], uri, int(info.size or 0))]
    out = []
    for f in fs.get_file_info(pafs.FileSelector(p, recursive=True, allow_not_found=True)):
        if f.type != pafs.FileType.File:
            continue
        rel = f.path[len(p):].lstrip("/")
        out.append((rel, join(uri, rel), int(f.size or 0)))
    return sorted(out)


def inside(child: str, parent: str) -> bool:
    """Whether URI ``child`` is ``parent`` or lies under it."""
    c, p = child.rstrip("/"), parent.rstrip("/")
    return c == p or c.startswith(p + "/")


# ------------------------------------------------------------------ writing, for both kinds of place
# The run's staging place is a local folder, or a prefix in the store of a remote --out: shard
# workers write their clean files there themselves, so these work on either.

def makedirs(path: str) -> None:
    """Create folder ``path`` (and its parents) on disk; nothing on a store (prefixes need none)."""
    if not is_remote(path):
        os.makedirs(path, exist_ok=True)


def open_output(path: str):
    """A binary writer for ``path`` (its folder created on disk); replaces what is there."""
    if is_remote(path):
        store, p = resolve(path)
        return store.open_output_stream(p)
    os.makedirs(os.path.dirname(path) or ".", exist_ok=True)
    return open(path, "wb")


def open_read(path: str):
    """A binary, random-access reader of a local path or a remote object."""
    return open_input(path) if is_remote(path) else open(path, "rb")


def parquet_target(path: str) -> tuple[str, Any]:
    """(where, filesystem) to hand pyarrow's Parquet writers for ``path`` (filesystem None on disk)."""
    if is_remote(path):
        store, p = resolve(path)
        return p, store
    os.makedirs(os.path.dirname(path) or ".", exist_ok=True)
    return path, None


def parquet_file(path: str, **kw):
    """A ``pyarrow.parquet.ParquetFile`` of a local path or a remote object."""
    import pyarrow.parquet as pq

    return pq.ParquetFile(open_input(path) if is_remote(path) else path, **kw)


def move(src: str, dest: str) -> None:
    """Rename ``src`` to ``dest`` in one place (on a store: a server-side copy, then a delete)."""
    if is_remote(src):
        store, s = resolve(src)
        _, d = resolve(dest)
        store.move(s, d)
        return
    os.makedirs(os.path.dirname(dest) or ".", exist_ok=True)
    os.replace(src, dest)


def copy(src: str, dest: str) -> None:
    """Copy a file between any two places (server-side within one store)."""
    import shutil

    if is_remote(src) and is_remote(dest) and scheme_of(src) == scheme_of(dest):
        store, s = resolve(src)
        _, d = resolve(dest)
        store.copy_file(s, d)
        return
    with open_read(src) as fin, open_output(dest) as fout:
        shutil.copyfileobj(fin, fout, 8 << 20)


def remove(path: str) -> None:
    """Remove one file or object; nothing when it is not there."""
    if is_remote(path):
        store, p = resolve(path)
        try:
            store.delete_file(p)
        except FileNotFoundError:
            pass
    elif os.path.lexists(path):
        os.remove(path)


def remove_tree(path: str) -> None:
    """Remove a folder or prefix and everything under it; nothing when it is not there."""
    if is_remote(path):
        store, p = resolve(path)
        store.delete_dir_contents(p, missing_dir_ok=True)
        try:
            store.delete_dir(p)
        except (FileNotFoundError, OSError):  # a prefix with no objects left is already gone
            pass
    else:
        import shutil

        shutil.rmtree(path, ignore_errors=True)


def is_file(path: str) -> bool:
    """Whether ``path`` names a file (a local path) or an object (a remote URI)."""
    return kind(path) == "file" if is_remote(path) else os.path.isfile(path)


def files_under(root: str) -> list[str]:
    """Posix paths relative to ``root`` of every file under it (a local folder or a prefix), sorted."""
    if is_remote(root):
        return [rel for rel, _uri, _size in list_files(root)] if kind(root) == "dir" else []
    out = []
    for folder, _dirs, names in os.walk(root):
        out.extend(os.path.relpath(os.path.join(folder, n), root).replace(os.sep, "/") for n in names)
    return sorted(out)


def read_bytes(path: str) -> bytes:
    """The whole content of a (small) file or object."""
    with open_read(path) as f:
        return f.read()


def info(path: str) -> tuple[int, int] | None:
    """(size, mtime in ns) of a file or object; None when there is none."""
    if is_remote(path):
        import pyarrow.fs as pafs

        store, p = resolve(path)
        i = store.get_file_info(p)
        if i.type != pafs.FileType.File:
            return None
        return int(i.size or 0), int(i.mtime_ns or 0)
    try:
        st = os.stat(path)
    except OSError:
        return None
    return st.st_size, st.st_mtime_ns
