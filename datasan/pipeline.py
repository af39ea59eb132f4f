"""The scan pipeline: discover -> claim sources -> run each kind -> merge -> result.

The pipeline knows no file format: source kinds (``datasan/sources``) do the
reading and checking; this module only orders the steps, builds the
quarantine from error findings, checks that nothing was lost and assembles
the :class:`~datasan.result.ScanResult`.
"""

from __future__ import annotations

import os
import shutil
import tempfile
import time
from typing import Any

from datasan import __version__
from datasan.discover import discover
from datasan.engine import LocalEngine
from datasan.errors import UsageError
from datasan.findings import Finding, FindingBuffer
from datasan.isolation import broken_counts, failed_outcome, invariant_reason, run_kind
from datasan.options import FAIL_ON, TASKS, ScanOptions
from datasan.outputs.folder import claim_output, environment_error
from datasan.outputs.manifest import new_run_id
from datasan.result import ScanResult
from datasan.sources import load_kinds
from datasan.sources.base import ScanContext, SourceOutcome


class InvariantError(RuntimeError):
    """kept + quarantined != seen even after isolating the sources that broke it: a datasan bug."""


def validate_options(options: ScanOptions) -> None:
    """Raise UsageError for option values that cannot work."""
    from datasan.rules import SEVERITIES, check_selectors

    if options.fail_on not in FAIL_ON:
        raise UsageError(f"fail_on must be one of {', '.join(FAIL_ON)}, not {options.fail_on!r}")
    if options.task not in TASKS:
        raise UsageError(f"task must be one of {', '.join(TASKS)}, not {options.task!r}")
    if options.num_classes is not None and options.num_classes < 1:
        raise UsageError(f"num_classes must be at least 1, not {options.num_classes}")
    for key in ("select", "ignore"):
        bad = check_selectors(getattr(options, key))
        if bad:
            raise UsageError(f"unknown rule code(s) in {key}: {', '.join(bad)}")
    for code, sev in options.severity.items():
        if check_selectors([code]):
            raise UsageError(f"unknown rule code in severity: {code}")
        if sev not in SEVERITIES:
            raise UsageError(f"severity for {code} must be one of {', '.join(SEVERITIES)}, not {sev!r}")
    if options.workers < 0:
        raise UsageError("workers must be 0 (all cores) or more")
    for key in ("max_quarantine_fraction", "max_total_quarantine_fraction"):
        mqf = getattr(options, key)
        if mqf is not None and not (isinstance(mqf, (int, float)) and 0.0 <= mqf <= 1.0):
            raise UsageError(f"{key} must be a number in 0..1, not {mqf!r}")
    from datasan.options import MISSING_POLICIES

    if options.missing_policy not in MISSING_POLICIES:
        raise UsageError(f"missing_policy must be one of {', '.join(MISSING_POLICIES)}, "
                         f"not {options.missing_policy!r}")
    # probe options (issue 5); torch is only imported when the probe runs
    if options.probe_batch_size is not None and options.probe_batch_size < 1:
        raise UsageError(f"probe_batch_size must be at least 1, not {options.probe_batch_size}")
    if not (options.device == "cpu" or options.device == "cuda" or options.device.startswith("cuda:")):
        raise UsageError(f"device must be cpu, cuda or cuda:N, not {options.device!r}")
    pt = options.probe_timeout
    if isinstance(pt, bool) or not isinstance(pt, (int, float)) or not pt >= 0:
        raise UsageError(f"probe_timeout must be a number of seconds >= 0 (0: no limit), not {pt!r}")
    if options.probe_model is not None and ":" not in options.probe_model:
        raise UsageError(f"probe_model must be module:factory, not {options.probe_model!r}")


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
    """Remove staged clean files no outcome claims (left by a source that failed halfway)."""
    clean = os.path.join(staging, "clean")
    wanted = {os.path.normpath(os.path.join(clean, rel)) for oc in outcomes for rel in oc.clean_files}
    for folder, _dirs, names in os.walk(clean, topdown=False):
        for name in names:
            path = os.path.join(folder, name)
            if os.path.normpath(path) not in wanted:
                os.remove(path)
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
    validate_options(options)
    baseline = None
    if options.baseline:  # read before scanning, so a bad baseline fails fast (exit 2)
        from datasan.baseline import load_baseline

        baseline = load_baseline(options.baseline)
    root_arg = os.fspath(path)
    if not os.path.exists(root_arg):
        raise UsageError(f"no such file or folder: {root_arg}")
    run_id = new_run_id()
    folder = claim_output(out_dir, root_arg, run_id, force=force) if out_dir is not None else None
    staging = folder.staging if folder is not None else tempfile.mkdtemp(prefix="datasan-staging-")
    try:
        result = _scan(root_arg, options, baseline, staging, run_id)
    except BaseException as exc:
        env = environment_error(exc, os.fspath(out_dir) if out_dir is not None else staging)
        # a bug keeps its staging folder: the partial results its message names
        keep = isinstance(exc, Exception) and not isinstance(exc, UsageError) and env is None
        if folder is not None:
            folder.release(remove_staging=not keep)
        elif not keep:
            shutil.rmtree(staging, ignore_errors=True)
        if env is not None:
            raise env from exc
        raise
    result.output = folder
    return result


