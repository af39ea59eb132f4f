"""The probe inside a scan: :func:`probe_outcomes` is the pipeline's hook.

It runs after every source kind, over the samples they kept: per table, the
staged clean Parquet file; per image set, the index rows.  Error findings of
the probe (after the rule policy) leave the clean outputs: the clean file is
rewritten without those rows (streaming, atomic rename) and the source's
statistics are recomputed over the rows that remain; for images the index
rows go and the image kind recomputes its statistics.
"""

from __future__ import annotations

import os
import time
from typing import Any

from datasan.discover import path_of
from datasan.findings import Finding, FindingBuffer
from datasan.probe.deadline import time_limit
from datasan.sources.base import ScanContext, SourceOutcome

TABLE_BATCH = 32_768
IMAGE_BATCH = 64
IMAGE_KINDS = ("images", "image")


def probe_outcomes(outcomes: list[SourceOutcome], ctx: ScanContext) -> dict[str, Any]:
    """Probe every outcome's kept samples; add findings, quarantine errors; return report.json's "probe"."""
    t0 = time.perf_counter()
    import torch

    from datasan.probe.stages import STAGES

    opts = ctx.options
    device, device_note = resolve_device(opts.device)
    report: dict[str, Any] = {
        "ran": True,
        "torch": torch.__version__,
        "device": device,
        "seed": opts.probe_seed,
        "model": opts.probe_model or "default (MLP for tables, CNN for images)",
        "stages": list(STAGES),
        "samples_probed": 0,
        "sources": {},
    }
    if device_note:
        report["device_note"] = device_note
    if ctx.progress is not None and outcomes:
        ctx.progress.stage("probe")
    for oc in outcomes:
        rep = _probe_source(oc, ctx, device)
        if rep.get("skipped"):
            _add_policy(oc, ctx, [Finding("DS406", f"The probe skipped {oc.source.name}: {rep['skipped']}.",
                                          source=oc.source.name)])
        report["samples_probed"] += rep.get("probed", 0)
        report["sources"][oc.source.name] = rep
    report["seconds"] = round(time.perf_counter() - t0, 3)
    return report


#: a source where at least this share of the probed samples (and at least
#: BROKEN_MODEL_MIN of them) has finite inputs but a non-finite float32 loss is taken
#: for a broken model, not for bad data: nothing is quarantined and DS406 says so
BROKEN_MODEL_SHARE = 0.9
BROKEN_MODEL_MIN = 2


def _finite_inputs(x, flagged) -> int:
    """How many of the flagged batch positions have an all-finite input."""
    import numpy as np

    pos = [p for p, _ in flagged]
    if not pos:
        return 0
    rows = np.asarray(x)[pos].reshape(len(pos), -1)
    return int(np.isfinite(rows).all(axis=1).sum())


def _broken_model(suspicious: int, probed: int) -> str | None:
    """DS406's reason when the network, not the data, makes the losses non-finite; else None."""
    if probed and suspicious >= BROKEN_MODEL_MIN and suspicious >= BROKEN_MODEL_SHARE * probed:
        return (f"the probe network's float32 loss is non-finite for {suspicious} of {probed} samples whose "
                "inputs are all finite: the model is broken, not the data, so nothing was quarantined")
    return None


def _skipped_by_failure(exc: BaseException, ctx: ScanContext, net, probed: int) -> dict[str, Any]:
    """The report of a source whose probe raised: user code's failures (SystemExit included)
    and the time limit become DS406; anything else is re-raised."""
    from datasan.errors import UsageError
    from datasan.probe.deadline import ProbeTimeout, absorbs

    if isinstance(exc, ProbeTimeout):
        return {"skipped": f"the probe {exc}; this source was not probed", "probed": probed}
    if isinstance(exc, UsageError) or not ctx.options.probe_model or not absorbs(exc):
        raise exc
    what = "could not be built" if net is None else "failed"
    return {"skipped": f"the probe model {what}: {type(exc).__name__}: {exc}"[:300], "probed": probed}


