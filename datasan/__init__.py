"""datasan: find the samples that break a training run, before it starts.

Heavy modules load lazily: ``import datasan`` imports no numpy, pyarrow,
pandas or torch.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # pragma: no cover
    import os

    from datasan.result import ScanResult

__version__ = "0.1.0"

__all__ = ["__version__", "scan", "gate", "ScanOptions", "ScanResult", "Report", "GateVerdict", "Finding", "RULES",
           "UsageError", "DataGateError", "BadSampleError", "SafeDataset", "SafeIterableDataset", "safe_collate", "probe"]


def scan(path: str | os.PathLike, *, out_dir: str | os.PathLike | None = None,
         config: str | os.PathLike | bool | None = None, force: bool = False, **options: Any) -> "ScanResult":
    """Scan ``path`` and return a :class:`datasan.result.ScanResult`.

    ``options`` are the fields of :class:`datasan.options.ScanOptions`
    (``target``, ``task``, ``num_classes``, ``fail_on``, ``probe``,
    ``max_quarantine_fraction``, ``baseline``, ``thresholds`` as a dict, ...);
    they override the config file.  ``config``: None finds datasan.toml /
    pyproject.toml ``[tool.datasan]`` from the current folder upward, a path
    names the file, False uses none.  When ``out_dir`` is given, every output
    file is written there too (it must be new, empty or a datasan output, unless
    ``force``: see :meth:`~datasan.result.ScanResult.write`).  Use the result
    as a context manager (or call its ``close()``) to free its staging folder
    when it is not written.
    """
    from datasan.config import build_options
    from datasan.pipeline import scan as run

    result = run(path, build_options(options, config), out_dir=out_dir, force=force)
    if out_dir is not None:
        result.write(out_dir)
    return result


def gate(path: str | os.PathLike, fail_on: str | None = None, *, out_dir: str | os.PathLike | None = None,
         config: str | os.PathLike | bool | None = None, force: bool = False, **options: Any) -> "ScanResult":
    """Scan ``path`` and return the result when the data passes the gate; raise otherwise.

    ``fail_on`` ("error", "warning" or "never") defaults to the config file's,
    else "error".
    Raises :class:`datasan.DataGateError` (its ``result`` attribute holds the
    :class:`~datasan.result.ScanResult`) whose message lists the failing
    findings per rule with a few sample ids.  Other arguments as :func:`scan`.
    """
    from datasan.errors import DataGateError

    if fail_on is not None:
        options["fail_on"] = fail_on
    result = scan(path, out_dir=out_dir, config=config, force=force, **options)
    if not result.passed:
        raise DataGateError(result.gate_summary(), result)
    return result


_LAZY = {
    "ScanOptions": ("datasan.options", "ScanOptions"),
    "ScanResult": ("datasan.result", "ScanResult"),
    "Finding": ("datasan.findings", "Finding"),
    "Report": ("datasan.result", "Report"),
    "GateVerdict": ("datasan.result", "GateVerdict"),
    "RULES": ("datasan.rules", "RULES"),
    "UsageError": ("datasan.errors", "UsageError"),
    "DataGateError": ("datasan.errors", "DataGateError"),
    "BadSampleError": ("datasan.errors", "BadSampleError"),
    "SafeDataset": ("datasan.safe_dataset", "SafeDataset"),
    "SafeIterableDataset": ("datasan.safe_dataset", "SafeIterableDataset"),
    "safe_collate": ("datasan.collate", "safe_collate"),
}


def __getattr__(name: str) -> Any:
    if name == "probe":  # datasan.probe(data, model=..., loss_fn=...); the package is callable
        import importlib

        return importlib.import_module("datasan.probe")
    if name in _LAZY:
        import importlib

        module, attr = _LAZY[name]
        return getattr(importlib.import_module(module), attr)
    raise AttributeError(f"module 'datasan' has no attribute {name!r}")
