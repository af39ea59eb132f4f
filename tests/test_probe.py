"""The probe (DS401-DS406): samples that only a network shows to be bad.

Tiny data and tiny networks; every test asserts rule codes and exact rows.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

import datasan
from datasan.stats import Moments

REPO = Path(__file__).resolve().parent.parent


def _regression(n=400, features=6, seed=0):
    rng = np.random.default_rng(seed)
    cols = {f"f{j}": rng.normal(size=n) for j in range(features)}
    cols["y"] = rng.normal(size=n)
    return cols


def _write(path: Path, cols: dict) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    pq.write_table(pa.table(cols), path)
    return path


def _scan(data: Path, out: Path, **opts):
    opts.setdefault("workers", 1)
    return datasan.scan(data, out_dir=str(out), **opts)


def _codes(result, code):
    f = result.findings_table.to_pydict()
    return sorted(r for c, r in zip(f["code"], f["row"]) if c == code)


# --------------------------------------------------------------------------- tables

def test_probe_finds_rows_static_checks_keep_and_rewrites_clean_file_and_stats(tmp_path):
    cols = _regression()
    cols["f2"][[11, 250]] = 1e37  # finite in float32, but its squared error is not
    _write(tmp_path / "d" / "reg.parquet", cols)
    static = _scan(tmp_path / "d", tmp_path / "o0", probe=False)
    assert len(static.quarantine_table) == 0  # DS105 is a warning: the rows reach the probe
    assert _codes(static, "DS105") == [11, 250]  # a warning: the static checks keep the rows
    res = _scan(tmp_path / "d", tmp_path / "o1")
    q = res.quarantine_table.to_pydict()
    assert q["sample"] == ["reg.parquet#11", "reg.parquet#250"]
    assert q["codes"] == ["DS401", "DS401"]
    f = res.findings_table.to_pydict()
    i = f["code"].index("DS401")
    assert f["severity"][i] == "error" and f["column"][i] == "f2"
    assert "the loss itself went non-finite" in f["message"][i]
    # the clean file lost exactly those rows, in order, with _row
    clean = pq.read_table(tmp_path / "o1" / "clean" / "reg.parquet.parquet")
    rows = clean.column("_row").to_pylist()
    assert rows == [r for r in range(400) if r not in (11, 250)]
    assert clean.schema.names == [*cols, "_row"]
    # stats over the 398 kept rows, exactly
    stats = json.loads((tmp_path / "o1" / "stats.json").read_text())["tables"]["reg.parquet"]
    assert stats["rows"] == 398
    keep = np.asarray(rows)
    for name in [*cols]:
        want = Moments.of(np.asarray(cols[name])[keep]).as_json()
        got = stats["columns"][name]
        assert got["count"] == want["count"] == 398
        assert got["min"] == want["min"] and got["max"] == want["max"]
        assert got["sketch"] == want["sketch"]  # recomputed over the rows the probe kept
        assert got["mean"] == pytest.approx(want["mean"], rel=1e-12, abs=1e-15)
        assert got["std"] == pytest.approx(want["std"], rel=1e-12)
    rep = res.report
    assert rep["kept"] == 398 and rep["quarantined"] == 2
    probe = rep["probe"]
    assert probe["ran"] is True and probe["device"] == "cpu" and probe["samples_probed"] == 400
    assert probe["stages"] == ["forward-float32", "gradient-float32", "autocast-float16", "autocast-bfloat16",
                               "extreme-loss"]
    src = probe["sources"]["reg.parquet"]
    assert src["probed"] == 400 and src["flagged"] == {"DS401": 2} and src["quarantined"] == 2
    assert "Linear" in src["network"] and probe["seconds"] > 0


def test_classification_labels_recomputed_after_quarantine(tmp_path):
    rng = np.random.default_rng(1)
    n = 300
    cols = {f"f{j}": rng.normal(size=n) for j in range(4)}
    labels = rng.integers(0, 3, size=n)
    for j in range(4):
        cols[f"f{j}"][7] = 3e38  # every feature at the top of float32: the logits overflow
    cols["label"] = labels
    import pandas as pd

    (tmp_path / "d").mkdir()
    pd.DataFrame(cols).to_csv(tmp_path / "d" / "cls.csv", index=False)
    res = _scan(tmp_path / "d", tmp_path / "o")
    assert res.quarantine_table.column("sample").to_pylist() == ["cls.csv#7"]
    assert res.quarantine_table.column("codes").to_pylist() == ["DS401"]
    stats = json.loads((tmp_path / "o" / "stats.json").read_text())
    want = {str(k): int(v) for k, v in zip(*np.unique(np.delete(labels, 7), return_counts=True))}
    assert stats["labels"]["cls.csv"] == want
    assert stats["tables"]["cls.csv"]["rows"] == 299
    assert stats["tables"]["cls.csv"]["columns"]["f0"]["max"] == float(np.delete(cols["f0"], 7).max())


def test_float16_only_failure_is_a_warning_and_keeps_the_row(tmp_path):
    cols = _regression()
    cols["f1"][33] = 70000.0  # fine in float32, inf in float16 (> 65504)
    _write(tmp_path / "d" / "amp.parquet", cols)
    res = _scan(tmp_path / "d", tmp_path / "o")
    assert _codes(res, "DS403") == [33]
    assert _codes(res, "DS401") == [] and _codes(res, "DS404") == []
    f = res.findings_table.to_pydict()
    assert f["severity"][f["code"].index("DS403")] == "warning"
    assert len(res.quarantine_table) == 0 and res.report["kept"] == 400
    # a config may make it an error: then the row is quarantined and leaves the clean file
    # (small batches: the first error sits in the third batch, so the two clean batches
    # before it are replayed into the rewritten file)
    strict = _scan(tmp_path / "d", tmp_path / "o2", severity={"DS403": "error"}, probe_batch_size=16)
    assert strict.quarantine_table.column("sample").to_pylist() == ["amp.parquet#33"]
    clean = pq.read_table(tmp_path / "o2" / "clean" / "amp.parquet.parquet")
    assert clean.column("_row").to_pylist() == [r for r in range(400) if r != 33]
    stats = json.loads((tmp_path / "o2" / "stats.json").read_text())["tables"]["amp.parquet"]
    assert stats["rows"] == 399 and stats["columns"]["f1"]["count"] == 399
    assert stats["columns"]["f1"]["max"] == float(np.delete(cols["f1"], 33).max())
    # and ignoring the probe's rules keeps everything
    off = _scan(tmp_path / "d", tmp_path / "o3", ignore=["DS4"])
    assert _codes(off, "DS403") == [] and off.report["kept"] == 400


def test_bfloat16_only_failure():
    import torch

    model = torch.nn.Linear(1, 1)
    with torch.no_grad():
        model.weight.fill_(1e-38)
        model.bias.zero_()
    x = np.ones((50, 1), dtype=np.float32)
    x[9, 0] = 3.4e38  # rounds to inf in bfloat16 (largest finite 3.39e38), finite in float32
    y = np.ones(50, dtype=np.float32)
    # L1 keeps the gradient (sign(e) * x = 3.4e38) finite in float32
    r = datasan.probe((x, y), model=model, loss_fn=lambda out, t: (out.squeeze(1) - t).abs())
    assert r.by_code == {"DS403": [9], "DS404": [9]}  # float16 overflows too
    assert r.errors == [] and r.warnings == [9]


def test_gradient_only_failure_user_loss():
    import torch

    model = torch.nn.Linear(3, 1)
    with torch.no_grad():
        model.weight.zero_()
        model.bias.zero_()

    def root_abs_error(out, y):  # sqrt(|e|): finite loss, NaN gradient where e == 0
        return (out.squeeze(1) - y).abs().sqrt()

    rng = np.random.default_rng(0)
    x = rng.normal(size=(40, 3)).astype(np.float32)
    y = rng.uniform(1, 2, size=40).astype(np.float32)
    y[[4, 31]] = 0.0
    r = datasan.probe((x, y), model=model, loss_fn=root_abs_error, batch_size=16)
    assert r.by_code == {"DS402": [4, 31]}
    assert r.errors == [4, 31]


def test_extreme_loss_is_a_warning():
    rng = np.random.default_rng(3)
    x = rng.normal(size=(500, 5)).astype(np.float32)
    y = rng.normal(size=500).astype(np.float32)
    y[123] = 1e7
    r = datasan.probe((x, y))
    assert r.by_code == {"DS405": [123]}
    assert r.errors == [] and r.warnings == [123]


def _bn_factory_module(tmp_path: Path) -> str:
    (tmp_path / "mods").mkdir(exist_ok=True)
    (tmp_path / "mods" / "bn_probe_models.py").write_text(textwrap.dedent("""
        import torch

        def bn_net(input_shape, num_outputs, task):
            lin = torch.nn.Linear(input_shape[0], 8)
            with torch.no_grad():
                lin.weight.fill_(0.5)
            return torch.nn.Sequential(lin, torch.nn.BatchNorm1d(8), torch.nn.ReLU(),
                                       torch.nn.Linear(8, num_outputs)).train()
    """))
    return str(tmp_path / "mods")


def test_batchnorm_train_mode_bisection_finds_exactly_the_bad_rows(tmp_path, monkeypatch):
    monkeypatch.syspath_prepend(_bn_factory_module(tmp_path))
    cols = _regression(n=200, features=4)
    for r in (13, 150):
        for j in range(4):
            cols[f"f{j}"][r] = 3e38  # the first layer's sum overflows: the batch mean is inf
    _write(tmp_path / "d" / "bn.parquet", cols)
    res = _scan(tmp_path / "d", tmp_path / "o", probe_model="bn_probe_models:bn_net", probe_batch_size=64)
    assert res.quarantine_table.column("sample").to_pylist() == ["bn.parquet#13", "bn.parquet#150"]
    src = res.report["probe"]["sources"]["bn.parquet"]
    assert src["coupled"] is True
    assert src["flagged"]["DS401"] == 2
    assert 0 < src["bisection_evaluations"] < 200  # far fewer than one run per row
    assert "user model bn_probe_models:bn_net" == src["network"]


def test_batchnorm_api_restores_running_stats():
    import torch

    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Linear(2, 4), torch.nn.BatchNorm1d(4), torch.nn.Linear(4, 1)).train()
    with torch.no_grad():
        model[0].weight.fill_(1.0)
    before = model[1].running_mean.clone()
    x = np.random.default_rng(0).normal(size=(64, 2)).astype(np.float32)
    x[[5, 40, 41]] = 3e38
    r = datasan.probe((x, np.zeros(64, np.float32)), model=model, batch_size=32)
    assert r.by_code["DS401"] == [5, 40, 41]
    assert r.report["coupled"] is True
    assert torch.equal(model[1].running_mean, before)


# --------------------------------------------------------------------------- skips

def test_no_numeric_features_or_no_target_skips_with_a_reason(tmp_path):
    import pandas as pd

    d = tmp_path / "d"
    d.mkdir()
    pd.DataFrame({"name": ["a", "b", "c"], "label": [0, 1, 0]}).to_csv(d / "names.csv", index=False)
    pd.DataFrame({"a": [1.0, 2.0, 3.0], "b": [4.0, 5.0, 7.0]}).to_csv(d / "notarget.csv", index=False)
    res = _scan(d, tmp_path / "o")
    probe = res.report["probe"]["sources"]
    assert probe["names.csv"]["skipped"] == "no numeric feature columns to feed a network"
    assert probe["notarget.csv"]["skipped"].startswith("no target column")
    f = res.findings_table.to_pydict()
    skipped = sorted(s for c, s in zip(f["code"], f["source"]) if c == "DS406")
    assert skipped == ["names.csv", "notarget.csv"]
    assert f["severity"][f["code"].index("DS406")] == "info"
    assert res.report["kept"] == 6 and res.passed


# --------------------------------------------------------------------------- images

def _image_outcome(tmp_path: Path, labels: list | None):
    from PIL import Image

    from datasan.findings import FindingBuffer
    from datasan.sources.base import Source, SourceOutcome

    root = tmp_path / "imgs"
    rng = np.random.default_rng(0)
    samples = []
    for i in range(6):
        rel = f"set/{'cat' if i % 2 else 'dog'}/{i}.png"
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        Image.fromarray(rng.integers(0, 256, size=(12, 10, 3), dtype=np.uint8)).save(root / rel)
        samples.append(rel)
    # a float TIFF whose pixels are finite (no non-finite-pixel error) but huge
    rel = "set/cat/huge.tif"
    Image.fromarray((rng.uniform(1, 3, size=(16, 16)) * 1e38).astype(np.float32), mode="F").save(root / rel)
    samples.append(rel)
    if labels is None:
        labs = [None] * len(samples)
    else:
        labs = [s.split("/")[1] for s in samples]
    index = pa.table({"sample": samples, "label": pa.array(labs, type=pa.string())})
    oc = SourceOutcome(Source("images", "set", []), "images", len(samples), len(samples), FindingBuffer(),
                       index=index, stats={"images": {"set": {}}, "labels": {"set": {}}})
    return root, oc


def _ctx(root: Path, tmp_path: Path, **opts):
    from datasan.engine import LocalEngine
    from datasan.options import ScanOptions
    from datasan.sources.base import ScanContext

    staging = tmp_path / "staging"
    (staging / "clean").mkdir(parents=True, exist_ok=True)
    return ScanContext(root=str(root), options=ScanOptions(workers=1, **opts), engine=LocalEngine(1),
                       staging=str(staging))


def test_image_probe_quarantines_a_finite_but_huge_float_image(tmp_path, monkeypatch):
    from datasan.pipeline import build_quarantine
    from datasan.probe.run import probe_outcomes

    # the image kind's recompute_stats, stubbed: this outcome is built by hand, without pixel sums
    calls = []
    monkeypatch.setattr("datasan.sources.images.recompute_stats",
                        lambda outcome, ctx: calls.append(outcome.index.num_rows))
    root, oc = _image_outcome(tmp_path, labels=True)
    rep = probe_outcomes([oc], _ctx(root, tmp_path))
    assert calls == [6] and rep["sources"]["set"]["stats_recomputed"] is True
    src = rep["sources"]["set"]
    assert src["probed"] == 7 and src["outputs"] == 2 and src["flagged"]["DS401"] == 1
    assert oc.index.column("sample").to_pylist() == [f"set/{'cat' if i % 2 else 'dog'}/{i}.png" for i in range(6)]
    assert oc.kept == 6
    per_source, q = build_quarantine([oc])
    assert q.column("sample").to_pylist() == ["set/cat/huge.tif"]
    assert q.column("codes").to_pylist() == ["DS401"]
    assert oc.kept + per_source["set"] == oc.seen


def test_a_kind_that_cannot_drop_samples_is_skipped_with_DS406(tmp_path):
    from datasan.probe.run import probe_outcomes
    from datasan.sources.images import ImageKind

    class FeedOnly:
        """Gives the probe batches but cannot take samples out of its outputs."""

        name = "images"
        probe_feed = ImageKind.probe_feed

    root, oc = _image_outcome(tmp_path, labels=True)
    rep = probe_outcomes([oc], _ctx(root, tmp_path), kinds=[FeedOnly()])
    src = rep["sources"]["set"]
    assert src == {"skipped": "the probe cannot take samples out of images sources, so it could not "
                              "quarantine what it finds"}
    assert rep["samples_probed"] == 0 and oc.kept == 7
    assert oc.findings.column("code") == ["DS406"]


def test_a_kind_without_the_probe_capability_is_skipped_with_DS406(tmp_path):
    from datasan.probe.run import probe_outcomes

    class Audio:
        name = "audio"

    root, oc = _image_outcome(tmp_path, labels=True)
    oc.source.kind = "audio"
    rep = probe_outcomes([oc], _ctx(root, tmp_path), kinds=[Audio()])
    assert rep["sources"]["set"] == {
        "skipped": "the probe does not run on audio sources (its kind gives the probe no batches)"}
    assert oc.findings.column("code") == ["DS406"] and oc.kept == 7


def test_unlabeled_images_are_skipped_with_a_reason(tmp_path):
    from datasan.probe.run import probe_outcomes

    root, oc = _image_outcome(tmp_path, labels=None)
    rep = probe_outcomes([oc], _ctx(root, tmp_path))
    assert rep["sources"]["set"]["skipped"] == "the images have no labels, so there is no loss to compute"
    assert oc.kept == 7
    assert [f.code for f in oc.findings] == ["DS406"]


# --------------------------------------------------------------------------- determinism, CLI, imports

def test_deterministic_for_a_seed(tmp_path):
    cols = _regression(n=300)
    cols["f0"][[3, 77]] = 1e37
    cols["f4"][100] = 70000.0
    cols["y"][200] = 1e8
    _write(tmp_path / "d" / "t.parquet", cols)
    a = _scan(tmp_path / "d", tmp_path / "a", probe_seed=7)
    b = _scan(tmp_path / "d", tmp_path / "b", probe_seed=7)
    assert a.findings_table.equals(b.findings_table)
    assert _codes(a, "DS401") == [3, 77] and _codes(a, "DS403") == [100]
    x = np.stack([cols[f"f{j}"] for j in range(6)], axis=1)
    r1 = datasan.probe((x, cols["y"]), seed=3)
    r2 = datasan.probe((x, cols["y"]), seed=3)
    assert [f.message for f in r1.findings] == [f.message for f in r2.findings]
    assert r1.by_code == r2.by_code


def test_cli_probe_options(tmp_path):
    from typer.testing import CliRunner

    from datasan.cli import app

    cols = _regression(n=100)
    cols["f3"][5] = 1e37
    _write(tmp_path / "d" / "t.parquet", cols)
    run = CliRunner().invoke
    r = run(app, ["scan", str(tmp_path / "d"), "--out", str(tmp_path / "o"), "--device", "cpu",
                  "--probe-batch-size", "7", "--probe-seed", "1", "--workers", "1", "--format", "json"])
    assert r.exit_code == 1, r.output
    rep = json.loads(r.stdout)
    assert rep["findings"]["by_code"]["DS401"] == 1 and rep["probe"]["seed"] == 1
    for bad in (["--probe-batch-size", "0"], ["--device", "tpu"], ["--probe-model", "nosuchmodule_xyz:f"]):
        r = run(app, ["scan", str(tmp_path / "d"), "--out", str(tmp_path / "o2"), "--workers", "1", *bad])
        assert r.exit_code == 2, (bad, r.output)


def test_torch_is_imported_only_when_the_probe_runs(tmp_path):
    _write(tmp_path / "d" / "t.parquet", _regression(n=20))
    code = textwrap.dedent(f"""
        import sys, datasan
        assert "torch" not in sys.modules
        datasan.scan({str(tmp_path / 'd')!r}, probe=False, workers=1)
        assert "torch" not in sys.modules
        assert callable(datasan.probe)
        r = datasan.scan({str(tmp_path / 'd')!r}, workers=1)
        assert "torch" in sys.modules and r.report["probe"]["ran"]
        assert callable(datasan.probe)  # still callable once the package is imported
    """)
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env)
    assert proc.returncode == 0, proc.stderr


def test_sample_data_probe(tmp_path):
    res = _scan(REPO / "sample_data" / "probe", tmp_path / "o")
    assert _codes(res, "DS401") == [17]
    assert _codes(res, "DS403") == [58, 120]
    assert _codes(res, "DS405") == [120]
    assert res.quarantine_table.column("sample").to_pylist() == ["sensor_readings.csv#17"]
    assert res.report["kept"] == 199
    # DS405 made an error by config: decided over the whole file, after the first rewrite
    strict = _scan(REPO / "sample_data" / "probe", tmp_path / "o2", severity={"DS405": "error"})
    assert strict.quarantine_table.column("sample").to_pylist() == ["sensor_readings.csv#17",
                                                                     "sensor_readings.csv#120"]
    clean = pq.read_table(tmp_path / "o2" / "clean" / "sensor_readings.csv.parquet")
    assert clean.column("_row").to_pylist() == [r for r in range(200) if r not in (17, 120)]
    stats = json.loads((tmp_path / "o2" / "stats.json").read_text())["tables"]["sensor_readings.csv"]
    assert stats["rows"] == 198 and stats["columns"]["x1"]["count"] == 198
    assert stats["columns"]["x1"]["max"] < 10


def test_api_takes_dataframes_and_datasets():
    import pandas as pd
    import torch

    rng = np.random.default_rng(4)
    df = pd.DataFrame({"a": rng.normal(size=60), "b": rng.normal(size=60), "label": rng.integers(0, 3, size=60)})
    df.loc[8, ["a", "b"]] = 3e38
    r = datasan.probe(df)
    assert r.report["task"] == "classification" and r.errors == [8] and r.by_code["DS401"] == [8]
    data = [(torch.tensor([float(i), 1.0]), torch.tensor(0.5)) for i in range(30)]
    data[12] = (torch.tensor([1e37, 1.0]), torch.tensor(0.5))
    r = datasan.probe(data)
    assert r.report["task"] == "regression" and r.by_code == {"DS401": [12]}


def test_a_failing_user_model_is_a_skip_not_a_crash(tmp_path, monkeypatch):
    (tmp_path / "mods").mkdir()
    (tmp_path / "mods" / "broken_probe_models.py").write_text(
        "import torch\n\ndef wrong_width(input_shape, num_outputs, task):\n"
        "    return torch.nn.Linear(input_shape[0] + 1, num_outputs)\n")
    monkeypatch.syspath_prepend(str(tmp_path / "mods"))
    _write(tmp_path / "d" / "t.parquet", _regression(n=30))
    res = _scan(tmp_path / "d", tmp_path / "o", probe_model="broken_probe_models:wrong_width")
    src = res.report["probe"]["sources"]["t.parquet"]
    assert src["skipped"].startswith("the probe model failed: RuntimeError")
    assert _codes(res, "DS406") == [None] and res.report["kept"] == 30


def test_a_huge_class_id_does_not_size_the_network(tmp_path):
    # found by the fuzz harness: one row labelled 36997811 built a 37-million-output network
    # (50 s, and with a larger id the process ran out of memory)
    from datasan.sources.tables.capabilities import LabelMap

    (tmp_path / "d").mkdir()
    (tmp_path / "d" / "t.csv").write_text("f0,label\n0.0,36997811.0\n")
    r = _scan(tmp_path / "d", tmp_path / "out")
    probe = r.report["probe"]["sources"]["t.csv"]
    assert probe["outputs"] == 1 and probe["probed"] == 1
    assert LabelMap.build({"0": 5, "3": 1}, None) == LabelMap(num_classes=4, direct=True)
    assert LabelMap.build({"0": 5, "9": 1}, 10).direct is True
    assert LabelMap.build({"0": 5, "36997811": 1}, None) == LabelMap(
        num_classes=2, direct=False, ids={"0": 0, "36997811": 1})


# --------------------------------------------------------------------------- loss summaries
def test_loss_summary_is_the_same_however_the_batches_are_cut():
    from datasan.probe.losses import TOP_K, LossSummary, loss_column

    rng = np.random.default_rng(5)
    losses = rng.exponential(size=100)
    losses[[3, 50]] = np.nan  # flagged by a stage
    losses[[10, 20]] = 7.5  # a tie among the top: the lower key first
    keys = np.arange(1000, 1100)
    summaries = []
    for cuts in ([100], [1, 99], [37, 13, 50]):
        s, start = LossSummary(), 0
        for n in cuts:
            s.add(losses[start:start + n], keys[start:start + n])
            start += n
        summaries.append(s.as_json(lambda k: f"t.csv#{k - 1000}"))
    got = summaries[0]
    for other in summaries[1:]:
        # counts, sketch, extremes and the top exactly; moments up to float rounding
        assert {k: v for k, v in other.items() if k not in ("mean", "std")} == \
            {k: v for k, v in got.items() if k not in ("mean", "std")}
        assert (other["mean"], other["std"]) == pytest.approx((got["mean"], got["std"]), rel=1e-12)
    assert got["count"] == 98 and got["non_finite"] == 2 and sum(got["sketch"]["count"]) == 98
    finite = np.sort(losses[np.isfinite(losses)])[::-1]
    assert [t["loss"] for t in got["top"]] == finite[:TOP_K].tolist()
    assert [t["sample"] for t in got["top"][:2]] == ["t.csv#10", "t.csv#20"]
    assert got["max"] == 7.5 and "nan" not in got and "nulls" not in got
    looked_up = loss_column(losses, keys, [1010, 1003, 5, 1099])
    assert looked_up[0] == 7.5 and np.isnan(looked_up[1]) and np.isnan(looked_up[2])
    assert looked_up[3] == losses[99]


def test_probe_report_keeps_the_loss_distribution_and_the_top_losses(tmp_path):
    cols = _regression(n=300, features=4, seed=2)
    cols["y"][17] = 8.0  # the highest loss by far (not so far that DS104 takes the row first)
    cols["f1"][[40, 41]] = 1e37  # squared error overflows float32: DS401, no loss
    _write(tmp_path / "d" / "reg.parquet", cols)
    res = _scan(tmp_path / "d", tmp_path / "o")
    src = res.report["probe"]["sources"]["reg.parquet"]
    loss = src["loss"]
    assert src["flagged"]["DS401"] == 2
    assert loss["count"] == 298 and loss["non_finite"] == 2 and sum(loss["sketch"]["count"]) == 298
    assert len(loss["top"]) == 10 and loss["top"][0]["sample"] == "reg.parquet#17"
    assert loss["top"][0]["loss"] == loss["max"]
    assert [t["loss"] for t in loss["top"]] == sorted((t["loss"] for t in loss["top"]), reverse=True)
    assert not {"reg.parquet#40", "reg.parquet#41"} & {t["sample"] for t in loss["top"]}


def test_index_gets_each_images_probe_loss(tmp_path, monkeypatch):
    from datasan.probe.run import probe_outcomes

    monkeypatch.setattr("datasan.sources.images.recompute_stats", lambda outcome, ctx: None)
    root, oc = _image_outcome(tmp_path, labels=True)
    rep = probe_outcomes([oc], _ctx(root, tmp_path))
    loss = rep["sources"]["set"]["loss"]
    assert (loss["count"], loss["non_finite"]) == (6, 1)
    col = oc.index.column("probe_loss").to_pylist()
    # the huge image left the index with the probe; the six kept have their finite losses
    assert len(col) == 6 and None not in col
    by_sample = dict(zip(oc.index.column("sample").to_pylist(), col))
    assert [by_sample[t["sample"]] for t in loss["top"]] == [t["loss"] for t in loss["top"]]
    assert sorted(col, reverse=True) == [t["loss"] for t in loss["top"]]
