"""Table checks (DS1xx) and the table source: exact findings, clean files and statistics."""

from __future__ import annotations

import json
import math

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from conftest import SAMPLE


def write(path, text: str, encoding: str = "utf-8"):
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(text.encode(encoding))
    return path


# --------------------------------------------------------------------------- sample_data/tables/defects.csv

@pytest.fixture(scope="module")
def defects(tmp_path_factory):
    import datasan
    from conftest import Scanned

    out = tmp_path_factory.mktemp("defects")
    res = datasan.scan(str(SAMPLE / "tables" / "defects.csv"), out_dir=str(out), probe=False, workers=1)
    return Scanned(res, out)


def test_defects_every_planted_row_is_found(defects):
    src = "defects.csv"
    assert defects.rows("DS101", src) == [2, 3, 4, 5]
    assert defects.rows("DS102", src) == [6, 7, 8]
    assert defects.rows("DS103", src) == [9]
    assert defects.rows("DS104", src) == [10]
    assert defects.rows("DS105", src) == [11]
    assert defects.rows("DS113", src) == [12]
    assert defects.rows("DS109", src) == [13]
    assert defects.rows("DS004", src) == [19]
    assert defects.rows("DS110", src) == [15]
    assert defects.rows("DS111", src) == [17]


def test_defects_messages_name_the_value(defects):
    f = defects.findings.set_index(["code", "row"])
    assert "'1e400', which parses to inf" in f.loc[("DS101", 5), "message"]
    assert f.loc[("DS101", 5), "column"] == "f1"
    assert "8000" in f.loc[("DS104", 10), "message"]
    assert "'abc'" in f.loc[("DS109", 13), "message"]
    assert f.loc[("DS102", 7), "column"] == "label"


def test_defects_quarantine_and_clean_file(defects):
    q = defects.quarantine
    assert sorted(q["row"].tolist()) == [2, 3, 4, 5, 6, 7, 8, 9, 10, 12, 13, 19]
    assert (q["sample"] == "defects.csv#" + q["row"].astype(str)).all()
    assert q.set_index("row").loc[10, "codes"] == "DS104"
    clean = defects.clean("defects.csv")
    rows = clean.column("_row").to_pylist()
    assert len(rows) == 29 and 41 == 29 + len(q)
    assert rows == sorted(set(range(41)) - set(q["row"].tolist()))
    assert clean.schema.field("f1").type == pa.float64()
    assert clean.schema.field("price").type == pa.int64()
    assert clean.schema.field("label").type == pa.int64()
    src = defects.source("defects.csv")
    assert (src["seen"], src["kept"], src["quarantined"]) == (41, 29, 12)


def test_defects_column_level_findings_once_per_column(defects):
    f = defects.findings
    assert f[f.code == "DS108"]["column"].tolist() == ["version"]
    assert sorted(f[f.code == "DS106"]["column"].tolist()) == ["f2", "price"]
    assert sorted(f[f.code == "DS107"]["column"].tolist()) == ["f2", "price"]
    assert f[f.code.isin(["DS106", "DS107", "DS108"])]["sample"].isna().all()


def test_stats_are_exact_over_kept_rows(defects):
    clean = defects.clean("defects.csv").to_pandas()
    st = defects.stats["tables"]["defects.csv"]
    assert st["rows"] == 29
    for col in ("f1", "f3", "price"):
        v = clean[col].to_numpy(dtype=np.float64)
        s = st["columns"][col]
        assert s["count"] == 29 and s["nan"] == 0 and s["nulls"] == 0
        assert s["mean"] == pytest.approx(v.mean(), rel=1e-12)
        assert s["std"] == pytest.approx(v.std(ddof=0), rel=1e-12)
        assert (s["min"], s["max"]) == (v.min(), v.max())
    labels = defects.stats["labels"]["defects.csv"]
    assert sum(labels.values()) == 29
    assert labels == {str(k): int(v) for k, v in clean["label"].value_counts().sort_index().items()}


