"""Which files are images, how they group into datasets, and where their labels are.

Runs in the main process at claim time and never decodes an image.  The
dataset folders, in order of precedence:

1. folders whose images a box-label kind described (``ctx.shared["box_image_dirs"]``):
   detection images, label null;
2. labels tables (CSV/TSV/Parquet/JSONL with a path column and a label column)
   beside images: the dataset is the table's folder, its images those in the
   folders the table names;
3. ImageFolder trees ``root/<class>/<file>`` and ``root/<split>/<class>/<file>``;
4. any other folder with images: unlabeled.
"""

from __future__ import annotations

import io
import os
import posixpath
from dataclasses import dataclass, field
from typing import Any

from datasan.checks.files import UNREADABLE_FILE
from datasan.discover import FileEntry, relative_to_root
from datasan.findings import Finding
from datasan.sources.images.decode import IMAGE_EXTENSIONS, sniff_image
from datasan.sources.regular import open_binary, regular_file

PATH_COLUMNS = ("file", "path", "filename", "image", "image_path")
LABEL_COLUMNS = ("label", "class", "target", "y")
SPLITS = frozenset({"train", "val", "valid", "validation", "test"})
LABEL_TABLE_EXTENSIONS = frozenset({".csv", ".tsv", ".tab", ".parquet", ".pq", ".jsonl", ".ndjson"})
#: never sniffed for image magic bytes: formats other kinds read
NOT_IMAGE_EXTENSIONS = frozenset({
    ".csv", ".tsv", ".tab", ".jsonl", ".ndjson", ".json", ".parquet", ".pq", ".feather", ".arrow", ".ipc",
    ".txt", ".yaml", ".yml", ".md", ".gz", ".bz2", ".zst", ".py", ".xml", ".npy", ".npz",
})


@dataclass
class LabelRow:
    """One data row of a labels table: the raw path, where it resolves (None: outside PATH) and the label."""

    table: str
    row: int
    raw: str | None
    rel: str | None
    label: str | None


@dataclass
class ImageSet:
    """One image dataset: its folder (posix, "." for PATH), layout and images."""

    folder: str
    layout: str  # boxes | table | folders | split-folders | unlabeled
    images: list[FileEntry] = field(default_factory=list)
    tables: list[str] = field(default_factory=list)
    rows: list[LabelRow] = field(default_factory=list)
    findings: list[Finding] = field(default_factory=list)

    def label_of(self, rel: str) -> str | None:
        """The class folder of ``rel`` for ImageFolder layouts (None: outside any class folder)."""
        if self.layout not in ("folders", "split-folders"):
            return None
        parts = _under(rel, self.folder).split("/")
        depth = 1 if self.layout == "folders" else 2
        if len(parts) <= depth:
            return None
        if self.layout == "split-folders" and parts[0].lower() not in SPLITS:
            return None
        return parts[depth - 1]

    def split_of(self, rel: str) -> str | None:
        if self.layout != "split-folders":
            return None
        first = _under(rel, self.folder).split("/")[0]
        return first if first.lower() in SPLITS else None


def _parent(rel: str) -> str:
    return posixpath.dirname(rel) or "."


def _under(rel: str, folder: str) -> str:
    return rel if folder == "." else rel[len(folder) + 1:]


def _is_within(rel_or_folder: str, folder: str) -> bool:
    return folder == "." or rel_or_folder == folder or rel_or_folder.startswith(folder + "/")


def _head(path: str, n: int = 32) -> bytes:
    from datasan import fs

    if fs.is_remote(path):
        try:
            with fs.open_input(path) as f:
                return f.read(n)
        except OSError:
            return b""
    try:
        fd = os.open(path, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0))
    except OSError:
        return b""
    try:
        return os.read(fd, n)
    except OSError:
        return b""
    finally:
        os.close(fd)


def is_image_file(f: FileEntry) -> bool:
    """An image extension, or (for other unknown extensions) image magic bytes."""
    ext = f.suffix
    if ext in IMAGE_EXTENSIONS:
        return True
    if ext in NOT_IMAGE_EXTENSIONS or f.size < 8:
        return False
    return sniff_image(_head(f.path)) is not None


# --------------------------------------------------------------------------- labels tables

def _pick(columns: list[str], names: tuple[str, ...]) -> str | None:
    lower = {c.strip().lower(): c for c in columns}
    for n in names:
        if n in lower:
            return lower[n]
    return None


