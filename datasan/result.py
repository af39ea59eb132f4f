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

    def __post_init__(self) -> None:
        self.report["passed"] = self.passed
        self.report["findings"] = self.counts()

    @property
    def findings(self):
        """Findings as a pandas DataFrame (contract columns)."""
        return self.findings_table.to_pandas()

    @property
    def quarantine(self):
        """Quarantined samples as a pandas DataFrame (sample, source, row, codes, reason)."""
        return self.quarantine_table.to_pandas()

    def gate_failures(self) -> int:
        """Number of findings at or above ``fail_on`` (0 when fail_on is 'never')."""
        if self.fail_on == "never":
            return 0
        limit = SEVERITY_RANK[self.fail_on]
        return sum(1 for s in self.findings_table.column("severity").to_pylist() if SEVERITY_RANK[s] >= limit)

    @property
    def passed(self) -> bool:
        """True when no finding is at or above ``fail_on``."""
        return self.gate_failures() == 0

    def counts(self) -> dict[str, Any]:
        """Findings per code and per severity."""
        by_code: dict[str, int] = {}
        by_sev = {"error": 0, "warning": 0, "info": 0}
        codes = self.findings_table.column("code").to_pylist()
        sevs = self.findings_table.column("severity").to_pylist()
        for c, s in zip(codes, sevs):
            by_code[c] = by_code.get(c, 0) + 1
            by_sev[s] += 1
        return {"total": len(codes), "by_severity": by_sev, "by_code": dict(sorted(by_code.items()))}

    def write(self, out_dir: str | os.PathLike) -> list[str]:
        """Write every output file to ``out_dir``; returns the paths written.

        Each file is written under a temporary name and renamed into place.
        """
        from datasan.outputs.files import write_outputs

        return write_outputs(self, os.fspath(out_dir))

    def close(self) -> None:
        """Remove the staging folder (clean files not yet written are lost)."""
        if self.staging and self.owns_staging:
            import shutil

            shutil.rmtree(self.staging, ignore_errors=True)
            self.staging = None

    def __del__(self) -> None:  # pragma: no cover - best effort
        try:
            self.close()
        except Exception:
            pass
