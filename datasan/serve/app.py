"""The routes of ``datasan serve`` (FastAPI); every answer is JSON but report.html."""

from __future__ import annotations

import asyncio
import json
import os
from contextlib import asynccontextmanager
from typing import Any

from fastapi import FastAPI, Request
from fastapi.responses import FileResponse, JSONResponse
from starlette.concurrency import run_in_threadpool

from datasan.serve.fingerprint import SharedWalks
from datasan.serve.jobs import Busy, JobRunner, findings_digest, options_digest, rejudge
from datasan.serve.results import read_page
from datasan.serve.security import Forbidden, Guard, RateLimiter, check_scan_options, resolve_path
from datasan.serve.settings import ServeSettings
from datasan.serve.store import DONE, FINAL, JobStore

#: the longest a gate request waits for its scan before answering 202 with the job id
MAX_WAIT = 3600.0


class HTTPProblem(Exception):
    """An answer other than 2xx: ``{"detail": ...}`` with ``status``."""

    def __init__(self, status: int, detail: str) -> None:
        super().__init__(detail)
        self.status, self.detail = status, detail


def create_app(settings: ServeSettings):
    """The service's ASGI application (the guard around the routes), its workers started with it."""
    os.makedirs(settings.runs_dir, exist_ok=True)
    store = JobStore(settings.state)
    runner = JobRunner(settings, store)

    @asynccontextmanager
    async def lifespan(app):
        runner.start()
        try:
            yield
        finally:
            runner.stop()
            store.close()

    app = FastAPI(title="datasan", lifespan=lifespan, docs_url=None, redoc_url=None, openapi_url=None)

    @app.exception_handler(HTTPProblem)
    async def problem(request: Request, exc: HTTPProblem):
        return JSONResponse({"detail": exc.detail}, status_code=exc.status)

    _routes(app, settings, store, runner, SharedWalks())
    return Guard(app, settings.token, RateLimiter(settings.rate), settings.max_body)


def _routes(app: FastAPI, settings: ServeSettings, store: JobStore, runner: JobRunner,
            walks: SharedWalks) -> None:
    def path_of(raw: Any) -> str:
        try:
            real = resolve_path(raw, settings.roots)
        except Forbidden as exc:
            raise HTTPProblem(403, str(exc)) from None
        if not os.path.exists(real):
            raise HTTPProblem(404, f"{raw} does not exist under the allowed roots")
        return real

    def options_of(raw: Any) -> dict[str, Any]:
        try:
            return check_scan_options(raw, settings.roots, settings.runs_dir)
        except Forbidden as exc:
            raise HTTPProblem(403, str(exc)) from None
        except ValueError as exc:
            raise HTTPProblem(422, str(exc)) from None

    def job_of(job_id: str) -> dict[str, Any]:
        job = store.get(job_id)
        if job is None:
            raise HTTPProblem(404, f"no job {job_id}")
        return job

    def submit(path: str, options: dict[str, Any], rerun_of: str | None = None) -> str:
        try:
            return runner.submit(path, options, options_digest(options, settings.config), rerun_of)
        except Busy as exc:
            raise HTTPProblem(503, str(exc)) from None

    def run_file(job_id: str, name: str) -> str:
        job = job_of(job_id)
        if job["status"] != DONE:
            raise HTTPProblem(409, f"job {job_id} is {job['status']}: its outputs exist once it is done")
        if job["expired"]:
            raise HTTPProblem(410, f"job {job_id}'s outputs were removed (the service keeps the last "
                              f"{settings.keep_runs} runs)")
        path = os.path.join(job["out_dir"], name)
        if not os.path.isfile(path):
            raise HTTPProblem(404, f"job {job_id} wrote no {name}")
        return path

    #: re-judged answers by (path, options digest, fingerprint, judged job): the same data's same question
    rejudged = Recent(256)

    def rejudged_answer(job: dict[str, Any], options: dict[str, Any]) -> dict[str, Any] | None:
        """The gate's JSON for ``job``'s findings judged at the question's ``fail_on``; None when
        its outputs can no longer be read (expired meanwhile): then the question is scanned."""
        from datasan.errors import UsageError

        try:
            passed, code, reasons = rejudge(job, options, settings.config)
        except (UsageError, OSError):
            return None
        return gate_answer({**job, "passed": passed, "exit_code": code, "reasons": reasons},
                           from_cache=True, rejudged=True)

    @app.get("/healthz")
    def healthz():
        from datasan import __version__

        return {"ok": True, "version": __version__}

    @app.post("/scans", status_code=202)
    async def post_scan(request: Request):
        try:
            body = json.loads(await request.body() or b"null")
        except ValueError:
            raise HTTPProblem(422, "the body must be JSON: {\"path\": ..., \"options\": {...}}") from None
        if not isinstance(body, dict) or "path" not in body:
            raise HTTPProblem(422, "the body must be a JSON object with a path (and options)")
        unknown = sorted(set(body) - {"path", "options"})
        if unknown:
            raise HTTPProblem(422, f"unknown field(s) {', '.join(unknown)}: give path and options")
        path = await run_in_threadpool(path_of, body["path"])
        options = options_of(body.get("options"))
        job_id = await run_in_threadpool(submit, path, options)
        return {"id": job_id, "status": "queued"}

    @app.get("/scans/{job_id}")
    def get_scan(job_id: str):
        return describe(job_of(job_id), runner)

    @app.post("/scans/{job_id}/rerun", status_code=202)
    def rerun(job_id: str):
        job = job_of(job_id)
        if job["status"] not in FINAL:
            raise HTTPProblem(409, f"job {job_id} is {job['status']}; rerun it once it has ended")
        new = submit(path_of(job["path"]), job["options"], rerun_of=job_id)
        return {"id": new, "status": "queued", "rerun_of": job_id}

    @app.get("/scans/{job_id}/findings")
    def findings(job_id: str, offset: int = 0, limit: int = 100):
        return read_page(run_file(job_id, "findings.parquet"), offset, limit)

    @app.get("/scans/{job_id}/quarantine")
    def quarantine(job_id: str, offset: int = 0, limit: int = 100):
        return read_page(run_file(job_id, "quarantine.parquet"), offset, limit)

    @app.get("/scans/{job_id}/report.json")
    def report_json(job_id: str):
        return FileResponse(run_file(job_id, "report.json"), media_type="application/json")

    @app.get("/scans/{job_id}/report.html")
    def report_html(job_id: str):
        return FileResponse(run_file(job_id, "report.html"), media_type="text/html")

    @app.get("/gate")
    async def gate(path: str, fail_on: str | None = None, wait: float = 600.0):
        # inline, not on the thread pool: a realpath and an indexed SELECT cost microseconds, a hop to
        # a thread more (the cached answer's latency is the point of this route)
        real = path_of(path)
        options = options_of({"fail_on": fail_on} if fail_on is not None else {})
        digest = options_digest(options, settings.config)
        try:
            fp = await walks(real)
        except OSError as exc:
            raise HTTPProblem(404, f"{path} cannot be read: {exc.strerror or exc}") from None
        hit = store.gate(real, digest)
        if hit is not None and hit[0] == fp:
            return gate_answer(hit[1], from_cache=True)
        # the same data scanned with the same options under another fail_on: judge its findings again
        prior = store.findings_run(real, findings_digest(options, settings.config))
        if prior is not None and prior[0] == fp and prior[1]["status"] == DONE:
            key = (real, digest, fp, prior[1]["id"])
            answer = rejudged.get(key)
            if answer is None:
                answer = await run_in_threadpool(rejudged_answer, prior[1], options)
                if answer is not None:
                    rejudged.put(key, answer)
            if answer is not None:
                return answer
        try:
            job_id = await run_in_threadpool(runner.gate_job, real, options, digest, fp)
        except Busy as exc:
            raise HTTPProblem(503, str(exc)) from None
        deadline = asyncio.get_running_loop().time() + max(0.0, min(wait, MAX_WAIT))
        while not runner.finished(job_id) and asyncio.get_running_loop().time() < deadline:
            await asyncio.sleep(0.05)
        job = job_of(job_id)
        if job["status"] not in FINAL:
            return JSONResponse({"passed": None, "exit_code": None, "reasons": [], "job_id": job_id,
                                 "from_cache": False, "status": job["status"]}, status_code=202)
        return gate_answer(job, from_cache=False)


