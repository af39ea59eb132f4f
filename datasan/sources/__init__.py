"""Source kinds, found from one place.

Order matters: a kind claims its files before the kinds after it see them
(box labels claim their JSON/TXT files and image kinds their label tables
before the generic table kind takes every CSV).  Entries are import paths so
that nothing heavy is imported until a scan runs.
"""

from __future__ import annotations

import importlib

KINDS: list[str] = [
    "datasan.sources.boxes:BoxKind",  # first, so it claims COCO/YOLO files
    # images: after box labels, before tables (it claims the labels tables beside images)
    "datasan.sources.images:ImageKind",
    "datasan.sources.tables:TableKind",
]


def load_kinds() -> list:
    """Instantiate every registered source kind, in claim order."""
    kinds = []
    for spec in KINDS:
        module, _, cls = spec.partition(":")
        kinds.append(getattr(importlib.import_module(module), cls)())
    return kinds
