"""One positive and one negative case per rule code, like ruff's fixtures.

Each ``tests/rule_cases_*.py`` module defines ``CASES``: rule code -> :class:`Case`.
A case's builders write a minimal dataset under a folder and return the PATH to
scan; the positive must give at least one finding of the code, the negative
(the smallest change that removes the defect) none.
"""

from __future__ import annotations

import importlib
from pathlib import Path

import pytest

from rule_case import Case

HERE = Path(__file__).resolve().parent


def collect_cases() -> dict[str, Case]:
    """Every case of every ``rule_cases_*.py`` module; a code defined twice is an error."""
    cases: dict[str, Case] = {}
    for path in sorted(HERE.glob("rule_cases_*.py")):
        module = importlib.import_module(path.stem)
        for code, case in module.CASES.items():
            assert code not in cases, f"{code} has cases in two modules"
            cases[code] = case
    return cases


CASES = collect_cases()


def codes_of(path: Path, out: Path, options: dict) -> list[str]:
    """The rule codes a scan of ``path`` finds (every finding, whatever its severity)."""
    import datasan

    opts = {"probe": False, "workers": 1, "config": False, "report_html": False, **options}
    result = datasan.scan(path, out_dir=str(out), **opts)
    return result.findings_table.column("code").to_pylist()


def options_of(case: Case, tmp_path: Path) -> dict:
    """The case's options, with ``baseline`` = the output folder of its baseline scan, if any."""
    if case.baseline is None:
        return case.options
    root = tmp_path / "baseline"
    root.mkdir()
    codes_of(case.baseline(root), tmp_path / "baseline-out", case.options)
    return {**case.options, "baseline": str(tmp_path / "baseline-out")}


@pytest.mark.parametrize("code", sorted(CASES))
def test_positive_case_finds_the_rule(code, tmp_path):
    case = CASES[code]
    root = tmp_path / "positive"
    root.mkdir()
    found = codes_of(case.positive(root), tmp_path / "out", options_of(case, tmp_path))
    assert code in found, found


@pytest.mark.parametrize("code", sorted(CASES))
def test_negative_case_does_not(code, tmp_path):
    case = CASES[code]
    root = tmp_path / "negative"
    root.mkdir()
    found = codes_of(case.negative(root), tmp_path / "out", options_of(case, tmp_path))
    assert code not in found, found


#: codes no dataset can trigger on purpose, each with where it is tested instead
NO_DATASET_CASE = {
    "DS011": "datasan's own failure: tests/test_odd_inputs.py plants a bug in a source kind",
}


def test_every_rule_has_a_case():
    from datasan.rules import RULES

    live = {c for c, r in RULES.items() if not r.retired}
    assert sorted(live - set(CASES) - set(NO_DATASET_CASE)) == []
    assert sorted(set(CASES) - live) == []
    assert not set(CASES) & set(NO_DATASET_CASE)
