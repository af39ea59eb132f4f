"""The label estimate inside a scan: when it runs, and what it gives the outputs.

:func:`label_sample_for` decides whether a source's labels are scored (a
classification feed, DS407 not turned off) and gives the sample the probe's
pass fills; :func:`score_labels` turns :func:`datasan.probe.labels.estimate`
into DS407 findings, report.json's ``label_noise``, the source's rows of
label_quality.parquet and, for file samples, a ``label_quality`` column in
index.parquet.
"""

from __future__ import annotations

import time
from typing import Any, Callable

from datasan.checks import probe as checks
from datasan.findings import Finding
from datasan.sources.base import ProbeFeed, ScanContext, SourceOutcome

#: ctx.shared key under which each scored source leaves its label_quality rows
SHARED_KEY = "label_quality"


def label_sample_for(feed: ProbeFeed, ctx: ScanContext):
    """A :class:`~datasan.probe.labels.LabelSample` for the probe's pass, or None when the
    labels of this feed are not scored (not classification, or DS407 is off)."""
    from datasan.options import effective_severity

    if feed.task != "classification" or feed.num_outputs < 2:
        return None
    if effective_severity(ctx.options, checks.SUSPECT_LABEL.code) is None:
        return None
    from datasan.probe.labels import LabelSample

    return LabelSample.for_inputs(feed.input_shape, ctx.options.probe_seed, images=len(feed.input_shape) > 1)


def score_labels(sample, feed: ProbeFeed, oc: SourceOutcome, ctx: ScanContext, device: str,
                 where: Callable, loss_of: Callable | None = None) -> tuple[dict[str, Any], list[Finding]]:
    """Score the labels of one source: (report.json's ``label_noise``, DS407 findings).

    ``loss_of(keys)`` gives the probe's loss of each feed key (NaN: none) for
    label_quality.parquet's ``probe_loss``; without it the column is null."""
    import numpy as np

    from datasan.probe.deadline import ProbeTimeout, time_limit
    from datasan.probe.labels import estimate

    t0 = time.perf_counter()
    names = feed.class_names or [str(i) for i in range(feed.num_outputs)]
    images = len(feed.input_shape) > 1

    def rest():
        for b in feed.batches():
            if len(b.keys):
                yield b.x, b.y, b.keys

    try:
        with time_limit(ctx.options.probe_timeout):
            scores = estimate(sample, feed.num_outputs, ctx.options.probe_seed, images, rest, device)
    except ProbeTimeout as exc:
        return {"skipped": f"the label estimate {exc}"}, []
    if isinstance(scores, str):
        return {"skipped": scores}, []
    found = [checks.suspect_label(where(k), names[g], names[lk], float(p), float(q))
             for k, g, lk, p, q in zip(*(a[scores.suspect] for a in (scores.keys, scores.given, scores.likely,
                                                                    scores.p_likely, scores.quality)))]
    given_counts = np.bincount(scores.given, minlength=feed.num_outputs)
    rates = scores.joint.noise_rates(given_counts)
    report = {**scores.report, "flagged": len(found),
              "noise_rate": {names[i]: round(float(r), 4) for i, r in enumerate(rates) if given_counts[i]},
              "confusion": _confusion(scores.joint.c, names),
              "thresholds": {names[i]: round(float(t), 4) for i, t in enumerate(scores.thresholds.t)
                             if given_counts[i]}}
    ctx.shared.setdefault(SHARED_KEY, []).append(_quality_table(oc, feed, scores, names, loss_of))
    if feed.samples is not None and oc.index is not None:
        oc.index = _with_quality_column(oc.index, scores)
    report["seconds"] = round(time.perf_counter() - t0, 3)
    return report, found


def _confusion(c, names: list[str]) -> dict[str, dict[str, int]]:
    """The confident joint as {given: {likely: count}}, nonzero cells only."""
    return {names[i]: {names[j]: int(c[i, j]) for j in range(c.shape[1]) if c[i, j]}
            for i in range(c.shape[0]) if c[i].any()}


def _quality_table(oc: SourceOutcome, feed: ProbeFeed, scores, names: list[str], loss_of: Callable | None):
    """The source's rows of label_quality.parquet, in sample order."""
    import numpy as np
    import pyarrow as pa
    import pyarrow.compute as pc

    name = oc.source.name
    n = len(scores.keys)
    if feed.samples is None:
        rows = pa.array(scores.keys, type=pa.int64())
        sample = pc.binary_join_element_wise(pa.array([name] * n, pa.string()), pc.cast(rows, pa.string()), "#")
    else:
        rows = pa.nulls(n, pa.int64())
        sample = pa.array([feed.samples[int(k)] for k in scores.keys], pa.string())
    label_names = pa.array(names, pa.string())
    loss = loss_of(scores.keys) if loss_of is not None else np.full(n, np.nan)
    return pa.table({
        "sample": sample,
        "source": pa.array([name] * n, pa.string()),
        "row": rows,
        "label": label_names.take(pa.array(scores.given)),
        "likely_label": label_names.take(pa.array(scores.likely)),
        "label_quality": pa.array(scores.quality.astype(np.float64)),
        "suspect": pa.array(scores.suspect.astype(bool)),
        "probe_loss": pa.array(loss, type=pa.float64(), mask=~np.isfinite(loss)),
    })


def _with_quality_column(index, scores):
    """``index`` (file samples; keys are its row positions) with ``label_quality`` (null where not scored)."""
    import numpy as np
    import pyarrow as pa

    values = np.full(index.num_rows, np.nan)
    values[scores.keys] = scores.quality
    col = pa.array(values, mask=np.isnan(values))
    if "label_quality" in index.column_names:
        index = index.drop_columns(["label_quality"])
    return index.append_column("label_quality", col)


def merge_quality_tables(ctx: ScanContext):
    """label_quality.parquet's table: every scored source's rows, or None when none was scored."""
    import pyarrow as pa

    tables = ctx.shared.get(SHARED_KEY) or []
    return pa.concat_tables(tables) if tables else None
