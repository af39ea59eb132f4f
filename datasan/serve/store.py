"""Jobs and gate verdicts in one SQLite file (WAL), shared by the routes and the workers.

One connection guarded by a lock: the service's writes are a few rows per
scan, so a pool would buy nothing but races.
"""

from __future__ import annotations

import json
import sqlite3
import threading
import time
import uuid
from typing import Any

SCHEMA = """
CREATE TABLE IF NOT EXISTS jobs (
    id TEXT PRIMARY KEY,
    path TEXT NOT NULL,
    options TEXT NOT NULL,
    digest TEXT NOT NULL,
    fingerprint TEXT,
    status TEXT NOT NULL,
    created REAL NOT NULL,
    started REAL,
    finished REAL,
    stage TEXT,
    samples INTEGER NOT NULL DEFAULT 0,
    passed INTEGER,
    exit_code INTEGER,
    reasons TEXT,
    error TEXT,
    run_id TEXT,
    out_dir TEXT,
    rerun_of TEXT,
    expired INTEGER NOT NULL DEFAULT 0
);
CREATE INDEX IF NOT EXISTS jobs_status ON jobs(status);
CREATE TABLE IF NOT EXISTS gates (
    path TEXT NOT NULL,
    digest TEXT NOT NULL,
    fingerprint TEXT NOT NULL,
    job_id TEXT NOT NULL,
    PRIMARY KEY (path, digest)
);
CREATE TABLE IF NOT EXISTS findings_of (
    path TEXT NOT NULL,
    digest TEXT NOT NULL,
    fingerprint TEXT NOT NULL,
    job_id TEXT NOT NULL,
    PRIMARY KEY (path, digest)
);
"""

#: a job's states; the last three are final
QUEUED, RUNNING, DONE, FAILED, INTERRUPTED = "queued", "running", "done", "failed", "interrupted"
FINAL = (DONE, FAILED, INTERRUPTED)


