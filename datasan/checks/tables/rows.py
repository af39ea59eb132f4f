"""The row checks of one table batch: feature values, then the target.

Emits no rule of its own: it runs :mod:`.values` and :mod:`.labels` in the
order their findings have always come in and returns the rows to quarantine.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from datasan.checks.tables.labels import check_target
from datasan.checks.tables.target import TargetPlan
from datasan.checks.tables.values import ColumnValues, TargetValues, check_features, check_non_numeric
from datasan.findings import FindingBuffer
from datasan.options import Thresholds


@dataclass
class BatchChecks:
    """Outcome of the row checks on one batch."""

    error: Any  # numpy bool mask: rows to quarantine
    findings: FindingBuffer


def check_batch(
    source: str,
    columns: dict[str, ColumnValues],
    non_numeric: dict,  # name -> numpy bool mask of cells that are not numbers (text tables)
    target: TargetValues | None,
    plan: TargetPlan,
    rows,
    th: Thresholds,
) -> BatchChecks:
    """Vectorized row checks of one batch (``rows``: the data-row index of each row)."""
    import numpy as np

    error = np.zeros(len(rows), dtype=bool)
    out = FindingBuffer()
    check_non_numeric(source, non_numeric, columns, target, rows, out, error)
    check_features(source, columns, non_numeric, rows, th, out, error)
    if target is not None and plan.column is not None:
        error |= check_target(source, target, plan, rows, out)
    return BatchChecks(error=error, findings=out)
