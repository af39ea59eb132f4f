"""Where shard functions run.

A shard function is a pure, picklable, module-level function of one task.
:class:`Engine` is what the pipeline and the source kinds use;
:class:`LocalEngine` runs tasks in this process (one worker, or one task) or
on a local process pool.  Another engine (a cluster) is one module with a
class that offers the same protocol.  Results come back in task order with a
bounded number of tasks in flight, so memory stays flat however many shards
there are.
"""

from __future__ import annotations

import os
import sys
import threading
import types
from collections import deque
from contextlib import contextmanager
from multiprocessing import context as mp_context
from typing import Callable, Iterable, Iterator, Protocol, TypeVar

T = TypeVar("T")
R = TypeVar("R")


class Engine(Protocol):
    """Where shard functions run: the seam between the pipeline and an executor.

    ``map_ordered`` may run tasks anywhere (this process, a pool, a cluster),
    so ``fn`` and every task must pickle and ``fn`` must be a module-level
    function of datasan.  ``preload`` is a hint: modules each worker will need
    (a kind adds its shard module's heavy imports); an engine may import them
    once per worker ahead of the tasks, or ignore them.
    """

    #: module names worth importing in every worker before tasks arrive
    preload: set[str]

    @property
    def parallelism(self) -> int:
        """How many tasks run at once (kinds size their shards by it)."""

    def map_ordered(self, fn: Callable[[T], R], tasks: Iterable[T]) -> Iterator[R]:
        """Yield ``fn(task)`` for every task, in task order."""

    def close(self) -> None:
        """Free the workers; the engine starts afresh when used again (after a worker died, too)."""

    def __enter__(self) -> "Engine": ...

    def __exit__(self, *exc: object) -> None: ...


def _init_worker(storage: dict[str, str] | None = None) -> None:
    # the forkserver that forks the workers keeps the environment it started with, so a
    # library caller's later store settings (endpoint, keys) are handed over here
    if storage is not None:
        from datasan.fs import adopt_storage_env

        adopt_storage_env(storage)
    # Each worker is one core's worth of work: keep Arrow and BLAS from
    # oversubscribing the machine with their own thread pools.  Arrow reads
    # these variables when its pools start, so workers that never touch Arrow
    # (image shards) do not pay ~0.3 s of CPU importing pyarrow here.
    os.environ.setdefault("OMP_NUM_THREADS", "1")  # Arrow's CPU pool follows it too
    os.environ.setdefault("ARROW_IO_THREADS", "2")


_MAIN_LOCK = threading.Lock()


@contextmanager
def _main_hidden() -> Iterator[None]:
    """While a worker process is started, show multiprocessing a ``__main__`` with
    neither ``__file__`` nor ``__spec__``.

    forkserver and spawn workers re-run the parent's main module (``spawn.prepare``
    acts on ``init_main_from_path`` / ``init_main_from_name``), so an unguarded
    script that calls ``datasan.scan`` would scan again in every worker and break
    the pool.  Shard functions and their tasks live in datasan, so the workers
    never need the user's main module.  Only ``sys.modules`` is swapped, never
    the user's module object, and only for the moment the preparation data is
    taken.
    """
    main = sys.modules.get("__main__")
    if main is None or (getattr(main, "__spec__", None) is None and getattr(main, "__file__", None) is None):
        yield  # a notebook or ``python -c``: nothing for a worker to re-run
        return
    with _MAIN_LOCK:
        sys.modules["__main__"] = types.ModuleType("__main__")
        try:
            yield
        finally:
            sys.modules["__main__"] = main


class _SpawnProcess(mp_context.SpawnProcess):
    @staticmethod
    def _Popen(process_obj):
        with _main_hidden():
            return mp_context.SpawnProcess._Popen(process_obj)


class _SpawnContext(mp_context.SpawnContext):
    Process = _SpawnProcess


if hasattr(mp_context, "ForkServerContext"):  # not on Windows

    class _ForkServerProcess(mp_context.ForkServerProcess):
        @staticmethod
        def _Popen(process_obj):
            with _main_hidden():
                return mp_context.ForkServerProcess._Popen(process_obj)

    class _ForkServerContext(mp_context.ForkServerContext):
        Process = _ForkServerProcess


def _pool_context():
    """A forkserver (else spawn) context whose workers do not re-run ``__main__``."""
    import multiprocessing as mp

    # forkserver/spawn keep workers free of the parent's state (and of torch's
    # threads when the probe already imported it).
    if "forkserver" in mp.get_all_start_methods():
        return _ForkServerContext()  # noqa: F821 (defined wherever forkserver exists)
    return _SpawnContext()


class LocalEngine:
    """An :class:`Engine` that runs tasks in-process or on a pool of ``workers`` local processes."""

    def __init__(self, workers: int = 1) -> None:
        self.workers = max(1, int(workers))
        self._pool = None
        #: modules the forkserver imports once, before it forks the workers (a kind
        #: adds its shard module's heavy imports: each worker then skips them)
        self.preload: set[str] = set()

    def __enter__(self) -> "LocalEngine":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    @property
    def parallelism(self) -> int:
        """The number of worker processes."""
        return self.workers

    def close(self) -> None:
        """Shut the pool down; the next map starts a new one."""
        pool, self._pool = self._pool, None  # dropped first: a broken pool must not outlive close
        if pool is not None:
            pool.shutdown(wait=True, cancel_futures=True)

    def _executor(self):
        if self._pool is None:
            from concurrent.futures import ProcessPoolExecutor

            from datasan.fs import storage_env

            context = _pool_context()
            if context.get_start_method() == "forkserver" and self.preload:
                context.set_forkserver_preload(sorted(self.preload))
            self._pool = ProcessPoolExecutor(
                max_workers=self.workers, mp_context=context, initializer=_init_worker, initargs=(storage_env(),)
            )
        return self._pool

    def map_ordered(self, fn: Callable[[T], R], tasks: Iterable[T]) -> Iterator[R]:
        """Yield ``fn(task)`` for every task, in task order."""
        tasks = list(tasks)
        if self.workers == 1 or len(tasks) <= 1:
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


def make_engine(options) -> Engine:
    """The engine ``options.engine`` names; UsageError (exit 2) when it cannot be built here
    (Ray not installed).  Nothing is started yet: engines start their workers on first use."""
    if options.engine == "ray":
        from datasan.ray_engine import RayEngine

        return RayEngine(options.ray_address, workers=options.workers)
    return LocalEngine(options.resolved_workers())
