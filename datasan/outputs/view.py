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
        import numpy as np
        import pyarrow.compute as pc

        from datasan.numpy_arrow import to_numpy
        from datasan.outputs.digest import dense_ids, first_per_key
        from datasan.rules import RULES

        ft = self.result.findings_table
        if ft.num_rows == 0:
            return {}
        gating = np.asarray(self.result.gating_mask(), dtype=bool)
        new = np.asarray(self.result.new_mask(), dtype=bool)
        code_ids, codes = dense_ids(ft.column("code"))
        codes = codes.to_pylist()
        count = np.bincount(code_ids, minlength=len(codes))
        fresh = np.bincount(code_ids, weights=new, minlength=len(codes)).astype(np.int64)
        failing = np.bincount(code_ids, weights=gating, minlength=len(codes)).astype(np.int64)
        # the first distinct places (the sample, else the source) among each rule's failing findings
        sample, source = ft.column("sample"), ft.column("source")
        where = pc.if_else(_non_empty(sample), sample, source)
        named = to_numpy(_non_empty(where))
        where_ids, places = dense_ids(where)
        idx = np.flatnonzero(gating & named)
        _, first = np.unique(code_ids[idx] * (len(places) + 1) + where_ids[idx], return_index=True)
        firsts = np.sort(idx[first])
        picks = firsts[first_per_key(code_ids[firsts], examples)]
        shown: dict[int, list[str]] = {}
        for i, place in zip(picks.tolist(), places.take(where_ids[picks]).to_pylist()):
            shown.setdefault(int(code_ids[i]), []).append(printable(place))
        return {codes[c]: RuleCounts(codes[c], RULES[codes[c]].name, int(count[c]), int(fresh[c]),
                                     int(failing[c]), tuple(shown.get(c, ())))
                for c in sorted(range(len(codes)), key=lambda c: codes[c])}

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


def _non_empty(strings):
    """Arrow booleans: the string is neither null nor empty (typed scalars: no type
    inference, which imports pandas)."""
    import pyarrow as pa
    import pyarrow.compute as pc

    return pc.fill_null(pc.greater(pc.utf8_length(strings), pa.scalar(0, pa.int32())), pa.scalar(False, pa.bool_()))
