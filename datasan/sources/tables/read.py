"""Read table files batch by batch, never whole.

Two families:

* *text tables* (CSV, TSV, JSONL) are read with every column as a string, so a
  stray "abc" in a numeric column is a finding instead of a parse error; the
  profile pass decides each column's type and :mod:`.convert` applies it.
* *typed tables* (Parquet, Feather / Arrow IPC) are read with their own types,
  row group by row group (a shard is a range of row groups), in :mod:`.typed`.

Every reader yields ``(batch, rows, bad_rows)``: ``rows`` the 0-based data-row
index of each row of ``batch`` (int64 numpy array) and ``bad_rows`` a list of
:class:`~datasan.checks.files.BadRecord` for records that could not be read (ragged CSV lines,
malformed JSON lines), so that rows read = rows yielded + bad rows, always.
"""

from __future__ import annotations

import codecs
import csv
import json
import os
from typing import Iterator

from datasan.checks.files import MALFORMED_RECORD, RAGGED_ROW, RECORD_TOO_DEEP, BadRecord
from datasan.findings import quote
from datasan.fs import is_remote, open_input
from datasan.sources.regular import open_binary, regular_file

TEXT_FORMATS = {".csv": "csv", ".tsv": "tsv", ".tab": "tsv", ".jsonl": "jsonl", ".ndjson": "jsonl"}
TYPED_FORMATS = {".parquet": "parquet", ".pq": "parquet", ".feather": "arrow", ".arrow": "arrow", ".ipc": "arrow"}
COMPRESSED = (".gz", ".bz2", ".zst")


def table_format(rel: str) -> str | None:
    """The table format of a file name ('csv', 'tsv', 'jsonl', 'parquet', 'arrow'), or None."""
    name = rel.lower()
    for c in COMPRESSED:
        if name.endswith(c):
            name = name[: -len(c)]
            if os.path.splitext(name)[1] not in (".csv", ".tsv", ".tab", ".jsonl", ".ndjson"):
                return None
    ext = os.path.splitext(name)[1]
    return TEXT_FORMATS.get(ext) or TYPED_FORMATS.get(ext)


def is_text_format(fmt: str) -> bool:
    return fmt in ("csv", "tsv", "jsonl")


class UnreadableFile(Exception):
    """The file cannot be read at all (reported as DS001 by the caller)."""


# --------------------------------------------------------------------------- encodings

_CODECS = {".gz": "gzip", ".bz2": "bz2", ".zst": "zstd"}


def _open_binary(path: str):
    """An Arrow input stream over ``path``, decompressed by its extension; opened without
    blocking and only when it is still a regular file (NotRegularFile, an OSError, otherwise)."""
    import pyarrow as pa

    codec = _CODECS.get(os.path.splitext(path)[1].lower())
    if is_remote(path):  # Arrow's own reader over the object's ranged reads
        return pa.input_stream(open_input(path), compression=codec)
    with regular_file(path) as native:
        if native != path:  # Arrow's own reader is ~25 % faster on CSV than a Python file object
            return pa.input_stream(native, compression=codec)
    return pa.input_stream(open_binary(path), compression=codec)


def sniff_encoding(path: str) -> tuple[str, str | None]:
    """Return (encoding, note): utf-8 unless a BOM, NUL bytes or invalid UTF-8 in
    the first 64 KiB say otherwise; UnreadableFile for binary data.

    Invalid UTF-8 further into the file is found by the reader, which then
    starts over in latin-1.
    """
    with _open_binary(path) as f:
        head = f.read(4)
    if head.startswith(codecs.BOM_UTF8):
        return "utf-8", None  # pyarrow skips the UTF-8 BOM itself
    if head.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        return "utf-16", "decoded as UTF-16 (byte order mark found)"
    with _open_binary(path) as f:
        sample = f.read(65536)
    # UTF-16 without a BOM: text with a NUL in every other byte
    if len(sample) >= 4 and sample.count(b"\x00") * 3 >= len(sample):
        odd = sample[1::2].count(b"\x00")
        even = sample[0::2].count(b"\x00")
        if odd > 2 * even:
            return "utf-16-le", "decoded as UTF-16-LE (no byte order mark; NUL bytes in every other byte)"
        if even > 2 * odd:
            return "utf-16-be", "decoded as UTF-16-BE (no byte order mark; NUL bytes in every other byte)"
    # binary data: text tables never hold control bytes other than tab, CR, LF, FF
    control = sum(sample.count(bytes([b])) for b in range(32) if b not in (9, 10, 12, 13))
    if sample and control > 0.01 * len(sample):
        raise UnreadableFile(f"binary data, not text ({control} control bytes in the first "
                             f"{len(sample)} bytes)")
    try:  # a multi-byte character may be cut at the end of the sample
        sample.decode("utf-8") if len(sample) < 65536 else sample[:-4].decode("utf-8")
    except UnicodeDecodeError:
        # decide before Arrow parses: its row handler cannot pass undecodable text on
        return "latin-1", "decoded as latin-1 (check accented characters in category names)"
    return "utf-8", None


