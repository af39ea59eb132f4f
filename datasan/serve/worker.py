"""One scan in a process of its own, started (spawn) by the service's worker thread.

A process rather than the thread itself: the scan runs in a main thread, so
datasan's SIGTERM handling (stop the shard workers, publish nothing half
done) and the probe's time limit work as on the command line; stopping the
service stops its scans; and a scan's memory goes back when it ends.
Messages to the service: ``("progress", stage, samples)`` and, last,
``("outcome", {...})`` (keywords of :meth:`JobStore.finish`).
"""

from __future__ import annotations

import os
import signal
import threading
import time
from typing import Any


def scan_job(path: str, out: str, config: str | bool, options: dict[str, Any], conn, service: int) -> None:
    """Scan ``path`` into ``out`` and send the outcome on ``conn``; exits without one when stopped
    or when the process ``service`` (the parent) is gone."""
    _stop_with_parent(service)
    import datasan
    from datasan.errors import UsageError
    from datasan.outputs.progress import listen
    from datasan.serve.jobs import failed, verdict_of
    from datasan.serve.store import DONE

    last = [0.0]

    def progress(stage: str, samples: int) -> None:
        now = time.monotonic()
        if now - last[0] > 0.2:
            last[0] = now
            try:
                conn.send(("progress", stage, samples))
            except OSError:  # the service is gone; the watch thread stops this scan
                pass

    try:
        with listen(progress):
            result = datasan.scan(path, out_dir=out, config=config, **options)
        with result:
            passed, code, reasons = verdict_of(result)
            outcome = {"status": DONE, "passed": passed, "exit_code": code, "reasons": reasons,
                       "run_id": result.run_id, "samples": result.summary.samples}
    except UsageError as exc:
        outcome = failed(2, str(exc))
    except KeyboardInterrupt:  # SIGTERM from the service (or its death): no outcome
        return
    except Exception as exc:  # a bug in datasan, never bad data
        import traceback

        traceback.print_exc()
        outcome = failed(3, f"datasan failed (a bug in datasan, not in your data): {type(exc).__name__}: {exc}")
    conn.send(("outcome", outcome))


#: seconds a scan whose service died has to stop by itself before its process group is killed
STOP_GRACE = 10.0


def _stop_with_parent(service: int) -> None:
    """SIGTERM this process when the service dies (even by SIGKILL), also before this process got
    here: datasan then stops its own workers instead of leaving them behind.  Should that stop
    hang, the whole process group (this scan and every process it started: forkserver, shard
    workers, resource tracker) is killed after STOP_GRACE seconds, so nothing outlives a service."""
    os.setpgrp()  # before the scan starts any process: they all join this group

    def watch() -> None:
        while os.getppid() == service:
            time.sleep(0.5)
        os.kill(os.getpid(), signal.SIGTERM)
        time.sleep(STOP_GRACE)  # this daemon thread ends with the process when the stop works
        os.killpg(os.getpgrp(), signal.SIGKILL)

    threading.Thread(target=watch, name="datasan-serve-parent-watch", daemon=True).start()
