"""The probe inside a scan: :func:`probe_outcomes` is the pipeline's hook.

It runs after every source kind, over the samples they kept.  It knows no
kind: each outcome's kind gives it a :class:`~datasan.sources.base.ProbeFeed`
(batches of inputs and targets, the network they need) and takes back the
samples that are errors after the rule policy: in the same pass through the
feed's stream (a table's clean file is rewritten as the batches go by), or
after it through :meth:`~datasan.sources.base.DropsSamples.drop_samples`.
A kind without those capabilities is skipped with DS406 saying why.
"""

from __future__ import annotations

import time
from typing import Any

from datasan.checks import probe as checks
from datasan.findings import Finding, FindingBuffer
from datasan.probe.deadline import time_limit
from datasan.sources.base import DropsSamples, ProbeFeed, ProbesSamples, ScanContext, SourceOutcome


def probe_outcomes(outcomes: list[SourceOutcome], ctx: ScanContext, kinds: list | None = None) -> dict[str, Any]:
    """Probe every outcome's kept samples; add findings, quarantine errors; return report.json's "probe".

    ``kinds`` are the source kinds that made the outcomes (default: every registered kind).
    """
    t0 = time.perf_counter()
    import torch

    from datasan.probe.stages import STAGES
    from datasan.sources import load_kinds

    opts = ctx.options
    kinds = load_kinds() if kinds is None else kinds
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
        rep = _probe_source(oc, ctx, device, kinds)
        if rep.get("skipped"):
            _add_policy(oc, ctx, [checks.probe_skipped(oc.source.name, rep["skipped"])])
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


def _probe_source(oc: SourceOutcome, ctx: ScanContext, device: str, kinds: list) -> dict[str, Any]:
    """The probe report of one source; a datasan bug in it is reported, not raised, so that
    the other sources are still probed and every output is written (the scan exits 3)."""
    from datasan.errors import UsageError
    from datasan.sources import kind_of

    if oc.report.get("internal_error"):
        return {"skipped": "datasan failed on this source before the probe"}
    kind = kind_of(oc.source.kind, kinds)
    if not isinstance(kind, ProbesSamples):
        why = getattr(kind, "not_probed_because", None) or "its kind gives the probe no batches"
        return {"skipped": f"the probe does not run on {oc.source.kind} sources ({why})"}
    if not isinstance(kind, DropsSamples):
        return {"skipped": f"the probe cannot take samples out of {oc.source.kind} sources, "
                           "so it could not quarantine what it finds"}
    try:
        feed = kind.probe_feed(oc, ctx)
        if isinstance(feed, str):
            return {"skipped": feed}
        return _probe_feed(oc, ctx, device, kind, feed)
    except UsageError:
        raise
    except Exception as exc:  # noqa: BLE001 - a bug in the probe, not in the data
        from datasan.isolation import describe_exception

        why = describe_exception(exc)
        return {"skipped": f"the probe failed (a bug in datasan): {why}", "internal_error": why}


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


def _net_for(ctx: ScanContext, *, network: str, input_shape: tuple, num_outputs: int, task: str):
    """The user's network when ``--probe-model`` names one, else the seeded default for ``network``."""
    from datasan.probe import models

    seed = ctx.options.probe_seed
    if ctx.options.probe_model:
        return models.from_factory(ctx.options.probe_model, input_shape=input_shape, num_outputs=num_outputs,
                                   task=task, seed=seed)
    if network == "mlp":
        model = models.default_mlp(input_shape[0], num_outputs, seed)
    else:
        model = models.default_cnn(input_shape[0], num_outputs, seed)
    return models.ProbeNet(model, models.default_loss(task), f"seeded {models.describe(model)}",
                           bound=models.linear_relu_bound(model))


class _Where:
    """Turns a feed's keys into :class:`~datasan.checks.probe.ProbedSample` (only for the
    samples that are flagged: a table's millions of row ids are never made)."""

    def __init__(self, source: str, samples) -> None:
        self.source, self.samples = source, samples

    def __call__(self, key) -> checks.ProbedSample:
        if self.samples is None:
            return checks.ProbedSample(f"{self.source}#{int(key)}", self.source, int(key))
        s = self.samples[int(key)]
        return checks.ProbedSample(s, s)


def _largest(x, pos: int, features: list[str] | None) -> tuple[str, float] | None:
    """(name, value) of the largest absolute input of row ``pos`` when inputs are named."""
    if not features:
        return None
    v = x[pos]
    j = int(abs(v.astype("float64")).argmax()) if v.size else 0
    return features[j], float(v[j])


