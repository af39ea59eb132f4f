"""Findings: the small typed records every check yields.

A check yields :class:`Finding` objects for single problems.  Per-row checks on a
whole batch would create millions of Python objects on a bad dataset, so they
add vectorized runs of findings to a :class:`FindingBuffer` instead; the buffer
turns into the ``findings.parquet`` table (columns of docs/outputs.md)
without ever materialising one object per row.
"""

from __future__ import annotations

from dataclasses import dataclass, fields
from typing import TYPE_CHECKING, Any, Iterable, Iterator, Sequence

from datasan.rules import RULES

if TYPE_CHECKING:  # pragma: no cover
    import pyarrow as pa

COLUMNS = ("code", "check", "severity", "sample", "source", "row", "column", "message")


@dataclass(frozen=True)
class Finding:
    """One finding, with the columns of findings.parquet.

    ``severity`` defaults to the rule's default severity; ``check`` is always
    the rule's kebab-case name.
    """

    code: str
    message: str
    sample: str | None = None
    source: str | None = None
    row: int | None = None
    column: str | None = None
    severity: str = ""

    def __post_init__(self) -> None:
        rule = RULES[self.code]  # KeyError: a check used an unregistered code (a bug)
        if not self.severity:
            object.__setattr__(self, "severity", rule.severity)

    @property
    def check(self) -> str:
        """The rule's kebab-case name."""
        return RULES[self.code].name

    def as_dict(self) -> dict[str, Any]:
        """The finding as a dict with the contract's columns, in order."""
        d = {f.name: getattr(self, f.name) for f in fields(self)}
        d["check"] = self.check
        return {c: d[c] for c in COLUMNS}


def schema() -> "pa.Schema":
    """The Arrow schema of findings.parquet."""
    import pyarrow as pa

    return pa.schema(
        [
            ("code", pa.string()),
            ("check", pa.string()),
            ("severity", pa.string()),
            ("sample", pa.string()),
            ("source", pa.string()),
            ("row", pa.int64()),
            ("column", pa.string()),
            ("message", pa.string()),
        ]
    )


class FindingBuffer:
    """Columnar, picklable accumulator of findings.

    ``add`` takes one :class:`Finding`; ``add_rows`` takes one code and column
    for many rows of one source at once (numpy arrays), which is how the
    vectorized table checks report.
    """

    def __init__(self) -> None:
        self._cols: dict[str, list] = {c: [] for c in COLUMNS if c not in ("check", "severity")}
        self._severity: list[str | None] = []

    def __len__(self) -> int:
        return len(self._cols["code"])

    def add(self, finding: Finding) -> None:
        """Append one finding."""
        for c in self._cols:
            self._cols[c].append(getattr(finding, c))
        self._severity.append(finding.severity)

    def extend(self, findings: Iterable[Finding]) -> None:
        """Append findings one by one."""
        for f in findings:
            self.add(f)

    def add_rows(
        self,
        code: str,
        source: str,
        rows: Sequence[int],
        messages: Sequence[str],
        column: str | None = None,
        samples: Sequence[str] | None = None,
    ) -> None:
        """Append one finding per row of ``source`` (sample ids default to ``source#row``)."""
        RULES[code]
        rows = [int(r) for r in rows]
        n = len(rows)
        if n == 0:
            return
        if len(messages) != n:
            raise ValueError("one message per row")
        self._cols["code"].extend([code] * n)
        self._cols["message"].extend(messages)
        self._cols["sample"].extend(samples if samples is not None else [f"{source}#{r}" for r in rows])
        self._cols["source"].extend([source] * n)
        self._cols["row"].extend(rows)
        self._cols["column"].extend([column] * n)
        self._severity.extend([None] * n)

    def merge(self, other: "FindingBuffer") -> None:
        """Append every finding of ``other``."""
        for c in self._cols:
            self._cols[c].extend(other._cols[c])
        self._severity.extend(other._severity)

    def apply_policy(self, options) -> "FindingBuffer":
        """Drop the findings of rules that ``options`` turns off and set every
        finding's effective severity (config overrides); returns self."""
        from datasan.options import effective_severity

        cache: dict[str, str | None] = {}
        keep: list[int] = []
        for i, code in enumerate(self._cols["code"]):
            if code not in cache:
                cache[code] = effective_severity(options, code)
            sev = cache[code]
            if sev is not None:
                keep.append(i)
                if not self._severity[i] or code in options.severity or any(
                    code.startswith(k.upper()) for k in options.severity
                ):
                    self._severity[i] = sev
        if len(keep) != len(self):
            for c in self._cols:
                col = self._cols[c]
                self._cols[c] = [col[i] for i in keep]
            self._severity = [self._severity[i] for i in keep]
        return self

    def error_rows(self):
        """numpy int64 array of the distinct rows of error findings that name a sample."""
        import numpy as np

        rows = [r for r, s, smp in zip(self._cols["row"], self._severity, self._cols["sample"])
                if s == "error" and r is not None and smp is not None]
        return np.unique(np.asarray(rows, dtype=np.int64))

    def column(self, name: str) -> list:
        """One column of the buffer (code, message, sample, source, row, column, severity)."""
        if name == "severity":
            return [s or RULES[c].severity for s, c in zip(self._severity, self._cols["code"])]
        return self._cols[name]

    def __iter__(self) -> Iterator[Finding]:
        cols = self._cols
        for i in range(len(self)):
            yield Finding(
                code=cols["code"][i],
                message=cols["message"][i],
                sample=cols["sample"][i],
                source=cols["source"][i],
                row=cols["row"][i],
                column=cols["column"][i],
                severity=self._severity[i] or "",
            )

    def to_arrow(self, severity_overrides: dict[str, str] | None = None) -> "pa.Table":
        """The findings as an Arrow table with the contract's columns and types.

        ``severity_overrides`` maps rule codes to severities (from the config);
        a severity set explicitly on a finding wins over the rule default but
        not over an override.
        """
        import pyarrow as pa

        overrides = severity_overrides or {}
        codes = self._cols["code"]
        severity = [
            overrides.get(c) or s or RULES[c].severity for c, s in zip(codes, self._severity)
        ]
        data = dict(self._cols)
        data["check"] = [RULES[c].name for c in codes]
        data["severity"] = severity
        return pa.table({c: data[c] for c in COLUMNS}, schema=schema())
