"""One view of a scan's findings for every renderer: per-rule digests with their gate counts,
per-(rule, source) cases, the sources worst first, the verdict and the gate's paragraph.

Each part is computed on first use and kept, so a renderer asks for what it
shows and two renderers of the same view (the github format and its step
summary) share the work.  The grouping itself lives in :mod:`datasan.outputs.digest`.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property
from typing import TYPE_CHECKING, Any

from datasan.outputs.digest import EXAMPLES, Case, RuleDigest, SourceLoss, cases, rule_digests, source_losses
from datasan.outputs.escape import printable

if TYPE_CHECKING:  # pragma: no cover
    from datasan.result import GateVerdict, ScanResult


@dataclass
class RuleCounts:
    """One rule's findings: how many, how many are new (not in the baseline), how many fail the gate."""

    code: str
    name: str
    count: int = 0
    new: int = 0
    failing: int = 0
    #: the first distinct samples (else sources) of its failing findings, printable
    failing_examples: tuple[str, ...] = ()


class FindingsView:
    """The findings of ``result`` as the renderers show them (see the module docstring)."""

    def __init__(self, result: "ScanResult") -> None:
        self.result = result

    @cached_property
    def report(self) -> dict[str, Any]:
        """report.json's document."""
        return self.result.summary.to_dict(self.result.counts(), self.verdict)

    @cached_property
    def verdict(self) -> "GateVerdict":
        """The gate's judgement."""
        return self.result.verdict

    @property
    def passed(self) -> bool:
        """True when the data passes the gate."""
        return self.verdict.passed

    @cached_property
    def sources(self) -> list[SourceLoss]:
        """Every source, the worst first (largest share lost, then most quarantined)."""
        return source_losses({"sources": self.result.summary.sources})

    @cached_property
    def rules(self) -> list[RuleDigest]:
        """Per rule (errors first, then by code) its kinds of message with counts per source."""
        return rule_digests(self.result.findings_table)

    @cached_property
    def cases(self) -> list[Case]:
        """One :class:`Case` per (rule, source) in finding order, with gate and baseline counts."""
        return cases(self.result)

    def rule_counts(self, examples: int = EXAMPLES) -> dict[str, RuleCounts]:
        """{code: RuleCounts} in code order, with up to ``examples`` failing samples each."""
        key = ("rule_counts", examples)
        if key not in self.__dict__:
            self.__dict__[key] = self._rule_counts(examples)
        return self.__dict__[key]

    def _rule_counts(self, examples: int) -> dict[str, RuleCounts]:
        from datasan.rules import RULES

        ft = self.result.findings_table
        cols = [ft.column(c).to_pylist() for c in ("code", "sample", "source")]
        per: dict[str, list] = {}
        for gating, new, code, smp, src in zip(self.result.gating_mask(), self.result.new_mask(), *cols):
            e = per.setdefault(code, [0, 0, 0, []])
            e[0] += 1
            e[1] += new
            if gating:
                e[2] += 1
                where = printable(smp or src) if (smp or src) else None
                if where and len(e[3]) < examples and where not in e[3]:
                    e[3].append(where)
        return {c: RuleCounts(c, RULES[c].name, n, new, failing, tuple(ex))
                for c, (n, new, failing, ex) in sorted(per.items())}

    def gate_summary(self, examples: int = 3) -> str:
        """One paragraph on why the gate failed (counts per rule, a few sample ids); '' when it passed."""
        if self.passed:
            return ""
        result, verdict = self.result, self.verdict
        parts = [f"{r.code} {r.name}: {r.failing}" + (f" (e.g. {', '.join(r.failing_examples)})"
                                                      if r.failing_examples else "")
                 for r in self.rule_counts(examples).values() if r.failing]
        lines = [f"datasan gate failed for {printable(result.summary.path)} (fail-on {verdict.fail_on}"
                 + (", against a baseline" if verdict.baseline else "") + ")."]
        if parts:
            lines.append(f"{verdict.failing_findings} finding(s) fail the gate: " + "; ".join(parts) + ".")
        if verdict.quarantine_reason:
            lines.append(verdict.quarantine_reason + ".")
        else:
            lines.append(f"{result.quarantine_table.num_rows} of {result.summary.samples} samples quarantined.")
        return " ".join(lines)
