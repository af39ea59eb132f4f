"""Near-duplicate pairs by a band join over 64-bit perceptual hashes.

Two hashes within ``d`` bits of each other agree exactly on at least one of
``d + 1`` disjoint bands of their bits (pigeonhole), so the candidates are the
pairs that share a band value: one sort per band, never all n^2 pairs.  Each
candidate is confirmed on both hashes (pHash and dHash within ``d`` bits).

The shards return only the hashes (8 + 8 bytes an image); the join runs once
per dataset in the main process over numpy arrays, so the result does not
depend on how the images were split into shards.  Memory stays O(n): the
candidates of one band and one offset at a time are confirmed and folded into
per-image answers (the earliest partner), never stored as a pair list.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass
class Partners:
    """Per image (by position), the earliest partner of each kind, or -1.

    ``near``: a near (not pixel-identical) duplicate in the same split with the
    same label or no label; ``conflict``: one with a different label, same split;
    ``leak``: any near or identical duplicate in another split.  A pair is
    reported once, on its later image (``leak``: on the image that is not in the
    train split, when one of the two is).
    """

    near: "object"
    conflict: "object"
    leak: "object"


def band_edges(bits: int) -> list[tuple[int, int]]:
    """(shift, width) of the ``bits + 1`` bands that cover 64 bits."""
    bands = bits + 1
    widths = [64 // bands + (1 if k < 64 % bands else 0) for k in range(bands)]
    edges, shift = [], 0
    for w in widths:
        edges.append((shift, w))
        shift += w
    return edges


def near_partners(phash, dhash, exact, split, label, bits: int, train: int = -2) -> Partners:
    """The :class:`Partners` of every image.

    ``phash`` / ``dhash``: uint64 arrays; ``exact``: int64 ids, equal for
    pixel-identical images; ``split`` / ``label``: int64 codes (-1: none);
    ``train``: the code of the train split. ``bits``: the largest Hamming
    distance on each hash (0..31) that still counts as a near duplicate.
    """
    import numpy as np

    n = len(phash)
    out = Partners(np.full(n, -1, np.int64), np.full(n, -1, np.int64), np.full(n, -1, np.int64))
    if n < 2:
        return out
    big = np.iinfo(np.int64).max
    best = {k: np.full(n, big, np.int64) for k in ("near", "conflict", "leak")}
    for shift, width in band_edges(bits):
        key = (phash >> np.uint64(shift)) & np.uint64((1 << width) - 1)
        order = np.argsort(key, kind="stable")
        k = key[order]
        same = k[1:] == k[:-1]
        if not same.any():
            continue
        # run id of each sorted position; a pair (p, p + o) shares the band while run ids match
        run = np.concatenate(([0], np.cumsum(~same)))
        o = 1
        while True:
            ok = run[o:] == run[:-o]
            if not ok.any():
                break
            a, b = order[:-o][ok], order[o:][ok]
            _fold(np.minimum(a, b), np.maximum(a, b), phash, dhash, exact, split, label, bits, train, best)
            o += 1
    for kind, arr in best.items():
        getattr(out, kind)[arr != big] = arr[arr != big]
    return out


def _fold(i, j, phash, dhash, exact, split, label, bits, train, best) -> None:
    import numpy as np

    close = (np.bitwise_count(phash[i] ^ phash[j]) <= bits) & (np.bitwise_count(dhash[i] ^ dhash[j]) <= bits)
    identical = exact[i] == exact[j]
    hit = close | identical
    i, j, identical = i[hit], j[hit], identical[hit]
    if not len(i):
        return
    si, sj = split[i], split[j]
    across = (si != sj) & (si >= 0) & (sj >= 0)
    # leakage is told on the evaluation side of the pair
    victim = np.where(across & (si != train) & (sj == train), i, j)
    other = np.where(victim == i, j, i)
    np.minimum.at(best["leak"], victim[across], other[across])
    within = ~across & ~identical
    li, lj = label[i], label[j]
    differ = within & (li != lj) & (li >= 0) & (lj >= 0)
    np.minimum.at(best["conflict"], j[differ], i[differ])
    np.minimum.at(best["near"], j[within & ~differ], i[within & ~differ])
