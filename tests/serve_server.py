"""A real ``datasan serve`` in a subprocess on 127.0.0.1, and a small JSON client (urllib)."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Server:
    """``datasan serve`` started with ``args`` (roots, state, ...); ``call`` speaks JSON to it."""

    def __init__(self, args: list[str], log: Path, token: str | None = None) -> None:
        self.port = free_port()
        self.base = f"http://127.0.0.1:{self.port}"
        self.token = token
        self._log = open(log, "ab")
        self.proc = subprocess.Popen([sys.executable, "-m", "datasan", "serve", "--port", str(self.port), *args],
                                     stdout=self._log, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"datasan serve exited with {self.proc.returncode}: {log.read_text()[-2000:]}")
            try:
                if self.call("GET", "/healthz")[0] == 200:
                    return
            except OSError:
                pass
            time.sleep(0.1)
        self.stop()
        raise RuntimeError(f"datasan serve did not answer: {log.read_text()[-2000:]}")

    def call(self, method: str, path: str, body: Any = None, *, raw: bytes | None = None,
             token: str | None = None, timeout: float = 300) -> tuple[int, Any, dict[str, str]]:
        """(status, decoded JSON or text, headers) of one request."""
        data = raw if raw is not None else (json.dumps(body).encode() if body is not None else None)
        req = urllib.request.Request(self.base + path, data=data, method=method)
        if data is not None:
            req.add_header("Content-Type", "application/json")
        tok = token if token is not None else self.token
        if tok:
            req.add_header("Authorization", f"Bearer {tok}")
        try:
            with urllib.request.urlopen(req, timeout=timeout) as r:
                status, payload, headers = r.status, r.read(), dict(r.headers)
        except urllib.error.HTTPError as e:
            status, payload, headers = e.code, e.read(), dict(e.headers)
        ctype = headers.get("content-type", "")
        return status, (json.loads(payload) if "json" in ctype else payload.decode()), headers

    def wait_job(self, job_id: str, until=lambda j: j["status"] in ("done", "failed", "interrupted"),
                 timeout: float = 300) -> dict[str, Any]:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            status, job, _ = self.call("GET", f"/scans/{job_id}")
            assert status == 200, job
            if until(job):
                return job
            time.sleep(0.02)
        raise AssertionError(f"job {job_id} did not get there: {job}")

    def kill(self) -> None:
        """SIGKILL: the process dies with whatever it was doing."""
        os.kill(self.proc.pid, signal.SIGKILL)
        self.proc.wait(30)
        self._log.close()

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(30)
        self._log.close()
