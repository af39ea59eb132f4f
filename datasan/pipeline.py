"""The scan pipeline: discover -> claim sources -> run each kind -> merge -> result.

The pipeline knows no file format: source kinds (``datasan/sources``) do the
reading and checking; this module only orders the steps, builds the
quarantine from error findings, checks that nothing was lost and assembles
the :class:`~datasan.result.ScanResult`.
"""

from __future__ import annotations

import os
import tempfile
import time
from typing import Any

from datasan import __version__, fs
from datasan.discover import discover
from datasan.engine import Engine, make_engine
from datasan.errors import UsageError
from datasan.checks import files as file_rules
from datasan.findings import Finding, FindingBuffer
from datasan.isolation import broken_counts, failed_outcome, invariant_reason, run_kind
from datasan.options import ScanOptions, check_options
from datasan.outputs.folder import claim_output, environment_error
from datasan.outputs.manifest import new_run_id
from datasan.result import Report, ScanResult, Workspace
from datasan.sources import load_kinds
from datasan.sources.base import ScanContext, SourceOutcome


class InvariantError(RuntimeError):
    """kept + quarantined != seen even after isolating the sources that broke it: a datasan bug."""


def build_quarantine(outcomes: list[SourceOutcome]) -> tuple[dict[str, int], Any]:
    """The quarantine table (one row per quarantined sample or box) and counts per source."""
    import pyarrow as pa

    cols: dict[str, list] = {"sample": [], "source": [], "row": [], "codes": [], "reason": []}
    per_source: dict[str, int] = {}
    for oc in outcomes:
        groups: dict[Any, list] = {}
        # only error findings quarantine: warnings (millions of duplicate rows) are never built here
        for code, sample, source, row, message in oc.findings.errors():
            key = sample if oc.quarantine_key == "sample" else (sample, source, row)
            g = groups.get(key)
            if g is None:
                groups[key] = [sample, source, row, [code], message]
            elif code not in g[3]:
                g[3].append(code)
        for sample, source, row, cs, reason in groups.values():
            cols["sample"].append(sample)
            cols["source"].append(source)
            cols["row"].append(row)
            cols["codes"].append(",".join(cs))
            cols["reason"].append(reason)
        per_source[oc.source.name] = len(groups)
    schema = pa.schema([("sample", pa.string()), ("source", pa.string()), ("row", pa.int64()),
                        ("codes", pa.string()), ("reason", pa.string())])
    return per_source, pa.table(cols, schema=schema)


def _quarantine_or_isolate(outcomes: list[SourceOutcome], internal_errors: list[dict[str, str]]
                           ) -> tuple[dict[str, int], Any]:
    """The quarantine, after replacing every outcome that broke kept + quarantined == seen
    by a failed outcome (its files quarantined under DS011) so that nothing is lost."""
    per_source_q, quarantine = build_quarantine(outcomes)
    broken = broken_counts(outcomes, per_source_q)
    if not broken:
        return per_source_q, quarantine
    for i in broken:
        oc = outcomes[i]
        reason = invariant_reason(oc, per_source_q.get(oc.source.name, 0))
        outcomes[i] = failed_outcome(oc.source, reason)
        internal_errors.append({"source": oc.source.name, "kind": oc.source.kind, "error": reason})
    per_source_q, quarantine = build_quarantine(outcomes)
    still = broken_counts(outcomes, per_source_q)
    if still:
        raise InvariantError(f"{outcomes[still[0]].source.name}: kept + quarantined != seen")
    return per_source_q, quarantine


def _prune_staged_clean(staging: str, outcomes: list[SourceOutcome]) -> None:
    """Remove staged clean files no outcome claims (left by a source that failed halfway),
    in a local staging folder or a store's staging prefix."""
    clean = fs.join(staging, "clean")
    wanted = {rel for oc in outcomes for rel in oc.clean_files}
    for rel in fs.files_under(clean):
        if rel not in wanted:
            fs.remove(fs.join(clean, rel))
    if not fs.is_remote(clean):
        for folder, _dirs, _names in os.walk(clean, topdown=False):
            if folder != clean and not os.listdir(folder):
                os.rmdir(folder)


def merge_stats(outcomes: list[SourceOutcome]) -> dict[str, Any]:
    """stats.json: the outcomes' fragments under tables / images / labels (and any other key)."""
    stats: dict[str, Any] = {"tables": {}, "images": {}, "labels": {}}
    for oc in outcomes:
        for section, entries in oc.stats.items():
            stats.setdefault(section, {}).update(entries)
    return stats