def table_columns(f: FileEntry) -> list[str]:
    """The column names of a table file, read from its header only ([] when unreadable)."""
    import json

    ext = f.suffix
    try:
        if ext in (".parquet", ".pq"):
            import pyarrow.parquet as pq

            with regular_file(f.path) as native:
                return list(pq.read_schema(native).names)
        with open_binary(f.path) as fh:
            first = fh.readline(1 << 16).decode("utf-8-sig", errors="replace").strip()
        if ext in (".jsonl", ".ndjson"):
            doc = json.loads(first) if first else None
            return list(doc) if isinstance(doc, dict) else []
        delim = "\t" if ext in (".tsv", ".tab") else ","
        import csv

        return next(csv.reader([first], delimiter=delim), [])
    except Exception:  # a broken table is the table kind's finding, not a label table
        return []


def label_table_columns(f: FileEntry) -> tuple[str, str] | None:
    """(path column, label column) when ``f`` looks like a labels table, else None."""
    if f.suffix not in LABEL_TABLE_EXTENSIONS:
        return None
    cols = table_columns(f)
    p, lab = _pick(cols, PATH_COLUMNS), _pick(cols, LABEL_COLUMNS)
    return (p, lab) if p and lab else None


def _label_text(v: Any) -> str | None:
    from datasan.checks.tables.target import is_missing_target_text

    if v is None:
        return None
    if isinstance(v, float):
        if v != v:
            return None
        if v.is_integer():
            return str(int(v))
    if isinstance(v, bool):
        return str(int(v))
    text = str(v)
    return None if is_missing_target_text(text) else text.strip()


def _read_label_csv(path: str, ext: str, path_col: str, label_col: str):
    import pyarrow as pa
    import pyarrow.csv as pacsv

    return pacsv.read_csv(
        path,
        parse_options=pacsv.ParseOptions(delimiter="\t" if ext in (".tsv", ".tab") else ","),
        convert_options=pacsv.ConvertOptions(
            include_columns=[path_col, label_col],
            column_types={path_col: pa.string(), label_col: pa.string()},
            strings_can_be_null=False,
        ),
    )


def read_label_rows(root: str, f: FileEntry, path_col: str, label_col: str,
                    images: set[str] | frozenset[str] = frozenset()) -> list[LabelRow]:
    """Every data row of a labels table (raises on an unreadable table).

    Paths are relative to the table's folder; a path that names no image there but
    names one of ``images`` relative to PATH is taken as relative to PATH.
    """
    import json

    ext = f.suffix
    if ext in (".parquet", ".pq"):
        import pyarrow.parquet as pq

        with regular_file(f.path) as native:
            t = pq.read_table(native, columns=[path_col, label_col])
        paths, labels = t.column(path_col).to_pylist(), t.column(label_col).to_pylist()
    elif ext in (".jsonl", ".ndjson"):
        paths, labels = [], []
        with io.TextIOWrapper(open_binary(f.path), encoding="utf-8-sig") as fh:
            for line in fh:
                if not line.strip():
                    continue
                doc = json.loads(line)
                doc = doc if isinstance(doc, dict) else {}
                paths.append(doc.get(path_col))
                labels.append(doc.get(label_col))
    else:
        with regular_file(f.path) as native:
            t = _read_label_csv(native, ext, path_col, label_col)
        paths, labels = t.column(path_col).to_pylist(), t.column(label_col).to_pylist()
    base = _parent(f.rel)
    base = "" if base == "." else base
    rows = []
    for i, (p, lab) in enumerate(zip(paths, labels)):
        raw = None if p is None else str(p).strip()
        rel = relative_to_root(root, raw, base) if raw else None
        if rel is not None and base and rel not in images:
            alt = relative_to_root(root, raw, "")
            if alt in images:
                rel = alt
        rows.append(LabelRow(f.rel, i, raw, rel, _label_text(lab)))
    return rows


# --------------------------------------------------------------------------- grouping

