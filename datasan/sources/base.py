"""The contract between the pipeline and one kind of source.

A *source kind* (tables, images, box labels, ...) claims the files it reads,
then runs its sources: it splits them into shards, maps a pure, picklable
shard function over them with the context's engine, merges the partial
results and returns one :class:`SourceOutcome` per source.  The pipeline
turns outcomes into the contract's files; it knows nothing of formats.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Callable, Iterator, Protocol, Sequence, runtime_checkable

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
    #: where clean/ files are staged before they are moved into place: a local folder, or the
    #: run's staging prefix in the store of a remote --out (write through datasan.fs)
    staging: str
    progress: Any = None  # datasan.outputs.progress.Progress or None
    #: notes one kind leaves for the kinds that claim after it, e.g. the box-label
    #: kind records here which image folders its label files describe
    shared: dict[str, Any] = field(default_factory=dict)
    #: the run's id: every Parquet file written for the run carries it in its metadata
    run_id: str = ""
    #: whether the run writes report.html (an output folder, and the report not turned off)
    report_due: bool = False


class SourceKind(Protocol):
    """One kind of source.  Implementations live in ``datasan/sources/``.

    ``name`` names the kind; ``source_kinds`` the values of :attr:`Source.kind`
    its sources carry (default: ``(name,)``), so that the steps after the
    scan find the kind of an outcome (:func:`datasan.sources.kind_of`).

    Beyond claiming and running, a kind may carry optional capabilities, each
    a protocol below, found with ``isinstance``: :class:`ProbesSamples` (give
    the probe batches of a kept outcome) and :class:`DropsSamples` (quarantine
    kept samples late).  A step that needs a capability the kind lacks skips
    the source and says why.
    """

    name: str

    def claim(self, files: list[FileEntry], ctx: ScanContext) -> tuple[list[Source], list[FileEntry]]:
        """Take the files this kind reads; return its sources and the files left."""

    def run(self, sources: list[Source], ctx: ScanContext) -> tuple[list[SourceOutcome], FindingBuffer]:
        """Scan the sources; return one outcome per source and findings about no single source."""


# --------------------------------------------------------------------------- optional capabilities

@dataclass
class ProbeBatch:
    """One batch of kept samples, as the probe network takes them.

    ``keys`` identify the probed samples, one per row of ``x``: their 0-based
    row in the source when :attr:`ProbeFeed.samples` is None, else positions in
    it.  ``raw`` is the kind's own handle on the whole batch (probed or not),
    handed back to :attr:`ProbeFeed.stream`.  ``left_out`` counts samples of
    the batch that cannot be probed (no usable target), ``failed`` the ones
    that could not be loaded (``"sample: why"``).
    """

    x: Any
    y: Any
    keys: Any
    raw: Any = None
    left_out: int = 0
    failed: list[str] = field(default_factory=list)


class DropStream(Protocol):
    """Removes error samples from a source's clean outputs in the same pass as the probe.

    It sees every batch in order, with the keys of the samples to leave out;
    :meth:`finish` puts the new outputs in place, lowers ``outcome.kept`` and
    recomputes the statistics, and returns the sample ids it left out.
    """

    active: bool  #: True once it writes (before, it only follows the batches)

    def add(self, batch: ProbeBatch, drop_keys: Any) -> None: ...

    def finish(self) -> list[str]: ...

    def abort(self) -> None: ...


@dataclass
class ProbeFeed:
    """What a kind gives the probe for one kept outcome.

    * ``network``: the default network for these inputs, ``"mlp"`` or ``"cnn"``;
    * ``input_shape`` / ``num_outputs`` / ``task``: what a network is built for;
    * ``batches``: yields :class:`ProbeBatch` over every kept sample, once;
    * ``samples``: key -> sample id when keys are positions (file samples),
      None when keys are rows of the source (``"<source>#<row>"``);
    * ``features``: input names, so a flagged row names its largest value;
    * ``left_out_what``: what :attr:`ProbeBatch.left_out` counts, for the report;
    * ``stream``: removes errors in the same pass, or None (then errors leave
      through :meth:`DropsSamples.drop_samples` after the probe);
    * ``report``: extra facts for the source's probe report;
    * ``class_names``: the name of each class id (classification), for messages and reports.
    """

    network: str
    input_shape: tuple[int, ...]
    num_outputs: int
    task: str
    batches: Callable[[], Iterator[ProbeBatch]]
    samples: Sequence[str] | None = None
    features: list[str] | None = None
    left_out_what: str = "samples that could not be probed"
    stream: DropStream | None = None
    report: dict[str, Any] = field(default_factory=dict)
    class_names: list[str] | None = None


@runtime_checkable
class ProbesSamples(Protocol):
    """A kind whose kept samples the probe can feed through a network."""

    def probe_feed(self, outcome: SourceOutcome, ctx: ScanContext) -> ProbeFeed | str:
        """The probe's feed for ``outcome``, or a sentence saying why it cannot be probed."""


@runtime_checkable
class DropsSamples(Protocol):
    """A kind that can quarantine kept samples after its run (after the probe, or a
    finding that a config makes an error once the outputs were written)."""

    def drop_samples(self, outcome: SourceOutcome, ctx: ScanContext, samples: list[str]) -> dict[str, Any]:
        """Remove ``samples`` (kept sample ids) from the outcome's clean outputs and
        index, lower ``outcome.kept`` and recompute its statistics; return facts for
        the report (e.g. ``{"clean_file_rewritten": True}``)."""
