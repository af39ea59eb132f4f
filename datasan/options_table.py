"""The options tables of the README and docs/api.md, generated from the ScanOptions fields.

Regenerate after changing an option (tests/test_options.py fails until the
docs match)::

    python -m datasan.options_table
"""

from __future__ import annotations

import dataclasses

from datasan.options import Flag, Meta, ScanOptions, Thresholds, accepted_types, cli_flags, meta_of

#: the markers around each generated table: (file, name)
TABLES = (("README.md", "options"), ("docs/api.md", "config"), ("docs/api.md", "thresholds"))


def _cell(text: str) -> str:
    return text.replace("|", "\\|")


def _flag_cell(name: str, flag: Flag, meta: Meta) -> str:
    decls = [d for decl in flag.decls for d in decl.split("/")]
    if len(decls) > 1 and decls[1].startswith("--"):  # --probe/--no-probe
        return " / ".join(f"`{d}`" for d in decls)
    metavar = "|".join(meta.choices) if meta.choices else flag.metavar
    return " / ".join(f"`{decls[0]} {m}`" if m else f"`{decls[0]}`" for m in metavar.split(" / ") or [""])


def options_markdown() -> str:
    """The README table of the ``datasan scan`` options that set ScanOptions fields."""
    fields = {f.name: f for f in dataclasses.fields(ScanOptions)}
    lines = ["| option | meaning |", "|---|---|"]
    for name, flag in cli_flags():
        meta = meta_of(fields[name])
        lines.append(f"| {_cell(_flag_cell(name, flag, meta))} | {_cell(flag.doc or flag.help)} |")
    return "\n".join(lines)


def _toml_value(value) -> str:
    """A default as the config file writes it ('' for none)."""
    import json

    if value is None or value is dataclasses.MISSING:
        return ""
    return f"`{json.dumps(value)}`" if isinstance(value, (bool, str)) else f"`{value!r}`"


def _type_name(types) -> str:
    if float in types:  # an integer is a number too
        types = [t for t in types if t is not int]
    names = {list: "list", tuple: "list", str: "string", dict: "table", float: "number", int: "integer",
             bool: "boolean"}
    return " or ".join(dict.fromkeys(names.get(t, t.__name__) for t in types))


def config_markdown() -> str:
    """The docs/api.md table of config keys: key, type, per-source or not, meaning, default."""
    import typing

    hints = typing.get_type_hints(ScanOptions)
    lines = ["| key | type | per source | meaning | default |", "|---|---|---|---|---|"]
    for f in dataclasses.fields(ScanOptions):
        meta = meta_of(f)
        if meta is None or not meta.config:
            continue
        types = meta.accepts or accepted_types(hints[f.name])
        kind = " \\| ".join(f"`{c}`" for c in meta.choices) if meta.choices else _type_name(
            [t for t in types if t is not Thresholds])
        default = _toml_value(f.default)
        lines.append(f"| `{f.name}` | {kind} | {'yes' if meta.per_source else ''} | {_cell(meta.doc)} | "
                     f"{default} |")
    return "\n".join(lines)


def thresholds_markdown() -> str:
    """The docs/api.md table of ``[thresholds]`` keys."""
    import typing

    hints = typing.get_type_hints(Thresholds)
    lines = ["| key | type | default | meaning |", "|---|---|---|---|"]
    for f in dataclasses.fields(Thresholds):
        lines.append(f"| `{f.name}` | {_type_name(accepted_types(hints[f.name]))} | {_toml_value(f.default)} | "
                     f"{_cell(meta_of(f).doc)} |")
    return "\n".join(lines)


GENERATORS = {"options": options_markdown, "config": config_markdown, "thresholds": thresholds_markdown}


def markers(name: str) -> tuple[str, str]:
    """The comment lines that open and close generated table ``name``."""
    return (f"<!-- {name}:start (generated: python -m datasan.options_table) -->", f"<!-- {name}:end -->")


def replace_table(text: str, name: str) -> str:
    """``text`` with the lines between ``name``'s markers replaced by the generated table."""
    start, end = markers(name)
    head, rest = text.split(start, 1)
    _old, tail = rest.split(end, 1)
    return f"{head}{start}\n{GENERATORS[name]()}\n{end}{tail}"


def main() -> None:
    """Rewrite every generated table in place."""
    import pathlib

    root = pathlib.Path(__file__).resolve().parent.parent
    for rel, name in TABLES:
        path = root / rel
        path.write_text(replace_table(path.read_text(encoding="utf-8"), name), encoding="utf-8")


if __name__ == "__main__":
    main()
