"""Limits on the user code the probe runs: a time limit, and no way to end the scan.

A user's probe model (``--probe-model``) is arbitrary code.  It may hang, or
call ``sys.exit()``; neither may cost the user the scan.  :func:`time_limit`
interrupts the probe of one source after a number of seconds, and
:func:`absorbs` says which exceptions from user code the probe turns into a
DS406 finding instead of letting them end the scan.
"""

from __future__ import annotations

import signal
import threading
from contextlib import contextmanager
from typing import Iterator

from datasan.dropped import retry_dropped


class ProbeTimeout(BaseException):
    """The probe of one source ran past ``probe_timeout``.

    A BaseException, like KeyboardInterrupt, so that a user model's own
    ``except Exception`` does not swallow it.
    """


def absorbs(exc: BaseException) -> bool:
    """True for an exception from user code that the probe reports (DS406) and survives.

    Everything, SystemExit included (a model that calls ``sys.exit()`` must not
    end the scan with exit 0 and no outputs), except KeyboardInterrupt: SIGINT
    raises it in whatever code runs, so it is the user asking to stop, and
    GeneratorExit, Python's own, and the probe's own ProbeTimeout.
    """
    return not isinstance(exc, (KeyboardInterrupt, GeneratorExit, ProbeTimeout))


@contextmanager
def time_limit(seconds: float | None) -> Iterator[None]:
    """Raise :class:`ProbeTimeout` in the block after ``seconds`` (None or 0: no limit).

    Uses SIGALRM, so it interrupts Python code and sleeps but not one long C call
    (a single huge matrix product ends first); it needs the main thread of a POSIX
    process and is a no-op elsewhere (a scan started from another thread).
    """
    usable = (bool(seconds) and hasattr(signal, "setitimer")
              and threading.current_thread() is threading.main_thread())
    if not usable:
        yield
        return

    def on_alarm(signum, frame):
        raise ProbeTimeout(f"ran longer than the probe's time limit of {seconds:g} s")

    previous = signal.signal(signal.SIGALRM, on_alarm)
    # an alarm whose ProbeTimeout Python dropped (see datasan.dropped) rings again in a moment
    unhook = retry_dropped(ProbeTimeout, lambda exc: signal.setitimer(signal.ITIMER_REAL, REARM_S))
    signal.setitimer(signal.ITIMER_REAL, float(seconds))
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)
        unhook()


#: seconds after which a time limit whose ProbeTimeout Python dropped rings again
REARM_S = 0.05
