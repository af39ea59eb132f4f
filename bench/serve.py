"""Benchmark: `GET /gate` of `datasan serve` on unchanged data, under load, vs a scan.

Starts `datasan serve` on 127.0.0.1 (a subprocess, no rate limit) over a
folder of ``--files`` small CSVs (iris, 150 rows each) plus a copy of
sample_data/, then:

* one gate call that scans (cold: nothing in the database);
* ``--clients`` threads x ``--calls`` gate calls each on the unchanged data
  (answered from the database): p50 / p99 / max latency and throughput;
* one file changed (a row appended), one gate call: it rescans;
* gate calls with two other ``fail_on`` values on the unchanged data, each
  asked three times: the first of each judges the stored run's findings again
  (no scan), the repeats are answered from memory;
* the server's CPU time per cached answer (user + system, from psutil);
* the baseline: what each training job pays without the service,
  ``datasan.scan`` of the same folder in this process (imports warm).

    python bench/serve.py [--files 1000] [--clients 50] [--calls 20] [--probe]

Needs ``pip install "datasan[serve]"`` (and psutil, in ``[dev]``); prints measured numbers only.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from concurrent.futures import ThreadPoolExecutor

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
IRIS = os.path.join(REPO, "sample_data", "tables", "iris.csv")


def make_data(root: str, files: int) -> str:
    data = os.path.join(root, "data")
    shutil.copytree(os.path.join(REPO, "sample_data"), os.path.join(data, "sample_data"))
    for i in range(files):
        sub = os.path.join(data, "many", f"{i // 100:03d}")
        os.makedirs(sub, exist_ok=True)
        shutil.copy(IRIS, os.path.join(sub, f"iris_{i:05d}.csv"))
    return data


def start(data: str, state: str, config: str) -> tuple[subprocess.Popen, str]:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    proc = subprocess.Popen([sys.executable, "-m", "datasan", "serve", "--root", data, "--state", state,
                             "--port", str(port), "--rate-limit", "0", "--config", config],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    base = f"http://127.0.0.1:{port}"
    for _ in range(600):
        try:
            urllib.request.urlopen(base + "/healthz", timeout=1).read()
            return proc, base
        except OSError:
            time.sleep(0.1)
    proc.kill()
    raise SystemExit("datasan serve did not start")


def gate(base: str, fail_on: str | None = None) -> tuple[float, dict]:
    t0 = time.perf_counter()
    with urllib.request.urlopen(base + "/gate?path=." + (f"&fail_on={fail_on}" if fail_on else ""),
                                timeout=3600) as r:
        body = json.loads(r.read())
    return time.perf_counter() - t0, body


def pct(values: list[float], p: float) -> float:
    values = sorted(values)
    return values[min(len(values) - 1, int(round(p / 100 * (len(values) - 1))))]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--files", type=int, default=1000)
    ap.add_argument("--clients", type=int, default=50)
    ap.add_argument("--calls", type=int, default=20)
    ap.add_argument("--probe", action="store_true", help="scans run the probe (default: --no-probe)")
    args = ap.parse_args()
    tmp = tempfile.mkdtemp(prefix="datasan-bench-serve-")
    try:
        data = make_data(tmp, args.files)
        n_files = sum(len(f) for _, _, f in os.walk(data))
        config = os.path.join(tmp, "datasan.toml")
        with open(config, "w") as f:
            f.write(f"probe = {'true' if args.probe else 'false'}\n")
        os.makedirs(os.path.join(tmp, "state"))
        proc, base = start(data, os.path.join(tmp, "state", "jobs.sqlite"), config)
        try:
            cold, first = gate(base)
            assert not first["from_cache"]

            def client(_):
                out = []
                for _ in range(args.calls):
                    dt, body = gate(base)
                    assert body["from_cache"] and body["job_id"] == first["job_id"], body
                    out.append(dt)
                return out

            import psutil

            server = psutil.Process(proc.pid)
            cpu0 = sum(server.cpu_times()[:2])
            t0 = time.perf_counter()
            with ThreadPoolExecutor(args.clients) as pool:
                lat = [x for xs in pool.map(client, range(args.clients)) for x in xs]
            wall = time.perf_counter() - t0
            server_cpu = sum(server.cpu_times()[:2]) - cpu0
            with open(os.path.join(data, "many", "000", "iris_00000.csv"), "a") as f:
                f.write("5.0,3.0,1.4,0.2,setosa\n")
            changed, after = gate(base)
            assert not after["from_cache"] and after["job_id"] != first["job_id"]
            again, cached = gate(base)
            assert cached["from_cache"]
            rejudged = []
            for fail_on in ("warning", "never", "warning", "never", "warning", "never"):
                dt, other = gate(base, fail_on)
                assert other["from_cache"] and other["rejudged"] and other["job_id"] == after["job_id"], other
                rejudged.append(dt)
        finally:
            proc.terminate()
            proc.wait(60)
        import datasan

        datasan.scan(IRIS, probe=False, config=False)  # imports warm, as in a long-lived launcher
        t0 = time.perf_counter()
        datasan.scan(data, out_dir=os.path.join(tmp, "direct"), config=config)
        direct = time.perf_counter() - t0
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    ms = [x * 1000 for x in lat]
    print(f"data: {n_files} files ({args.files} CSVs of 150 rows + sample_data), probe {'on' if args.probe else 'off'}")
    print(f"{'case':<44} {'datasan serve':>16} {'baseline: datasan.scan':>24}")
    print(f"{'gate, cold (scan)':<44} {cold:>14.2f} s {direct:>22.2f} s")
    print(f"{'gate, unchanged, p50 ({} x {} calls)'.format(args.clients, args.calls):<44} "
          f"{pct(ms, 50):>13.1f} ms {direct:>22.2f} s")
    print(f"{'gate, unchanged, p99':<44} {pct(ms, 99):>13.1f} ms")
    print(f"{'gate, unchanged, max':<44} {max(ms):>13.1f} ms")
    print(f"{'gate, unchanged, mean':<44} {statistics.mean(ms):>13.1f} ms")
    print(f"{'throughput (all clients)':<44} {len(ms) / wall:>11.0f} req/s")
    print(f"{'server CPU per cached gate call':<44} {server_cpu / len(ms) * 1000:>13.2f} ms")
    print(f"{'gate after 1 file changed (rescan)':<44} {changed:>14.2f} s {direct:>22.2f} s")
    print(f"{'gate, unchanged again, one client':<44} {again * 1000:>13.1f} ms")
    print(f"{'gate, unchanged, fail_on=warning: re-judged':<44} {rejudged[0] * 1000:>13.1f} ms   "
          "(the service's first reading of a run: its imports)")
    print(f"{'gate, unchanged, fail_on=never: re-judged':<44} {rejudged[1] * 1000:>13.1f} ms")
    print(f"{'  the same questions again (4 calls, median)':<44} {statistics.median(rejudged[2:]) * 1000:>13.1f} ms")


if __name__ == "__main__":
    main()
