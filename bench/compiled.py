"""Time datasan as it runs once installed: with its modules compiled to bytecode.

``pip install datasan`` compiles every module to a ``.pyc`` at install time, and
an editable checkout writes them on first import, unless
``PYTHONDONTWRITEBYTECODE`` is set (as it is on CI machines and in some
containers): then every ``datasan`` process, and every worker it starts,
compiles datasan's modules from source again, about 0.3 s of CPU each time.
The timing benchmarks call :func:`compile_datasan` first so that they measure
the scan, not the compiler, and say that they did.
"""

from __future__ import annotations

import compileall
import os


def compile_datasan() -> str:
    """Write the bytecode of the datasan package being benchmarked (the checkout's
    ``__pycache__`` folders, ignored by git); returns a line saying so."""
    import datasan

    root = os.path.dirname(os.path.abspath(datasan.__file__))
    ok = compileall.compile_dir(root, quiet=1)
    return f"datasan's modules compiled to bytecode first (as an installed package has them): {root}" + (
        "" if ok else " (some failed to compile)")
