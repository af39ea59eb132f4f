"""Image datasets as a source kind.

* claim (main process, no decoding): image files by extension or magic bytes,
  grouped into dataset folders with their labels (``layout.py``), and the
  labels tables beside them, so the table kind does not read those as data;
* run: chunks of files go to :func:`decode.inspect_shard` on the engine (read,
  hash, header bomb check, full decode, exact pixel sums, per-image checks);
  the main process then runs the checks that need the whole set (labels,
  modes, duplicates: ``datasan/checks/images.py``), applies the rule policy,
  and builds index.parquet rows and stats.json over the kept images.

Per-channel statistics are exact integer sums (see ``pixels.py``).  The
per-image sums of the kept images stay in ``source.meta["pixel_sums"]`` so
that :func:`recompute_stats` can rebuild the statistics, exactly and without
decoding anything again, after the probe quarantines some images.
"""

from __future__ import annotations

from collections import Counter
from typing import Any

from datasan.discover import FileEntry
from datasan.findings import Finding, FindingBuffer
from datasan.sources.base import ScanContext, Source, SourceOutcome


#: values of ScanOptions.image_labels
LABEL_MODES = ("auto", "table", "folders", "none")


class ImageKind:
    """The image source kind (see the module docstring)."""

    name = "images"

    def claim(self, files: list[FileEntry], ctx: ScanContext) -> tuple[list[Source], list[FileEntry]]:
        from datasan.sources.images.layout import group_images

        box_dirs = set(ctx.shared.get("box_image_dirs") or ())
        mode = getattr(ctx.options, "image_labels", "auto")
        if mode not in LABEL_MODES:
            from datasan.errors import UsageError

            raise UsageError(f"image_labels must be one of {', '.join(LABEL_MODES)}, not {mode!r}")
        sets, rest = group_images(files, ctx.root, box_dirs, mode)
        sources = [Source(kind="images", name=s.folder, files=list(s.images), meta={"set": s}) for s in sets]
        return sources, rest

    def run(self, sources: list[Source], ctx: ScanContext) -> tuple[list[SourceOutcome], FindingBuffer]:
        from datasan.sources.images.decode import ImageTask, inspect_shard

        opts = ctx.options
        th = opts.thresholds
        if ctx.engine.workers > 1:
            # the main process waits while the workers decode: load the output libraries meanwhile
            import threading

            threading.Thread(target=_warm_imports, daemon=True).start()
        size = max(1, int(getattr(opts, "shard_images", 128)))
        tasks: list[tuple[int, ImageTask]] = []
        for i, src in enumerate(sources):
            files = [(f.rel, f.path) for f in src.files]
            # small sets still spread over every worker
            chunk = max(1, min(size, -(-len(files) // max(1, ctx.engine.workers))))
            for k in range(0, len(files), chunk):
                tasks.append((i, ImageTask(files[k:k + chunk], th.max_image_pixels, th.min_image_side,
                                           th.max_aspect)))
        records: list[list] = [[] for _ in sources]
        for (i, _), recs in zip(tasks, ctx.engine.map_ordered(inspect_shard, [t for _, t in tasks])):
            records[i].extend(recs)
            if ctx.progress is not None:
                ctx.progress.advance(len(recs))
        outcomes = [_finish(src, recs, ctx) for src, recs in zip(sources, records)]
        return outcomes, FindingBuffer()


def _warm_imports() -> None:
    try:
        import pyarrow  # noqa: F401
        import pyarrow.parquet  # noqa: F401
        import pandas  # noqa: F401  (pyarrow's Parquet writer imports it)
    except Exception:  # pragma: no cover - a missing library is reported where it is used
        pass


# --------------------------------------------------------------------------- finishing one set

def _labels(s, recs, fb: FindingBuffer) -> tuple[dict[str, str | None], dict[str, tuple[str, int | None]]]:
    """The label of every image of the set, adding the label findings to ``fb``."""
    labels: dict[str, str | None] = {}
    where: dict[str, tuple[str, int | None]] = {}
    samples = {r.sample for r in recs}
    if s.layout in ("folders", "split-folders"):
        for r in recs:
            lab = s.label_of(r.sample)
            labels[r.sample] = lab
            if lab is None:
                fb.add(Finding("DS301", f"{r.sample} lies outside every class folder of the ImageFolder "
                               f"tree {s.folder}.", sample=r.sample, source=r.sample))
    elif s.layout == "table":
        table_of: dict[str, tuple[str, int]] = {}
        for row in s.rows:
            if row.rel is None:
                if not row.raw:
                    fb.add(Finding("DS302", f"{row.table} row {row.row} has an empty path.",
                                   source=row.table, row=row.row))
                else:
                    fb.add(Finding("DS303", f"{row.table} row {row.row} names {row.raw!r}, a path outside "
                                   "PATH (absolute or through '..'); it was not opened.",
                                   source=row.table, row=row.row))
                continue
            if row.rel not in samples:
                fb.add(Finding("DS302", f"{row.table} row {row.row} names {row.raw!r}, which is not an image "
                               "file of this dataset (it does not exist or is no image).",
                               source=row.table, row=row.row))
                continue
            if row.rel in table_of:
                if row.label != labels[row.rel]:
                    t0, r0 = table_of[row.rel]
                    fb.add(Finding("DS307", f"{row.rel} is labelled {labels[row.rel]!r} in {t0} row {r0} and "
                                   f"{row.label!r} in {row.table} row {row.row}.",
                                   sample=row.rel, source=row.table, row=row.row))
                continue
            table_of[row.rel] = (row.table, row.row)
            labels[row.rel] = row.label
            where[row.rel] = (row.table, row.row)
            if row.label is None:
                fb.add(Finding("DS301", f"{row.rel} has an empty label in {row.table} row {row.row}.",
                               sample=row.rel, source=row.table, row=row.row))
        for r in recs:
            if r.sample not in table_of:
                labels[r.sample] = None
                fb.add(Finding("DS301", f"{r.sample} has no row in {', '.join(s.tables)}.",
                               sample=r.sample, source=s.tables[0] if s.tables else r.sample))
    else:
        labels = {r.sample: None for r in recs}
    return labels, where


def _finish(src: Source, recs: list, ctx: ScanContext) -> SourceOutcome:
    from datasan.checks import images as checks

    opts = ctx.options
    s = src.meta["set"]
    fb = FindingBuffer()
    fb.extend(s.findings)
    for r in recs:
        fb.extend(r.findings)
    labels, where = _labels(s, recs, fb)
    present = {k: v for k, v in labels.items() if v is not None}
    fb.extend(checks.label_value_findings(present, opts, where))
    ok = [r for r in recs if r.ok]
    fb.extend(checks.mode_outliers({r.sample: r.mode for r in ok}))
    fb.extend(checks.duplicates((r.sample, r.digest, labels.get(r.sample)) for r in ok))
    fb.apply_policy(opts)
    bad = {smp for smp, sev in zip(fb.column("sample"), fb.column("severity")) if sev == "error" and smp}
    kept = [r for r in recs if r.sample not in bad]
    _remeasure(kept, ctx)
    src.meta["pixel_sums"] = {r.sample: (r.sums, r.fmoments) for r in kept if r.sums or r.fmoments}
    index = _index(s, kept, labels)
    outcome = SourceOutcome(src, "images", len(recs), len(kept), fb, index=index,
                            report={"layout": s.layout, "label_tables": list(s.tables)})
    recompute_stats(outcome, ctx)
    return outcome


def _dataset_form(recs) -> str:
    forms = Counter(r.form for r in recs if r.form)
    if not forms:
        return "RGB"
    return sorted(forms.items(), key=lambda kv: (-kv[1], kv[0] != "RGB"))[0][0]


def _remeasure(kept: list, ctx: ScanContext) -> None:
    """Give every kept image pixel sums in its dataset's form (gray images among RGB ones
    are replicated cheaply in place; RGB images among gray ones are decoded again as L)."""
    from datasan.sources.images.decode import ImageTask, inspect_shard

    form = _dataset_form(kept)
    again = []
    for r in kept:
        if not r.form or r.form == form:
            continue
        if form == "RGB":  # gray -> RGB: the same channel three times
            if r.sums is not None:
                r.sums = r.sums.replicated(3)
            if r.fmoments is not None:
                r.fmoments = r.fmoments * 3
            r.form = "RGB"
        else:
            again.append(r)
    if not again:
        return
    th = ctx.options.thresholds
    by_sample = {r.sample: r for r in again}
    chunks = [again[k:k + 64] for k in range(0, len(again), 64)]
    root = ctx.root
    import os

    tasks = [ImageTask([(r.sample, os.path.join(root, r.sample)) for r in c], th.max_image_pixels,
                       th.min_image_side, th.max_aspect, form=form, checks=False) for c in chunks]
    for res in ctx.engine.map_ordered(inspect_shard, tasks):
        for new in res:
            old = by_sample[new.sample]
            old.sums, old.fmoments, old.form = new.sums, new.fmoments, new.form


def _index(s, kept: list, labels: dict):
    import pyarrow as pa

    from datasan.checks.images import channels_of

    cols: dict[str, list] = {k: [] for k in (
        "sample", "label", "width", "height", "mode", "channels", "format", "bytes", "hash", "dataset", "split")}
    for r in kept:
        cols["sample"].append(r.sample)
        cols["label"].append(labels.get(r.sample))
        cols["width"].append(r.width)
        cols["height"].append(r.height)
        cols["mode"].append(r.mode)
        cols["channels"].append(channels_of(r.mode) if r.mode else None)
        cols["format"].append(r.format or None)
        cols["bytes"].append(r.bytes)
        cols["hash"].append(r.digest.hex() if r.digest else None)
        cols["dataset"].append(s.folder)
        cols["split"].append(s.split_of(r.sample))
    schema = pa.schema([("sample", pa.string()), ("label", pa.string()), ("width", pa.int32()),
                        ("height", pa.int32()), ("mode", pa.string()), ("channels", pa.int8()),
                        ("format", pa.string()), ("bytes", pa.int64()), ("hash", pa.string()),
                        ("dataset", pa.string()), ("split", pa.string())])
    return pa.table(cols, schema=schema)


def recompute_stats(outcome: SourceOutcome, ctx: ScanContext | None = None) -> None:
    """Rebuild ``outcome.stats`` (per-channel mean/std and class counts) over the samples
    still in ``outcome.index``.

    Exact and without decoding: the per-image integer pixel sums of the kept
    images are kept in ``outcome.source.meta["pixel_sums"]`` and summed again
    over the remaining samples (the probe calls this after it removed samples).
    """
    from datasan.sources.images.pixels import PixelSums
    from datasan.stats import ChannelMoments, Moments

    name = outcome.source.name
    index = outcome.index
    samples = index.column("sample").to_pylist() if index is not None else []
    labels = index.column("label").to_pylist() if index is not None else []
    partials: dict[str, Any] = outcome.source.meta.get("pixel_sums", {})
    by_scale: dict[int, PixelSums] = {}
    floats: list[list] = []
    count = 0
    for smp in samples:
        p = partials.get(smp)
        if p is None:
            continue
        sums, fmoments = p
        count += 1
        if sums is not None:
            acc = by_scale.get(sums.scale)
            if acc is None:
                acc = by_scale[sums.scale] = PixelSums(sums.scale)
            acc.add(sums)
        else:
            floats.append(fmoments)
    total = ChannelMoments()
    for scale in sorted(by_scale):
        total.merge(by_scale[scale].moments())
    for fm in floats:
        total.merge(ChannelMoments([Moments().merge(m) for m in fm]))
    entry: dict[str, Any] = {"count": count, "channels": len(total.channels) or None,
                             "mean": [m.mean for m in total.channels] if count else [],
                             "std": [m.std for m in total.channels] if count else []}
    stats: dict[str, Any] = {"images": {name: entry}}
    layout = outcome.source.meta["set"].layout
    if layout in ("table", "folders", "split-folders"):
        stats["labels"] = {name: dict(sorted(Counter(v for v in labels if v is not None).items()))}
    outcome.stats = stats
