"""What the image kind gives the probe: batches of kept, labelled images.

Images are decoded in parallel on the scan's engine (module-level, picklable
task function), resized to a fixed square and scaled to 0..1 like
torchvision's ``ToTensor`` (8-bit / 255, 16-bit / 65535; float images as they
are).  Class ids number the sorted label names.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Iterator

from datasan.sources.base import ProbeBatch, ProbeFeed, ScanContext, SourceOutcome
from datasan.sources.regular import open_binary

#: images per probe batch unless --probe-batch-size says otherwise
IMAGE_BATCH = 64


def image_feed(outcome: SourceOutcome, ctx: ScanContext) -> ProbeFeed | str:
    """The probe's feed over the labelled images of ``outcome.index``, or why there is none."""
    from datasan.discover import path_of
    from datasan.probe.models import IMAGE_SIZE

    index = outcome.index
    if index is None or index.num_rows == 0:
        return "no images were kept"
    samples = index.column("sample").to_pylist()
    labels = index.column("label").to_pylist() if "label" in index.column_names else [None] * len(samples)
    labelled = [i for i, lab in enumerate(labels) if lab is not None and str(lab) != ""]
    if not labelled:
        return "the images have no labels, so there is no loss to compute"
    classes = sorted({str(labels[i]) for i in labelled})
    class_id = {c: i for i, c in enumerate(classes)}
    bs = ctx.options.probe_batch_size or IMAGE_BATCH
    chunks = [labelled[s:s + bs] for s in range(0, len(labelled), bs)]

    def batches() -> Iterator[ProbeBatch]:
        import numpy as np

        tasks = [ImageBatchTask([path_of(ctx.root, samples[i]) for i in ch], IMAGE_SIZE) for ch in chunks]
        unlabelled = len(samples) - len(labelled)
        for ch, loaded in zip(chunks, ctx.engine.map_ordered(load_image_batch, tasks)):
            keys = np.asarray([ch[i] for i in loaded.ok], dtype=np.int64)
            y = np.asarray([class_id[str(labels[p])] for p in keys.tolist()], dtype=np.int64)
            yield ProbeBatch(loaded.array, y, keys, left_out=unlabelled,
                             failed=[f"{samples[ch[i]]}: {why}" for i, why in loaded.failed])
            unlabelled = 0

    return ProbeFeed(network="cnn", input_shape=(3, IMAGE_SIZE, IMAGE_SIZE), num_outputs=len(classes),
                     task="classification", batches=batches, samples=samples,
                     left_out_what="images without a label", report={"image_size": IMAGE_SIZE},
                     class_names=classes)


@dataclass
class ImageBatchTask:
    """Decode ``paths`` (absolute) to a float32 array (n, 3, size, size)."""

    paths: list[str]
    size: int


@dataclass
class ImageBatch:
    """The decoded images of a task: ``array`` holds the ones at positions ``ok``."""

    array: Any  # float32 (n_ok, 3, size, size)
    ok: list[int]
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
    return np.ascontiguousarray(a)  # channels first in memory too, as the probe wants it


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
