"""Scan options: one typed object that the CLI, the config file and the API fill.

Every option is declared once, here, as a dataclass field whose metadata
(:class:`Meta`) says what it means, whether the config file takes it (at the
top level, per source), how its value is checked, and how it is given on the
command line (:class:`Flag`).  ``datasan/config.py`` (keys, validation),
``datasan/cli.py`` (the options of ``datasan scan``) and the options tables
of the README and docs/api.md are generated from these fields; the value
checks they name live in ``datasan/option_checks.py``.  This module imports
nothing heavy: ``datasan --help`` builds its options from it.
"""

from __future__ import annotations

import dataclasses
import os
from dataclasses import dataclass, field
from typing import Any, Callable

from datasan import option_checks as oc
from datasan.errors import UsageError

FAIL_ON = ("error", "warning", "never")
TASKS = ("auto", "classification", "regression")
#: what to do with a sparse column (more missing than thresholds.sparse_fraction)
MISSING_POLICIES = ("quarantine", "drop-column")
#: how image labels are found
IMAGE_LABELS = ("auto", "table", "folders", "none")
#: where shard functions run (datasan/engine.py builds them)
ENGINES = ("local", "ray")
#: column types a config may declare (text tables), and the type each is read as
COLUMN_TYPES = {"int": "int64", "float": "float64", "bool": "bool", "string": "string", "category": "string"}

META_KEY = "datasan"


@dataclass(frozen=True)
class Flag:
    """How an option is given on the command line of ``datasan scan``.

    ``help`` is the ``--help`` text; ``metavar`` and ``doc`` (default: ``help``)
    are what the README's options table shows.  ``repeat``: the flag may be
    given several times.  ``to_options`` turns the value given into
    ScanOptions keywords (default: the field itself).
    """

    decls: tuple[str, ...]
    help: str
    metavar: str = ""
    doc: str = ""
    repeat: bool = False
    #: the command-line value's type when it is not the field's (``--classes a,b`` is one string)
    type: type | None = None
    to_options: Callable[[Any], dict[str, Any]] | None = None


@dataclass(frozen=True)
class Meta:
    """What one option means and how it is checked.

    ``config``: a key of the config file; ``per_source``: also a key of a
    ``[sources."<glob>"]`` table.  ``accepts``: the value types the config
    file may give (default: from the field's type).  ``choices``: the only
    values allowed.  ``check(key, value)`` returns the value to use or raises
    ValueError with a sentence that names ``key``.
    """

    doc: str
    config: bool = True
    per_source: bool = False
    accepts: tuple[type, ...] = ()
    choices: tuple[str, ...] = ()
    check: Callable[[str, Any], Any] | None = None
    flag: Flag | None = None


def option(default: Any = dataclasses.MISSING, *, factory: Any = dataclasses.MISSING, **meta: Any) -> Any:
    """A dataclass field carrying its :class:`Meta`."""
    return field(default=default, default_factory=factory, metadata={META_KEY: Meta(**meta)})


def meta_of(f: dataclasses.Field) -> Meta | None:
    """The :class:`Meta` of a field, None for an API-only field."""
    return f.metadata.get(META_KEY)


