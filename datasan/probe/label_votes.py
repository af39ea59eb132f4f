"""Neighbour votes averaged with the fold networks' out-of-fold probabilities.

A network and a nearest-neighbour vote err on different samples, so averaging
their probabilities keeps the flags both agree on (precision) and calms false
flags on clean data. Two votes, each only where its distance work stays bounded
(samples**2 x feature count <= KNN_WORK):

* the inputs the networks saw (standardized table features; image pixels);
* for images, colour and texture statistics per channel (mean, std, mean absolute
  horizontal and vertical differences, 10/50/90 % quantiles): photos of different
  scenes differ in palette and texture more than pixel by pixel, which a 32x32
  network and a pixel kNN see poorly.

Only the label estimate imports this module (it imports torch and numpy).
"""

from __future__ import annotations

import numpy as np

#: a kNN vote runs when samples**2 x its feature count stays under this (its distance work)
KNN_WORK = 2e10
KNN_K = 10
#: quantiles of each channel's pixels in the colour/texture statistics
QUANTILES = (0.1, 0.5, 0.9)


def knn_probs(x: np.ndarray, y: np.ndarray, num_classes: int, k: int = KNN_K) -> np.ndarray:
    """Leave-one-out kNN vote: each sample's class shares among its ``k`` nearest other samples
    (Euclidean, on the inputs as given), smoothed by one pseudo-count spread over the classes."""
    import torch

    # distance blocks of at most 2**24 entries (64 MiB) whatever the sample's size
    chunk = max(1, min(2048, 2 ** 24 // max(1, len(x))))
    xt = torch.from_numpy(x.reshape(len(x), -1).astype(np.float32))
    k = min(k, len(x) - 1)
    out = np.zeros((len(x), num_classes))
    yt = torch.from_numpy(y)
    for s in range(0, len(x), chunk):
        d = torch.cdist(xt[s:s + chunk], xt)
        d[torch.arange(d.shape[0]), torch.arange(s, s + d.shape[0])] = float("inf")
        nn_idx = d.topk(k, largest=False).indices
        votes = torch.nn.functional.one_hot(yt[nn_idx], num_classes).sum(dim=1).double()
        out[s:s + chunk] = ((votes + 1.0 / num_classes) / (k + 1)).numpy()
    return out


def colour_texture_features(images: np.ndarray) -> np.ndarray:
    """Per-channel statistics of images (n, channels, h, w), z-scored over the sample:
    (n, channels x 7) float32. A constant statistic stays 0."""
    n, c = images.shape[:2]
    x = images.astype(np.float32, copy=False)
    flat = x.reshape(n, c, -1)
    parts = [flat.mean(axis=2), flat.std(axis=2),
             np.abs(np.diff(x, axis=3)).mean(axis=(2, 3)), np.abs(np.diff(x, axis=2)).mean(axis=(2, 3))]
    parts += list(np.quantile(flat, QUANTILES, axis=2))
    f = np.concatenate(parts, axis=1).astype(np.float64)
    std = f.std(axis=0)
    return ((f - f.mean(axis=0)) / np.where(std > 0, std, 1.0)).astype(np.float32)


def fits(n: int, features: int) -> bool:
    """True when a kNN vote over ``n`` samples of ``features`` values is within KNN_WORK."""
    return n ** 2 * features <= KNN_WORK


def neighbour_votes(xs: np.ndarray, y: np.ndarray, num_classes: int, images: bool
                    ) -> tuple[list[np.ndarray], list[str]]:
    """The kNN votes (rows x classes probabilities) over the networks' inputs ``xs`` and, for
    images, over their colour/texture statistics, each where it fits; and their names."""
    votes, names = [], []
    if fits(len(y), int(np.prod(xs.shape[1:]))):
        votes.append(knn_probs(xs, y, num_classes))
        names.append(f"a leave-one-out {KNN_K}-NN vote on the inputs")
    if images and fits(len(y), xs.shape[1] * (4 + len(QUANTILES))):
        votes.append(knn_probs(colour_texture_features(xs), y, num_classes))
        names.append(f"a {KNN_K}-NN vote on colour/texture statistics")
    return votes, names
