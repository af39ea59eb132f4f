"""The result of a scan: findings, quarantine, statistics, report, and how to write them."""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from typing import Any

SEVERITY_RANK = {"info": 0, "warning": 1, "error": 2}


@dataclass
class ScanResult:
    """What one scan found.

    * ``findings_table`` / ``quarantine_table`` / ``index_table``: pyarrow
      Tables with the contract's columns (``findings`` / ``quarantine`` give
      pandas DataFrames).
    * ``stats``: the stats.json document; ``report``: the report.json document.
    * ``passed``: whether the data passes the gate at ``fail_on``.
    """

    findings_table: Any
    quarantine_table: Any
    stats: dict[str, Any]
    report: dict[str, Any]
    index_table: Any = None
    fail_on: str = "error"
    staging: str | None = None
    clean_files: list[str] = field(default_factory=list)
    owns_staging: bool = True
    #: the gate fails when more than this share of some source's samples is quarantined (None: off)
    max_quarantine_fraction: float | None = None
    #: the gate fails when more than this share of all samples together is quarantined (None: off)
    max_total_quarantine_fraction: float | None = None
    #: finding keys (code, sample, source, row, column) of a baseline scan; they never fail the gate
    baseline: frozenset | None = None
    #: the output folder the scan claimed (locked, holding the staging folder) until written
    output: Any = None
    #: the folder this result was last published to
    published: str | None = None

    @property
    def run_id(self) -> str:
        """The run's id, carried by every file written for it."""
        return self.report.get("run_id") or ""

    def __post_init__(self) -> None:
        self.report["findings"] = self.counts()
        self._update_gate()

    def _update_gate(self) -> None:
        gate = {
            "fail_on": self.fail_on,
            "max_quarantine_fraction": self.max_quarantine_fraction,
            "max_total_quarantine_fraction": self.max_total_quarantine_fraction,
            "quarantined_fraction": self.quarantined_fraction(),
            "worst_source": self.worst_source(),
            "baseline": self.baseline is not None,
            "new_findings": int(sum(self.new_mask())),
            "failing_findings": self.gate_failures(),
        }
        self.report["gate"] = gate
        self.report["passed"] = self.passed

    def set_gate(self, fail_on: str | None = None, max_quarantine_fraction: float | None = None,
                 baseline: frozenset | None = None,
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
        self._update_gate()
        return self

    @property
    def findings(self):
        """Findings as a pandas DataFrame (contract columns)."""
        return self.findings_table.to_pandas()

    @property
    def quarantine(self):
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
        return sum(self.gating_mask())

    def quarantined_fraction(self) -> float:
        """Quarantined samples / samples seen (0.0 for an empty scan)."""
        seen = self.report.get("samples") or 0
        return (self.quarantine_table.num_rows / seen) if seen else 0.0

    def worst_source(self) -> dict[str, Any] | None:
        """The source that lost the largest share of its samples to the quarantine:
        {source, seen, quarantined, fraction}; None when no source has samples."""
        worst = None
        for src in self.report.get("sources") or []:
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
            why.append(f"{self.quarantine_table.num_rows} of {self.report.get('samples', 0)} samples quarantined "
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
        return list(self.report.get("internal_errors") or [])

    def gate_summary(self, examples: int = 3) -> str:
        """One paragraph on why the gate failed (counts per rule, a few sample ids); '' when it passed."""
        if self.passed:
            return ""
        from datasan.outputs.escape import printable
        from datasan.rules import RULES

        ft = self.findings_table
        codes, samples = ft.column("code").to_pylist(), ft.column("sample").to_pylist()
        sources = ft.column("source").to_pylist()
        per: dict[str, list] = {}
        for gating, c, smp, src in zip(self.gating_mask(), codes, samples, sources):
            if gating:
                e = per.setdefault(c, [0, []])
                e[0] += 1
                where = printable(smp or src) if (smp or src) else None
                if where and len(e[1]) < examples and where not in e[1]:
                    e[1].append(where)
        parts = []
        for c, (n, ex) in sorted(per.items()):
            parts.append(f"{c} {RULES[c].name}: {n}" + (f" (e.g. {', '.join(ex)})" if ex else ""))
        seen = self.report.get("samples", 0)
        lines = [f"datasan gate failed for {printable(self.report.get('path'))} (fail-on {self.fail_on}"
                 + (", against a baseline" if self.baseline is not None else "") + ")."]
        if parts:
            lines.append(f"{self.gate_failures()} finding(s) fail the gate: " + "; ".join(parts) + ".")
        if self.quarantine_exceeded():
            lines.append(self.quarantine_verdict() + ".")
        else:
            lines.append(f"{self.quarantine_table.num_rows} of {seen} samples quarantined.")
        return " ".join(lines)

    def counts(self) -> dict[str, Any]:
        """Findings per code and per severity."""
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

        import pyarrow.parquet as pq

        from datasan.errors import UsageError

        from datasan.outputs.manifest import verify_output

        out_dir = os.fspath(out_dir)
        verify_output(out_dir)
        try:
            with open(os.path.join(out_dir, "report.json"), encoding="utf-8") as f:
                report = json.load(f)
            stats_path = os.path.join(out_dir, "stats.json")
            stats = json.load(open(stats_path, encoding="utf-8")) if os.path.isfile(stats_path) else {}
            stats.pop("run_id", None)
            findings = pq.read_table(os.path.join(out_dir, "findings.parquet"))
            quarantine = pq.read_table(os.path.join(out_dir, "quarantine.parquet"))
        except (OSError, ValueError) as exc:
            raise UsageError(f"{out_dir} is not a complete datasan output folder: {exc}") from exc
        index_path = os.path.join(out_dir, "index.parquet")
        index = pq.read_table(index_path) if os.path.isfile(index_path) else None
        gate = report.get("gate") or {}
        return cls(findings_table=findings, quarantine_table=quarantine, stats=stats, report=report,
                   index_table=index, fail_on=gate.get("fail_on") or report.get("options", {}).get("fail_on", "error"),
                   staging=None, owns_staging=False, published=out_dir,
                   max_quarantine_fraction=gate.get("max_quarantine_fraction"),
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
        """Remove the staging folder (clean files not yet written are lost) and unlock the output folder."""
        if self.staging and self.owns_staging:
            import shutil

            shutil.rmtree(self.staging, ignore_errors=True)
            self.staging = None
        if self.output is not None:
            self.output.release()
            self.output = None

    def __del__(self) -> None:  # pragma: no cover - best effort
        try:
            self.close()
        except Exception:
            pass