def _probe_source(oc: SourceOutcome, ctx: ScanContext, device: str) -> dict[str, Any]:
    """The probe report of one source; a datasan bug in it is reported, not raised, so that
    the other sources are still probed and every output is written (the scan exits 3)."""
    from datasan.errors import UsageError

    kind = oc.source.kind
    if oc.report.get("internal_error"):
        return {"skipped": "datasan failed on this source before the probe"}
    try:
        if kind == "table":
            return _probe_table(oc, ctx, device)
        if kind in IMAGE_KINDS:
            return _probe_images(oc, ctx, device)
    except UsageError:
        raise
    except Exception as exc:  # noqa: BLE001 - a bug in the probe, not in the data
        from datasan.isolation import describe_exception

        why = describe_exception(exc)
        return {"skipped": f"the probe failed (a bug in datasan): {why}", "internal_error": why}
    return {"skipped": f"the probe does not run on {kind} sources (box labels are checked statically)"}


def resolve_device(requested: str) -> tuple[str, str | None]:
    """The torch device to use: cpu by default, cuda when asked and present (else cpu, with a note)."""
    import torch

    if requested.startswith("cuda"):
        if torch.cuda.is_available():
            return requested, None
        return "cpu", f"{requested} was asked for but torch sees no CUDA device; the probe ran on cpu"
    return "cpu", None


def _add_policy(oc: SourceOutcome, ctx: ScanContext, findings: list[Finding]) -> FindingBuffer:
    """Apply the rule policy to ``findings``, add them to the outcome and return them."""
    fb = FindingBuffer()
    fb.extend(findings)
    fb.apply_policy(ctx.options)
    oc.findings.merge(fb)
    return fb


def _error_samples(fb: FindingBuffer) -> list[str]:
    seen: dict[str, None] = {}
    for s, sev in zip(fb.column("sample"), fb.column("severity")):
        if sev == "error" and s is not None:
            seen[s] = None
    return list(seen)


def _net_for(ctx: ScanContext, *, kind: str, input_shape: tuple, num_outputs: int, task: str):
    from datasan.probe import models

    seed = ctx.options.probe_seed
    if ctx.options.probe_model:
        return models.from_factory(ctx.options.probe_model, input_shape=input_shape, num_outputs=num_outputs,
                                   task=task, seed=seed)
    if kind == "table":
        model = models.default_mlp(input_shape[0], num_outputs, seed)
    else:
        model = models.default_cnn(input_shape[0], num_outputs, seed)
    return models.ProbeNet(model, models.default_loss(task), f"seeded {models.describe(model)}",
                           bound=models.linear_relu_bound(model))


def _messages(flags, ids, source: str, rows=None, values=None, features=None):
    """Findings for one batch's flags."""
    out = []
    for code, items in flags.items():
        for pos, detail in items:
            extra = ""
            col = None
            if values is not None and features:
                v = values[pos]
                j = int(abs(v.astype("float64")).argmax()) if v.size else 0
                col = features[j]
                extra = f"; its largest feature is {col} = {float(v[j]):.6g}"
            sample = ids[pos]
            where = f"{source} row {int(rows[pos])}" if rows is not None else sample
            out.append(Finding(code, f"{where}: {detail}{extra}.", sample=sample, source=source,
                               row=int(rows[pos]) if rows is not None else None,
                               column=col if code in ("DS401", "DS403", "DS404") else None))
    return out


# --------------------------------------------------------------------------- tables

