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

import dataclasses
import os
from typing import Any

from datasan.errors import UsageError

#: top-level keys and the Python types they accept
TOP_KEYS: dict[str, tuple[type, ...]] = {
    "select": (list, tuple, str),
    "ignore": (list, tuple, str),
    "severity": (dict,),
    "thresholds": (dict,),
    "sources": (dict,),
    "max_quarantine_fraction": (float, int),
    "max_total_quarantine_fraction": (float, int),
    "fail_on": (str,),
    "target": (str,),
    "task": (str,),
    "num_classes": (int,),
    "classes": (list, tuple),
    "label_file": (str,),
    "workers": (int,),
    "probe": (bool,),
    "baseline": (str,),
    "probe_model": (str,),
    "device": (str,),
    "probe_batch_size": (int,),
    "probe_seed": (int,),
    "probe_timeout": (float, int),
    "image_labels": (str,),
    "types": (dict,),
    "targets": (dict,),
    "missing_policy": (str,),
}
#: keys allowed in a ``[sources."<glob>"]`` table
SOURCE_KEYS: dict[str, tuple[type, ...]] = {
    "target": (str,),
    "task": (str,),
    "num_classes": (int,),
    "classes": (list,),
    "label_file": (str,),
    "types": (dict,),
    "missing_policy": (str,),
    "thresholds": (dict,),
}
CONFIG_NAMES = ("datasan.toml", "pyproject.toml")


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


def _read_toml(path: str) -> dict[str, Any]:
    import tomllib

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
    if settings.get("baseline") and not os.path.isabs(settings["baseline"]):
        # like every path in a config file: relative to the file's folder, not to the current one
        settings["baseline"] = os.path.join(os.path.dirname(os.path.abspath(path)), settings["baseline"])
    return settings


def _check_type(where: str, key: str, value: Any, types: tuple[type, ...]) -> None:
    ok = isinstance(value, types) and not (isinstance(value, bool) and bool not in types)
    if not ok:
        names = " or ".join(dict.fromkeys({list: "list", tuple: "list", str: "string", dict: "table", float: "number",
                             int: "integer", bool: "boolean"}[t] for t in types))
        article = "an" if names[0] in "aeiou" else "a"
        raise UsageError(f"{where}: {key} must be {article} {names}, not {type(value).__name__} {value!r}")


def _codes(where: str, key: str, value: Any) -> list[str]:
    from datasan.rules import check_selectors

    items = [s.strip() for s in value.split(",")] if isinstance(value, str) else list(value)
    for s in items:
        if not isinstance(s, str):
            raise UsageError(f"{where}: {key} must list rule codes as strings, not {s!r}")
    bad = check_selectors(items)
    if bad:
        raise UsageError(f"{where}: unknown rule code(s) in {key}: {', '.join(bad)}")
    return [s.upper() for s in items if s]


def _thresholds(where: str, value: dict[str, Any]) -> dict[str, Any]:
    from datasan.options import Thresholds

    fields = {f.name: f.type for f in dataclasses.fields(Thresholds)}
    out = {}
    for k, v in value.items():
        if k not in fields:
            raise UsageError(f"{where}: unknown key thresholds.{k} (known: {', '.join(sorted(fields))})")
        want = (int,) if fields[k] in ("int", int) else (float, int)
        _check_type(where, f"thresholds.{k}", v, want)
        out[k] = float(v) if want == (float, int) else v
    return out