def scan(path: str | os.PathLike, options: ScanOptions | None = None, out_dir: str | None = None,
         force: bool = False) -> ScanResult:
    """Scan ``path`` and return a :class:`ScanResult`.

    With ``out_dir`` the folder is claimed first (refused unless it is new, empty or a
    datasan output, or ``force``; locked against other runs) and the clean files are
    staged inside it; :meth:`ScanResult.write` publishes them with the other files.
    """
    options = options or ScanOptions()
    check_options(options)
    baseline = None
    if options.baseline:  # read before scanning, so a bad baseline fails fast (exit 2)
        from datasan.baseline import load_baseline

        baseline = load_baseline(options.baseline)
    root_arg = fs.local_path(path)
    if out_dir is not None:
        out_dir = fs.local_path(out_dir)
    try:
        found = fs.exists(root_arg)
    except OSError as exc:  # a store that cannot be reached or refuses the credentials
        raise UsageError(f"cannot read {root_arg}: {exc}") from None
    if not found:
        raise UsageError(f"no such file or folder: {root_arg}")
    engine = make_engine(options)  # before --out is claimed: a missing Ray exits 2 with nothing written
    from datasan.cache import with_cache

    engine, cache_entry = with_cache(engine, options)
    run_id = new_run_id()
    folder = lease = None
    if out_dir is not None and fs.is_remote(out_dir):
        # an object store: the run holds its lease and workers write the clean files straight
        # into the run's staging prefix there; publishing copies them into place in the store
        from datasan.outputs import remote

        staging, lease = remote.claim_remote(out_dir, root_arg, run_id, force)
    elif out_dir is not None:
        folder = claim_output(out_dir, root_arg, run_id, force=force)
        staging = folder.staging
    else:
        staging = tempfile.mkdtemp(prefix="datasan-staging-")
    try:
        result = _scan(root_arg, options, baseline, staging, run_id, engine, cache_entry,
                       report_due=out_dir is not None and options.report_html)
    except BaseException as exc:
        from datasan.outputs import chart_helper

        chart_helper.stop()  # no report.html will be drawn: its helper process goes now
        env = environment_error(exc, os.fspath(out_dir) if out_dir is not None else staging)
        # a bug keeps its staging folder: the partial results its message names
        keep = isinstance(exc, Exception) and not isinstance(exc, UsageError) and env is None
        if folder is not None:
            folder.release(remove_staging=not keep)
        elif not keep:
            fs.remove_tree(staging)
        if lease is not None:
            lease.release()
        if env is not None:
            raise env from exc
        raise
    result.workspace.output = folder
    result.workspace.lease = lease
    return result


