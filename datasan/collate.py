"""safe_collate: a DataLoader ``collate_fn`` that drops the samples SafeDataset skipped."""

from __future__ import annotations


class BadSample:
    """The marker :class:`~datasan.SafeDataset` returns for a skipped sample (``on_error="skip"``).

    It is a plain picklable object, so it crosses DataLoader worker processes;
    :func:`safe_collate` drops it from the batch.
    """

    __slots__ = ("index", "sample", "reason")

    def __init__(self, index, sample=None, reason: str = "") -> None:
        self.index = index
        self.sample = sample
        self.reason = reason

    def __getstate__(self):
        return (self.index, self.sample, self.reason)

    def __setstate__(self, state) -> None:
        self.index, self.sample, self.reason = state

    def __repr__(self) -> str:
        return f"BadSample(index={self.index!r}, sample={self.sample!r}, reason={self.reason!r})"


def safe_collate(batch):
    """Collate ``batch`` with torch's ``default_collate`` after dropping :class:`BadSample` markers.

    Batches may come out smaller than ``batch_size``; a batch in which every
    sample was bad collates to None (skip it in the training loop:
    ``if batch is None: continue``).
    """
    from torch.utils.data import default_collate

    kept = [b for b in batch if not isinstance(b, BadSample)]
    if not kept:
        return None
    return default_collate(kept)