def _probe_table(oc: SourceOutcome, ctx: ScanContext, device: str) -> dict[str, Any]:
    import numpy as np
    import torch

    from datasan.probe.data import LabelMap, table_batches
    from datasan.probe.stages import Prober

    t0 = time.perf_counter()
    name = oc.source.name
    rep = oc.report or {}
    features = list(rep.get("features") or [])
    target, task = rep.get("target"), rep.get("task")
    if not oc.clean_files:
        return {"skipped": "the table could not be read"}
    if oc.kept == 0:
        return {"skipped": "no rows were kept"}
    if not features:
        return {"skipped": "no numeric feature columns to feed a network"}
    if target is None:
        return {"skipped": "no target column, so no loss (pass --target NAME)"}
    if task not in ("classification", "regression"):
        return {"skipped": f"the task of target '{target}' is unknown"}
    labels = None
    if task == "classification":
        counts = (oc.stats.get("labels") or {}).get(name) or {}
        if not counts:
            return {"skipped": "no class labels among the kept rows"}
        labels = LabelMap.build(counts, rep.get("num_classes"))
        num_out = labels.num_classes
    else:
        num_out = 1
    path = os.path.join(ctx.staging, "clean", oc.clean_files[0])
    bs = ctx.options.probe_batch_size or TABLE_BATCH
    found: list[Finding] = []
    losses, loss_rows = [], []
    probed = left_out = bisections = 0
    counts: dict[str, int] = {}
    # Rows that are errors whatever the losses of other rows (DS401-DS404 under the policy)
    # leave the clean file in the same pass: from the first batch that has one, a
    # CleanRewriter takes every batch (the batches before it are read again once).
    from datasan.options import effective_severity

    batch_errors = {c for c in ("DS401", "DS402", "DS403", "DS404") if effective_severity(ctx.options, c) == "error"}
    rw = None
    rows_done = 0
    net = None
    suspicious = 0  # DS401 samples whose input is finite: many of them mean a broken model
    try:
        with time_limit(ctx.options.probe_timeout):
            net = _net_for(ctx, kind="table", input_shape=(len(features),), num_outputs=num_out, task=task)
            prober = Prober(net, device)
            for batch, x, y, rows, lo in table_batches(path, features, target, task, labels, bs):
                left_out += lo
                bad_here = np.zeros(0, dtype=np.int64)
                if len(rows):
                    res = prober.probe_batch(torch.from_numpy(x), torch.from_numpy(y))
                    probed += len(rows)
                    bisections += res.bisections
                    if res.flags:
                        ids = _LazyIds(name, rows)
                        found.extend(_messages(res.flags, ids, name, rows=rows, values=x, features=features))
                        for code, items in res.flags.items():
                            counts[code] = counts.get(code, 0) + len(items)
                        suspicious += _finite_inputs(x, res.flags.get("DS401", ()))
                        bad_pos = sorted({p for c, items in res.flags.items() if c in batch_errors for p, _ in items})
                        bad_here = rows[bad_pos] if bad_pos else bad_here
                    if res.losses is not None:
                        losses.append(res.losses)
                        loss_rows.append(rows)
                t_rw = time.perf_counter()
                if rw is None and len(bad_here):
                    rw = CleanRewriter(oc, ctx, path, features, target, task)
                    _replay_prefix(rw, path, bs, rows_done)
                if rw is not None:
                    rw.add(batch, bad_here)
                    prober.seconds["rewrite-clean-file-and-stats"] = (
                        prober.seconds.get("rewrite-clean-file-and-stats", 0.0) + time.perf_counter() - t_rw)
                rows_done += batch.num_rows
    except BaseException as exc:  # the user's model failed on this data: say so, do not end the scan
        if rw is not None:
            rw.abort()
        return _skipped_by_failure(exc, ctx, net, probed)
    broken = _broken_model(suspicious, probed)
    if broken:
        if rw is not None:
            rw.abort()
        return {"skipped": broken, "probed": probed, "flagged": counts}
    t_ext = time.perf_counter()
    extreme = _extreme(name, losses, loss_rows, ctx.options.thresholds.probe_outlier_k)
    prober.seconds["extreme-loss"] = time.perf_counter() - t_ext
    found.extend(extreme)
    if extreme:
        counts["DS405"] = len(extreme)
    fb = _add_policy(oc, ctx, found)
    errors = _error_samples(fb)
    out = {
        "network": net.description,
        "task": task,
        "outputs": num_out,
        "coupled": net.coupled,
        "probed": probed,
        "flagged": counts,
        "quarantined": len(errors),
        "seconds": round(time.perf_counter() - t0, 3),
    }
    if net.coupled:
        out["bisection_evaluations"] = bisections
        out["extreme_loss"] = "skipped: per-sample losses of a coupled model are not per sample"
    if prober.vmap_failed:
        out["per_sample_gradients"] = f"vmap failed ({prober.vmap_failed}); bisected summed gradients"
    if left_out:
        out["not_probed"] = f"{left_out} rows without a usable target"
    bad_rows = np.asarray(sorted(int(s.rsplit("#", 1)[1]) for s in errors), dtype=np.int64)
    oc.kept -= len(errors)
    t_rw = time.perf_counter()
    if rw is not None:
        rw.finish()
        out["clean_file_rewritten"] = True
        # errors decided over the whole source (DS405 made an error by config) need one more pass
        bad_rows = np.setdiff1d(bad_rows, np.asarray(rw.excluded, dtype=np.int64))
    if len(bad_rows):
        rewrite_table(oc, ctx, path, bad_rows, features, target, task)
        out["clean_file_rewritten"] = True
    if out.get("clean_file_rewritten"):
        prober.seconds["rewrite-clean-file-and-stats"] = (
            prober.seconds.get("rewrite-clean-file-and-stats", 0.0) + time.perf_counter() - t_rw)
    out["stage_seconds"] = {k: round(v, 3) for k, v in prober.seconds.items()}
    out["seconds"] = round(time.perf_counter() - t0, 3)
    return out


