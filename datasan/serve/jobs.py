"""The queue of scan jobs and the bounded pool of worker threads that runs them.

A request only writes a row and puts an id on the queue; ``workers`` threads
take ids off it and run :func:`datasan.scan` (whose engine brings its own
processes or cluster), so a burst of requests never becomes a burst of scans.
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
from datasan.serve.store import DONE, FAILED, QUEUED, JobStore

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

    def stop(self) -> None:
        """Let the workers end after their current scan; a scan still running when the process
        exits is marked ``interrupted`` by the next start."""
        for _ in self._threads:
            self._queue.put(None)

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
            try:
                outcome = self._run(job_id)
                if outcome is not None:
                    # room for this run first, so that no reader ever sees more than keep_runs folders
                    self._expire_old_runs(self.settings.keep_runs - 1)
                    self.store.finish(job_id, **outcome)
            except Exception:  # the service must outlive any one job
                log.exception("job %s failed outside the scan", job_id)
            finally:
                self._end(job_id)

    def _end(self, job_id: str) -> None:
        with self._lock:
            self._done.pop(job_id).set()
            self._live.pop(job_id, None)
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
        import datasan
        from datasan.errors import UsageError
        from datasan.outputs.progress import listen

        s = self.settings
        extra: dict[str, Any] = {"engine": s.engine}
        if s.ray_address:
            extra["ray_address"] = s.ray_address
        last = [0.0]

        def progress(stage: str, samples: int) -> None:
            self._live[job_id] = (stage, samples)
            now = time.monotonic()
            if now - last[0] > 1.0:  # the row is for restarts and other readers; memory has the rest
                last[0] = now
                self.store.progress(job_id, stage, samples)

        try:
            with listen(progress):
                result = datasan.scan(job["path"], out_dir=out, config=s.config, **extra, **job["options"])
        except UsageError as exc:
            return failed(2, str(exc))
        except Exception as exc:  # a bug in datasan, never bad data
            log.exception("scan %s failed", job_id)
            return failed(3, f"datasan failed (a bug in datasan, not in your data): {type(exc).__name__}: {exc}")
        with result:
            passed, code, reasons = verdict_of(result)
            return {"status": DONE, "passed": passed, "exit_code": code, "reasons": reasons,
                    "run_id": result.run_id, "samples": result.summary.samples}

    def _expire_old_runs(self, keep: int) -> None:
        runs = os.path.realpath(self.settings.runs_dir)
        for job_id, out in self.store.expire_beyond(keep):
            # only a folder this service made for that job, never whatever a row might name
            if out and os.path.realpath(out) == os.path.join(runs, job_id) and inside(os.path.realpath(out), runs):
                shutil.rmtree(out, ignore_errors=True)


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
