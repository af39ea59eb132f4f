"""The probe's networks: a seeded MLP for tables, a small seeded CNN for images,
user networks from ``module:factory``, default losses, and coupling detection.

Everything here imports torch; only the probe imports this module.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass
from typing import Any, Callable

import torch
from torch import nn

#: hidden width of the default MLP (two hidden layers)
MLP_WIDTH = 32
#: side of the square images the default CNN sees
IMAGE_SIZE = 32


@dataclass
class ProbeNet:
    """A network with its loss, as the probe runs it.

    ``loss_fn(output, target)`` returns one loss per sample (``reduction='none'``);
    ``coupled`` says that samples of a batch influence each other (BatchNorm in
    train mode, in-batch losses), so failing samples are found by bisection.
    """

    model: nn.Module
    loss_fn: Callable[[Any, Any], Any]
    description: str
    coupled: bool = False
    #: per-sample upper bound of every partial sum in the forward pass (known
    #: architectures only); lets the autocast replay skip samples that cannot overflow
    bound: Callable[[Any], Any] | None = None


def default_mlp(in_features: int, out_features: int, seed: int) -> nn.Module:
    """A seeded, randomly initialised MLP in eval mode: in -> 32 -> 32 -> out, ReLU."""
    gen_state = torch.random.get_rng_state()
    torch.manual_seed(seed)
    try:
        model = nn.Sequential(
            nn.Linear(in_features, MLP_WIDTH), nn.ReLU(),
            nn.Linear(MLP_WIDTH, MLP_WIDTH), nn.ReLU(),
            nn.Linear(MLP_WIDTH, out_features),
        )
    finally:
        torch.random.set_rng_state(gen_state)
    return model.eval()


def linear_relu_bound(model: nn.Module) -> Callable | None:
    """For a Sequential of Linear and ReLU layers: a function giving, per sample, an upper
    bound on |every input, partial sum and output| of the forward pass.

    With B the largest |input|, a Linear layer's partial sums are at most
    r B + beta (r: the largest row sum of |W|, beta: the largest |bias|) and
    ReLU never grows a value, so the bound is a fixed increasing function of
    max|x|: O(n) per batch, no matmul.
    """
    if not isinstance(model, nn.Sequential) or not all(isinstance(m, (nn.Linear, nn.ReLU)) for m in model):
        return None
    layers = [(float(m.weight.detach().abs().sum(dim=1).max()),
               float(m.bias.detach().abs().max()) if m.bias is not None else 0.0)
              for m in model if isinstance(m, nn.Linear)]

    def bound(x):
        b = x.reshape(x.shape[0], -1).float().abs().amax(dim=1).double()
        total = b.clone()
        for r, beta in layers:
            b = b * r + beta
            total = torch.maximum(total, b)
        total[torch.isnan(total)] = float("inf")
        return total

    return bound


def default_cnn(channels: int, num_classes: int, seed: int) -> nn.Module:
    """A seeded small CNN in eval mode: two strided 3x3 convs, global average pool, linear."""
    gen_state = torch.random.get_rng_state()
    torch.manual_seed(seed)
    try:
        model = nn.Sequential(
            nn.Conv2d(channels, 8, 3, stride=2, padding=1), nn.ReLU(),
            nn.Conv2d(8, 16, 3, stride=2, padding=1), nn.ReLU(),
            nn.AdaptiveAvgPool2d(1), nn.Flatten(),
            nn.Linear(16, num_classes),
        )
    finally:
        torch.random.set_rng_state(gen_state)
    return model.eval()


def mse_per_sample(output, target):
    """Squared error per sample (mean over the output's other dimensions)."""
    out = output.float().reshape(output.shape[0], -1)
    tgt = target.float().reshape(target.shape[0], -1)
    return nn.functional.mse_loss(out, tgt.expand_as(out), reduction="none").mean(dim=1)


def cross_entropy_per_sample(output, target):
    """Cross-entropy per sample (class ids as int64)."""
    return nn.functional.cross_entropy(output.float(), target.long(), reduction="none")


def default_loss(task: str) -> Callable:
    """MSE for regression, cross-entropy for classification (both per sample)."""
    return cross_entropy_per_sample if task == "classification" else mse_per_sample


def load_factory(spec: str) -> Callable:
    """Import ``module:factory`` (raises UsageError when it cannot be found)."""
    from datasan.errors import UsageError

    mod_name, _, attr = spec.partition(":")
    if not mod_name or not attr:
        raise UsageError(f"--probe-model must be module:factory, not {spec!r}")
    try:
        mod = importlib.import_module(mod_name)
    except Exception as exc:  # the user's module failed to import
        raise UsageError(f"--probe-model {spec}: cannot import {mod_name}: {type(exc).__name__}: {exc}") from exc
    obj = mod
    for part in attr.split("."):
        obj = getattr(obj, part, None)
        if obj is None:
            raise UsageError(f"--probe-model {spec}: {mod_name} has no attribute {attr}")
    if not callable(obj):
        raise UsageError(f"--probe-model {spec}: {attr} is not callable")
    return obj


def from_factory(spec: str, *, input_shape: tuple, num_outputs: int, task: str, seed: int) -> ProbeNet:
    """Call the user's factory with keyword arguments ``input_shape`` (one sample's shape),
    ``num_outputs`` and ``task``; it returns a module, or ``(module, loss_fn)``."""
    factory = load_factory(spec)
    torch.manual_seed(seed)
    made = factory(input_shape=tuple(input_shape), num_outputs=int(num_outputs), task=task)
    loss_fn = None
    if isinstance(made, tuple):
        made, loss_fn = made
    return wrap_user(made, loss_fn, task, f"user model {spec}")


def wrap_user(model, loss_fn, task: str, description: str, coupled: bool | None = None) -> ProbeNet:
    """A user's model and loss as a :class:`ProbeNet` (coupling detected when not given)."""
    if not isinstance(model, nn.Module):
        raise TypeError(f"the probe model must be a torch.nn.Module, not {type(model).__name__}")
    loss = loss_fn or default_loss(task)
    return ProbeNet(model, loss, description, coupled=has_batchnorm_in_train(model) if coupled is None else coupled)


def has_batchnorm_in_train(model: nn.Module) -> bool:
    """True when a BatchNorm (or other batch-statistics norm) layer is in train mode."""
    from torch.nn.modules.batchnorm import _BatchNorm

    return any(isinstance(m, _BatchNorm) and m.training for m in model.modules())


def describe(model: nn.Module) -> str:
    """A one-line description of a Sequential model (layer names)."""
    if isinstance(model, nn.Sequential):
        return " -> ".join(type(m).__name__ for m in model)
    return type(model).__name__
