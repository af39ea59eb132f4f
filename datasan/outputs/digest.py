"""Findings condensed for people and CI: what each source lost, and per rule the
distinct kinds of message with their counts.

A folder of real tables can give tens of thousands of findings of one rule
(every duplicate row) or the same advice once per file ("pass --target NAME"
in 120 tables).  Listing them buries the few that matter, so the readable
outputs show each *kind* of message once, with how many findings and which
sources it covers; findings.parquet keeps every finding.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

from datasan.outputs.escape import printable

EXAMPLES = 3
SEVERITY_ORDER = {"error": 0, "warning": 1, "info": 2}
_DIGITS = re.compile(r"\d+")


def describe(sample: str | None, source: str | None, message: str) -> str:
    """``where: message`` (where = sample, else source), printable; the message alone when it
    already starts with where or there is none."""
    where = sample or source or ""
    text = f"{where}: {message}" if where and not message.startswith(where) else message
    return printable(text)


@dataclass
class SourceLoss:
    """One source's counts from report.json; ``lost`` is quarantined / seen."""

    source: str
    seen: int
    kept: int
    quarantined: int

    @property
    def lost(self) -> float:
        return self.quarantined / self.seen if self.seen else 0.0


def source_losses(report: dict[str, Any]) -> list[SourceLoss]:
    """Every source of the report, the worst first (largest share lost, then most quarantined)."""
    rows = [SourceLoss(printable(s.get("source")), int(s.get("seen") or 0), int(s.get("kept") or 0),
                       int(s.get("quarantined") or 0)) for s in report.get("sources") or []]
    return sorted(rows, key=lambda r: (-r.lost, -r.quarantined, r.source))


@dataclass
class MessageKind:
    """Findings of one rule whose messages differ only in numbers and in their own file name."""

    example: str  #: the first such finding, described (see :func:`describe`)
    count: int = 0
    #: findings per source, most first
    per_source: dict[str, int] = field(default_factory=dict)


@dataclass
class RuleDigest:
    """One rule's findings: total, severity and the kinds of message, most frequent first."""

    code: str
    severity: str
    count: int
    kinds: list[MessageKind]


def rule_digests(findings_table) -> list[RuleDigest]:
    """Per rule (errors first, then by code) its kinds of message with counts per source.

    Grouping runs in Arrow (one regex pass, one hash group-by): Python sees one
    row per (rule, source, kind of message), never one object per finding
    (``bench/outputs.py``).
    """
    import pyarrow as pa
    import pyarrow.compute as pc

    from datasan.numpy_arrow import from_numpy

    ft = findings_table
    if ft.num_rows == 0:
        return []
    shape = pc.replace_substring_regex(ft.column("message"), pattern=r"\d+", replacement="#")
    source = pc.fill_null(ft.column("source"), pa.scalar("", pa.string()))
    starts, counts = first_of_groups([ft.column("code"), source, shape])
    # one-row slices are free; take() would concatenate every chunk of every column
    rows = [ft.slice(i, 1).to_pylist()[0] for i in starts.tolist()]
    first = {c: [r[c] for r in rows] for c in ft.column_names}
    rules: dict[str, dict[str, MessageKind]] = {}
    sev: dict[str, str] = {}
    shapes = shape.take(from_numpy(starts)).to_pylist()
    for j, (code, shp, n) in enumerate(zip(first["code"], shapes, counts.tolist())):
        src = first["source"][j] or ""
        # a message that names its own file differs from file to file only there
        key = shp.replace(_DIGITS.sub("#", src), "\0") if src else shp
        kinds = rules.setdefault(code, {})
        kind = kinds.get(key)
        if kind is None:
            kind = kinds[key] = MessageKind(describe(first["sample"][j], first["source"][j], first["message"][j]))
            sev.setdefault(code, first["severity"][j])
        kind.count += n
        name = printable(src) if src else "(dataset)"
        kind.per_source[name] = kind.per_source.get(name, 0) + n
    out = []
    for code, kinds in rules.items():
        ordered = sorted(kinds.values(), key=lambda k: -k.count)  # stable: first seen first among equals
        for k in ordered:
            k.per_source = dict(sorted(k.per_source.items(), key=lambda kv: -kv[1]))
        out.append(RuleDigest(code, sev[code], sum(k.count for k in ordered), ordered))
    return sorted(out, key=lambda r: (SEVERITY_ORDER.get(r.severity, 3), r.code))


def spread(kind: MessageKind, sources_shown: int = 5) -> list[str]:
    """How a kind of message spreads over sources, as lines: ``['x120 like this, one in each of
    120 sources']``, or ``['x37,634 like this:', '30,000 in a.csv', '7,634 in b.csv']`` (one line
    per source, most first); [] for a single finding."""
    if kind.count == 1:
        return []
    n_src = len(kind.per_source)
    if n_src == 1:
        return [f"x{kind.count:,} like this in {next(iter(kind.per_source))}"]
    if all(c == 1 for c in kind.per_source.values()):
        return [f"x{kind.count:,} like this, one in each of {n_src:,} sources"]
    lines = [f"x{kind.count:,} like this:"]
    lines += [f"{c:,} in {s}" for s, c in list(kind.per_source.items())[:sources_shown]]
    if n_src > sources_shown:
        rest = sum(list(kind.per_source.values())[sources_shown:])
        lines.append(f"{rest:,} in {n_src - sources_shown:,} more sources")
    return lines


