"""Tables (CSV, TSV, JSONL, Parquet, Feather/Arrow) as a source kind.

Two passes over each file, both streaming, one module per job:

* :mod:`.profile` -- pass 1, one task per file: column type counts (text
  tables), the target's value counts and a numeric sample;
* :mod:`.plan` -- the decisions that need the whole file: column types,
  features, the task, distant class ids, regression bounds;
* :mod:`.scan` -- pass 2, one task per shard (a file, or a run of row groups of
  a large Parquet/Arrow file): convert, run the row checks, write the kept rows;
* :mod:`.hashing` -- row hashes for the duplicate checks;
* :mod:`.output` -- the one Parquet writer of clean files and the statistics
  of the rows it keeps (shared by the scan and :mod:`.rewrite`);
* :mod:`.kind` -- :class:`TableKind`: claims the files, runs the passes,
  merges the shards, runs the whole-table checks and puts the clean file in place.

Reading is in :mod:`.read` (text tables), :mod:`.typed` (typed tables) and
:mod:`.convert` (text cells to typed columns).
"""

from __future__ import annotations

from datasan.sources.tables.kind import TableKind

__all__ = ["TableKind"]