def _replay_prefix(rw: CleanRewriter, path: str, batch_size: int, rows: int) -> None:
    """Feed the first ``rows`` rows of the clean file (clean so far) to ``rw``."""
    import numpy as np
    import pyarrow.parquet as pq

    if rows <= 0:
        return
    done = 0
    empty = np.zeros(0, dtype=np.int64)
    for batch in pq.ParquetFile(path).iter_batches(batch_size=batch_size):
        take = min(batch.num_rows, rows - done)
        rw.add(batch.slice(0, take) if take < batch.num_rows else batch, empty)
        done += take
        if done >= rows:
            break


class _LazyIds:
    """Sample ids of a batch's rows, made only for the positions asked for."""

    def __init__(self, source: str, rows) -> None:
        self.source, self.rows = source, rows

    def __getitem__(self, pos: int) -> str:
        return f"{self.source}#{int(self.rows[pos])}"


def _extreme(name: str, losses, loss_rows, k: float) -> list[Finding]:
    import numpy as np

    from datasan.probe.stages import extreme_losses

    if not losses:
        return []
    allv = np.concatenate(losses)
    rows = np.concatenate(loss_rows)
    pos, med, limit = extreme_losses(allv, k)
    return [Finding("DS405", f"{name} row {int(rows[p])}: the float32 loss {allv[p]:.4g} is an extreme outlier "
                             f"(median loss {med:.4g}, limit {limit:.4g}).",
                    sample=f"{name}#{int(rows[p])}", source=name, row=int(rows[p])) for p in pos]


from datasan.sources.tables.rewrite import CleanRewriter, rewrite_table  # noqa: E402,F401


# --------------------------------------------------------------------------- images

