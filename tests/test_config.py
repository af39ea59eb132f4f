"""The config file: discovery, keys, per-source globs, CLI precedence, errors (exit 2)."""

from __future__ import annotations

import json

import pytest
from typer.testing import CliRunner

import datasan
from datasan.cli import app
from datasan.config import build_options, find_config, load_config
from datasan.errors import UsageError

runner = CliRunner()
CSV = "a,b,label\n1,2,0\nnan,3,1\n4,5,0\n6,7,1\n"


@pytest.fixture
def proj(tmp_path, monkeypatch):
    """A project folder (cwd) with data/t.csv: one NaN in row 1."""
    monkeypatch.chdir(tmp_path)
    (tmp_path / "data").mkdir()
    (tmp_path / "data" / "t.csv").write_text(CSV)
    return tmp_path


def scan_cli(*args):
    return runner.invoke(app, ["scan", "data", "--no-probe", "--workers", "1", *args])


def test_find_config_walks_upward(tmp_path):
    sub = tmp_path / "a" / "b"
    sub.mkdir(parents=True)
    assert find_config(sub) is None or not str(find_config(sub)).startswith(str(tmp_path))
    (tmp_path / "pyproject.toml").write_text("[project]\nname = 'x'\n")  # no [tool.datasan]: ignored
    assert find_config(sub) is None or not str(find_config(sub)).startswith(str(tmp_path))
    (tmp_path / "a" / "pyproject.toml").write_text("[tool.datasan]\nfail_on = 'warning'\n")
    assert find_config(sub) == str(tmp_path / "a" / "pyproject.toml")
    (sub / "datasan.toml").write_text("fail_on = 'never'\n")
    assert find_config(sub) == str(sub / "datasan.toml")
    assert load_config(find_config(sub)) == {"fail_on": "never"}
    assert load_config(tmp_path / "a" / "pyproject.toml") == {"fail_on": "warning"}


def test_config_keys_map_to_options(proj):
    (proj / "datasan.toml").write_text(
        'select = ["DS1"]\nignore = "DS105,DS106"\nfail_on = "warning"\nmax_quarantine_fraction = 0.25\n'
        '[severity]\nds101 = "warning"\n[thresholds]\noutlier_k = 30\nmax_classes = 50\n'
        '[sources."tables/*.csv"]\ntarget = "b"\ntask = "regression"\n')
    o = build_options({})
    assert o.select == ["DS1"] and o.ignore == ["DS105", "DS106"]
    assert o.fail_on == "warning" and o.max_quarantine_fraction == 0.25
    assert o.severity == {"DS101": "warning"}
    assert o.thresholds.outlier_k == 30.0 and o.thresholds.max_classes == 50
    per = o.for_source("tables/t.csv")
    assert (per.target, per.task) == ("b", "regression")
    assert o.for_source("other/t.csv") is o
    # API keywords override the file
    assert build_options({"fail_on": "error", "thresholds": {"outlier_k": 7}}).fail_on == "error"
    assert build_options({"thresholds": {"outlier_k": 7}}).thresholds.max_classes == 50
    assert build_options({}, config=False).fail_on == "error"


def test_severity_override_from_config_changes_the_verdict(proj):
    assert scan_cli().exit_code == 1  # DS101 error
    (proj / "datasan.toml").write_text('[severity]\nDS101 = "warning"\n')
    r = scan_cli()
    assert r.exit_code == 0, r.output
    rep = json.loads((proj / "datasan-out" / "report.json").read_text())
    assert rep["findings"]["by_severity"]["warning"] == 1 and rep["quarantined"] == 0


def test_cli_option_overrides_config(proj):
    (proj / "datasan.toml").write_text('fail_on = "never"\n')
    assert scan_cli().exit_code == 0
    assert scan_cli("--fail-on", "error").exit_code == 1


def test_per_source_target_is_used_by_the_table_kind(proj):
    # globs match source paths relative to the scanned PATH
    (proj / "pyproject.toml").write_text('[tool.datasan.sources."t.csv"]\ntarget = "b"\ntask = "regression"\n')
    result = datasan.scan("data", probe=False, workers=1)
    src = result.report["sources"][0]
    assert (src["target"], src["task"]) == ("b", "regression")
    assert src["features"] == ["a", "label"]