# --------------------------------------------------------------------------- the whole sample_data/tables folder

def test_sample_tables_each_file(scan_to):
    s = scan_to(SAMPLE / "tables")
    assert s.codes("broken.parquet") == ["DS001"]
    assert s.codes("empty.csv") == ["DS002"]
    assert s.codes("latin1.csv") == ["DS003"]
    assert s.codes("iris.csv") == ["DS110"]  # rows 101 and 142 of iris are identical
    assert s.rows("DS110", "iris.csv") == [142]
    assert s.codes("events.jsonl") == ["DS005", "DS009", "DS101"]
    assert s.rows("DS009", "events.jsonl") == [3]
    assert s.rows("DS101", "events.jsonl") == [5]
    assert s.codes("pixels.feather") == ["DS107"] * 4 + ["DS108"]
    assert s.rows("DS104", "regression.parquet") == [123]
    assert s.rows("DS101", "regression.parquet") == [200]
    # the heavy-tailed income column and its targets raise no error
    reg = s.findings[(s.findings.source == "regression.parquet") & (s.findings.severity == "error")]
    assert sorted(reg["row"].tolist()) == [123, 200]
    for src in s.report["sources"]:
        assert src["kept"] + src["quarantined"] == src["seen"]
    assert s.source("regression.parquet")["task"] == "regression"
    assert s.source("latin1.csv")["encoding"] == "latin-1"


# --------------------------------------------------------------------------- targeted cases

def test_nan_inf_empty_and_strings(scan_to, tmp_path):
    write(tmp_path / "d" / "t.csv", "a,b,label\n1,2,0\nnan,2,1\n1,-inf,0\n,2,1\n1,-1e999,0\n 2 , 3 ,1\n")
    s = scan_to(tmp_path / "d")
    assert s.rows("DS101") == [1, 2, 3, 4]
    assert s.clean("t.csv").column("_row").to_pylist() == [0, 5]
    assert s.clean("t.csv").column("a").to_pylist() == [1, 2]


def test_missing_labels_in_parquet_and_csv(scan_to, tmp_path):
    d = tmp_path / "d"
    d.mkdir()
    pq.write_table(pa.table({"x": [1.0, 2.0, 3.0, 4.0], "label": [0, None, 1, 0]}), d / "a.parquet")
    pq.write_table(pa.table({"x": [1.0, 2.0, 3.0], "y": ["cat", None, " none "]}), d / "b.parquet")
    s = scan_to(d)
    assert s.rows("DS102", "a.parquet") == [1]
    assert s.rows("DS102", "b.parquet") == [1, 2]


def test_num_classes_makes_out_of_range_exact(scan_to, tmp_path):
    write(tmp_path / "d" / "t.csv", "x,label\n" + "".join(f"{i},{i % 12}\n" for i in range(48)))
    s = scan_to(tmp_path / "d", num_classes=10)
    assert s.rows("DS103") == [10, 11, 22, 23, 34, 35, 46, 47]
    assert "not below the number of classes (10)" in s.findings[s.findings.code == "DS103"]["message"].iloc[0]


def test_class_names_given(scan_to, tmp_path):
    write(tmp_path / "d" / "t.csv", "x,label\n1,cat\n2,dog\n3,cta\n4,cat\n")
    s = scan_to(tmp_path / "d", classes=["cat", "dog"])
    assert s.rows("DS103") == [2]


def test_distant_class_id_but_not_dense_ids(scan_to, tmp_path):
    rng = np.random.default_rng(0)
    y = rng.integers(0, 10, 2000)
    y[[5, 900]] = [8000, 9999]
    d = tmp_path / "d"
    d.mkdir()
    pq.write_table(pa.table({"x": rng.normal(size=2000), "label": y}), d / "far.parquet")
    dense = rng.integers(0, 1000, 5000)
    pq.write_table(pa.table({"x": rng.normal(size=5000), "label": dense}), d / "dense.parquet")
    s = scan_to(d)
    assert s.rows("DS104", "far.parquet") == [5, 900]
    assert s.rows("DS104", "dense.parquet") == []
    assert s.source("dense.parquet")["task"] == "classification"