def _probe_images(oc: SourceOutcome, ctx: ScanContext, device: str) -> dict[str, Any]:
    import numpy as np
    import pyarrow as pa
    import pyarrow.compute as pc
    import torch

    from datasan.probe.data import ImageBatchTask, load_image_batch
    from datasan.probe.models import IMAGE_SIZE
    from datasan.probe.stages import Prober

    t0 = time.perf_counter()
    name = oc.source.name
    index = oc.index
    if index is None or index.num_rows == 0:
        return {"skipped": "no images were kept"}
    samples = index.column("sample").to_pylist()
    labels = index.column("label").to_pylist() if "label" in index.column_names else [None] * len(samples)
    labelled = [i for i, lab in enumerate(labels) if lab is not None and str(lab) != ""]
    if not labelled:
        return {"skipped": "the images have no labels, so there is no loss to compute"}
    classes = sorted({str(labels[i]) for i in labelled})
    class_id = {c: i for i, c in enumerate(classes)}
    bs = ctx.options.probe_batch_size or IMAGE_BATCH
    chunks = [labelled[s:s + bs] for s in range(0, len(labelled), bs)]
    tasks = [ImageBatchTask([path_of(ctx.root, samples[i]) for i in ch], IMAGE_SIZE) for ch in chunks]
    found: list[Finding] = []
    losses, loss_pos = [], []
    probed = 0
    unreadable: list[str] = []
    counts: dict[str, int] = {}
    net = None
    suspicious = 0
    try:
        with time_limit(ctx.options.probe_timeout):
            net = _net_for(ctx, kind="images", input_shape=(3, IMAGE_SIZE, IMAGE_SIZE),
                           num_outputs=len(classes), task="classification")
            prober = Prober(net, device)
            for ch, batch in zip(chunks, ctx.engine.map_ordered(load_image_batch, tasks)):
                for i, why in batch.failed:
                    unreadable.append(f"{samples[ch[i]]}: {why}")
                if not batch.ok:
                    continue
                pos = [ch[i] for i in batch.ok]
                y = torch.tensor([class_id[str(labels[p])] for p in pos], dtype=torch.int64)
                res = prober.probe_batch(torch.from_numpy(batch.array), y)
                probed += len(pos)
                suspicious += _finite_inputs(batch.array, res.flags.get("DS401", ()))
                for code, items in res.flags.items():
                    counts[code] = counts.get(code, 0) + len(items)
                    for local, detail in items:
                        s = samples[pos[local]]
                        found.append(Finding(code, f"{s}: {detail}.", sample=s, source=s))
                if res.losses is not None:
                    losses.append(res.losses)
                    loss_pos.append(np.asarray(pos))
    except BaseException as exc:
        return _skipped_by_failure(exc, ctx, net, probed)
    broken = _broken_model(suspicious, probed)
    if broken:
        return {"skipped": broken, "probed": probed, "flagged": counts}
    if losses:
        from datasan.probe.stages import extreme_losses

        allv, allp = np.concatenate(losses), np.concatenate(loss_pos)
        ext, med, limit = extreme_losses(allv, ctx.options.thresholds.probe_outlier_k)
        for p in ext:
            s = samples[int(allp[p])]
            found.append(Finding("DS405", f"{s}: the float32 loss {allv[p]:.4g} is an extreme outlier "
                                          f"(median loss {med:.4g}, limit {limit:.4g}).", sample=s, source=s))
        if len(ext):
            counts["DS405"] = len(ext)
    fb = _add_policy(oc, ctx, found)
    errors = _error_samples(fb)
    out: dict[str, Any] = {
        "network": net.description,
        "task": "classification",
        "outputs": len(classes),
        "image_size": IMAGE_SIZE,
        "coupled": net.coupled,
        "probed": probed,
        "flagged": counts,
        "quarantined": len(errors),
        "seconds": round(time.perf_counter() - t0, 3),
    }
    if len(labelled) < len(samples):
        out["not_probed"] = f"{len(samples) - len(labelled)} images without a label"
    if unreadable:
        out["unreadable"] = unreadable[:20]
    if errors:
        keep = pc.invert(pc.is_in(index.column("sample"), value_set=pa.array(errors, type=pa.string())))
        oc.index = index.filter(keep)
        oc.kept -= len(errors)
        try:
            from datasan.sources.images import recompute_stats

            recompute_stats(oc, ctx)
            out["stats_recomputed"] = True
        except (ImportError, AttributeError) as exc:
            out["stats_recomputed"] = False
            out["stats_note"] = (f"the image statistics could not be recomputed without the quarantined "
                                 f"images ({type(exc).__name__}); they still include them")
    return out
