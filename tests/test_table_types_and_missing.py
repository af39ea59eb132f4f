"""Column types of real tables (ids vs measurements), target choice, missing data and the per-source gate."""

from __future__ import annotations

import json
import os

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from typer.testing import CliRunner

import datasan
from datasan.cli import app
from datasan.errors import UsageError


def write(path, text: str):
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
    return path


# --------------------------------------------------------------------------- ids vs measurements

def test_whole_numbers_with_codes_are_an_id_column(scan_to, tmp_path):
    """Galton's family = 1..136, '136A', ...: a column of ids, not numbers with bad cells."""
    body = "".join(f"{i // 2 + 1},{60 + i % 9}.5\n" for i in range(40))
    write(tmp_path / "d" / "galton.csv", "family,height\n" + body + "136A,61.5\n136A,62.5\nc168,70.0\n")
    s = scan_to(tmp_path / "d")
    assert s.codes() == ["DS112", "DS114"]
    f = s.findings[s.findings.code == "DS114"].iloc[0]
    assert f["column"] == "family" and f["severity"] == "warning" and pd_isnull(f["row"])
    assert "'136A'" in f["message"] and 'types = { family = "float" }' in f["message"]
    assert len(s.quarantine) == 0
    clean = s.clean("galton.csv")
    assert clean.schema.field("family").type == pa.string()
    assert clean.column("family").to_pylist()[-3:] == ["136A", "136A", "c168"]


def pd_isnull(v) -> bool:
    return v is None or v != v


def test_garbage_in_measurements_stays_a_row_error(scan_to, tmp_path):
    """Decimal numbers with stray text, and whole numbers with '?' or a control byte, are DS109 rows."""
    rows = [f"{i * 0.1:.2f},{i},{i % 2}" for i in range(30)]
    rows[5] = "6.2\x1a,5,1"
    rows[7] = "abc,7,1"
    rows[9] = "0.9,?,1"
    rows[11] = "1.1,1\x1a,1"
    write(tmp_path / "d" / "m.csv", "w,n,label\n" + "\n".join(rows) + "\n")
    s = scan_to(tmp_path / "d")
    assert s.rows("DS109") == [5, 7, 9, 11]
    assert "DS114" not in s.codes()
    assert s.clean("m.csv").schema.field("w").type == pa.float64()
    assert s.clean("m.csv").schema.field("n").type == pa.int64()


def test_declared_type_overrides_the_decision(scan_to, tmp_path):
    body = "".join(f"{i},{i % 2}\n" for i in range(20))
    d = tmp_path / "d"
    write(d / "a.csv", "subject,label\n" + body + "207a,1\n")
    s = scan_to(d, types={"subject": "float"})
    assert s.rows("DS109") == [20]
    assert "DS114" not in s.codes()
    s = scan_to(d, sources={"a.csv": {"types": {"subject": "category"}}})
    assert s.codes() == []
    assert s.clean("a.csv").schema.field("subject").type == pa.string()
    with pytest.raises(UsageError, match="types.subject must be one of"):
        scan_to(d, types={"subject": "decimal"})


# --------------------------------------------------------------------------- target choice

def test_integer_target_with_negative_values_is_regression(scan_to, tmp_path):
    body = "".join(f"{i * 0.3:.1f},{(i % 15) - 7}\n" for i in range(60))
    write(tmp_path / "d" / "r.csv", "x,y\n" + body)
    s = scan_to(tmp_path / "d")
    assert "DS103" not in s.codes()
    src = s.source("r.csv")
    assert (src["task"], src["task_reason"]) == ("regression", "integer target with 28 negative values")
    assert len(s.quarantine) == 0


def test_rare_negative_class_id_is_still_a_sentinel(scan_to, tmp_path):
    body = "".join(f"{i},{i % 5}\n" for i in range(200))
    write(tmp_path / "d" / "c.csv", "x,label\n" + body + "3,-1\n")
    s = scan_to(tmp_path / "d")
    assert s.rows("DS103") == [200]
    assert s.source("c.csv")["task"] == "classification"


def test_target_names_that_look_like_features(scan_to, tmp_path):
    d = tmp_path / "d"
    write(d / "titanic.csv", "class,age,sex,survived\n1st,adult,man,yes\n3rd,child,woman,no\n")
    write(d / "diamonds.csv", "carat,price,x,y,z\n0.23,326,3.95,3.98,2.43\n0.21,327,3.89,3.84,2.31\n")
    write(d / "xy.csv", "x,y\n1.0,2.0\n2.0,4.0\n")
    write(d / "both.csv", "y,label,a\n1,0,2\n2,1,3\n")
    s = scan_to(d)
    assert s.codes("titanic.csv") == ["DS115"]
    assert s.codes("diamonds.csv") == ["DS107", "DS115"]  # price in dollars: unscaled, no label check
    assert s.findings[s.findings.code == "DS115"].set_index("source")["column"].to_dict() == {
        "titanic.csv": "class", "diamonds.csv": "y"}
    assert s.source("titanic.csv")["target"] is None
    assert s.source("xy.csv")["target"] == "y"  # the usual (X, y) naming
    assert s.source("both.csv")["target"] == "label"  # label wins over y


