"""Find the files under PATH, safely.

Symlinks are followed only when they resolve inside PATH and do not lead back
into a folder already being walked; FIFOs, sockets and devices are never
opened.  Everything skipped becomes a finding, so nothing disappears silently.
"""

from __future__ import annotations

import functools
import os
import stat
from dataclasses import dataclass
from pathlib import Path

from datasan.checks import files as file_rules
from datasan.findings import Finding


@dataclass(frozen=True)
class FileEntry:
    """One regular file under PATH: ``rel`` is its posix path relative to PATH."""

    rel: str
    path: str
    size: int

    @functools.cached_property  # asked by every source kind's claim, for every file
    def suffix(self) -> str:
        """The lower-case extension with its dot ('.csv'), '' when none."""
        return os.path.splitext(self.rel)[1].lower()


@dataclass
class Discovery:
    """The files found under PATH and the findings about what was skipped."""

    root: str
    files: list[FileEntry]
    findings: list[Finding]


#: folders deeper than this below PATH are not walked (DS015); real datasets are a few levels deep
MAX_DEPTH = 256


def display_name(name: str) -> str:
    """``name`` as a writable string: bytes that are not UTF-8 (which Python keeps as surrogate
    escapes) become the four characters ``\\xNN``; a valid name is returned unchanged."""
    try:
        name.encode("utf-8")
        return name
    except UnicodeEncodeError:
        return name.encode("utf-8", "surrogateescape").decode("utf-8", "backslashreplace")


def path_of(root: str, rel: str) -> str:
    """The file system path of the sample id ``rel`` under ``root``: the inverse of
    :func:`display_name` for names that were not UTF-8 (``\\xNN`` back to the byte)."""
    path = os.path.join(root, rel)
    if "\\x" not in rel or os.path.lexists(path):
        return path
    import re

    raw = re.sub(rb"\\x([0-9a-f]{2})", lambda m: bytes([int(m[1], 16)]), rel.encode("utf-8"))
    return os.path.join(root, os.fsdecode(raw))


def _inside(path: str, root: str) -> bool:
    return path == root or path.startswith(root.rstrip(os.sep) + os.sep)


def discover(path: str | os.PathLike) -> Discovery:
    """Walk ``path`` (a folder or one file) and return its regular files, sorted by ``rel``.

    Raises FileNotFoundError when ``path`` does not exist.  A URI of an object store
    (``s3://bucket/prefix``) lists the objects under it (see :func:`discover_remote`).
    """
    from datasan import fs

    if fs.is_remote(path):
        return discover_remote(os.fspath(path))
    root = os.path.abspath(os.fspath(path))
    if not os.path.exists(root):
        raise FileNotFoundError(root)
    findings: list[Finding] = []
    if not os.path.isdir(root):
        st = os.stat(root)
        if not stat.S_ISREG(st.st_mode):
            findings.append(file_rules.special_root(root))
            return Discovery(os.path.dirname(root), [], findings)
        rel = display_name(os.path.basename(root))
        return Discovery(os.path.dirname(root), [FileEntry(rel, root, st.st_size)], findings)

    real_root = os.path.realpath(root)
    files: list[FileEntry] = []

    # an explicit stack, not recursion: a tree 1,500 folders deep must not raise RecursionError
    stack: list[tuple[str, str, frozenset[str]]] = [(root, "", frozenset({real_root}))]
    while stack:
        folder, rel_folder, ancestors = stack.pop()
        try:
            entries = sorted(os.scandir(folder), key=lambda e: e.name)
        except OSError as exc:
            findings.append(file_rules.unlistable_folder(rel_folder or ".", exc.strerror or str(exc)))
            continue
        subfolders: list[tuple[str, str, frozenset[str]]] = []
        for entry in entries:
            if entry.name.startswith("."):
                continue  # hidden files and folders (.git, .DS_Store, .ipynb_checkpoints) are not data
            name = display_name(entry.name)
            if name != entry.name:
                findings.append(file_rules.undecodable_name(f"{rel_folder}/{name}" if rel_folder else name, name))
            rel = f"{rel_folder}/{name}" if rel_folder else name
            try:
                is_link = entry.is_symlink()
                if is_link:
                    target = os.path.realpath(entry.path)
                    if not _inside(target, real_root):
                        findings.append(file_rules.symlink_outside(rel, target))
                        continue
                    if not os.path.exists(target):
                        findings.append(file_rules.broken_symlink(rel, os.readlink(entry.path)))
                        continue
                    if os.path.isdir(target) and (target in ancestors):
                        findings.append(file_rules.symlink_loop(rel, os.path.relpath(target, real_root)))
                        continue
                st = os.stat(entry.path)
            except OSError as exc:
                findings.append(file_rules.unreadable_entry(rel, exc.strerror or str(exc)))
                continue
            if stat.S_ISDIR(st.st_mode):
                real = os.path.realpath(entry.path)
                if real in ancestors:
                    findings.append(file_rules.folder_loop(rel))
                    continue
                if len(ancestors) > MAX_DEPTH:
                    findings.append(file_rules.folder_too_deep(rel, MAX_DEPTH))
                    continue
                subfolders.append((entry.path, rel, ancestors | {real}))
            elif stat.S_ISREG(st.st_mode):
                files.append(FileEntry(rel, entry.path, st.st_size))
            else:
                kind = ("FIFO" if stat.S_ISFIFO(st.st_mode) else "socket" if stat.S_ISSOCK(st.st_mode)
                        else "device file")
                findings.append(file_rules.special_file(rel, kind))

        stack.extend(reversed(subfolders))  # depth-first, in name order
    files.sort(key=lambda f: f.rel)
    return Discovery(root, files, findings)


def discover_remote(uri: str) -> Discovery:
    """The objects under a remote prefix (or the one object ``uri`` names), sorted by ``rel``.

    An object store has no symlinks, FIFOs or loops; names are UTF-8 by definition.
    Hidden names (a part starting with ``.``) are skipped as on a local disk.
    """
    from datasan import fs

    uri = uri.rstrip("/")
    if fs.kind(uri) == "missing":
        raise FileNotFoundError(uri)
    listed = fs.list_files(uri)
    if len(listed) == 1 and listed[0][1] == uri:  # one object: its parent is the root
        rel, full, size = listed[0]
        return Discovery(uri.rsplit("/", 1)[0], [FileEntry(rel, full, size)], [])
    files = [FileEntry(rel, full, size) for rel, full, size in listed
             if not any(part.startswith(".") for part in rel.split("/"))]
    return Discovery(uri, files, [])


def relative_to_root(root: str, candidate: str, base_rel: str = "") -> str | None:
    """Resolve ``candidate`` (a path from a label file, relative to the folder
    ``base_rel`` under ``root``) to a posix path relative to ``root``.

    Returns None when the path is absolute or leaves ``root`` (``..``): such a
    path must never be opened.
    """
    if not candidate or os.path.isabs(candidate) or candidate.startswith(("/", "\\")):
        return None
    joined = os.path.normpath(os.path.join(base_rel, candidate.replace("\\", "/")))
    if joined.startswith("..") or os.path.isabs(joined):
        return None
    full = os.path.realpath(os.path.join(root, joined))
    if not _inside(full, os.path.realpath(root)):
        return None
    return Path(joined).as_posix()
