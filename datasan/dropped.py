"""Signal handlers whose exception Python drops.

A Python signal handler runs between two bytecodes of the main thread, which
may be inside a weakref callback, a ``__del__`` or a gc callback.  An
exception raised there is printed ("Exception ignored in ...") and dropped:
the run goes on as if the signal never came.  :func:`retry_dropped` installs a
``sys.unraisablehook`` that sees such an exception and asks for the signal
again; every other unraisable exception goes to the hook it replaced.
"""

from __future__ import annotations

import sys
from typing import Callable


def retry_dropped(kind: type[BaseException], again: Callable[[BaseException], None]) -> Callable[[], None]:
    """Call ``again(exc)`` for each dropped exception of type ``kind``; returns the function that
    puts the previous hook back (when this one is still installed: hooks nest)."""
    previous = sys.unraisablehook

    def dropped(unraisable) -> None:
        if isinstance(unraisable.exc_value, kind):
            again(unraisable.exc_value)
        else:
            previous(unraisable)

    sys.unraisablehook = dropped

    def restore() -> None:
        if sys.unraisablehook is dropped:
            sys.unraisablehook = previous

    return restore
