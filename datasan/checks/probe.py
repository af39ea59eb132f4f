"""The probe's rules (DS4xx): samples whose loss or gradient is non-finite under a small network.

The stages that decide which samples fail live in :mod:`datasan.probe.stages`;
the functions here turn what they found into findings.
"""

from __future__ import annotations

from dataclasses import dataclass

from datasan.checks.rule import Rule
from datasan.findings import Finding


# ------------------------------------------------------------------ rules of this family
NON_FINITE_LOSS = Rule(
    "DS401", "non-finite-loss", "error",
    "A sample makes the probe network's output or loss non-finite in float32.",
    what="Every kept sample goes through a small seeded network (an MLP over the raw "
    "numeric features, a small CNN over images scaled to 0..1) in eval mode; a sample "
    "whose per-sample loss (reduction='none') or output is NaN/Inf is reported, saying "
    "whether the input, an activation (naming the layer) or the loss went non-finite first.",
    why="One such sample in a batch turns the batch's mean loss into NaN/Inf, the "
    "optimizer step writes NaN into every weight and the run is lost; the usual hunt is "
    "batch_size=1 over the whole dataset.",
    fix="Look at the named row: usually a finite but huge value (1e38) whose square "
    "overflows, or a target far out of range. Fix, rescale or drop it.",
    example="row 17: f3 = 1e38 -> squared error inf",
)
NON_FINITE_GRADIENT = Rule(
    "DS402", "non-finite-gradient", "error",
    "A sample's loss is finite but its gradient is NaN/Inf (float32).",
    what="Per-sample gradients of the loss with respect to the probe network's "
    "parameters (torch.func vmap + grad, only over batches whose summed gradient is "
    "non-finite) that contain NaN or Inf while the loss itself is finite.",
    why="The backward pass writes NaN into the weights even though the logged loss "
    "looks normal, so the failure shows up steps later, far from its cause.",
    fix="Look at the sample's values and at the loss (sqrt or log of zero, division "
    "by a tiny norm); clip or drop the sample.",
    example="RMSE loss on a row whose prediction equals its target: d sqrt(0) = inf",
)
FLOAT16_NON_FINITE = Rule(
    "DS403", "float16-non-finite", "warning",
    "A sample is finite in float32 but its loss goes non-finite under float16 autocast.",
    what="The forward pass replayed under torch.autocast(dtype=float16) (mixed "
    "precision, AMP) for samples that were finite in float32.",
    why="float16 overflows above 65504: training with AMP in float16 hits Inf/NaN on "
    "this sample (GradScaler then skips steps, or the loss is NaN).",
    fix="Standardize the inputs (stats.json has mean/std), train in bfloat16 or "
    "float32, or drop the sample.",
    example="f0 = 70000 -> inf after the first Linear in float16",
)
BFLOAT16_NON_FINITE = Rule(
    "DS404", "bfloat16-non-finite", "warning",
    "A sample is finite in float32 but its loss goes non-finite under bfloat16 autocast.",
    what="The forward pass replayed under torch.autocast(dtype=bfloat16) for samples "
    "that were finite in float32.",
    why="bfloat16 has float32's range but rounds values near its top (above ~3.39e38) "
    "to Inf, and its 8-bit mantissa loses the cancellations that kept float32 finite.",
    fix="Rescale the values; keep the layers concerned in float32.",
    example="a value of 3.395e38 becomes inf in bfloat16",
)
EXTREME_LOSS = Rule(
    "DS405", "extreme-loss", "warning",
    "A sample's loss is finite but an extreme outlier among the per-sample losses.",
    what="Per-sample float32 losses whose log is more than k robust standard deviations "
    "(1.4826 MAD, k = 10 by default) above the median log-loss of their source.",
    why="A sample with a loss millions of times the typical one dominates the gradient "
    "of its batch: the step is as large as if it were the whole dataset.",
    fix="Check the sample's target and features for unit errors or sentinels; clip the "
    "loss or drop the sample.",
    example="regression target 1e9 among targets of order 1",
)
PROBE_SKIPPED = Rule(
    "DS406", "probe-skipped", "info",
    "The probe could not run on a source, and says why.",
    what="A source the probe skipped: a table without numeric features or target, "
    "images without labels, a failing user model, or no kept samples.",
    why="Samples that were not probed may still break training under a network.",
    fix="Pass --target, label the images, or bring your own model with --probe-model.",
    example="tables/ids.csv: no numeric feature columns",
)
SUSPECT_LABEL = Rule(
    "DS407", "suspect-label", "warning",
    "A classification sample's given label is confidently contradicted by out-of-fold predictions.",
    what="The probe trains its seeded network K-fold (3 folds) on a sample of the source "
    "(standardized features for tables, 32x32 images), so every sample gets class "
    "probabilities from a network that never saw it (averaged with leave-one-out kNN votes "
    "when the sample is small enough: on the inputs, and for images on colour/texture "
    "statistics). Confident learning (Northcutt et al., JAIR 2021) then flags the samples "
    "whose probability for another class reaches that class's threshold (its mean "
    "self-confidence) and beats every other class doing so: the off-diagonal of the "
    "confident joint; and the samples whose given label's probability is under a quarter "
    "of that label's threshold while another class is more probable.",
    why="A flipped label (a 7 filed as 1) is finite, in range and passes every static "
    "check, yet it trains the network towards the wrong answer and, in a test split, "
    "makes a right prediction count as an error.",
    fix="Look at the sample and its likely label; relabel it, or drop it if it fits no "
    "class. label_quality.parquet ranks every sample (low label_quality first).",
    example="digits/1/0413.png: labelled '1', the out-of-fold probe predicts '7' (p=0.97)",
)


