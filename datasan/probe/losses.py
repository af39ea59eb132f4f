"""What the probe keeps of its per-sample losses, in memory that does not grow with the data.

:class:`LossSummary` folds each batch's float32 losses into a mergeable
distribution sketch of the finite ones (:class:`~datasan.stats.Moments`: the
same log-scale buckets as the table columns, so it merges exactly), a count of
the samples some stage found non-finite, and the :data:`TOP_K` highest losses
with their keys.  report.json carries it as ``probe.sources.<source>.loss``;
report.html draws it.  Per-sample values go only where an output already has
one row per sample (index.parquet, label_quality.parquet): :func:`loss_column`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable

from datasan.stats import Moments

#: highest-loss samples kept per source
TOP_K = 10


@dataclass
class LossSummary:
    """Sketch and moments of the finite losses, the non-finite count, the top :data:`TOP_K`."""

    moments: Moments = field(default_factory=Moments)
    #: the TOP_K highest finite losses, highest first, and their feed keys (ties: lower key first)
    top_losses: Any = None
    top_keys: Any = None

    def add(self, losses, keys) -> None:
        """Fold one batch in: ``losses`` (float64, NaN where a stage flagged the sample) and
        their feed ``keys`` (ints), in the same order."""
        import numpy as np

        losses = np.asarray(losses, dtype=np.float64)
        keys = np.asarray(keys, dtype=np.int64)
        self.moments.merge(Moments.of(losses))
        finite = np.isfinite(losses)
        vals, ks = losses[finite], keys[finite]
        if self.top_losses is not None:
            vals, ks = np.concatenate([self.top_losses, vals]), np.concatenate([self.top_keys, ks])
        order = np.lexsort((ks, -vals))[:TOP_K]
        self.top_losses, self.top_keys = vals[order], ks[order]

    def as_json(self, name_of: Callable[[int], str]) -> dict[str, Any]:
        """report.json's ``loss`` entry; ``name_of`` turns a feed key into its sample id."""
        out = self.moments.as_json()
        out["non_finite"] = out.pop("nan") + out.pop("posinf") + out.pop("neginf")
        out.pop("nulls")
        top = zip(self.top_keys.tolist(), self.top_losses.tolist()) if self.top_keys is not None else ()
        out["top"] = [{"sample": name_of(k), "loss": v} for k, v in top]
        return out


def loss_column(losses, keys, wanted):
    """The loss of each key in ``wanted`` (float64; NaN where it has none or it is not
    finite), looked up among ``losses`` / ``keys`` (numpy arrays, keys unique)."""
    import numpy as np

    wanted = np.asarray(wanted, dtype=np.int64)
    out = np.full(wanted.shape, np.nan)
    if not len(keys) or not wanted.size:
        return out
    order = np.argsort(keys, kind="stable")
    sorted_keys = keys[order]
    pos = np.clip(np.searchsorted(sorted_keys, wanted), 0, len(sorted_keys) - 1)
    hit = sorted_keys[pos] == wanted
    out[hit] = losses[order[pos[hit]]]
    return out


def with_loss_column(index, losses, keys):
    """``index`` (file samples; feed keys are its row positions) with ``probe_loss`` (float64,
    null where the sample was not probed or a stage found it non-finite)."""
    import numpy as np
    import pyarrow as pa

    values = loss_column(losses, keys, np.arange(index.num_rows))
    col = pa.array(values, mask=~np.isfinite(values))
    if "probe_loss" in index.column_names:
        index = index.drop_columns(["probe_loss"])
    return index.append_column("probe_loss", col)
