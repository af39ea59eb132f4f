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
per-image sums stay in ``source.meta["store"]`` (``store.py``, compact
columns) so that :func:`recompute_stats` can rebuild the statistics, exactly
and without decoding anything again, after the probe quarantines some images.
"""

from __future__ import annotations

import posixpath

from array import array
from collections import Counter
from typing import Any

from datasan.discover import FileEntry
from datasan.findings import FindingBuffer
from datasan.outputs.warm import import_in_background, start_chart_helper, warm_report_imports, when_work_starts
from datasan.sources.base import ScanContext, Source, SourceOutcome

#: what writing the index imports (not pandas: the command line keeps pyarrow from importing
#: it, and a background import of it only took CPU from the workers)
OUTPUT_MODULES = ("pyarrow", "pyarrow.parquet", "pyarrow.compute")

#: values of ScanOptions.image_labels
LABEL_MODES = ("auto", "table", "folders", "none")


class ImageKind:
    """The image source kind (see the module docstring)."""

    name = "images"
    source_kinds = ("images",)

    def claim(self, files: list[FileEntry], ctx: ScanContext) -> tuple[list[Source], list[FileEntry]]:
        from datasan.sources.images.layout import group_images

        box_dirs = set(ctx.shared.get("box_image_dirs") or ())
        mode = getattr(ctx.options, "image_labels", "auto")
        if mode not in LABEL_MODES:
            from datasan.errors import UsageError

            raise UsageError(f"image_labels must be one of {', '.join(LABEL_MODES)}, not {mode!r}")
        label_files = {ctx.options.label_file} | {o.get("label_file") for o in ctx.options.sources.values()}
        label_files = frozenset(posixpath.normpath(f.replace("\\", "/")) for f in label_files if f)
        sets, rest = group_images(files, ctx.root, box_dirs, mode, label_files)
        sources = [Source(kind="images", name=s.folder, files=list(s.images), meta={"set": s}) for s in sets]
        return sources, rest

    def run(self, sources: list[Source], ctx: ScanContext) -> tuple[list[SourceOutcome], FindingBuffer]:
        from datasan.checks.image_quality import QualityLimits
        from datasan.sources.images.decode import ImageTask, inspect_shard

        opts = ctx.options
        th = opts.thresholds
        quality = QualityLimits(th.min_blur, th.dark_p95, th.bright_p5, th.min_entropy)
        size = max(1, int(getattr(opts, "shard_images", 128)))
        tasks: list[tuple[int, ImageTask]] = []
        for i, src in enumerate(sources):
            files = [(f.rel, f.path) for f in src.files]
            # small sets still spread over every worker
            chunk = max(1, min(size, -(-len(files) // max(1, ctx.engine.parallelism))))
            for k in range(0, len(files), chunk):
                tasks.append((i, ImageTask(files[k:k + chunk], th.max_image_pixels, th.min_image_side,
                                           th.max_aspect, quality=quality)))
        from datasan.sources.images.store import RecordStore

        if isinstance(getattr(ctx.engine, "preload", None), set):
            # imported once in the forkserver instead of once per worker (if the pool starts now)
            ctx.engine.preload.update({"datasan.sources.images.decode", "numpy", "PIL.Image",
                                       "PIL.JpegImagePlugin", "PIL.PngImagePlugin"})
        stores = [RecordStore() for _ in sources]
        found = [FindingBuffer() for _ in sources]
        warm = ctx.engine.parallelism > 1 and len(tasks) > 1
        # the chart helper starts with the work (in its own process: no competition for this one)
        when_work_starts(ctx, lambda: start_chart_helper(ctx), here=len(tasks) == 1)
        for (i, _), recs in zip(tasks, ctx.engine.map_ordered(inspect_shard, [t for _, t in tasks])):
            if warm:
                # the workers are busy and this process mostly waits for them: load the
                # output libraries now (not before: it would slow down starting the pool)
                import_in_background(OUTPUT_MODULES)
                warm_report_imports(ctx)
                warm = False
            for r in recs:
                stores[i].add(r)
                if r.findings:
                    found[i].extend(r.findings)
            if ctx.progress is not None:
                ctx.progress.advance(len(recs))
        outcomes = [_finish(src, st, fb, ctx) for src, st, fb in zip(sources, stores, found)]
        return outcomes, FindingBuffer()

    def probe_feed(self, outcome: SourceOutcome, ctx: ScanContext):
        """Batches of the kept, labelled images for the probe (see ``probe_feed.py``)."""
        from datasan.sources.images.probe_feed import image_feed

        return image_feed(outcome, ctx)

    def drop_samples(self, outcome: SourceOutcome, ctx: ScanContext, samples: list[str]) -> dict[str, Any]:
        """Take ``samples`` out of index.parquet and recompute the statistics without them."""
        import pyarrow as pa
        import pyarrow.compute as pc

        index = outcome.index
        gone = pc.is_in(index.column("sample"), value_set=pa.array(samples, type=pa.string()))
        outcome.index = index.filter(pc.invert(gone))
        outcome.kept -= index.num_rows - outcome.index.num_rows
        recompute_stats(outcome, ctx)
        return {"stats_recomputed": True}


# --------------------------------------------------------------------------- finishing one set

def _labels(s, names: list[str], fb: FindingBuffer) -> tuple[dict[str, str | None], dict[str, tuple[str, int | None]]]:
    """The label of every image of the set (``names``), adding the label findings to ``fb``."""
    from datasan.checks import images as checks

    if s.layout in ("folders", "split-folders"):
        found = checks.folder_labels(names, s.label_of, s.folder)
    elif s.layout == "table":
        found = checks.table_labels(s.rows, names, s.tables)
    else:
        return {smp: None for smp in names}, {}
    fb.extend(found.findings)
    return found.labels, found.where


def _finish(src: Source, st, found: FindingBuffer, ctx: ScanContext) -> SourceOutcome:
    from datasan.checks import images as checks

    opts = ctx.options.for_source(src.name)  # per-dataset classes / num_classes from the config
    s = src.meta["set"]
    fb = FindingBuffer()
    fb.extend(s.findings)
    fb.merge(found)
    names = st.samples
    labels, where = _labels(s, names, fb)
    present = {k: v for k, v in labels.items() if v is not None}
    fb.extend(checks.label_value_findings(present, opts, where))
    ok = [i for i in range(len(st)) if st.ok[i]]
    fb.extend(checks.mode_outliers({names[i]: st.name(st.mode, i) for i in ok}))
    keys = _identity_keys(st, ok, ctx)
    fb.extend(checks.duplicates((names[i], keys.get(i, st.digest(i)), labels.get(names[i]), st.digest(i))
                                for i in ok))
    fb.extend(_near_duplicates(s, st, ok, labels, keys, opts.thresholds.near_duplicate_bits, ctx))
    fb.apply_policy(opts)
    bad = {smp for smp, sev in zip(fb.column("sample"), fb.column("severity")) if sev == "error" and smp}
    kept = [i for i in range(len(st)) if names[i] not in bad]
    _remeasure(st, kept, ctx)
    src.meta["store"] = st
    src.meta["kept_rows"] = array("q", kept)
    index = _index(s, st, kept, labels)
    outcome = SourceOutcome(src, "images", len(st), len(kept), fb, index=index,
                            report={"layout": s.layout, "label_tables": list(s.tables)})
    recompute_stats(outcome, ctx)
    return outcome


def _dataset_form(st, kept: list[int]) -> str:
    forms = Counter(st.name(st.form, i) for i in kept if st.measured(i))
    if not forms:
        return "RGB"
    return sorted(forms.items(), key=lambda kv: (-kv[1], kv[0] != "RGB"))[0][0]


def _remeasure(st, kept: list[int], ctx: ScanContext) -> None:
    """Give every kept image pixel sums in its dataset's form (gray images among RGB ones
    are replicated cheaply in place; RGB images among gray ones are decoded again as L)."""
    from datasan.discover import path_of
    from datasan.sources.images.decode import ImageTask, inspect_shard

    form = _dataset_form(st, kept)
    again = []
    for i in kept:
        if not st.measured(i) or st.name(st.form, i) == form:
            continue
        if form == "RGB":  # gray -> RGB: the same channel three times
            sums, fm = st.sums(i), st.fmoments.get(i)
            st.set_pixels(i, "RGB", sums.replicated(3) if sums else None, fm * 3 if fm else None)
        else:
            again.append(i)
    if not again:
        return
    th = ctx.options.thresholds
    chunks = [again[k:k + 64] for k in range(0, len(again), 64)]
    tasks = [ImageTask([(st.samples[i], path_of(ctx.root, st.samples[i])) for i in c], th.max_image_pixels,
                       th.min_image_side, th.max_aspect, form=form, checks=False) for c in chunks]
    for c, res in zip(chunks, ctx.engine.map_ordered(inspect_shard, tasks)):
        for i, new in zip(c, res):
            st.set_pixels(i, new.form or form, new.sums, new.fmoments)


def _candidate_key(st, i: int) -> tuple:
    """What pixel-identical images share for sure: size, mode, exact pixel sums, hashes."""
    return (st.width[i], st.height[i], st.mode[i], st.scale[i], st.n[i], tuple(st.s[3 * i:3 * i + 3]),
            tuple(st.q[3 * i:3 * i + 3]), st.phash[i], st.dhash[i])


def _identity_keys(st, ok: list[int], ctx: ScanContext) -> dict[int, bytes]:
    """A pixel hash for the images that may be another encoding of another image's pixels.

    Hashing every image's pixels in the workers would cost a third of the decode;
    instead only the images whose candidate key matches another's while their
    bytes differ are decoded again (here, a handful in a normal dataset).
    """
    from datasan.discover import path_of
    from datasan.sources.images.perceptual import pixel_digest

    import numpy as np

    rows = np.asarray([i for i in ok if st.perceived[i]], dtype=np.int64)
    if len(rows) < 2:
        return {}
    # equal hashes first, in numpy (no Python object per image); the full key only for those
    mixed = np.frombuffer(st.phash, np.uint64)[rows] ^ (np.frombuffer(st.dhash, np.uint64)[rows]
                                                         * np.uint64(0x9E3779B97F4A7C15))
    _, inverse, counts = np.unique(mixed, return_inverse=True, return_counts=True)
    groups: dict[tuple, list[int]] = {}
    for i in rows[counts[inverse] > 1].tolist():
        groups.setdefault(_candidate_key(st, i), []).append(i)
    keys: dict[int, bytes] = {}
    for members in groups.values():
        if len(members) < 2 or len({st.digest(i) for i in members}) < 2:
            continue
        for i in members:
            d = pixel_digest(path_of(ctx.root, st.samples[i]))
            if d is not None:
                keys[i] = b"px" + d
    return keys


def _near_duplicates(s, st, ok: list[int], labels: dict, keys: dict[int, bytes], bits: int,
                     ctx: ScanContext | None = None):
    """DS211-DS213 over the perceived images of the set (see ``neardup.py``); the band join's
    answer comes from the scan's cache when its inputs did not change."""
    import numpy as np

    from datasan.cache.memo import cached_call
    from datasan.checks.image_duplicates import near_duplicate_findings
    from datasan.sources.images.neardup import near_partners

    rows = [i for i in ok if st.perceived[i]]
    if bits < 0 or len(rows) < 2:
        return []
    names = [st.samples[i] for i in rows]
    labs = [labels.get(x) for x in names]
    splits = [s.split_of(x) for x in names]
    codes: dict = {None: -1}
    code = lambda v: codes.setdefault(v, len(codes))  # noqa: E731
    exact: dict[bytes, int] = {}
    ids = [exact.setdefault(keys.get(i, st.digest(i)), len(exact)) for i in rows]
    phash = np.frombuffer(st.phash, dtype=np.uint64)[rows]
    dhash = np.frombuffer(st.dhash, dtype=np.uint64)[rows]
    found = cached_call(ctx.engine if ctx is not None else None, "near_partners", near_partners,
                        phash, dhash, np.asarray(ids, np.int64),
                        np.asarray([code(("split", v)) if v else -1 for v in splits], np.int64),
                        np.asarray([code(("label", v)) if v is not None else -1 for v in labs], np.int64),
                        bits, codes.get(("split", "train"), -2))
    return list(near_duplicate_findings(names, labs, splits, found.near.tolist(), found.conflict.tolist(),
                                        found.leak.tolist()))


