"""Findings: the small typed records every check yields.

A check yields :class:`Finding` objects for single problems.  Per-row checks on a
whole batch would create millions of Python objects on a bad dataset, so they
add vectorized runs of findings to a :class:`FindingBuffer` instead.  A run
stores one code, source, column and severity for all its rows, the row numbers
as one int64 array and its message as a template with per-row parameters
(numpy arrays), so a duplicate row costs 16 bytes until the findings are
written; sample ids and message sentences are only built, vectorized and in
chunks, when the buffer becomes the ``findings.parquet`` table (columns of
docs/outputs.md).
"""

from __future__ import annotations

import string
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Iterable, Iterator, Sequence

from datasan.numpy_arrow import from_numpy


def _rules():
    # the rule table imports the check families, which import this module: look it up lazily
    from datasan.rules import RULES

    return RULES


if TYPE_CHECKING:  # pragma: no cover
    import pyarrow as pa

COLUMNS = ("code", "check", "severity", "sample", "source", "row", "column", "message")
#: characters of a cell quoted in a message; longer cells are cut (with their length)
QUOTE_LIMIT = 80
#: rows whose messages are built at once when a run is materialised
CHUNK_ROWS = 65536


def quote(value: Any, limit: int = QUOTE_LIMIT) -> str:
    """``repr`` of a cell for a message, cut to ``limit`` characters with an ellipsis and
    the original length, so a 1 MB cell never becomes a 1 MB message."""
    text = value if isinstance(value, str) else str(value)
    if len(text) <= limit:
        return repr(value)
    return f"{text[:limit]!r}… ({len(text):,} characters)"


def format_number(v: Any) -> str:
    """A number as messages show it: NaN, inf, -inf, 6 significant digits for floats."""
    import math

    if isinstance(v, float):
        if math.isnan(v):
            return "NaN"
        if math.isinf(v):
            return "inf" if v > 0 else "-inf"
        return f"{v:.6g}"
    return repr(v)


@dataclass(frozen=True)
class Finding:
    """One finding, with the columns of findings.parquet.

    ``severity`` defaults to the rule's default severity; ``check`` is always
    the rule's kebab-case name.
    """

    code: str
    message: str
    sample: str | None = None
    source: str | None = None
    row: int | None = None
    column: str | None = None
    severity: str = ""

    def __post_init__(self) -> None:
        rule = _rules()[self.code]  # KeyError: a check used an unregistered code (a bug)
        if not self.severity:
            object.__setattr__(self, "severity", rule.severity)

    @property
    def check(self) -> str:
        """The rule's kebab-case name."""
        return _rules()[self.code].name


def schema() -> "pa.Schema":
    """The Arrow schema of findings.parquet."""
    import pyarrow as pa

    return pa.schema(
        [
            ("code", pa.string()),
            ("check", pa.string()),
            ("severity", pa.string()),
            ("sample", pa.string()),
            ("source", pa.string()),
            ("row", pa.int64()),
            ("column", pa.string()),
            ("message", pa.string()),
        ]
    )


# --------------------------------------------------------------------------- segments

class _Listed:
    """Findings added one by one: plain columnar lists."""

    __slots__ = ("cols", "severity")

    def __init__(self) -> None:
        self.cols: dict[str, list] = {c: [] for c in ("code", "message", "sample", "source", "row", "column")}
        self.severity: list[str | None] = []

    def __len__(self) -> int:
        return len(self.severity)

    def add(self, f: Finding) -> None:
        for c, col in self.cols.items():
            col.append(getattr(f, c))
        self.severity.append(f.severity)

    def keep(self, idx: list[int]) -> None:
        for c, col in self.cols.items():
            self.cols[c] = [col[i] for i in idx]
        self.severity = [self.severity[i] for i in idx]

    def column(self, name: str) -> list:
        if name == "severity":
            rules = _rules()
            return [s or rules[c].severity for s, c in zip(self.severity, self.cols["code"])]
        return list(self.cols[name])

    def arrow(self) -> dict[str, Any]:
        import pyarrow as pa

        d = {c: pa.array(v, type=pa.int64() if c == "row" else pa.string()) for c, v in self.cols.items()}
        d["severity"] = pa.array(self.column("severity"), type=pa.string())
        rules = _rules()
        d["check"] = pa.array([rules[c].name for c in self.cols["code"]], type=pa.string())
        return d