def sniff_delimiter(path: str, encoding: str, fmt: str) -> str:
    """The delimiter of a CSV/TSV file: the extension's, unless the header clearly uses ; or |."""
    default = "\t" if fmt == "tsv" else ","
    try:
        with _open_binary(path) as f:
            head = f.read(65536)
        text = head.decode(encoding if encoding != "utf-16" else "utf-16", errors="replace")
        lines = text.splitlines()[:20]
        if not lines:
            return default
        dialect = csv.Sniffer().sniff("\n".join(lines), delimiters=",;\t|")
        d = dialect.delimiter
        header = lines[0]
        # trust the sniffer only when the header agrees and the default does not split it
        if d != default and header.count(d) >= 1 and header.count(default) == 0:
            return d
    except (csv.Error, OSError, UnicodeError):
        pass
    return default


# --------------------------------------------------------------------------- CSV / TSV

def dedupe_names(names: list[str], reserved: tuple[str, ...] = ("_row",)) -> tuple[list[str], list[str]]:
    """(unique names, original names that repeated): a repeated name gets
    '.1', '.2', ... as pandas does, so every column can be addressed.  The
    ``reserved`` names (datasan's own ``_row``) count as already taken."""
    seen: dict[str, int] = {r: 1 for r in reserved}
    out, dups = [], []
    taken = set(names) | set(reserved)
    for n in names:
        if n in seen:
            k = seen[n]
            new = f"{n}.{k}"
            while new in taken:
                k += 1
                new = f"{n}.{k}"
            seen[n] = k + 1
            taken.add(new)
            out.append(new)
            if n not in dups:
                dups.append(n)
        else:
            seen[n] = 1
            out.append(n)
    return out, dups


#: a header line longer than this is not looked for further (the file is then DS001)
MAX_HEADER_BYTES = 64 << 20


def header_block_size(path: str, at_least: int = 1 << 16) -> int:
    """An Arrow CSV block size that holds the whole header line: Arrow reads the column
    names from the first block only, and a header cut by the block end reads as no header
    at all (5,000 named columns are 70 KB)."""
    seen = 0
    with _open_binary(path) as f:
        while seen < MAX_HEADER_BYTES:
            chunk = f.read(1 << 20)
            if not chunk:
                break
            cut = chunk.find(b"\n")
            if cut >= 0:
                seen += cut + 1
                break
            seen += len(chunk)
    size = at_least
    while size < 2 * seen:
        size *= 2
    return size


def csv_column_names(path: str, encoding: str, delimiter: str) -> list[str]:
    """The header's column names (UnreadableFile when there is no header)."""
    import pyarrow as pa
    import pyarrow.csv as pacsv

    try:
        reader = pacsv.open_csv(
            _open_binary(path),
            read_options=pacsv.ReadOptions(use_threads=False, encoding=encoding,
                                           block_size=header_block_size(path)),
            parse_options=pacsv.ParseOptions(delimiter=delimiter, invalid_row_handler=lambda r: "skip"),
            convert_options=pacsv.ConvertOptions(auto_dict_encode=False),
        )
        names = reader.schema.names
        reader.close()
    except pa.ArrowInvalid as exc:
        msg = str(exc)
        if "Empty CSV file" in msg:
            return []
        if "UTF8" in msg or "UTF-8" in msg:
            raise UnicodeDecodeError(encoding, b"", 0, 1, msg) from exc
        raise UnreadableFile(msg) from exc
    return names


#: cells read as null by Arrow's CSV converter in non-string columns (the
#: missing-value tokens of convert.MISSING_TOKENS in their usual spellings)
NATIVE_NULLS = ["", "NA", "na", "N/A", "n/a", "NULL", "null", "Null", "None", "none", "NONE", "nil", "NIL"]


#: bytes per CSV block (one record batch); Arrow infers column types from the first
CSV_BLOCK_SIZE = 1 << 22