@dataclass
class Thresholds:
    """Tunable limits of the checks (all conservative by default); ``[thresholds]`` in the config."""

    outlier_k: float = option(50.0, doc="regression target: robust z-score (abs(x - median) / (1.4826 MAD)) "
                              "above which, in value *and* in log-magnitude (`log_outlier_k`), a target is distant")
    log_outlier_k: float = option(10.0, doc="the same in signed log-magnitude")
    gap_factor: float = option(4.0, doc="class ids: an id above `gap_factor` x (next lower id + 1) + 8, in a "
                               "tail holding at most `distant_tail_fraction` of the rows, is distant")
    distant_tail_fraction: float = option(0.01, doc="see `gap_factor`")
    max_classes: int = option(1000, doc="a target with at most this many distinct values may be classes")
    overflow_abs: float = option(1e18, doc="feature magnitude above which squares overflow float32 (DS105)")
    scale_limit: float = option(100.0, doc="a column is unnormalized (DS107) if its std or max abs(x) is above this")
    scale_ratio: float = option(1000.0, doc="... or its std differs from the median column std by more than "
                                "this factor")
    numeric_share: float = option(0.9, doc="a text column is numeric with a few bad values when at least this "
                                  "share parses")
    sparse_fraction: float = option(0.2, doc="a column missing in more than this share of the rows is sparse "
                                    "(DS118)")
    min_image_side: int = option(8, doc="images with a side under this many pixels are tiny (DS205)")
    max_aspect: float = option(10.0, doc="images whose longer side is more than this many times the shorter "
                               "are extreme (DS206)")
    near_duplicate_bits: int = option(6, check=oc.near_bits,
                                      doc="two images whose pHash and dHash both differ in at most this many "
                                      "bits (of 64) are near duplicates (DS211-DS213); -1 turns it off")
    min_blur: float = option(3.5, doc="images whose variance of the Laplacian (gray, at most 256 px) is below "
                             "this are blurry (DS214); 0 turns it off")
    dark_p95: int = option(30, doc="images whose 95th luminance percentile (0..255) is below this are dark "
                           "(DS215); 0 turns it off")
    bright_p5: int = option(225, doc="images whose 5th luminance percentile (0..255) is above this are "
                            "overexposed (DS216); 255 turns it off")
    min_entropy: float = option(3.0, doc="images whose gray-histogram entropy (bits, 0..8) is below this hold "
                                "little information (DS217); 0 turns it off")
    box_tolerance: float = option(0.01, doc="a box may pass the image border by this fraction of the image side "
                                  "(at least 1 px for COCO) before it is outside (DS325)")
    min_box_px: float = option(1.0, doc="boxes under this many pixels wide or high are tiny (DS335)")
    max_image_pixels: int = option(89_478_485, doc="pixels (width x height, from the header) above which an "
                                   "image is a decompression bomb (DS202); Pillow's MAX_IMAGE_PIXELS")
    probe_outlier_k: float = option(10.0, doc="a finite loss is extreme (DS405) when its log is more than this "
                                    "many robust standard deviations (1.4826 MAD) above the median log-loss")
    drift_js: float = option(0.2, doc="drift against `--baseline`: Jensen-Shannon distance (base 2) of a numeric "
                             "column above which it drifted (DS501); see docs/drift.md for how the drift "
                             "defaults were chosen")
    drift_mean_shift: float = option(0.5, doc="a column's mean moved by more than this many baseline standard "
                                     "deviations (DS502)")
    drift_class_linf: float = option(0.05, doc="L-infinity distance of class (and category) shares above which "
                                     "they drifted")
    drift_missing_rate: float = option(0.05, doc="change in a column's share of missing cells above which it "
                                       "drifted")
    drift_noise_z: float = option(4.0, doc="a change is drift only when it also passes this many standard errors "
                                  "of the sampling noise expected for the two scans' sizes")
    drift_bins: int = option(20, doc="equal-mass bins of the baseline the Jensen-Shannon distance is taken over")


