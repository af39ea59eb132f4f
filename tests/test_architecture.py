"""The layout the architecture promises, checked on the source tree."""

from __future__ import annotations

import ast
import re
from pathlib import Path

PACKAGE = Path(__file__).resolve().parent.parent / "datasan"
CODE = re.compile(r"DS\d{3}")

def _docstrings(tree: ast.AST) -> set[int]:
    """ids of the string constants that are docstrings (of modules, classes, functions)."""
    out = set()
    for node in ast.walk(tree):
        if isinstance(node, (ast.Module, ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef)) and node.body:
            first = node.body[0]
            if isinstance(first, ast.Expr) and isinstance(first.value, ast.Constant):
                out.add(id(first.value))
    return out


def rule_code_literals(path: Path) -> list[tuple[int, str]]:
    """(line, literal) of every string constant in ``path`` that is a rule code, docstrings aside."""
    tree = ast.parse(path.read_text(), filename=str(path))
    docs = _docstrings(tree)
    return [(node.lineno, node.value) for node in ast.walk(tree)
            if isinstance(node, ast.Constant) and isinstance(node.value, str)
            and id(node) not in docs and CODE.fullmatch(node.value)]


def test_no_rule_code_literal_outside_checks():
    found = {}
    for path in sorted(PACKAGE.rglob("*.py")):
        rel = path.relative_to(PACKAGE).as_posix()
        if rel.startswith("checks/"):
            continue
        hits = rule_code_literals(path)
        if hits:
            found[rel] = hits
    assert found == {}, "use the Rule constants of datasan/checks/ instead of code literals"


def test_the_scan_finds_a_code_literal(tmp_path):
    planted = tmp_path / "m.py"
    planted.write_text('"""Module docstring naming DS101."""\nCODE = "DS101"\nTEXT = "see DS101"\n')
    assert rule_code_literals(planted) == [(2, "DS101")]
