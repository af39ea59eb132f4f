"""The one table of rule codes, assembled from the rule families in :mod:`datasan.checks`.

Every finding datasan can emit has a stable code here.  Codes are never reused:
a retired rule stays in the table with ``retired=True``.  Families:

* ``DS0xx`` file-level problems (unreadable, empty, encoding, unsafe paths)
* ``DS1xx`` tables (values, labels, scales, duplicates)
* ``DS2xx`` images
* ``DS3xx`` labels and boxes (image labels, COCO, YOLO)
* ``DS4xx`` the probe (non-finite loss or gradient)

``datasan rules`` lists the table; ``datasan rule CODE`` prints one entry.
"""

from __future__ import annotations

import importlib
import re

from datasan.checks import FAMILIES
from datasan.checks.rule import SEVERITIES, Rule

__all__ = ["RULES", "SEVERITIES", "Rule", "rule", "matches", "check_selectors"]

_CODE = re.compile(r"DS\d{3}")
_NAME = re.compile(r"[a-z0-9]+(-[a-z0-9]+)*")


def _collect() -> dict[str, Rule]:
    """Every Rule constant of every family module, checked: codes and names unique and well
    formed, severities known.  Runs once, when this module loads."""
    table: dict[str, Rule] = {}
    names: dict[str, str] = {}
    for module_name in FAMILIES:
        module = importlib.import_module(module_name)
        for attr, value in vars(module).items():
            if not isinstance(value, Rule):
                continue
            where = f"{module_name}.{attr}"
            if not _CODE.fullmatch(value.code) or not _NAME.fullmatch(value.name):
                raise ImportError(f"{where}: malformed rule code or name {value.code!r} {value.name!r}")
            if value.severity not in SEVERITIES:
                raise ImportError(f"{where}: unknown severity {value.severity!r}")
            if value.code in table and table[value.code] is not value:
                raise ImportError(f"{where}: rule code {value.code} is already used by {names[value.code]}")
            if any(r.name == value.name and c != value.code for c, r in table.items()):
                raise ImportError(f"{where}: rule name {value.name!r} is already used")
            if attr != value.name.upper().replace("-", "_"):
                raise ImportError(f"{where}: name the constant {value.name.upper().replace('-', '_')}")
            table[value.code] = value
            names[value.code] = where
    return dict(sorted(table.items()))


RULES: dict[str, Rule] = _collect()


def rule(code: str) -> Rule:
    """Return the rule for ``code`` (case-insensitive); KeyError if unknown."""
    return RULES[code.upper()]


def matches(code: str, selectors: list[str] | tuple[str, ...]) -> bool:
    """True when ``code`` is selected by one of ``selectors`` (codes or prefixes such as "DS1")."""
    return any(code.startswith(s.upper()) for s in selectors)


def check_selectors(selectors: list[str] | tuple[str, ...]) -> list[str]:
    """Return the selectors that name no rule code or prefix (for config validation)."""
    return [s for s in selectors if not any(c.startswith(s.upper()) for c in RULES)]
