"""The Python API: scan(), gate(), DataGateError, max_quarantine_fraction, baseline, lazy imports."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

import datasan
from datasan.errors import DataGateError, UsageError

CSV = "a,b,label\n1,2,0\nnan,3,1\n4,5,0\n6,inf,1\n7,8,0\n8,9,1\n10,11,0\n12,13,1\n14,15,0\n16,17,1\n"


@pytest.fixture
def data(tmp_path, monkeypatch):
    """A folder with one CSV of 10 rows, two of them non-finite (rows 1 and 3); cwd is tmp_path."""
    monkeypatch.chdir(tmp_path)
    d = tmp_path / "data"
    d.mkdir()
    (d / "t.csv").write_text(CSV)
    return d


def opts(**kw):
    return {"probe": False, "workers": 1, **kw}


def test_gate_passes_on_clean_data(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    d = tmp_path / "ok"
    d.mkdir()
    (d / "t.csv").write_text("a,label\n1,0\n2,1\n3,0\n")
    result = datasan.gate(d, **opts())
    assert result.passed
    assert result.report["passed"] is True
    assert result.report["gate"]["failing_findings"] == 0


def test_gate_fails_with_counts_and_sample_ids(data):
    with pytest.raises(DataGateError) as info:
        datasan.gate(data, **opts())
    msg = str(info.value)
    assert "DS101 non-finite-value: 2" in msg
    assert "t.csv#1" in msg and "t.csv#3" in msg
    assert "2 of 10 samples quarantined" in msg
    result = info.value.result
    assert not result.passed
    assert result.gate_failures() == 2
    assert result.findings["code"].tolist() == ["DS101", "DS101"]


def test_gate_fail_on_never_passes(data):
    result = datasan.gate(data, fail_on="never", **opts())
    assert result.passed and len(result.quarantine) == 2


def test_max_quarantine_fraction(data):
    # 2 of 10 = 0.2 quarantined: passes at 0.2 (the gate fails only when MORE is quarantined), fails at 0.1
    result = datasan.gate(data, max_quarantine_fraction=0.2, **opts())
    assert result.passed
    assert result.quarantined_fraction() == pytest.approx(0.2)
    assert sorted(result.quarantine["sample"]) == ["t.csv#1", "t.csv#3"]  # errors still quarantine
    with pytest.raises(DataGateError) as info:
        datasan.gate(data, max_quarantine_fraction=0.1, **opts())
    assert "more than max_quarantine_fraction 0.1" in str(info.value)
    assert info.value.result.report["gate"]["quarantined_fraction"] == pytest.approx(0.2)


def test_max_quarantine_fraction_out_of_range_is_usage_error(data):
    with pytest.raises(UsageError, match="max_quarantine_fraction"):
        datasan.scan(data, max_quarantine_fraction=1.5, **opts())


def test_baseline_only_new_findings_fail(data, tmp_path):
    first = datasan.scan(data, out_dir=tmp_path / "base", **opts())
    assert not first.passed
    # same data against its own baseline: passes (findings.parquet, report.json and folder all work)
    for b in ("base/findings.parquet", "base/report.json", "base"):
        again = datasan.scan(data, baseline=str(tmp_path / b), **opts())
        assert again.passed, b
        assert again.report["gate"]["new_findings"] == 0
        assert len(again.quarantine) == 2  # the baseline changes the gate, not the quarantine
    # a new bad row (row 5) is a regression: only it fails the gate
    (data / "t.csv").write_text(CSV.replace("8,9,1", "nan,9,1"))
    third = datasan.scan(data, baseline=str(tmp_path / "base"), **opts())
    assert not third.passed
    assert third.gate_failures() == 1
    assert third.findings.loc[third.gating_mask(), "sample"].tolist() == ["t.csv#5"]
    assert third.new_mask().count(True) == 1


def test_baseline_matches_by_key_not_message(data, tmp_path):
    import pyarrow as pa
    import pyarrow.parquet as pq

    first = datasan.scan(data, out_dir=tmp_path / "base", **opts())
    t = first.findings_table
    t = t.set_column(t.column_names.index("message"), "message", pa.array(["old text"] * t.num_rows))
    pq.write_table(t, tmp_path / "edited.parquet")
    assert datasan.scan(data, baseline=str(tmp_path / "edited.parquet"), **opts()).passed


def test_bad_baseline_is_usage_error(data, tmp_path):
    with pytest.raises(UsageError, match="no findings file"):
        datasan.scan(data, baseline=str(tmp_path / "nope.parquet"), **opts())
    (tmp_path / "junk.parquet").write_text("not parquet")
    with pytest.raises(UsageError, match="not a readable findings.parquet"):
        datasan.scan(data, baseline=str(tmp_path / "junk.parquet"), **opts())


def test_unknown_option_is_usage_error(data):
    with pytest.raises(UsageError, match="unknown option.*colour"):
        datasan.scan(data, colour="red", **opts())


def test_report_json_records_the_gate(data, tmp_path):
    datasan.scan(data, out_dir=tmp_path / "o", max_quarantine_fraction=0.5, **opts())
    rep = json.loads((tmp_path / "o" / "report.json").read_text())
    assert rep["passed"] is True
    assert rep["gate"] == {"fail_on": "error", "max_quarantine_fraction": 0.5, "quarantined_fraction": 0.2,
                           "max_total_quarantine_fraction": None,
                           "worst_source": {"source": "t.csv", "seen": 10, "quarantined": 2, "fraction": 0.2},
                           "baseline": False, "new_findings": 2, "failing_findings": 0}


def test_import_datasan_stays_light():
    code = ("import sys, datasan; datasan.gate; datasan.SafeDataset.__name__ if False else None; "
            "print(sorted(m for m in ('torch', 'pandas', 'numpy', 'pyarrow', 'PIL') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"


def test_lazy_exports():
    assert datasan.BadSampleError.__name__ == "BadSampleError"
    assert callable(datasan.safe_collate)
    assert datasan.SafeDataset.__name__ == "SafeDataset"
    assert datasan.SafeIterableDataset.__name__ == "SafeIterableDataset"
    with pytest.raises(AttributeError):
        datasan.no_such_thing