def _scan(root_arg: str, options: ScanOptions, baseline: frozenset[tuple] | None, staging: str,
          run_id: str, engine: Engine, cache_entry: dict[str, Any] | None = None,
          report_due: bool = False) -> ScanResult:
    """The scan itself; clean files go to ``staging`` (``report_due``: report.html will be
    written)."""
    started = time.time()
    t0 = time.perf_counter()
    discovery = discover(root_arg)
    fs.makedirs(fs.join(staging, "clean"))
    from datasan.outputs.progress import Progress

    progress = Progress(enabled=options.progress)
    ctx = ScanContext(root=discovery.root, options=options,
                      engine=engine, staging=staging, progress=progress, run_id=run_id, report_due=report_due)
    loose = FindingBuffer()
    loose.extend(discovery.findings)
    outcomes: list[SourceOutcome] = []
    internal_errors: list[dict[str, str]] = []
    try:
        files = discovery.files
        claimed = []
        for kind in load_kinds():
            sources, files = kind.claim(files, ctx)
            claimed.append((kind, sources))
        for f in files:
            loose.add(_unclaimed(f))
        with engine:
            shared = getattr(engine, "check_shared_paths", None)
            if shared is not None:  # a cluster: its workers read PATH and write to staging here
                shared([p for p in (discovery.root, staging) if not fs.is_remote(p)])
            for kind, sources in claimed:
                if not sources:
                    continue
                progress.stage(kind.name)
                oc, extra, errors = run_kind(kind, sources, ctx)
                outcomes.extend(oc)
                loose.merge(extra)
                internal_errors.extend(errors)
            probe_report = _run_probe(outcomes, ctx)
            internal_errors.extend(
                {"source": name, "kind": "probe", "error": rep["internal_error"]}
                for name, rep in (probe_report.get("sources") or {}).items() if rep.get("internal_error"))
    except UsageError:
        # found while reading (a --target in no table): nothing of this run may stay behind
        fs.remove_tree(staging)
        raise
    finally:
        progress.close()
    loose.apply_policy(options)
    per_source_q, quarantine = _quarantine_or_isolate(outcomes, internal_errors)
    _prune_staged_clean(staging, outcomes)
    stats = merge_stats(outcomes)
    if report_due:  # its charts drawn beside the rest of this run's outputs
        from datasan.outputs.formats.html import send_charts_ahead

        send_charts_ahead(stats, cache_entry.get("path") if cache_entry and cache_entry.get("enabled") else None)
    findings = FindingBuffer()
    for oc in outcomes:
        findings.merge(oc.findings)
    findings.merge(loose)
    index = _merge_index(outcomes)
    seen = sum(oc.seen for oc in outcomes)
    kept = sum(oc.kept for oc in outcomes)
    summary = Report(
        datasan_version=__version__,
        run_id=run_id,
        path=root_arg if fs.is_remote(root_arg) else os.path.abspath(root_arg),
        started=time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(started)),
        seconds=round(time.perf_counter() - t0, 3),
        options=report_options(options),
        files=len(discovery.files),
        samples=seen,
        kept=kept,
        quarantined=len(quarantine),
        sources=[
            {
                "source": oc.source.name,
                "kind": oc.source.kind,
                "unit": oc.unit,
                "seen": oc.seen,
                "kept": oc.kept,
                "quarantined": per_source_q.get(oc.source.name, 0),
                **oc.report,
            }
            for oc in outcomes
        ],
        probe=probe_report,
        internal_errors=internal_errors,
        cache=_cache_report(engine, cache_entry, options),
    )
    from datasan.drift import compare_to_baseline  # statistics drift against --baseline

    summary.drift = compare_to_baseline(options, stats, {"sources": summary.sources}, findings)
    return ScanResult(
        findings_table=findings.to_arrow(),
        quarantine_table=quarantine,
        stats=stats,
        summary=summary,
        index_table=index,
        fail_on=options.fail_on,
        max_quarantine_fraction=options.max_quarantine_fraction,
        max_total_quarantine_fraction=options.max_total_quarantine_fraction,
        baseline=baseline,
        clean_files=[f for oc in outcomes for f in oc.clean_files],
        workspace=Workspace(staging),
        label_quality_table=_label_quality(ctx),
        cache_dir=summary.cache.get("path") if summary.cache.get("enabled") else None,
    )


def report_options(options: ScanOptions) -> dict[str, Any]:
    """report.json's ``options``: those that decide the findings, and the workers used."""
    return {
        "fail_on": options.fail_on,
        "target": options.target,
        "targets": options.targets,
        "task": options.task,
        "missing_policy": options.missing_policy,
        "num_classes": options.num_classes,
        "workers": options.resolved_workers(),
        "engine": options.engine,
        "probe": options.probe,
        "select": options.select,
        "ignore": options.ignore,
        "report_html": options.report_html,
        "report_thumbnails": options.report_thumbnails,
    }


def _cache_report(engine: Engine, entry: dict[str, Any] | None, options: ScanOptions) -> dict[str, Any]:
    """report.json's ``cache``: the folder, hits and misses (the cache pruned to its bound)."""
    from datasan.cache import finish

    return finish(engine, entry or {"enabled": False}, options.cache_max_bytes)


def _unclaimed(f) -> Finding:
    """DS008 for a file no kind reads, or DS007 when it stopped being a regular file after
    discovery (a kind that sniffs content could not open it)."""
    import stat

    try:
        mode = os.lstat(f.path).st_mode
    except OSError:
        mode = None
    if mode is not None and not stat.S_ISREG(mode):
        return file_rules.changed_after_listing(f.rel, "it is no longer a regular file; it was not read")
    return file_rules.unrecognized_file(f.rel)


def _merge_index(outcomes: list[SourceOutcome]):
    import pyarrow as pa

    tables = [oc.index for oc in outcomes if oc.index is not None]
    if not tables:
        return None
    return pa.concat_tables(tables, promote_options="permissive")


def _label_quality(ctx: ScanContext):
    """label_quality.parquet's table when the probe scored some source's labels, else None."""
    if not ctx.shared.get("label_quality"):
        return None
    from datasan.probe.label_outputs import merge_quality_tables

    return merge_quality_tables(ctx)


def _run_probe(outcomes: list[SourceOutcome], ctx: ScanContext) -> dict[str, Any]:
    """Run the probe over the kept samples (when enabled); torch loads only then."""
    if not ctx.options.probe:
        return {"ran": False, "reason": "--no-probe"}
    from datasan.probe import run as probe_run

    return probe_run.probe_outcomes(outcomes, ctx)

