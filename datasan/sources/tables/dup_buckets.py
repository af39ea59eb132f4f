"""The duplicate check of a split table on the engine: row hashes bucketed, one task per bucket.

A table read in one shard sends its row hashes (24 bytes per kept row) back
with the shard's result and the driver finds the duplicates.  A table split
into several shards would gather 24 GB of hashes on the driver at 1B rows, so
instead each shard task writes its hashes to the run's staging place (a local
folder, or the store's staging prefix), split into ``P`` buckets by the top
bits of the hash that groups rows (the feature hash when the table has a
target, else the whole-row hash).  Rows that can be duplicates of each other
share that hash, hence a bucket; a second map finds each bucket's duplicate
pairs, and only those pairs reach the driver.  The findings are the same as
from the whole table: the pairs of every bucket are put in row order.
"""

from __future__ import annotations

import io
from dataclasses import dataclass

from datasan import fs

#: buckets at most: at 1B rows each holds ~16M rows (375 MiB of hashes) for one task
MAX_BUCKETS = 64


def bucket_count(shards: int) -> int:
    """Buckets for a table of ``shards`` shards: the power of two >= shards, at most MAX_BUCKETS."""
    p = 1
    while p < min(shards, MAX_BUCKETS):
        p *= 2
    return p


def bucket_file(prefix: str, bucket: int) -> str:
    """The file of one shard's bucket (``prefix``: the shard's, in the staging place)."""
    return f"{prefix}-{bucket}.npz"


def write_buckets(prefix: str, buckets: int, rows, full, feat, by_features: bool) -> None:
    """Write the hashes of one shard split into ``buckets`` files (every bucket, even empty)."""
    import numpy as np

    key = feat if by_features else full
    shift = np.uint64(64 - buckets.bit_length() + 1)
    which = (key >> shift).astype(np.int64) if buckets > 1 else np.zeros(len(key), np.int64)
    order = np.argsort(which, kind="stable")  # row order kept inside each bucket
    bounds = np.searchsorted(which[order], np.arange(buckets + 1))
    for b in range(buckets):
        sel = order[bounds[b]:bounds[b + 1]]
        buf = io.BytesIO()
        np.savez(buf, rows=rows[sel], full=full[sel], feat=feat[sel])
        with fs.open_output(bucket_file(prefix, b)) as f:
            f.write(buf.getvalue())


@dataclass
class BucketTask:
    """One bucket of a table: its file from every shard, in shard order."""

    files: list[str]
    has_target: bool


def bucket_pairs(task: BucketTask):
    """The duplicate pairs of one bucket (see :func:`duplicate_pairs`); removes its files."""
    import numpy as np

    from datasan.checks.tables.duplicates import duplicate_pairs

    rows, full, feat = [], [], []
    for path in task.files:
        with np.load(io.BytesIO(fs.read_bytes(path))) as z:
            rows.append(z["rows"])
            full.append(z["full"])
            feat.append(z["feat"])
    pairs = duplicate_pairs(np.concatenate(rows), np.concatenate(full), np.concatenate(feat), task.has_target)
    for path in task.files:
        fs.remove(path)
    return pairs


def concat_pairs(all_pairs: list):
    """The pairs of every bucket as one set of arrays."""
    import numpy as np

    return tuple(np.concatenate([p[i] for p in all_pairs]) for i in range(4))
