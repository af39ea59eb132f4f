"""Narrow exceptions the library raises and the CLI turns into exit codes."""

from __future__ import annotations


class DatasanError(Exception):
    """Base class of datasan's own exceptions."""


class UsageError(DatasanError):
    """The scan cannot run as asked (no such path, bad option or config key): exit 2."""


class DataGateError(DatasanError):
    """Raised by :func:`datasan.gate` when the data does not pass the gate.

    ``result`` holds the full :class:`~datasan.result.ScanResult`.
    """

    def __init__(self, message: str, result=None) -> None:
        super().__init__(message)
        self.result = result


class BadSampleError(DatasanError):
    """A sample could not be loaded or holds NaN/Inf (raised by SafeDataset with on_error="raise").

    ``index`` is the index into the wrapped dataset, ``sample`` the sample id
    when known, ``reason`` what went wrong.
    """

    def __init__(self, index, sample=None, reason: str = "") -> None:
        if isinstance(index, str) and sample is None and not reason:
            # re-raised by a DataLoader from a worker: torch passes the formatted message only
            super().__init__(index)
            index = None
        else:
            where = f"sample {index}" + (f" ({sample})" if sample is not None else "")
            super().__init__(f"{where}: {reason}")
        self.index = index
        self.sample = sample
        self.reason = reason

    def __reduce__(self):  # picklable across DataLoader workers
        return (BadSampleError, (self.index, self.sample, self.reason))