def test_per_source_target_on_the_command_line(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    write(tmp_path / "data" / "titanic.csv", "class,age,survived\n1st,adult,1\n3rd,child,\n2nd,adult,0\n")
    write(tmp_path / "data" / "other.csv", "a,label\n1,0\n2,1\n")
    runner = CliRunner()
    r = runner.invoke(app, ["scan", "data", "--no-probe", "--workers", "1", "--target", "titanic.csv=survived",
                            "--format", "json"])
    assert r.exit_code == 1, r.output
    rep = json.loads(r.stdout)
    by = {s["source"]: s for s in rep["sources"]}
    assert by["titanic.csv"]["target"] == "survived" and by["other.csv"]["target"] == "label"
    assert rep["findings"]["by_code"] == {"DS102": 1}
    assert rep["options"]["targets"] == {"titanic.csv": "survived"}


def test_target_in_no_table_is_a_usage_error(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    write(tmp_path / "data" / "t.csv", "a,label\n1,0\n2,8000\n")
    runner = CliRunner()
    for args, needle in ((["--target", "lable"], "'lable' is in none of the 1 table(s)"),
                         (["--target", "t.csv=lable"], "t.csv has no column 'lable'"),
                         (["--target", "u.csv=label"], "no table matches 'u.csv'")):
        r = runner.invoke(app, ["scan", "data", "--no-probe", "--workers", "1", "--out", "o", *args])
        assert r.exit_code == 2, r.output
        assert needle in r.output
    assert not (tmp_path / "o").exists()  # no staging folder, lock or folder left behind
    with pytest.raises(UsageError):
        datasan.scan(tmp_path / "data", target="lable", probe=False, workers=1)


# --------------------------------------------------------------------------- missing data

@pytest.mark.parametrize("fmt", ["csv", "jsonl", "parquet"])
def test_missing_text_stays_null_and_is_reported(scan_to, tmp_path, fmt):
    sexes = ["male", "female", None, "male", None, "female", "male", "female", "male", "female"]
    table = pa.table({"sex": sexes, "notes": pa.array([None] * 10, pa.string()),
                      "mass": [float(3000 + 10 * i) for i in range(10)], "label": [i % 2 for i in range(10)]})
    d = tmp_path / "d"
    d.mkdir()
    if fmt == "parquet":
        pq.write_table(table, d / "p.parquet")
    elif fmt == "csv":
        lines = ["sex,notes,mass,label"] + [f"{s or ''},,{m},{lab}" for s, m, lab in
                                            zip(sexes, table["mass"].to_pylist(), table["label"].to_pylist())]
        write(d / "p.csv", "\n".join(lines) + "\n")
    else:
        lines = [json.dumps({"sex": s, "notes": None, "mass": m, "label": lab}) for s, m, lab in
                 zip(sexes, table["mass"].to_pylist(), table["label"].to_pylist())]
        write(d / "p.jsonl", "\n".join(lines) + "\n")
    s = scan_to(d)
    name = f"p.{fmt}"
    got = s.findings[s.findings.code.isin(["DS116", "DS117"])].set_index("code")["column"].to_dict()
    assert got == {"DS116": "sex", "DS117": "notes"}
    assert "missing in 2 of 10 rows" in s.findings.set_index("code").loc["DS116", "message"]
    assert len(s.quarantine) == 0
    clean = s.clean(name)
    assert clean.column("sex").to_pylist() == sexes
    assert clean.column("notes").null_count == 10
    assert pa.types.is_string(clean.schema.field("sex").type)
    assert s.source(name)["sparse_columns"] == {"notes": 1.0}


def test_an_empty_numeric_column_says_it_quarantined_every_row(scan_to, tmp_path):
    d = tmp_path / "d"
    d.mkdir()
    pq.write_table(pa.table({"x": pa.array([None] * 4, pa.float64()), "y": [0.5, 1.5, 2.5, 3.5],
                             "label": [0, 1, 0, 1]}), d / "p.parquet")
    s = scan_to(d)
    f = s.findings
    assert sorted(f.code) == ["DS101"] * 4 + ["DS117"]
    assert f.set_index("code").loc["DS117", "message"] == (
        "Column 'x' is empty: it has no value in any of its 4 rows; so every row was quarantined (DS101). To keep "
        'the rows without it, set missing_policy = "drop-column" in the config, or drop the column.')
    assert len(s.quarantine) == 4
    kept = scan_to(d, missing_policy="drop-column")
    assert sorted(kept.findings.code) == ["DS117"] and len(kept.quarantine) == 0
    assert kept.findings.message.iloc[0] == ("Column 'x' is empty: it has no value in any row; it was left out of "
                                             'the clean file (missing_policy = "drop-column").')
    assert kept.clean("p.parquet").column_names == ["y", "label", "_row"]


def _sparse_csv(path, n=20, missing_every=2):
    lines = ["a,b,label"]
    for i in range(n):
        b = "" if i % missing_every == 0 else str(i * 0.5)
        lines.append(f"{i * 0.1:.1f},{b},{i % 2}")
    write(path, "\n".join(lines) + "\n")


def test_sparse_column_quarantine_policy(scan_to, tmp_path):
    _sparse_csv(tmp_path / "d" / "s.csv")
    s = scan_to(tmp_path / "d")
    assert s.codes().count("DS118") == 1
    assert s.rows("DS101") == list(range(0, 20, 2))
    msg = s.findings.set_index("code").loc["DS118", "message"]
    assert "missing in 50.0% of the rows (10 of 20)" in msg and "quarantined" in msg
    assert s.source("s.csv")["sparse_columns"] == {"b": 0.5}
    assert s.source("s.csv")["dropped_columns"] == []


@pytest.mark.parametrize("fmt", ["csv", "parquet"])
def test_sparse_column_drop_policy_keeps_the_rows(scan_to, tmp_path, fmt):
    d = tmp_path / "d"
    _sparse_csv(d / "s.csv")
    if fmt == "parquet":
        import pyarrow.csv as pacsv

        pq.write_table(pacsv.read_csv(d / "s.csv"), d / "s.parquet")
        os.remove(d / "s.csv")
    name = f"s.{fmt}"
    s = scan_to(d, missing_policy="drop-column")
    assert [c for c in s.codes() if c.startswith("DS1") and c != "DS107"] == ["DS118"]
    assert len(s.quarantine) == 0
    clean = s.clean(name)
    assert clean.column_names == ["a", "label", "_row"]
    assert clean.num_rows == 20
    assert s.source(name)["dropped_columns"] == ["b"]
    assert "left out of the clean file" in s.findings.set_index("code").loc["DS118", "message"]


def test_missing_policy_is_checked(scan_to, tmp_path):
    _sparse_csv(tmp_path / "d" / "s.csv")
    with pytest.raises(UsageError, match="missing_policy must be one of"):
        scan_to(tmp_path / "d", missing_policy="impute")


# --------------------------------------------------------------------------- the gate per source

def test_quarantine_limit_applies_to_each_source(tmp_path):
    d = tmp_path / "d"
    write(d / "big.csv", "a,label\n" + "".join(f"{i},{i % 2}\n" for i in range(200)))
    write(d / "small.csv", "a,label\n1,0\nnan,1\nnan,0\n4,1\n")
    r = datasan.scan(d, probe=False, workers=1, max_quarantine_fraction=0.2)
    assert not r.passed  # 2 of 204 overall, but small.csv lost half its rows
    assert r.report["gate"]["worst_source"] == {"source": "small.csv", "seen": 4, "quarantined": 2,
                                                "fraction": 0.5}
    assert "small.csv lost 2 of 4 samples" in r.gate_summary()
    assert datasan.scan(d, probe=False, workers=1, max_total_quarantine_fraction=0.01).passed
    assert not datasan.scan(d, probe=False, workers=1, max_total_quarantine_fraction=0.005).passed


# --------------------------------------------------------------------------- real data: the errors that remain

def test_sklearn_csv_with_a_metadata_first_line_is_ragged(scan_to, tmp_path):
    """The one kind of error bench/real_tables.py finds on complete rows of real tables:
    scikit-learn ships wine_data.csv / breast_cancer.csv with a first line of
    metadata ('178,13,class_0,...': 5 fields) above rows of 14 fields. Read as a CSV
    file, every row disagrees with its header (pandas silently turns the first 9
    values of each row into an index instead)."""
    import shutil

    import sklearn.datasets

    src = os.path.join(os.path.dirname(sklearn.datasets.__file__), "data", "wine_data.csv")
    d = tmp_path / "d"
    d.mkdir()
    shutil.copyfile(src, d / "wine_data.csv")
    lines = (d / "wine_data.csv").read_text().splitlines()
    assert len(lines[0].split(",")) == 5 and {len(x.split(",")) for x in lines[1:]} == {14}
    s = scan_to(d)
    assert s.rows("DS004") == list(range(178))
    assert s.source("wine_data.csv")["seen"] == 178 and s.source("wine_data.csv")["kept"] == 0


def test_non_numeric_cell_in_a_numeric_target_is_ds109_not_an_internal_error(tmp_path, scan_to):
    # found by the fuzz harness: the target's raw text was looked up among the feature columns
    rows = "".join("0.0,0.0\n" for _ in range(8))
    write(tmp_path / "data" / "t.csv", "f0,label\n" + rows + "0.0,0x1F\n")
    s = scan_to(tmp_path / "data")
    assert "DS011" not in s.codes()
    assert s.rows("DS109") == [8]
    assert s.findings[s.findings["code"] == "DS109"]["column"].tolist() == ["label"]
    assert s.source("t.csv")["kept"] == 8
