"""The probe's stages over one batch.

1. forward in float32: per-sample output and loss (``reduction='none'``);
   non-finite -> DS401, with where it went non-finite first (input, the
   first layer whose output is non-finite, or the loss).
2. gradients: one backward of the summed loss of the finite samples; the sum
   of per-sample gradients is finite whenever every per-sample gradient is
   (Inf + x = Inf, NaN + x = NaN), so only a batch whose summed gradient is
   non-finite pays for per-sample gradients (torch.func vmap + grad, in
   chunks) -> DS402.  (Summing can overflow to Inf on its own: the per-sample
   pass then finds nothing, and nothing is flagged.)
3. replay under autocast float16 and bfloat16 of the samples finite so far ->
   DS403 / DS404 (warnings: the AMP case).
4. extreme losses are decided over a whole source (:func:`extreme_losses`).

For a model that couples samples (BatchNorm in train mode, a loss over the
batch) per-sample losses say nothing, so each stage asks "does this subset
fail?" and bisects failing batches (:mod:`datasan.probe.bisect`).
"""

from __future__ import annotations

import math
import time
from contextlib import contextmanager
from dataclasses import dataclass, field

import numpy as np
import torch

from datasan.checks.probe import BFLOAT16_NON_FINITE, FLOAT16_NON_FINITE, NON_FINITE_GRADIENT, NON_FINITE_LOSS
from datasan.probe.bisect import find_failing
from datasan.probe.models import ProbeNet

STAGES = ("forward-float32", "gradient-float32", "autocast-float16", "autocast-bfloat16", "extreme-loss")
#: samples whose first non-finite layer is looked up (the rest get a shorter message)
MAX_DIAGNOSED = 256
#: a sample is replayed in a half type only if some partial sum may exceed half this
#: type's largest value (the factor 2 covers the rounding of inputs and weights)
HALF_LIMITS = {torch.float16: 65504.0 / 2, torch.bfloat16: 3.3895e38 / 2}
#: bytes of per-sample gradients held at once
GRAD_CHUNK_BYTES = 256 * 1024 * 1024


@dataclass
class BatchFlags:
    """What the stages found in one batch: positions in the batch and a message detail each."""

    flags: dict[str, list[tuple[int, str]]] = field(default_factory=dict)
    #: float32 loss per sample (NaN where the sample was not finite, or unknown for coupled models)
    losses: np.ndarray | None = None
    bisections: int = 0

    def add(self, code: str, pos: int, detail: str) -> None:
        self.flags.setdefault(code, []).append((int(pos), detail))


