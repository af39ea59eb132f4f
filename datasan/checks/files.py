"""File-level rules (DS0xx): files that cannot be read or parsed, odd names and folders,
special files, and datasan's own internal errors.

Discovery and the source readers find these problems (they are facts about
the file system and the parsers); the functions at the end of this module turn
each fact into its finding, so every message of the family is written here.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Iterable

from datasan.checks.rule import Rule
from datasan.findings import Finding


# ------------------------------------------------------------------ rules of this family
UNREADABLE_FILE = Rule(
    "DS001", "unreadable-file", "error",
    "A file could not be read or parsed at all.",
    what="The file exists but cannot be opened, or its format cannot be parsed "
    "(a Parquet file with a bad footer, a CSV whose header cannot be read).",
    why="A loader that hits this file raises in the middle of an epoch, often hours "
    "into a run; with several DataLoader workers the traceback hides which file it was.",
    fix="Re-export or re-download the file, or remove it from the dataset.",
    example="tables/broken.parquet: 'Parquet magic bytes not found in footer'",
)
EMPTY_FILE = Rule(
    "DS002", "empty-file", "warning",
    "A file holds no samples (zero bytes, or a header and no rows).",
    what="A data file that is empty or has no data rows.",
    why="Empty shards make some loaders yield empty batches, and `mean()` over them is NaN.",
    fix="Remove the file or fill it; check the job that produced it.",
    example="tables/empty.csv: 0 bytes",
)
TEXT_ENCODING = Rule(
    "DS003", "text-encoding", "warning",
    "A text file is not UTF-8; datasan decoded it with another encoding.",
    what="The file is not valid UTF-8. datasan tries utf-8, utf-8 with BOM, utf-16 "
    "with BOM, then latin-1, and says which one it used.",
    why="pandas and pyarrow assume UTF-8: the same file crashes one loader and "
    "silently garbles category names (and so labels) in another.",
    fix="Re-encode the file as UTF-8 (`iconv -f latin1 -t utf-8`).",
    example="tables/latin1.csv: byte 0xe9 in 'caf\\xe9'",
)
RAGGED_ROW = Rule(
    "DS004", "ragged-row", "error",
    "A CSV/TSV line has a different number of fields than the header.",
    what="A data line whose field count differs from the header's.",
    why="Most readers either crash on it or shift every later field into the wrong "
    "column, so features and labels no longer match.",
    fix="Fix the line (often an unquoted delimiter inside a text field) or drop it.",
    example="a,b,label\\n1,2\\n -> line 2 has 2 fields, expected 3",
)
UNSUPPORTED_COLUMN = Rule(
    "DS005", "unsupported-column", "warning",
    "A column has a nested or unsupported type; its values were not checked.",
    what="List, struct, map, binary or nested JSON values in a table column.",
    why="datasan cannot check what it cannot interpret; the column passes through to "
    "the clean output unchecked, and a tensor conversion of it will fail.",
    fix="Flatten the column, or drop it before training.",
    example="a JSONL column holding {'x': 1} objects",
)
UNSAFE_PATH = Rule(
    "DS006", "unsafe-path", "warning",
    "A symlink pointing outside PATH, or forming a loop, was not followed.",
    what="Symbolic links that leave the scanned folder or point back into an "
    "ancestor folder.",
    why="Following them reads data that is not part of the dataset, or loops forever.",
    fix="Copy the data into the dataset folder, or scan the folder the link points to.",
    example="data/link -> /etc",
)
SPECIAL_FILE = Rule(
    "DS007", "special-file", "warning",
    "A FIFO, socket or device file was skipped.",
    what="Files that are not regular files or folders.",
    why="Opening a FIFO blocks a loader forever.",
    fix="Remove the special file from the dataset folder.",
    example="data/pipe (a FIFO)",
)
UNRECOGNIZED_FILE = Rule(
    "DS008", "unrecognized-file", "info",
    "A file of a type datasan does not read was ignored.",
    what="Files whose extension or content matches no known source kind.",
    why="Worth knowing when a dataset file has a typo in its extension and is silently "
    "left out of training.",
    fix="Rename the file with the right extension, or ignore this note.",
    example="data/notes.docx",
)
MALFORMED_RECORD = Rule(
    "DS009", "malformed-record", "error",
    "A JSONL line is not valid JSON (or not a JSON object).",
    what="A line of a JSON-lines file that does not parse, or parses to something "
    "other than an object.",
    why="`pandas.read_json(lines=True)` and `datasets` raise on the first such line.",
    fix="Repair or drop the line.",
    example='{"x": 1, "label": 0',
)
DUPLICATE_COLUMN_NAME = Rule(
    "DS010", "duplicate-column-name", "warning",
    "Two or more columns of a table have the same name.",
    what="Repeated names in a CSV header or a Parquet/Arrow schema. datasan reads the "
    "repeats as 'name.1', 'name.2', ... (as pandas does) and checks them all.",
    why="Selecting the column by name returns one of them or fails, so features silently "
    "go missing or a loader crashes.",
    fix="Rename the columns in the producing job.",
    example="a,a,label",
)
INTERNAL_ERROR = Rule(
    "DS011", "internal-error", "error",
    "datasan failed on a source (a bug in datasan); all its samples were quarantined.",
    what="A source whose reader or checks raised, or whose counts broke kept + quarantined "
    "== seen. Every file of the source is quarantined (sample = the file, row empty); the "
    "message names the exception and where it was raised. The scan still writes every "
    "output and exits 3. Config and --ignore cannot turn this rule off.",
    why="Nothing about the source was checked: training on it would take unchecked data "
    "for checked data.",
    fix="Report the message (exception and place) to datasan's maintainers; until then "
    "check the source by hand or remove it from PATH.",
    example="tables/x.csv: ZeroDivisionError: division by zero (at datasan/checks/tables/columns.py:120 in dataset_findings)",
)
UNDECODABLE_FILE_NAME = Rule(
    "DS012", "undecodable-file-name", "warning",
    "A file or folder name is not valid UTF-8; its sample ids show the bad bytes as \\xNN.",
    what="Names whose bytes do not decode as UTF-8 (a Latin-1 name copied from an old "
    "machine). Sample ids are strings, so the undecodable bytes are written as the four "
    "characters \\xNN (bad\\xffname.csv); the file itself is read under its real name.",
    why="Python and most loaders decode names with surrogate escapes that cannot be written "
    "to Parquet, JSON or CSV: a training script that lists the folder may crash on it, and "
    "the id in findings is not the literal name.",
    fix="Rename the file to a UTF-8 name (`convmv -f latin1 -t utf-8`).",
    example="tables/bad\\xffname.csv",
)
SHORTENED_CLEAN_NAME = Rule(
    "DS013", "shortened-clean-name", "info",
    "A source's clean file name would be too long; it was written under a shortened name.",
    what="clean/<source>.parquet adds 8 bytes to the source's file name; when that passes "
    "the file system's 255-byte limit the clean file is written as the name cut to fit, "
    "'~' and 8 hex digits of the name's hash, recorded as clean_file in report.json.",
    why="A reader that builds clean/<source>.parquet by hand will not find the file.",
    fix="Shorten the source's file name, or read clean_file from report.json.",
    example="clean/aaaa...aaa~1f2e3d4c.parquet for a 251-byte name",
)
RECORD_TOO_DEEP = Rule(
    "DS014", "record-too-deep", "error",
    "A record is nested deeper than datasan reads (JSON arrays/objects in arrays ...).",
    what="A JSONL record (or a COCO file) whose nesting passes what Python's json parser "
    "can take (about 1,000 levels); the record is quarantined without being parsed.",
    why="json.loads and most loaders raise RecursionError on it, killing the DataLoader "
    "worker that reaches it.",
    fix="Fix the job that wrote the record; real features are never nested that deep.",
    example='{"x": [[[[...3,000 levels...]]]]}',
)
FOLDER_TOO_DEEP = Rule(
    "DS015", "folder-too-deep", "warning",
    "Folders nested more than 256 levels deep were not walked.",
    what="A folder at depth 256 below PATH that holds further folders; nothing below it is "
    "read (its files are not part of the scan).",
    why="Such trees come from a runaway copy or a symlink-free loop; their path names "
    "approach the OS limits and many tools fail on them.",
    fix="Flatten the tree, or scan the deep folder itself.",
    example="a/a/a/... 1,500 levels",
)


# ------------------------------------------------------------------ findings of this family

@dataclass(frozen=True)
class BadRecord:
    """A record of a text table that could not be read: its 0-based data row, the rule it
    breaks (:data:`RAGGED_ROW`, :data:`MALFORMED_RECORD` or :data:`RECORD_TOO_DEEP`) and
    a sentence saying what was wrong."""

    row: int
    rule: Rule
    message: str


def bad_record(source: str, bad: BadRecord) -> Finding:
    """The finding of one record that could not be read (its row is quarantined)."""
    return Finding(bad.rule.code, bad.message, sample=f"{source}#{bad.row}", source=source, row=bad.row)


def unreadable_file(source: str, reason: str, *, as_format: str | None = None,
                    past_row: int | None = None) -> Finding:
    """DS001: ``source`` could not be read (as ``as_format``, or after ``past_row`` rows)."""
    if past_row is not None:
        what = f"{source} could not be read past row {past_row}: {reason}"
    elif as_format is not None:
        what = f"{source} could not be read as {as_format.upper()}: {reason}"
    else:
        what = f"{source} could not be read: {reason}"
    return Finding(UNREADABLE_FILE.code, what, source=source)


def unreadable_entry(rel: str, reason: str) -> Finding:
    """DS001: a folder entry that could not even be looked at (stat failed)."""
    return Finding(UNREADABLE_FILE.code, f"{rel} could not be read: {reason}.", source=rel)


def unlistable_folder(rel: str, reason: str) -> Finding:
    """DS001: a folder whose entries could not be listed (``rel`` is "." for PATH itself)."""
    return Finding(UNREADABLE_FILE.code, f"Folder could not be listed: {reason}.", source=rel)


def is_unreadable(findings: Iterable[Finding]) -> bool:
    """True when one of ``findings`` says a file could not be read at all."""
    return any(f.code == UNREADABLE_FILE.code for f in findings)


def empty_file(source: str, *, zero_bytes: bool = False, no_header: bool = False) -> Finding:
    """DS002: a file of 0 bytes, without header and rows, or with a header and no rows."""
    if zero_bytes:
        return Finding(EMPTY_FILE.code, f"{source} is empty (0 bytes).", source=source)
    if no_header:
        return Finding(EMPTY_FILE.code, f"{source} has no header and no data rows.", source=source)
    return Finding(EMPTY_FILE.code, f"{source} has no data rows.", source=source)


def text_encoding(source: str, note: str | None = None) -> Finding:
    """DS003: the file was decoded as latin-1 (``note`` None), or as the encoding ``note`` names."""
    if note is None:
        return Finding(TEXT_ENCODING.code, f"{source} is not valid UTF-8; it was decoded as latin-1 (check "
                       "accented characters in category names).", source=source)
    return Finding(TEXT_ENCODING.code, f"{source} is not UTF-8: {note}.", source=source)


def unsupported_column(source: str, column: str) -> Finding:
    """DS005: a column of nested or binary values, passed through unchecked."""
    return Finding(UNSUPPORTED_COLUMN.code, f"Column '{column}' holds nested or binary values; it was not "
                   "checked.", source=source, column=column)


def symlink_outside(rel: str, target: str) -> Finding:
    """DS006: a symlink that leaves PATH."""
    return Finding(UNSAFE_PATH.code, f"Symlink {rel} points outside PATH (to {target}); not followed.", source=rel)


def broken_symlink(rel: str, points_to: str) -> Finding:
    """DS006: a symlink to nothing."""
    return Finding(UNSAFE_PATH.code, f"Symlink {rel} is broken (points to {points_to}).", source=rel)


def symlink_loop(rel: str, to: str) -> Finding:
    """DS006: a symlink back to one of its parent folders."""
    return Finding(UNSAFE_PATH.code, f"Symlink {rel} loops back to {to}; not followed.", source=rel)


def folder_loop(rel: str) -> Finding:
    """DS006: a folder (a bind mount, a junction) that is one of its own parents."""
    return Finding(UNSAFE_PATH.code, f"Folder {rel} loops back into one of its parents; not followed.", source=rel)


def special_file(rel: str, kind: str) -> Finding:
    """DS007: a FIFO, socket or device file (``kind``) that was not opened."""
    return Finding(SPECIAL_FILE.code, f"{rel} is a {kind}; it was not opened.", source=rel)


def special_root(path: str) -> Finding:
    """DS007: PATH itself is neither a folder nor a regular file."""
    return Finding(SPECIAL_FILE.code, f"{path} is not a regular file; it was not read.")


def changed_after_listing(rel: str, detail: str) -> Finding:
    """DS007: a file that stopped being a regular file between listing and reading."""
    return Finding(SPECIAL_FILE.code, f"{rel} changed after it was listed: {detail}.", source=rel)


def unrecognized_file(rel: str) -> Finding:
    """DS008: a file no source kind reads."""
    return Finding(UNRECOGNIZED_FILE.code, f"{rel} is not a file type datasan reads; it was ignored.", source=rel)


def duplicate_column_name(source: str, name: str) -> Finding:
    """DS010: a repeated column name (or the reserved '_row'), read under a new name."""
    if name == "_row":
        msg = (f"{source} has a column named '_row', which datasan's clean files reserve for the "
               "row index; it is read as '_row.1'.")
    else:
        msg = (f"Column name '{name}' appears more than once in {source}; the repeats are read as "
               f"'{name}.1', '{name}.2', ...")
    return Finding(DUPLICATE_COLUMN_NAME.code, msg, source=source, column=name)


def internal_error(source: str, files: list[str], reason: str) -> list[Finding]:
    """DS011 for each file of a source datasan failed on (one finding for the source when it
    has no files): each file is quarantined as one sample."""
    msg = f"datasan failed on source {source} ({reason}); the file was quarantined unchecked."
    if not files:
        return [Finding(INTERNAL_ERROR.code, msg, source=source)]
    return [Finding(INTERNAL_ERROR.code, msg, sample=rel, source=rel) for rel in files]


def undecodable_name(rel: str, name: str) -> Finding:
    """DS012: a file or folder name that is not valid UTF-8 (``name`` shows its bytes as \\xNN)."""
    return Finding(UNDECODABLE_FILE_NAME.code, f"The name '{name}' is not valid UTF-8; datasan shows its bytes "
                   "as \\xNN in sample ids.", source=rel)


def shortened_clean_name(source: str, clean_rel: str) -> Finding:
    """DS013: the clean file was written under a shortened name."""
    return Finding(SHORTENED_CLEAN_NAME.code, f"The clean file of {source} would pass the 255-byte file name "
                   f"limit; it was written as clean/{clean_rel}.", source=source)


def folder_too_deep(rel: str, max_depth: int) -> Finding:
    """DS015: a folder below the depth datasan walks."""
    return Finding(FOLDER_TOO_DEEP.code, f"Folder {rel} lies more than {max_depth} folders below PATH; it was "
                   "not walked.", source=rel)