@dataclass
class ScanOptions:
    """Everything that steers one scan.  Defaults are the CLI's defaults.

    Fields without :class:`Meta` (shard sizes, ``progress``) are set only from Python.
    """

    fail_on: str = option(
        "error", doc="lowest severity that fails the gate", choices=FAIL_ON,
        flag=Flag(("--fail-on",), "Lowest severity that fails the gate (exit 1). [default: error]",
                  doc="lowest severity that fails the gate (exit 1; default error)"))
    probe: bool = option(
        True, doc="run the probe network over the kept samples",
        flag=Flag(("--probe/--no-probe",), "Run the probe network over kept samples. [default: probe]",
                  doc="run (default) or skip the probe network over the kept samples"))
    target: str | None = option(
        None, per_source=True, doc="target column of the tables",
        flag=Flag(("--target",), "Target column of tables: NAME for every table, or FILE=NAME for the tables "
                  "matching FILE (a path or glob relative to PATH); repeatable. Default: label, target, labels, "
                  "y, class.", metavar="NAME / FILE=NAME", repeat=True, to_options=oc.cli_targets,
                  doc="target column of every table, or of the tables matching FILE (a path or glob relative "
                  "to PATH); repeatable. A name that no table has exits 2. Default: the first of label, target, "
                  "labels, y, class (y and class only when they do not look like features, DS115)"))
    #: per-source target columns {glob: column} (``--target FILE=COL``); they win over ``sources``
    targets: dict[str, str] = option(factory=dict, check=oc.targets,
                                     doc="per-file target columns {glob: column}, as `--target FILE=NAME`")
    task: str = option(
        "auto", per_source=True, choices=TASKS, doc="task of the target; auto decides from the values",
        flag=Flag(("--task",), "Task of the target; auto decides from the values. [default: auto]",
                  doc="override the task detection"))
    num_classes: int | None = option(
        None, per_source=True, check=oc.at_least(1), doc="class ids must lie in 0..N-1",
        flag=Flag(("--num-classes",), "Number of classes: ids must lie in 0..N-1.", metavar="N",
                  doc="class ids must lie in 0..N-1 (DS103 exact)"))
    classes: list[str] | None = option(
        None, per_source=True, check=oc.strings, doc="the class names; other labels are errors",
        flag=Flag(("--classes",), "Comma-separated class names; other labels are errors.", metavar="a,b,c",
                  type=str, to_options=lambda v: {"classes": oc.split_items(v)}, doc="allowed class names"))
    workers: int = option(
        0, check=oc.at_least(0, " (0: all cores)"), doc="worker processes (0: all cores)",
        flag=Flag(("--workers",), "Worker processes (0: all cores). [default: 0]", metavar="N",
                  doc="worker processes (0 = all cores)"))
    engine: str = option(
        "local", choices=ENGINES, doc="where shard functions run: local processes, or Ray tasks "
        "(`pip install \"datasan[ray]\"`)",
        flag=Flag(("--engine",), "Where shards run: local processes or a Ray cluster. [default: local]",
                  doc="where shards run: `local` processes (default) or Ray tasks (`pip install "
                  "\"datasan[ray]\"`; with `ray`, `--workers N` caps the tasks running at once)"))
    ray_address: str | None = option(
        None, doc="the Ray cluster of `engine = \"ray\"` (default: RAY_ADDRESS, else a local instance with "
        "this machine's cores)",
        flag=Flag(("--ray-address",), "Ray cluster for --engine ray (auto, ray://host:10001); default: "
                  "RAY_ADDRESS, else a local instance.", metavar="ADDRESS",
                  doc="the Ray cluster of `--engine ray` (`auto`, `ray://host:10001`; default `RAY_ADDRESS`, "
                  "else a local instance with this machine's cores)"))
    select: list[str] = option(
        factory=list, accepts=(list, tuple, str), check=oc.rule_codes, doc="only these rule codes or prefixes",
        flag=Flag(("--select",), "Only these rule codes or prefixes (e.g. DS1,DS201).", metavar="CODES",
                  repeat=True, to_options=lambda v: {"select": oc.split_items(v)},
                  doc="only these rule codes or prefixes (`DS1`, `DS104`; comma-separated or repeated)"))
    ignore: list[str] = option(
        factory=list, accepts=(list, tuple, str), check=oc.rule_codes, doc="never these rule codes or prefixes",
        flag=Flag(("--ignore",), "Skip these rule codes or prefixes.", metavar="CODES", repeat=True,
                  to_options=lambda v: {"ignore": oc.split_items(v)}, doc="never these rule codes or prefixes; wins "
                  "over `--select`"))
    #: {code or prefix: severity}; the longest matching key wins
    severity: dict[str, str] = option(factory=dict, check=oc.severities,
                                      doc="per-rule severity {code or prefix: error|warning|info}")
    baseline: str | None = option(
        None, doc="a previous findings.parquet (or its report.json / output folder): findings in it do not "
        "fail the gate; in a config file, relative to the file's folder",
        flag=Flag(("--baseline",), "A previous findings.parquet (or its report.json / output folder): only "
                  "findings not in it fail the gate.", metavar="FILE",
                  doc="a previous `findings.parquet` (or its `report.json` / output folder): only new findings "
                  "fail the gate; given an output folder, its statistics are compared too "
                  "([drift](#drift-against-a-baseline-scan), DS501-DS514)"))
    max_quarantine_fraction: float | None = option(
        None, check=oc.fraction, doc="the gate fails only when more than this share of some source's samples "
        "is quarantined (errors that quarantine a sample then no longer fail it by themselves)",
        flag=Flag(("--max-quarantine-fraction",), "Fail the gate only when more than this share (0..1) of some "
                  "source's samples is quarantined; errors still quarantine.", metavar="F",
                  doc="fail only when some source loses more than this share of its samples to the quarantine "
                  "(the worst source is named; errors still quarantine)"))
    max_total_quarantine_fraction: float | None = option(
        None, check=oc.fraction, doc="the same limit over all sources together",
        flag=Flag(("--max-total-quarantine-fraction",), "Fail the gate when more than this share (0..1) of "
                  "all samples together is quarantined.", metavar="F",
                  doc="fail when more than this share of all samples together is quarantined"))
    probe_model: str | None = option(
        None, check=oc.factory, doc="your probe network and per-sample loss, module:factory",
        flag=Flag(("--probe-model",), "Your probe network: module:factory (see the README).",
                  metavar="module:factory",
                  doc="your own probe network (and per-sample loss) instead of the seeded default"))
    device: str = option(
        "cpu", check=oc.device, doc="torch device of the probe: cpu, cuda or cuda:N",
        flag=Flag(("--device",), "Torch device of the probe: cpu (default), cuda or cuda:N.",
                  metavar="cpu|cuda|cuda:N", doc="torch device of the probe (default cpu)"))
    probe_batch_size: int | None = option(
        None, check=oc.at_least(1), doc="samples per probe batch (default 32768 table rows, 64 images)",
        flag=Flag(("--probe-batch-size",), "Samples per probe batch (default 32768 rows, 64 images).",
                  metavar="N", doc="samples per probe batch (default 32768 rows, 64 images)"))
    probe_seed: int = option(
        0, doc="seed of the probe network",
        flag=Flag(("--probe-seed",), "Seed of the probe network (default 0; results are deterministic for "
                  "a seed).", metavar="N",
                  doc="seed of the probe network (default 0; results are deterministic for a seed)"))
    probe_timeout: float = option(
        600.0, check=oc.seconds, doc="seconds the probe may spend on one source (user model included) before "
        "it gives up on that source with DS406; 0 means no limit",
        flag=Flag(("--probe-timeout",), "Seconds the probe may spend on one source before it skips it with "
                  "DS406 (0: no limit). [default: 600]", metavar="SECONDS",
                  doc="time limit of the probe on one source, user model included (default 600; 0: none); "
                  "past it the source is skipped with DS406"))
    report_html: bool = option(
        True, doc="write report.html, the page for people, beside the other outputs",
        flag=Flag(("--report-html/--no-report-html",), "Write report.html beside the other outputs. "
                  "[default: report-html]",
                  doc="write (default) or skip `report.html`; the other outputs do not depend on it"))
    report_thumbnails: int = option(
        200, check=oc.at_least(0), doc="thumbnails of quarantined and warned images in report.html (at most "
        "128 px each; 0: none), which keeps the file small on any dataset",
        flag=Flag(("--report-thumbnails",), "Thumbnails of quarantined and warned images in report.html "
                  "(0: none). [default: 200]", metavar="N",
                  doc="thumbnails (<= 128 px) of quarantined and warned images in `report.html` (default 200; "
                  "0: none)"))
    cache: str | None = option(
        None, doc="folder of the content cache that makes rescans incremental: a path, `default` (the "
        "per-user folder, `$XDG_CACHE_HOME/datasan` else `~/.cache/datasan`) or `off`; unset: `default` on "
        "the command line, off from Python",
        flag=Flag(("--cache",), "Folder of the content cache (rescans reuse unchanged files' results); "
                  "'off' or --no-cache: none. [default: ~/.cache/datasan]", metavar="DIR",
                  doc="folder of the content cache for [incremental scans](#incremental-scans) (default "
                  "`$XDG_CACHE_HOME/datasan`, else `~/.cache/datasan`; `off` or `--no-cache`: none)"))
    cache_max_bytes: int = option(
        2 << 30, check=oc.at_least(0), doc="the cache folder is pruned to this many bytes after each scan "
        "(least recently used entries first)")
    thresholds: Thresholds = option(factory=Thresholds, per_source=True, accepts=(dict, Thresholds),
                                    check=oc.thresholds,
                                    doc="the limits of the checks (fields of `datasan.options.Thresholds`)")
    #: per-source overrides {glob: {key: value}} (see for_source)
    sources: dict[str, dict] = option(factory=dict, check=oc.sources,
                                      doc="per-source settings by glob on the path relative to PATH")
    types: dict[str, str] = option(factory=dict, per_source=True, check=oc.column_types,
                                   doc="declared column types of text tables {column: int|float|bool|string|"
                                   "category}; they replace the type datasan decides from the values")
    missing_policy: str = option(
        "quarantine", per_source=True, choices=MISSING_POLICIES,
        doc="sparse columns (DS118): quarantine their rows with a missing value, or drop-column (the clean "
        "file leaves the column out, rows are kept)")
    label_file: str | None = option(None, per_source=True, doc="label file of an image folder (relative to PATH)")
    image_labels: str = option(
        "auto", choices=IMAGE_LABELS, doc="how image labels are found: auto (labels table, else ImageFolder "
        "class folders, else unlabeled), table, folders or none (unlabeled)")
    #: rows per shard for Parquet / Arrow files (a file is split only when larger)
    shard_rows: int = 4_000_000
    #: rows per record batch read from a file
    batch_rows: int = 131_072
    #: rows per row group written to clean Parquet files
    row_group_rows: int = 262_144
    #: images per shard for image datasets
    shard_images: int = 128
    #: a progress bar on stderr (a terminal only)
    progress: bool = False

    def for_source(self, rel: str) -> "ScanOptions":
        """These options with the overrides of every ``sources`` glob matching ``rel``
        (a posix path relative to PATH) applied in order; self when none matches."""
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

    def resolved_workers(self) -> int:
        """The number of worker processes to use (all cores when 0)."""
        return self.workers if self.workers > 0 else (os.cpu_count() or 1)