def iter_csv_batches(
    path: str, encoding: str, delimiter: str, names: list[str], block_size: int | None = None,
    column_types: dict | None = None,
) -> Iterator[tuple]:
    """Yield (batch, rows, bad_rows) for a CSV/TSV file.

    By default every column is read as a string.  With ``column_types``, the
    named columns get those Arrow types and the others are inferred by Arrow
    (from the first block: a later block that does not fit raises
    ArrowInvalid, and the caller falls back to strings).
    """
    import numpy as np
    import pyarrow as pa
    import pyarrow.csv as pacsv

    bad: list[BadRecord] = []

    def on_invalid(row) -> str:
        # number is the 1-based physical line; the header is line 1
        data_row = (row.number - 2) if row.number is not None else -1
        bad.append(BadRecord(data_row, RAGGED_ROW,
                          f"Line {row.number} has {row.actual_columns} fields, expected "
                          f"{row.expected_columns}: {quote(row.text)}."))
        return "skip"

    reader = pacsv.open_csv(
        _open_binary(path),
        # one thread: the invalid-row handler then knows line numbers, and the
        # shards already use every core
        read_options=pacsv.ReadOptions(use_threads=False, encoding=encoding,
                                       block_size=header_block_size(path, block_size or CSV_BLOCK_SIZE),
                                       column_names=names,
                                       skip_rows=1),
        parse_options=pacsv.ParseOptions(delimiter=delimiter, invalid_row_handler=on_invalid),
        convert_options=pacsv.ConvertOptions(
            column_types=column_types if column_types is not None else {n: pa.string() for n in names},
            null_values=NATIVE_NULLS,
            strings_can_be_null=False,
            quoted_strings_can_be_null=False,
            auto_dict_encode=False,
        ),
    )
    next_row = 0
    pending: list[int] = []  # ragged rows not yet placed
    while True:
        try:
            batch = reader.read_next_batch()
        except StopIteration:
            break
        new_bad, bad[:] = list(bad), []
        pending.extend(b.row for b in new_bad if b.row >= 0)
        pending.sort()
        n = batch.num_rows
        rows = np.empty(n, dtype=np.int64)
        i = 0
        while i < n:
            # rows up to the next ragged row are consecutive
            if pending and pending[0] <= next_row:
                pending.pop(0)
                next_row += 1
                continue
            stop = min(n, i + (pending[0] - next_row if pending else n - i))
            rows[i:stop] = np.arange(next_row, next_row + (stop - i))
            next_row += stop - i
            i = stop
        yield batch, rows, new_bad
    # ragged rows after the last good row (or in a file of only ragged rows)
    tail = [b for b in bad]
    if tail:
        yield None, np.empty(0, dtype=np.int64), tail


# --------------------------------------------------------------------------- JSONL

def _json_scalar_text(value) -> tuple[str | None, bool]:
    """(text, nested) for one JSON value: numbers keep their repr, nested values their JSON."""
    if value is None:
        return None, False
    if isinstance(value, bool):
        return ("true" if value else "false"), False
    if isinstance(value, (int, float, str)):
        return (value if isinstance(value, str) else repr(value)), False
    return json.dumps(value, sort_keys=True), True


def _depth(line: str) -> int:
    """The deepest bracket nesting of a JSON text (brackets inside strings included: a bound
    for the message only)."""
    depth = deepest = 0
    for ch in line:
        if ch in "[{":
            depth += 1
            deepest = max(deepest, depth)
        elif ch in "]}":
            depth -= 1
    return deepest


def iter_jsonl_batches(path: str, encoding: str, batch_rows: int = 65536) -> Iterator[tuple]:
    """Yield (all-string batch, rows, bad_rows) for a JSON-lines file.

    Blank lines are not records.  Every value becomes a string (numbers keep
    their repr, JSON NaN/Infinity become 'nan'/'inf'), nested values their JSON
    text; the names of nested columns are reported through
    ``batch.schema.metadata[b'nested']``.
    """
    import numpy as np
    import pyarrow as pa

    columns: dict[str, list] = {}
    order: list[str] = []
    nested: set[str] = set()
    rows: list[int] = []
    bad: list[BadRecord] = []
    record = 0

    def flush():
        n = len(rows)
        arrays = {}
        for name in order:
            col = columns[name]
            col.extend([None] * (n - len(col)))
            arrays[name] = pa.array(col, type=pa.string())
        meta = {b"nested": json.dumps(sorted(nested)).encode()}
        batch = pa.RecordBatch.from_pydict(arrays).replace_schema_metadata(meta) if arrays else None
        out = (batch, np.asarray(rows, dtype=np.int64), list(bad))
        for name in order:
            columns[name] = []
        rows.clear()
        bad.clear()
        return out

    with _open_binary(path) as raw:
        text = codecs.getreader(encoding)(raw, errors="strict")
        for line in text:
            if not line.strip():
                continue
            try:
                obj = json.loads(line)
            except RecursionError:
                bad.append(BadRecord(record, RECORD_TOO_DEEP, "Record is nested deeper than Python's JSON parser can "
                                  f"read ({_depth(line)} levels of brackets); it was not parsed."))
                record += 1
                continue
            except ValueError as exc:
                bad.append(BadRecord(record, MALFORMED_RECORD, f"Line is not valid JSON ({exc.msg} at column {exc.colno})."))
                record += 1
                continue
            if not isinstance(obj, dict):
                bad.append(BadRecord(record, MALFORMED_RECORD, f"Line is a JSON {type(obj).__name__}, not an object."))
                record += 1
                continue
            i = len(rows)
            for key, value in obj.items():
                key = str(key)
                col = columns.get(key)
                if col is None:
                    col = columns[key] = []
                    order.append(key)
                col.extend([None] * (i - len(col)))
                txt, is_nested = _json_scalar_text(value)
                if is_nested:
                    nested.add(key)
                col.append(txt)
            rows.append(record)
            record += 1
            if len(rows) >= batch_rows:
                yield flush()
    if rows or bad:
        yield flush()