class _Run:
    """Findings of one code and column for many rows of one source.

    ``template`` is a ``str.format`` pattern with positional fields ``{0}``,
    ``{1}``...; ``params`` holds one entry per field: a numpy array (one value
    per row), a pyarrow string array, or a scalar shared by every row.
    """

    __slots__ = ("code", "source", "field", "severity", "rows", "samples", "template", "params")

    def __init__(self, code, source, column, rows, samples, template, params) -> None:
        self.code = code
        self.source = source
        self.field = column  # the finding's column (``column`` is the accessor below)
        self.severity: str | None = None
        self.rows = rows
        self.samples = samples
        self.template = template
        self.params = params

    def __len__(self) -> int:
        return int(self.rows.size)

    def sev(self) -> str:
        return self.severity or _rules()[self.code].severity

    def sample_array(self, lo: int, hi: int):
        import pyarrow as pa
        import pyarrow.compute as pc

        if self.samples is not None:
            return self.samples.slice(lo, hi - lo)
        rows = from_numpy(self.rows[lo:hi]).cast(pa.string())
        return pc.binary_join_element_wise(_text(f"{self.source}#"), rows, _text(""))

    def message_array(self, lo: int, hi: int):
        """The messages of rows lo..hi, built vectorized (pyarrow string kernels)."""
        import pyarrow as pa
        import pyarrow.compute as pc

        parts: list = []
        for literal, field, spec, conv in string.Formatter().parse(self.template):
            if literal:
                parts.append(literal)
            if field is None:
                continue
            parts.append(_param_strings(self.params[int(field)], lo, hi, spec, conv))
        if not any(isinstance(p, (pa.Array, pa.ChunkedArray)) for p in parts):
            return pa.repeat(pa.scalar("".join(parts), type=pa.string()), hi - lo)
        if len(parts) == 1:
            return parts[0]
        return pc.binary_join_element_wise(*[_text(p) if isinstance(p, str) else p for p in parts], _text(""))

    def arrow(self, lo: int, hi: int) -> dict[str, Any]:
        import pyarrow as pa

        n = hi - lo

        def same(value):
            return pa.repeat(pa.scalar(value, type=pa.string()), n)

        return {
            "code": same(self.code),
            "check": same(_rules()[self.code].name),
            "message": self.message_array(lo, hi),
            "sample": self.sample_array(lo, hi),
            "source": same(self.source),
            "row": from_numpy(self.rows[lo:hi], pa.int64()),
            "column": same(self.field),
            "severity": same(self.sev()),
        }

    def column(self, name: str) -> list:
        if name == "row":
            return self.rows.tolist()
        if name == "severity":
            return [self.sev()] * len(self)
        if name in ("code", "source", "column"):
            return [getattr(self, "field" if name == "column" else name)] * len(self)
        out: list = []
        for lo in range(0, len(self), CHUNK_ROWS):
            hi = min(lo + CHUNK_ROWS, len(self))
            arr = self.sample_array(lo, hi) if name == "sample" else self.message_array(lo, hi)
            out.extend(arr.to_pylist())
        return out


def _text(value: str):
    """``value`` as an Arrow string scalar: typed, so pyarrow does not infer its type (which
    imports pandas, see numpy_arrow.keep_pandas_out_of_arrow)."""
    import pyarrow as pa

    return pa.scalar(value, type=pa.string())


def _param_strings(param, lo: int, hi: int, spec: str, conv: str | None):
    """One template field for rows lo..hi: a Python string (a scalar) or a pyarrow string array."""
    import numpy as np
    import pyarrow as pa

    if isinstance(param, np.ndarray):
        part = param[lo:hi]
        if part.dtype.kind in "iub" and not spec:
            return from_numpy(part).cast(pa.string())
        return pa.array([format(format_number(v), spec) for v in part.tolist()], type=pa.string())
    if isinstance(param, (pa.Array, pa.ChunkedArray)):
        return param.slice(lo, hi - lo)
    value = repr(param) if conv == "r" else param
    return format(value if isinstance(value, str) else format_number(value), spec)


