"""Keep one failing source from sinking the scan.

An exception inside a source kind is a datasan bug, never bad data.  It must
not cost the user the results of every other source, and it must not pass
silently either: the failing source's files are all quarantined under DS011
(internal-error), naming the exception and where it was raised, and the CLI
exits 3 after writing every output.
"""

from __future__ import annotations

import os
import re
import traceback
from typing import Any

from datasan.checks import files as file_rules
from datasan.errors import UsageError
from datasan.findings import FindingBuffer
from datasan.sources.base import ScanContext, Source, SourceOutcome

_PACKAGE = os.path.dirname(os.path.abspath(__file__))
_FRAME = re.compile(r'File "(?P<file>[^"]+)", line (?P<line>\d+), in (?P<func>\S+)')


def _where(frames: list[tuple[str, int, str]]) -> str:
    """The deepest frame inside datasan ('datasan/x.py:12 in f'), else the deepest frame."""
    inside = [f for f in frames if os.path.abspath(f[0]).startswith(_PACKAGE + os.sep)]
    chosen = (inside or frames or [("?", 0, "?")])[-1]
    path = chosen[0]
    if path.startswith(_PACKAGE + os.sep):
        path = "datasan/" + os.path.relpath(path, _PACKAGE).replace(os.sep, "/")
    return f"{path}:{chosen[1]} in {chosen[2]}"


def _frames(exc: BaseException) -> list[tuple[str, int, str]]:
    # a worker process's exception carries its traceback as text in __cause__
    remote = getattr(exc.__cause__, "tb", None)
    if isinstance(remote, str):
        return [(m["file"], int(m["line"]), m["func"]) for m in _FRAME.finditer(remote)]
    return [(f.filename, f.lineno or 0, f.name) for f in traceback.extract_tb(exc.__traceback__)]


def describe_exception(exc: BaseException) -> str:
    """'Type: message (at datasan/module.py:LINE in function)', one line, message cut to 300 chars."""
    message = " ".join(str(exc).split())
    if len(message) > 300:
        message = message[:297] + "..."
    return f"{type(exc).__name__}: {message} (at {_where(_frames(exc))})"


def failed_outcome(source: Source, reason: str) -> SourceOutcome:
    """The outcome of a source datasan failed on: every file quarantined under DS011.

    Its rows or images could not be counted, so the unit is the file (sample =
    the file's path, row empty); kept is 0 and seen the number of files.
    """
    fb = FindingBuffer()
    fb.extend(file_rules.internal_error(source.name, [f.rel for f in source.files], reason))
    return SourceOutcome(source=source, unit="files", seen=len(source.files), kept=0, findings=fb,
                         report={"internal_error": reason})


def run_kind(kind: Any, sources: list[Source], ctx: ScanContext
             ) -> tuple[list[SourceOutcome], FindingBuffer, list[dict[str, str]]]:
    """``kind.run(sources)``, isolating failures: (outcomes, loose findings, internal errors).

    When the kind raises, each source runs again on its own, so only the
    sources that still raise are replaced by :func:`failed_outcome`.
    """
    try:
        outcomes, extra = kind.run(sources, ctx)
        return outcomes, extra, []
    except UsageError:  # the options cannot work (a --target in no table): exit 2, not a bug
        raise
    except Exception as exc:  # noqa: BLE001 - any exception here is a datasan bug
        _reset_engine(ctx)
        if len(sources) == 1:
            return _failed([(sources[0], exc)], kind)
    outcomes, extra, failures = [], FindingBuffer(), []
    for source in sources:
        try:
            oc, more = kind.run([source], ctx)
            outcomes.extend(oc)
            extra.merge(more)
        except UsageError:
            raise
        except Exception as exc:  # noqa: BLE001
            _reset_engine(ctx)
            failures.append((source, exc))
    failed, _, errors = _failed(failures, kind)
    return outcomes + failed, extra, errors


def _failed(failures: list[tuple[Source, BaseException]], kind: Any
            ) -> tuple[list[SourceOutcome], FindingBuffer, list[dict[str, str]]]:
    outcomes, errors = [], []
    for source, exc in failures:
        reason = describe_exception(exc)
        outcomes.append(failed_outcome(source, reason))
        errors.append({"source": source.name, "kind": getattr(kind, "name", "?"), "error": reason})
    return outcomes, FindingBuffer(), errors


def _reset_engine(ctx: ScanContext) -> None:
    # a worker that died leaves the process pool broken for every later task; close() drops
    # the pool before it shuts it down, so the next map starts afresh even when shutdown fails
    try:
        ctx.engine.close()
    except Exception:  # noqa: BLE001
        pass


def broken_counts(outcomes: list[SourceOutcome], quarantined: dict[str, int]) -> list[int]:
    """Indexes of the outcomes whose kept + quarantined != seen."""
    return [i for i, oc in enumerate(outcomes)
            if oc.kept + quarantined.get(oc.source.name, 0) != oc.seen]


def invariant_reason(oc: SourceOutcome, quarantined: int) -> str:
    """The DS011 reason for an outcome that lost or invented samples."""
    return (f"InvariantError: kept {oc.kept} + quarantined {quarantined} != {oc.unit} seen {oc.seen} "
            f"(at datasan/pipeline.py in scan)")
