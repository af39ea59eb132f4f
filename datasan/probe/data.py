"""Where the probe's batches come from: clean table files, image files, arrays.

Tables stream from the staged clean Parquet file (pyarrow ``iter_batches``):
the numeric features as they are (a null as 0, as a simple imputer would),
the target as float32 (regression) or class ids (classification).  Images are
decoded in parallel on the scan's engine (module-level, picklable task
function), resized to a fixed square and scaled to 0..1 like torchvision's
``ToTensor`` (8-bit / 255, 16-bit / 65535; float images as they are).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Iterator


# --------------------------------------------------------------------------- labels

from datasan.sources.tables.rewrite import label_key  # noqa: E402  (one definition for both)
from datasan.sources.regular import open_binary  # noqa: E402


@dataclass
class LabelMap:
    """Class ids for the probe's cross-entropy.

    ``direct``: integral targets already in 0..num_classes-1 are their own ids;
    otherwise the sorted label keys (as in stats.json) are numbered 0, 1, ...
    """

    num_classes: int
    direct: bool
    ids: dict[str, int] = field(default_factory=dict)

    @classmethod
    def build(cls, label_counts: dict[str, int], num_classes: int | None) -> "LabelMap":
        keys = sorted(label_counts)
        ints = []
        for k in keys:
            try:
                f = float(k)
            except ValueError:
                ints = None
                break
            if not f.is_integer():
                ints = None
                break
            ints.append(int(f))
        if ints is not None and ints and min(ints) >= 0:
            n = max(num_classes or 0, max(ints) + 1)
            return cls(num_classes=n, direct=True)
        return cls(num_classes=max(1, len(keys)), direct=False, ids={k: i for i, k in enumerate(keys)})

    def map_arrow(self, arr):
        """(int64 class ids, bool mask of rows with a known label) of an Arrow array."""
        import numpy as np
        import pyarrow as pa
        import pyarrow.compute as pc

        if isinstance(arr, pa.ChunkedArray):
            arr = arr.combine_chunks()
        if pa.types.is_dictionary(arr.type):
            arr = arr.dictionary_decode()
        numeric = (pa.types.is_integer(arr.type) or pa.types.is_floating(arr.type)
                   or pa.types.is_boolean(arr.type) or pa.types.is_decimal(arr.type))
        if numeric:
            values = np.asarray(pc.cast(arr, pa.float64()).to_numpy(zero_copy_only=False), dtype=np.float64)
            if arr.null_count:
                values[arr.is_null().to_numpy(zero_copy_only=False)] = np.nan
            ok = np.isfinite(values)
            if self.direct:
                ok &= (values >= 0) & (values < self.num_classes) & (np.floor(values) == values)
                ids = np.where(ok, values, 0).astype(np.int64)
                return ids, ok
            keys = [str(label_key(v)) for v in values.tolist()]
        else:
            keys = [None if v is None else str(label_key(v)) for v in arr.to_pylist()]
        ids = np.asarray([self.ids.get(k, -1) if k is not None else -1 for k in keys], dtype=np.int64)
        ok = ids >= 0
        return np.where(ok, ids, 0), ok


# --------------------------------------------------------------------------- tables

def float_matrix(batch, features: list[str]):
    """float32 (rows x features) matrix of a record batch's numeric features (nulls as 0)."""
    import numpy as np
    import pyarrow as pa
    import pyarrow.compute as pc

    out = np.empty((batch.num_rows, len(features)), dtype=np.float32)
    for j, name in enumerate(features):
        arr = batch.column(name)
        if pa.types.is_dictionary(arr.type):
            arr = arr.dictionary_decode()
        if not pa.types.is_floating(arr.type) or arr.type != pa.float64():
            arr = pc.cast(arr, pa.float64(), safe=False)
        if arr.null_count:
            arr = arr.fill_null(0.0)
        with np.errstate(over="ignore", invalid="ignore"):
            out[:, j] = arr.to_numpy(zero_copy_only=False)
    return out


def table_batches(path: str, features: list[str], target: str, task: str, labels: LabelMap | None,
                  batch_size: int) -> Iterator[tuple[Any, Any, Any, Any, int]]:
    """Yield (record batch with every column, x float32, y, _row int64, rows left out for an
    unusable target) per batch of the clean file; x, y and _row cover the probed rows."""
    import numpy as np
    import pyarrow as pa
    import pyarrow.compute as pc
    import pyarrow.parquet as pq

    pf = pq.ParquetFile(path)
    for batch in pf.iter_batches(batch_size=batch_size):
        if batch.num_rows == 0:
            continue
        x = float_matrix(batch, features)
        rows = np.asarray(batch.column("_row").to_numpy(zero_copy_only=False), dtype=np.int64)
        t = batch.column(target)
        if task == "classification":
            y, ok = labels.map_arrow(t)
        else:
            if pa.types.is_dictionary(t.type):
                t = t.dictionary_decode()
            ok = ~np.asarray(t.is_null().to_numpy(zero_copy_only=False), dtype=bool)
            try:
                tv = pc.cast(t, pa.float64(), safe=False).fill_null(0.0)
            except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
                ok = np.zeros(batch.num_rows, dtype=bool)
                tv = pa.array(np.zeros(batch.num_rows))
            with np.errstate(over="ignore", invalid="ignore"):
                y = np.asarray(tv.to_numpy(zero_copy_only=False), dtype=np.float64).astype(np.float32)
        left_out = int((~ok).sum())
        if left_out:
            x, y, rows = x[ok], y[ok], rows[ok]
        yield batch, x, y, rows, left_out


# --------------------------------------------------------------------------- images

@dataclass
class ImageBatchTask:
    """Decode ``paths`` (absolute) to a float32 array (n, 3, size, size)."""

    paths: list[str]
    size: int


@dataclass
class ImageBatch:
    array: Any  # float32 (n_ok, 3, size, size)
    ok: list[int]  # positions in the task that decoded
    failed: list[tuple[int, str]]


def _image_array(path: str, size: int):
    import numpy as np
    from PIL import Image

    with open_binary(path) as fh, Image.open(fh) as img:
        img.load()
        mode = img.mode
        if mode == "F":
            scale = 1.0
        elif mode.startswith("I;16") or mode == "I":
            img = img.convert("I") if mode != "I" else img
            scale = 1.0 / 65535.0
        else:
            img = img.convert("RGB")
            scale = 1.0 / 255.0
        img = img.resize((size, size), Image.BILINEAR)
        a = np.asarray(img, dtype=np.float32 if img.mode in ("F", "RGB") else np.float64)
    a = (a * scale).astype(np.float32) if scale != 1.0 else a.astype(np.float32)
    if a.ndim == 2:
        a = np.repeat(a[None], 3, axis=0)
    else:
        a = np.transpose(a, (2, 0, 1))
    return a


def load_image_batch(task: ImageBatchTask) -> ImageBatch:
    """Shard function: decode, resize and scale a list of images (runs in a worker)."""
    import numpy as np

    arrays, ok, failed = [], [], []
    for i, path in enumerate(task.paths):
        try:
            arrays.append(_image_array(path, task.size))
            ok.append(i)
        except Exception as exc:  # a file the image kind let through but PIL cannot read now
            failed.append((i, f"{type(exc).__name__}: {exc}"[:200]))
    arr = np.stack(arrays) if arrays else np.zeros((0, 3, task.size, task.size), dtype=np.float32)
    return ImageBatch(arr, ok, failed)