class Recent:
    """A small thread-safe map that forgets its oldest entry beyond ``size``."""

    def __init__(self, size: int) -> None:
        import threading
        from collections import OrderedDict

        self.size, self._items, self._lock = size, OrderedDict(), threading.Lock()

    def get(self, key: Any) -> Any:
        with self._lock:
            value = self._items.get(key)
            if value is not None:
                self._items.move_to_end(key)
            return value

    def put(self, key: Any, value: Any) -> None:
        with self._lock:
            self._items[key] = value
            self._items.move_to_end(key)
            while len(self._items) > self.size:
                self._items.popitem(last=False)


def gate_answer(job: dict[str, Any], from_cache: bool, rejudged: bool = False) -> dict[str, Any]:
    """The gate's JSON for a finished job."""
    return {"passed": bool(job["passed"]) and job["status"] == DONE, "exit_code": job["exit_code"],
            "reasons": job["reasons"], "job_id": job["id"], "from_cache": from_cache, "rejudged": rejudged,
            "status": job["status"], "run_id": job["run_id"]}


def describe(job: dict[str, Any], runner: JobRunner) -> dict[str, Any]:
    """A job's JSON: status, progress, verdict once it has ended, links to its outputs."""
    stage, samples = runner.live_progress(job["id"]) or (job["stage"], job["samples"])
    out = {k: job[k] for k in ("id", "path", "options", "status", "created", "started", "finished", "error",
                               "run_id", "rerun_of", "expired")}
    out["progress"] = {"stage": stage, "samples": samples}
    out["verdict"] = ({"passed": gate_answer(job, False)["passed"], "exit_code": job["exit_code"],
                       "reasons": job["reasons"]} if job["status"] in FINAL and job["exit_code"] is not None
                      else None)
    if job["status"] == DONE and not job["expired"]:
        base = f"/scans/{job['id']}"
        out["links"] = {n: f"{base}/{n}" for n in ("findings", "quarantine", "report.html", "report.json")}
    return out
