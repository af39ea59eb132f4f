"""``datasan serve``: the gate as an HTTP service.

Layout: ``settings.py`` (what the service is told at start-up), ``security.py``
(allowed roots, the bearer token, request size and rate limits, which scan
options a client may set), ``fingerprint.py`` (the cheap identity of the data
the gate compares), ``store.py`` (jobs and gate verdicts in SQLite),
``jobs.py`` (the queue and its bounded worker pool), ``worker.py`` (one scan
in a process of its own), ``results.py`` (pages of a
finished run's files), ``app.py`` (the routes).  FastAPI and uvicorn (the
``serve`` extra) are imported only by :func:`run`.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:  # pragma: no cover
    from datasan.serve.settings import ServeSettings

INSTALL = 'pip install "datasan[serve]"'


def require_extra() -> None:
    """UsageError naming the install command when FastAPI or uvicorn is missing."""
    from datasan.errors import UsageError

    try:
        import fastapi  # noqa: F401
        import uvicorn  # noqa: F401
    except ImportError as exc:
        raise UsageError(f"datasan serve needs FastAPI and uvicorn ({exc.name} is missing): {INSTALL}") from None


def run(settings: "ServeSettings") -> None:
    """Serve until interrupted (SIGINT/SIGTERM): uvicorn on ``settings.host:settings.port``."""
    require_extra()
    import uvicorn

    from datasan.serve.app import create_app

    app = create_app(settings)
    uvicorn.run(app, host=settings.host, port=settings.port, log_level="warning", access_log=False,
                limit_concurrency=settings.max_connections,
                # gate requests may be waiting on a scan: they must not hold a shutdown for minutes
                timeout_graceful_shutdown=5)
