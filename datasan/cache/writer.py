"""Cache entries written on a background thread, off the scan's critical path.

A cold scan stores every shard's results: each a pickle, a checksum, a
temporary file and a rename, a table shard's with its clean part (hundreds of
MB).  Done inline, the driver paid for them between results while the workers
waited for new tasks; on a thread they overlap the workers' decoding and the
merges (file writes and hashing release the GIL).  The queue is bounded so
that results waiting to be stored cannot pile up in memory.
"""

from __future__ import annotations

import queue
import threading
from collections import Counter
from typing import Any, Callable

from datasan.cache import keys
from datasan.cache.bundles import bundle_value
from datasan.cache.store import CacheStore

#: entries waiting to be written at most (the driver waits when the writer falls behind)
QUEUE_ENTRIES = 256


class EntryWriter:
    """Stores entries in order on one daemon thread; :meth:`flush` waits for all of them and
    adds what happened (``stored``, ``uncacheable``, ``store_errors``) to ``counts``."""

    def __init__(self, store: CacheStore, counts: Counter) -> None:
        self.store = store
        self.counts = counts
        self._own: Counter = Counter()  # only the thread touches it until flush
        self._queue: queue.Queue = queue.Queue(QUEUE_ENTRIES)
        self._thread: threading.Thread | None = None

    def put(self, key: str, value: Any, stamps: list, counted: bool) -> None:
        """Store ``value`` under ``key`` unless a file of ``stamps`` changed since it was
        stamped (then the result may mix two versions and is not kept); ``counted``:
        the entry counts as ``stored`` (a unit, not an index)."""
        self.submit(lambda: self._write(key, value, stamps, counted))

    def put_bundle(self, key: str, stamps: list, units: list[dict[str, Any]], values: list) -> None:
        """Store a shard's bundle under its stat key ``key`` (made of ``stamps``): each unit's
        content key beside its value, None for a unit without a key or whose file changed
        while it was read; units not answered from the cache count as ``stored``."""
        self.submit(lambda: self._write_bundle(key, stamps, units, values))

    def submit(self, job: Callable[[], None]) -> None:
        """Run ``job`` on the writer thread, after the jobs handed over before it."""
        if self._thread is None:
            self._thread = threading.Thread(target=self._run, name="datasan-cache-writer", daemon=True)
            self._thread.start()
        self._queue.put(job)

    def flush(self) -> None:
        """Wait until every entry handed over is written, then report the counts."""
        if self._thread is None:
            return
        self._queue.put(None)
        self._thread.join()
        self._thread = None
        self.counts.update(self._own)
        self._own = Counter()

    def _run(self) -> None:
        while (job := self._queue.get()) is not None:
            try:
                job()
            except Exception:  # a writer that died would leave flush waiting: count it and go on
                self._own["store_errors"] += 1

    def _write(self, key: str, value: Any, stamps: list, counted: bool) -> None:
        if any(keys.stamp_of(p) != s for p, s in stamps if s is not None):
            self.store.abandon(value)
            if counted:
                self._own["uncacheable"] += 1  # a file changed while it was read
            return
        try:
            self.store.put(key, value)
        except Exception:  # a full disk, a result that does not pickle: the scan goes on uncached
            self.store.abandon(value)
            self._own["store_errors"] += 1
            return
        if counted:
            self._own["stored"] += 1

    def _write_bundle(self, key: str, stamps: list, units: list[dict[str, Any]], values: list) -> None:
        if any(keys.stamp_of(p) != s for p, s in stamps):
            self._own["uncacheable"] += sum(1 for u in units if u["key"] is not None and not u["hit"])
            return  # the stat key no longer says what the shard holds
        unit_keys = []
        for u in units:
            if u["key"] is not None and any(keys.stamp_of(p) != s for p, s in u["stamps"] if s is not None):
                self._own["uncacheable"] += 1  # a file changed while it was read
                unit_keys.append(None)
            else:
                unit_keys.append(u["key"])
        if all(k is None for k in unit_keys):
            return
        try:
            self.store.put(key, bundle_value(unit_keys, values))
        except Exception:
            self._own["store_errors"] += 1
            return
        self._own["stored"] += sum(1 for u, k in zip(units, unit_keys) if k is not None and not u["hit"])
