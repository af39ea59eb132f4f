"""Rule cases (see tests/test_rule_cases.py) for the file-level and table rules."""

from __future__ import annotations

from pathlib import Path

from rule_case import Case, write


def _nan_feature(root: Path) -> Path:
    write(root / "t.csv", "x,label\n1.0,0\nnan,1\n")
    return root


def _finite_feature(root: Path) -> Path:
    write(root / "t.csv", "x,label\n1.0,0\n2.0,1\n")
    return root


CASES = {
    "DS101": Case(_nan_feature, _finite_feature),
}
