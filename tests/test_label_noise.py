"""Suspect labels (DS407): confident learning, the bounded sample, and the scan's outputs."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq
import pytest

import datasan
from datasan.probe import label_votes as V
from datasan.probe import labels as L

FLIPPED = (7, 33)


def _blobs(root: Path, flips=FLIPPED, rows_per_class: int = 20, name: str = "blobs.csv") -> Path:
    """Three well-separated classes a, b, c; each row in ``flips`` is filed under the next class."""
    rng = np.random.default_rng(11)
    label = np.repeat(np.arange(3), rows_per_class)
    x = rng.normal(scale=0.3, size=(len(label), 2)) + np.array([[0, 0], [4, 0], [0, 4]])[label]
    for r in flips:
        label[r] = (label[r] + 1) % 3
    names = np.array(["a", "b", "c"])[label]
    root.mkdir(parents=True, exist_ok=True)
    (root / name).write_text("x0,x1,label\n" + "".join(f"{a:.5f},{b:.5f},{c}\n" for (a, b), c in zip(x, names)))
    return root


def _codes(result, code: str = "DS407") -> list[int]:
    f = result.findings
    return sorted(int(r) for r in f[f["code"] == code]["row"])


# ------------------------------------------------------------------ confident learning, by hand
def test_thresholds_joint_and_suspects_follow_the_paper():
    probs = np.array([[0.9, 0.1], [0.7, 0.3], [0.2, 0.8], [0.4, 0.6], [0.1, 0.9], [0.8, 0.2]])
    given = np.array([0, 0, 0, 1, 1, 1])
    v, th, joint = L.confident_learning(probs, given)
    # t_0 = mean p_0 over samples labelled 0 = (0.9 + 0.7 + 0.2) / 3; t_1 = (0.6 + 0.9 + 0.2) / 3
    assert th.t == pytest.approx([0.6, 1.7 / 3])
    # sample 2 (labelled 0): only p_1 = 0.8 >= t_1 -> cell (0, 1); sample 5 (labelled 1): p_0 = 0.8 -> (1, 0);
    # sample 1: p_0 = 0.7 >= 0.6 and p_1 = 0.3 < t_1 -> (0, 0)
    assert joint.c.tolist() == [[2, 1], [1, 2]]
    assert np.flatnonzero(v.suspect).tolist() == [2, 5]
    assert v.likely.tolist() == [0, 0, 1, 1, 1, 0]
    assert v.quality == pytest.approx([0.9, 0.7, 0.2, 0.6, 0.9, 0.2])
    assert joint.noise_rates(np.array([3, 3])) == pytest.approx([1 / 3, 1 / 3])


def test_a_sample_above_no_threshold_is_not_counted_nor_flagged():
    probs = np.array([[0.9, 0.1], [0.9, 0.1], [0.5, 0.5], [0.1, 0.9], [0.1, 0.9]])
    given = np.array([0, 0, 1, 1, 1])
    v, th, joint = L.confident_learning(probs, given)
    # t_1 = (0.5 + 0.9 + 0.9) / 3 = 0.767: sample 2 reaches neither threshold (t_0 = 0.9)
    assert v.counted.tolist() == [True, True, False, True, True]
    assert not v.suspect.any()
    assert joint.c.tolist() == [[2, 0], [0, 2]]


def test_a_label_far_under_its_threshold_is_suspect_without_entering_the_joint():
    probs = np.array([[0.9, 0.05, 0.05], [0.9, 0.05, 0.05], [0.1, 0.5, 0.4],
                      [0.05, 0.9, 0.05], [0.05, 0.9, 0.05],
                      [0.05, 0.05, 0.9], [0.05, 0.05, 0.9], [0.3, 0.45, 0.25]])
    given = np.array([0, 0, 0, 1, 1, 2, 2, 2])
    v, th, joint = L.confident_learning(probs, given)
    assert th.t == pytest.approx([1.9 / 3, 0.9, 2.05 / 3])
    # sample 2: p_0 = 0.1 < t_0 / 4 = 0.158 and class 1 is more probable, though p_1 = 0.5 < t_1;
    # sample 7: p_2 = 0.25 > t_2 / 4 = 0.171, so it is not suspect; neither enters the joint
    assert v.counted.tolist() == [True, True, False, True, True, True, True, False]
    assert np.flatnonzero(v.suspect).tolist() == [2]
    assert v.likely[2] == 1 and v.p_likely[2] == pytest.approx(0.5)
    assert joint.c.tolist() == [[2, 0, 0], [0, 2, 0], [0, 0, 2]]


def test_a_class_without_a_threshold_is_not_judged_by_self_confidence():
    th = L.Thresholds(np.array([0.8, np.nan]))
    # class 1 was in no sampled row: p_1 = 0.4 is not measured against anything, and p_0 = 0.6 < t_0
    v = L.judge(np.array([[0.6, 0.4], [0.95, 0.05]]), np.array([1, 1]), th)
    assert v.suspect.tolist() == [False, True] and v.counted.tolist() == [False, True]
    assert L.low_self_confidence(np.array([[0.6, 0.4]]), np.array([1]), th).tolist() == [False]


# ------------------------------------------------------------------ the sample and the folds
def test_the_sample_is_the_same_whatever_the_batches():
    x = np.arange(1000, dtype=np.float32).reshape(500, 2)
    y = np.arange(500) % 3
    keys = np.arange(500)
    a, b = L.LabelSample(cap=64, seed=3), L.LabelSample(cap=64, seed=3)
    a.add(x, y, keys)
    order = np.random.default_rng(0).permutation(500)
    for s in range(0, 500, 37):
        sel = order[s:s + 37]
        b.add(x[sel], y[sel], keys[sel])
    (xa, ya, ka), (xb, yb, kb) = a.arrays(), b.arrays()
    assert len(ka) == 64 and not a.complete and a.seen == 500
    assert ka.tolist() == kb.tolist() and np.array_equal(xa, xb) and ya.tolist() == yb.tolist()
    assert ka.tolist() != list(range(64))  # a spread sample, not the first rows


def test_rows_with_non_finite_inputs_or_skipped_keys_stay_out():
    s = L.LabelSample(cap=100, seed=0)
    x = np.ones((5, 2), dtype=np.float32)
    x[1, 0] = np.inf
    s.add(x, np.zeros(5, dtype=np.int64), np.arange(5), skip=[3])
    assert s.arrays()[2].tolist() == [0, 2, 4]
    assert s.seen == 3 and s.complete


def test_folds_depend_on_key_and_seed_only():
    keys = np.arange(3000)
    f = L.fold_of(keys, 0, 3)
    assert f.tolist() == L.fold_of(keys, 0, 3).tolist()
    assert f.tolist() != L.fold_of(keys, 1, 3).tolist()
    assert np.bincount(f).sum() == 3000 and min(np.bincount(f)) > 900


def test_a_source_larger_than_the_sample_is_scored_in_a_second_pass():
    rng = np.random.default_rng(2)
    y = np.repeat(np.arange(2), 150)
    x = (rng.normal(scale=0.3, size=(300, 2)) + np.array([[0, 0], [3, 3]])[y]).astype(np.float32)
    noisy = y.copy()
    noisy[[10, 250]] = 1 - noisy[[10, 250]]
    s = L.LabelSample(cap=120, seed=0)
    s.add(x, noisy, np.arange(300))

    def rest():
        for a in range(0, 300, 64):
            yield x[a:a + 64], noisy[a:a + 64], np.arange(a, min(300, a + 64))

    scores = L.estimate(s, 2, 0, False, rest)
    assert scores.report["trained_on"] == 120 and scores.report["scored"] == 300
    assert scores.keys.tolist() == list(range(300))
    assert np.flatnonzero(scores.suspect).tolist() == [10, 250]
    assert scores.likely[[10, 250]].tolist() == [0, 1]


def test_too_few_samples_or_one_class_are_not_scored():
    s = L.LabelSample(cap=100, seed=0)
    s.add(np.zeros((10, 2), dtype=np.float32), np.arange(10) % 2, np.arange(10))
    assert "only 10 usable samples" in L.estimate(s, 2, 0, False)
    s = L.LabelSample(cap=100, seed=0)
    s.add(np.zeros((50, 2), dtype=np.float32), np.zeros(50, dtype=np.int64), np.arange(50))
    assert L.estimate(s, 2, 0, False) == "the samples carry a single class"


# ------------------------------------------------------------------ neighbour votes
def test_the_knn_vote_leaves_each_sample_out_and_smooths_by_one_pseudo_count():
    x = np.array([[0.0], [1.0], [2.0], [10.0], [11.0], [12.0]], dtype=np.float32)
    y = np.array([0, 0, 0, 1, 1, 1])
    p = V.knn_probs(x, y, 2, k=2)
    # sample 0's two nearest others are 1 and 2 (class 0): (2 + 1/2) / 3 and (0 + 1/2) / 3
    assert p[0] == pytest.approx([2.5 / 3, 0.5 / 3])
    assert p[4] == pytest.approx([0.5 / 3, 2.5 / 3])
    assert p.sum(axis=1) == pytest.approx([1.0] * 6)


def test_colour_texture_features_tell_a_flat_red_image_from_a_striped_blue_one():
    red = np.zeros((3, 4, 4), dtype=np.float32)
    red[0] = 0.8
    blue = np.zeros((3, 4, 4), dtype=np.float32)
    blue[2, :, ::2] = 1.0
    f = V.colour_texture_features(np.stack([red, red, blue]))
    assert f.shape == (3, 3 * 7) and f.dtype == np.float32
    # z-scored over the sample; a statistic equal on all images (the green channel's) stays 0
    assert f.mean(axis=0) == pytest.approx([0.0] * 21, abs=1e-6)
    assert np.array_equal(f[0], f[1]) and not np.array_equal(f[0], f[2])
    green = [1, 4, 7, 10, 13, 16, 19]
    assert f[:, green].tolist() == [[0.0] * 7] * 3


def test_images_get_a_second_vote_on_their_statistics_where_the_work_fits(monkeypatch):
    rng = np.random.default_rng(0)
    y = np.arange(60) % 3
    table = rng.normal(size=(60, 4)).astype(np.float32)
    images = rng.random((60, 3, 8, 8)).astype(np.float32)
    assert len(V.neighbour_votes(table, y, 3, images=False)[0]) == 1
    votes, names = V.neighbour_votes(images, y, 3, images=True)
    assert len(votes) == 2 and [v.shape for v in votes] == [(60, 3), (60, 3)]
    assert names[1] == "a 10-NN vote on colour/texture statistics"
    # 60**2 x 192 pixels is over this limit, 60**2 x 21 statistics under it
    monkeypatch.setattr(V, "KNN_WORK", 60 ** 2 * 100)
    assert V.neighbour_votes(images, y, 3, images=True)[1] == ["a 10-NN vote on colour/texture statistics"]


# ------------------------------------------------------------------ inside a scan
def test_flipped_rows_are_flagged_with_their_likely_label(tmp_path):
    root = _blobs(tmp_path / "data")
    with datasan.scan(root, out_dir=tmp_path / "out", probe=True) as r:
        assert _codes(r) == list(FLIPPED)
        rep = r.report["probe"]["sources"]["blobs.csv"]
        r.write(tmp_path / "out")
    assert rep["flagged"] == {"DS407": 2}
    ln = rep["label_noise"]
    assert ln["flagged"] == 2 and ln["scored"] == 60 and ln["trained_on"] == 60 and ln["folds"] == 3
    # row 7 (an a) was filed as b, row 33 (a b) as c: the joint holds exactly those two off its diagonal
    off = {(g, k): n for g, row in ln["confusion"].items() for k, n in row.items() if g != k}
    assert off == {("b", "a"): 1, ("c", "b"): 1}
    assert set(ln["noise_rate"]) == {"a", "b", "c"} and ln["noise_rate"]["a"] == 0.0
    q = pq.read_table(tmp_path / "out" / "label_quality.parquet")
    assert q.schema.metadata[b"datasan.run_id"].decode() == r.run_id
    d = q.to_pydict()
    assert d["sample"][:2] == ["blobs.csv#0", "blobs.csv#1"] and d["row"] == list(range(60))
    suspects = [(row, lab, likely) for row, lab, likely, s in zip(d["row"], d["label"], d["likely_label"],
                                                                 d["suspect"]) if s]
    assert suspects == [(7, "b", "a"), (33, "c", "b")]
    assert max(d["label_quality"][i] for i in FLIPPED) < min(d["label_quality"][i] for i in range(60)
                                                             if i not in FLIPPED)
    # each scored row also carries its probe loss; the report's highest losses are among them
    assert None not in d["probe_loss"] and len(d["probe_loss"]) == 60
    top = rep["loss"]["top"]
    assert [d["probe_loss"][d["sample"].index(t["sample"])] for t in top] == [t["loss"] for t in top]
    assert max(d["probe_loss"]) == top[0]["loss"]
    # the clean table keeps its contract: original columns plus _row, every row (DS407 is a warning)
    clean = pq.read_table(tmp_path / "out" / "clean" / "blobs.csv.parquet")
    assert clean.column_names == ["x0", "x1", "label", "_row"] and clean.num_rows == 60


def test_unflipped_data_gets_no_flag_and_the_estimate_is_deterministic(tmp_path):
    root = _blobs(tmp_path / "data", flips=())
    tables = []
    for _ in range(2):
        with datasan.scan(root, probe=True) as r:
            assert _codes(r) == []
            assert r.report["probe"]["sources"]["blobs.csv"]["label_noise"]["flagged"] == 0
            tables.append(r.label_quality_table)
    assert tables[0].equals(tables[1])


def test_ignore_and_no_probe_turn_the_estimate_off(tmp_path):
    root = _blobs(tmp_path / "data")
    with datasan.scan(root, probe=True, ignore=["DS407"]) as r:
        assert "label_noise" not in r.report["probe"]["sources"]["blobs.csv"]
        assert r.label_quality_table is None and _codes(r) == []
    with datasan.scan(root, probe=False) as r:
        assert r.label_quality_table is None and _codes(r) == []


def test_made_an_error_the_suspects_leave_the_clean_file(tmp_path):
    root = _blobs(tmp_path / "data")
    with datasan.scan(root, out_dir=tmp_path / "out", probe=True, severity={"DS407": "error"}) as r:
        assert sorted(r.quarantine_table.column("row").to_pylist()) == list(FLIPPED)
        r.write(tmp_path / "out")
    src = json.loads((tmp_path / "out" / "report.json").read_text())["sources"][0]
    assert (src["seen"], src["kept"], src["quarantined"]) == (60, 58, 2)
    rows = pq.read_table(tmp_path / "out" / "clean" / "blobs.csv.parquet").column("_row").to_pylist()
    assert len(rows) == 58 and not set(FLIPPED) & set(rows)


def test_regression_and_small_sources_are_not_scored(tmp_path):
    root = tmp_path / "data"
    root.mkdir()
    (root / "r.csv").write_text("x,target\n" + "".join(f"{i / 10},{i / 7:.4f}\n" for i in range(30)))
    with datasan.scan(root, probe=True) as r:
        assert "label_noise" not in r.report["probe"]["sources"]["r.csv"]
    small = _blobs(tmp_path / "small", flips=(), rows_per_class=10)
    with datasan.scan(small, probe=True) as r:
        ln = r.report["probe"]["sources"]["blobs.csv"]["label_noise"]
        assert ln == {"skipped": "only 30 usable samples (at least 40 are needed)"}
        assert _codes(r) == []


def _colour_images(root: Path) -> Path:
    """Red, green and blue 16x16 images, 20 each, with one red image filed under green."""
    from PIL import Image

    rng = np.random.default_rng(4)
    colours = {"red": (200, 30, 30), "green": (30, 200, 30), "blue": (30, 30, 200)}
    for cls, rgb in colours.items():
        for i in range(20):
            # one red image filed under green
            folder = "green" if (cls, i) == ("red", 3) else cls
            pix = np.clip(np.array(rgb) + rng.normal(scale=20, size=(16, 16, 3)), 0, 255).astype(np.uint8)
            path = root / "colours" / folder / f"{cls}{i:02d}.png"
            path.parent.mkdir(parents=True, exist_ok=True)
            Image.fromarray(pix).save(path)
    return root


def test_a_mislabeled_image_is_flagged_and_indexed(tmp_path):
    with datasan.scan(_colour_images(tmp_path / "data"), probe=True) as r:
        f = r.findings
        assert f[f["code"] == "DS407"]["sample"].tolist() == ["colours/green/red03.png"]
        index = r.index_table.to_pydict()
        q = dict(zip(index["sample"], index["label_quality"]))
        assert len(q) == 60 and all(v is not None for v in q.values())
        assert min(q, key=q.get) == "colours/green/red03.png"
        lq = r.label_quality_table.to_pydict()
        assert lq["row"] == [None] * 60
        at = lq["sample"].index("colours/green/red03.png")
        assert (lq["label"][at], lq["likely_label"][at], lq["suspect"][at]) == ("green", "red", True)


def test_labels_the_features_do_not_predict_are_not_judged(tmp_path):
    rng = np.random.default_rng(3)
    root = tmp_path / "data"
    root.mkdir()
    rows = "".join(f"{a:.4f},{b:.4f},{c}\n" for a, b, c in zip(rng.normal(size=90), rng.normal(size=90),
                                                               rng.integers(0, 3, 90)))
    (root / "random.csv").write_text("x0,x1,label\n" + rows)
    with datasan.scan(root, probe=True) as r:
        assert _codes(r) == []
        ln = r.report["probe"]["sources"]["random.csv"]["label_noise"]
        assert ln["skipped"].startswith("the out-of-fold predictions (")
        assert r.label_quality_table is None


def test_a_mislabeled_image_made_an_error_leaves_the_index(tmp_path):
    with datasan.scan(_colour_images(tmp_path / "data"), probe=True, severity={"DS407": "error"}) as r:
        assert r.quarantine_table.column("sample").to_pylist() == ["colours/green/red03.png"]
        index = r.index_table.to_pydict()
        assert len(index["sample"]) == 59 and "colours/green/red03.png" not in index["sample"]
        src = r.report["sources"][0]
        assert (src["seen"], src["kept"], src["quarantined"]) == (60, 59, 1)
        assert r.stats["images"]["colours"]["count"] == 59


def test_a_huge_finite_value_does_not_hide_the_flips(tmp_path):
    root = _blobs(tmp_path / "data")
    lines = (root / "blobs.csv").read_text().splitlines()
    x0, x1, lab = lines[1 + 50].split(",")
    lines[1 + 50] = f"1e30,{x1},{lab}"  # a finite outlier (the probe's DS405 warning), not an error
    (root / "blobs.csv").write_text("\n".join(lines) + "\n")
    with datasan.scan(root, probe=True) as r:
        assert _codes(r) == list(FLIPPED)


def test_image_scores_are_the_same_with_one_or_two_workers(tmp_path):
    root = _colour_images(tmp_path / "data")
    tables = []
    for workers in (1, 2):
        with datasan.scan(root, probe=True, workers=workers) as r:
            tables.append(r.label_quality_table)
    assert tables[0].equals(tables[1])