# ------------------------------------------------------------------ generated from the fields
def type_hints(cls: type) -> dict[str, Any]:
    import typing

    return typing.get_type_hints(cls)


def accepted_types(hint: Any) -> tuple[type, ...]:
    """The Python types a config value of a field typed ``hint`` may have."""
    import types
    import typing

    if typing.get_origin(hint) in (typing.Union, types.UnionType):
        hint = next(a for a in typing.get_args(hint) if a is not type(None))
    base = typing.get_origin(hint) or hint
    return {list: (list, tuple), dict: (dict,), float: (float, int)}.get(base, (base,))


def check_type(key: str, value: Any, types: tuple[type, ...]) -> None:
    """ValueError unless ``value`` is one of ``types`` (a bool is no number)."""
    if isinstance(value, types) and not (isinstance(value, bool) and bool not in types):
        return
    words = {list: "list", tuple: "list", str: "string", dict: "table", float: "number", int: "integer",
             bool: "boolean"}
    names = " or ".join(dict.fromkeys(words.get(t, t.__name__) for t in types))
    article = "an" if names[0] in "aeiou" else "a"
    raise ValueError(f"{key} must be {article} {names}, not {type(value).__name__} {value!r}")


def settings_fields(per_source: bool = False) -> dict[str, tuple[dataclasses.Field, Meta]]:
    """{config key: (field, meta)} of the config file's top level, or of a ``[sources."<glob>"]`` table."""
    out = {}
    for f in dataclasses.fields(ScanOptions):
        m = meta_of(f)
        if m is not None and m.config and (m.per_source or not per_source):
            out[f.name] = (f, m)
    return out


