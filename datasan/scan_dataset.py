"""ScanDataset: the kept samples of a scan's output folder, ready for a DataLoader.

Used through :meth:`datasan.SafeDataset.from_scan`.  Images come from
index.parquet (the file is ``report.json["path"] / sample``), table rows from
the clean Parquet files (features = report.json ``sources[i]["features"]``,
label = ``sources[i]["target"]``).

A dataset serves one source, or several that stack into one batch (image
folders, all resized to one size; tables with the same feature columns):
items of one DataLoader batch must have one shape.  Every item is ``(x, y)``
so that torch's default collate takes any batch.
"""

from __future__ import annotations

import json
import os
from fnmatch import fnmatchcase
from collections import Counter
from typing import Any, Callable

import numpy as np
import torch
from torch.utils.data import Dataset

from datasan import fs
from datasan.errors import UsageError
from datasan.outputs.manifest import verify_output

CHANNEL_MODES = {1: "L", 2: "LA", 3: "RGB", 4: "RGBA"}
#: the label of an item whose source has no label (a table without target, an unlabeled image)
NO_LABEL = -1


def _label_codes(values: list) -> tuple[list, list | None]:
    """Integer labels: ints stay, strings map to their index in the sorted class list, None -> -1."""
    present = [v for v in values if v is not None]
    if all(isinstance(v, (int, np.integer)) and not isinstance(v, bool) for v in present):
        return [int(v) if v is not None else -1 for v in values], None
    if all(isinstance(v, float) for v in present) and all(float(v).is_integer() for v in present):
        return [int(v) if v is not None else -1 for v in values], None
    classes = sorted({str(v) for v in present})
    pos = {c: i for i, c in enumerate(classes)}
    return [pos[str(v)] if v is not None else -1 for v in values], classes


def _image_size(size) -> tuple[int, int] | None:
    """(height, width) from an int (square) or a (height, width) pair; None stays None."""
    if size is None:
        return None
    if isinstance(size, int) and not isinstance(size, bool) and size > 0:
        return size, size
    if (isinstance(size, (tuple, list)) and len(size) == 2
            and all(isinstance(v, int) and not isinstance(v, bool) and v > 0 for v in size)):
        return int(size[0]), int(size[1])
    raise UsageError(f"size must be a positive int or a (height, width) pair of them, not {size!r}")


