"""The result of a scan: findings, quarantine, statistics, report, and how to write them.

:class:`Report` holds the facts of a run, :class:`GateVerdict` the gate's
judgement; report.json is ``ScanResult.report``, built from both (its keys
and values are a contract, docs/outputs.md).  A result holds disk space until
it is written or closed (its staging folder, a locked output folder):
``with datasan.scan(...) as result:`` releases it at the end of the block,
and a result that is garbage-collected releases it too.
"""

from __future__ import annotations

import os
import weakref
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # pragma: no cover
    import pandas
    import pyarrow

    from datasan.outputs.folder import OutputFolder

SEVERITY_RANK = {"info": 0, "warning": 1, "error": 2}


@dataclass
class Report:
    """The facts of one run, as report.json gives them (without the derived ``findings``,
    ``gate`` and ``passed``, which :attr:`ScanResult.report` adds)."""

    datasan_version: str
    run_id: str
    path: str
    started: str
    seconds: float
    #: the options that decide the findings (fail_on, target, targets, task, ...)
    options: dict[str, Any]
    files: int
    samples: int
    kept: int
    quarantined: int
    #: per source: source, kind, unit, seen, kept, quarantined and what its kind reports
    sources: list[dict[str, Any]]
    probe: dict[str, Any]
    internal_errors: list[dict[str, str]]
    #: the comparison with ``--baseline``'s statistics (docs/drift.md); {"compared": false, ...} without one
    drift: dict[str, Any] = field(default_factory=dict)
    #: the content cache: {"enabled": false} or its path, hits, misses, stored, ... (docs/outputs.md)
    cache: dict[str, Any] = field(default_factory=dict)
    #: the output folder it was last written to (absolute), None before
    out: str | None = None
    #: keys of a loaded report.json this version does not know, kept as they were
    extra: dict[str, Any] = field(default_factory=dict)

    _KEYS = ("datasan_version", "run_id", "path", "started", "seconds", "options", "files", "samples", "kept",
             "quarantined", "sources", "probe", "internal_errors", "drift", "cache")
    _DERIVED = ("findings", "gate", "passed", "out")

    def to_dict(self, findings: dict[str, Any], verdict: "GateVerdict") -> dict[str, Any]:
        """report.json's document: these facts, the findings' counts and the gate's verdict."""
        doc = {k: getattr(self, k) for k in self._KEYS}
        doc.update(self.extra)
        doc.update(findings=findings, gate=verdict.to_dict(), passed=verdict.passed)
        if self.out is not None:
            doc["out"] = self.out
        return doc

    @classmethod
    def from_dict(cls, doc: dict[str, Any]) -> "Report":
        """The facts of a report.json document (its derived keys are recomputed by the result)."""
        defaults = {"datasan_version": "", "run_id": "", "path": "", "started": "", "seconds": 0.0, "options": {},
                    "files": 0, "samples": 0, "kept": 0, "quarantined": 0, "sources": [], "probe": {},
                    "internal_errors": [], "drift": {}, "cache": {}}
        known = {k: doc.get(k, defaults[k]) for k in cls._KEYS}
        extra = {k: v for k, v in doc.items() if k not in cls._KEYS and k not in cls._DERIVED}
        return cls(**known, out=doc.get("out"), extra=extra)


@dataclass(frozen=True)
class GateVerdict:
    """The gate's judgement of a scan; :meth:`to_dict` is report.json's ``gate``."""

    fail_on: str
    max_quarantine_fraction: float | None
    max_total_quarantine_fraction: float | None
    #: quarantined samples / samples seen, all sources together
    quarantined_fraction: float
    #: the source that lost the largest share: {source, seen, quarantined, fraction}
    worst_source: dict[str, Any] | None
    #: whether a baseline was given
    baseline: bool
    new_findings: int
    failing_findings: int
    #: why the quarantine fails the gate, naming the worst source; '' when it does not
    quarantine_reason: str = ""

    @property
    def passed(self) -> bool:
        """True when no finding fails the gate and the quarantine is within its limits."""
        return self.failing_findings == 0 and not self.quarantine_reason

    def to_dict(self) -> dict[str, Any]:
        """report.json's ``gate`` section."""
        return {"fail_on": self.fail_on, "max_quarantine_fraction": self.max_quarantine_fraction,
                "max_total_quarantine_fraction": self.max_total_quarantine_fraction,
                "quarantined_fraction": self.quarantined_fraction, "worst_source": self.worst_source,
                "baseline": self.baseline, "new_findings": self.new_findings,
                "failing_findings": self.failing_findings}


