"""An :class:`~datasan.engine.Engine` that answers cached shard results from the cache and
sends only the missing work to the engine it wraps.

For a cached shard function (``specs.py``) every unit (a task, or a file of a
task) gets a key from the content of the files it reads; units whose entry is
stored and verified are answered from it, the others run on the wrapped engine
(missing files of several tasks regrouped into shards of the usual size) and
their results are stored.  Results are yielded in task order, as the protocol
asks, and an answer from the cache equals the one the function would give.
"""

from __future__ import annotations

from collections import Counter
from typing import Any, Callable, Iterable, Iterator

from datasan.cache import keys
from datasan.cache.bundles import BundleIndex, bundle_values
from datasan.cache.specs import spec_for
from datasan.cache.store import CacheStore, MissingBlob
from datasan.cache.writer import EntryWriter


class _Identities:
    """Content identities of input files, remembered for the scan (a table's shards share one).

    A local file's identity is the BLAKE2b of its bytes; for files of at least
    ``STAT_FAST_PATH_BYTES`` the stat fast path keeps that digest in the cache under a
    key made of the file's path, size, mtime, ctime and inode, so an untouched large
    file is not read again (a small one is hashed again: cheaper than reading an
    entry).  A remote object's identity is its size and modification time from the
    store's listing.
    """

    def __init__(self, store: CacheStore, counts: Counter) -> None:
        self.store = store
        self.counts = counts
        self.known: dict[str, tuple[str | None, keys.Stamp | None]] = {}

    def of(self, path: str) -> tuple[str | None, keys.Stamp | None]:
        got = self.known.get(path)
        if got is None:
            got = self.known[path] = self._compute(path)
        return got

    def _compute(self, path: str) -> tuple[str | None, keys.Stamp | None]:
        from datasan import fs

        if fs.is_remote(path):
            return keys.remote_identity(path), None
        stamp = keys.stamp_of(path)
        if stamp is None:
            return None, None
        fast = keys.stat_key(path, stamp) if stamp.size >= keys.STAT_FAST_PATH_BYTES else None
        if fast is not None:
            digest = self.store.get(fast)
            if isinstance(digest, str):
                return digest, stamp
        try:
            digest = keys.hash_file(path)
        except OSError:
            return None, None
        if keys.stamp_of(path) != stamp:  # it changed while it was read
            return None, None
        self.counts["hashed_files"] += 1
        if fast is not None:
            try:
                self.store.put(fast, digest)
            except OSError:
                pass
        return digest, stamp