#: the codes whose finding names the flagged row's largest input value: the input may be the cause
NAMES_LARGEST_INPUT = frozenset({NON_FINITE_LOSS.code, FLOAT16_NON_FINITE.code, BFLOAT16_NON_FINITE.code})


@dataclass(frozen=True)
class ProbedSample:
    """Where a probed sample comes from: its id, the file it was read from and its 0-based
    row there (None when the file is the sample, an image)."""

    sample: str
    source: str
    row: int | None = None

    @property
    def where(self) -> str:
        """How a message names the sample."""
        return f"{self.source} row {self.row}" if self.row is not None else self.sample


def flagged(code: str, at: ProbedSample, detail: str, largest: tuple[str, float] | None = None) -> Finding:
    """The finding for a sample a probe stage flagged (DS401-DS404) with ``detail``;
    ``largest`` is its largest input feature (name, value) when inputs are named."""
    extra = f"; its largest feature is {largest[0]} = {largest[1]:.6g}" if largest is not None else ""
    column = largest[0] if largest is not None and code in NAMES_LARGEST_INPUT else None
    return Finding(code, f"{at.where}: {detail}{extra}.", sample=at.sample, source=at.source, row=at.row,
                   column=column)


def extreme_loss(at: ProbedSample, loss: float, median: float, limit: float) -> Finding:
    """DS405 for a sample whose finite float32 loss lies past the outlier limit."""
    return Finding(EXTREME_LOSS.code, f"{at.where}: the float32 loss {loss:.4g} is an extreme outlier "
                                      f"(median loss {median:.4g}, limit {limit:.4g}).",
                   sample=at.sample, source=at.source, row=at.row)


def probe_skipped(source: str, reason: str) -> Finding:
    """DS406: the probe did not run on ``source``, for ``reason``."""
    return Finding(PROBE_SKIPPED.code, f"The probe skipped {source}: {reason}.", source=source)


def suspect_label(at: ProbedSample, given: str, likely: str, p_likely: float, quality: float) -> Finding:
    """DS407: ``at`` is labelled ``given`` but out-of-fold predictions say ``likely``."""
    return Finding(SUSPECT_LABEL.code, f"{at.where}: labelled {given!r}, but the out-of-fold probe predicts "
                                       f"{likely!r} (p={p_likely:.3f}; label quality {quality:.3f}).",
                   sample=at.sample, source=at.source, row=at.row)