class Workspace:
    """The disk a result holds until it is written or closed: its staging folder (clean
    files not yet published) and the output folder the scan claimed (locked).

    Kept apart from :class:`ScanResult` so that a finalizer can release it without
    keeping the result alive.
    """

    def __init__(self, staging: str | None = None, owned: bool = True,
                 output: "OutputFolder | None" = None) -> None:
        #: a local folder, or the run's staging prefix in the store of a remote --out
        self.staging = staging
        #: False when the staging folder must outlive the result (partial results of a bug)
        self.owned = owned
        self.output = output
        #: the lease the scan took on a store --out (datasan.outputs.lease.StoreLease), until published
        self.lease = None

    def release(self) -> None:
        """Remove the staging folder (when owned), unlock the output folder, release the lease."""
        if self.staging and self.owned:
            from datasan import fs

            try:
                fs.remove_tree(self.staging)
            except OSError:  # a store that went away: the next run removes the marked prefix
                pass
        self.staging = None
        if self.output is not None:
            self.output.release()
            self.output = None
        if self.lease is not None:
            self.lease.release()
            self.lease = None


@dataclass(eq=False)
class ScanResult:
    """What one scan found.

    * ``findings_table`` / ``quarantine_table`` / ``index_table``: pyarrow
      Tables with the contract's columns (``findings`` / ``quarantine`` give
      pandas DataFrames).
    * ``label_quality_table``: label_quality.parquet (one row per sample whose
      label the probe scored), None when no source's labels were scored.
    * ``stats``: the stats.json document; ``summary``: the run's facts
      (:class:`Report`); ``report``: the report.json document.
    * ``verdict`` / ``passed``: the gate's judgement at ``fail_on`` (and the
      quarantine limits and baseline).

    Use it as a context manager, or call :meth:`close`, to free its staging
    folder and output-folder lock when it is not written.
    """

    findings_table: "pyarrow.Table"
    quarantine_table: "pyarrow.Table"
    stats: dict[str, Any]
    summary: Report
    index_table: "pyarrow.Table | None" = None
    fail_on: str = "error"
    clean_files: list[str] = field(default_factory=list)
    #: the gate fails when more than this share of some source's samples is quarantined (None: off)
    max_quarantine_fraction: float | None = None
    #: the gate fails when more than this share of all samples together is quarantined (None: off)
    max_total_quarantine_fraction: float | None = None
    #: finding keys (code, sample, source, row, column) of a baseline scan; they never fail the gate
    baseline: frozenset[tuple] | None = None
    #: the staging folder and claimed output folder this result holds until written or closed
    workspace: Workspace = field(default_factory=Workspace, repr=False)
    #: the folder this result was last published to
    published: str | None = None
    #: label_quality.parquet: one row per sample whose label the probe scored (None: none scored)
    label_quality_table: "pyarrow.Table | None" = None
    #: the content cache folder the scan used (report.html's charts are kept there), None: none
    cache_dir: str | None = field(default=None, repr=False)

    def __post_init__(self) -> None:
        self._release = weakref.finalize(self, self.workspace.release)

    def __enter__(self) -> "ScanResult":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    @property
    def run_id(self) -> str:
        """The run's id, carried by every file written for it."""
        return self.summary.run_id

    @property
    def report(self) -> dict[str, Any]:
        """report.json's document: the run's facts, findings per code and severity, the gate."""
        return self.summary.to_dict(self.counts(), self.verdict)

    @property
    def verdict(self) -> GateVerdict:
        """The gate's judgement under the current settings (see :meth:`set_gate`)."""
        return GateVerdict(
            fail_on=self.fail_on, max_quarantine_fraction=self.max_quarantine_fraction,
            max_total_quarantine_fraction=self.max_total_quarantine_fraction,
            quarantined_fraction=self.quarantined_fraction(), worst_source=self.worst_source(),
            baseline=self.baseline is not None, new_findings=sum(self._cached("new", self._new_mask)),
            failing_findings=self.gate_failures(), quarantine_reason=self.quarantine_verdict())

    def set_gate(self, fail_on: str | None = None, max_quarantine_fraction: float | None = None,
                 baseline: frozenset[tuple] | None = None,
                 max_total_quarantine_fraction: float | None = None) -> "ScanResult":
        """Re-judge the same findings under another gate (report.json follows); returns self."""
        if fail_on is not None:
            self.fail_on = fail_on
        if max_quarantine_fraction is not None:
            self.max_quarantine_fraction = max_quarantine_fraction
        if max_total_quarantine_fraction is not None:
            self.max_total_quarantine_fraction = max_total_quarantine_fraction
        if baseline is not None:
            self.baseline = baseline
        return self

    @property
    def findings(self) -> "pandas.DataFrame":
        """Findings as a pandas DataFrame (contract columns)."""
        return self.findings_table.to_pandas()

    @property
    def quarantine(self) -> "pandas.DataFrame":
        """Quarantined samples as a pandas DataFrame (sample, source, row, codes, reason)."""
        return self.quarantine_table.to_pandas()

    def _cached(self, name: str, compute):
        # the masks are asked for several times per run (passed, counts, each format);
        # they depend only on the table, the baseline and the gate settings
        cache = self.__dict__.get("_mask_cache")
        if cache is None or cache[0] is not self.findings_table or cache[1] is not self.baseline:
            cache = self.__dict__["_mask_cache"] = (self.findings_table, self.baseline, {})
        key = (name, self.fail_on, self.max_quarantine_fraction, self.max_total_quarantine_fraction)
        if key not in cache[2]:
            cache[2][key] = compute()
        return cache[2][key]

    def new_mask(self) -> list[bool]:
        """Per finding: True when it is not in the baseline (all True without one)."""
        return list(self._cached("new", self._new_mask))

    def _new_mask(self) -> list[bool]:
        n = self.findings_table.num_rows
        if self.baseline is None:
            return [True] * n
        from datasan.baseline import finding_keys

        return [k not in self.baseline for k in finding_keys(self.findings_table)]

    def gating_mask(self) -> list[bool]:
        """Per finding: True when it fails the gate.

        A finding fails the gate when its severity is at or above ``fail_on``,
        it is not in the baseline, and, when a quarantine limit is set,
        it is not an error that merely quarantines its sample (those count
        through :meth:`quarantine_exceeded` instead).
        """
        return list(self._cached("gating", self._gating_mask))

    def _gating_mask(self) -> list[bool]:
        n = self.findings_table.num_rows
        if self.fail_on == "never":
            return [False] * n
        import pyarrow as pa
        import pyarrow.compute as pc

        # vectorized: a Python string per finding would cost ~100 B x millions of duplicate rows
        limit = SEVERITY_RANK[self.fail_on]
        ft = self.findings_table
        sev = ft.column("severity")
        at_or_above = pa.array([s for s, r in SEVERITY_RANK.items() if r >= limit], type=pa.string())
        gating = pc.is_in(sev, value_set=at_or_above)
        if self.max_quarantine_fraction is not None or self.max_total_quarantine_fraction is not None:
            excused = pc.and_(pc.equal(sev, "error"), pc.is_valid(ft.column("sample")))
            gating = pc.and_(gating, pc.invert(excused))
        if self.baseline is not None:
            gating = pc.and_(gating, pa.array(self.new_mask(), type=pa.bool_()))
        return gating.fill_null(False).to_pylist()

    def gate_failures(self) -> int:
        """Number of findings that fail the gate (see :meth:`gating_mask`)."""
        return sum(self._cached("gating", self._gating_mask))

    def quarantined_fraction(self) -> float:
        """Quarantined samples / samples seen (0.0 for an empty scan)."""
        seen = self.summary.samples or 0
        return (self.quarantine_table.num_rows / seen) if seen else 0.0

    def worst_source(self) -> dict[str, Any] | None:
        """The source that lost the largest share of its samples to the quarantine:
        {source, seen, quarantined, fraction}; None when no source has samples."""
        worst = None
        for src in self.summary.sources:
            seen = src.get("seen") or 0
            if not seen:
                continue
            frac = (src.get("quarantined") or 0) / seen
            if worst is None or frac > worst["fraction"]:
                worst = {"source": src.get("source"), "seen": seen, "quarantined": src.get("quarantined") or 0,
                         "fraction": frac}
        return worst

    def quarantine_exceeded(self) -> bool:
        """True when a quarantine limit is set and exceeded: ``max_quarantine_fraction`` by
        some source, or ``max_total_quarantine_fraction`` by all sources together."""
        return bool(self.quarantine_verdict())

    def quarantine_verdict(self) -> str:
        """Why the quarantine fails the gate, naming the worst source; '' when it does not."""
        if self.fail_on == "never":
            return ""
        why = []
        worst = self.worst_source()
        if self.max_quarantine_fraction is not None and worst and worst["fraction"] > self.max_quarantine_fraction:
            from datasan.outputs.escape import printable

            why.append(f"{printable(str(worst['source']))} lost {worst['quarantined']} of {worst['seen']} samples to the quarantine "
                       f"({worst['fraction']:.1%}), more than max_quarantine_fraction "
                       f"{self.max_quarantine_fraction:g} per source")
        limit = self.max_total_quarantine_fraction
        if limit is not None and self.quarantined_fraction() > limit:
            why.append(f"{self.quarantine_table.num_rows} of {self.summary.samples} samples quarantined "
                       f"({self.quarantined_fraction():.1%}), more than max_total_quarantine_fraction {limit:g}")
        return "; ".join(why)

    @property
    def passed(self) -> bool:
        """True when no finding fails the gate and the quarantine is within its limit."""
        return self.gate_failures() == 0 and not self.quarantine_exceeded()

    @property
    def internal_errors(self) -> list[dict[str, str]]:
        """Sources datasan itself failed on (source, kind, error); their files are quarantined
        under DS011 and the CLI exits 3.  Empty on a healthy run."""
        return list(self.summary.internal_errors)

    def gate_summary(self, examples: int = 3) -> str:
        """One paragraph on why the gate failed (counts per rule, a few sample ids); '' when it passed."""
        if self.passed:
            return ""
        from datasan.outputs.view import FindingsView

        return FindingsView(self).gate_summary(examples)

    def counts(self) -> dict[str, Any]:
        """Findings per code and per severity (report.json's ``findings``)."""
        cached = self.__dict__.get("_counts")
        if cached is None or cached[0] is not self.findings_table:
            cached = self.__dict__["_counts"] = (self.findings_table, self._counts())
        return cached[1]

    def _counts(self) -> dict[str, Any]:
        import pyarrow.compute as pc

        def tally(name: str) -> dict[str, int]:
            vc = pc.value_counts(self.findings_table.column(name))
            return dict(zip(vc.field("values").to_pylist(), vc.field("counts").to_pylist()))

        by_sev = {"error": 0, "warning": 0, "info": 0}
        by_sev.update(tally("severity"))
        return {"total": self.findings_table.num_rows, "by_severity": by_sev,
                "by_code": dict(sorted(tally("code").items()))}

    @classmethod
    def load(cls, out_dir: str | os.PathLike) -> "ScanResult":
        """The result of a scan written to ``out_dir`` (findings, quarantine, index, stats, report),
        judged by the gate recorded in its report.json (re-judge it with :meth:`set_gate`)."""
        import json

        from datasan import fs
        from datasan.errors import UsageError
        from datasan.outputs.manifest import verify_output

        out_dir = fs.local_path(os.fspath(out_dir))
        verify_output(out_dir)

        def table(name: str, optional: bool = False):
            path = fs.join(out_dir, name)
            return None if optional and fs.info(path) is None else fs.parquet_file(path).read()

        try:
            report = json.loads(fs.read_bytes(fs.join(out_dir, "report.json")))
            stats_path = fs.join(out_dir, "stats.json")
            stats = json.loads(fs.read_bytes(stats_path)) if fs.info(stats_path) is not None else {}
            stats.pop("run_id", None)
            findings = table("findings.parquet")
            quarantine = table("quarantine.parquet")
            index = table("index.parquet", optional=True)
            quality = table("label_quality.parquet", optional=True)
        except (OSError, ValueError) as exc:
            raise UsageError(f"{out_dir} is not a complete datasan output folder: {exc}") from exc
        gate = report.get("gate") or {}
        return cls(findings_table=findings, quarantine_table=quarantine, stats=stats,
                   summary=Report.from_dict(report), index_table=index, label_quality_table=quality,
                   fail_on=gate.get("fail_on") or report.get("options", {}).get("fail_on", "error"),
                   published=out_dir, max_quarantine_fraction=gate.get("max_quarantine_fraction"),
                   max_total_quarantine_fraction=gate.get("max_total_quarantine_fraction"))

    def write(self, out_dir: str | os.PathLike, force: bool = False) -> list[str]:
        """Publish every output file to ``out_dir`` as one unit; returns the paths written.

        The files are written into a staging folder, renamed into place, the
        previous run's files that this run does not write are removed, and
        manifest.json is written last.  ``out_dir`` must be new, empty or a
        datasan output unless ``force``; a file datasan did not write is never
        replaced (UsageError).
        """
        from datasan.outputs.files import write_outputs

        return write_outputs(self, os.fspath(out_dir), force=force)

    def close(self) -> None:
        """Remove the staging folder (clean files not yet written are lost) and unlock the output
        folder; a written result holds neither.  Safe to call twice."""
        self._release()
