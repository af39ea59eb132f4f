"""Which shard functions are cached, and how: the unit of an entry, the files it reads, and
how a result is stored and put back.

* table profiles and table shards (``profile_table``, ``scan_shard``): one entry per task,
  keyed by the table's content and the task's plan; a shard's clean Parquet part is
  stored in its entry and written again, stamped with the new run's id, on a hit;
* images (``inspect_shard``): one entry per image, so that a changed image costs one
  decode, not its whole shard's;
* YOLO label files (``scan_yolo_chunk``): one entry per label file with its cleaned copy.

Every other function (COCO files, whose checks read the images they name; the probe's
batches) runs as before.
"""

from __future__ import annotations

import dataclasses
import functools
import hashlib
import os
from typing import Any, Callable

from datasan import fs

#: a local clean part of at least this many bytes is stored as a blob of its own (copied by
#: the kernel, not hashed again while its stamp holds); a smaller one inside its shard's entry
BLOB_BYTES = 1 << 20


class WholeTask:
    """One entry per task (table profile, table shard).

    ``key_parts(task, item)`` gives (the files the unit reads, what else its result
    depends on); ``task_parts(task)`` what every unit of the task shares (keyed once per
    task).  ``load_early``: a hit's entry is read once, when it is looked up (small
    results); otherwise it is checked then and read again when its turn comes.
    """

    per_file = False
    load_early = True
    #: the cache store, set by the engine (blobs are written and read through it)
    store: Any = None

    def task_parts(self, task) -> Any:
        return None

    def pack_keyed(self, task, item, result, key: str):
        """:meth:`pack` for the unit stored under ``key``."""
        return self.pack(task, item, result)

    def items(self, task) -> list:
        return [None]

    def subtask(self, task, items: list):
        return task

    def split(self, subtask, result) -> list:
        return [result]

    def join(self, task, results: list):
        return results[0]


class ProfileSpec(WholeTask):
    """``profile_table``: the key is the table's content, name, format, target and options."""

    def key_parts(self, task, item) -> tuple[list[str], Any]:
        return [task.path], (task.rel, task.fmt, task.target, task.options)

    def pack(self, task, item, result):
        return result  # an unreadable file is read again only when its content changes

    def unpack(self, task, item, stored):
        return stored


class ShardSpec(WholeTask):
    """``scan_shard``: the key is the table's content, the plan and the shard's row groups;
    the entry holds the result and the bytes of its clean part."""

    load_early = False  # parts are large: read each when its shard's turn comes

    def key_parts(self, task, item) -> tuple[list[str], Any]:
        plan = dataclasses.replace(task.plan, path="")
        return [task.plan.path], (plan, task.first_group, task.n_groups, task.first_row,
                                  task.part_path is not None, task.hash_buckets)

    def pack(self, task, item, result):
        if result.error:
            return None  # read errors mid-way may pass
        part = None
        if result.part_path:  # in the run's staging place: a folder, or a store prefix
            part = fs.read_bytes(result.part_path)
        return dataclasses.replace(result, part_path=None), part, [fs.read_bytes(f) for f in _bucket_files(task)]

    def pack_keyed(self, task, item, result, key: str):
        """A large local part is copied into the cache now (it is in the run's staging, which
        moves later) and committed as a blob with the entry."""
        from datasan.cache.store import BlobRef, Staged

        path = None if result.error else result.part_path
        if path is None or self.store is None or fs.is_remote(path) or os.path.getsize(path) < BLOB_BYTES:
            return self.pack(task, item, result)
        staged = self.store.stage_file(_blob_key(key), path)
        buckets = [fs.read_bytes(f) for f in _bucket_files(task)]
        value = (dataclasses.replace(result, part_path=None), BlobRef(staged.key, staged.size), buckets)
        return Staged(value, [staged])

    def unpack(self, task, item, stored):
        from datasan.cache.store import BlobRef, MissingBlob

        result, part, buckets = stored
        result = dataclasses.replace(result)
        if isinstance(part, BlobRef):
            blob = self.store.open_blob(part) if self.store is not None else None
            if blob is None:
                raise MissingBlob(part.key)
            with blob:
                _restamp_part(blob.view, task.part_path, task.run_id, task.plan.options.row_group_rows, blob)
            result.part_path = task.part_path
        elif part is not None:
            _restamp_part(part, task.part_path, task.run_id, task.plan.options.row_group_rows)
            result.part_path = task.part_path
        # a split table's row hashes, bucketed for the duplicate check's second map
        for path, data in zip(_bucket_files(task), buckets):
            with fs.open_output(path) as f:
                f.write(data)
        return result


def _bucket_files(task) -> list[str]:
    """The row-hash bucket files a shard task of a split table writes (none for a whole table)."""
    from datasan.sources.tables.dup_buckets import bucket_file

    return [bucket_file(task.hash_prefix, b) for b in range(task.hash_buckets)] if task.hash_buckets else []


def _blob_key(unit_key: str) -> str:
    """The key of the blob holding the clean part of the unit stored under ``unit_key``."""
    return hashlib.blake2b(b"clean-part|" + bytes.fromhex(unit_key), digest_size=32).hexdigest()