def _scores(st, kept: list[int]) -> dict[str, list]:
    """index.parquet's perceptual columns (null where an image has none: 16-bit, float)."""
    has = [bool(st.perceived[i]) for i in kept]
    luma = st.luma
    return {
        "phash": [f"{st.phash[i]:016x}" if h else None for i, h in zip(kept, has)],
        "dhash": [f"{st.dhash[i]:016x}" if h else None for i, h in zip(kept, has)],
        "blur": [st.blur[i] if h else None for i, h in zip(kept, has)],
        "brightness_p5": [luma[3 * i] if h else None for i, h in zip(kept, has)],
        "brightness_p50": [luma[3 * i + 1] if h else None for i, h in zip(kept, has)],
        "brightness_p95": [luma[3 * i + 2] if h else None for i, h in zip(kept, has)],
        "entropy": [st.entropy[i] if h else None for i, h in zip(kept, has)],
    }


SCORE_SCHEMA = (("phash", "string"), ("dhash", "string"), ("blur", "float32"), ("brightness_p5", "int16"),
                ("brightness_p50", "int16"), ("brightness_p95", "int16"), ("entropy", "float32"))


def _index(s, st, kept: list[int], labels: dict):
    import pyarrow as pa

    from datasan.checks.images import channels_of

    modes = [st.name(st.mode, i) for i in kept]
    formats = [st.name(st.format, i) or None for i in kept]
    samples = [st.samples[i] for i in kept]
    cols = {
        "sample": samples,
        "label": [labels.get(x) for x in samples],
        "width": [st.width[i] for i in kept],
        "height": [st.height[i] for i in kept],
        "mode": modes,
        "channels": [channels_of(m) if m else None for m in modes],
        "format": formats,
        "bytes": [st.nbytes[i] for i in kept],
        "hash": [st.digest(i).hex() if st.nbytes[i] else None for i in kept],
        "dataset": [s.folder] * len(kept),
        "split": [s.split_of(x) for x in samples],
        **_scores(st, kept),
    }
    schema = pa.schema([("sample", pa.string()), ("label", pa.string()), ("width", pa.int32()),
                        ("height", pa.int32()), ("mode", pa.string()), ("channels", pa.int8()),
                        ("format", pa.string()), ("bytes", pa.int64()), ("hash", pa.string()),
                        ("dataset", pa.string()), ("split", pa.string())]
                       + [(name, getattr(pa, typ)()) for name, typ in SCORE_SCHEMA])
    return pa.table(cols, schema=schema)


