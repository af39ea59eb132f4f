"""A longer fuzz run of the scan's invariants than CI's (fresh randomness each run).

    python bench/fuzz.py [EXAMPLES]      # default 500

Runs tests/test_fuzz.py's properties with EXAMPLES hostile folders (and a tenth
of that with the probe on), prints hypothesis' statistics and the wall time, and
exits non-zero when any invariant broke (the failing folder is printed, shrunk).
"""

from __future__ import annotations

import os
import subprocess
import sys
import time

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def main() -> int:
    examples = int(sys.argv[1]) if len(sys.argv) > 1 else 500
    env = dict(os.environ, DATASAN_FUZZ_EXAMPLES=str(examples), DATASAN_FUZZ_RANDOM="1")
    t0 = time.perf_counter()
    p = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider",
                        "--hypothesis-show-statistics", "tests/test_fuzz.py"], cwd=REPO, env=env)
    print(f"fuzz: {examples} hostile folders (+{max(3, examples // 10)} with the probe), "
          f"{time.perf_counter() - t0:.0f} s, {'all invariants held' if p.returncode == 0 else 'FAILED'}")
    return p.returncode


if __name__ == "__main__":
    sys.exit(main())