class ScanDataset(Dataset):
    """Items of the kept samples of one scan output folder.

    ``items[i]`` is ``(x, y)``: images as CHW float32 in 0..1 (optionally
    normalized) at one size, table rows as a float32 feature vector; ``y`` is
    an int for classification (class names map to their index in
    ``classes[source]``, sorted), a float for regression, and NO_LABEL (-1)
    for a missing label or a source without one.  ``sample_ids[i]`` is the
    sample id of item i; ``sources`` the sources served; ``size`` the
    (height, width) every image is resized to (None: native sizes).

    ``source`` (a name or glob) must be given when the folder holds several
    sources, and must select one source or several that stack; UsageError
    names the sources otherwise.
    """

    def __init__(self, out_dir, transform: Callable | None = None, normalize: bool = False,
                 source: str | None = None, size: int | tuple[int, int] | None = None) -> None:
        self.out_dir = fs.local_path(os.fspath(out_dir))  # a folder, or a store URI
        verify_output(self.out_dir)
        self.report = json.loads(fs.read_bytes(fs.join(self.out_dir, "report.json")))
        stats_path = fs.join(self.out_dir, "stats.json")
        self.stats: dict[str, Any] = {}
        if fs.info(stats_path) is not None:
            self.stats = json.loads(fs.read_bytes(stats_path))
        self.transform = transform
        self.normalize = normalize
        root = self.report["path"]
        if fs.is_remote(root):
            self.root = root if fs.kind(root) == "dir" else root.rsplit("/", 1)[0]
        else:
            self.root = root if os.path.isdir(root) else os.path.dirname(root)
        self.size = _image_size(size)
        self.sample_ids: list[str] = []
        self.classes: dict[str, list[str]] = {}
        self._parts: list[tuple[str, Any]] = []  # ("image", (paths, labels, folders)) / ("table", (X, y))
        self._offsets: list[int] = []
        self.sources = self._select(source)
        self._load_images(self.sources)
        self._load_tables(self.sources)

    # ---------------------------------------------------------------- sources
    def _index(self):
        path = fs.join(self.out_dir, "index.parquet")
        if fs.info(path) is None:
            return None
        return fs.parquet_file(path).read()

    def _available(self) -> dict[str, tuple[str, Any]]:
        """Every source this folder can serve: name -> ("image", None) or ("table", report entry)."""
        out: dict[str, tuple[str, Any]] = {}
        self._index_table = self._index()
        if self._index_table is not None and self._index_table.num_rows:
            t = self._index_table
            names = t.column("dataset").to_pylist() if "dataset" in t.column_names else ["."] * t.num_rows
            for name in dict.fromkeys(names):
                out[name] = ("image", None)
        for src in self.report.get("sources", []):
            if src.get("kind") == "table" and src.get("features") is not None:
                out[src["source"]] = ("table", src)
        return out

    def _select(self, source: str | None) -> dict[str, tuple[str, Any]]:
        """The sources to serve: all when there is one, else those ``source`` names (see the class)."""
        available = self._available()
        listing = ", ".join(f"{n!r} ({k})" for n, (k, _) in available.items()) or "none"
        if source is None:
            if len(available) > 1:
                raise UsageError(f"{self.out_dir} holds {len(available)} sources: {listing}; pass source= "
                                 "to choose one (a name or a glob)")
            return available
        chosen = {n: v for n, v in available.items() if n == source.rstrip("/") or fnmatchcase(n, source)}
        if not chosen:
            raise UsageError(f"source={source!r} names no source of {self.out_dir}; it has: {listing}")
        kinds = {k for k, _ in chosen.values()}
        widths = {tuple(v["features"]) for k, v in chosen.values() if k == "table"}
        if len(kinds) > 1 or len(widths) > 1:
            names = ", ".join(repr(n) for n in chosen)
            raise UsageError(f"source={source!r} selects {names}, whose items cannot share a batch "
                             "(images and tables, or tables with other feature columns): choose one")
        return chosen

    # ---------------------------------------------------------------- images
    def _image_folder(self, sample: str) -> str | None:
        """The stats.json images key of a sample: the longest folder key that contains it."""
        keys = list(self.stats.get("images", {}))
        best = None
        for k in keys:
            if k in ("", ".") or sample.startswith(k.rstrip("/") + "/"):
                if best is None or len(k) > len(best):
                    best = k
        if best is None and len(keys) == 1:
            best = keys[0]
        return best

    def _load_images(self, chosen: dict) -> None:
        table = self._index_table
        wanted = {n for n, (k, _) in chosen.items() if k == "image"}
        if table is None or not wanted:
            return
        samples = table.column("sample").to_pylist()
        n = len(samples)
        labels = table.column("label").to_pylist() if "label" in table.column_names else [None] * n
        datasets = table.column("dataset").to_pylist() if "dataset" in table.column_names else ["."] * n
        keep = [i for i in range(n) if datasets[i] in wanted]
        samples = [samples[i] for i in keep]
        codes, classes = _label_codes([labels[i] for i in keep])
        if classes is not None:
            self.classes["images"] = classes
        if self.size is None and {"width", "height"} <= set(table.column_names):
            # the most common size (the first in index order on a tie): equal images are never resampled
            heights, widths = table.column("height").to_pylist(), table.column("width").to_pylist()
            sizes = Counter((heights[i], widths[i]) for i in keep)
            if sizes:
                self.size = sizes.most_common(1)[0][0]
        folders = [self._image_folder(s) for s in samples]
        self._add("image", (samples, codes, folders), samples)

    def _add(self, kind: str, data, ids: list[str]) -> None:
        if not ids:
            return
        self._offsets.append(len(self.sample_ids))
        self._parts.append((kind, data))
        self.sample_ids.extend(ids)

    def _image(self, sample: str, folder: str | None) -> torch.Tensor:
        from PIL import Image

        info = self.stats.get("images", {}).get(folder) if folder is not None else None
        with fs.open_read(fs.join(self.root, sample)) as fh, Image.open(fh) as img:
            mode = CHANNEL_MODES.get(int(info["channels"]), "RGB") if info else "RGB"
            img = img.convert(mode)
            if self.size is not None and img.size != (self.size[1], self.size[0]):
                img = img.resize((self.size[1], self.size[0]), Image.BILINEAR)
            arr = np.asarray(img, dtype=np.uint8)
        if arr.ndim == 2:
            arr = arr[:, :, None]
        t = torch.from_numpy(arr.copy()).permute(2, 0, 1).float().div_(255.0)
        if self.normalize and info:
            mean = torch.tensor(info["mean"], dtype=torch.float32)[:, None, None]
            std = torch.tensor([s if s and s > 0 else 1.0 for s in info["std"]], dtype=torch.float32)[:, None, None]
            t = (t - mean) / std
        return t

    # ---------------------------------------------------------------- tables
    def _load_tables(self, chosen: dict) -> None:
        for name, (kind, src) in chosen.items():
            if kind != "table":
                continue
            # a long source name gets a shortened clean file name, recorded in the report
            path = fs.join(self.out_dir, src.get("clean_file") or f"clean/{name}.parquet")
            if fs.info(path) is None:
                continue
            table = fs.parquet_file(path).read()
            feats = list(src["features"])
            if feats:
                X = np.column_stack([
                    np.asarray(table.column(c).cast("float64").to_numpy(zero_copy_only=False), dtype=np.float32)
                    for c in feats])
            else:
                X = np.zeros((table.num_rows, 0), dtype=np.float32)
            target = src.get("target")
            y: Any = None
            if target and target in table.column_names:
                values = table.column(target).to_pylist()
                if src.get("task") == "regression":
                    y = np.asarray([np.nan if v is None else float(v) for v in values], dtype=np.float32)
                else:
                    codes, classes = _label_codes(values)
                    if classes is not None:
                        self.classes[name] = classes
                    y = np.asarray(codes, dtype=np.int64)
            rows = table.column("_row").to_pylist() if "_row" in table.column_names else range(table.num_rows)
            self._add("table", (X, y), [f"{name}#{r}" for r in rows])

    # ---------------------------------------------------------------- Dataset
    def __len__(self) -> int:
        return len(self.sample_ids)

    def __getitem__(self, i: int):
        import bisect

        if not 0 <= i < len(self):
            raise IndexError(i)
        p = bisect.bisect_right(self._offsets, i) - 1
        kind, data = self._parts[p]
        j = i - self._offsets[p]
        if kind == "image":
            samples, codes, folders = data
            x = self._image(samples[j], folders[j])
            y: Any = codes[j]
        else:
            X, ys = data
            x = torch.from_numpy(X[j].copy())
            y = NO_LABEL if ys is None else ys[j].item()
        if self.transform is not None:
            x = self.transform(x)
        return x, y