def test_regression_outlier_conservative_on_heavy_tails(scan_to, tmp_path):
    from sklearn.datasets import load_diabetes

    rng = np.random.default_rng(1)
    d = tmp_path / "d"
    d.mkdir()
    n = 20000
    # a very heavy tail: lognormal(sigma=2) spans 8 orders of magnitude, all genuine
    pq.write_table(pa.table({"x": rng.normal(size=n), "target": rng.lognormal(3, 2.0, n)}), d / "heavy.parquet")
    db = load_diabetes()
    pq.write_table(pa.table({**{f"f{i}": db.data[:, i] for i in range(10)}, "y": db.target}), d / "diabetes.parquet")
    t = rng.normal(100, 15, 3000)
    t[[7, 2999]] = [1e12, -5e9]
    pq.write_table(pa.table({"x": rng.normal(size=3000), "y": t}), d / "bad.parquet")
    s = scan_to(d)
    assert s.rows("DS104", "heavy.parquet") == []
    assert s.rows("DS104", "diabetes.parquet") == []
    assert s.rows("DS104", "bad.parquet") == [7, 2999]
    assert s.source("diabetes.parquet")["task"] == "regression"


def test_overflow_warnings_and_float16_count(scan_to, tmp_path):
    d = tmp_path / "d"
    d.mkdir()
    x = np.array([1.0, 2e18, -3e20, 5.0, 1e39, 70000.0, -65505.0, 65504.0])
    pq.write_table(pa.table({"x": x, "z": np.arange(8.0) / 8, "label": [0, 1] * 4}), d / "o.parquet")
    s = scan_to(d)
    assert s.rows("DS105") == [1, 2]
    assert s.rows("DS113") == [4]
    f16 = s.findings[s.findings.code == "DS106"]
    assert f16["column"].tolist() == ["x"]
    # kept rows beyond 65504: 2e18, -3e20, 70000, -65505 (1e39 is quarantined)
    assert "has 4 value(s)" in f16["message"].iloc[0]


def test_constant_and_scale(scan_to, tmp_path):
    rng = np.random.default_rng(2)
    d = tmp_path / "d"
    d.mkdir()
    n = 300
    pq.write_table(pa.table({
        "a": rng.normal(size=n), "b": rng.normal(size=n), "c": rng.normal(size=n),
        "tiny": rng.normal(size=n) * 1e-7, "px": rng.integers(0, 256, n), "k": np.full(n, 3.0),
        "label": rng.integers(0, 2, n)}), d / "s.parquet")
    s = scan_to(d)
    assert sorted(s.findings[s.findings.code == "DS107"]["column"]) == ["px", "tiny"]
    assert s.findings[s.findings.code == "DS108"]["column"].tolist() == ["k"]


def test_duplicates_across_shards_and_workers(scan_to, tmp_path):
    rng = np.random.default_rng(3)
    n = 5000
    x = rng.normal(size=(n, 3))
    y = rng.integers(0, 4, n)
    x[4000] = x[10]
    y[4000] = y[10]  # exact duplicate, in another shard
    x[4500] = x[20]
    y[4500] = (y[20] + 1) % 4  # same features, other label
    d = tmp_path / "d"
    d.mkdir()
    pq.write_table(pa.table({"a": x[:, 0], "b": x[:, 1], "c": x[:, 2], "label": y}), d / "dup.parquet",
                   row_group_size=1000)
    s1 = scan_to(d, workers=2, shard_rows=1000, batch_rows=700)
    s2 = scan_to(d)
    for s in (s1, s2):
        assert s.rows("DS110") == [4000]
        assert s.rows("DS111") == [4500]
    c1, c2 = s1.clean("dup.parquet"), s2.clean("dup.parquet")
    assert c1.equals(c2)
    assert c1.column("_row").to_pylist() == list(range(n))
    assert json.dumps(s1.stats, sort_keys=True) == json.dumps(s2.stats, sort_keys=True) or all(
        math.isclose(s1.stats["tables"]["dup.parquet"]["columns"][k]["std"],
                     s2.stats["tables"]["dup.parquet"]["columns"][k]["std"], rel_tol=1e-12)
        for k in "abc")