def validate_settings(table: dict[str, Any], where: str) -> dict[str, Any]:
    """Check every key, type and rule code of a settings table; returns ScanOptions kwargs."""
    from datasan.options import FAIL_ON, TASKS
    from datasan.rules import SEVERITIES

    out: dict[str, Any] = {}
    for key, value in table.items():
        if key not in TOP_KEYS:
            raise UsageError(f"{where}: unknown key {key!r} (known: {', '.join(sorted(TOP_KEYS))})")
        _check_type(where, key, value, TOP_KEYS[key])
        if key in ("select", "ignore"):
            out[key] = _codes(where, key, value)
        elif key == "severity":
            sev = {}
            for code, s in value.items():
                _codes(where, "severity", [code])
                if s not in SEVERITIES:
                    raise UsageError(f"{where}: severity.{code} must be one of "
                                     f"{', '.join(SEVERITIES)}, not {s!r}")
                sev[code.upper()] = s
            out[key] = sev
        elif key == "thresholds":
            out[key] = _thresholds(where, value)
        elif key == "sources":
            out[key] = {g: _source(where, g, o) for g, o in value.items()}
        elif key == "fail_on" and value not in FAIL_ON:
            raise UsageError(f"{where}: fail_on must be one of {', '.join(FAIL_ON)}, not {value!r}")
        elif key == "task" and value not in TASKS:
            raise UsageError(f"{where}: task must be one of {', '.join(TASKS)}, not {value!r}")
        elif key in ("max_quarantine_fraction", "max_total_quarantine_fraction"):
            if not 0.0 <= value <= 1.0:
                raise UsageError(f"{where}: {key} must lie in 0..1, not {value!r}")
            out[key] = float(value)
        elif key in ("types", "missing_policy"):
            out[key] = _table_setting(where, key, value)
        elif key == "targets":
            for g, col in value.items():
                _check_type(where, f"targets.{g!r}", col, (str,))
            out[key] = dict(value)
        elif key == "classes":
            if not all(isinstance(c, str) for c in value):
                raise UsageError(f"{where}: classes must be a list of strings")
            out[key] = list(value)
        else:
            out[key] = value
    return out


def _table_setting(where: str, key: str, value: Any) -> Any:
    """A checked ``types`` table ({column: type}) or ``missing_policy``."""
    from datasan.options import COLUMN_TYPES, MISSING_POLICIES

    if key == "missing_policy":
        if value not in MISSING_POLICIES:
            raise UsageError(f"{where}: missing_policy must be one of {', '.join(MISSING_POLICIES)}, not {value!r}")
        return value
    for col, typ in value.items():
        if typ not in COLUMN_TYPES:
            raise UsageError(f"{where}: types.{col} must be one of {', '.join(COLUMN_TYPES)}, not {typ!r}")
    return dict(value)


def _source(where: str, glob: str, table: Any) -> dict[str, Any]:
    from datasan.options import TASKS

    if not isinstance(table, dict):
        raise UsageError(f"{where}: sources.{glob!r} must be a table, not {table!r}")
    out: dict[str, Any] = {}
    for key, value in table.items():
        if key not in SOURCE_KEYS:
            raise UsageError(f"{where}: unknown key sources.{glob!r}.{key} "
                             f"(known: {', '.join(sorted(SOURCE_KEYS))})")
        _check_type(where, f"sources.{glob!r}.{key}", value, SOURCE_KEYS[key])
        if key == "thresholds":
            value = _thresholds(f"{where} sources.{glob!r}", value)
        elif key == "task" and value not in TASKS:
            raise UsageError(f"{where}: sources.{glob!r}.task must be one of {', '.join(TASKS)}")
        elif key in ("types", "missing_policy"):
            value = _table_setting(f"{where} sources.{glob!r}", key, value)
        out[key] = value
    return out


def build_options(overrides: dict[str, Any] | None = None, config: Any = None):
    """ScanOptions from the config file and ``overrides`` (CLI options, API keywords), which win.

    ``config``: None finds the file from the current folder upward; a path
    names it; False uses no file.  A ``thresholds`` override may be a dict or
    a :class:`~datasan.options.Thresholds`.
    """
    from datasan.options import ScanOptions, Thresholds

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
    th = settings.pop("thresholds", {})
    o_th = overrides.pop("thresholds", None)
    # options given in code or on the command line pass the same checks as the file's
    checked = {k: v for k, v in overrides.items() if k in TOP_KEYS and v is not None}
    overrides.update(validate_settings(checked, "option"))
    if isinstance(o_th, Thresholds):
        thresholds = o_th
    else:
        if o_th:
            th = {**th, **_thresholds("option", dict(o_th))}
        thresholds = Thresholds(**th)
    merged = {**settings, **{k: v for k, v in overrides.items()}}
    return ScanOptions(thresholds=thresholds, **merged)