def group_images(files: list[FileEntry], root: str, box_dirs: set[str], mode: str = "auto",
                 label_files: frozenset[str] = frozenset()) -> tuple[list[ImageSet], list[FileEntry]]:
    """Split ``files`` into image sets (with their label tables) and the files left over.

    ``label_files`` are tables the user named as labels tables (``label_file``
    in the config): they are used wherever they lie, and one without a path and
    a label column is reported instead of being read as a plain table.
    """
    images = [f for f in files if is_image_file(f)]
    if not images:
        return [], files
    image_rels = {f.rel for f in images}
    taken: set[str] = set()
    sets: list[ImageSet] = []

    # 1. detection images described by box labels: the outermost described folder is the set
    outer = sorted(d for d in box_dirs if not any(o != d and _is_within(d, o) for o in box_dirs))
    for d in outer:
        mine = [f for f in images if f.rel not in taken and _is_within(_parent(f.rel), d)]
        if mine:
            sets.append(ImageSet(d, "boxes", mine))
            taken.update(f.rel for f in mine)

    # 2. labels tables beside images
    tables_taken: set[str] = set()
    extra_findings: list[Finding] = []
    if mode in ("auto", "table"):
        # every folder that holds images at or below it
        holding: set[str] = {"."}
        for r in image_rels:
            d = _parent(r)
            while d != "." and d not in holding:
                holding.add(d)
                d = _parent(d)
        by_folder: dict[str, list[tuple[FileEntry, str, str]]] = {}
        for f in files:
            if f.rel in image_rels:
                continue
            folder = _parent(f.rel)
            forced = f.rel in label_files
            if folder not in holding and not forced:
                continue
            cols = label_table_columns(f)
            if cols:
                by_folder.setdefault(folder, []).append((f, *cols))
            elif forced:
                tables_taken.add(f.rel)
                extra_findings.append(Finding(
                    UNREADABLE_FILE.code,
                    f"label_file {f.rel} has no path column ({', '.join(PATH_COLUMNS)}) and label "
                    f"column ({', '.join(LABEL_COLUMNS)}); it was not used.", source=f.rel))
        for folder in sorted(by_folder, key=lambda d: (-d.count("/"), d)):  # deepest first
            s = ImageSet(folder, "table")
            for f, pc, lc in by_folder[folder]:
                s.tables.append(f.rel)
                tables_taken.add(f.rel)
                try:
                    s.rows.extend(read_label_rows(root, f, pc, lc, image_rels))
                except Exception as exc:  # unreadable table: its images end up unlabeled (DS301)
                    s.findings.append(Finding(UNREADABLE_FILE.code, f"labels table {f.rel} could not be read: {exc}",
                                              source=f.rel))
            named = {r.rel for r in s.rows if r.rel in image_rels and r.rel not in taken}
            # images beside the table belong to its set even when it lists none of them
            # (unlisted, they are DS301): a second, unlabeled set of the same folder would
            # give two sources one name
            folders = {_parent(r) for r in named} | {folder}
            s.images = [f for f in images if f.rel not in taken
                        and (f.rel in named or _parent(f.rel) in folders)]
            taken.update(f.rel for f in s.images)
            sets.append(s)

    # 3./4. the rest, top-down
    rest = [f for f in images if f.rel not in taken]
    sets.extend(_tree_sets(rest, mode))
    if extra_findings and sets:
        sets[0].findings.extend(extra_findings)
    sets.sort(key=lambda s: s.folder)
    left = [f for f in files if f.rel not in image_rels and f.rel not in tables_taken]
    return sets, left


def _tree_sets(images: list[FileEntry], mode: str) -> list[ImageSet]:
    if not images:
        return []
    direct: dict[str, int] = {}
    children: dict[str, set[str]] = {}
    parents = [_parent(f.rel) for f in images]
    for d in parents:
        if d in direct:  # its folders above are known already
            direct[d] += 1
            continue
        direct[d] = 1
        while d != ".":
            p = _parent(d)
            children.setdefault(p, set()).add(d)
            d = p
    folders_ok = mode in ("auto", "folders")

    def class_root(folder: str, at_least: int) -> bool:
        kids = children.get(folder, set())
        if len(kids) < at_least or not all(direct.get(k, 0) for k in kids):
            return False
        in_classes = sum(direct[k] for k in kids)
        return direct.get(folder, 0) < in_classes

    found: list[tuple[str, str]] = []

    def visit(folder: str) -> None:
        kids = sorted(children.get(folder, set()))
        if folders_ok and kids:
            if all(posixpath.basename(k).lower() in SPLITS for k in kids) and all(
                    class_root(k, 1) for k in kids) and direct.get(folder, 0) <= len(kids):
                found.append((folder, "split-folders"))
                return
            if class_root(folder, 2):
                found.append((folder, "folders"))
                return
        if direct.get(folder, 0):
            found.append((folder, "unlabeled"))
            return
        for k in kids:
            visit(k)

    if folders_ok:
        visit(".")
    elif direct.get("."):
        found.append((".", "unlabeled"))
    else:  # no class folders to look for: each top folder is one unlabeled set
        found.extend((k, "unlabeled") for k in sorted(children.get(".", set())))
    sets = {folder: ImageSet(folder, layout) for folder, layout in found}
    owner: dict[str, str] = {}  # folder -> the found folder its images belong to
    for f, parent in zip(images, parents):  # each image belongs to its nearest enclosing found folder
        d = owner.get(parent)
        if d is None:
            d = parent
            while d not in sets:
                d = _parent(d) if d != "." else None
                if d is None:
                    break
            if d is None:  # cannot happen (visit covers every folder); never lose an image anyway
                d = parent
                sets[d] = sets.get(d) or ImageSet(d, "unlabeled")
            owner[parent] = d
        sets[d].images.append(f)
    return list(sets.values())
