"""The output formats of ``datasan scan`` / ``datasan report --format``: a registry.

A format is one module here with ``write(view, out_dir, console, quiet)``:
it prints a :class:`~datasan.outputs.view.FindingsView` of the scan on
stdout (``console``, a rich Console; machine formats write plain text to
``console.file``).  Which findings fail the gate comes from the view, so
every format agrees with the exit code.  Adding a format: one module and one
line in :data:`FORMATS` (the CLI's ``--format`` choices follow).  This module
imports nothing heavy: ``datasan --help`` lists the names.
"""

from __future__ import annotations

import importlib
from types import ModuleType
from typing import TYPE_CHECKING, Any, Protocol

if TYPE_CHECKING:  # pragma: no cover
    from datasan.outputs.view import FindingsView
    from datasan.result import ScanResult

#: format name -> the module that renders it
FORMATS: dict[str, str] = {
    "text": "datasan.outputs.formats.text",
    "json": "datasan.outputs.formats.json",
    "github": "datasan.outputs.formats.github",
    "junit": "datasan.outputs.formats.junit",
    "markdown": "datasan.outputs.formats.markdown",
    "html": "datasan.outputs.formats.html",
}


class Renderer(Protocol):
    """What a format module offers."""

    def write(self, view: "FindingsView", out_dir: str | None, console: Any, quiet: bool = False) -> None:
        """Print ``view`` on ``console`` (stdout)."""


def renderer(name: str) -> ModuleType:
    """The module of format ``name`` (ValueError for an unknown one)."""
    if name not in FORMATS:
        raise ValueError(f"unknown format {name!r} (known: {', '.join(FORMATS)})")
    return importlib.import_module(FORMATS[name])


def write(result: "ScanResult", name: str, out_dir: str | None, console: Any, quiet: bool = False) -> None:
    """Print ``result`` in format ``name`` on ``console``."""
    from datasan.outputs.view import FindingsView

    renderer(name).write(FindingsView(result), out_dir, console, quiet)


def render(result: "ScanResult", name: str, out_dir: str | None = None, width: int = 80) -> str:
    """The text format ``name`` prints for ``result`` (text: ``width`` columns, no colour)."""
    import io

    from rich.console import Console

    console = Console(file=io.StringIO(), width=width, color_system=None)
    write(result, name, out_dir, console)
    return console.file.getvalue()
