"""Source kinds, found from one place.

Order matters: a kind claims its files before the kinds after it see them
(box labels claim their JSON/TXT files and image kinds their label tables
before the generic table kind takes every CSV).  Entries are import paths so
that nothing heavy is imported until a scan runs.

Adding a kind = one package under ``datasan/sources/`` (a class with
``claim`` and ``run``, and the optional capabilities of
:mod:`datasan.sources.base` it supports) + one line here + its checks module
under ``datasan/checks/``.
"""

from __future__ import annotations

import importlib

KINDS: list[str] = [
    "datasan.sources.boxes:BoxKind",  # first: it claims the COCO/YOLO files, and notes their image folders
    "datasan.sources.images:ImageKind",  # before tables: it claims the labels tables beside images
    "datasan.sources.tables:TableKind",  # last: every remaining table file
]


def load_kinds() -> list:
    """Instantiate every registered source kind, in claim order."""
    kinds = []
    for spec in KINDS:
        module, _, cls = spec.partition(":")
        kinds.append(getattr(importlib.import_module(module), cls)())
    return kinds


def source_kinds_of(kind) -> tuple[str, ...]:
    """The :attr:`~datasan.sources.base.Source.kind` values the sources of ``kind`` carry."""
    return tuple(getattr(kind, "source_kinds", None) or (kind.name,))


def kind_of(source_kind: str, kinds: list | None = None):
    """The kind (among ``kinds``, default every registered one) whose sources carry
    ``source_kind``; None when no kind makes such sources."""
    for kind in kinds if kinds is not None else load_kinds():
        if source_kind in source_kinds_of(kind):
            return kind
    return None
