"""What a request may reach and how much of the service it may use.

* every path a client names is resolved (symlinks included) and must lie
  under a configured root, else :class:`Forbidden` before anything is read;
* the bearer token is compared in constant time;
* request bodies are read up to a bound (413 past it) and each client address
  gets a token bucket of requests (429 when it is empty);
* scan options pass datasan's own checks; the few that choose where code runs
  or which code runs are the service's, not a request's.
"""

from __future__ import annotations

import hmac
import os
import threading
import time
from typing import Any


class Forbidden(Exception):
    """The request names something outside the allowed roots (HTTP 403)."""


#: options a request may not set, and why
SERVICE_OWNED = {
    "engine": "the service's --engine decides where scans run",
    "ray_address": "the service's --ray-address decides where scans run",
    "probe_model": "it would import and run code named by the request",
    "cache": "the service's --cache decides where scan results are cached (a request would write there)",
    "cache_max_bytes": "the service's cache bound is the operator's",
}


def inside(real: str, root: str) -> bool:
    """True when the real path ``real`` is ``root`` or lies under it."""
    return real == root or real.startswith(root.rstrip(os.sep) + os.sep)


def resolve_path(path: Any, roots: list[str]) -> str:
    """The real path of ``path`` (absolute, or relative to the first root that holds it);
    Forbidden unless it lies under one of ``roots`` (real paths)."""
    if not isinstance(path, str) or not path or "\0" in path:
        raise Forbidden("path must be a non-empty string")
    if "://" in path:
        raise Forbidden("the service scans local folders under its roots only")
    if os.path.isabs(path):
        real = os.path.realpath(path)
        if any(inside(real, r) for r in roots):
            return real
        raise Forbidden(f"{path} is not under an allowed root")
    hits = [real for r in roots if inside(real := os.path.realpath(os.path.join(r, path)), r)]
    if not hits:
        raise Forbidden(f"{path} is not under an allowed root")
    return next((h for h in hits if os.path.lexists(h)), hits[0])


def check_scan_options(options: Any, roots: list[str], runs_dir: str) -> dict[str, Any]:
    """The request's scan options after datasan's own checks (ValueError with the message);
    Forbidden for a baseline outside the roots and the service's runs."""
    from datasan.options import check_settings

    if options is None:
        return {}
    if not isinstance(options, dict):
        raise ValueError(f"options must be an object of scan options, not {type(options).__name__}")
    for key, why in SERVICE_OWNED.items():
        if key in options:
            raise ValueError(f"option {key} cannot be set per request: {why}")
    checked = check_settings(options)
    if checked.get("baseline"):
        checked["baseline"] = resolve_path(checked["baseline"], roots + [os.path.realpath(runs_dir)])
    return checked


def token_matches(given: str | None, token: str) -> bool:
    """Whether an ``Authorization`` header carries ``token``, compared in constant time."""
    if not given or not given.startswith("Bearer "):
        return False
    return hmac.compare_digest(given[len("Bearer "):].strip().encode(), token.encode())


class RateLimiter:
    """A token bucket per client: ``rate`` requests a second, bursts of ``2 * rate``."""

    def __init__(self, rate: float, clients: int = 10_000) -> None:
        self.rate, self.burst, self.clients = rate, max(1.0, 2 * rate), clients
        self._buckets: dict[str, tuple[float, float]] = {}
        self._lock = threading.Lock()

    def allow(self, client: str) -> bool:
        """Take one request from ``client``'s bucket; False when it is empty."""
        if self.rate <= 0:
            return True
        now = time.monotonic()
        with self._lock:
            if len(self._buckets) >= self.clients and client not in self._buckets:
                # a flood of addresses must not grow the table without bound: forget the full buckets
                self._buckets = {k: v for k, v in self._buckets.items()
                                 if v[0] + (now - v[1]) * self.rate < self.burst}
            tokens, last = self._buckets.get(client, (self.burst, now))
            tokens = min(self.burst, tokens + (now - last) * self.rate)
            if tokens < 1:
                self._buckets[client] = (tokens, now)
                return False
            self._buckets[client] = (tokens - 1, now)
            return True


class Guard:
    """ASGI middleware: token, rate and body size, before any route runs."""

    def __init__(self, app, token: str | None, limiter: RateLimiter, max_body: int,
                 open_paths: frozenset[str] = frozenset({"/healthz"})) -> None:
        self.app, self.token, self.limiter, self.max_body, self.open_paths = app, token, limiter, max_body, open_paths

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope.get("headers", [])}
        if self.token and scope["path"] not in self.open_paths \
                and not token_matches(headers.get("authorization"), self.token):
            return await _reply(send, 401, "missing or wrong bearer token", {"www-authenticate": "Bearer"})
        client = (scope.get("client") or ("?", 0))[0]
        if not self.limiter.allow(client):
            return await _reply(send, 429, "too many requests from this client; retry later",
                                {"retry-after": "1"})
        length = headers.get("content-length")
        if length is not None and (not length.isdigit() or int(length) > self.max_body):
            return await _reply(send, 413, f"request body over {self.max_body} bytes")
        body, more = b"", True
        while more:
            message = await receive()
            if message["type"] == "http.disconnect":
                return
            body += message.get("body", b"")
            if len(body) > self.max_body:
                return await _reply(send, 413, f"request body over {self.max_body} bytes")
            more = message.get("more_body", False)
        sent = False

        async def replay():
            nonlocal sent
            if not sent:
                sent = True
                return {"type": "http.request", "body": body, "more_body": False}
            return await receive()

        return await self.app(scope, replay, send)


async def _reply(send, status: int, detail: str, headers: dict[str, str] | None = None) -> None:
    import json

    payload = json.dumps({"detail": detail}).encode()
    raw = [(b"content-type", b"application/json"), (b"content-length", str(len(payload)).encode())]
    raw += [(k.encode(), v.encode()) for k, v in (headers or {}).items()]
    await send({"type": "http.response.start", "status": status, "headers": raw})
    await send({"type": "http.response.body", "body": payload})
