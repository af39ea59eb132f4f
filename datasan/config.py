"""The configuration file: ``[tool.datasan]`` in pyproject.toml, or datasan.toml.

Found from the current folder upward (the first datasan.toml, or pyproject.toml
with a ``[tool.datasan]`` table, wins), or named with ``--config FILE``.
Command-line options and API keyword arguments override the file.  An unknown
key, a value of the wrong type or an unknown rule code is a
:class:`~datasan.errors.UsageError` (exit 2) that names it.

Example (datasan.toml; in pyproject.toml put the same under ``[tool.datasan]``)::

    fail_on = "error"
    select = ["DS0", "DS1", "DS2"]
    ignore = ["DS105"]
    max_quarantine_fraction = 0.01

    [severity]
    DS110 = "error"

    [thresholds]
    outlier_k = 30.0

    [sources."tables/*.csv"]
    target = "y"
    task = "regression"
    missing_policy = "drop-column"   # sparse columns leave the clean file instead of their rows
    types = { subject = "category", dose = "float" }
"""

from __future__ import annotations

import os
import sys
from typing import TYPE_CHECKING, Any

from datasan.errors import UsageError
from datasan.fs import scheme_of

if TYPE_CHECKING:  # pragma: no cover
    from datasan.options import ScanOptions

def find_config(start: str | os.PathLike | None = None) -> str | None:
    """The config file that applies in ``start`` (default: the current folder), or None.

    Walks upward; in each folder datasan.toml wins over pyproject.toml, and a
    pyproject.toml counts only when it has a ``[tool.datasan]`` table.
    """
    folder = os.path.abspath(os.fspath(start) if start is not None else os.getcwd())
    while True:
        cand = os.path.join(folder, "datasan.toml")
        if os.path.isfile(cand):
            return cand
        cand = os.path.join(folder, "pyproject.toml")
        if os.path.isfile(cand) and _has_tool_table(cand):
            return cand
        parent = os.path.dirname(folder)
        if parent == folder:
            return None
        folder = parent


def _has_tool_table(path: str) -> bool:
    try:
        return "datasan" in _read_toml(path).get("tool", {})
    except UsageError:
        return False


def _toml():
    """The TOML parser: the standard library's from Python 3.11, tomli (the same code) before."""
    if sys.version_info >= (3, 11):
        import tomllib
    else:  # pragma: no cover - exercised on 3.10 only
        import tomli as tomllib
    return tomllib


def _read_toml(path: str) -> dict[str, Any]:
    tomllib = _toml()
    try:
        with open(path, "rb") as f:
            return tomllib.load(f)
    except OSError as exc:
        raise UsageError(f"config {path}: cannot read it: {exc}") from exc
    except tomllib.TOMLDecodeError as exc:
        raise UsageError(f"config {path}: not valid TOML: {exc}") from exc


def load_config(path: str | os.PathLike) -> dict[str, Any]:
    """The validated settings of a config file, as ScanOptions keyword arguments."""
    path = os.fspath(path)
    if not os.path.isfile(path):
        raise UsageError(f"config file {path} does not exist")
    doc = _read_toml(path)
    if os.path.basename(path) == "pyproject.toml" or "tool" in doc:
        table = doc.get("tool", {}).get("datasan")
        if table is None:
            raise UsageError(f"config {path}: no [tool.datasan] table")
        where = f"config {path} [tool.datasan]"
    else:
        table, where = doc, f"config {path}"
    settings = validate_settings(table, where)
    if settings.get("baseline") and not os.path.isabs(settings["baseline"]) and not scheme_of(settings["baseline"]):
        # like every path in a config file: relative to the file's folder, not to the current one
        settings["baseline"] = os.path.join(os.path.dirname(os.path.abspath(path)), settings["baseline"])
    return settings


def validate_settings(table: dict[str, Any], where: str) -> dict[str, Any]:
    """Check every key, type and rule code of a settings table; returns ScanOptions kwargs.

    The keys and their checks are the fields of :class:`~datasan.options.ScanOptions`
    (see :func:`datasan.options.check_settings`); a problem is a UsageError naming
    ``where`` and the key.
    """
    from datasan.options import check_settings

    try:
        return check_settings(table)
    except ValueError as exc:
        raise UsageError(f"{where}: {exc}") from None


def build_options(overrides: dict[str, Any] | None = None,
                  config: str | os.PathLike | bool | None = None) -> "ScanOptions":
    """ScanOptions from the config file and ``overrides`` (CLI options, API keywords), which win.

    ``config``: None finds the file from the current folder upward; a path
    names it; False uses no file.  A ``thresholds`` override may be a dict or
    a :class:`~datasan.options.Thresholds`.
    """
    import dataclasses

    from datasan.options import ScanOptions, Thresholds, settings_fields

    overrides = dict(overrides or {})
    settings: dict[str, Any] = {}
    if config is not False:
        path = find_config() if config is None else os.fspath(config)
        if path is not None:
            settings = load_config(path)
    known = {f.name for f in dataclasses.fields(ScanOptions)}
    unknown = [k for k in overrides if k not in known]
    if unknown:
        raise UsageError(f"unknown option(s): {', '.join(unknown)}")
    # options given in code or on the command line pass the same checks as the file's
    th = settings.pop("thresholds", {})
    o_th = overrides.pop("thresholds", None)
    keys = settings_fields()
    checked = {k: v for k, v in overrides.items() if k in keys and v is not None}
    overrides.update(validate_settings(checked, "option"))
    if isinstance(o_th, Thresholds):
        thresholds = o_th
    else:
        if o_th:
            th = {**th, **validate_settings({"thresholds": dict(o_th)}, "option")["thresholds"]}
        thresholds = Thresholds(**th)
    return ScanOptions(thresholds=thresholds, **{**settings, **overrides})