def test_ragged_rows_keep_numbering(scan_to, tmp_path):
    write(tmp_path / "d" / "r.csv", "a,b,label\n1,2,0\n3,4\n5,6,1,9\n7,8,1\n9,10,0\n")
    s = scan_to(tmp_path / "d")
    assert s.rows("DS004") == [1, 2]
    assert s.clean("r.csv").column("_row").to_pylist() == [0, 3, 4]
    src = s.source("r.csv")
    assert (src["seen"], src["kept"], src["quarantined"]) == (5, 3, 2)


def test_encodings(scan_to, tmp_path):
    d = tmp_path / "d"
    write(d / "u16.csv", "name,x,label\nÅsa,1,0\nÉmile,2,1\n", "utf-16")
    write(d / "bom.csv", "\ufeffname,x,label\nÅsa,1,0\n", "utf-8")
    write(d / "l1.csv", "name,x,label\nÅsa,1,0\n", "latin-1")
    s = scan_to(d)
    assert s.codes("bom.csv") == []
    assert s.codes("u16.csv") == ["DS003"]
    assert s.codes("l1.csv") == ["DS003"]
    assert s.clean("l1.csv").column("name").to_pylist() == ["Åsa"]
    assert s.clean("u16.csv").column("name").to_pylist() == ["Åsa", "Émile"]
    assert s.clean("bom.csv").schema.names[0] == "name"


def test_semicolon_and_tsv(scan_to, tmp_path):
    d = tmp_path / "d"
    write(d / "semi.csv", "a;b;label\n1;2;0\n3;nan;1\n")
    write(d / "t.tsv", "a\tb\tlabel\n1\t2\t0\n3\tinf\t1\n")
    s = scan_to(d)
    assert s.rows("DS101", "semi.csv") == [1]
    assert s.rows("DS101", "t.tsv") == [1]


def test_mixed_types_in_numeric_column(scan_to, tmp_path):
    body = "".join(f"{i},{i % 2}\n" for i in range(30))
    write(tmp_path / "d" / "m.csv", "age,label\n" + body + "?,1\nunknown,0\n")
    s = scan_to(tmp_path / "d")
    assert s.rows("DS109") == [30, 31]
    assert s.clean("m.csv").schema.field("age").type == pa.int64()


def test_text_column_stays_text(scan_to, tmp_path):
    write(tmp_path / "d" / "t.csv", "name,x,label\nann,1,0\nbob,2,1\ncid,3,0\n")
    s = scan_to(tmp_path / "d")
    assert s.codes() == []
    assert s.clean("t.csv").schema.field("name").type == pa.string()


def test_nested_column_skipped(scan_to, tmp_path):
    d = tmp_path / "d"
    d.mkdir()
    pq.write_table(pa.table({"v": [[1, 2], [3]], "x": [1.0, 2.0], "label": [0, 1]}), d / "n.parquet")
    s = scan_to(d)
    assert s.codes() == ["DS005"]
    assert s.findings.iloc[0]["column"] == "v"
    assert s.clean("n.parquet").column("v").to_pylist() == [[1, 2], [3]]


def test_jsonl_malformed_and_non_object(scan_to, tmp_path):
    write(tmp_path / "d" / "e.jsonl", '{"x": 1, "label": 0}\n\n{"x": 2, "label"\n[1, 2]\n{"x": NaN, "label": 1}\n'
          '{"x": 3.5, "label": 1}\n')
    s = scan_to(tmp_path / "d")
    assert s.rows("DS009") == [1, 2]
    assert s.rows("DS101") == [3]
    assert s.clean("e.jsonl").column("_row").to_pylist() == [0, 4]