def _probe_feed(oc: SourceOutcome, ctx: ScanContext, device: str, kind: DropsSamples,
                feed: ProbeFeed) -> dict[str, Any]:
    """Probe one outcome through its kind's feed: the one loop every kind goes through."""
    import numpy as np
    import torch

    from datasan.options import effective_severity
    from datasan.probe.label_outputs import label_sample_for, score_labels
    from datasan.probe.losses import LossSummary, loss_column, with_loss_column
    from datasan.probe.stages import Prober

    t0 = time.perf_counter()
    where = _Where(oc.source.name, feed.samples)
    stream = feed.stream
    # Samples that are errors whatever the losses of other samples (DS401-DS404 under the
    # policy) leave through the stream in the same pass.
    batch_errors = {c for c in (checks.NON_FINITE_LOSS.code, checks.NON_FINITE_GRADIENT.code,
                                checks.FLOAT16_NON_FINITE.code, checks.BFLOAT16_NON_FINITE.code)
                    if effective_severity(ctx.options, c) == "error"}
    found: list[Finding] = []
    losses, loss_keys = [], []
    loss_summary = LossSummary()
    probed = left_out = bisections = 0
    unreadable: list[str] = []
    counts: dict[str, int] = {}
    net = prober = None
    suspicious = 0  # DS401 samples whose input is finite: many of them mean a broken model
    label_sample = label_sample_for(feed, ctx)
    try:
        with time_limit(ctx.options.probe_timeout):
            net = _net_for(ctx, network=feed.network, input_shape=feed.input_shape,
                           num_outputs=feed.num_outputs, task=feed.task)
            prober = Prober(net, device)
            for batch in feed.batches():
                left_out += batch.left_out
                unreadable.extend(batch.failed)
                drop = np.zeros(0, dtype=np.int64)
                if len(batch.keys):
                    # an engine may hand back read-only arrays (Ray's zero-copy object store);
                    # torch wants writable memory under its tensors.  C order too: a
                    # channels-last view takes other convolution kernels, whose float sums
                    # differ in the last bit, and each engine must give the same losses
                    x, y = (np.require(a, requirements=["W", "C"]) for a in (batch.x, batch.y))
                    res = prober.probe_batch(torch.from_numpy(x), torch.from_numpy(y))
                    probed += len(batch.keys)
                    bisections += res.bisections
                    for code, items in res.flags.items():
                        counts[code] = counts.get(code, 0) + len(items)
                        found.extend(checks.flagged(code, where(batch.keys[p]), detail,
                                                    _largest(batch.x, p, feed.features)) for p, detail in items)
                    suspicious += _finite_inputs(batch.x, res.flags.get(checks.NON_FINITE_LOSS.code, ()))
                    bad = sorted({p for c, items in res.flags.items() if c in batch_errors for p, _ in items})
                    if bad:
                        drop = np.asarray(batch.keys)[bad]
                    if res.losses is not None:
                        losses.append(res.losses)
                        loss_keys.append(np.asarray(batch.keys))
                        loss_summary.add(res.losses, batch.keys)
                    if label_sample is not None:
                        label_sample.add(batch.x, batch.y, batch.keys, skip=drop)
                if stream is not None:
                    t_rw = time.perf_counter()
                    stream.add(batch, drop)
                    if stream.active:
                        _clock(prober, "rewrite-clean-file-and-stats", t_rw)
    except BaseException as exc:  # the user's model failed on this data: say so, do not end the scan
        if stream is not None:
            stream.abort()
        return _skipped_by_failure(exc, ctx, net, probed)
    broken = _broken_model(suspicious, probed)
    if broken:
        if stream is not None:
            stream.abort()
        return {"skipped": broken, "probed": probed, "flagged": counts}
    t_ext = time.perf_counter()
    all_losses = np.concatenate(losses) if losses else np.zeros(0)
    all_keys = np.concatenate(loss_keys) if loss_keys else np.zeros(0, dtype=np.int64)
    extreme = _extreme(where, all_losses, all_keys, ctx.options.thresholds.probe_outlier_k)
    prober.seconds["extreme-loss"] = time.perf_counter() - t_ext
    found.extend(extreme)
    if extreme:
        counts[checks.EXTREME_LOSS.code] = len(extreme)
    label_noise = None
    if label_sample is not None:
        label_noise, suspects = score_labels(label_sample, feed, oc, ctx, device, where,
                                             lambda wanted: loss_column(all_losses, all_keys, wanted))
        found.extend(suspects)
        if suspects:
            counts[checks.SUSPECT_LABEL.code] = len(suspects)
    errors = _error_samples(_add_policy(oc, ctx, found))
    out: dict[str, Any] = {"network": net.description, "task": feed.task, "outputs": feed.num_outputs,
                           **feed.report, "coupled": net.coupled, "probed": probed, "flagged": counts,
                           "quarantined": len(errors), "seconds": round(time.perf_counter() - t0, 3)}
    if net.coupled:
        out["bisection_evaluations"] = bisections
        out["extreme_loss"] = "skipped: per-sample losses of a coupled model are not per sample"
    if prober.vmap_failed:
        out["per_sample_gradients"] = f"vmap failed ({prober.vmap_failed}); bisected summed gradients"
    if left_out:
        out["not_probed"] = f"{left_out} {feed.left_out_what}"
    if unreadable:
        out["unreadable"] = unreadable[:20]
    if label_noise is not None:
        out["label_noise"] = label_noise
    if losses:
        out["loss"] = loss_summary.as_json(lambda k: where(k).sample)
        if feed.samples is not None and oc.index is not None:
            oc.index = with_loss_column(oc.index, all_losses, all_keys)
    t_rw = time.perf_counter()
    dropped: set[str] = set()
    if stream is not None and stream.active:
        dropped.update(stream.finish())
        out["clean_file_rewritten"] = True
    # errors decided over the whole source (DS405 made an error by config) leave in one more pass
    rest = [s for s in errors if s not in dropped]
    if rest:
        out.update(kind.drop_samples(oc, ctx, rest))
    if dropped or rest:
        _clock(prober, "rewrite-clean-file-and-stats", t_rw)
    out["stage_seconds"] = {k: round(v, 3) for k, v in prober.seconds.items()}
    out["seconds"] = round(time.perf_counter() - t0, 3)
    return out


def _clock(prober, stage: str, since: float) -> None:
    prober.seconds[stage] = prober.seconds.get(stage, 0.0) + time.perf_counter() - since


def _extreme(where: _Where, allv, keys, k: float) -> list[Finding]:
    """DS405 for the samples whose loss is an extreme outlier among the source's losses."""
    from datasan.probe.stages import extreme_losses

    if not len(allv):
        return []
    pos, med, limit = extreme_losses(allv, k)
    return [checks.extreme_loss(where(keys[p]), float(allv[p]), med, limit) for p in pos]