def test_explicit_config_file(proj):
    (proj / "strict.toml").write_text('ignore = ["DS101"]\n')
    r = scan_cli("--config", "strict.toml")
    assert r.exit_code == 0, r.output
    assert datasan.scan("data", config=str(proj / "strict.toml"), probe=False, workers=1).findings.empty


@pytest.mark.parametrize("text, needle", [
    ('colour = "red"\n', "unknown key 'colour'"),
    ('fail_on = 3\n', "fail_on must be a string"),
    ('fail_on = "sometimes"\n', "fail_on must be one of"),
    ('select = ["DS999"]\n', "unknown rule code(s) in select: DS999"),
    ('ignore = ["XX1"]\n', "unknown rule code(s) in ignore: XX1"),
    ('[severity]\nDS998 = "error"\n', "unknown rule code(s) in severity: DS998"),
    ('[severity]\nDS101 = "fatal"\n', "severity.DS101 must be one of"),
    ('[thresholds]\nbogus_k = 1\n', "unknown key thresholds.bogus_k"),
    ('[thresholds]\noutlier_k = "big"\n', "thresholds.outlier_k must be a number"),
    ('[thresholds]\nmax_classes = 2.5\n', "thresholds.max_classes must be an integer"),
    ('max_quarantine_fraction = 2\n', "max_quarantine_fraction must lie in 0..1"),
    ('probe = "yes"\n', "probe must be a boolean"),
    ('[sources."*.csv"]\ncolour = "red"\n', "unknown key sources.'*.csv'.colour"),
    ('[sources."*.csv"]\nnum_classes = "ten"\n', "num_classes must be an integer"),
    ('classes = ["a", 1]\n', "classes must be a list of strings"),
    ('fail_on = \n', "not valid TOML"),
])
def test_config_errors_exit_2_naming_the_key(proj, text, needle):
    (proj / "datasan.toml").write_text(text)
    r = scan_cli()
    assert r.exit_code == 2, r.output
    assert needle in " ".join(r.output.split())
    with pytest.raises(UsageError):
        build_options({})


def test_missing_config_file_exits_2(proj):
    r = scan_cli("--config", "nope.toml")
    assert r.exit_code == 2
    assert "nope.toml does not exist" in r.output


def test_pyproject_without_table_named_explicitly_exits_2(proj):
    (proj / "pyproject.toml").write_text("[project]\nname = 'x'\n")
    assert scan_cli().exit_code == 1  # not a config: ignored when found
    r = scan_cli("--config", "pyproject.toml")
    assert r.exit_code == 2 and "no [tool.datasan] table" in r.output


def test_api_keywords_are_checked_like_the_file(proj):
    with pytest.raises(UsageError, match="option: unknown rule code\\(s\\) in select: DS999"):
        datasan.scan("data", select=["DS999"], probe=False)
    with pytest.raises(UsageError, match="option: fail_on must be one of"):
        datasan.gate("data", fail_on="sometimes", probe=False)
    o = build_options({"select": ("ds1",), "classes": ("a", "b")}, config=False)
    assert o.select == ["DS1"] and o.classes == ["a", "b"]


def test_gate_takes_fail_on_from_the_config(proj):
    (proj / "datasan.toml").write_text('fail_on = "never"\n')
    assert datasan.gate("data", probe=False, workers=1).passed
    with pytest.raises(datasan.DataGateError):
        datasan.gate("data", "error", probe=False, workers=1)


def test_baseline_in_config_is_relative_to_the_config_file(proj, monkeypatch):
    sub = proj / "sub"
    sub.mkdir()
    assert datasan.scan("data", out_dir=str(proj / "base"), probe=False, workers=1).passed is False
    (proj / "datasan.toml").write_text('baseline = "base/findings.parquet"\n')
    monkeypatch.chdir(sub)  # the file is found upward; its relative baseline still resolves
    assert build_options({}).baseline == str(proj / "base" / "findings.parquet")
    assert datasan.gate(proj / "data", probe=False, workers=1).passed