def _scan(root_arg: str, options: ScanOptions, baseline, staging: str, run_id: str) -> ScanResult:
    """The scan itself; clean files go to ``staging``."""
    started = time.time()
    t0 = time.perf_counter()
    discovery = discover(root_arg)
    os.makedirs(os.path.join(staging, "clean"), exist_ok=True)
    from datasan.outputs.progress import Progress

    progress = Progress(enabled=options.progress)
    engine = LocalEngine(options.resolved_workers())
    ctx = ScanContext(root=discovery.root, options=options,
                      engine=engine, staging=staging, progress=progress, run_id=run_id)
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
        import shutil

        shutil.rmtree(staging, ignore_errors=True)
        raise
    finally:
        progress.close()
    loose.apply_policy(options)
    per_source_q, quarantine = _quarantine_or_isolate(outcomes, internal_errors)
    _prune_staged_clean(staging, outcomes)
    findings = FindingBuffer()
    for oc in outcomes:
        findings.merge(oc.findings)
    findings.merge(loose)
    index = _merge_index(outcomes)
    seen = sum(oc.seen for oc in outcomes)
    kept = sum(oc.kept for oc in outcomes)
    report = {
        "datasan_version": __version__,
        "run_id": run_id,
        "path": os.path.abspath(root_arg),
        "started": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(started)),
        "seconds": round(time.perf_counter() - t0, 3),
        "options": {
            "fail_on": options.fail_on,
            "target": options.target,
            "targets": options.targets,
            "task": options.task,
            "missing_policy": options.missing_policy,
            "num_classes": options.num_classes,
            "workers": options.resolved_workers(),
            "probe": options.probe,
            "select": options.select,
            "ignore": options.ignore,
        },
        "files": len(discovery.files),
        "samples": seen,
        "kept": kept,
        "quarantined": len(quarantine),
        "sources": [
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
        "probe": probe_report,
        "internal_errors": internal_errors,
    }
    stats = merge_stats(outcomes)
    from datasan.drift import compare_to_baseline  # statistics drift against --baseline

    report["drift"] = compare_to_baseline(options, stats, report, findings)
    return ScanResult(
        findings_table=findings.to_arrow(),
        quarantine_table=quarantine,
        stats=stats,
        report=report,
        index_table=index,
        fail_on=options.fail_on,
        max_quarantine_fraction=options.max_quarantine_fraction,
        max_total_quarantine_fraction=options.max_total_quarantine_fraction,
        baseline=baseline,
        staging=staging,
        clean_files=[f for oc in outcomes for f in oc.clean_files],
        owns_staging=True,
    )


def _unclaimed(f) -> Finding:
    """DS008 for a file no kind reads, or DS007 when it stopped being a regular file after
    discovery (a kind that sniffs content could not open it)."""
    import stat

    try:
        mode = os.lstat(f.path).st_mode
    except OSError:
        mode = None
    if mode is not None and not stat.S_ISREG(mode):
        return Finding("DS007", f"{f.rel} changed after it was listed: it is no longer a regular file; "
                       "it was not read.", source=f.rel)
    return Finding("DS008", f"{f.rel} is not a file type datasan reads; it was ignored.", source=f.rel)


def _merge_index(outcomes: list[SourceOutcome]):
    import pyarrow as pa

    tables = [oc.index for oc in outcomes if oc.index is not None]
    if not tables:
        return None
    return pa.concat_tables(tables, promote_options="permissive")


def _run_probe(outcomes: list[SourceOutcome], ctx: ScanContext) -> dict[str, Any]:
    """Run the probe over the kept samples (when enabled); torch loads only then."""
    if not ctx.options.probe:
        return {"ran": False, "reason": "--no-probe"}
    from datasan.probe import run as probe_run

    return probe_run.probe_outcomes(outcomes, ctx)

