"""The command line as a newcomer meets it: --help, --version and shell completion."""

from __future__ import annotations

from typer.testing import CliRunner

import datasan
from datasan.cli import app

runner = CliRunner()


def test_help_shows_no_type_beside_flags():
    for args in (["--help"], ["scan", "--help"], ["report", "--help"]):
        r = runner.invoke(app, args, env={"COLUMNS": "100"})
        assert r.exit_code == 0
        assert "<bool>" not in r.stdout, args
    r = runner.invoke(app, ["--help"], env={"COLUMNS": "100"})
    version = next(line for line in r.stdout.splitlines() if "--version" in line)
    assert version.split("--version")[1].split() == ["Print", "the", "version", "and", "exit.", "│"]


def test_version():
    r = runner.invoke(app, ["--version"])
    assert r.exit_code == 0 and r.stdout == f"{datasan.__version__}\n"


def test_shell_completion():
    r = runner.invoke(app, ["--help"], env={"COLUMNS": "100"})
    assert "--install-completion" in r.stdout and "--show-completion" in r.stdout
    # what the shell asks for when the user presses TAB after `datasan scan --fail-on `
    r = runner.invoke(app, [], prog_name="datasan",
                      env={"_DATASAN_COMPLETE": "complete_bash", "COMP_WORDS": "datasan scan --fail-on ",
                           "COMP_CWORD": "3"})
    assert r.stdout.split() == ["error", "warning", "never"]
    r = runner.invoke(app, [], prog_name="datasan",
                      env={"_DATASAN_COMPLETE": "complete_bash", "COMP_WORDS": "datasan re", "COMP_CWORD": "1"})
    assert r.stdout.split() == ["report"]
