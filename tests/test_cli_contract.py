"""The output contract (docs/outputs.md): files, columns, exit codes, PATH untouched, lazy imports."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from typer.testing import CliRunner

from conftest import REPO, SAMPLE, tree_digest

from datasan.cli import app

runner = CliRunner()

FINDING_TYPES = {"code": pa.string(), "check": pa.string(), "severity": pa.string(), "sample": pa.string(),
                 "source": pa.string(), "row": pa.int64(), "column": pa.string(), "message": pa.string()}


def make_data(root):
    d = root / "data"
    (d / "tables").mkdir(parents=True)
    (d / "tables" / "t.csv").write_text("a,b,label\n1,2,0\nnan,2,1\n3,4,1\n5,6,0\n")
    return d


def test_scan_writes_every_contract_file(tmp_path):
    d = make_data(tmp_path)
    out = tmp_path / "out"
    res = runner.invoke(app, ["scan", str(d), "--out", str(out), "--no-probe"])
    assert res.exit_code == 1, res.output
    names = sorted(p.name for p in out.iterdir())
    assert names == [".datasan.lock", "clean", "findings.parquet", "manifest.json", "quarantine.csv",
                     "quarantine.parquet", "report.html", "report.json", "stats.json"]
    f = pq.read_table(out / "findings.parquet")
    assert {n: f.schema.field(n).type for n in f.schema.names} == FINDING_TYPES
    q = pq.read_table(out / "quarantine.parquet")
    assert q.schema.names == ["sample", "source", "row", "codes", "reason"]
    assert q.to_pylist() == [{"sample": "tables/t.csv#1", "source": "tables/t.csv", "row": 1, "codes": "DS101",
                              "reason": "Feature 'a' is NaN."}]
    csv = (out / "quarantine.csv").read_text().splitlines()
    assert csv[0] == '"sample","source","row","codes","reason"'
    assert len(csv) == 2
    clean = pq.read_table(out / "clean" / "tables" / "t.csv.parquet")
    assert clean.column_names == ["a", "b", "label", "_row"]
    assert clean.column("_row").to_pylist() == [0, 2, 3]
    report = json.loads((out / "report.json").read_text())
    assert report["samples"] == 4 and report["kept"] == 3 and report["quarantined"] == 1
    assert report["passed"] is False
    assert report["findings"]["by_code"] == {"DS101": 1}
    assert report["findings"]["by_severity"] == {"error": 1, "warning": 0, "info": 0}
    assert report["datasan_version"]
    stats = json.loads((out / "stats.json").read_text())
    col = stats["tables"]["tables/t.csv"]["columns"]["a"]
    assert col.pop("sketch")["scheme"] == "float64-log2-m4-n128"  # stats.json may grow, never change
    assert col == {
        "count": 3, "nulls": 0, "nan": 0, "posinf": 0, "neginf": 0,
        "mean": 3.0, "std": pytest.approx((8 / 3) ** 0.5), "min": 1.0, "max": 5.0}
    assert stats["labels"]["tables/t.csv"] == {"0": 2, "1": 1}
    # no temporary or staging files are left behind; the lock file stays (removing it would race)
    leftovers = [p.name for p in out.rglob("*") if p.name.startswith(".")]
    assert leftovers == [".datasan.lock"]


def test_path_is_never_written(tmp_path):
    d = make_data(tmp_path)
    os.chmod(d / "tables" / "t.csv", 0o644)
    before = tree_digest(d)
    runner.invoke(app, ["scan", str(d), "--out", str(tmp_path / "o"), "--no-probe"])
    assert tree_digest(d) == before
    assert sorted(os.listdir(d)) == ["tables"]


def test_out_inside_path_is_refused(tmp_path):
    d = make_data(tmp_path)
    res = runner.invoke(app, ["scan", str(d), "--out", str(d / "out"), "--no-probe"])
    assert res.exit_code == 2
    assert "inside PATH" in res.output
    assert not (d / "out").exists()


@pytest.mark.parametrize(
    "args, code",
    [
        (["--fail-on", "error"], 1),
        (["--fail-on", "never"], 0),
        (["--ignore", "DS101"], 0),
        (["--select", "DS0"], 0),
    ],
)
def test_exit_codes_and_fail_on(tmp_path, args, code):
    d = make_data(tmp_path)
    res = runner.invoke(app, ["scan", str(d), "--out", str(tmp_path / "o"), "--no-probe", *args])
    assert res.exit_code == code, res.output


def test_fail_on_warning(tmp_path):
    d = tmp_path / "d"
    d.mkdir()
    (d / "t.csv").write_text("a,label\n1,0\n1,0\n2,1\n")  # a duplicate row: warning only
    assert runner.invoke(app, ["scan", str(d), "--out", str(tmp_path / "o"), "--no-probe"]).exit_code == 0
    res = runner.invoke(app, ["scan", str(d), "--out", str(tmp_path / "o"), "--no-probe", "--fail-on", "warning"])
    assert res.exit_code == 1


@pytest.mark.parametrize(
    "args, needle",
    [
        (["scan", "/no/such/path"], "no such file or folder"),
        (["scan", "{d}", "--fail-on", "sometimes"], "sometimes"),
        (["scan", "{d}", "--select", "DS999"], "DS999"),
        (["scan", "{d}", "--num-classes", "0"], "num_classes"),
        (["rule", "DS999"], "unknown rule"),
    ],
)
def test_exit_2_names_the_problem(tmp_path, args, needle):
    d = make_data(tmp_path)
    args = [a.replace("{d}", str(d)) for a in args]
    res = runner.invoke(app, args + (["--out", str(tmp_path / "o")] if args[0] == "scan" else []))
    assert res.exit_code == 2
    assert needle in res.output


def test_bug_exits_3(tmp_path, monkeypatch):
    import datasan.pipeline as pipeline

    def boom(*a, **k):
        raise RuntimeError("kaboom")

    monkeypatch.setattr(pipeline, "scan", boom)
    d = make_data(tmp_path)
    res = runner.invoke(app, ["scan", str(d), "--out", str(tmp_path / "o"), "--no-probe"])
    assert res.exit_code == 3
    assert "bug in datasan" in res.output and "kaboom" in res.output


def test_json_format_is_the_report(tmp_path):
    d = make_data(tmp_path)
    res = runner.invoke(app, ["scan", str(d), "--out", str(tmp_path / "o"), "--no-probe", "--format", "json"])
    doc = json.loads(res.stdout)
    assert doc["quarantined"] == 1 and doc["passed"] is False


def test_rules_and_rule_commands():
    res = runner.invoke(app, ["rules", "--format", "json"])
    from datasan.rules import RULES

    listed = json.loads(res.stdout)
    assert [r["code"] for r in listed] == [c for c, r in RULES.items() if not r.retired]
    res = runner.invoke(app, ["rule", "DS101"])
    assert res.exit_code == 0
    for heading in ("What it checks", "Why it breaks training", "How to fix", "non-finite-value"):
        assert heading in res.output
    assert runner.invoke(app, ["rule", "distant-label"]).exit_code == 0


def test_help_imports_no_heavy_module():
    code = (
        "import sys\n"
        "from datasan.cli import app\n"
        "try:\n"
        "    app(['--help'])\n"
        "except SystemExit:\n"
        "    pass\n"
        "heavy = [m for m in ('torch', 'pandas', 'pyarrow', 'numpy', 'PIL', 'jinja2', 'matplotlib') if m in sys.modules]\n"
        "print('HEAVY', heavy)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=REPO, check=True)
    assert "HEAVY []" in out.stdout


def test_real_subprocess_run(tmp_path):
    d = make_data(tmp_path)
    out = tmp_path / "o"
    p = subprocess.run([sys.executable, "-m", "datasan", "scan", str(d), "--out", str(out), "--no-probe"],
                       capture_output=True, text=True, cwd=REPO)
    assert p.returncode == 1, p.stderr
    assert "DS101" in p.stdout and "FAILED" in p.stdout
    assert (out / "report.json").exists()


def test_every_rule_has_docs_and_a_test():
    from datasan.rules import RULES

    text = "".join(p.read_text() for p in (REPO / "tests").glob("test_*.py"))
    for code, r in RULES.items():
        assert r.name and r.summary and r.what and r.why and r.fix, code
        assert r.name == r.name.lower() and " " not in r.name, code
        assert f'"{code}"' in text, f"{code} has no test"


def test_sample_data_quickstart_runs(tmp_path):
    """The README quickstart, probe included: scan sample_data and get every contract file."""
    out = tmp_path / "o"
    res = runner.invoke(app, ["scan", str(SAMPLE), "--out", str(out)])
    assert res.exit_code == 1
    names = sorted(p.name for p in out.iterdir())
    assert names == [".datasan.lock", "clean", "findings.parquet", "index.parquet", "label_quality.parquet",
                     "manifest.json", "quarantine.csv", "quarantine.parquet", "report.html", "report.json",
                     "stats.json"]
    report = json.loads((out / "report.json").read_text())
    from datasan.outputs.manifest import verify_output

    assert verify_output(out)["run_id"] == report["run_id"]  # every file, clean ones too, is of this run
    assert report["samples"] == sum(s["seen"] for s in report["sources"])
    for s in report["sources"]:
        assert s["kept"] + s["quarantined"] == s["seen"], s["source"]
    assert report["probe"]["ran"] is True
    assert {s["kind"] for s in report["sources"]} == {"table", "images", "coco", "yolo"}
    q = pq.read_table(out / "quarantine.parquet").to_pandas()
    assert len(q) == report["quarantined"]
    # the probe's planted row (static checks pass it) is quarantined
    assert "DS401" in ",".join(q[q["source"] == "probe/sensor_readings.csv"]["codes"])


def test_readme_lists_every_rule_and_scan_option():
    from datasan.rules import RULES

    readme = (REPO / "README.md").read_text()
    for code in RULES:
        assert f"| {code} |" in readme, code
    import typer.main

    cmd = typer.main.get_command(app).commands["scan"]
    options = [p for p in cmd.params if p.param_type_name == "option"]
    assert len(options) >= 12
    for param in options:
        names = list(param.opts) + list(getattr(param, "secondary_opts", []))
        assert all(f"`{n}" in readme or f"{n} " in readme for n in names if n.startswith("--")), names
