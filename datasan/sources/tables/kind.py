"""The table source kind: claims table files and runs the passes over them.

profile (per file) -> plan -> scan (per shard) -> finish: merge the shards,
run the column and dataset checks, put the clean file in place.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from datasan.checks import files as file_rules
from datasan.checks.tables import columns as column_rules
from datasan.checks.tables import duplicates as duplicate_rules
from datasan.discover import FileEntry
from datasan.findings import Finding, FindingBuffer
from datasan.options import ScanOptions
from datasan.sources.base import ScanContext, Source, SourceOutcome
from datasan.sources.tables import read
from datasan import fs
from datasan.sources.tables.output import AssembleTask, KeptStats, assemble_parts, clean_name, empty_clean
from datasan.sources.tables.plan import TablePlan, check_requested_targets, plan_table
from datasan.sources.tables.profile import ProfileTask, TableProfile, profile_table, short_reason
from datasan.sources.tables.rewrite import rewrite_table
from datasan.sources.tables.capabilities import TableCapabilities
from datasan.sources.tables.dup_buckets import BucketTask, bucket_count, bucket_file, bucket_pairs, concat_pairs
from datasan.sources.tables.scan import ShardResult, ShardTask, scan_shard
from datasan.outputs.warm import start_chart_helper, warm_report_imports, when_work_starts
from datasan.stats import merge_counts


class TableKind(TableCapabilities):
    """The table source kind (see the module docstring)."""

    name = "tables"

    def claim(self, files: list[FileEntry], ctx: ScanContext) -> tuple[list[Source], list[FileEntry]]:
        """Take every file whose name says it is a table (CSV, TSV, JSONL, Parquet, Arrow)."""
        sources, rest = [], []
        for f in files:
            fmt = read.table_format(f.rel)
            if fmt is None:
                rest.append(f)
            else:
                sources.append(Source(kind="table", name=f.rel, files=[f], meta={"format": fmt}))
        return sources, rest

    def run(self, sources: list[Source], ctx: ScanContext) -> tuple[list[SourceOutcome], FindingBuffer]:
        """Profile every table, plan each, scan the shards, finish each table."""
        outcomes: list[SourceOutcome] = []
        loose = FindingBuffer()
        if not sources:
            return outcomes, loose
        # each source gets its own options (per-source settings from the config)
        src_opts = {s.name: ctx.options.for_source(s.name) for s in sources}
        tasks = [ProfileTask(s.name, s.files[0].path, s.meta["format"], src_opts[s.name].target, src_opts[s.name])
                 for s in sources]
        profiles = list(ctx.engine.map_ordered(profile_table, tasks))
        check_requested_targets(ctx.options, sources, profiles)
        fs.makedirs(fs.join(ctx.staging, "parts"))
        planned: dict[str, _Planned] = {}
        shard_tasks: list[ShardTask] = []
        for i, (src, prof) in enumerate(zip(sources, profiles)):
            planned[src.name] = p = _plan(src, prof, src_opts[src.name])
            if p.plan is not None:
                p.shards = _shards(i, p.plan, prof, ctx)
                shard_tasks.extend(p.shards)
        results: dict[str, list[ShardResult]] = {}
        # the chart helper starts with the work (in its own process: no competition for this one)
        when_work_starts(ctx, lambda: start_chart_helper(ctx), here=len(shard_tasks) == 1)
        for task, res in zip(shard_tasks, ctx.engine.map_ordered(scan_shard, shard_tasks)):
            # the workers are busy and this process mostly waits for them (not before the
            # first result: it would slow down starting the pool)
            warm_report_imports(ctx)
            results.setdefault(task.plan.rel, []).append(res)
            if ctx.progress is not None:
                ctx.progress.advance(res.seen)
        for src in sources:
            outcomes.append(_finish(src, planned[src.name], results.get(src.name, []), ctx))
        return outcomes, loose


@dataclass
class _Planned:
    """A table between the passes: its plan (None: nothing to scan) and findings so far."""

    plan: TablePlan | None
    found: list[Finding]
    shards: list[ShardTask] = field(default_factory=list)


def _plan(src: Source, prof: TableProfile, opts: ScanOptions) -> _Planned:
    found = list(prof.findings)
    if src.files[0].size == 0:
        return _Planned(None, [file_rules.empty_file(src.name, zero_bytes=True)])
    if not prof.ok:
        return _Planned(None, found)
    plan, more = plan_table(src.files[0], prof, opts)
    found.extend(more)
    if read.is_text_format(plan.fmt) and not plan.columns and prof.rows == 0:
        found.append(file_rules.empty_file(src.name, no_header=True))
        return _Planned(None, found)
    return _Planned(plan, found)


def _shards(i: int, plan: TablePlan, prof: TableProfile, ctx: ScanContext) -> list[ShardTask]:
    """One task for a text table; a large typed table split into runs of row groups of
    about ``shard_rows`` rows.  Part files are named by table and shard index."""
    def part(k: int) -> str:
        return fs.join(ctx.staging, f"parts/{i}-{k}.parquet")

    if read.is_text_format(plan.fmt) or not prof.row_groups:
        return [ShardTask(plan, 0, len(prof.row_groups), 0, part(0), ctx.run_id)]
    tasks = []
    start, acc, first_row = 0, 0, 0
    for g, size in enumerate(prof.row_groups):
        acc += size
        if acc >= ctx.options.shard_rows or g == len(prof.row_groups) - 1:
            tasks.append(ShardTask(plan, start, g - start + 1, first_row, part(len(tasks)), ctx.run_id))
            first_row += acc
            start, acc = g + 1, 0
    if len(tasks) > 1:  # the duplicate check runs on the engine, from bucketed hashes
        buckets = bucket_count(len(tasks))
        for k, t in enumerate(tasks):
            t.hash_buckets, t.hash_prefix = buckets, fs.join(ctx.staging, f"hashes/{i}-{k}")
    return tasks


def _finish(src: Source, planned: _Planned, results: list[ShardResult], ctx: ScanContext) -> SourceOutcome:
    """Merge the shards of one table, run its column and dataset checks, put its clean file in
    place (rewritten when whole-table findings made more rows errors) and build its outcome."""
    opts = ctx.options.for_source(src.name)
    plan = planned.plan
    fb = FindingBuffer()
    fb.extend(planned.found)
    if plan is None:
        fb.apply_policy(opts)
        report = {"format": src.meta["format"], "readable": not file_rules.is_unreadable(planned.found)}
        return SourceOutcome(src, "rows", 0, 0, fb, report=report)
    seen = sum(r.seen for r in results)
    kept = sum(r.kept for r in results)
    stats = KeptStats(plan.features, plan.target.column, False, plan.target.task == "classification")
    for r in results:
        fb.merge(r.findings)
        stats.merge(r.stats)
        if r.error:
            fb.add(file_rules.unreadable_file(src.name, short_reason(r.error), past_row=r.seen))
    if seen == 0 and not any(r.error for r in results):
        fb.add(file_rules.empty_file(src.name))
    sparse = _table_findings(src.name, plan, stats, results, fb, opts)
    fb.merge(_bucketed_duplicates(src.name, plan, planned.shards, ctx))
    fb.apply_policy(opts)
    clean_rel = clean_name(src.name)
    if clean_rel != f"{src.name}.parquet":
        fb.add(file_rules.shortened_clean_name(src.name, clean_rel))
    dest = fs.join(ctx.staging, f"clean/{clean_rel}")
    _place_clean(plan, results, dest, ctx)
    types = {c: plan.types.get(c, "string") for c in plan.output_columns()}
    oc = SourceOutcome(src, "rows", seen, kept, fb, stats=stats.stats_json(src.name, kept, types),
                       clean_files=[clean_rel], report=_report(plan, stats.labels, sparse, clean_rel, results))
    _drop_late_errors(oc, plan, results, dest, ctx)
    return oc


def _table_findings(source: str, plan: TablePlan, stats: KeptStats, results: list[ShardResult],
                    fb: FindingBuffer, opts: ScanOptions) -> dict[str, float]:
    """Add the checks that need the whole table (scales, constants, float16, missing cells,
    duplicates) to ``fb``; return the sparse columns with their missing share."""
    import numpy as np

    th = opts.thresholds
    fb.extend(column_rules.dataset_findings(source, stats.moments, plan.features, stats.fp16, plan.target, th))
    missing: dict[str, int] = {}
    for r in results:
        merge_counts(missing, r.missing)
    missing_found, sparse = column_rules.missing_findings(source, missing, sum(r.checked for r in results),
                                                          plan.types, plan.target.column, plan.dropped, th)
    fb.extend(missing_found)
    hashed = [r for r in results if r.hash_rows is not None]
    if hashed:
        fb.merge(duplicate_rules.duplicate_findings(
            source,
            np.concatenate([r.hash_rows for r in hashed]),
            np.concatenate([r.full_hash for r in hashed]),
            np.concatenate([r.feature_hash for r in hashed]),
            plan.target.column is not None,
        ))
    return sparse


def _bucketed_duplicates(source: str, plan: TablePlan, shards: list[ShardTask], ctx: ScanContext) -> FindingBuffer:
    """DS110 / DS111 of a split table: one engine task per hash bucket its shards wrote."""
    tasks = [t for t in shards if t.hash_buckets]
    if not tasks:
        return FindingBuffer()
    buckets = [BucketTask([bucket_file(t.hash_prefix, b) for t in tasks], plan.target.column is not None)
               for b in range(tasks[0].hash_buckets)]
    pairs = list(ctx.engine.map_ordered(bucket_pairs, buckets))
    return duplicate_rules.findings_of_pairs(source, concat_pairs(pairs))


def _place_clean(plan: TablePlan, results: list[ShardResult], dest: str, ctx: ScanContext) -> None:
    """The clean file at ``dest`` (in the run's staging place, on disk or in the store): the
    one part renamed, the parts assembled in order by an engine task, or no rows with the
    plan's columns."""
    parts = [r.part_path for r in results if r.part_path]
    if len(parts) == 1:
        fs.move(parts[0], dest)
    elif parts:
        list(ctx.engine.map_ordered(assemble_parts, [AssembleTask(parts, dest, ctx.run_id)]))
    else:
        empty_clean(plan.output_columns(), plan.types, dest, ctx.run_id)


def _report(plan: TablePlan, labels: dict, sparse: dict[str, float], clean_rel: str,
            results: list[ShardResult]) -> dict:
    """The table's facts for report.json (``missing``: missing cells per column over every row
    read, before the quarantine, for the drift comparison's missing rate)."""
    missing: dict[str, int] = {}
    for r in results:
        merge_counts(missing, r.missing)
    tp = plan.target
    if tp.num_classes is not None:
        num_classes = tp.num_classes
    elif labels and all(isinstance(k, int) for k in labels):
        num_classes = int(max(labels)) + 1
    else:
        num_classes = len(labels) if labels else None
    return {
        "format": plan.fmt,
        "target": tp.column,
        "task": tp.task,
        "task_reason": tp.reason,
        "num_classes": num_classes,
        "features": plan.features,
        "sparse_columns": {c: round(v, 4) for c, v in sparse.items()},
        "dropped_columns": list(plan.dropped),
        "encoding": plan.encoding if read.is_text_format(plan.fmt) else None,
        "clean_file": f"clean/{clean_rel}",
        "missing": dict(sorted(missing.items())),
        "rows_read": sum(r.checked for r in results),
    }


def _drop_late_errors(oc: SourceOutcome, plan: TablePlan, results: list[ShardResult], dest: str,
                      ctx: ScanContext) -> None:
    """Row findings decided over the whole table (duplicates) are warnings by default; a
    config can make them errors after their rows were written: rewrite the clean file
    without them."""
    import numpy as np

    written = [r.findings.error_rows() for r in results]
    done = np.concatenate(written) if written else np.empty(0, np.int64)
    late = np.setdiff1d(oc.findings.error_rows(), done)
    if late.size:
        oc.kept -= int(late.size)
        rewrite_table(oc, ctx, dest, late, plan.features, plan.target.column, plan.target.task)
