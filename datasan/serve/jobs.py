"""The queue of scan jobs and the bounded pool of worker threads that runs them.

A request only writes a row and puts an id on the queue; ``workers`` threads
take ids off it and each runs :func:`datasan.scan` in a process of its own
(``worker.py``; the scan's engine brings its own processes or cluster), so a
burst of requests never becomes a burst of scans.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import queue
import shutil
import threading
import time
from typing import Any

from datasan.serve.fingerprint import fingerprint
from datasan.serve.security import inside
from datasan.serve.settings import ServeSettings
from datasan.serve.store import FAILED, INTERRUPTED, QUEUED, JobStore

log = logging.getLogger("datasan.serve")


class Busy(Exception):
    """The queue is full (HTTP 503)."""


def options_digest(options: dict[str, Any], config: str | bool) -> str:
    """What makes two gate questions the same: the options, the config file's bytes, datasan's version."""
    from datasan import __version__

    h = hashlib.sha256(json.dumps({"options": options, "version": __version__}, sort_keys=True,
                                  default=str).encode())
    if config:
        with open(config, "rb") as f:
            h.update(f.read())
    return h.hexdigest()


def findings_digest(options: dict[str, Any], config: str | bool) -> str:
    """What makes two questions' findings the same: the options but ``fail_on`` (which only
    judges them), the config file's bytes, datasan's version."""
    return options_digest({"findings of": {k: v for k, v in options.items() if k != "fail_on"}}, config)


def rejudge(job: dict[str, Any], options: dict[str, Any], config: str | bool) -> tuple[bool, int, list[str]]:
    """(passed, exit code, reasons) of a finished job's published run judged at the ``fail_on``
    that ``options`` and the config file give; UsageError or OSError when its outputs cannot be read."""
    from datasan.config import build_options
    from datasan.result import ScanResult

    fail_on = build_options(options, config=config).fail_on
    with ScanResult.load(job["out_dir"]) as result:
        return verdict_of(result.set_gate(fail_on=fail_on))


class JobRunner:
    """Runs queued jobs on ``settings.workers`` threads; tracks live progress and gate joins."""

    def __init__(self, settings: ServeSettings, store: JobStore) -> None:
        self.settings, self.store = settings, store
        self._queue: queue.Queue[str | None] = queue.Queue()
        self._lock = threading.RLock()  # gate_job submits while holding it
        self._done: dict[str, threading.Event] = {}
        self._live: dict[str, tuple[str, int]] = {}
        #: (path, digest, fingerprint) -> the job a gate question joins instead of scanning again
        self._gating: dict[tuple[str, str, str], str] = {}
        self._threads: list[threading.Thread] = []
        self._procs: dict[str, Any] = {}
        self._saved: dict[str, float] = {}
        self._stopping = False

    def start(self) -> list[str]:
        """Mark jobs of a previous process that were running ``interrupted``, enqueue the queued
        ones again and start the workers; returns the interrupted ids."""
        interrupted, queued = self.store.recover()
        for job_id in queued:
            self._enqueue(job_id)
        for i in range(self.settings.workers):
            t = threading.Thread(target=self._work, name=f"datasan-serve-{i}", daemon=True)
            t.start()
            self._threads.append(t)
        return interrupted

    def stop(self, timeout: float = 20.0) -> None:
        """Stop: running scans get SIGTERM (datasan stops its shard workers and publishes nothing
        half done) and are marked ``interrupted``; queued jobs stay queued for the next start."""
        with self._lock:
            self._stopping = True
            procs = list(self._procs.values())
        for _ in self._threads:
            self._queue.put(None)
        for p in procs:
            p.terminate()
        deadline = time.monotonic() + timeout
        for t in self._threads:
            t.join(max(0.0, deadline - time.monotonic()))

    def submit(self, path: str, options: dict[str, Any], digest: str, rerun_of: str | None = None) -> str:
        """Queue a scan of ``path`` (a real path under a root); Busy when the queue is full."""
        if self._queue.qsize() >= self.settings.max_queue:
            raise Busy(f"{self._queue.qsize()} scans are waiting; retry later")
        job_id = self.store.create(path, options, digest, rerun_of)
        self._enqueue(job_id)
        return job_id

    def gate_job(self, path: str, options: dict[str, Any], digest: str, fp: str) -> str:
        """The job that answers a gate question on data with fingerprint ``fp``: one already
        queued or running for the same question, else a new one."""
        key = (path, digest, fp)
        with self._lock:
            job_id = self._gating.get(key)
            if job_id is None or self.finished(job_id):
                job_id = self.submit(path, options, digest)
                self._gating[key] = job_id
            return job_id

    def finished(self, job_id: str) -> bool:
        """True once the job has ended (or is not one this process runs)."""
        event = self._done.get(job_id)
        return event is None or event.is_set()

    def live_progress(self, job_id: str) -> tuple[str, int] | None:
        return self._live.get(job_id)

    # ------------------------------------------------------------------ the workers
    def _enqueue(self, job_id: str) -> None:
        with self._lock:
            self._done[job_id] = threading.Event()
        self._queue.put(job_id)

    def _work(self) -> None:
        while True:
            job_id = self._queue.get()
            if job_id is None:
                return
            if self._stopping:  # left queued in the database: the next start runs it
                self._end(job_id)
                continue
            try:
                outcome = self._run(job_id)
                if outcome is not None:
                    # room for this run first, so that no reader ever sees more than keep_runs folders
                    self._expire_old_runs(self.settings.keep_runs - 1)
                    job = self.store.get(job_id)
                    self.store.finish(job_id, **outcome,
                                      findings_digest=findings_digest(job["options"], self.settings.config))
            except Exception:  # the service must outlive any one job
                log.exception("job %s failed outside the scan", job_id)
            finally:
                self._end(job_id)

    def _end(self, job_id: str) -> None:
        with self._lock:
            self._done.pop(job_id).set()
            self._live.pop(job_id, None)
            self._saved.pop(job_id, None)
            for key in [k for k, v in self._gating.items() if v == job_id]:
                del self._gating[key]

    def _run(self, job_id: str) -> dict[str, Any] | None:
        """The job's outcome (keywords of :meth:`JobStore.finish`); None when it is not queued."""
        job = self.store.get(job_id)
        if job is None or job["status"] != QUEUED:
            return None
        out = os.path.join(self.settings.runs_dir, job_id)
        try:
            fp = fingerprint(job["path"])
        except OSError as exc:
            self.store.start(job_id, "", out)
            return failed(2, f"cannot read {job['path']}: {exc.strerror or exc}")
        self.store.start(job_id, fp, out)
        return self._scan(job_id, job, out)

    def _scan(self, job_id: str, job: dict[str, Any], out: str) -> dict[str, Any]:
        """Run the scan in a process of its own (see ``worker.py``), relaying its progress."""
        import multiprocessing

        from datasan.serve.worker import scan_job

        s = self.settings
        options = {"engine": s.engine, **({"ray_address": s.ray_address} if s.ray_address else {}),
                   "cache": s.cache_dir or "off", **job["options"]}
        # spawn: this process has threads (uvicorn, the other workers), which fork would copy half-way
        ctx = multiprocessing.get_context("spawn")
        receive, send = ctx.Pipe(duplex=False)
        proc = ctx.Process(target=scan_job, args=(job["path"], out, s.config, options, send, os.getpid()),
                           name=f"datasan-scan-{job_id}")
        with self._lock:
            if self._stopping:
                return interrupted()
            proc.start()
            self._procs[job_id] = proc
        send.close()
        outcome = None
        try:
            while True:
                try:
                    message = receive.recv()
                except EOFError:
                    break
                if message[0] == "progress":
                    self._progress(job_id, message[1], message[2])
                else:
                    outcome = message[1]
            proc.join()
        finally:
            receive.close()
            with self._lock:
                self._procs.pop(job_id, None)
        if outcome is not None:
            return outcome
        if self._stopping:
            return interrupted()
        return failed(3, f"the scan's process ended (exit code {proc.exitcode}) before it reported; this is a "
                      "bug in datasan or the machine ran out of memory")

    def _progress(self, job_id: str, stage: str, samples: int) -> None:
        self._live[job_id] = (stage, samples)
        now = time.monotonic()
        if now - self._saved.get(job_id, 0.0) > 1.0:  # the row is for other readers; memory has the rest
            self._saved[job_id] = now
            self.store.progress(job_id, stage, samples)

    def _expire_old_runs(self, keep: int) -> None:
        runs = os.path.realpath(self.settings.runs_dir)
        for job_id, out in self.store.expire_beyond(keep):
            # only a folder this service made for that job, never whatever a row might name
            if out and os.path.realpath(out) == os.path.join(runs, job_id) and inside(os.path.realpath(out), runs):
                shutil.rmtree(out, ignore_errors=True)


