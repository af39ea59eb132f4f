"""SafeDataset / SafeIterableDataset / safe_collate over plain datasets with corrupt images and NaN rows."""

from __future__ import annotations

import dataclasses
import io
import json
import math
import os
import pickle
import signal

import numpy as np
import pytest
import torch
from PIL import Image
from torch.utils.data import DataLoader, Dataset, IterableDataset, get_worker_info

from conftest import seal_output

import datasan
from datasan import BadSampleError, SafeDataset, SafeIterableDataset, safe_collate
from datasan.collate import BadSample
from datasan.safe_dataset import nonfinite_reason


# ---------------------------------------------------------------- plain datasets (know nothing of datasan)
class ImageFiles(Dataset):
    """(CHW float tensor, label) per PNG file; label = the file's index."""

    def __init__(self, paths):
        self.paths = [str(p) for p in paths]

    def __len__(self):
        return len(self.paths)

    def __getitem__(self, i):
        with Image.open(self.paths[i]) as img:
            arr = np.asarray(img.convert("RGB"), dtype=np.float32) / 255.0
        return torch.from_numpy(arr).permute(2, 0, 1), i


class Rows(Dataset):
    def __init__(self, rows):
        self.rows = rows

    def __len__(self):
        return len(self.rows)

    def __getitem__(self, i):
        return {"x": np.asarray(self.rows[i], dtype=np.float32), "y": float(i)}


class Stream(IterableDataset):
    """Yields 0..n-1, split between DataLoader workers."""

    def __init__(self, n):
        self.n = n

    def __iter__(self):
        w = get_worker_info()
        k, m = (w.id, w.num_workers) if w else (0, 1)
        return iter(range(k, self.n, m))


def decode(i):
    if i == 3:
        raise ValueError("corrupt record 3")
    return torch.tensor([math.nan if i == 7 else float(i)])


def stream_id(i):
    return f"rec{i}"


def png_bytes(value):
    buf = io.BytesIO()
    Image.new("RGB", (4, 4), (value, value, value)).save(buf, format="PNG")
    return buf.getvalue()


