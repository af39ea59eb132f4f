"""Typed results: Report and GateVerdict behind report.json, ScanResult as a context manager,
the renderer registry, the typed package."""

from __future__ import annotations

import gc
import json
import os
import sys
import types

import pytest
from typer.testing import CliRunner

from conftest import REPO

import datasan
from datasan.cli import app
from datasan.outputs.formats import FORMATS, render, renderer
from datasan.result import GateVerdict, Report, ScanResult

CSV = "a,b,label\n1,2,0\nnan,3,1\n4,5,0\n6,7,1\n"
REPORT_KEYS = ["datasan_version", "run_id", "path", "started", "seconds", "options", "files", "samples", "kept",
               "quarantined", "sources", "probe", "internal_errors", "drift", "cache", "findings", "gate", "passed", "out"]


@pytest.fixture
def data(tmp_path):
    d = tmp_path / "data"
    d.mkdir()
    (d / "t.csv").write_text(CSV)
    return d


def scan(path, **kw):
    return datasan.scan(path, probe=False, workers=1, config=False, **kw)


def test_report_json_is_the_typed_report_plus_counts_and_verdict(data, tmp_path):
    with scan(data, out_dir=tmp_path / "o") as result:
        doc = json.loads((tmp_path / "o" / "report.json").read_text())
        assert list(doc) == REPORT_KEYS
        assert doc == json.loads(json.dumps(result.report))
        s = result.summary
        assert (s.samples, s.kept, s.quarantined, s.files) == (4, 3, 1, 1)
        assert s.out == str((tmp_path / "o").resolve()) == doc["out"]
        assert doc["findings"] == {"total": 1, "by_severity": {"error": 1, "warning": 0, "info": 0},
                                   "by_code": {"DS101": 1}}
        assert result.verdict == GateVerdict("error", None, None, 0.25,
                                             {"source": "t.csv", "seen": 4, "quarantined": 1, "fraction": 0.25},
                                             False, 1, 1)
        assert doc["gate"] == result.verdict.to_dict() and doc["passed"] is False
        # re-judging changes the verdict and report.json's document, not the facts
        result.set_gate(fail_on="never")
        assert result.verdict.passed and result.report["passed"] is True
        assert result.report["gate"]["failing_findings"] == 0 and result.summary.kept == 3


def test_report_round_trips_and_keeps_keys_it_does_not_know(data, tmp_path):
    with scan(data, out_dir=tmp_path / "o"):
        pass
    doc = json.loads((tmp_path / "o" / "report.json").read_text())
    doc["added_by_a_later_version"] = {"x": 1}
    back = Report.from_dict(doc)
    assert back.extra == {"added_by_a_later_version": {"x": 1}}
    verdict = GateVerdict(**{k: v for k, v in doc["gate"].items()})
    again = back.to_dict(doc["findings"], verdict)
    assert again == doc
    assert ScanResult.load(tmp_path / "o").report["run_id"] == doc["run_id"]


def test_a_quarantine_over_its_limit_fails_the_verdict_with_its_reason(data):
    with scan(data, max_quarantine_fraction=0.1) as result:
        v = result.verdict
        assert v.failing_findings == 0 and not v.passed
        assert v.quarantine_reason == ("t.csv lost 1 of 4 samples to the quarantine (25.0%), more than "
                                       "max_quarantine_fraction 0.1 per source")


def test_scan_result_is_a_context_manager_that_frees_its_staging_folder(data):
    assert not hasattr(ScanResult, "__del__")
    with scan(data) as result:
        staging = result.workspace.staging
        assert os.path.isdir(os.path.join(staging, "clean"))
    assert not os.path.exists(staging) and result.workspace.staging is None
    result.close()  # twice is fine


def test_an_unclosed_result_frees_its_staging_folder_when_collected(data):
    result = scan(data)
    staging = result.workspace.staging
    assert os.path.isdir(staging)
    del result
    gc.collect()
    assert not os.path.exists(staging)


def test_closing_an_unwritten_result_unlocks_its_output_folder(data, tmp_path):
    from datasan.config import build_options
    from datasan.errors import UsageError
    from datasan.pipeline import scan as run

    opts = build_options({"probe": False, "workers": 1}, config=False)
    first = run(data, opts, out_dir=str(tmp_path / "o"))
    with pytest.raises(UsageError, match="another datasan run"):
        run(data, opts, out_dir=str(tmp_path / "o"))
    first.close()
    with run(data, opts, out_dir=str(tmp_path / "o")) as second:
        assert second.write(tmp_path / "o")


def test_every_format_is_one_registered_module_and_a_cli_choice(data):
    # what the shell offers after `datasan scan --format `: the registry's names
    r = CliRunner().invoke(app, [], prog_name="datasan", env={
        "_DATASAN_COMPLETE": "complete_bash", "COMP_WORDS": "datasan scan --format ", "COMP_CWORD": "3"})
    assert r.stdout.split() == list(FORMATS) == ["text", "json", "github", "junit", "markdown", "html"]
    with scan(data) as result:
        for name in FORMATS:
            assert callable(renderer(name).write)
        assert render(result, "text").splitlines()[-1] == "FAILED: 1 finding(s) at or above error; 1 of 4 " \
                                                           "samples quarantined (25.0%)."
        assert json.loads(render(result, "json"))["kept"] == 3
        assert render(result, "markdown").startswith("## datasan: ❌ failed\n")
        assert render(result, "html").startswith("<!DOCTYPE html>")
        with pytest.raises(ValueError, match="unknown format 'pdf'"):
            render(result, "pdf")


def test_the_package_ships_its_types():
    assert (REPO / "datasan" / "py.typed").is_file()
    assert 'datasan = ["py.typed", "outputs/templates/*.j2"]' in (REPO / "pyproject.toml").read_text()


def test_config_reads_toml_with_tomli_before_python_3_11(monkeypatch, tmp_path):
    from datasan import config

    fake = types.ModuleType("tomli")
    fake.TOMLDecodeError = ValueError
    fake.load = lambda f: {"fail_on": "never"}
    monkeypatch.setitem(sys.modules, "tomli", fake)
    monkeypatch.setattr(sys, "version_info", (3, 10, 14))
    assert config._toml() is fake
    (tmp_path / "datasan.toml").write_text("ignored by the fake\n")
    assert config.load_config(tmp_path / "datasan.toml") == {"fail_on": "never"}