def interrupted() -> dict[str, Any]:
    """The outcome of a job the service stopped (it can be rerun)."""
    return {"status": INTERRUPTED, "passed": None, "exit_code": None, "reasons": [],
            "error": "the service stopped while this scan ran"}


def failed(exit_code: int, message: str) -> dict[str, Any]:
    """The outcome of a job whose scan could not run (2) or crashed (3)."""
    return {"status": FAILED, "passed": False, "exit_code": exit_code, "reasons": [message], "error": message}


def verdict_of(result) -> tuple[bool, int, list[str]]:
    """(passed, exit code as ``datasan scan`` would give, reasons) of a finished scan.

    A scan datasan itself failed on (exit 3) does not pass: its sources were not checked.
    """
    from datasan.outputs.view import FindingsView

    view = FindingsView(result)
    reasons = [f"{r.code} {r.name}: {r.failing} finding(s) fail the gate"
               + (f" (e.g. {', '.join(r.failing_examples)})" if r.failing_examples else "")
               for r in view.rule_counts().values() if r.failing]
    if result.verdict.quarantine_reason:
        reasons.append(result.verdict.quarantine_reason)
    reasons += [f"datasan failed on {e['source']}: {e['error']}" for e in result.internal_errors]
    if result.internal_errors:
        return False, 3, reasons
    return result.passed, 0 if result.passed else 1, reasons