class Prober:
    """Runs the stages of one :class:`ProbeNet` over batches on one device."""

    def __init__(self, net: ProbeNet, device: str = "cpu", stages: tuple[str, ...] = STAGES) -> None:
        self.net = net
        self.device = torch.device(device)
        self.stages = stages
        self.net.model.to(self.device)
        self.reference: tuple | None = None  # a known-good sample, to pad subsets of one
        self.vmap_failed: str | None = None
        self._names = {id(m): n for n, m in net.model.named_modules() if n}
        #: seconds spent per stage (report.json)
        self.seconds: dict[str, float] = {}

    def _clock(self, stage: str, since: float) -> float:
        now = time.perf_counter()
        self.seconds[stage] = self.seconds.get(stage, 0.0) + now - since
        return now

    # ------------------------------------------------------------------ public
    def probe_batch(self, x, y) -> BatchFlags:
        """Run the stages over one batch (``x``, ``y``: CPU tensors, first dim = samples)."""
        x = x.to(self.device)
        y = y.to(self.device)
        with _kept_buffers(self.net.model):
            if self.net.coupled:
                return self._coupled(x, y)
            out = self._independent(x, y)
            if out is None:  # the loss is not per sample: the model couples samples after all
                self.net.coupled = True
                return self._coupled(x, y)
            return out

    # ------------------------------------------------------------------ independent samples
    def _per_sample_loss(self, x, y, need_grad: bool):
        model, loss_fn = self.net.model, self.net.loss_fn
        with torch.set_grad_enabled(need_grad):
            out = model(x)
            loss = loss_fn(out, y)
        if loss.dim() == 0 or loss.shape[0] != x.shape[0]:
            return None, None
        if loss.dim() > 1:
            loss = loss.reshape(loss.shape[0], -1).mean(dim=1)
        return out, loss

    def _independent(self, x, y) -> BatchFlags | None:
        res = BatchFlags()
        n = x.shape[0]
        model = self.net.model
        model.zero_grad(set_to_none=True)
        want_grad = "gradient-float32" in self.stages
        t = time.perf_counter()
        # one forward serves stage 1 and, when every sample is finite, stage 2's backward
        out, loss = self._per_sample_loss(x, y, need_grad=want_grad)
        if loss is None:
            return None
        with torch.no_grad():
            finite = torch.isfinite(loss) & torch.isfinite(out.reshape(n, -1).float()).all(dim=1)
        good = finite.clone()
        bad_idx = torch.nonzero(~finite).flatten().tolist()
        if bad_idx:
            for pos, detail in zip(bad_idx, self._diagnose(x, y, bad_idx)):
                res.add(NON_FINITE_LOSS.code, pos, detail)
        good_idx = torch.nonzero(good).flatten()
        t = self._clock("forward-float32", t)
        if want_grad and good_idx.numel():
            if bad_idx:
                # backward only through the finite samples, from a fresh forward: a masked-out
                # Inf row would still turn 0 * Inf into NaN in the weight gradients
                xs, ys = x[good_idx], y[good_idx]
                _, loss_g = self._per_sample_loss(xs, ys, need_grad=True)
            else:
                xs, ys, loss_g = x, y, loss
            model.zero_grad(set_to_none=True)
            total = loss_g.sum()
            if total.requires_grad:
                total.backward()
                grads_finite = all(p.grad is None or bool(torch.isfinite(p.grad).all())
                                   for p in model.parameters())
                model.zero_grad(set_to_none=True)
                if not grads_finite:
                    for local in self._grad_failures(xs, ys):
                        pos = int(good_idx[local])
                        good[pos] = False
                        res.add(NON_FINITE_GRADIENT.code, pos, "the loss is finite but its gradient is not (float32)")
        t = self._clock("gradient-float32", t)
        self._amp(x, y, good, res)
        self._clock("autocast", t)
        losses = loss.detach().double().cpu().numpy().copy()
        losses[~good.cpu().numpy()] = np.nan
        res.losses = losses
        ref = torch.nonzero(good).flatten()
        if self.reference is None and ref.numel():
            i = int(ref[0])
            self.reference = (x[i:i + 1].detach().clone(), y[i:i + 1].detach().clone())
        return res

    def _grad_failures(self, x, y) -> list[int]:
        """Positions (in ``x``) of samples whose own gradient is non-finite."""
        try:
            return self._vmap_grad_failures(x, y)
        except Exception as exc:  # the user's model does not vmap: bisect on summed gradients
            self.vmap_failed = f"{type(exc).__name__}: {exc}"[:200]
            bad, _ = find_failing(list(range(x.shape[0])), lambda idx: self._grad_fails(x, y, idx),
                                  known_failing=True)
            return bad

    def _vmap_grad_failures(self, x, y) -> list[int]:
        from torch.func import functional_call, grad, vmap

        model, loss_fn = self.net.model, self.net.loss_fn
        params = {k: v.detach() for k, v in model.named_parameters()}
        buffers = {k: v.detach() for k, v in model.named_buffers()}
        n_params = sum(v.numel() for v in params.values())
        chunk = max(1, min(4096, GRAD_CHUNK_BYTES // max(1, 4 * n_params)))

        def sample_loss(p, b, xi, yi):
            out = functional_call(model, (p, b), (xi.unsqueeze(0),))
            return loss_fn(out, yi.unsqueeze(0)).sum()

        per_sample = vmap(grad(sample_loss), in_dims=(None, None, 0, 0))
        failing: list[int] = []
        for start in range(0, x.shape[0], chunk):
            g = per_sample(params, buffers, x[start:start + chunk], y[start:start + chunk])
            bad = torch.zeros(min(chunk, x.shape[0] - start), dtype=torch.bool, device=x.device)
            for v in g.values():
                bad |= ~torch.isfinite(v.reshape(v.shape[0], -1)).all(dim=1)
            failing.extend((torch.nonzero(bad).flatten() + start).tolist())
        return failing

    def _amp(self, x, y, good, res: BatchFlags) -> None:
        bounds = None
        for stage, code, dtype in (("autocast-float16", FLOAT16_NON_FINITE.code, torch.float16),
                                   ("autocast-bfloat16", BFLOAT16_NON_FINITE.code, torch.bfloat16)):
            if stage not in self.stages:
                continue
            idx = torch.nonzero(good).flatten()
            if not idx.numel():
                return
            if self.net.bound is not None:
                # replay only the samples that could overflow: a sample whose every
                # partial sum is bounded well below the half type's maximum cannot
                if bounds is None:
                    with torch.no_grad():
                        bounds = self.net.bound(x)
                idx = idx[bounds[idx] > HALF_LIMITS[dtype]]
                if not idx.numel():
                    continue
            xs, ys = (x, y) if idx.numel() == x.shape[0] else (x[idx], y[idx])
            with torch.no_grad(), torch.autocast(device_type=self.device.type, dtype=dtype):
                out = self.net.model(xs)
                loss = self.net.loss_fn(out, ys)
            if loss.dim() > 1:
                loss = loss.reshape(loss.shape[0], -1).mean(dim=1)
            nf = ~(torch.isfinite(loss.float()) & torch.isfinite(out.reshape(out.shape[0], -1).float()).all(dim=1))
            name = "float16" if dtype == torch.float16 else "bfloat16"
            for local in torch.nonzero(nf).flatten().tolist():
                res.add(code, int(idx[local]), f"finite in float32, the loss is non-finite under {name} autocast")

    def _diagnose(self, x, y, positions: list[int]) -> list[str]:
        """Where each sample first went non-finite: input, a layer's output, or the loss."""
        details = ["the loss is non-finite in float32"] * len(positions)
        sel = positions[:MAX_DIAGNOSED]
        xs, ys = x[sel], y[sel]
        n = len(sel)
        first: list[str | None] = [None] * n
        x_bad = ~torch.isfinite(xs.reshape(n, -1).float()).all(dim=1)
        y_bad = ~torch.isfinite(ys.reshape(n, -1).float()).all(dim=1) if ys.is_floating_point() else \
            torch.zeros(n, dtype=torch.bool, device=xs.device)

        def hook(mod, inputs, output):
            if not torch.is_tensor(output) or output.dim() == 0 or output.shape[0] != n:
                return
            nf = ~torch.isfinite(output.reshape(n, -1).float()).all(dim=1)
            for i in torch.nonzero(nf).flatten().tolist():
                if first[i] is None:
                    first[i] = f"{self._names.get(id(mod), '?')} ({type(mod).__name__})"

        handles = [m.register_forward_hook(hook) for m in self.net.model.modules()
                   if not list(m.children()) and m is not self.net.model]
        try:
            with torch.no_grad():
                out = self.net.model(xs)
                out_bad = ~torch.isfinite(out.reshape(n, -1).float()).all(dim=1)
        finally:
            for h in handles:
                h.remove()
        for i in range(n):
            if bool(x_bad[i]):
                details[i] = "the input is already non-finite as float32"
            elif first[i] is not None:
                details[i] = f"the activations went non-finite first, at layer {first[i]}"
            elif bool(out_bad[i]):
                details[i] = "the network's output went non-finite"
            elif bool(y_bad[i]):
                details[i] = "the target is non-finite as float32, so the loss is"
            else:
                details[i] = "input and activations are finite; the loss itself went non-finite"
        return details

    # ------------------------------------------------------------------ coupled samples
    def _subset(self, x, y, idx: list[int]):
        sub_x, sub_y = x[idx], y[idx]
        if len(idx) == 1 and self.reference is not None:
            sub_x = torch.cat([sub_x, self.reference[0]])
            sub_y = torch.cat([sub_y, self.reference[1]])
        return sub_x, sub_y

    def _loss_fails(self, x, y, idx: list[int], dtype=None) -> bool:
        sub_x, sub_y = self._subset(x, y, idx)
        with torch.no_grad():
            if dtype is None:
                out = self.net.model(sub_x)
                loss = self.net.loss_fn(out, sub_y)
            else:
                with torch.autocast(device_type=self.device.type, dtype=dtype):
                    out = self.net.model(sub_x)
                    loss = self.net.loss_fn(out, sub_y)
        fails = not (bool(torch.isfinite(loss.float()).all()) and bool(torch.isfinite(out.float()).all()))
        if not fails and dtype is None and self.reference is None and len(idx) >= 2:
            # a passing subset gives the reference that lets a single sample be evaluated
            i = idx[0]
            self.reference = (x[i:i + 1].detach().clone(), y[i:i + 1].detach().clone())
        return fails

    def _grad_fails(self, x, y, idx: list[int]) -> bool:
        sub_x, sub_y = self._subset(x, y, idx)
        model = self.net.model
        model.zero_grad(set_to_none=True)
        with torch.enable_grad():
            loss = self.net.loss_fn(model(sub_x), sub_y)
            total = loss.sum()
            if not total.requires_grad:
                return False
            total.backward()
        fails = not all(p.grad is None or bool(torch.isfinite(p.grad).all()) for p in model.parameters())
        model.zero_grad(set_to_none=True)
        return fails

    def _safe(self, pred):
        def run(idx):
            try:
                return pred(idx)
            except (ValueError, RuntimeError):  # e.g. BatchNorm refusing a batch of one
                return False
        return run

    def _coupled(self, x, y) -> BatchFlags:
        res = BatchFlags()
        n = x.shape[0]
        calls = [0]

        def counted(pred):
            safe = self._safe(pred)

            def run(idx):
                calls[0] += 1
                return safe(idx)
            return run

        remaining = list(range(n))
        stages = [("forward-float32", NON_FINITE_LOSS.code, lambda idx: self._loss_fails(x, y, idx),
                   "the batch's loss goes non-finite when this sample is in it (float32; found by bisection)")]
        if "gradient-float32" in self.stages:
            stages.append(("gradient-float32", NON_FINITE_GRADIENT.code, lambda idx: self._grad_fails(x, y, idx),
                           "the batch's gradient goes non-finite when this sample is in it (float32; "
                           "found by bisection)"))
        for stage, code, dtype in (("autocast-float16", FLOAT16_NON_FINITE.code, torch.float16),
                                   ("autocast-bfloat16", BFLOAT16_NON_FINITE.code, torch.bfloat16)):
            if stage in self.stages:
                stages.append((stage, code, (lambda d: lambda idx: self._loss_fails(x, y, idx, d))(dtype),
                               f"finite in float32, the batch's loss goes non-finite under "
                               f"{'float16' if dtype == torch.float16 else 'bfloat16'} autocast with this "
                               "sample in it (found by bisection)"))
        for stage, code, pred, detail in stages:
            if not remaining:
                break
            bad, groups = find_failing(remaining, counted(pred))
            for pos in bad:
                res.add(code, pos, detail)
            if code in (NON_FINITE_LOSS.code, NON_FINITE_GRADIENT.code):
                drop = set(bad)
                remaining = [i for i in remaining if i not in drop]
            if self.reference is None and len(remaining) >= 2 and code == NON_FINITE_LOSS.code:
                i = remaining[0]
                self.reference = (x[i:i + 1].detach().clone(), y[i:i + 1].detach().clone())
        res.bisections = calls[0]
        return res


@contextmanager
def _kept_buffers(model):
    """Restore buffers (BatchNorm running statistics) after probing a batch, so that
    a bad batch in train mode cannot poison the statistics later batches see."""
    saved = {k: v.detach().clone() for k, v in model.named_buffers()}
    try:
        yield
    finally:
        if saved:
            with torch.no_grad():
                for k, v in model.named_buffers():
                    if k in saved:
                        v.copy_(saved[k])


def extreme_losses(losses: np.ndarray, k: float) -> tuple[np.ndarray, float, float]:
    """Positions of finite losses whose log is more than ``k`` robust standard deviations
    above the median log-loss; returns (positions, median loss, threshold loss)."""
    finite = np.isfinite(losses)
    vals = losses[finite]
    if vals.size < 20:
        return np.zeros(0, dtype=np.int64), math.nan, math.nan
    logs = np.log(np.maximum(vals, 1e-30))
    med = float(np.median(logs))
    mad = float(np.median(np.abs(logs - med))) * 1.4826
    # floor: with losses nearly all equal (MAD 0) flag only losses e**k times the median
    mad = max(mad, 1.0)
    limit = med + k * mad
    pos_all = np.flatnonzero(finite)
    with np.errstate(divide="ignore"):
        flagged = pos_all[np.log(np.maximum(vals, 1e-30)) > limit]
    return flagged, float(math.exp(med)), float(math.exp(limit))
