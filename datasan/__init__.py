"""datasan: find the samples that break a training run, before it starts.

Heavy modules load lazily: ``import datasan`` imports no numpy, pyarrow,
pandas or torch.
"""

from __future__ import annotations

__version__ = "0.1.0"

__all__ = ["__version__", "scan", "ScanOptions", "ScanResult", "Finding", "RULES", "UsageError",
           "DataGateError", "probe"]


def scan(path, *, out_dir=None, **options):
    """Scan ``path`` and return a :class:`datasan.result.ScanResult`.

    ``options`` are the fields of :class:`datasan.options.ScanOptions`
    (``target``, ``task``, ``num_classes``, ``fail_on``, ``probe``, ...).
    When ``out_dir`` is given, every output file is written there too.
    """
    from datasan.options import ScanOptions
    from datasan.pipeline import scan as run

    result = run(path, ScanOptions(**options), out_dir=out_dir)
    if out_dir is not None:
        result.write(out_dir)
    return result


def __getattr__(name: str):
    if name == "ScanOptions":
        from datasan.options import ScanOptions

        return ScanOptions
    if name == "ScanResult":
        from datasan.result import ScanResult

        return ScanResult
    if name == "Finding":
        from datasan.findings import Finding

        return Finding
    if name == "RULES":
        from datasan.rules import RULES

        return RULES
    if name in ("UsageError", "DataGateError"):
        from datasan import errors

        return getattr(errors, name)
    if name == "probe":  # datasan.probe(data, model=..., loss_fn=...); the package is callable
        import importlib

        return importlib.import_module("datasan.probe")
    raise AttributeError(f"module 'datasan' has no attribute {name!r}")
