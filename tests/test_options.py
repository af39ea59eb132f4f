"""Options are declared once (ScanOptions fields): the CLI, the config keys, the checks and the
docs tables all come from those fields."""

from __future__ import annotations

import dataclasses

import pytest
import typer.main

from conftest import REPO

from datasan.cli import app
from datasan.config import build_options
from datasan.errors import UsageError
from datasan.options import ScanOptions, check_options, cli_flags, options_from_cli, settings_fields
from datasan.options_table import TABLES, replace_table


@pytest.mark.parametrize("rel, name", TABLES)
def test_generated_doc_tables_match_the_fields(rel, name):
    text = (REPO / rel).read_text(encoding="utf-8")
    assert replace_table(text, name) == text, f"run: python -m datasan.options_table ({rel}, {name})"


def test_every_flag_of_a_field_is_an_option_of_scan_and_nothing_else_is():
    scan = typer.main.get_command(app).commands["scan"]
    params = {p.name: p for p in scan.params}
    own = {"path", "out", "force", "format", "config", "quiet", "no_cache"}
    assert set(params) - own == {name for name, _ in cli_flags()}
    for name, flag in cli_flags():
        p = params[name]
        assert "/".join(list(p.opts) + list(p.secondary_opts)) == "/".join(
            d for decl in flag.decls for d in decl.split("/")), name
        assert p.default is None  # not given: the config file's value, else the field's default, applies


def test_help_order_is_the_field_order_with_format_and_config_before_baseline():
    scan = typer.main.get_command(app).commands["scan"]
    names = [p.name for p in scan.params]
    assert names == ["path", "out", "force", "fail_on", "probe", "target", "task", "num_classes", "classes",
                     "workers", "engine", "ray_address", "select", "ignore", "format", "config", "baseline", "max_quarantine_fraction",
                     "max_total_quarantine_fraction", "probe_model", "device", "probe_batch_size", "probe_seed",
                     "probe_timeout", "report_html", "report_thumbnails", "cache", "quiet", "no_cache"]


def test_config_keys_are_the_fields_with_config_metadata():
    top, per = settings_fields(), settings_fields(per_source=True)
    assert len(top) == 31 and set(per) == {"target", "task", "num_classes", "classes", "label_file", "types",
                                           "missing_policy", "thresholds"}
    api_only = {f.name for f in dataclasses.fields(ScanOptions)} - set(top)
    assert api_only == {"shard_rows", "batch_rows", "row_group_rows", "shard_images", "progress"}


def test_command_line_values_become_option_keywords():
    got = options_from_cli({"target": ["label", "a.csv=y", "b/*=z"], "classes": "a, b,", "select": ["DS1,ds2", "DS3"],
                            "ignore": None, "workers": 2, "fail_on": None})
    assert got == {"target": "label", "targets": {"a.csv": "y", "b/*": "z"}, "classes": ["a", "b"],
                   "select": ["DS1", "ds2", "DS3"], "workers": 2}
    assert options_from_cli({"target": ["a.csv=y"]}) == {"targets": {"a.csv": "y"}}
    with pytest.raises(UsageError, match="--target given twice"):
        options_from_cli({"target": ["x", "y"]})
    with pytest.raises(UsageError, match="expected NAME or FILE=NAME"):
        options_from_cli({"target": ["=y"]})


@pytest.mark.parametrize("key, value, needle", [
    ("workers", -1, "workers must be at least 0"),
    ("num_classes", 0, "num_classes must be at least 1"),
    ("probe_batch_size", 0, "probe_batch_size must be at least 1"),
    ("device", "tpu", "device must be cpu, cuda or cuda:N"),
    ("probe_model", "nocolon", "probe_model must be module:factory"),
    ("probe_timeout", -1.0, "probe_timeout must be a number of seconds >= 0"),
    ("image_labels", "guess", "image_labels must be one of auto, table, folders, none"),
    ("missing_policy", "drop", "missing_policy must be one of quarantine, drop-column"),
    ("fail_on", "sometimes", "fail_on must be one of error, warning, never"),
    ("engine", "spark", "engine must be one of local, ray"),
    ("select", ["DS999"], "unknown rule code(s) in select: DS999"),
    ("severity", {"DS101": "fatal"}, "severity.DS101 must be one of"),
    ("max_total_quarantine_fraction", 1.5, "max_total_quarantine_fraction must lie in 0..1"),
])
def test_one_check_for_the_config_file_the_api_and_options_objects(tmp_path, key, value, needle):
    with pytest.raises(UsageError) as api:
        build_options({key: value}, config=False)
    assert str(api.value) == f"option: {needle}" or str(api.value).startswith(f"option: {needle}")
    with pytest.raises(UsageError) as obj:
        check_options(dataclasses.replace(ScanOptions(), **{key: value}))
    assert str(obj.value).startswith(needle)
    if isinstance(value, (str, int, float)) and not isinstance(value, bool):
        cfg = tmp_path / "datasan.toml"
        cfg.write_text(f"{key} = {value!r}\n".replace("'", '"'))
        with pytest.raises(UsageError) as file:
            build_options({}, config=cfg)
        assert str(file.value).startswith(f"config {cfg}: {needle}")


def test_defaults_pass_the_checks():
    check_options(ScanOptions())
    assert build_options({}, config=False) == ScanOptions()
