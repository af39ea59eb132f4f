"""``--format json``: report.json's document (counts, sources, gate verdict) on stdout."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # pragma: no cover
    from datasan.outputs.view import FindingsView


def render(view: "FindingsView", out_dir: str | None = None) -> str:
    """report.json's document, ASCII, so control characters and undecodable bytes of file
    names are JSON escapes, never raw."""
    return json.dumps(view.report, indent=2, default=str, ensure_ascii=True) + "\n"


def write(view: "FindingsView", out_dir: str | None, console: Any, quiet: bool = False) -> None:
    """Print :func:`render` on stdout."""
    console.file.write(render(view, out_dir))