def test_no_target_is_info(scan_to, tmp_path):
    write(tmp_path / "d" / "t.csv", "a,b\n1,2\n3,4\n")
    s = scan_to(tmp_path / "d")
    assert s.codes() == ["DS112"]
    assert s.findings.iloc[0]["severity"] == "info"
    assert s.result.passed


def test_target_option(scan_to, tmp_path):
    write(tmp_path / "d" / "t.csv", "a,price\n1,2\n3,\n")
    s = scan_to(tmp_path / "d", target="price")
    assert s.rows("DS102") == [1]


def test_empty_and_header_only_and_unreadable(scan_to, tmp_path):
    d = tmp_path / "d"
    write(d / "empty.csv", "")
    write(d / "header.csv", "a,b,label\n")
    write(d / "bad.parquet", "not parquet at all")
    write(d / "bad.feather", "nor arrow")
    s = scan_to(d)
    assert s.codes("empty.csv") == ["DS002"]
    assert s.codes("header.csv") == ["DS002"]
    assert s.codes("bad.parquet") == ["DS001"]
    assert s.codes("bad.feather") == ["DS001"]
    assert s.clean("header.csv").num_rows == 0
    assert not s.result.passed


def test_feather_and_gzip_csv(scan_to, tmp_path):
    import gzip

    import pyarrow.feather as feather

    d = tmp_path / "d"
    d.mkdir()
    feather.write_feather(pa.table({"x": [1.0, float("nan")], "label": [0, 1]}), d / "f.feather")
    with gzip.open(d / "g.csv.gz", "wt") as f:
        f.write("x,label\n1,0\ninf,1\n")
    s = scan_to(d)
    assert s.rows("DS101", "f.feather") == [1]
    assert s.rows("DS101", "g.csv.gz") == [1]


def test_task_override_and_integer_regression(scan_to, tmp_path):
    write(tmp_path / "d" / "t.csv", "x,y\n" + "".join(f"{i},{i * 3}\n" for i in range(100)))
    s = scan_to(tmp_path / "d", task="regression")
    assert s.source("t.csv")["task"] == "regression"
    s = scan_to(tmp_path / "d")
    assert s.source("t.csv")["task"] == "regression"  # 100 distinct ids in 100 rows: not classes


def test_select_ignore_and_severity_override(scan_to, tmp_path):
    write(tmp_path / "d" / "t.csv", "a,label\n1,0\nnan,1\n1,0\n2,1\n")
    s = scan_to(tmp_path / "d", ignore=["DS110"])
    assert s.codes() == ["DS101"]
    s = scan_to(tmp_path / "d", severity={"DS101": "warning"})
    assert s.quarantine.empty
    assert s.clean("t.csv").num_rows == 4
    assert s.result.passed
    s = scan_to(tmp_path / "d", select=["DS11"])
    assert s.codes() == ["DS110"]


def test_duplicate_and_reserved_column_names(scan_to, tmp_path):
    d = tmp_path / "d"
    write(d / "dup.csv", "a,a,label\n1,nan,0\n3,4,1\n")
    pq.write_table(pa.table({"x": [1.0, 2.0], "_row": [5, 6], "label": [0, 1]}), d / "r.parquet")
    s = scan_to(d)
    assert s.codes("dup.csv") == ["DS010", "DS101"]
    assert s.findings[s.findings.code == "DS101"]["column"].tolist() == ["a.1"]
    assert s.clean("dup.csv").column_names == ["a", "a.1", "label", "_row"]
    assert s.codes("r.parquet") == ["DS010"]
    assert s.clean("r.parquet").column_names == ["x", "_row.1", "label", "_row"]
    assert s.clean("r.parquet").column("_row.1").to_pylist() == [5, 6]


