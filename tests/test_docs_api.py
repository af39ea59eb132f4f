"""Every CLI command and option is documented (README.md or docs/*.md), and the config keys too."""

from __future__ import annotations

from pathlib import Path

import typer.main

from datasan.cli import app
from datasan.options import settings_fields

REPO = Path(__file__).resolve().parent.parent


def docs_text() -> str:
    parts = [p.read_text(encoding="utf-8") for p in sorted((REPO / "docs").glob("*.md"))]
    if (REPO / "README.md").exists():
        parts.append((REPO / "README.md").read_text(encoding="utf-8"))
    return "\n".join(parts)


def test_every_command_and_option_is_documented():
    text = docs_text()
    group = typer.main.get_command(app)
    missing = []
    for name, cmd in group.commands.items():
        if f"datasan {name}" not in text:
            missing.append(f"command {name}")
        for param in cmd.params:
            for opt in list(param.opts) + list(param.secondary_opts):
                if opt.startswith("--") and opt != "--help" and f"`{opt}" not in text:
                    missing.append(f"{name} {opt}")
    assert not missing, missing


def test_every_config_key_is_documented():
    text = docs_text()
    assert [k for k in settings_fields() if k not in text] == []


def test_example_workflow_and_hooks_exist():
    wf = (REPO / ".github" / "workflows" / "datasan-example.yml").read_text()
    assert "--format github" in wf and "--format junit" in wf
    hooks = (REPO / ".pre-commit-hooks.yaml").read_text()
    assert "id: datasan" in hooks and "entry: datasan scan" in hooks
