"""A rule: the stable code, kebab-case name, default severity and docs of one kind of finding.

Rules are defined in the family modules of :mod:`datasan.checks`, beside the
code that emits them; :mod:`datasan.rules` assembles the one table of codes.
"""

from __future__ import annotations

from dataclasses import dataclass

SEVERITIES = ("error", "warning", "info")


@dataclass(frozen=True)
class Rule:
    """One rule: its stable code, kebab-case name, default severity and docs.

    ``what`` says what is checked, ``why`` how it breaks training, ``fix`` what
    to do about it and ``example`` a minimal input that triggers it.
    """

    code: str
    name: str
    severity: str
    summary: str
    what: str
    why: str
    fix: str
    example: str = ""
    retired: bool = False