def recompute_stats(outcome: SourceOutcome, ctx: ScanContext | None = None) -> None:
    """Rebuild ``outcome.stats`` (per-channel mean/std and class counts) over the samples
    still in ``outcome.index``.

    Exact and without decoding: the per-image integer pixel sums of the kept
    images stay in ``outcome.source.meta["store"]`` (a compact
    :class:`~datasan.sources.images.store.RecordStore`); they are summed again,
    as Python integers, over the remaining samples (the probe calls this after
    it removed samples from the index).
    """
    from datasan.sources.images.pixels import PixelSums
    from datasan.stats import ChannelMoments, Moments

    name = outcome.source.name
    index = outcome.index
    remaining = set(index.column("sample").to_pylist()) if index is not None else set()
    labels = index.column("label").to_pylist() if index is not None else []
    st = outcome.source.meta.get("store")
    by_scale: dict[int, PixelSums] = {}
    floats: list[list] = []
    count = 0
    counted = []  # drift: the images the profile describes
    for i in (outcome.source.meta.get("kept_rows") or ()):
        if st.samples[i] not in remaining or not st.measured(i):
            continue
        count += 1
        counted.append(i)
        sums = st.sums(i)
        if sums is not None:
            acc = by_scale.get(sums.scale)
            if acc is None:
                acc = by_scale[sums.scale] = PixelSums(sums.scale)
            acc.add(sums)
        else:
            floats.append(st.fmoments[i])
    total = ChannelMoments()
    for scale in sorted(by_scale):
        total.merge(by_scale[scale].moments())
    for fm in floats:
        total.merge(ChannelMoments([Moments().merge(m) for m in fm]))
    entry: dict[str, Any] = {"count": count, "channels": len(total.channels) or None,
                             "mean": [m.mean for m in total.channels] if count else [],
                             "std": [m.std for m in total.channels] if count else []}
    from datasan.stats import image_profile  # drift: brightness / size / aspect

    entry["profile"] = image_profile(st, counted)
    stats: dict[str, Any] = {"images": {name: entry}}
    layout = outcome.source.meta["set"].layout
    if layout in ("table", "folders", "split-folders"):
        stats["labels"] = {name: dict(sorted(Counter(v for v in labels if v is not None).items()))}
    outcome.stats = stats
