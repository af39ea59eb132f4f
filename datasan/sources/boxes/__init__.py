"""Box labels (COCO JSON, YOLO txt) as a source kind.

Claims, before every other kind: COCO files (any .json naming images,
annotations and categories), YOLO label files (``.txt`` under a ``labels``
folder that mirrors an ``images`` folder) and the ``classes.txt`` /
``data.yaml`` that name their classes.  The images themselves are left to the
image kind; their folders are recorded in ``ctx.shared["box_image_dirs"]`` so
that it does not ask for class labels for them.

One source per COCO file (one shard) and one per YOLO ``labels`` folder
(shards of :data:`CHUNK` label files).  The unit is the box:
``SourceOutcome(unit="boxes", quarantine_key="unit")``.
"""

from __future__ import annotations

import os

from datasan import fs
from datasan.checks.boxes import BACKGROUND_IMAGES, NO_CLASS_LIST
from datasan.checks.boxes import BoxStats
from datasan.discover import FileEntry
from datasan.findings import Finding, FindingBuffer
from datasan.sources.base import ScanContext, Source, SourceOutcome

#: label files per YOLO shard
CHUNK = 512


class BoxKind:
    """The box-label source kind (see the module docstring)."""

    name = "boxes"
    source_kinds = ("coco", "yolo")
    #: why the probe skips its sources (it has no probe capability)
    not_probed_because = "box labels are checked statically"

    def claim(self, files: list[FileEntry], ctx: ScanContext) -> tuple[list[Source], list[FileEntry]]:
        from datasan.sources.boxes import coco, yolo

        by_rel = {f.rel: f for f in files}
        folders: set[str] = set()
        for f in files:
            parts = f.rel.split("/")
            for k in range(1, len(parts)):
                folders.add("/".join(parts[:k]))
        taken: set[str] = set()
        sources: list[Source] = []
        image_dirs: set[str] = set()
        # COCO files
        for f in files:
            if f.suffix != ".json" or not coco.looks_like_coco(f.path):
                continue
            json_dir = os.path.dirname(f.rel)
            beside = f"{json_dir}/images" if json_dir else "images"
            image_dir = beside if beside in folders else json_dir
            local = [g.rel for g in files
                     if os.path.splitext(g.rel)[1].lower() in yolo.IMAGE_EXTS and _under(g.rel, image_dir)
                     and (image_dir != json_dir or os.path.dirname(g.rel) == json_dir)]
            sources.append(Source("coco", f.rel, [f], {"image_dir": image_dir, "local_images": local}))
            taken.add(f.rel)
            image_dirs.add(image_dir)
        # YOLO label folders
        datasets: dict[str, dict] = {}
        for f in files:
            if f.rel in taken:
                continue
            lay = yolo.label_layout(f.rel)
            if lay is None or lay[1] not in folders:
                continue
            labels_dir, images_dir, key = lay
            ds = datasets.setdefault(labels_dir, {"images_dir": images_dir, "labels": []})
            ds["labels"].append((key, f))
            taken.add(f.rel)
        for labels_dir, ds in sorted(datasets.items()):
            images: dict[str, str] = {}
            for f in files:
                k = yolo.image_key(f.rel, ds["images_dir"])
                if k is not None and k not in images:
                    images[k] = f.rel
            class_file = _class_file(labels_dir, by_rel)
            if class_file is not None:
                taken.add(class_file.rel)
            label_keys = {k for k, _ in ds["labels"]}
            background = sorted(rel for k, rel in images.items() if k not in label_keys)
            sources.append(Source("yolo", labels_dir, [f for _, f in ds["labels"]], {
                "images": {k: images.get(k) for k, _ in ds["labels"]},
                "class_file": class_file,
                "background": background,
                "images_dir": ds["images_dir"],
            }))
            image_dirs.add(ds["images_dir"])
        ctx.shared.setdefault("box_image_dirs", set()).update(image_dirs)
        return sources, [f for f in files if f.rel not in taken]

    def run(self, sources: list[Source], ctx: ScanContext) -> tuple[list[SourceOutcome], FindingBuffer]:
        from datasan.sources.boxes import coco

        outcomes: list[SourceOutcome] = []
        clean_root = fs.join(ctx.staging, "clean")
        cocos = [s for s in sources if s.kind == "coco"]
        tasks = [coco.CocoTask(s.name, s.files[0].path, ctx.root, s.meta["image_dir"], s.meta["local_images"],
                               fs.join(clean_root, s.name), ctx.options) for s in cocos]
        for src, res in zip(cocos, ctx.engine.map_ordered(coco.scan_coco, tasks)):
            if ctx.progress is not None:
                ctx.progress.advance(res.seen)
            outcomes.append(SourceOutcome(
                src, "boxes", res.seen, res.kept, res.findings,
                stats=_stats(src.name, res.stats, "pixels") if res.clean_file else {},
                clean_files=[src.name] if res.clean_file else [],
                quarantine_key="unit",
                report={"format": "coco", "readable": res.readable}))
        for src in sources:
            if src.kind == "yolo":
                outcomes.append(self._run_yolo(src, ctx, clean_root))
        return outcomes, FindingBuffer()

    def _run_yolo(self, src: Source, ctx: ScanContext, clean_root: str) -> SourceOutcome:
        from datasan.sources.boxes import yolo

        fb = FindingBuffer()
        names = None
        cf = src.meta["class_file"]
        if cf is not None:
            try:
                names = yolo.read_class_names(cf.path)
            except OSError:
                names = None
        if names is None:
            where = f" ({cf.rel} has no names)" if cf is not None else ""
            fb.add(Finding(NO_CLASS_LIST.code,
                           f"{src.name}: no classes.txt or data.yaml names found{where}; class ids were "
                           "only checked to be >= 0.", source=src.name))
        bg = src.meta["background"]
        if bg:
            shown = ", ".join(bg[:5]) + (", ..." if len(bg) > 5 else "")
            fb.add(Finding(BACKGROUND_IMAGES.code,
                           f"{len(bg)} image(s) under {src.meta['images_dir']} have no label file "
                           f"(background images): {shown}.", source=src.name))
        fb.apply_policy(ctx.options)
        files = [yolo.YoloFile(f.rel, f.path, src.meta["images"].get(_key_of(f.rel))) for f in src.files]
        tasks = [yolo.YoloTask(files[i:i + CHUNK], names, clean_root, ctx.options)
                 for i in range(0, len(files), CHUNK)]
        seen = kept = 0
        stats = BoxStats()
        clean: list[str] = []
        for res in ctx.engine.map_ordered(yolo.scan_yolo_chunk, tasks):
            seen += res.seen
            kept += res.kept
            stats.merge(res.stats)
            fb.merge(res.findings)
            clean.extend(res.clean_files)
            if ctx.progress is not None:
                ctx.progress.advance(res.seen)
        return SourceOutcome(src, "boxes", seen, kept, fb, stats=_stats(src.name, stats, "normalized"),
                             clean_files=clean, quarantine_key="unit",
                             report={"format": "yolo", "classes": len(names) if names is not None else None})


def _key_of(rel: str) -> str:
    from datasan.sources.boxes import yolo

    return yolo.label_layout(rel)[2]


def _under(rel: str, folder: str) -> bool:
    return not folder or rel.startswith(folder + "/")


def _class_file(labels_dir: str, by_rel: dict[str, FileEntry]) -> FileEntry | None:
    """The nearest classes.txt / data.yaml: in the labels folder, then its parents up to PATH."""
    from datasan.sources.boxes.yolo import CLASS_FILES

    folder = labels_dir
    while True:
        for name in CLASS_FILES:
            f = by_rel.get(f"{folder}/{name}" if folder else name)
            if f is not None:
                return f
        if not folder:
            return None
        folder = os.path.dirname(folder)


def _stats(name: str, stats: BoxStats, units: str) -> dict:
    return {"labels": {name: dict(sorted(stats.classes.items()))}, "boxes": {name: stats.as_json(units)}}
