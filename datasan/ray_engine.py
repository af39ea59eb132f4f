"""An :class:`~datasan.engine.Engine` on Ray core tasks, for a scan that outgrows one machine.

Each shard function call is one Ray task.  Ray Data is not used: its
``read_images`` wants images of one size and one bad block fails the job,
while a datasan shard turns a bad sample into a finding.  Shard results are
small (findings, mergeable statistics, row hashes): workers write the clean
rows of a table shard to the run's staging place themselves (a local folder,
or the staging prefix in the store of a remote ``--out``), so no row data
comes back through the driver.  ``ray`` is imported only when this engine is
built (``--engine ray``).
"""

from __future__ import annotations

import os
from collections import deque
from typing import Any, Callable, Iterable, Iterator, TypeVar

from datasan.errors import UsageError
from datasan.fs import storage_env

T = TypeVar("T")
R = TypeVar("R")

INSTALL_HINT = 'pip install "datasan[ray]"'
#: how often Ray runs a task again when its worker process or node dies
MAX_RETRIES = 3


def import_ray() -> Any:
    """The ``ray`` module; UsageError (exit 2) with the install command when it is missing."""
    try:
        import ray
    except ImportError:
        raise UsageError(f"--engine ray needs Ray, which is not installed: {INSTALL_HINT}") from None
    return ray


def _call(fn: Callable[[Any], Any], task: Any) -> Any:
    """The body of every Ray task: one shard function on one task."""
    return fn(task)


def _missing(paths: list[str]) -> tuple[str, list[str]]:
    """(this machine's name, those of ``paths`` it does not see): runs on one node."""
    import socket

    return socket.gethostname(), [p for p in paths if not os.path.exists(p)]


class RayEngine:
    """Runs shard functions as Ray tasks, results in task order, a bounded number in flight.

    ``address``: a running cluster (``auto``, ``ray://host:10001``, ``host:6379``);
    None uses ``RAY_ADDRESS`` when set, else starts a local instance with this
    machine's cores.  When Ray is already initialised in this process (a
    notebook, a test session), that instance is used and left running.
    ``workers`` > 0 caps the tasks that run at once (default: every CPU of the
    cluster).
    """

    def __init__(self, address: str | None = None, workers: int = 0, max_retries: int = MAX_RETRIES) -> None:
        self._ray = import_ray()
        self.address = address or os.environ.get("RAY_ADDRESS") or None
        self.workers = max(0, int(workers))
        self.max_retries = max_retries
        #: a hint for process pools; Ray workers stay alive between tasks, so imports are paid once anyway
        self.preload: set[str] = set()
        self._owned = False  # this engine started the Ray instance (and stops it on close)
        self._remote = None
        self._pending: list = []

    def __enter__(self) -> "RayEngine":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _connect(self) -> Any:
        ray = self._ray
        if not ray.is_initialized():
            if self.address:
                # Ray Client (ray://) takes the server's settings; a direct connection keeps the
                # workers' logs off this terminal
                kw = {} if self.address.startswith("ray://") else {"log_to_driver": False}
                ray.init(address=self.address, **kw)
            else:
                # "local": a new instance even when `ray start` left one on this machine (which
                # ray.init() would join, and then refuse num_cpus)
                ray.init(address="local", num_cpus=os.cpu_count() or 1, include_dashboard=False,
                         log_to_driver=False)
            self._owned = True
        if self._remote is None:
            # a system failure (the worker process or its node died) runs the task again;
            # shard functions are pure and a retry writes its part file again from the start,
            # so it gives the same result.  An exception raised by the function is not retried.
            remote = ray.remote(max_retries=self.max_retries, retry_exceptions=False)(_call)
            env = storage_env()
            # workers of a running cluster were started without the driver's storage settings
            self._remote = remote.options(runtime_env={"env_vars": env}) if env else remote
        return ray

    @property
    def parallelism(self) -> int:
        """Tasks run at once: the cluster's CPUs, capped by ``workers`` when it is set."""
        ray = self._connect()
        cpus = max(1, int(ray.cluster_resources().get("CPU", 1)))
        return min(cpus, self.workers) if self.workers else cpus

    def check_shared_paths(self, paths: list[str]) -> None:
        """UsageError (exit 2) when a node of the cluster does not see one of ``paths``.

        Workers read PATH and write their clean parts to the run's staging folder
        by the driver's paths, so on several machines those must lie on a filesystem
        every node mounts at the same place; without this check a node that does not
        see them would turn whole sources into internal errors.
        """
        if not paths:
            return
        ray = self._connect()
        from ray.util.scheduling_strategies import NodeAffinitySchedulingStrategy

        nodes = [n["NodeID"] for n in ray.nodes() if n.get("Alive") and n.get("Resources", {}).get("CPU")]
        probe = ray.remote(num_cpus=0)(_missing)
        env = storage_env()
        refs = [probe.options(scheduling_strategy=NodeAffinitySchedulingStrategy(node, soft=False),
                              **({"runtime_env": {"env_vars": env}} if env else {})).remote(list(paths))
                for node in nodes]
        for host, missing in ray.get(refs):
            if missing:
                raise UsageError(f"node {host} of the Ray cluster does not see {', '.join(missing)}: on several "
                                 "machines PATH and the staging folder (the temporary folder, or a local --out) "
                                 "must be on a filesystem every node mounts at the same path, or be s3:// / gs:// "
                                 "URIs (PATH and --out)")

    def map_ordered(self, fn: Callable[[T], R], tasks: Iterable[T]) -> Iterator[R]:
        """Yield ``fn(task)`` for every task, in task order, with at most 2 x parallelism in flight."""
        ray = self._connect()
        limit = 2 * self.parallelism
        fn_ref = ray.put(fn)  # shipped once, not with every task
        in_flight: deque = deque()
        it = iter(tasks)
        more = True
        while True:
            while more and len(in_flight) < limit:
                try:
                    task = next(it)
                except StopIteration:
                    more = False
                    break
                ref = self._remote.remote(fn_ref, task)
                in_flight.append(ref)
                self._pending.append(ref)
            if not in_flight:
                return
            head = in_flight.popleft()
            ray.wait([head], num_returns=1, fetch_local=True)
            result = ray.get(head)
            self._pending.remove(head)
            yield result

    def close(self) -> None:
        """Cancel tasks still in flight (an abandoned map); stop Ray when this engine started it."""
        ray = self._ray
        pending, self._pending = self._pending, []
        if ray.is_initialized():
            for ref in pending:
                try:
                    ray.cancel(ref, force=True)
                except Exception:  # noqa: BLE001 - a task that already finished cannot be cancelled
                    pass
        if self._owned:
            self._owned = False
            self._remote = None
            ray.shutdown()
