"""ScanDataset: the kept samples of a scan's output folder, ready for a DataLoader.

Used through :meth:`datasan.SafeDataset.from_scan`.  Images come from
index.parquet (the file is ``report.json["path"] / sample``), table rows from
the clean Parquet files (features = report.json ``sources[i]["features"]``,
label = ``sources[i]["target"]``).
"""

from __future__ import annotations

import json
import os
from fnmatch import fnmatchcase
from typing import Any, Callable

import numpy as np
import torch
from torch.utils.data import Dataset

from datasan.outputs.manifest import verify_output

CHANNEL_MODES = {1: "L", 2: "LA", 3: "RGB", 4: "RGBA"}


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


class ScanDataset(Dataset):
    """Items of the kept samples of one scan output folder.

    ``items[i]`` is ``(tensor, label)``: images as CHW float32 in 0..1
    (optionally normalized), table rows as a float32 feature vector; labels
    are ints for classification (class names map to their index in
    ``classes[source]``, sorted) and floats for regression; -1 marks a
    missing label.  ``sample_ids[i]`` is the sample id of item i.
    """

    def __init__(self, out_dir, transform: Callable | None = None, normalize: bool = False,
                 source: str | None = None) -> None:
        self.out_dir = os.fspath(out_dir)
        verify_output(self.out_dir)
        with open(os.path.join(self.out_dir, "report.json"), encoding="utf-8") as f:
            self.report = json.load(f)
        stats_path = os.path.join(self.out_dir, "stats.json")
        self.stats: dict[str, Any] = {}
        if os.path.isfile(stats_path):
            with open(stats_path, encoding="utf-8") as f:
                self.stats = json.load(f)
        self.transform = transform
        self.normalize = normalize
        root = self.report["path"]
        self.root = root if os.path.isdir(root) else os.path.dirname(root)
        self.sample_ids: list[str] = []
        self.classes: dict[str, list[str]] = {}
        self._parts: list[tuple[str, Any]] = []  # ("image", (paths, labels, folders)) / ("table", (X, y))
        self._offsets: list[int] = []
        self._load_images(source)
        self._load_tables(source)

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

    def _load_images(self, source: str | None) -> None:
        path = os.path.join(self.out_dir, "index.parquet")
        if not os.path.isfile(path):
            return
        import pyarrow.parquet as pq

        table = pq.read_table(path)
        samples = table.column("sample").to_pylist()
        labels = table.column("label").to_pylist() if "label" in table.column_names else [None] * len(samples)
        keep = [i for i, s in enumerate(samples) if source is None or fnmatchcase(s, source)
                or fnmatchcase(s, source.rstrip("/") + "/*")]
        samples = [samples[i] for i in keep]
        codes, classes = _label_codes([labels[i] for i in keep])
        if classes is not None:
            self.classes["images"] = classes
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
        with Image.open(os.path.join(self.root, sample)) as img:
            mode = CHANNEL_MODES.get(int(info["channels"]), "RGB") if info else "RGB"
            arr = np.asarray(img.convert(mode), dtype=np.uint8)
        if arr.ndim == 2:
            arr = arr[:, :, None]
        t = torch.from_numpy(arr.copy()).permute(2, 0, 1).float().div_(255.0)
        if self.normalize and info:
            mean = torch.tensor(info["mean"], dtype=torch.float32)[:, None, None]
            std = torch.tensor([s if s and s > 0 else 1.0 for s in info["std"]], dtype=torch.float32)[:, None, None]
            t = (t - mean) / std
        return t

    # ---------------------------------------------------------------- tables
    def _load_tables(self, source: str | None) -> None:
        import pyarrow.parquet as pq

        for src in self.report.get("sources", []):
            if src.get("kind") != "table" or src.get("features") is None:
                continue
            name = src["source"]
            if source is not None and not fnmatchcase(name, source):
                continue
            # a long source name gets a shortened clean file name, recorded in the report
            path = os.path.join(self.out_dir, src.get("clean_file") or f"clean/{name}.parquet")
            if not os.path.isfile(path):
                continue
            table = pq.read_table(path)
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
            y = None if ys is None else ys[j].item()
        if self.transform is not None:
            x = self.transform(x)
        return x if y is None else (x, y)
