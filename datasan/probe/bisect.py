"""Bisection: find the samples of a failing batch when the model couples samples.

With BatchNorm in train mode (or an in-batch loss) one bad sample makes the
whole batch non-finite, so per-sample losses cannot say which sample it was.
Splitting the failing batch in halves and recursing into the halves that still
fail finds ``k`` bad samples among ``n`` in about ``2 k log2(n)`` evaluations,
instead of ``n`` runs of batch_size=1 (which BatchNorm in train mode refuses).
"""

from __future__ import annotations

from typing import Callable, Sequence


def find_failing(indices: Sequence[int], fails: Callable[[list[int]], bool],
                 known_failing: bool = False) -> tuple[list[int], list[list[int]]]:
    """Indices whose presence makes ``fails`` true, by recursive halving.

    ``fails(subset)`` evaluates a subset (callers pad a single sample with a
    known-good reference when the model needs two).  Returns ``(bad, groups)``:
    ``bad`` are the samples that fail on their own (or in a failing group),
    ``groups`` the groups that fail together while each half passes (their
    members are in ``bad`` too: they cannot be told apart).
    """
    bad: list[int] = []
    groups: list[list[int]] = []
    stack: list[tuple[list[int], bool]] = [(list(indices), known_failing)]
    while stack:
        idx, known = stack.pop()
        if not idx:
            continue
        if not known and not fails(idx):
            continue
        if len(idx) == 1:
            bad.append(idx[0])
            continue
        mid = len(idx) // 2
        left, right = idx[:mid], idx[mid:]
        left_fails = fails(left)
        right_fails = fails(right)
        if not left_fails and not right_fails:
            # fails only as a whole: an interaction, report the group
            groups.append(idx)
            bad.extend(idx)
            continue
        # right first onto the stack so that the left half is examined first
        if right_fails:
            stack.append((right, True))
        if left_fails:
            stack.append((left, True))
    return sorted(bad), groups
