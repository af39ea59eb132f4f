"""How each option's value is checked: the ``check`` of its :class:`~datasan.options.Meta`.

A check takes the key (for the message) and the value, returns the value as
the scan uses it, and raises ValueError naming the key when it is wrong.  The
config file, the CLI and the API all pass through them (see
:func:`datasan.options.check_settings`).
"""

from __future__ import annotations

import dataclasses
from typing import Any, Callable

from datasan.errors import UsageError


def split_items(values: list[str] | tuple[str, ...] | str) -> list[str]:
    """Comma-separated items of one or several strings, stripped, empties dropped."""
    out: list[str] = []
    for v in [values] if isinstance(values, str) else values:
        out.extend(s.strip() for s in v.split(",") if s.strip())
    return out


def rule_codes(key: str, value: Any) -> list[str]:
    """Rule codes or prefixes (a list, or one comma-separated string), upper-cased."""
    from datasan.rules import check_selectors

    items = [s.strip() for s in value.split(",")] if isinstance(value, str) else list(value)
    for s in items:
        if not isinstance(s, str):
            raise ValueError(f"{key} must list rule codes as strings, not {s!r}")
    bad = check_selectors(items)
    if bad:
        raise ValueError(f"unknown rule code(s) in {key}: {', '.join(bad)}")
    return [s.upper() for s in items if s]


def severities(key: str, value: dict[str, Any]) -> dict[str, str]:
    from datasan.rules import SEVERITIES

    out = {}
    for code, sev in value.items():
        rule_codes(key, [code])
        if sev not in SEVERITIES:
            raise ValueError(f"{key}.{code} must be one of {', '.join(SEVERITIES)}, not {sev!r}")
        out[code.upper()] = sev
    return out


def fraction(key: str, value: float) -> float:
    if not 0.0 <= value <= 1.0:
        raise ValueError(f"{key} must lie in 0..1, not {value!r}")
    return float(value)


def at_least(low: int, hint: str = "") -> Callable[[str, Any], Any]:
    def check(key: str, value: Any) -> Any:
        if value < low:
            raise ValueError(f"{key} must be at least {low}{hint}, not {value!r}")
        return value
    return check


def near_bits(key: str, value: int) -> int:
    # 32 bits and more would make every pair a candidate of the band join
    if not -1 <= value <= 31:
        raise ValueError(f"{key} must lie in -1..31 (-1: off), not {value!r}")
    return value


def seconds(key: str, value: float) -> float:
    if not value >= 0:
        raise ValueError(f"{key} must be a number of seconds >= 0 (0: no limit), not {value!r}")
    return value


def device(key: str, value: str) -> str:
    if not (value in ("cpu", "cuda") or value.startswith("cuda:")):
        raise ValueError(f"{key} must be cpu, cuda or cuda:N, not {value!r}")
    return value


def factory(key: str, value: str) -> str:
    if ":" not in value:
        raise ValueError(f"{key} must be module:factory, not {value!r}")
    return value


def strings(key: str, value: Any) -> list[str]:
    if not all(isinstance(c, str) for c in value):
        raise ValueError(f"{key} must be a list of strings")
    return list(value)


def column_types(key: str, value: dict[str, Any]) -> dict[str, str]:
    from datasan.options import COLUMN_TYPES

    for col, typ in value.items():
        if typ not in COLUMN_TYPES:
            raise ValueError(f"{key}.{col} must be one of {', '.join(COLUMN_TYPES)}, not {typ!r}")
    return dict(value)


def targets(key: str, value: dict[str, Any]) -> dict[str, str]:
    from datasan.options import check_type

    for glob, col in value.items():
        check_type(f"{key}.{glob!r}", col, (str,))
    return dict(value)


def thresholds(key: str, value: Any) -> dict[str, Any]:
    from datasan.options import Thresholds, accepted_types, check_type, meta_of, type_hints

    if isinstance(value, Thresholds):
        value = dataclasses.asdict(value)
    hints = type_hints(Thresholds)
    fields = {f.name: f for f in dataclasses.fields(Thresholds)}
    out = {}
    for k, v in value.items():
        if k not in hints:
            raise ValueError(f"unknown key {key}.{k} (known: {', '.join(sorted(hints))})")
        want = accepted_types(hints[k])
        check_type(f"{key}.{k}", v, want)
        m = meta_of(fields[k])
        if m is not None and m.check:
            v = m.check(f"{key}.{k}", v)
        out[k] = float(v) if float in want else v
    return out


def sources(key: str, value: dict[str, Any]) -> dict[str, dict[str, Any]]:
    from datasan.options import check_settings

    return {glob: check_settings(table, f"{key}.{glob!r}", per_source=True) for glob, table in value.items()}


def cli_targets(values: list[str]) -> dict[str, Any]:
    """``target`` (every table) and ``targets`` ({file glob: target}) from repeated ``--target``."""
    one, per = None, {}
    for v in values:
        glob, sep, col = v.rpartition("=")
        if not sep:
            if one is not None and one != v:
                raise UsageError(f"--target given twice for every table ({one!r}, {v!r}); use FILE=NAME")
            one = v
        elif not glob or not col:
            raise UsageError(f"--target {v!r}: expected NAME or FILE=NAME")
        else:
            per[glob] = col
    return {"target": one, "targets": per or None}