def _as_param(p, n: int):
    """Store a template parameter compactly: numpy as is, sequences of text as one Arrow array."""
    import numpy as np
    import pyarrow as pa

    if isinstance(p, (np.ndarray, pa.Array, pa.ChunkedArray)):
        if len(p) != n:
            raise ValueError("one parameter value per row")
        return p
    if isinstance(p, (list, tuple)):
        if len(p) != n:
            raise ValueError("one parameter value per row")
        if all(isinstance(v, str) for v in p):
            return pa.array(p, type=pa.string())
        return np.asarray(p)
    return p


# --------------------------------------------------------------------------- buffer

class FindingBuffer:
    """Columnar, picklable accumulator of findings.

    ``add`` takes one :class:`Finding`; ``add_rows`` takes one code and column
    for many rows of one source at once (numpy arrays), with either a message
    per row or a message template and per-row parameters, which is how the
    vectorized table checks report.  Findings keep the order they were added in.
    """

    def __init__(self) -> None:
        self._segments: list[_Listed | _Run] = []

    def __len__(self) -> int:
        return sum(len(s) for s in self._segments)

    def add(self, finding: Finding) -> None:
        """Append one finding."""
        if not self._segments or not isinstance(self._segments[-1], _Listed):
            self._segments.append(_Listed())
        self._segments[-1].add(finding)

    def extend(self, findings: Iterable[Finding]) -> None:
        """Append findings one by one."""
        for f in findings:
            self.add(f)

    def add_rows(
        self,
        code: str,
        source: str,
        rows: Sequence[int],
        messages: Sequence[str] | None = None,
        column: str | None = None,
        samples: Sequence[str] | None = None,
        *,
        template: str | None = None,
        params: Sequence[Any] = (),
    ) -> None:
        """Append one finding per row of ``source`` (sample ids default to ``source#row``).

        Give either ``messages`` (one string per row) or ``template`` (a
        ``str.format`` pattern of positional fields) with ``params`` (per field:
        a sequence with one value per row, or one scalar for every row).
        Numbers in a template are written as :func:`format_number` writes them.
        """
        import numpy as np
        import pyarrow as pa

        _rules()[code]
        rows = np.asarray(rows, dtype=np.int64).reshape(-1)
        n = int(rows.size)
        if n == 0:
            return
        if (messages is None) == (template is None):
            raise ValueError("give messages or a template, not both")
        if messages is not None:
            template, params = "{0}", (list(messages),)
        params = tuple(_as_param(p, n) for p in params)
        smp = None if samples is None else pa.array(list(samples), type=pa.string())
        if smp is not None and len(smp) != n:
            raise ValueError("one sample per row")
        self._segments.append(_Run(code, source, column, rows, smp, template, params))

    def merge(self, other: "FindingBuffer") -> None:
        """Append every finding of ``other``."""
        self._segments.extend(other._segments)

    def apply_policy(self, options) -> "FindingBuffer":
        """Drop the findings of rules that ``options`` turns off and set every
        finding's effective severity (config overrides); returns self."""
        from datasan.options import effective_severity

        cache: dict[str, str | None] = {}

        def policy(code: str) -> str | None:
            if code not in cache:
                cache[code] = effective_severity(options, code)
            return cache[code]

        def overridden(code: str) -> bool:
            return code in options.severity or any(code.startswith(k.upper()) for k in options.severity)

        kept: list[_Listed | _Run] = []
        for seg in self._segments:
            if isinstance(seg, _Run):
                sev = policy(seg.code)
                if sev is None:
                    continue
                if not seg.severity or overridden(seg.code):
                    seg.severity = sev
                kept.append(seg)
                continue
            keep: list[int] = []
            for i, code in enumerate(seg.cols["code"]):
                sev = policy(code)
                if sev is not None:
                    keep.append(i)
                    if not seg.severity[i] or overridden(code):
                        seg.severity[i] = sev
            if len(keep) != len(seg):
                seg.keep(keep)
            if len(seg):
                kept.append(seg)
        self._segments = kept
        return self

    def error_rows(self):
        """numpy int64 array of the distinct rows of error findings that name a sample."""
        import numpy as np

        parts = []
        for seg in self._segments:
            if isinstance(seg, _Run):
                if seg.sev() == "error":
                    parts.append(seg.rows)  # a run always names its samples
                continue
            parts.append(np.asarray(
                [r for r, s, smp in zip(seg.cols["row"], seg.severity, seg.cols["sample"])
                 if s == "error" and r is not None and smp is not None], dtype=np.int64))
        if not parts:
            return np.empty(0, dtype=np.int64)
        return np.unique(np.concatenate(parts))

    def errors(self) -> Iterator[tuple]:
        """(code, sample, source, row, message) of every error finding that names a sample,
        in order; only these messages are built."""
        for seg in self._segments:
            if isinstance(seg, _Run):
                if seg.sev() != "error":
                    continue
                for lo in range(0, len(seg), CHUNK_ROWS):
                    hi = min(lo + CHUNK_ROWS, len(seg))
                    samples = seg.sample_array(lo, hi).to_pylist()
                    messages = seg.message_array(lo, hi).to_pylist()
                    for k, (smp, msg) in enumerate(zip(samples, messages)):
                        yield seg.code, smp, seg.source, int(seg.rows[lo + k]), msg
                continue
            c = seg.cols
            for i, s in enumerate(seg.column("severity")):
                if s == "error" and c["sample"][i] is not None:
                    yield c["code"][i], c["sample"][i], c["source"][i], c["row"][i], c["message"][i]

    def column(self, name: str) -> list:
        """One column of the buffer (code, message, sample, source, row, column, severity), as a list."""
        out: list = []
        for seg in self._segments:
            out.extend(seg.column(name))
        return out

    def __iter__(self) -> Iterator[Finding]:
        for seg in self._segments:
            if isinstance(seg, _Listed):
                c = seg.cols
                for i in range(len(seg)):
                    yield Finding(code=c["code"][i], message=c["message"][i], sample=c["sample"][i],
                                  source=c["source"][i], row=c["row"][i], column=c["column"][i],
                                  severity=seg.severity[i] or "")
                continue
            for lo in range(0, len(seg), CHUNK_ROWS):
                hi = min(lo + CHUNK_ROWS, len(seg))
                d = seg.arrow(lo, hi)
                for smp, msg, r in zip(d["sample"].to_pylist(), d["message"].to_pylist(), seg.rows[lo:hi].tolist()):
                    yield Finding(code=seg.code, message=msg, sample=smp, source=seg.source, row=r,
                                  column=seg.field, severity=seg.sev())

    def to_arrow(self, severity_overrides: dict[str, str] | None = None) -> "pa.Table":
        """The findings as an Arrow table with the contract's columns and types.

        Messages and sample ids are built here, chunk by chunk, straight into
        Arrow's string buffers (about the sentence's length plus 4 bytes per
        row).  ``severity_overrides`` maps rule codes to severities (from the
        config); a severity set explicitly on a finding wins over the rule
        default but not over an override.
        """
        import pyarrow as pa

        overrides = severity_overrides or {}
        sch = schema()
        tables = []
        for seg in self._segments:
            chunks = [(0, len(seg))] if isinstance(seg, _Listed) else [
                (lo, min(lo + CHUNK_ROWS, len(seg))) for lo in range(0, len(seg), CHUNK_ROWS)]
            for lo, hi in chunks:
                d = seg.arrow() if isinstance(seg, _Listed) else seg.arrow(lo, hi)
                if overrides:
                    d["severity"] = pa.array(
                        [overrides.get(c) or s for c, s in zip(d["code"].to_pylist(), d["severity"].to_pylist())],
                        type=pa.string())
                tables.append(pa.table({c: d[c] for c in COLUMNS}, schema=sch))
        if not tables:
            return sch.empty_table()
        return pa.concat_tables(tables)