def check_value(key: str, value: Any, name: str | None = None) -> Any:
    """The value of option ``name`` (default: ``key``) checked (type, choices, its own check) and
    normalized; ValueError naming ``key`` otherwise."""
    f = {f.name: f for f in dataclasses.fields(ScanOptions)}[name or key]
    m = meta_of(f)
    if m is None:
        return value
    check_type(key, value, m.accepts or accepted_types(type_hints(ScanOptions)[f.name]))
    if m.choices and value not in m.choices:
        raise ValueError(f"{key} must be one of {', '.join(m.choices)}, not {value!r}")
    return m.check(key, value) if m.check else value


def check_settings(table: dict[str, Any], where: str = "", per_source: bool = False) -> dict[str, Any]:
    """Every key and value of a settings table (the config file's, API keywords) checked;
    returns ScanOptions keywords.  ValueError names the key (prefixed by ``where.``)."""
    if not isinstance(table, dict):
        raise ValueError(f"{where} must be a table, not {table!r}")
    known = settings_fields(per_source)
    prefix = f"{where}." if where else ""
    out: dict[str, Any] = {}
    for key, value in table.items():
        if key not in known:
            name = f"{prefix}{key}" if per_source else repr(key)
            raise ValueError(f"unknown key {name} (known: {', '.join(sorted(known))})")
        out[key] = check_value(prefix + key, value, key)
    return out


def check_options(options: ScanOptions) -> None:
    """UsageError naming the option when a value of ``options`` cannot work (the same checks as
    the config file's)."""
    for f in dataclasses.fields(options):
        value = getattr(options, f.name)
        if meta_of(f) is not None and value is not None:
            try:
                check_value(f.name, value)
            except ValueError as exc:
                raise UsageError(str(exc)) from None


def cli_flags() -> list[tuple[str, Flag]]:
    """(field name, flag) of every option ``datasan scan`` takes, in field order."""
    return [(f.name, m.flag) for f in dataclasses.fields(ScanOptions) if (m := meta_of(f)) and m.flag]


def options_from_cli(values: dict[str, Any]) -> dict[str, Any]:
    """ScanOptions keywords from the values of :func:`cli_flags` options (None: not given)."""
    flags = dict(cli_flags())
    out: dict[str, Any] = {}
    for name, value in values.items():
        if value is None:
            continue
        value = getattr(value, "value", value)  # a choice arrives as an Enum member
        to = flags[name].to_options
        out.update(to(value) if to else {name: value})
    return {k: v for k, v in out.items() if v is not None}


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