class JobStore:
    """The service's database: one row per job, one gate verdict per (path, options digest) and,
    per (path, findings digest: the options but ``fail_on``), the last run whose findings another
    ``fail_on`` can re-judge."""

    def __init__(self, path: str) -> None:
        self._db = sqlite3.connect(path, check_same_thread=False, isolation_level=None)
        self._db.row_factory = sqlite3.Row
        self._lock = threading.Lock()
        with self._lock:
            self._db.execute("PRAGMA journal_mode=WAL")
            self._db.execute("PRAGMA synchronous=NORMAL")
            self._db.executescript(SCHEMA)

    def close(self) -> None:
        with self._lock:
            self._db.close()

    def _run(self, sql: str, args: tuple = ()) -> list[sqlite3.Row]:
        with self._lock:
            return self._db.execute(sql, args).fetchall()

    def recover(self) -> tuple[list[str], list[str]]:
        """At start-up: jobs that were running are ``interrupted``; returns (those, the queued ones
        to enqueue again, oldest first)."""
        running = [r["id"] for r in self._run("SELECT id FROM jobs WHERE status = ?", (RUNNING,))]
        self._run("UPDATE jobs SET status = ?, finished = ?, error = ? WHERE status = ?",
                  (INTERRUPTED, time.time(), "the service stopped while this scan ran", RUNNING))
        queued = [r["id"] for r in self._run("SELECT id FROM jobs WHERE status = ? ORDER BY created", (QUEUED,))]
        return running, queued

    def create(self, path: str, options: dict[str, Any], digest: str, rerun_of: str | None = None) -> str:
        """A new queued job; returns its id."""
        job_id = uuid.uuid4().hex
        self._run("INSERT INTO jobs (id, path, options, digest, status, created, rerun_of) "
                  "VALUES (?, ?, ?, ?, ?, ?, ?)",
                  (job_id, path, json.dumps(options, sort_keys=True), digest, QUEUED, time.time(), rerun_of))
        return job_id

    def get(self, job_id: str) -> dict[str, Any] | None:
        rows = self._run("SELECT * FROM jobs WHERE id = ?", (job_id,))
        return _job(rows[0]) if rows else None

    def start(self, job_id: str, fingerprint: str, out_dir: str) -> None:
        self._run("UPDATE jobs SET status = ?, started = ?, fingerprint = ?, out_dir = ? WHERE id = ?",
                  (RUNNING, time.time(), fingerprint, out_dir, job_id))

    def progress(self, job_id: str, stage: str, samples: int) -> None:
        self._run("UPDATE jobs SET stage = ?, samples = ? WHERE id = ?", (stage, samples, job_id))

    def finish(self, job_id: str, *, status: str, passed: bool | None, exit_code: int | None,
               reasons: list[str], error: str | None = None, run_id: str | None = None,
               samples: int | None = None, findings_digest: str | None = None) -> None:
        """Record a job's end; a ``done`` job becomes the gate's verdict for its path and options
        and, given ``findings_digest``, the run whose findings re-judge other ``fail_on`` values."""
        with self._lock:
            db = self._db
            db.execute("BEGIN IMMEDIATE")
            try:
                db.execute("UPDATE jobs SET status = ?, finished = ?, passed = ?, exit_code = ?, reasons = ?, "
                           "error = ?, run_id = ?, samples = COALESCE(?, samples) WHERE id = ?",
                           (status, time.time(), None if passed is None else int(passed), exit_code,
                            json.dumps(reasons), error, run_id, samples, job_id))
                if status == DONE:
                    db.execute("INSERT OR REPLACE INTO gates (path, digest, fingerprint, job_id) "
                               "SELECT path, digest, fingerprint, id FROM jobs WHERE id = ?", (job_id,))
                    if findings_digest is not None:
                        db.execute("INSERT OR REPLACE INTO findings_of (path, digest, fingerprint, job_id) "
                                   "SELECT path, ?, fingerprint, id FROM jobs WHERE id = ?",
                                   (findings_digest, job_id))
                db.execute("COMMIT")
            except BaseException:
                db.execute("ROLLBACK")
                raise

    def gate(self, path: str, digest: str) -> tuple[str, dict[str, Any]] | None:
        """(fingerprint, job) of the last finished scan of ``path`` with options ``digest``."""
        rows = self._run("SELECT g.fingerprint AS fp, j.* FROM gates g JOIN jobs j ON j.id = g.job_id "
                         "WHERE g.path = ? AND g.digest = ?", (path, digest))
        return (rows[0]["fp"], _job(rows[0])) if rows else None

    def findings_run(self, path: str, findings_digest: str) -> tuple[str, dict[str, Any]] | None:
        """(fingerprint, job) of the last finished scan of ``path`` whose options differ from a
        question's at most in ``fail_on`` (``findings_digest``); None once its outputs expired."""
        rows = self._run("SELECT f.fingerprint AS fp, j.* FROM findings_of f JOIN jobs j ON j.id = f.job_id "
                         "WHERE f.path = ? AND f.digest = ? AND j.expired = 0", (path, findings_digest))
        return (rows[0]["fp"], _job(rows[0])) if rows else None

    def expire_beyond(self, keep: int) -> list[tuple[str, str]]:
        """Mark all but the newest ``keep`` finished runs expired; returns (id, out_dir) of those."""
        rows = self._run("SELECT id, out_dir FROM jobs WHERE expired = 0 AND out_dir IS NOT NULL AND status IN "
                         "(?, ?, ?) ORDER BY finished DESC LIMIT -1 OFFSET ?", (*FINAL, keep))
        for r in rows:
            self._run("UPDATE jobs SET expired = 1 WHERE id = ?", (r["id"],))
        return [(r["id"], r["out_dir"]) for r in rows]

    def count_queued(self) -> int:
        return self._run("SELECT COUNT(*) AS n FROM jobs WHERE status = ?", (QUEUED,))[0]["n"]


def _job(row: sqlite3.Row) -> dict[str, Any]:
    d = dict(row)
    d.pop("fp", None)
    d["options"] = json.loads(d["options"])
    d["reasons"] = json.loads(d["reasons"]) if d["reasons"] else []
    d["passed"] = None if d["passed"] is None else bool(d["passed"])
    d["expired"] = bool(d["expired"])
    return d
