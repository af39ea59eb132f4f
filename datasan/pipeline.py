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

from datasan import __version__
from datasan.discover import discover
from datasan.engine import LocalEngine
from datasan.errors import UsageError
from datasan.findings import Finding, FindingBuffer
from datasan.options import FAIL_ON, TASKS, ScanOptions
from datasan.result import ScanResult
from datasan.sources import load_kinds
from datasan.sources.base import ScanContext, SourceOutcome


class InvariantError(RuntimeError):
    """kept + quarantined != seen for some source: a datasan bug, never a data problem."""


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
    mqf = options.max_quarantine_fraction  # issue 6: gate options
    if mqf is not None and not (isinstance(mqf, (int, float)) and 0.0 <= mqf <= 1.0):
        raise UsageError(f"max_quarantine_fraction must be a number in 0..1, not {mqf!r}")
    # probe options (issue 5); torch is only imported when the probe runs
    if options.probe_batch_size is not None and options.probe_batch_size < 1:
        raise UsageError(f"probe_batch_size must be at least 1, not {options.probe_batch_size}")
    if not (options.device == "cpu" or options.device == "cuda" or options.device.startswith("cuda:")):
        raise UsageError(f"device must be cpu, cuda or cuda:N, not {options.device!r}")
    if options.probe_model is not None and ":" not in options.probe_model:
        raise UsageError(f"probe_model must be module:factory, not {options.probe_model!r}")


def _inside(child: str, parent: str) -> bool:
    child, parent = os.path.realpath(child), os.path.realpath(parent)
    return child == parent or child.startswith(parent.rstrip(os.sep) + os.sep)


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


def merge_stats(outcomes: list[SourceOutcome]) -> dict[str, Any]:
    """stats.json: the outcomes' fragments under tables / images / labels (and any other key)."""
    stats: dict[str, Any] = {"tables": {}, "images": {}, "labels": {}}
    for oc in outcomes:
        for section, entries in oc.stats.items():
            stats.setdefault(section, {}).update(entries)
    return stats


def scan(path: str | os.PathLike, options: ScanOptions | None = None, out_dir: str | None = None) -> ScanResult:
    """Scan ``path`` and return a :class:`ScanResult` (nothing is written to ``out_dir`` yet;
    it only hosts the staging folder so that moving clean files is a rename)."""
    options = options or ScanOptions()
    validate_options(options)
    baseline = None
    if options.baseline:  # issue 6: read before scanning, so a bad baseline fails fast (exit 2)
        from datasan.baseline import load_baseline

        baseline = load_baseline(options.baseline)
    started = time.time()
    t0 = time.perf_counter()
    root_arg = os.fspath(path)
    if not os.path.exists(root_arg):
        raise UsageError(f"no such file or folder: {root_arg}")
    if out_dir is not None and _inside(out_dir, root_arg) and os.path.isdir(root_arg):
        raise UsageError(f"the output folder {out_dir} lies inside PATH {root_arg}; datasan never writes "
                         "under PATH: choose another --out")
    discovery = discover(root_arg)
    if out_dir is not None:
        os.makedirs(out_dir, exist_ok=True)
    staging = tempfile.mkdtemp(prefix=".datasan-staging-", dir=out_dir)
    os.makedirs(os.path.join(staging, "clean"), exist_ok=True)
    from datasan.outputs.progress import Progress

    progress = Progress(enabled=options.progress)
    engine = LocalEngine(options.resolved_workers())
    ctx = ScanContext(root=discovery.root, options=options,
                      engine=engine, staging=staging, progress=progress)
    loose = FindingBuffer()
    loose.extend(discovery.findings)
    outcomes: list[SourceOutcome] = []
    try:
        files = discovery.files
        claimed = []
        for kind in load_kinds():
            sources, files = kind.claim(files, ctx)
            claimed.append((kind, sources))
        for f in files:
            loose.add(Finding("DS008", f"{f.rel} is not a file type datasan reads; it was ignored.",
                              source=f.rel))
        with engine:
            for kind, sources in claimed:
                if not sources:
                    continue
                progress.stage(kind.name)
                oc, extra = kind.run(sources, ctx)
                outcomes.extend(oc)
                loose.merge(extra)
            probe_report = _run_probe(outcomes, ctx)
    finally:
        progress.close()
    loose.apply_policy(options)
    per_source_q, quarantine = build_quarantine(outcomes)
    for oc in outcomes:
        q = per_source_q.get(oc.source.name, 0)
        if oc.kept + q != oc.seen:
            raise InvariantError(
                f"{oc.source.name}: kept {oc.kept} + quarantined {q} != {oc.unit} seen {oc.seen}; "
                f"partial results are in {staging}")
    findings = FindingBuffer()
    for oc in outcomes:
        findings.merge(oc.findings)
    findings.merge(loose)
    index = _merge_index(outcomes)
    seen = sum(oc.seen for oc in outcomes)
    kept = sum(oc.kept for oc in outcomes)
    report = {
        "datasan_version": __version__,
        "path": os.path.abspath(root_arg),
        "started": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(started)),
        "seconds": round(time.perf_counter() - t0, 3),
        "options": {
            "fail_on": options.fail_on,
            "target": options.target,
            "task": options.task,
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
    }
    return ScanResult(
        findings_table=findings.to_arrow(),
        quarantine_table=quarantine,
        stats=merge_stats(outcomes),
        report=report,
        index_table=index,
        fail_on=options.fail_on,
        max_quarantine_fraction=options.max_quarantine_fraction,
        baseline=baseline,
        staging=staging,
        clean_files=[f for oc in outcomes for f in oc.clean_files],
        owns_staging=True,
    )


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

