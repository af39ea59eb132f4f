"""``datasan.probe(data, model=..., loss_fn=...)``: the probe on in-memory data."""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any

from datasan.checks.probe import EXTREME_LOSS
from datasan.findings import Finding

DEFAULT_BATCH = 4096


@dataclass
class ProbeResult:
    """What the probe found in in-memory data.

    * ``findings``: one :class:`~datasan.findings.Finding` per flagged sample
      (``sample`` is the 0-based index as a string, ``row`` the index).
    * ``by_code``: rule code -> sorted sample indices.
    * ``errors`` / ``warnings``: sorted indices with an error / only warnings.
    * ``report``: network, stages, device, samples probed, seconds.
    """

    findings: list[Finding] = field(default_factory=list)
    by_code: dict[str, list[int]] = field(default_factory=dict)
    errors: list[int] = field(default_factory=list)
    warnings: list[int] = field(default_factory=list)
    report: dict[str, Any] = field(default_factory=dict)


def _as_arrays(data, target: str | None):
    """(X, y) tensors from (X, y), a pandas DataFrame, or an indexable dataset of (x, y)."""
    import numpy as np
    import torch

    def tensor(a):
        if torch.is_tensor(a):
            return a.detach().cpu()
        a = np.asarray(a)
        if a.dtype.kind == "f":
            with np.errstate(over="ignore"):
                a = a.astype(np.float32)
        a = np.ascontiguousarray(a)
        return torch.from_numpy(a if a.flags.writeable else a.copy())

    if isinstance(data, tuple) and len(data) == 2:
        return tensor(data[0]), tensor(data[1])
    if hasattr(data, "columns") and hasattr(data, "to_numpy"):  # a DataFrame
        cols = list(data.columns)
        tname = target or next((c for c in ("label", "target", "y", "class", "labels") if c in cols), None)
        if tname is None:
            raise ValueError("the DataFrame has no target column (label, target, y, class, labels): pass target=")
        feats = [c for c in cols if c != tname and data[c].dtype.kind in "fiub"]
        return tensor(data[feats].to_numpy(dtype=np.float64)), tensor(data[tname].to_numpy())
    if hasattr(data, "__getitem__") and hasattr(data, "__len__"):
        xs, ys = zip(*(data[i] for i in range(len(data))))
        y = torch.stack([tensor(y) for y in ys]).reshape(len(ys), -1).squeeze(1)
        return torch.stack([tensor(x) for x in xs]), y
    raise TypeError("data must be (X, y), a pandas DataFrame or a dataset of (x, y) pairs")


def probe(data, model=None, loss_fn=None, *, task: str = "auto", target: str | None = None,
          batch_size: int | None = None, device: str = "cpu", seed: int = 0, coupled: bool | None = None,
          outlier_k: float = 10.0) -> ProbeResult:
    """Find the samples of ``data`` that make a network's loss or gradient non-finite.

    ``data``: ``(X, y)`` (arrays or tensors, first dimension = samples), a pandas
    DataFrame (numeric feature columns + ``target``), or a dataset of ``(x, y)``.
    ``model``: a ``torch.nn.Module`` (default: a seeded MLP for 2-D ``X``, a small
    CNN for images ``(N, C, H, W)``); ``loss_fn(output, target)`` should return one
    loss per sample (a scalar loss marks the model as coupling samples).
    ``coupled``: force (or forbid) bisection; by default a model with BatchNorm
    in train mode is bisected.  Deterministic for a given ``seed``.
    """
    import numpy as np
    import torch

    from datasan.probe import models
    from datasan.probe.run import resolve_device
    from datasan.probe.stages import STAGES, Prober, extreme_losses

    t0 = time.perf_counter()
    x, y = _as_arrays(data, target)
    if task == "auto":
        task = "classification" if not y.is_floating_point() else "regression"
    if task == "classification":
        y = y.long()
    else:
        y = y.float()
    dev, note = resolve_device(device)
    if model is None:
        n_out = int(y.max()) + 1 if task == "classification" and y.numel() else 1
        if x.dim() == 4:
            model = models.default_cnn(x.shape[1], n_out, seed)
        else:
            x = x.reshape(x.shape[0], -1).float()
            model = models.default_mlp(x.shape[1], n_out, seed)
        net = models.ProbeNet(model, loss_fn or models.default_loss(task), f"seeded {models.describe(model)}",
                              coupled=bool(coupled), bound=models.linear_relu_bound(model) if loss_fn is None else None)
    else:
        torch.manual_seed(seed)
        net = models.wrap_user(model, loss_fn, task, f"user model {type(model).__name__}", coupled=coupled)
    if x.is_floating_point():
        x = x.float()
    prober = Prober(net, dev)
    bs = batch_size or DEFAULT_BATCH
    result = ProbeResult()
    losses = []
    bisections = 0
    for start in range(0, x.shape[0], bs):
        res = prober.probe_batch(x[start:start + bs], y[start:start + bs])
        bisections += res.bisections
        for code, items in res.flags.items():
            for pos, detail in items:
                i = start + pos
                result.findings.append(Finding(code, f"sample {i}: {detail}.", sample=str(i), row=i))
        if res.losses is not None:
            losses.append(res.losses)
        elif not net.coupled:
            losses.append(np.full(min(bs, x.shape[0] - start), np.nan))
    if losses and not net.coupled:
        allv = np.concatenate(losses)
        pos, med, limit = extreme_losses(allv, outlier_k)
        for p in pos:
            result.findings.append(Finding(EXTREME_LOSS.code,
                                           f"sample {int(p)}: the float32 loss {allv[p]:.4g} is an extreme "
                                           f"outlier (median {med:.4g}, limit {limit:.4g}).",
                                           sample=str(int(p)), row=int(p)))
    codes: dict[str, set] = {}
    for f in result.findings:
        codes.setdefault(f.code, set()).add(f.row)
    result.by_code = {c: sorted(v) for c, v in sorted(codes.items())}
    err = {f.row for f in result.findings if f.severity == "error"}
    result.errors = sorted(err)
    result.warnings = sorted({f.row for f in result.findings if f.severity == "warning"} - err)
    result.report = {"network": net.description, "task": task, "coupled": net.coupled, "device": dev,
                     "stages": list(STAGES), "samples_probed": int(x.shape[0]), "seed": seed,
                     "bisection_evaluations": bisections, "seconds": round(time.perf_counter() - t0, 3)}
    if note:
        result.report["device_note"] = note
    return result