class CachingEngine:
    """Wraps ``inner`` (any Engine) with the cache in ``store``; counts what it did."""

    def __init__(self, inner: Any, store: CacheStore) -> None:
        self.inner = inner
        self.store = store
        self.counts: Counter = Counter()
        self._ids = _Identities(store, self.counts)
        self._writer = EntryWriter(store, self.counts)
        #: whether some shard went to the wrapped engine (else its workers stayed idle)
        self.sent_work = False
        #: called once, when the first shard is computed rather than answered from the cache
        self.work_hooks: list[Callable[[], None]] = []

    # ------------------------------------------------------------------ the Engine protocol
    @property
    def preload(self) -> set[str]:
        return self.inner.preload

    @property
    def parallelism(self) -> int:
        return self.inner.parallelism

    def close(self) -> None:
        self.flush()
        self.inner.close()

    def flush(self) -> None:
        """Wait until every entry of this scan is written (the counts are final then)."""
        self._writer.flush()

    def __enter__(self) -> "CachingEngine":
        self.inner.__enter__()
        return self

    def __exit__(self, *exc: object) -> None:
        try:
            self.flush()
        finally:
            self.inner.__exit__(*exc)

    def __getattr__(self, name: str) -> Any:  # optional engine methods (check_shared_paths)
        return getattr(self.inner, name)

    def map_ordered(self, fn: Callable, tasks: Iterable) -> Iterator:
        """Yield ``fn(task)`` for every task, in order, from the cache where it can."""
        found = spec_for(fn)
        if found is None:
            yield from self.inner.map_ordered(fn, tasks)
            return
        spec, run_fn = found
        spec.store = self.store
        tasks = list(tasks)
        plans, groups = [], []
        indexes: dict[str, BundleIndex] = {}
        for t in tasks:
            try:
                shared = keys.key_of(fn_name(spec), spec.task_parts(t))
            except TypeError:  # a value the key recipe does not know: not cached
                shared = None
            group = self._group(spec, t, shared)
            groups.append(group)
            if group is None:
                plans.append([self._unit(spec, t, item, shared) for item in spec.items(t)])
                continue
            if shared not in indexes:
                indexes[shared] = BundleIndex(self.store, shared)
            group["index"] = index = indexes[shared]
            if group["values"] is not None:
                index.record(group["units"], group["key"])
                plans.append([{"key": k, "hit": True, "value": v, "stamps": [], "bundled": True}
                              for k, v in zip(group["units"], group["values"])])
            else:
                plans.append([self._unit(spec, t, item, shared, index, known)
                              for item, known in zip(spec.items(t), group["items"])])
        missing = [(i, j) for i, plan in enumerate(plans) for j, u in enumerate(plan) if not u["hit"]]
        computed = self._computed(spec, run_fn, tasks, plans, missing)
        last = len(tasks) - 1
        for n, (task, plan, group) in enumerate(zip(tasks, plans, groups)):
            results = []
            for item, unit in zip(spec.items(task), plan):
                if unit["hit"]:
                    results.append(self._answer(spec, fn, task, item, unit))
                else:
                    r = next(computed)
                    if group is None:
                        self._store(spec, task, item, unit, r)
                    results.append(r)
            if group is not None and group["values"] is None:
                self._store_group(spec, task, group, plan, results)
            if n == last:  # before the last yield: a caller may not ask past the last task
                self._store_indexes(indexes, groups)
            yield spec.join(task, results)

    def _store_indexes(self, indexes: dict[str, BundleIndex], groups: list) -> None:
        """Write the bundle indexes when a shard's bundle was written (else they hold them all),
        with the stamps of the files of the shards answered whole."""
        if any(g is not None and g["values"] is None for g in groups):
            for g in groups:
                if g is not None and g["values"] is not None:
                    g["index"].record_files(g["items"], g["units"])
            for index in indexes.values():
                self._writer.put(index.key, index.merged(), [], counted=False)

    # ------------------------------------------------------------------ a task's files at once
    def _group(self, spec, task, shared: str | None) -> dict[str, Any] | None:
        """The stat fast path of a task of many small files (an image shard): one entry holds
        every file's stored value under a key of their names, sizes, mtimes, ctimes and
        inodes, so an untouched shard costs one read instead of one per file.  A shard with
        a changed file misses it and goes file by file (by content)."""
        if not spec.per_file or shared is None:
            return None
        parts, checks = [], []
        for item in spec.items(task):
            paths, item_parts = spec.key_parts(task, item)
            stamps = [keys.stamp_of(p) for p in paths]
            if any(s is None for s in stamps):
                return None
            checks.extend(zip(paths, stamps))
            parts.append((item_parts, list(zip(paths, stamps))))
        key = keys.stat_group_key(shared, parts)
        stored = self.store.get(key)
        values = bundle_values(stored, len(parts))
        return {"key": key, "values": values, "units": stored["units"] if values is not None else None,
                "stamps": checks, "items": parts}

    def _store_group(self, spec, task, group, plan, results) -> None:
        """Write the shard's bundle (every unit's value under its content key) and index it."""
        try:  # a file answered from an earlier bundle keeps its packed value (no unpack + pack)
            values = [u["packed"] if "packed" in u else spec.pack(task, item, r)
                      for item, r, u in zip(spec.items(task), results, plan)]
        except Exception:
            self.counts["store_errors"] += 1
            return
        index, unit_keys = group["index"], [u["key"] for u in plan]
        index.record(unit_keys, group["key"])
        # each file with the stamp it had when it was keyed (read, or known from an earlier scan)
        index.record_files([(parts, u["stamps"]) for (parts, _), u in zip(group["items"], plan)], unit_keys)
        self._writer.put_bundle(group["key"], group["stamps"], plan, values)

    # ------------------------------------------------------------------ one unit
    def _unit(self, spec, task, item, shared: str | None, index: BundleIndex | None = None,
              known: tuple[Any, list] | None = None) -> dict[str, Any]:
        """{key, stamps, hit, value} of one unit; key None when it cannot be cached (a file
        that could not be read: the function reports it).  With ``index`` the unit is looked
        up in the bundles of earlier shards, else in its own entry; ``known``: its key parts
        and files' stamps as its shard's stat key saw them (a file whose stamp the index
        remembers is not hashed again)."""
        if index is not None and known is not None and len(known[1]) == 1:
            path, stamp = known[1][0]
            key = index.known_key(path, stamp, known[0])
            if key is not None:
                packed = index.find(key)
                if packed is not None:
                    return {"key": key, "stamps": [(path, stamp)], "hit": True, "bundled": True,
                            "value": packed, "packed": packed}
        paths, parts = spec.key_parts(task, item)
        ids = [self._ids.of(p) for p in paths]
        if shared is None or any(d is None for d, _ in ids):
            self.counts["uncacheable"] += 1
            return {"key": None, "hit": False, "stamps": []}
        try:
            key = keys.key_of(shared, parts, [d for d, _ in ids])
        except TypeError:
            self.counts["uncacheable"] += 1
            return {"key": None, "hit": False, "stamps": []}
        unit = {"key": key, "stamps": list(zip(paths, [s for _, s in ids]))}
        if index is not None:
            unit["value"] = index.find(key)
            unit["hit"] = unit["bundled"] = unit["value"] is not None
            if unit["hit"]:
                unit["packed"] = unit["value"]
        elif spec.load_early:
            unit["value"] = self.store.get(key)
            unit["hit"] = unit["value"] is not None
        else:
            unit["hit"] = self.store.has(key)
        return unit

    def _answer(self, spec, fn, task, item, unit):
        """A hit's result; computed here when its entry vanished or broke since it was checked."""
        stored = unit.pop("value") if "value" in unit else self.store.get(unit["key"])
        if stored is not None:
            try:
                result = spec.unpack(task, item, stored)
                self.counts["hits"] += 1
                return result
            except MissingBlob:  # its blob went or broke (counted then): the entry is stored again
                unit.pop("packed", None)
            except Exception:  # an entry this code cannot put back: dropped, never trusted
                unit.pop("packed", None)
                if unit["key"] is not None and not unit.get("bundled"):
                    self.store.discard(unit["key"])
        self.counts["misses"] += 1
        run_fn = spec_for(fn)[1]
        if spec.per_file:
            sub = spec.subtask(task, [item])
            result = spec.split(sub, run_fn(sub))[0]
        else:
            result = run_fn(task)
        self._store(spec, task, item, unit, result)
        return result

    def _store(self, spec, task, item, unit, result) -> None:
        if unit["key"] is None or unit.get("bundled"):  # a bundle's value goes back with its shard
            return
        try:  # packed here: a packed value may read files of the run's staging, which move later
            value = spec.pack(task, item, result) if spec.per_file else spec.pack_keyed(task, item, result, unit["key"])
        except Exception:  # a result that cannot be packed: the scan goes on uncached
            self.counts["store_errors"] += 1
            return
        if value is not None:
            self._writer.put(unit["key"], value, unit["stamps"], counted=True)

    def _computed(self, spec, run_fn, tasks, plans, missing) -> Iterator:
        """The results of the missing units, in order, computed on the wrapped engine."""
        self.counts["misses"] += sum(1 for i, j in missing if plans[i][j]["key"] is not None)
        if not missing:
            return iter(())
        if not spec.per_file:
            subtasks = [(tasks[i], 1) for i, _ in missing]
        else:
            subtasks = _regroup(spec, tasks, missing)
        here = spec.per_file and _few(plans, missing)
        if here:
            # a few changed files: decoded here, sooner than a worker pool starts (a forkserver
            # and a process per core, each importing numpy and PIL); same function, same results
            results = map(run_fn, [s for s, _ in subtasks])
        else:
            self.sent_work = True
            results = self.inner.map_ordered(run_fn, [s for s, _ in subtasks])
        # the work hooks run now when the shards run in this process, else once the first
        # result is back (not while the worker pool starts: they would slow it down)
        early = here or len(subtasks) <= 1 or self.inner.parallelism <= 1
        if early:
            self._run_work_hooks()

        def flat() -> Iterator:
            for k, ((sub, _), res) in enumerate(zip(subtasks, results)):
                if k == 0 and not early:
                    self._run_work_hooks()
                yield from spec.split(sub, res)
        return flat()

    def _run_work_hooks(self) -> None:
        hooks, self.work_hooks = self.work_hooks, []
        for hook in hooks:
            hook()


