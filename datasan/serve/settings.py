"""What the service is told at start-up, checked before it listens."""

from __future__ import annotations

import ipaddress
import os
from dataclasses import dataclass

from datasan.errors import UsageError


@dataclass
class ServeSettings:
    """The options of ``datasan serve`` (see ``datasan serve --help``)."""

    roots: list[str]
    state: str = "datasan-serve.sqlite"
    host: str = "127.0.0.1"
    port: int = 8765
    #: scans running at once; more wait in the queue
    workers: int = 2
    token: str | None = None
    #: a datasan config file whose settings every scan starts from (False: none)
    config: str | bool = False
    engine: str = "local"
    ray_address: str | None = None
    #: output folders kept under <state dir>/runs; the oldest finished ones go first
    keep_runs: int = 200
    #: jobs waiting in the queue before a submission is refused (503)
    max_queue: int = 1000
    max_body: int = 65536
    #: requests per second per client address (a burst of twice this is allowed); 0: no limit
    rate: float = 50.0
    max_connections: int = 1000
    #: the content cache every scan shares ("": ``cache`` beside the state file; None: no cache)
    cache: str | None = ""

    @property
    def state_dir(self) -> str:
        return os.path.dirname(os.path.abspath(self.state))

    @property
    def cache_dir(self) -> str | None:
        """Where the scans cache shard results, or None when they do not."""
        if self.cache is None:
            return None
        return os.path.abspath(self.cache) if self.cache else os.path.join(self.state_dir, "cache")

    @property
    def runs_dir(self) -> str:
        return os.path.join(self.state_dir, "runs")


def is_loopback(host: str) -> bool:
    """True when ``host`` only listens on this machine."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def read_token(path: str) -> str:
    """The bearer token in ``path`` (surrounding whitespace dropped); UsageError when unusable."""
    try:
        with open(path, encoding="utf-8") as f:
            token = f.read().strip()
    except (OSError, UnicodeDecodeError) as exc:
        raise UsageError(f"--token-file {path}: cannot read it: {exc}") from None
    if len(token) < 16:
        raise UsageError(f"--token-file {path}: the token must be at least 16 characters")
    return token


def check_settings(s: ServeSettings) -> ServeSettings:
    """UsageError when the service cannot or must not start with ``s``; roots made real paths."""
    if not s.roots:
        raise UsageError("give at least one --root: the folders the service may scan")
    real = []
    for r in s.roots:
        if not os.path.isdir(r):
            raise UsageError(f"--root {r} is not a folder")
        real.append(os.path.realpath(r))
    s.roots = real
    if not is_loopback(s.host) and not s.token:
        raise UsageError(f"--host {s.host} listens beyond this machine: give --token-file with a bearer "
                         "token (refusing to serve without one)")
    for name, low in (("workers", 1), ("keep_runs", 1), ("max_queue", 1), ("max_body", 1024)):
        if getattr(s, name) < low:
            raise UsageError(f"--{name.replace('_', '-')} must be at least {low}")
    if s.rate < 0:
        raise UsageError("--rate-limit must be >= 0 (0: no limit)")
    state_dir = s.state_dir
    if not os.path.isdir(state_dir):
        raise UsageError(f"--state {s.state}: its folder {state_dir} does not exist")
    for root in real:
        if os.path.commonpath([root, os.path.realpath(state_dir)]) == root:
            # the service writes its runs there: a scan would then read the service's own outputs
            raise UsageError(f"--state {s.state} lies under --root {root}; keep the state outside the roots")
        if s.cache_dir and os.path.commonpath([root, os.path.realpath(s.cache_dir)]) == root:
            raise UsageError(f"--cache {s.cache_dir} lies under --root {root}; keep the cache outside the roots")
    return s
