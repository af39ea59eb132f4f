"""The README as a newcomer follows it: every link and command points at something that exists."""

from __future__ import annotations

import re
import shlex

import typer.main

from conftest import REPO

from datasan.cli import app
from datasan.findings import COLUMNS

README = (REPO / "README.md").read_text(encoding="utf-8")


def readme_commands() -> list[list[str]]:
    """The ``datasan ...`` lines of the README's indented code blocks, split like a shell, without
    the comment and the redirection."""
    out = []
    for line in README.splitlines():
        if line.startswith("    datasan ") or "&& datasan " in line:
            cmd = line.split("&&")[-1].split(" #")[0].split(">")[0]
            out.append(shlex.split(cmd))
    return out


def test_every_linked_or_named_doc_exists():
    links = re.findall(r"\]\(([^)#]+)\)", README)
    named = re.findall(r"`([\w./-]+\.md)`", README)
    assert "docs/outputs.md" in links
    missing = [p for p in links + named if not p.startswith("http") and not (REPO / p).exists()]
    assert missing == []


def test_install_takes_the_cpu_build_of_torch_where_asked():
    assert "pip install torch --index-url https://download.pytorch.org/whl/cpu" in README
    assert 'pip install -e ".[dev]"' in README


def test_readme_commands_name_real_commands_options_and_paths():
    group = typer.main.get_command(app)
    cmds = readme_commands()
    assert len(cmds) >= 6
    for argv in cmds:
        assert argv[0] == "datasan"
        rest = argv[1:]
        if rest[0].startswith("--"):  # datasan --install-completion
            assert {o for p in group.params for o in p.opts} >= {rest[0]}, argv
            continue
        cmd = group.commands[rest[0]]
        args = rest[1:]
        if hasattr(cmd, "commands"):  # a group of commands: datasan cache prune
            cmd, args = cmd.commands[args[0]], args[1:]
        opts = {o for p in cmd.params for o in list(p.opts) + list(p.secondary_opts)}
        assert [a for a in args if a.startswith("-") and a not in opts] == [], argv
        if rest[0] == "scan" and "://" not in rest[1]:  # a bucket's URI is an example of a place
            assert (REPO / rest[1]).exists(), argv  # the quickstart scans a folder that is in the repository


def test_example_workflow_installs_from_the_repository():
    wf = (REPO / ".github" / "workflows" / "datasan-example.yml").read_text()
    installs = [line.strip() for line in wf.splitlines() if line.strip().startswith("pip install")]
    assert installs == ["pip install torch --index-url https://download.pytorch.org/whl/cpu",
                        'pip install "datasan @ git+https://github.com/OWNER/datasan"']


def test_outputs_doc_carries_the_contract():
    doc = (REPO / "docs" / "outputs.md").read_text(encoding="utf-8")
    for name in ("findings.parquet", "quarantine.parquet", "quarantine.csv", "clean/", "index.parquet",
                 "stats.json", "report.json", "_row"):
        assert name in doc, name
    assert [c for c in COLUMNS if f"| `{c}` |" not in doc] == []
    assert all(f"| {code} |" in doc for code in ("0", "1", "2", "3"))  # exit codes
