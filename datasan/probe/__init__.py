"""The probe: find the samples that make a loss or gradient non-finite (fp32, fp16, bf16).

``datasan.probe(data, model=..., loss_fn=...)`` probes in-memory data (this
package is callable; see :func:`datasan.probe.api.probe`); inside a scan the
pipeline calls :func:`datasan.probe.run.probe_outcomes`.  Modules:

* ``models``: the seeded default MLP / CNN, losses, user factories
* ``stages``: forward, gradients, autocast replay, extreme losses
* ``bisect``: finding bad samples of models that couple a batch
* ``data``: batches from clean tables, image files and arrays
* ``run``: the pipeline hook (findings, quarantine, clean file and stats)
* ``labels``: out-of-fold probabilities and confident learning (suspect labels)
* ``label_outputs``: the label estimate's findings, report and label_quality rows
* ``api``: the Python entry point

torch is imported only by these modules' functions, never by ``import datasan``.
"""

from __future__ import annotations

import sys
import types


def probe(data, model=None, loss_fn=None, **kwargs):
    """Probe ``data`` with a network; see :func:`datasan.probe.api.probe`."""
    from datasan.probe.api import probe as run

    return run(data, model=model, loss_fn=loss_fn, **kwargs)


class _CallableModule(types.ModuleType):
    """Lets ``datasan.probe(...)`` call :func:`probe` although ``datasan.probe`` is this package."""

    def __call__(self, data, model=None, loss_fn=None, **kwargs):
        return probe(data, model=model, loss_fn=loss_fn, **kwargs)


sys.modules[__name__].__class__ = _CallableModule