#: missing files of a per-file shard function run in this process when there are at most this
#: many and their bytes are at most IN_PROCESS_BYTES (a rescan after a few files changed)
IN_PROCESS_FILES = 256
IN_PROCESS_BYTES = 16 << 20


def _few(plans, missing) -> bool:
    """Whether the missing files are few and small enough to run in this process (a unit
    without stamps, a remote object, counts as too large)."""
    if len(missing) > IN_PROCESS_FILES:
        return False
    total = 0
    for i, j in missing:
        stamps = plans[i][j]["stamps"]
        if not stamps or any(s is None for _, s in stamps):
            return False
        total += sum(s.size for _, s in stamps)
    return total <= IN_PROCESS_BYTES


def _regroup(spec, tasks, missing) -> list[tuple[Any, int]]:
    """Subtasks holding the missing files, in order: consecutive misses of tasks with the same
    parameters share one, up to the size of the largest original task."""
    size = max(len(spec.items(t)) for t in tasks)
    out: list[tuple[Any, int]] = []
    group: list = []
    base = None
    for i, j in missing:
        task = tasks[i]
        item = spec.items(task)[j]
        if group and (len(group) >= size or spec.params(task) != spec.params(base)):
            out.append((spec.subtask(base, group), len(group)))
            group = []
        if not group:
            base = task
        group.append(item)
    if group:
        out.append((spec.subtask(base, group), len(group)))
    return out


def fn_name(spec) -> str:
    """The cache's name of a spec's function family (part of every key)."""
    return type(spec).__name__