@dataclass
class Case:
    """The findings of one rule in one source, as CI reports them (a JUnit testcase, an annotation)."""

    code: str
    check: str
    severity: str
    source: str | None
    count: int = 0
    failing: int = 0
    new: int = 0
    #: 0-based row of the first finding (to point at a line), None when it has none
    first_row: int | None = None
    #: the first findings that fail the gate, then the first that do not
    failing_examples: list[str] = field(default_factory=list)
    other_examples: list[str] = field(default_factory=list)


def first_per_key(keys, k: int):
    """Positions of the first ``k`` entries of each distinct value of the int array ``keys``, in
    position order (a stable sort, then each run's first ``k``): per-group examples without a
    Python object per finding."""
    import numpy as np

    if len(keys) == 0:
        return np.zeros(0, dtype=np.int64)
    order = np.argsort(keys, kind="stable")
    sorted_keys = keys[order]
    starts = np.flatnonzero(np.r_[True, sorted_keys[1:] != sorted_keys[:-1]])
    run_start = np.repeat(starts, np.diff(np.r_[starts, len(keys)]))
    return np.sort(order[np.arange(len(keys)) - run_start < k])


def first_of_groups(columns):
    """(first row, rows) of each group of equal values over ``columns`` (Arrow columns of
    one length; nulls are a value of their own), groups in order of their first row.

    numpy over dictionary ids rather than Arrow's group-by: that one loads pyarrow.dataset,
    which imports pandas (half a second of every scan's report)."""
    import numpy as np

    key = np.zeros(len(columns[0]), np.int64)
    for col in columns:
        ids, values = dense_ids(col)
        key = key * (len(values) + 1) + (ids + 1)
        # renumber densely before the next column multiplies it (no overflow)
        _, key = np.unique(key, return_inverse=True)
    _, starts, inverse, counts = np.unique(key, return_index=True, return_inverse=True, return_counts=True)
    order = np.argsort(starts, kind="stable")
    return starts[order], counts[order]


def dense_ids(column):
    """(ids, values): each entry's index into ``values`` (its distinct values, an Arrow array:
    convert only what you show), nulls as -1."""
    import numpy as np
    import pyarrow as pa
    import pyarrow.compute as pc

    from datasan.numpy_arrow import to_numpy

    enc = pc.dictionary_encode(column).combine_chunks()
    ids = np.asarray(to_numpy(enc.indices.fill_null(pa.scalar(-1, enc.indices.type))), dtype=np.int64)
    return ids, enc.dictionary


def cases(result, examples: int = EXAMPLES) -> list[Case]:
    """One :class:`Case` per (rule, source) in finding order; only ``examples`` messages kept each.

    Counting runs on integer arrays; Python sees one object per (rule, source) and per
    example, never one per finding (2M duplicate rows are 2M findings).
    """
    import numpy as np

    ft = result.findings_table
    if ft.num_rows == 0:
        return []
    gating = np.asarray(result.gating_mask(), dtype=bool)
    new = np.asarray(result.new_mask(), dtype=bool)
    code_ids, _ = dense_ids(ft.column("code"))
    src_ids, _ = dense_ids(ft.column("source"))
    group = code_ids * (int(src_ids.max()) + 2) + (src_ids + 1)
    _, first, inverse = np.unique(group, return_index=True, return_inverse=True)
    count = np.bincount(inverse)
    failing = np.bincount(inverse, weights=gating).astype(np.int64)
    fresh = np.bincount(inverse, weights=new).astype(np.int64)
    # failing examples and the others separately, each the first ``examples`` in finding order
    picks = first_per_key(inverse * 2 + ~gating, examples)
    cols = ("code", "check", "severity", "sample", "source", "row", "message")
    heads = ft.select(list(cols)).take(first).to_pylist()
    shown = ft.select(["sample", "source", "message"]).take(picks).to_pylist()
    by_group: dict[int, Case] = {}
    for g in np.argsort(first, kind="stable").tolist():
        h = heads[g]
        by_group[g] = Case(h["code"], h["check"], h["severity"], h["source"], int(count[g]), int(failing[g]),
                           int(fresh[g]), first_row=h["row"])
    for i, row in zip(picks.tolist(), shown):
        case = by_group[int(inverse[i])]
        text = describe(row["sample"], row["source"], row["message"])
        if not new[i]:
            text += " (in baseline)"
        (case.failing_examples if gating[i] else case.other_examples).append(text)
    return list(by_group.values())