def test_nasty_files_are_findings_not_crashes(scan_to, tmp_path):
    d = tmp_path / "d"
    d.mkdir()
    (d / "garbage.csv").write_bytes(bytes(range(256)) * 20)
    (d / "u16.csv").write_bytes("a,label\n1,0\nnan,1\n".encode("utf-16-le"))
    (d / "arr.jsonl").write_text("[1, 2]\n")
    (d / "blank.jsonl").write_text("\n\n")
    write(d / "quoted.csv", 'a,b,label\n"x\ny",2,0\n3,4,1\n')
    pq.write_table(pa.table({"x": pa.array([], pa.float64()), "label": pa.array([], pa.int64())}),
                   d / "zero.parquet")
    s = scan_to(d)
    assert s.codes("garbage.csv") == ["DS001"]
    assert s.codes("u16.csv") == ["DS003", "DS101"]
    assert s.rows("DS009", "arr.jsonl") == [0]
    assert s.codes("blank.jsonl") == ["DS002"]
    assert s.codes("quoted.csv") == []
    assert s.clean("quoted.csv").column("a").to_pylist() == ["x\ny", "3"]
    assert s.codes("zero.parquet") == ["DS002"]
    for src in s.report["sources"]:
        assert src["kept"] + src["quarantined"] == src["seen"]


def test_csv_fast_path_and_fallback_agree(scan_to, tmp_path, monkeypatch):
    """Arrow parses clean CSV columns natively; a later block that breaks the type
    inferred from the first falls back to reading strings, with identical findings."""
    from datasan.sources.tables import read

    lines = ["a,b,c,label"]
    for i in range(300):
        a = "?" if i == 250 else ("" if i == 280 else str(i))
        b = "nan" if i == 270 else f"{i * 0.5:.1f}"
        lines.append(f"{a},{b},{i % 7 * 1.5},{i % 3}")
    write(tmp_path / "d" / "t.csv", "\n".join(lines) + "\n")
    expected = {"DS109": [250], "DS101": [270, 280]}
    small = scan_to(tmp_path / "d")  # one block: 'a' is read as text, 'c' natively
    monkeypatch.setattr(read, "CSV_BLOCK_SIZE", 512)  # many blocks: 'a' breaks int64 in a later one
    blocks = scan_to(tmp_path / "d")
    for s in (small, blocks):
        assert {c: s.rows(c) for c in ("DS109", "DS101")} == expected
        msgs = s.findings[s.findings.code == "DS101"].set_index("row")["message"]
        assert msgs[270] == "Feature 'b' is NaN."
        assert msgs[280] == "Feature 'a' is missing (empty cell)."
        clean = s.clean("t.csv")
        assert clean.schema.field("a").type == pa.int64()
        assert clean.schema.field("c").type == pa.float64()
        assert clean.num_rows == 297
    assert small.clean("t.csv").equals(blocks.clean("t.csv"))
    for col, st in small.stats["tables"]["t.csv"]["columns"].items():
        other = blocks.stats["tables"]["t.csv"]["columns"][col]
        assert st.pop("sketch") == other.pop("sketch"), col  # integer bucket counts: exact
        assert st == pytest.approx(other, rel=1e-12), col  # merged over other batch splits


def test_duplicate_made_an_error_leaves_clean_file_and_stats(scan_to, tmp_path):
    write(tmp_path / "d" / "t.csv", "a,label\n1,0\n2,1\n1,0\n3,1\n5,0\n")
    s = scan_to(tmp_path / "d", severity={"DS110": "error"})
    assert s.quarantine["row"].tolist() == [2]
    assert s.quarantine["codes"].tolist() == ["DS110"]
    clean = s.clean("t.csv")
    assert clean.column("_row").to_pylist() == [0, 1, 3, 4]
    st = s.stats["tables"]["t.csv"]
    assert st["rows"] == 4
    assert st["columns"]["a"]["mean"] == pytest.approx(11 / 4)
    assert s.stats["labels"]["t.csv"] == {"0": 2, "1": 2}
    src = s.source("t.csv")
    assert (src["seen"], src["kept"], src["quarantined"]) == (5, 4, 1)
