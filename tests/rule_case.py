"""The shape of one rule's test case (see tests/test_rule_cases.py)."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

#: writes a minimal dataset under the folder it is given; returns the PATH to scan
Builder = Callable[[Path], Path]


@dataclass(frozen=True)
class Case:
    """A rule's positive builder (the rule fires) and negative builder (it does not).

    ``options`` are keyword options of :func:`datasan.scan` for both scans
    (e.g. ``{"probe": True}`` for the probe's rules).  ``baseline`` builds the
    data of a baseline scan: when given, it is scanned first (same options) and
    both scans run with ``baseline=`` its output folder (the drift rules).
    """

    positive: Builder
    negative: Builder
    options: dict[str, Any] = field(default_factory=dict)
    baseline: Builder | None = None


def write(path: Path, text: str | bytes) -> Path:
    """Write ``text`` to ``path`` (parents created); return ``path``."""
    path.parent.mkdir(parents=True, exist_ok=True)
    if isinstance(text, bytes):
        path.write_bytes(text)
    else:
        path.write_text(text)
    return path
