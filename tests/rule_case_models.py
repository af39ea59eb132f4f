"""Probe models for the rule cases of DS402 and DS404 (``--probe-model module:factory``):
the default network cannot make a gradient-only or a bfloat16-only failure on purpose."""

from __future__ import annotations


def zero_linear_sqrt_loss(input_shape, num_outputs, task):
    """A zero linear model with loss sqrt(|error|): finite, but its gradient is not where
    the error is 0."""
    import torch

    model = torch.nn.Linear(input_shape[0], 1)
    with torch.no_grad():
        model.weight.zero_()
        model.bias.zero_()
    return model, lambda out, y: (out.squeeze(1) - y).abs().sqrt()


def tiny_linear_l1_loss(input_shape, num_outputs, task):
    """A linear model with weight 1e-38 and L1 loss: an input of 3.4e38 stays finite in
    float32 but rounds to inf in bfloat16."""
    import torch

    model = torch.nn.Linear(input_shape[0], 1)
    with torch.no_grad():
        model.weight.fill_(1e-38)
        model.bias.zero_()
    return model, lambda out, y: (out.squeeze(1) - y).abs()
