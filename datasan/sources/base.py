"""The contract between the pipeline and one kind of source.

A *source kind* (tables, images, box labels, ...) claims the files it reads,
then runs its sources: it splits them into shards, maps a pure, picklable
shard function over them with the context's engine, merges the partial
results and returns one :class:`SourceOutcome` per source.  The pipeline
turns outcomes into the contract's files; it knows nothing of formats.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol

from datasan.discover import FileEntry
from datasan.findings import FindingBuffer

if TYPE_CHECKING:  # pragma: no cover
    from datasan.engine import Engine
    from datasan.options import ScanOptions


@dataclass
class Source:
    """One source: a table file, an image folder, a label file ...

    ``name`` is its posix path relative to PATH (a file, or a folder for
    file-per-sample datasets); ``files`` the files it owns.
    """

    kind: str
    name: str
    files: list[FileEntry]
    meta: dict[str, Any] = field(default_factory=dict)


@dataclass
class SourceOutcome:
    """Everything one source contributes to the outputs.

    * ``unit``: what a sample is here ("rows", "images", "boxes").
    * ``seen`` / ``kept``: samples read and samples kept; the pipeline checks
      that kept + quarantined == seen, where the quarantined samples are the
      distinct keys of the error findings (``quarantine_key``: "sample", or
      "unit" = (sample, source, row) for boxes).
    * ``stats``: fragments of stats.json, e.g. ``{"tables": {name: {...}}}``.
    * ``clean_files``: paths relative to the staging folder's ``clean/`` that
      this source wrote.
    * ``index``: rows for index.parquet (a pyarrow Table) or None.
    * ``report``: extra facts for report.json (task, target, ...).
    """

    source: Source
    unit: str
    seen: int
    kept: int
    findings: FindingBuffer
    stats: dict[str, Any] = field(default_factory=dict)
    clean_files: list[str] = field(default_factory=list)
    index: Any = None
    quarantine_key: str = "sample"
    report: dict[str, Any] = field(default_factory=dict)


@dataclass
class ScanContext:
    """What a source kind may use while it runs."""

    root: str
    options: "ScanOptions"
    engine: "Engine"
    staging: str  # folder receiving clean/ files before they are moved into place
    progress: Any = None  # datasan.outputs.progress.Progress or None
    #: notes one kind leaves for the kinds that claim after it, e.g. the box-label
    #: kind records here which image folders its label files describe
    shared: dict[str, Any] = field(default_factory=dict)
    #: the run's id: every Parquet file written for the run carries it in its metadata
    run_id: str = ""


class SourceKind(Protocol):
    """One kind of source.  Implementations live in ``datasan/sources/``."""

    name: str

    def claim(self, files: list[FileEntry], ctx: ScanContext) -> tuple[list[Source], list[FileEntry]]:
        """Take the files this kind reads; return its sources and the files left."""

    def run(self, sources: list[Source], ctx: ScanContext) -> tuple[list[SourceOutcome], FindingBuffer]:
        """Scan the sources; return one outcome per source and findings about no single source."""