def _restamp_part(data, dest: str, run_id: str, group_rows: int, source=None) -> None:
    """Write a stored clean part (``data``, bytes-like) to ``dest`` with this run's id in its
    metadata (same rows, types and order); ``source``: the blob ``data`` is a view of, whose
    body the kernel copies."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    from datasan.cache.restamp import restamped_footer
    from datasan.cache.store import copy_range
    from datasan.sources.tables.output import open_parquet

    patched = restamped_footer(data, run_id)
    if patched is not None:  # the column chunks as stored: only the footer names the new run
        body, footer = patched
        size = len(body)
        with fs.open_output(dest) as f:
            if source is not None:
                copy_range(source.fileno(), source.offset, size, f)
            else:
                f.write(body)
            f.write(footer)
        body.release()
        return
    pf = pq.ParquetFile(pa.BufferReader(data))
    writer = open_parquet(dest, pf.schema_arrow, run_id)
    try:
        for g in range(pf.num_row_groups):
            writer.write_table(pf.read_row_group(g), row_group_size=max(1, group_rows))
    finally:
        writer.close()


class PerFile:
    """One entry per file of the task's ``files`` list."""

    per_file = True
    load_early = True

    def task_parts(self, task) -> Any:
        return self.params(task)

    def items(self, task) -> list:
        return list(task.files)

    def subtask(self, task, items: list):
        return dataclasses.replace(task, files=list(items))

    def params(self, task):
        """What tasks share when their missing files may run together in one subtask."""
        return dataclasses.replace(task, files=[])


class ImageSpec(PerFile):
    """``inspect_shard``: one image per entry, keyed by its content, its sample id and the limits."""

    def key_parts(self, task, item) -> tuple[list[str], Any]:
        rel, path = item
        return [path], rel

    def split(self, subtask, result) -> list:
        return list(result)

    def join(self, task, results: list):
        return results

    def pack(self, task, item, record):
        return pack_record(record)

    def unpack(self, task, item, stored):
        return unpack_record(stored)


@functools.lru_cache(maxsize=1)
def _record_layout() -> tuple[tuple[str, ...], dict[str, tuple[type, tuple[str, ...]]]]:
    """ImageRecord's field names, and for its nested dataclass fields their class and fields."""
    from datasan.sources.images.decode import ImageRecord
    from datasan.sources.images.perceptual import Perceptual
    from datasan.sources.images.pixels import PixelSums

    names = lambda cls: tuple(f.name for f in dataclasses.fields(cls))  # noqa: E731
    return names(ImageRecord), {"sums": (PixelSums, names(PixelSums)), "perceptual": (Perceptual, names(Perceptual))}


def pack_record(record) -> tuple:
    """An ImageRecord as a tuple of plain values in field order (nested records as tuples too):
    a bundle of them unpickles several times faster than the slotted dataclasses, whose
    state is set field by field in Python."""
    names, nested = _record_layout()
    out = []
    for name in names:
        v = getattr(record, name)
        if v is not None and name in nested:
            v = tuple(getattr(v, n) for n in nested[name][1])
        out.append(v)
    return tuple(out)


def unpack_record(packed: tuple):
    """The ImageRecord :func:`pack_record` packed."""
    from datasan.sources.images.decode import ImageRecord

    names, nested = _record_layout()
    if not isinstance(packed, tuple) or len(packed) != len(names):
        raise ValueError("not a packed image record")
    values = list(packed)
    for k, name in enumerate(names):
        if name in nested and values[k] is not None:
            values[k] = nested[name][0](*values[k])
    return ImageRecord(*values)


class YoloSpec(PerFile):
    """``scan_yolo_chunk``: one label file per entry with its cleaned copy."""

    def params(self, task):
        return dataclasses.replace(task, files=[], clean_root="")  # the staging folder differs per run

    def key_parts(self, task, item) -> tuple[list[str], Any]:
        return [item.path], (item.rel, item.image)

    def split(self, subtask, result) -> list:
        return list(result)

    def join(self, task, results: list):
        from datasan.sources.boxes.yolo import YoloResult

        out = YoloResult()
        for r in results:
            out.seen += r.seen
            out.kept += r.kept
            out.findings.merge(r.findings)
            out.stats.merge(r.stats)
            out.clean_files.extend(r.clean_files)
        return out

    def pack(self, task, item, result):
        clean = {}
        for rel in result.clean_files:
            clean[rel] = fs.read_bytes(fs.join(task.clean_root, rel))
        return result, clean

    def unpack(self, task, item, stored):
        result, clean = stored
        for rel, data in clean.items():
            with fs.open_output(fs.join(task.clean_root, rel)) as f:
                f.write(data)
        return result


def yolo_each_file(task) -> list:
    """``scan_yolo_chunk`` once per label file of ``task`` (runs in a worker), so that each
    file's result can be stored on its own."""
    from datasan.sources.boxes.yolo import scan_yolo_chunk

    return [scan_yolo_chunk(dataclasses.replace(task, files=[f])) for f in task.files]


def spec_for(fn: Callable) -> tuple[Any, Callable] | None:
    """(spec, the function to run on the engine for missing items) of a cached shard
    function, None for a function that is not cached."""
    from datasan.sources.boxes.yolo import scan_yolo_chunk
    from datasan.sources.images.decode import inspect_shard
    from datasan.sources.tables.profile import profile_table
    from datasan.sources.tables.scan import scan_shard

    if fn is profile_table:
        return ProfileSpec(), fn
    if fn is scan_shard:
        return ShardSpec(), fn
    if fn is inspect_shard:
        return ImageSpec(), fn
    if fn is scan_yolo_chunk:
        return YoloSpec(), yolo_each_file
    return None
