"""Read typed tables (Parquet, Feather / Arrow IPC) row group by row group.

A shard of a typed table is a run of row groups (record batches for Arrow);
like the text readers, :func:`iter_typed_batches` yields ``(batch, rows, [])``
with the 0-based data-row index of each row.
"""

from __future__ import annotations

from typing import Iterator

from datasan.sources.regular import NotRegularFile, regular_file
from datasan.sources.tables.read import UnreadableFile, dedupe_names


def typed_row_groups(path: str, fmt: str) -> tuple[int, list[int]]:
    """(total rows, rows of each row group / record batch) of a Parquet or Arrow file."""
    import pyarrow as pa

    try:
        with regular_file(path) as native:
            sizes = _group_sizes(native, fmt)
    except NotRegularFile:
        raise
    except (pa.ArrowException, OSError) as exc:
        raise UnreadableFile(str(exc)) from exc
    return sum(sizes), sizes


def _group_sizes(path: str, fmt: str) -> list[int]:
    import pyarrow as pa
    import pyarrow.parquet as pq

    if fmt == "parquet":
        md = pq.ParquetFile(path).metadata
        return [md.row_group(i).num_rows for i in range(md.num_row_groups)]
    with _mapped(path) as src:
        try:
            r = pa.ipc.open_file(src)
            return [r.get_batch(i).num_rows for i in range(r.num_record_batches)]
        except pa.ArrowInvalid:
            src.seek(0)
            return [b.num_rows for b in pa.ipc.open_stream(src)]


def typed_schema(path: str, fmt: str):
    import pyarrow as pa
    import pyarrow.parquet as pq

    try:
        with regular_file(path) as native:
            if fmt == "parquet":
                return pq.ParquetFile(native).schema_arrow
            with _mapped(native) as src:
                try:
                    return pa.ipc.open_file(src).schema
                except pa.ArrowInvalid:
                    src.seek(0)
                    return pa.ipc.open_stream(src).schema
    except NotRegularFile:
        raise
    except (pa.ArrowException, OSError) as exc:
        raise UnreadableFile(str(exc)) from exc


def iter_typed_batches(
    path: str, fmt: str, first_group: int, n_groups: int, first_row: int,
    batch_rows: int, columns: list[str] | None = None,
) -> Iterator[tuple]:
    """Yield (batch, rows, []) for row groups [first_group, first_group + n_groups)."""
    with regular_file(path) as native:
        yield from _typed_batches(native, fmt, first_group, n_groups, first_row, batch_rows, columns)


def _typed_batches(path, fmt, first_group, n_groups, first_row, batch_rows, columns) -> Iterator[tuple]:
    import numpy as np
    import pyarrow as pa
    import pyarrow.parquet as pq

    row = first_row
    if fmt == "parquet":
        # pre_buffer reads whole row groups ahead: 4x the memory for no speed here
        pf = pq.ParquetFile(path, pre_buffer=False)
        groups = list(range(first_group, first_group + n_groups))
        names = dedupe_names(pf.schema_arrow.names)[0]
        if columns is not None:  # select by position: names may repeat in the file
            positions = [names.index(c) for c in columns]
            columns = [pf.schema_arrow.names[i] for i in positions]
        for batch in pf.iter_batches(batch_size=batch_rows, row_groups=groups, columns=columns,
                                     use_threads=True):
            if columns is None:
                batch = batch.rename_columns(names)
            n = batch.num_rows
            yield batch, np.arange(row, row + n, dtype=np.int64), []
            row += n
        return
    with _mapped(path) as src:
        try:
            r = pa.ipc.open_file(src)
            batches = (r.get_batch(i) for i in range(first_group, first_group + n_groups))
        except pa.ArrowInvalid:
            src.seek(0)
            stream = pa.ipc.open_stream(src)
            batches = (b for i, b in enumerate(stream) if first_group <= i < first_group + n_groups)
        for batch in batches:
            names = dedupe_names(batch.schema.names)[0]
            batch = batch.rename_columns(names)
            if columns is not None:
                batch = batch.select(columns)
            n = batch.num_rows
            yield batch, np.arange(row, row + n, dtype=np.int64), []
            row += n


def typed_null_counts(path: str, fmt: str) -> dict[str, int] | None:
    """Nulls per column of a Parquet or Arrow file from its metadata, without reading
    values (Parquet row-group statistics, Arrow batch headers); None when a Parquet
    row group has no statistics.  NaN floats are not nulls and are not counted."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    counts: dict[str, int] = {}
    try:
        if fmt == "parquet":
            pf = pq.ParquetFile(path)
            md = pf.metadata
            names = dedupe_names(pf.schema_arrow.names)[0]
            leaves = {md.schema.column(i).path: i for i in range(md.num_columns)}
            for name, orig in zip(names, pf.schema_arrow.names):
                i = leaves.get(orig)
                if i is None:  # nested: not a column datasan checks
                    continue
                total = 0
                for g in range(md.num_row_groups):
                    st = md.row_group(g).column(i).statistics
                    if st is None or not st.has_null_count:
                        return None
                    total += st.null_count
                counts[name] = total
            return counts
        with _mapped(path) as src:
            try:
                r = pa.ipc.open_file(src)
                batches = (r.get_batch(i) for i in range(r.num_record_batches))
            except pa.ArrowInvalid:
                src.seek(0)
                batches = iter(pa.ipc.open_stream(src))
            for batch in batches:  # memory-mapped: null counts come from the headers
                names = dedupe_names(batch.schema.names)[0]
                for name, col in zip(names, batch.columns):
                    counts[name] = counts.get(name, 0) + col.null_count
        return counts
    except (pa.ArrowException, OSError):
        return None


def _mapped(source):
    """A memory map of a local path; an object's open pyarrow file as it is (a store has no
    map: Arrow IPC reads it with ranged reads)."""
    import contextlib

    import pyarrow as pa

    return pa.memory_map(source) if isinstance(source, str) else contextlib.nullcontext(source)
