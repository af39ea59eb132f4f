"""Scan options: one typed object that the CLI, the config file and the API fill."""

from __future__ import annotations

import os
from dataclasses import dataclass, field

FAIL_ON = ("error", "warning", "never")
TASKS = ("auto", "classification", "regression")
#: what to do with a sparse column (more missing than thresholds.sparse_fraction)
MISSING_POLICIES = ("quarantine", "drop-column")
#: column types a config may declare (text tables), and the type each is read as
COLUMN_TYPES = {"int": "int64", "float": "float64", "bool": "bool", "string": "string", "category": "string"}


@dataclass
class Thresholds:
    """Tunable limits of the checks (all conservative by default)."""

    #: regression target: robust z-score (|x - median| / (1.4826 MAD)) above which,
    #: in value *and* in log-magnitude (``log_outlier_k``), a target is distant
    outlier_k: float = 50.0
    log_outlier_k: float = 10.0
    #: class ids: an id above ``gap_factor * (next lower id + 1) + 8`` and in a tail
    #: holding at most ``distant_tail_fraction`` of the rows is distant
    gap_factor: float = 4.0
    distant_tail_fraction: float = 0.01
    #: classification when the target has at most this many distinct values
    max_classes: int = 1000
    #: feature magnitude above which squares overflow float32
    overflow_abs: float = 1e18
    #: scale: a column is unnormalized if its std or max |x| is above this ...
    scale_limit: float = 100.0
    #: ... or its std differs from the median column std by more than this factor
    scale_ratio: float = 1000.0
    #: a string column is numeric with a few bad values when at least this share parses
    numeric_share: float = 0.9
    #: a column missing in more than this share of the rows is sparse (DS118)
    sparse_fraction: float = 0.2
    #: image checks (issue 3)
    min_image_side: int = 8
    max_aspect: float = 10.0
    #: box labels (issue 4): a box may pass the image border by this fraction of the
    #: image side (at least 1 px for COCO) before it is outside; boxes under
    #: ``min_box_px`` pixels wide or high are tiny
    box_tolerance: float = 0.01
    min_box_px: float = 1.0
    #: pixels (width x height, from the header) above which an image is a decompression
    #: bomb; Pillow's own Image.MAX_IMAGE_PIXELS by default
    max_image_pixels: int = 89_478_485
    #: probe (issue 5): a finite loss is extreme when its log is more than this many
    #: robust standard deviations (1.4826 MAD) above the median log-loss
    probe_outlier_k: float = 10.0
    #: drift against --baseline (see docs/drift.md for how these were chosen): a change is
    #: a finding when it passes its threshold *and* drift_noise_z standard errors of
    #: the sampling noise expected for the two scans' sizes
    drift_js: float = 0.2  # Jensen-Shannon distance (base 2) of a numeric column
    drift_mean_shift: float = 0.5  # |mean - baseline mean| in baseline standard deviations
    drift_class_linf: float = 0.05  # L-infinity distance of class (and category) shares
    drift_missing_rate: float = 0.05  # change in the share of missing cells of a column
    drift_noise_z: float = 4.0
    drift_bins: int = 20  # equal-mass bins of the baseline the JS distance is taken over


