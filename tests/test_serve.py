"""`datasan serve`: the real server (uvicorn in a subprocess) on 127.0.0.1, spoken to over HTTP."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor

import psutil
import pytest
from typer.testing import CliRunner

from conftest import SAMPLE, tree_digest
from datasan.cli import app


def _import_serve():
    if os.environ.get("CI", "").lower() == "true":
        import fastapi  # CI installs .[serve]: a missing extra is a failure there, not a skip
        import uvicorn

        return fastapi, uvicorn
    return (pytest.importorskip("fastapi", reason='pip install "datasan[serve]"'),
            pytest.importorskip("uvicorn", reason='pip install "datasan[serve]"'))


_import_serve()
from serve_server import Server  # noqa: E402

IRIS = SAMPLE / "tables" / "iris.csv"
TOKEN = "s3cret-token-0123456789"


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    """roots/ (a copy of sample_data, a gate folder, a symlink out), outside/, and the state folder."""
    base = tmp_path_factory.mktemp("serve")
    root = base / "root"
    shutil.copytree(SAMPLE, root / "sample_data")
    (root / "gate").mkdir()
    shutil.copy(IRIS, root / "gate" / "iris.csv")
    (root / "gate" / "steady.csv").write_text("x,label\n" + "".join(f"{i / 7:.3f},{i % 2}\n" for i in range(40)))
    outside = base / "outside"
    outside.mkdir()
    shutil.copy(IRIS, outside / "secret.csv")
    (root / "escape").symlink_to(outside, target_is_directory=True)
    (base / "state").mkdir()
    (base / "datasan.toml").write_text("probe = false\n")  # every scan of the service: no probe
    return base


@pytest.fixture(scope="module")
def server(world):
    s = Server(["--root", str(world / "root"), "--state", str(world / "state" / "jobs.sqlite"), "--workers", "2",
                "--config", str(world / "datasan.toml"), "--rate-limit", "0", "--max-body", "4096"],
               world / "server.log")
    yield s
    s.stop()


def all_pages(server: Server, url: str, limit: int = 7) -> list[dict]:
    items, offset = [], 0
    while True:
        status, page, _ = server.call("GET", f"{url}?offset={offset}&limit={limit}")
        assert status == 200, page
        items += page["items"]
        offset += limit
        if offset >= page["total"]:
            assert len(items) == page["total"]
            return items


def test_submit_and_poll_a_scan_of_sample_data(server, world):
    before = tree_digest(world / "root" / "sample_data")
    status, body, _ = server.call("POST", "/scans", {"path": "sample_data", "options": {"fail_on": "error"}})
    assert status == 202 and body["status"] == "queued"
    job = server.wait_job(body["id"])
    assert job["status"] == "done" and job["options"] == {"fail_on": "error"}
    status, report, _ = server.call("GET", f"/scans/{job['id']}/report.json")
    assert status == 200 and report["run_id"] == job["run_id"]
    assert job["progress"]["samples"] == report["samples"] > 0
    findings = all_pages(server, f"/scans/{job['id']}/findings")
    quarantine = all_pages(server, f"/scans/{job['id']}/quarantine")
    assert len(findings) == report["findings"]["total"]
    assert len(quarantine) == report["quarantined"]
    # fail_on error, no baseline: the gate fails on exactly the codes that have an error finding
    failing = sorted({f["code"] for f in findings if f["severity"] == "error"})
    assert job["verdict"]["passed"] is False and job["verdict"]["exit_code"] == 1
    assert [r.split()[0] for r in job["verdict"]["reasons"]] == failing
    assert "DS101" in failing
    status, html, headers = server.call("GET", f"/scans/{job['id']}/report.html")
    assert status == 200 and headers["content-type"].startswith("text/html") and job["run_id"] in html
    out = world / "state" / "runs" / job["id"]
    assert sorted(p.name for p in out.iterdir() if p.name.endswith(".json")) == ["manifest.json", "report.json",
                                                                                 "stats.json"]
    assert tree_digest(world / "root" / "sample_data") == before  # PATH is never written


def test_gate_answers_from_the_database_until_a_file_changes(server, world):
    status, first, _ = server.call("GET", "/gate?path=gate")
    assert status == 200, first
    assert (first["passed"], first["exit_code"], first["from_cache"], first["reasons"]) == (True, 0, False, [])
    status, again, _ = server.call("GET", "/gate?path=gate")
    assert (again["passed"], again["from_cache"], again["job_id"]) == (True, True, first["job_id"])

    with open(world / "root" / "gate" / "iris.csv", "a") as f:
        f.write("inf,3.0,1.4,0.2,setosa\n")
    status, changed, _ = server.call("GET", "/gate?path=gate")
    assert status == 200, changed
    assert (changed["passed"], changed["exit_code"], changed["from_cache"]) == (False, 1, False)
    assert changed["job_id"] != first["job_id"]
    assert [r.split()[0] for r in changed["reasons"]] == ["DS101"]
    # the rescan took the unchanged file's shard results from the service's cache
    caches = [server.call("GET", f"/scans/{j}/report.json")[1]["cache"] for j in (first["job_id"], changed["job_id"])]
    assert caches[0]["enabled"] and caches[0]["hits"] == 0 and caches[0]["stored"] == 4
    assert (caches[1]["hits"], caches[1]["misses"]) == (2, 2)  # steady.csv's profile and shard; iris.csv's
    assert caches[1]["path"] == str(world / "state" / "cache")
    status, cached, _ = server.call("GET", "/gate?path=gate")
    assert (cached["passed"], cached["exit_code"], cached["from_cache"], cached["job_id"]) == \
        (False, 1, True, changed["job_id"])
    assert cached["rejudged"] is False
    # another fail_on on the same data: that run's findings judged again, no scan
    status, never, _ = server.call("GET", "/gate?path=gate&fail_on=never")
    assert status == 200, never
    assert (never["passed"], never["exit_code"], never["reasons"], never["from_cache"], never["rejudged"],
            never["job_id"]) == (True, 0, [], True, True, changed["job_id"])
    status, again, _ = server.call("GET", "/gate?path=gate")
    assert (again["passed"], again["from_cache"], again["rejudged"], again["job_id"]) == \
        (False, True, False, changed["job_id"])
    status, explicit, _ = server.call("GET", "/gate?path=gate&fail_on=error")  # the default, said: judged again
    assert (explicit["passed"], explicit["reasons"], explicit["rejudged"]) == (False, changed["reasons"], True)
    # once the data changes, the other fail_on scans like any question
    with open(world / "root" / "gate" / "steady.csv", "a") as f:
        f.write("9.000,1\n")
    status, never, _ = server.call("GET", "/gate?path=gate&fail_on=never")
    assert (never["passed"], never["exit_code"], never["from_cache"], never["rejudged"]) == (True, 0, False, False)
    assert never["job_id"] != changed["job_id"]


def test_concurrent_clients(server, world):
    shutil.copy(IRIS, world / "root" / "gate" / "iris2.csv")
    with ThreadPoolExecutor(16) as pool:
        answers = list(pool.map(lambda _: server.call("GET", "/gate?path=gate/iris2.csv"), range(48)))
    assert [a[0] for a in answers] == [200] * 48
    # the first askers join one scan; nobody scans the same data twice
    assert len({a[1]["job_id"] for a in answers}) == 1
    assert {(a[1]["passed"], a[1]["exit_code"]) for a in answers} == {(True, 0)}
    with ThreadPoolExecutor(4) as pool:
        posted = list(pool.map(lambda _: server.call("POST", "/scans", {"path": "gate/iris2.csv"}), range(4)))
    ids = [p[1]["id"] for p in posted]
    assert [p[0] for p in posted] == [202] * 4 and len(set(ids)) == 4
    jobs = [server.wait_job(i) for i in ids]
    assert [(j["status"], j["verdict"]["exit_code"]) for j in jobs] == [("done", 0)] * 4
    assert len({j["run_id"] for j in jobs}) == 4


@pytest.mark.parametrize("path", ["../outside/secret.csv", "gate/../../outside", "escape/secret.csv", "escape",
                                  "/etc", "s3://bucket/data"])
def test_paths_outside_the_roots_are_403(server, world, path):
    runs = set(os.listdir(world / "state" / "runs"))
    from urllib.parse import quote

    assert server.call("GET", f"/gate?path={quote(path)}")[0] == 403
    assert server.call("POST", "/scans", {"path": path})[0] == 403
    assert set(os.listdir(world / "state" / "runs")) == runs  # nothing was scanned


def test_hostile_bodies_and_options(server, world):
    assert server.call("POST", "/scans", raw=b"x" * 10_000)[0] == 413
    assert server.call("POST", "/scans", raw=b"{not json")[0] == 422
    assert server.call("POST", "/scans", {"path": "gate", "extra": 1})[0] == 422
    status, body, _ = server.call("POST", "/scans", {"path": "gate", "options": {"fail_on": "sometimes"}})
    assert (status, body["detail"]) == (422, "fail_on must be one of error, warning, never, not 'sometimes'")
    assert server.call("POST", "/scans", {"path": "gate", "options": {"no_such_option": 1}})[0] == 422
    assert server.call("POST", "/scans", {"path": "gate", "options": {"probe_model": "os:system"}})[0] == 422
    assert server.call("POST", "/scans", {"path": "gate", "options": {"engine": "ray"}})[0] == 422
    status, _, _ = server.call("POST", "/scans", {"path": "gate",
                                                  "options": {"baseline": str(world / "outside" / "x")}})
    assert status == 403
    assert server.call("GET", "/gate?path=gate&fail_on=sometimes")[0] == 422
    assert server.call("GET", "/gate?path=gate/nothing-here")[0] == 404
    assert server.call("GET", "/scans/no-such-job")[0] == 404
    assert server.call("GET", "/scans/no-such-job/report.html")[0] == 404


def test_the_token_is_required_when_configured(world, tmp_path):
    (tmp_path / "token").write_text(TOKEN + "\n")
    s = Server(["--root", str(world / "root" / "gate"), "--state", str(tmp_path / "s.sqlite"),
                "--token-file", str(tmp_path / "token"), "--rate-limit", "5"], tmp_path / "log", token=TOKEN)
    try:
        assert s.call("GET", "/healthz", token="")[0] == 200  # liveness probes carry no secret
        status, body, headers = s.call("GET", "/scans/x", token="")
        assert (status, headers.get("www-authenticate")) == (401, "Bearer")
        assert s.call("GET", "/scans/x", token="wrong-token-0123456789")[0] == 401
        assert s.call("GET", "/scans/x", token=TOKEN[:-1])[0] == 401
        time.sleep(2.5)  # the bucket refills (5 a second, up to 10) after the start-up's health checks
        statuses = [s.call("GET", "/scans/x")[0] for _ in range(30)]
        assert statuses[:10] == [404] * 10  # the right token: through to the route (a burst of 2 x 5)
        assert 429 in statuses
    finally:
        s.stop()


def test_serve_refuses_to_listen_beyond_loopback_without_a_token(world, tmp_path):
    r = CliRunner().invoke(app, ["serve", "--root", str(world / "root"), "--host", "0.0.0.0",
                                 "--state", str(tmp_path / "s.sqlite")])
    assert r.exit_code == 2 and "--token-file" in r.output
    r = CliRunner().invoke(app, ["serve", "--root", str(world), "--state", str(world / "state" / "s.sqlite")])
    assert r.exit_code == 2 and "outside the roots" in " ".join(r.output.split())
    r = CliRunner().invoke(app, ["serve", "--root", str(world / "root"), "--state", str(tmp_path / "s.sqlite"),
                                 "--cache", str(world / "root" / "gate" / "cache")])
    assert r.exit_code == 2 and "keep the cache outside the roots" in " ".join(r.output.split())
    assert not (tmp_path / "s.sqlite").exists()


def test_serve_without_the_extra_exits_2_with_the_install_command(tmp_path):
    code = ("import sys; sys.modules['fastapi'] = None\n"
            "from datasan.cli import main; sys.argv = ['datasan', 'serve', '--root', sys.argv[1], '--state',"
            " sys.argv[2]]; main()")
    p = subprocess.run([sys.executable, "-c", code, str(tmp_path), str(tmp_path / "state" / "s.sqlite")],
                       capture_output=True, text=True, cwd=tmp_path)
    assert p.returncode == 2
    assert 'pip install "datasan[serve]"' in " ".join(p.stderr.split())


def test_restart_marks_the_running_job_interrupted_and_rerun_works(world, tmp_path):
    args = ["--root", str(world / "root"), "--state", str(tmp_path / "s.sqlite"), "--workers", "1",
            "--config", str(world / "datasan.toml")]
    s = Server(args, tmp_path / "log")
    try:
        running = s.call("POST", "/scans", {"path": "sample_data"})[1]["id"]
        queued = s.call("POST", "/scans", {"path": "sample_data/tables/iris.csv"})[1]["id"]
        s.wait_job(running, until=lambda j: j["progress"]["samples"] > 0)  # the scan's process is at work
        scan_processes = psutil.Process(s.proc.pid).children(recursive=True)
        assert scan_processes
    finally:
        s.kill()
    # the scan notices its service died and stops, with its shard workers: nothing is left behind
    gone, alive = psutil.wait_procs(scan_processes, timeout=60)
    assert alive == []
    s = Server(args + ["--keep-runs", "1"], tmp_path / "log")
    try:
        job = s.call("GET", f"/scans/{running}")[1]
        assert (job["status"], job["verdict"]) == ("interrupted", None)
        assert s.call("GET", f"/scans/{running}/findings")[0] == 409
        assert s.wait_job(queued)["status"] == "done"  # a job that never started runs after the restart
        status, body, _ = s.call("POST", f"/scans/{running}/rerun")
        assert status == 202 and body["rerun_of"] == running
        rerun = s.wait_job(body["id"])
        assert (rerun["status"], rerun["rerun_of"], rerun["path"]) == ("done", running, job["path"])
        assert rerun["verdict"]["exit_code"] == 1
        # --keep-runs 1: only the newest run's folder stays; the others' verdicts stay in the database
        assert sorted(os.listdir(tmp_path / "runs")) == [rerun["id"]]
        assert s.call("GET", f"/scans/{queued}/findings")[0] == 410
        done = s.call("GET", f"/scans/{queued}")[1]
        assert (done["expired"], done["verdict"]["exit_code"]) == (True, 0)
    finally:
        s.stop()


def test_concurrent_walks_of_one_path_are_shared(monkeypatch):
    import asyncio
    import threading

    from datasan.serve import fingerprint as fp

    walked, release = [], threading.Event()

    def slow_walk(path):
        walked.append(path)
        n = len(walked)
        release.wait(30)
        return f"{path}{n}"

    monkeypatch.setattr(fp, "fingerprint", slow_walk)

    async def ask():
        walks = fp.SharedWalks()
        first = asyncio.ensure_future(walks("p"))
        while not walked:  # the first walk is under way ...
            await asyncio.sleep(0.01)
        later = [asyncio.ensure_future(walks("p")) for _ in range(20)]  # ... so these may not take its result
        other = asyncio.ensure_future(walks("q"))
        await asyncio.sleep(0)
        release.set()
        return await first, await asyncio.gather(*later), await other

    first, later, other = asyncio.run(ask())
    # the 20 later askers share the one walk begun after theirs; "q" is walked on its own
    assert first == "p1" and set(later) == {later[0]} and later[0] in ("p2", "p3") and other in ("q2", "q3")
    assert sorted(walked) == ["p", "p", "q"]


def test_stopping_the_service_interrupts_its_scans_and_leaves_no_process(world, tmp_path):
    import sqlite3

    s = Server(["--root", str(world / "root"), "--state", str(tmp_path / "s.sqlite"), "--config",
                str(world / "datasan.toml")], tmp_path / "log")
    try:
        job = s.call("POST", "/scans", {"path": "sample_data"})[1]["id"]
        s.wait_job(job, until=lambda j: j["progress"]["samples"] > 0)
        scan_processes = psutil.Process(s.proc.pid).children(recursive=True)
    finally:
        s.stop()  # SIGTERM (uvicorn ends by raising it again once shut down: the exit status is -15)
    gone, alive = psutil.wait_procs(scan_processes, timeout=60)
    assert alive == []
    with sqlite3.connect(tmp_path / "s.sqlite") as db:
        assert db.execute("SELECT status, error FROM jobs WHERE id = ?", (job,)).fetchall() == \
            [("interrupted", "the service stopped while this scan ran")]
    assert not (tmp_path / "runs" / job / "manifest.json").exists()  # nothing half published
