"""One run at a time in a store ``--out``: a lease object, since a store has no lock.

pyarrow.fs offers no conditional write, so the lease is a plain object,
``<out>/.datasan-lease.json``, naming the run that holds it and when the lease
expires.  A run takes it when the scan starts: it reads the object, refuses
when another run's lease has not expired, writes its own, waits
``SETTLE_S`` and reads it back; only the run whose lease it reads back goes
on (with two writers at once the store keeps the last, and both read that
one).  While the run works, a thread renews the lease every ``TTL_S / 3``
(reading it first: a run that finds another's lease stops renewing and is
refused at publishing).  Publishing reads it again before each manifest is
written, and the lease object is removed when the run ends.

The limit, written in docs/outputs.md: the guarantee needs every lease write
to land within ``SETTLE_S`` of the read before it and the machines' clocks to
agree to well under ``TTL_S``; a run stalled longer than that (a suspended
machine) may publish over another.  Each file still carries its run id and
the manifest names the run, so :func:`~datasan.outputs.manifest.verify_output`
then reports the folder as mixed rather than trusting it.
"""

from __future__ import annotations

import json
import os
import socket
import threading
import time

from datasan import fs
from datasan.errors import UsageError

LEASE = ".datasan-lease.json"
#: how long a lease lasts without renewal: a run killed without releasing it blocks the prefix this long
TTL_S = 300.0
#: how long a run waits between writing its lease and reading it back
SETTLE_S = 2.0
FORMAT = 1


def read_lease(out: str) -> dict | None:
    """The lease object of ``out``, None when there is none (or it is not datasan's)."""
    try:
        doc = json.loads(fs.read_bytes(fs.join(out, LEASE)))
    except (OSError, ValueError):
        return None
    ok = isinstance(doc, dict) and doc.get("datasan_lease") == FORMAT and isinstance(doc.get("run_id"), str) \
        and isinstance(doc.get("expires"), (int, float))
    return doc if ok else None


def _describe(doc: dict) -> str:
    until = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(doc["expires"]))
    return f"run {doc['run_id']} (host {doc.get('host', '?')}, pid {doc.get('pid', '?')}, lease until {until})"


class StoreLease:
    """The lease one run holds on a store ``--out`` (see the module docstring)."""

    def __init__(self, out: str, run_id: str) -> None:
        self.out = out.rstrip("/")
        self.run_id = run_id
        self.key = fs.join(self.out, LEASE)
        self.lost: str | None = None
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    @classmethod
    def acquire(cls, out: str, run_id: str) -> "StoreLease":
        """Take the lease of ``out`` for ``run_id``; UsageError when another run holds it."""
        lease = cls(out, run_id)
        lease._refuse_if_held(read_lease(lease.out))
        lease._write()
        time.sleep(SETTLE_S)
        back = read_lease(lease.out)
        if back is None or back["run_id"] != run_id:
            lease._refuse_if_held(back, raced=True)
            raise UsageError(f"another datasan run took the lease of {out} at the same moment; "
                             "wait for it to finish or choose another --out")
        lease._thread = threading.Thread(target=lease._renew_loop, name="datasan-lease", daemon=True)
        lease._thread.start()
        return lease

    def _refuse_if_held(self, doc: dict | None, raced: bool = False) -> None:
        if doc is not None and doc["run_id"] != self.run_id and (raced or doc["expires"] > time.time()):
            raise UsageError(f"another datasan run, {_describe(doc)}, is writing to {self.out}; wait for it to "
                             f"finish or choose another --out (a run killed without releasing its lease holds "
                             f"it until it expires; removing {LEASE} takes it over sooner)")

    def _write(self) -> None:
        doc = {"datasan_lease": FORMAT, "run_id": self.run_id, "expires": time.time() + TTL_S,
               "host": socket.gethostname(), "pid": os.getpid()}
        with fs.open_output(self.key) as f:
            f.write(json.dumps(doc).encode("utf-8"))

    def _renew(self) -> bool:
        """Renew the lease if this run still holds it; False (and ``lost`` set) when it does not."""
        with self._lock:
            if self.lost is not None:
                return False
            doc = read_lease(self.out)
            if doc is None or doc["run_id"] != self.run_id:
                self.lost = f"its lease was taken by {_describe(doc)}" if doc else "its lease object was removed"
                return False
            self._write()
            return True

    def _renew_loop(self) -> None:
        while not self._stop.wait(TTL_S / 3):
            try:
                if not self._renew():
                    return
            except OSError:  # the store is briefly unreachable: the next renewal, or confirm(), decides
                continue

    def confirm(self) -> None:
        """UsageError unless this run still holds the lease (renewing it); called before publishing."""
        try:
            held = self._renew()
        except OSError as exc:
            raise UsageError(f"cannot confirm this run's lease on {self.out}: {exc}; nothing more was "
                             "published") from None
        if not held:
            raise UsageError(f"run {self.run_id} no longer holds the lease of {self.out} ({self.lost}): another "
                             "run may be publishing there; this run published nothing more (run it again)")

    def release(self) -> None:
        """Stop renewing and remove the lease object when it is still this run's."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join()
            self._thread = None
        with self._lock:
            if self.lost is not None:
                return
            self.lost = "released"
            try:
                doc = read_lease(self.out)
                if doc is not None and doc["run_id"] == self.run_id:
                    fs.remove(self.key)
            except OSError:  # it expires by itself
                pass

    @property
    def held(self) -> bool:
        """True until released or lost."""
        return self.lost is None
