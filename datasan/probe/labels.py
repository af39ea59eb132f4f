"""Mislabeled samples without a model from the user: out-of-fold probabilities and confident learning.

The probe's pass over a classification source also draws a bounded sample of
its rows (:class:`LabelSample`).  K seeded networks are trained on it, fold by
fold (:func:`out_of_fold`), so every sampled row gets predicted probabilities
from a network that never saw it, averaged with nearest-neighbour votes where
they fit (``label_votes``).  Confident learning (Northcutt, Jiang and Chuang,
"Confident Learning: Estimating Uncertainty in Dataset Labels", JAIR 70, 2021)
then flags the rows whose given label is confidently contradicted, and the rows
whose given label's probability is far under its class's usual one
(:func:`confident_learning`).  Rows beyond the sample (sources larger than it)
are predicted in one more streaming pass by their fold's network, which did
not see them, against the thresholds learnt on the sample.

Everything here imports torch and numpy; only the probe imports this module.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, field
from typing import Any, Iterable

import numpy as np

from datasan.probe.label_votes import neighbour_votes

#: folds of the cross-validated training
FOLDS = 3
#: at most this many samples are drawn for training (and this many bytes of inputs)
SAMPLE_ROWS = 50_000
SAMPLE_BYTES = 256 * 1024 * 1024
#: below this many usable samples the estimate is too noisy to flag anything
MIN_SAMPLES = 40
#: the training schedule: at least MIN_EPOCHS and MIN_STEPS optimizer steps per fold, at most MAX_EPOCHS
MIN_EPOCHS, MAX_EPOCHS, MIN_STEPS = 3, 60, 300
LEARNING_RATE = 3e-3
#: how many binomial standard errors above the majority class the out-of-fold accuracy must be
CHANCE_Z = 3.0
#: standardized table features are clipped here: one huge value must not own the network
Z_CLIP = 10.0
#: a sample is also suspect when the out-of-fold probability of its given label is under this
#: share of its class's threshold and another class is more probable: the paper's ranking by
#: self-confidence, cut relative to the class's own confidence (measured in docs/probe.md)
SELF_CONFIDENCE_CUT = 0.25
#: a table row with a feature this many standard deviations out is not scored: a sparse
#: column's rare values reach sqrt(samples) (224 at 50,000), a unit error or sentinel far more
OUTLIER_Z = 1000.0


def _mix(keys: np.ndarray, seed: int, salt: int) -> np.ndarray:
    """splitmix64 of (key, seed, salt): a per-sample pseudo-random uint64 that does not depend on
    the order the samples arrive in, so the sample and the folds are the same for any batching."""
    z = keys.astype(np.uint64) + np.uint64((seed * 0x9E3779B97F4A7C15 + salt * 0xBF58476D1CE4E5B9) % 2**64)
    with np.errstate(over="ignore"):
        z = (z ^ (z >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
        z = (z ^ (z >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
    return z ^ (z >> np.uint64(31))


def fold_of(keys: np.ndarray, seed: int, folds: int = FOLDS) -> np.ndarray:
    """The fold (0..folds-1) of each sample key."""
    return (_mix(np.asarray(keys, dtype=np.int64), seed, 2) % np.uint64(folds)).astype(np.int64)


@dataclass
class LabelSample:
    """A bounded, order-independent sample of (input, class id, key): the ``cap`` keys with
    the smallest seeded hash are kept (priority sampling), whatever the batches' order."""

    cap: int
    seed: int
    _x: list = field(default_factory=list)
    _y: list = field(default_factory=list)
    _k: list = field(default_factory=list)
    _p: list = field(default_factory=list)
    _held: int = 0
    _limit: Any = None  # the largest priority kept once the sample is full
    #: samples offered (usable ones), kept or not
    seen: int = 0

    @classmethod
    def for_inputs(cls, input_shape: tuple, seed: int, images: bool) -> "LabelSample":
        """A sample sized for inputs of ``input_shape`` (images are held as float16)."""
        per = int(np.prod(input_shape)) * (2 if images else 4)
        return cls(cap=max(MIN_SAMPLES, min(SAMPLE_ROWS, SAMPLE_BYTES // max(1, per))), seed=seed)

    def add(self, x: np.ndarray, y: np.ndarray, keys: np.ndarray, skip: Iterable[int] = ()) -> None:
        """Offer a batch; rows with a non-finite input or whose key is in ``skip`` are not usable."""
        keys = np.asarray(keys, dtype=np.int64)
        ok = np.isfinite(x.reshape(len(keys), -1)).all(axis=1)
        skip = np.asarray(list(skip), dtype=np.int64)
        if skip.size:
            ok &= ~np.isin(keys, skip)
        self.seen += int(ok.sum())
        pri = _mix(keys, self.seed, 1)
        if self._limit is not None:
            ok &= pri < self._limit
        if not ok.any():
            return
        store = np.float16 if x.ndim > 2 else np.float32
        self._x.append(np.asarray(x[ok], dtype=store))
        self._y.append(np.asarray(y[ok], dtype=np.int64))
        self._k.append(keys[ok])
        self._p.append(pri[ok])
        self._held += int(ok.sum())
        if self._held > 2 * self.cap:
            self._compact()

    def _compact(self) -> None:
        x, y, k, p = (np.concatenate(v) for v in (self._x, self._y, self._k, self._p))
        if len(p) > self.cap:
            keep = np.argpartition(p, self.cap - 1)[:self.cap]
            x, y, k, p = x[keep], y[keep], k[keep], p[keep]
            self._limit = p.max()
        self._x, self._y, self._k, self._p = [x], [y], [k], [p]
        self._held = len(p)

    def arrays(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(x as float32, class ids, keys) of the sample, in key order."""
        if not self._k:
            return np.zeros((0,)), np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.int64)
        self._compact()
        order = np.argsort(self._k[0], kind="stable")
        return self._x[0][order].astype(np.float32), self._y[0][order], self._k[0][order]

    @property
    def complete(self) -> bool:
        """True when every usable sample offered is in the sample."""
        return self._limit is None


# ------------------------------------------------------------------ standardization (tables)
@dataclass
class Standardizer:
    """z-scores of table features, clipped to +-Z_CLIP, from the mean and std of the sample
    with each column clipped to Tukey's far fences (quartiles -+ 3 IQR): a few huge finite
    values (the probe's DS403/DS405 warnings) cannot squash a column, and a normal column
    (fences at about 4.7 std) keeps its usual scale. A column whose IQR is 0 (mostly one
    value, e.g. a sparse pixel) is not clipped: its fences would erase it."""

    mean: np.ndarray
    std: np.ndarray

    @classmethod
    def fit(cls, x: np.ndarray) -> "Standardizer":
        xd = x.astype(np.float64)
        q1, q3 = np.percentile(xd, [25, 75], axis=0)
        iqr = q3 - q1
        lo = np.where(iqr > 0, q1 - 3 * iqr, -np.inf)
        hi = np.where(iqr > 0, q3 + 3 * iqr, np.inf)
        xw = np.clip(xd, lo, hi)
        std = xw.std(axis=0)
        return cls(xw.mean(axis=0), np.where(std > 0, std, 1.0))

    def judgeable(self, x: np.ndarray) -> np.ndarray:
        """Rows with no feature more than OUTLIER_Z standard deviations out."""
        with np.errstate(over="ignore", invalid="ignore"):
            z = np.abs((x.astype(np.float32, copy=False) - self.mean.astype(np.float32))
                       / self.std.astype(np.float32))
        return ~(z > OUTLIER_Z).any(axis=1)

    def __call__(self, x: np.ndarray) -> np.ndarray:
        with np.errstate(over="ignore", invalid="ignore"):
            z = (x.astype(np.float32, copy=False) - self.mean.astype(np.float32)) / self.std.astype(np.float32)
        np.nan_to_num(z, copy=False, nan=0.0)
        return np.clip(z, -Z_CLIP, Z_CLIP, out=z)


def identity(x: np.ndarray) -> np.ndarray:
    """Images go in as the probe scales them (0..1)."""
    return x.astype(np.float32, copy=False)


# ------------------------------------------------------------------ networks
def label_network(input_shape: tuple, num_classes: int, seed: int):
    """The seeded network trained per fold: the probe's MLP shape for tables; for images a
    small CNN that keeps the layout (two strided convs, then a linear layer on the 8x8 map)."""
    import torch
    from torch import nn

    from datasan.probe.models import default_mlp

    if len(input_shape) == 1:
        return default_mlp(input_shape[0], num_classes, seed).train()
    state = torch.random.get_rng_state()
    torch.manual_seed(seed)
    try:
        side = input_shape[1] // 4
        model = nn.Sequential(
            nn.Conv2d(input_shape[0], 16, 3, stride=2, padding=1), nn.ReLU(),
            nn.Conv2d(16, 32, 3, stride=2, padding=1), nn.ReLU(),
            nn.Flatten(), nn.Linear(32 * side * ((input_shape[2] + 3) // 4), num_classes))
    finally:
        torch.random.set_rng_state(state)
    return model.train()


def schedule(n_train: int) -> tuple[int, int]:
    """(batch size, epochs) for ``n_train`` samples: small sets get more epochs, big ones bigger batches."""
    batch = int(min(1024, max(32, n_train // 64)))
    steps = max(1, math.ceil(n_train / batch))
    epochs = int(min(MAX_EPOCHS, max(MIN_EPOCHS, math.ceil(MIN_STEPS / steps))))
    return batch, epochs


def train(x: np.ndarray, y: np.ndarray, num_classes: int, seed: int, device: str = "cpu"):
    """A seeded network trained on (x, y) with Adam and cross-entropy; returned in eval mode."""
    import torch
    # the functional form of torch.optim.Adam: constructing the class imports torch._dynamo,
    # 1-2 s per process, more than training the folds of a small source takes
    from torch.optim.adam import adam

    model = label_network(tuple(x.shape[1:]), num_classes, seed).to(device)
    params = list(model.parameters())
    avg, avg_sq = [torch.zeros_like(p) for p in params], [torch.zeros_like(p) for p in params]
    steps = [torch.tensor(0.0) for _ in params]
    gen = torch.Generator().manual_seed(seed)
    xt, yt = torch.from_numpy(x), torch.from_numpy(y)
    batch, epochs = schedule(len(y))
    for _ in range(epochs):
        perm = torch.randperm(len(y), generator=gen)
        for s in range(0, len(y), batch):
            idx = perm[s:s + batch]
            model.zero_grad(set_to_none=False)
            loss = torch.nn.functional.cross_entropy(model(xt[idx].to(device)), yt[idx].to(device))
            loss.backward()
            with torch.no_grad():
                adam(params, [p.grad for p in params], avg, avg_sq, [], steps, foreach=False, amsgrad=False,
                     beta1=0.9, beta2=0.999, lr=LEARNING_RATE, weight_decay=1e-4, eps=1e-8, maximize=False)
    return model.eval()


def predict(models: list, x: np.ndarray, device: str = "cpu", chunk: int = 8192) -> np.ndarray:
    """Mean softmax probabilities of ``models`` over ``x`` (float64, rows x classes)."""
    import torch

    out = []
    with torch.no_grad():
        for s in range(0, len(x), chunk):
            xb = torch.from_numpy(x[s:s + chunk]).to(device)
            p = sum(torch.softmax(m(xb).double(), dim=1) for m in models) / len(models)
            out.append(p.cpu().numpy())
    return np.concatenate(out) if out else np.zeros((0, 0))


def out_of_fold(x: np.ndarray, y: np.ndarray, keys: np.ndarray, num_classes: int, seed: int,
                folds: int | None = None, device: str = "cpu") -> tuple[np.ndarray, list]:
    """Out-of-fold probabilities of every sample, and the ``folds`` trained networks."""
    folds = folds or FOLDS
    fold = fold_of(keys, seed, folds)
    probs = np.zeros((len(y), num_classes), dtype=np.float64)
    models = []
    for k in range(folds):
        held = fold == k
        model = train(x[~held], y[~held], num_classes, seed + k, device)
        models.append(model)
        if held.any():
            probs[held] = predict([model], x[held], device)
    return probs, models


# ------------------------------------------------------------------ confident learning
@dataclass
class Thresholds:
    """Per-class thresholds t_j: the mean predicted probability of class j over the samples
    labelled j (its mean self-confidence); NaN for a class no sample is labelled with."""

    t: np.ndarray

    @classmethod
    def fit(cls, probs: np.ndarray, given: np.ndarray) -> "Thresholds":
        c = probs.shape[1]
        sums = np.bincount(given, weights=probs[np.arange(len(given)), given], minlength=c)
        counts = np.bincount(given, minlength=c)
        with np.errstate(invalid="ignore", divide="ignore"):
            return cls(np.where(counts > 0, sums / np.maximum(counts, 1), np.nan))


@dataclass
class Verdicts:
    """Confident learning's verdict on a batch of samples."""

    likely: np.ndarray  #: the label the probabilities point to (CL's column, else the argmax)
    quality: np.ndarray  #: label quality: the predicted probability of the given label
    p_likely: np.ndarray  #: the predicted probability of the likely label
    counted: np.ndarray  #: True where the sample enters the confident joint (some p_j >= t_j)
    #: True off the joint's diagonal, or where the given label's probability is far under its threshold
    suspect: np.ndarray


def judge(probs: np.ndarray, given: np.ndarray, th: Thresholds) -> Verdicts:
    """Each sample's cell of the confident joint: among the classes whose probability reaches
    their threshold, the most probable. A sample is suspect when that class is not its label,
    or when its label's probability is under SELF_CONFIDENCE_CUT of the label's threshold
    while another class is more probable (:func:`low_self_confidence`)."""
    t = np.where(np.isnan(th.t), np.inf, th.t)
    above = probs >= t[None, :]
    counted = above.any(axis=1)
    masked = np.where(above, probs, -1.0)
    likely = np.where(counted, masked.argmax(axis=1), probs.argmax(axis=1)).astype(np.int64)
    quality = probs[np.arange(len(given)), given]
    p_likely = probs[np.arange(len(given)), likely]
    suspect = (counted & (likely != given)) | low_self_confidence(probs, given, th)
    return Verdicts(likely, quality, p_likely, counted, suspect)


def low_self_confidence(probs: np.ndarray, given: np.ndarray, th: Thresholds) -> np.ndarray:
    """True where the given label's probability is under SELF_CONFIDENCE_CUT of its class's
    threshold and another class is more probable.

    The confident joint alone misses flips whose true class stays just under that class's
    threshold (averaged probabilities are rarely near 1), although their given label's
    probability is far below anything its class usually gets. A class without a threshold
    (no sampled sample carries it) is not judged this way."""
    t = np.nan_to_num(th.t, nan=0.0)
    quality = probs[np.arange(len(given)), given]
    return (quality < SELF_CONFIDENCE_CUT * t[given]) & (probs.argmax(axis=1) != given)


@dataclass
class Joint:
    """The confident joint C[given, likely] (counts), accumulated over batches."""

    c: np.ndarray

    @classmethod
    def empty(cls, num_classes: int) -> "Joint":
        return cls(np.zeros((num_classes, num_classes), dtype=np.int64))

    def add(self, given: np.ndarray, v: Verdicts) -> None:
        np.add.at(self.c, (given[v.counted], v.likely[v.counted]), 1)

    def noise_rates(self, given_counts: np.ndarray) -> np.ndarray:
        """Per given class, the estimated share of its samples whose true label is another
        class: the off-diagonal share of its row after calibrating the row to the class's count."""
        rows = self.c.sum(axis=1)
        with np.errstate(invalid="ignore", divide="ignore"):
            return np.where((rows > 0) & (given_counts > 0), 1.0 - np.diag(self.c) / np.maximum(rows, 1), np.nan)


def confident_learning(probs: np.ndarray, given: np.ndarray) -> tuple[Verdicts, Thresholds, Joint]:
    """Confident learning over out-of-sample probabilities ``probs`` (rows x classes) and
    given class ids: the verdicts, the per-class thresholds and the confident joint."""
    th = Thresholds.fit(probs, given)
    v = judge(probs, given, th)
    joint = Joint.empty(probs.shape[1])
    joint.add(given, v)
    return v, th, joint


def chance_floor(y: np.ndarray) -> float:
    """The out-of-fold accuracy a source must beat before its labels are judged: the most
    common class's share plus CHANCE_Z binomial standard errors.  Labels the features do not
    predict (random labels) would otherwise make confident learning flag most samples."""
    share = float(np.bincount(y).max()) / len(y)
    return share + CHANCE_Z * math.sqrt(share * (1 - share) / len(y))


# ------------------------------------------------------------------ one source
@dataclass
class LabelScores:
    """The label verdict on every sample of a source the estimate covered (key order)."""

    keys: np.ndarray
    given: np.ndarray
    likely: np.ndarray
    quality: np.ndarray
    p_likely: np.ndarray
    suspect: np.ndarray
    joint: Joint
    thresholds: Thresholds
    report: dict[str, Any]


def estimate(sample: LabelSample, num_classes: int, seed: int, images: bool, rest=None,
             device: str = "cpu") -> LabelScores | str:
    """Score the labels of a source from its sample; ``rest()`` yields (x, y, keys) batches
    of the whole source when the sample does not hold every sample. A string says why not."""
    import torch

    threads = torch.get_num_threads()
    # the networks are tiny: more threads only add synchronisation (10x slower on a busy machine)
    torch.set_num_threads(1)
    try:
        return _estimate(sample, num_classes, seed, images, rest, device)
    finally:
        torch.set_num_threads(threads)


def _estimate(sample: LabelSample, num_classes: int, seed: int, images: bool, rest, device: str
              ) -> LabelScores | str:
    x, y, keys = sample.arrays()
    if len(y) < MIN_SAMPLES:
        return f"only {len(y)} usable samples (at least {MIN_SAMPLES} are needed)"
    prep = identity if images else Standardizer.fit(x)
    if not images:
        # an extreme outlier (the probe's DS403/DS405 warn about it) lies near no class,
        # so its label cannot be judged from its features
        inside = prep.judgeable(x)
        x, y, keys = x[inside], y[inside], keys[inside]
    xs = prep(x)
    if len(y) < MIN_SAMPLES:
        return f"only {len(y)} samples inside the features' usual range (at least {MIN_SAMPLES} are needed)"
    if len(np.unique(y)) < 2:
        return "the samples carry a single class"
    t0 = time.perf_counter()
    probs, models = out_of_fold(xs, y, keys, num_classes, seed, FOLDS, device)
    t_train = time.perf_counter() - t0
    votes, vote_names = neighbour_votes(xs, y, num_classes, images)
    probs = sum(votes, probs) / (1 + len(votes))
    acc, floor = float((probs.argmax(axis=1) == y).mean()), chance_floor(y)
    if acc <= floor:
        return (f"the out-of-fold predictions ({acc:.1%} right) do not beat guessing the most common class "
                f"by a clear margin (needed: above {floor:.1%}), so the features cannot judge the labels")
    v, th, joint = confident_learning(probs, y)
    parts = [(keys, y, v)]
    t1 = time.perf_counter()
    if not sample.complete and rest is not None:
        in_sample = keys
        for bx, by, bk in rest():
            bk = np.asarray(bk, dtype=np.int64)
            out = ~np.isin(bk, in_sample) & np.isfinite(bx.reshape(len(bk), -1)).all(axis=1)
            if not out.any():
                continue
            bk, bx, by = bk[out], bx[out], by[out].astype(np.int64)
            if not images:
                inside = prep.judgeable(bx)
                bk, bx, by = bk[inside], bx[inside], by[inside]
            bx = prep(bx)
            probs_rest = np.zeros((len(bk), num_classes))
            fold = fold_of(bk, seed, FOLDS)
            # each row is scored by its fold's network alone: none of them saw it, and one
            # forward per row keeps this pass as cheap as the probe's own
            for k in np.unique(fold):
                sel = fold == k
                probs_rest[sel] = predict([models[k]], bx[sel], device)
            bv = judge(probs_rest, by, th)
            joint.add(by, bv)
            parts.append((bk, by, bv))
    t_rest = time.perf_counter() - t1
    all_keys = np.concatenate([p[0] for p in parts])
    order = np.argsort(all_keys, kind="stable")
    cat = lambda f: np.concatenate([f(p) for p in parts])[order]  # noqa: E731
    batch, epochs = schedule(int(len(y) * (FOLDS - 1) / FOLDS))
    report = {"method": "confident learning (and low self-confidence) over out-of-fold probe probabilities"
              + "".join(f" averaged with {v}" if i == 0 else f" and {v}" for i, v in enumerate(vote_names)),
              "folds": FOLDS,
              "epochs": epochs, "batch_size": batch, "trained_on": int(len(y)),
              "scored": int(len(all_keys)), "train_seconds": round(t_train, 3),
              "score_rest_seconds": round(t_rest, 3)}
    return LabelScores(all_keys[order], cat(lambda p: p[1]), cat(lambda p: p[2].likely),
                       cat(lambda p: p[2].quality), cat(lambda p: p[2].p_likely), cat(lambda p: p[2].suspect),
                       joint, th, report)