@dataclass
class ScanOptions:
    """Everything that steers one scan.  Defaults are the CLI's defaults."""

    target: str | None = None
    task: str = "auto"
    num_classes: int | None = None
    classes: list[str] | None = None
    fail_on: str = "error"
    workers: int = 0  # 0: all cores
    probe: bool = True
    select: list[str] = field(default_factory=list)
    ignore: list[str] = field(default_factory=list)
    severity: dict[str, str] = field(default_factory=dict)
    thresholds: Thresholds = field(default_factory=Thresholds)
    #: rows per shard for Parquet / Arrow files (a file is split only when larger)
    shard_rows: int = 4_000_000
    #: rows per record batch read from a file
    batch_rows: int = 131_072
    #: rows per row group written to clean Parquet files
    row_group_rows: int = 262_144
    progress: bool = False
    # ---- issue 6: gate, baseline and per-source settings (config file / API) ----
    #: the gate fails only when more than this share of some source's samples is
    #: quarantined (error findings that quarantine a sample then no longer fail it by themselves)
    max_quarantine_fraction: float | None = None
    #: the same limit over all sources together (either limit may be set, or both)
    max_total_quarantine_fraction: float | None = None
    #: a previous findings.parquet (or the report.json beside it, or its out folder):
    #: findings already in it do not count for the gate
    baseline: str | None = None
    #: label file of an image folder (relative to PATH), usually set per source
    label_file: str | None = None
    #: per-source overrides: {glob: {"target": ..., "task": ..., "num_classes": ...,
    #: "classes": [...], "label_file": ..., "types": {...}, "missing_policy": ...,
    #: "thresholds": {...}}}; see for_source
    sources: dict[str, dict] = field(default_factory=dict)
    #: per-source target columns {glob: column} (``--target FILE=COL``); they win over ``sources``
    targets: dict[str, str] = field(default_factory=dict)
    #: declared column types of text tables {column: int|float|bool|string|category};
    #: they replace the type datasan would decide from the values
    types: dict[str, str] = field(default_factory=dict)
    #: sparse columns (DS118): "quarantine" their rows with a missing value (the
    #: default) or "drop-column" (the clean file leaves the column out, rows are kept)
    missing_policy: str = "quarantine"

    #: how image labels are found (issue 3): "auto" (labels table, else ImageFolder
    #: class folders, else unlabeled), "table", "folders" or "none" (unlabeled)
    image_labels: str = "auto"
    #: images per shard for image datasets
    shard_images: int = 128

    def for_source(self, rel: str) -> "ScanOptions":
        """These options with the overrides of every ``sources`` glob matching ``rel``
        (a posix path relative to PATH) applied in order; self when none matches."""
        import dataclasses
        from fnmatch import fnmatchcase

        def hit(g: str) -> bool:
            return fnmatchcase(rel, g) or fnmatchcase(rel, g.rstrip("/") + "/*")

        hits = [o for g, o in self.sources.items() if hit(g)]
        hits += [{"target": col} for g, col in self.targets.items() if hit(g)]
        if not hits:
            return self
        changes: dict = {}
        th = dataclasses.replace(self.thresholds)
        for o in hits:
            for k, v in o.items():
                if k == "thresholds":
                    th = dataclasses.replace(th, **v)
                elif k == "types":
                    changes["types"] = {**changes.get("types", self.types), **v}
                else:
                    changes[k] = v
        return dataclasses.replace(self, thresholds=th, **changes)
    #: probe (issue 5): "module:factory" of a user network, the torch device, samples
    #: per batch (None: 32768 table rows, 64 images) and the seed of the network
    probe_model: str | None = None
    device: str = "cpu"
    probe_batch_size: int | None = None
    probe_seed: int = 0
    #: seconds the probe may spend on one source (user model included) before it gives
    #: up on that source with DS406; 0 means no limit
    probe_timeout: float = 600.0

    def resolved_workers(self) -> int:
        """The number of worker processes to use (all cores when 0)."""
        return self.workers if self.workers > 0 else (os.cpu_count() or 1)


def effective_severity(options: "ScanOptions", code: str) -> str | None:
    """The severity a finding of ``code`` gets under ``options``; None when the rule is off.

    ``ignore`` wins over ``select``; an empty ``select`` selects every rule.
    Severity overrides come from ``options.severity`` (code or prefix; the
    longest matching key wins).
    """
    from datasan.rules import RULES, matches

    if options.ignore and matches(code, options.ignore):
        return None
    if options.select and not matches(code, options.select):
        return None
    best = None
    for key, sev in options.severity.items():
        if code.startswith(key.upper()) and (best is None or len(key) > len(best[0])):
            best = (key, sev)
    return best[1] if best else RULES[code].severity
