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
