"""Where shard functions run.

A shard function is a pure, picklable, module-level function of one task.
:class:`LocalEngine` runs them in this process (one worker, or one task) or on
a local process pool; a distributed engine only has to offer the same
``map_ordered``.  Results come back in task order with a bounded number of
tasks in flight, so memory stays flat however many shards there are.
"""

from __future__ import annotations

import os
from collections import deque
from typing import Callable, Iterable, Iterator, TypeVar

T = TypeVar("T")
R = TypeVar("R")


def _init_worker() -> None:
    # Each worker is one core's worth of work: keep Arrow and BLAS from
    # oversubscribing the machine with their own thread pools.  Arrow reads
    # these variables when its pools start, so workers that never touch Arrow
    # (image shards) do not pay ~0.3 s of CPU importing pyarrow here.
    os.environ.setdefault("OMP_NUM_THREADS", "1")  # Arrow's CPU pool follows it too
    os.environ.setdefault("ARROW_IO_THREADS", "2")


def _main_importable() -> bool:
    """False when ``__main__`` claims a file that does not exist (``python - < script``,
    ``python -c`` with a fake __file__): forkserver and spawn workers re-import the
    main module and would die, so such a caller runs its shards in-process."""
    import sys

    main_file = getattr(sys.modules.get("__main__"), "__file__", None)
    return main_file is None or os.path.exists(main_file)


class LocalEngine:
    """Runs tasks in-process or on a pool of ``workers`` processes."""

    def __init__(self, workers: int = 1) -> None:
        self.workers = max(1, int(workers))
        self._pool = None
        #: modules the forkserver imports once, before it forks the workers (a kind
        #: adds its shard module's heavy imports: each worker then skips them)
        self.preload: set[str] = set()

    def __enter__(self) -> "LocalEngine":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def close(self) -> None:
        if self._pool is not None:
            self._pool.shutdown(wait=True, cancel_futures=True)
            self._pool = None

    def _executor(self):
        if self._pool is None:
            import multiprocessing as mp
            from concurrent.futures import ProcessPoolExecutor

            # forkserver/spawn keep workers free of the parent's state (and of
            # torch's threads when the probe already imported it).
            method = "forkserver" if "forkserver" in mp.get_all_start_methods() else "spawn"
            context = mp.get_context(method)
            if method == "forkserver" and self.preload:
                context.set_forkserver_preload(sorted(self.preload))
            self._pool = ProcessPoolExecutor(
                max_workers=self.workers, mp_context=context, initializer=_init_worker
            )
        return self._pool

    def map_ordered(self, fn: Callable[[T], R], tasks: Iterable[T]) -> Iterator[R]:
        """Yield ``fn(task)`` for every task, in task order."""
        tasks = list(tasks)
        if self.workers == 1 or len(tasks) <= 1 or not _main_importable():
            for t in tasks:
                yield fn(t)
            return
        pool = self._executor()
        in_flight: deque = deque()
        it = iter(tasks)
        limit = 2 * self.workers
        for t in it:
            in_flight.append(pool.submit(fn, t))
            if len(in_flight) >= limit:
                break
        while in_flight:
            fut = in_flight.popleft()
            result = fut.result()
            nxt = next(it, None)
            if nxt is not None:
                in_flight.append(pool.submit(fn, nxt))
            yield result