@pytest.fixture
def images(tmp_path):
    """6 PNGs img/0.png .. img/5.png; img/2.png is truncated (half its bytes)."""
    d = tmp_path / "img"
    d.mkdir()
    paths = []
    for i in range(6):
        data = png_bytes(40 * i)
        if i == 2:
            data = data[: len(data) // 2]
        (d / f"{i}.png").write_bytes(data)
        paths.append(d / f"{i}.png")
    return paths


def image_ids(i):
    return f"img/{i}.png"


ROWS = [[0, 1], [math.nan, 1], [2, 2], [3, 3], [4, 4], [5, 5], [6, math.inf], [7, 7]]


def drain(dl):
    """list(dl), shutting the workers down at once even when a batch raises (otherwise the
    iterator lives on in the traceback and its workers are reaped seconds later, in another test)."""
    it = iter(dl)
    try:
        return list(it)
    finally:
        shutdown = getattr(it, "_shutdown_workers", None)
        if shutdown is not None:
            shutdown()


def loader(ds, workers, batch_size=3):
    return DataLoader(ds, batch_size=batch_size, num_workers=workers, collate_fn=safe_collate,
                      persistent_workers=False)


# ---------------------------------------------------------------- map-style, each mode, 0 and 2 workers
@pytest.mark.parametrize("workers", [0, 2])
def test_skip_corrupt_image(images, workers):
    ds = SafeDataset(ImageFiles(images), on_error="skip", ids=image_ids)
    batches = list(loader(ds, workers))
    assert [b[1].tolist() for b in batches] == [[0, 1], [3, 4, 5]]
    f = ds.failures()
    assert f["index"].tolist() == [2]
    assert f["sample"].tolist() == ["img/2.png"]
    assert f["reason"].iloc[0].split(":")[0] in ("OSError", "SyntaxError", "UnidentifiedImageError")
    if workers:
        assert f["worker"].tolist() == [0]  # recorded in a worker process, read in this one


@pytest.mark.parametrize("workers", [0, 2])
def test_replace_corrupt_image_with_the_next_good_one(images, workers):
    ds = SafeDataset(ImageFiles(images), on_error="replace", ids=image_ids)
    labels = [b[1].tolist() for b in loader(ds, workers)]
    assert labels == [[0, 1, 3], [3, 4, 5]]
    assert ds.failures()["index"].tolist() == [2]


@pytest.mark.parametrize("workers", [0, 2])
def test_raise_names_index_sample_and_reason(images, workers):
    ds = SafeDataset(ImageFiles(images), on_error="raise", ids=image_ids)
    with pytest.raises(BadSampleError) as info:
        drain(loader(ds, workers))
    assert "sample 2 (img/2.png)" in str(info.value)
    if workers == 0:
        assert (info.value.index, info.value.sample) == (2, "img/2.png")
    assert ds.failures()["index"].tolist() == [2]


@pytest.mark.parametrize("workers", [0, 2])
@pytest.mark.parametrize("mode, sizes", [("skip", [2, 3, 1]), ("replace", [3, 3, 2])])
def test_nan_rows(workers, mode, sizes):
    ds = SafeDataset(Rows(ROWS), on_error=mode)
    batches = list(loader(ds, workers))
    assert [len(b["y"]) for b in batches] == sizes
    ys = [int(v) for b in batches for v in b["y"].tolist()]
    assert ys == ([0, 2, 3, 4, 5, 7] if mode == "skip" else [0, 2, 2, 3, 4, 5, 7, 7])
    f = ds.failures().sort_values("index")
    assert f["index"].tolist() == [1, 6]
    assert f["reason"].tolist() == ["item['x'] holds 1 NaN and 0 Inf value(s)",
                                    "item['x'] holds 0 NaN and 1 Inf value(s)"]
    assert f["sample"].isna().all()


@pytest.mark.parametrize("workers", [0, 2])
def test_nan_rows_raise(workers):
    with pytest.raises(BadSampleError, match="sample 1: item\\['x'\\] holds 1 NaN"):
        drain(loader(SafeDataset(Rows(ROWS), on_error="raise"), workers))


def test_check_finite_off_passes_nan_through():
    ds = SafeDataset(Rows(ROWS), check_finite=False)
    assert math.isnan(ds[1]["x"][0])
    assert ds.failures().empty


def test_all_bad_batch_collates_to_none_and_replace_gives_up():
    bad = Rows([[math.nan]] * 3)
    assert safe_collate([SafeDataset(bad)[i] for i in range(3)]) is None
    with pytest.raises(BadSampleError, match="no good sample to replace it"):
        SafeDataset(bad, on_error="replace")[0]


def test_bad_mode_and_index_errors():
    with pytest.raises(ValueError, match="on_error"):
        SafeDataset(Rows(ROWS), on_error="ignore")
    with pytest.raises(IndexError):
        SafeDataset(Rows(ROWS))[8]
    assert SafeDataset(Rows(ROWS))[-1]["y"] == 7.0


def test_failures_clear_and_pickle():
    ds = SafeDataset(Rows(ROWS))
    ds[1]
    ds[1]  # the same failure twice counts once
    assert len(ds.failures()) == 1
    copy = pickle.loads(pickle.dumps(ds))
    copy[6]  # a copy (as in a spawned worker) records into the same log
    assert ds.failures()["index"].tolist() == [1, 6]
    ds.clear_failures()
    assert ds.failures().empty
    marker = pickle.loads(pickle.dumps(BadSample(3, "s", "r")))
    assert (marker.index, marker.sample, marker.reason) == (3, "s", "r")
    err = pickle.loads(pickle.dumps(BadSampleError(3, "s", "why")))
    assert (err.index, err.sample, str(err)) == (3, "s", "sample 3 (s): why")


def test_nonfinite_reason_walks_structures():
    assert nonfinite_reason((torch.ones(2), [np.array([1.0, np.inf])])) == "item[1][0] holds 0 NaN and 1 Inf value(s)"
    assert nonfinite_reason({"a": float("nan")}) == "item['a'] is nan"
    assert nonfinite_reason(np.float32("nan")) == "item holds 1 NaN and 0 Inf value(s)"
    assert nonfinite_reason((torch.arange(3), "text", 5, None, np.arange(3))) is None


# ---------------------------------------------------------------- exclude
def test_exclude_forms(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "d").mkdir()
    (tmp_path / "d" / "t.csv").write_text("a,label\n" + "\n".join(
        f"{'nan' if math.isnan(r[0]) else r[0]},{r[1]}" for r in ROWS) + "\n")
    res = datasan.scan(tmp_path / "d", out_dir=tmp_path / "out", probe=False, workers=1)
    assert sorted(res.quarantine["sample"]) == ["t.csv#1", "t.csv#6"]
    ids = [f"t.csv#{i}" for i in range(len(ROWS))]
    for exclude in (tmp_path / "out", str(tmp_path / "out" / "quarantine.csv"), res.quarantine,
                    res.quarantine_table, [1, 6], ["t.csv#1", 6]):
        ds = SafeDataset(Rows(ROWS), exclude=exclude, ids=ids)
        assert len(ds) == 6 and ds.excluded == 2, exclude
        assert [ds[i]["y"] for i in range(len(ds))] == [0.0, 2.0, 3.0, 4.0, 5.0, 7.0]
        assert ds.sample_id(1) == "t.csv#2"
    with pytest.raises(ValueError, match="pass ids="):
        SafeDataset(Rows(ROWS), exclude=["t.csv#1"])


# ---------------------------------------------------------------- from_scan
def test_from_scan_tables_round_trip(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "d").mkdir()
    (tmp_path / "d" / "t.csv").write_text("f1,f2,species\n1,10,cat\nnan,11,dog\n3,12,dog\n4,inf,cat\n5,14,bird\n")
    res = datasan.scan(tmp_path / "d", out_dir=tmp_path / "out", probe=False, workers=1, target="species")
    assert res.report["kept"] == 3
    ds = SafeDataset.from_scan(tmp_path / "out")
    assert len(ds) == 3
    assert ds.ids == ["t.csv#0", "t.csv#2", "t.csv#4"]
    assert ds.base.classes == {"t.csv": ["bird", "cat", "dog"]}
    batch = next(iter(DataLoader(ds, batch_size=8, collate_fn=safe_collate)))
    x, y = batch
    assert x.dtype == torch.float32 and x.tolist() == [[1.0, 10.0], [3.0, 12.0], [5.0, 14.0]]
    assert y.tolist() == [1, 2, 0]
    assert ds.failures().empty
    scaled = SafeDataset.from_scan(tmp_path / "out", transform=lambda t: t * 2)
    assert scaled[1][0].tolist() == [6.0, 24.0]


def test_from_scan_regression_target(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "d").mkdir()
    (tmp_path / "d" / "r.csv").write_text("x,y\n" + "\n".join(f"{i},{i * 0.5 + 0.25}" for i in range(30)) + "\n")
    datasan.scan(tmp_path / "d", out_dir=tmp_path / "out", probe=False, workers=1, task="regression")
    ds = SafeDataset.from_scan(tmp_path / "out")
    assert len(ds) == 30
    x, y = ds[3]
    assert x.tolist() == [3.0] and y == pytest.approx(1.75)


def test_from_scan_images_with_normalize(tmp_path):
    """A scan output folder built by hand (index.parquet, report.json, stats.json), as the image kind writes it."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    root = tmp_path / "data"
    (root / "digits" / "a").mkdir(parents=True)
    (root / "digits" / "b").mkdir(parents=True)
    Image.new("RGB", (3, 2), (51, 102, 255)).save(root / "digits" / "a" / "0.png")
    Image.new("L", (3, 2), 51).save(root / "digits" / "b" / "1.png")  # grayscale among RGB: converted
    out = tmp_path / "out"
    out.mkdir()
    pq.write_table(pa.table({"sample": ["digits/a/0.png", "digits/b/1.png"], "label": ["a", "b"]}),
                   out / "index.parquet")
    (out / "report.json").write_text(json.dumps({"path": str(root), "sources": []}))
    (out / "stats.json").write_text(json.dumps({"images": {"digits": {
        "count": 2, "channels": 3, "mean": [0.1, 0.2, 0.5], "std": [0.5, 0.25, 0.0]}}}))
    seal_output(out)
    ds = SafeDataset.from_scan(out)
    x, y = ds[0]
    assert x.shape == (3, 2, 3) and y == 0
    assert x[:, 0, 0].tolist() == pytest.approx([0.2, 0.4, 1.0])
    assert ds[1][0][:, 1, 2].tolist() == pytest.approx([0.2, 0.2, 0.2]) and ds[1][1] == 1
    norm = SafeDataset.from_scan(out, normalize=True)
    assert norm[0][0][:, 0, 0].tolist() == pytest.approx([0.2, 0.8, 0.5])  # std 0 -> divide by 1
    assert norm.ids == ["digits/a/0.png", "digits/b/1.png"]
    # a file deleted after the scan is a failure, not a crash
    (root / "digits" / "b" / "1.png").unlink()
    batch = next(iter(DataLoader(norm, batch_size=2, collate_fn=safe_collate)))
    assert batch[1].tolist() == [0]
    assert norm.failures()["sample"].tolist() == ["digits/b/1.png"]


# ---------------------------------------------------------------- iterable
@pytest.mark.parametrize("workers", [0, 2])
def test_iterable_skips_bad_records(workers):
    ds = SafeIterableDataset(Stream(10), transform=decode, ids=stream_id)
    got = sorted(int(v) for b in DataLoader(ds, batch_size=4, num_workers=workers, collate_fn=safe_collate)
                 for v in b.flatten().tolist())
    assert got == [0, 1, 2, 4, 5, 6, 8, 9]
    f = ds.failures().sort_values("sample")
    assert f["sample"].tolist() == ["rec3", "rec7"]
    assert f["reason"].tolist() == ["ValueError: corrupt record 3", "item holds 1 NaN and 0 Inf value(s)"]


@pytest.mark.parametrize("workers", [0, 2])
def test_iterable_raise(workers):
    ds = SafeIterableDataset(Stream(10), transform=decode, ids=stream_id, on_error="raise")
    with pytest.raises(BadSampleError, match="rec3"):
        drain(DataLoader(ds, batch_size=4, num_workers=workers))


def test_iterable_exclude_and_failing_iterator():
    ds = SafeIterableDataset(Stream(10), transform=decode, ids=stream_id, exclude=["rec0", 9])
    assert [int(t) for t in ds] == [1, 2, 4, 5, 6, 8]

    class Flaky:
        def __init__(self):
            self.i = 0

        def __iter__(self):
            return self

        def __next__(self):
            self.i += 1
            if self.i > 5:
                raise StopIteration
            if self.i == 2:
                raise OSError("network hiccup")
            return torch.tensor([float(self.i)])

    flaky = SafeIterableDataset(Flaky())
    assert [int(t) for t in flaky] == [1, 3, 4, 5]
    assert flaky.failures()[["index", "reason"]].values.tolist() == [[1, "OSError: network hiccup"]]

    class Dead:
        def __iter__(self):
            return self

        def __next__(self):
            raise OSError("gone")

    with pytest.raises(BadSampleError, match="3 failures in a row"):
        list(SafeIterableDataset(Dead(), max_consecutive_errors=3))
    with pytest.raises(ValueError, match="callable"):
        SafeIterableDataset(Stream(3), ids=["a", "b", "c"])


# ---------------------------------------------------------------- failure log: deduplicated, counted
@pytest.mark.parametrize("workers", [0, 2])
def test_failures_are_logged_once_and_counted_over_epochs(workers):
    ds = SafeDataset(Rows(ROWS))
    for _ in range(3):
        drain(loader(ds, workers))
    f = ds.failures()
    assert f["index"].tolist() == [1, 6]
    assert f["count"].tolist() == [3, 3]
    with open(ds._log.path, encoding="utf-8") as fh:
        lines = [json.loads(line) for line in fh]
    assert sum("index" in rec for rec in lines) == 2  # one line per distinct failure, not per epoch


def test_failure_log_file_grows_with_distinct_failures_only():
    from datasan.safe_dataset import FLUSH_REPEATS, FailureLog

    log = FailureLog()
    for _epoch in range(3):
        for i in range(10_000):
            log.record(i, f"s{i}", f"ValueError: bad record {i}")
    cols = log.read()
    assert cols["index"] == list(range(10_000)) and set(cols["count"]) == {3}
    with open(log.path, encoding="utf-8") as fh:
        n_lines = sum(1 for _ in fh)
    assert n_lines == 10_000 + -(-20_000 // FLUSH_REPEATS)  # the distinct failures + the repeat counts


# ---------------------------------------------------------------- odd samples: recursion, containers
class Fixed(Dataset):
    def __init__(self, items):
        self.items = items

    def __len__(self):
        return len(self.items)

    def __getitem__(self, i):
        item = self.items[i]
        return item() if callable(item) else item


def endless(depth=0):
    return endless(depth + 1)


def test_self_referencing_deep_and_recursing_samples_are_skipped():
    cyclic = [1.0]
    cyclic.append(cyclic)
    deep: list = [1.0]
    for _ in range(5000):
        deep = [deep]
    ds = SafeDataset(Fixed([cyclic, deep, endless, torch.ones(1)]), on_error="skip")
    got = [ds[i] for i in range(4)]
    assert [type(g) is BadSample for g in got] == [True, True, True, False]
    assert got[0].reason == "item[1] contains itself (a reference cycle)"
    assert got[1].reason == "item" + "[0]" * 100 + " is nested more than 100 levels deep"
    assert got[2].reason.split(":")[0] == "RecursionError"
    assert ds.failures()["index"].tolist() == [0, 1, 2]


@dataclasses.dataclass
class Pair:
    x: np.ndarray
    y: float


def test_nan_inside_dataclass_series_and_object_arrays():
    import pandas as pd

    assert nonfinite_reason(Pair(np.array([1.0, np.nan]), 0.0)) == "item.x holds 1 NaN and 0 Inf value(s)"
    assert nonfinite_reason(Pair(np.ones(2), math.inf)) == "item.y is inf"
    assert nonfinite_reason(pd.Series([1.0, np.nan, 2.0])) == "item holds 1 NaN and 0 Inf value(s)"
    assert nonfinite_reason(pd.DataFrame({"a": ["x", "y"], "b": [1.0, np.nan]})) == "item[1, 1] is nan"
    assert nonfinite_reason(np.array([1.0, float("nan")], dtype=object)) == "item[1] is nan"
    ragged = np.empty(2, dtype=object)
    ragged[0], ragged[1] = np.ones(3), np.array([np.inf])
    assert nonfinite_reason(ragged) == "item[1] holds 0 NaN and 1 Inf value(s)"
    assert nonfinite_reason((Pair(np.ones(2), 1.0), pd.Series([1, 2]), np.array(["a", 3], dtype=object))) is None


class DiesAt(Dataset):
    """Row 1 is NaN; reading row 5 kills the worker process (as the OOM killer or a decoder crash would)."""

    def __len__(self):
        return 6

    def __getitem__(self, i):
        if i == 5 and get_worker_info() is not None:
            os.kill(os.getpid(), signal.SIGKILL)
        return torch.tensor([math.nan if i == 1 else float(i)])


def test_a_killed_worker_stops_the_loader_but_keeps_the_failures_logged_before():
    ds = SafeDataset(DiesAt())
    with pytest.raises(RuntimeError, match="DataLoader worker"):
        drain(loader(ds, 2))
    assert ds.failures()["index"].tolist() == [1]


# ---------------------------------------------------------------- from_scan: one source, one shape, (x, y)
@pytest.fixture
def mixed_out(tmp_path):
    """A scan of one image folder (5 images of 8x6, one of 5x7) and two tables (one without target)."""
    data = tmp_path / "mix"
    for cls in ("cat", "dog"):
        (data / "imgs" / cls).mkdir(parents=True)
    for i in range(3):
        Image.new("RGB", (8, 6), (40 * i, 10, 10)).save(data / "imgs" / "cat" / f"{i}.png")
        Image.new("RGB", (5, 7) if i == 0 else (8, 6), (10, 40 * i, 10)).save(data / "imgs" / "dog" / f"{i}.png")
    (data / "a.csv").write_text("f1,f2\n1,2\n3,4\n5,6\n")
    (data / "b.csv").write_text("g,label\n1,0\n2,1\n")
    out = tmp_path / "out"
    datasan.scan(data, out_dir=out, probe=False, workers=1).write(out)
    return out


def test_from_scan_several_sources_need_source_and_unknown_source_names_them(mixed_out):
    with pytest.raises(datasan.UsageError) as exc:
        SafeDataset.from_scan(mixed_out)
    assert all(f"'{n}'" in str(exc.value) for n in ("imgs", "a.csv", "b.csv"))
    with pytest.raises(datasan.UsageError) as exc:
        SafeDataset.from_scan(mixed_out, source="c.csv")
    assert all(f"'{n}'" in str(exc.value) for n in ("imgs", "a.csv", "b.csv"))
    with pytest.raises(datasan.UsageError):
        SafeDataset.from_scan(mixed_out, source="*.csv")  # two widths cannot share a batch
    assert len(SafeDataset.from_scan(mixed_out, source="b.csv")) == 2


def test_from_scan_tables_without_target_give_x_and_no_label(mixed_out):
    ds = SafeDataset.from_scan(mixed_out, source="a.csv")
    x, y = next(iter(DataLoader(ds, batch_size=8, collate_fn=safe_collate)))
    assert x.tolist() == [[1.0, 2.0], [3.0, 4.0], [5.0, 6.0]]
    assert y.tolist() == [-1, -1, -1]
    labelled = SafeDataset.from_scan(mixed_out, source="b.csv")
    assert [labelled[i][1] for i in range(2)] == [0, 1]


def test_from_scan_images_batch_at_one_size(mixed_out):
    ds = SafeDataset.from_scan(mixed_out, source="imgs")
    assert ds.base.size == (6, 8)  # the most common (height, width)
    x, y = next(iter(DataLoader(ds, batch_size=6, collate_fn=safe_collate)))
    assert tuple(x.shape) == (6, 3, 6, 8)
    assert y.tolist() == [0, 0, 0, 1, 1, 1]
    assert tuple(SafeDataset.from_scan(mixed_out, source="imgs", size=4)[3][0].shape) == (3, 4, 4)
    assert tuple(SafeDataset.from_scan(mixed_out, source="imgs/", size=(5, 9))[0][0].shape) == (3, 5, 9)
    with pytest.raises(datasan.UsageError):
        SafeDataset.from_scan(mixed_out, source="imgs", size=(0, 3))
