"""The service's pieces that need no server: the data's fingerprint, path resolution, token, rate limit."""

from __future__ import annotations

import os

import pytest

from datasan.serve.fingerprint import fingerprint
from datasan.serve.security import Forbidden, RateLimiter, check_scan_options, resolve_path, token_matches


@pytest.fixture
def data(tmp_path):
    root = tmp_path / "root"
    (root / "a").mkdir(parents=True)
    (root / "a" / "x.csv").write_text("a,b\n1,2\n")
    (root / "y.csv").write_text("a,b\n3,4\n")
    os.utime(root / "y.csv", ns=(1_000_000_000, 1_000_000_000))
    return root


def test_fingerprint_changes_with_size_mtime_names_and_links_only(data, tmp_path):
    fp = fingerprint(str(data))
    assert fingerprint(str(data)) == fp
    (data / "a" / "x.csv").read_text()  # reading changes nothing it looks at
    os.utime(data / "a", ns=(5, 5))  # a folder's own times do not count
    assert fingerprint(str(data)) == fp
    os.utime(data / "y.csv", ns=(1_000_000_000, 1_000_000_001))
    touched = fingerprint(str(data))
    assert touched != fp
    (data / "y.csv").write_text("a,b\n3,5\n")  # same size, other mtime
    os.utime(data / "y.csv", ns=(1_000_000_000, 1_000_000_000))
    assert fingerprint(str(data)) == fp  # size and mtime kept: by design not seen
    os.rename(data / "y.csv", data / "z.csv")
    renamed = fingerprint(str(data))
    assert renamed not in (fp, touched)
    outside = tmp_path / "outside.csv"
    outside.write_text("secret\n")
    (data / "link.csv").symlink_to(outside)
    linked = fingerprint(str(data))
    outside.write_text("secret, longer\n")  # never followed: the target's size is not read
    assert fingerprint(str(data)) == linked != renamed
    assert fingerprint(str(data / "a" / "x.csv")) != fingerprint(str(data / "z.csv"))  # one file


def test_resolve_path_keeps_to_the_roots(data, tmp_path):
    roots = [os.path.realpath(data)]
    assert resolve_path("a/x.csv", roots) == os.path.join(roots[0], "a", "x.csv")
    assert resolve_path(str(data / "a"), roots) == os.path.join(roots[0], "a")
    assert resolve_path(".", roots) == roots[0]
    (data / "out").symlink_to(tmp_path, target_is_directory=True)
    for bad in ("../outside.csv", "a/../../root2", str(tmp_path), "out", "out/outside.csv", "", "a\0b",
                "s3://bucket/x", None, 3):
        with pytest.raises(Forbidden):
            resolve_path(bad, roots)
    # a sibling whose name starts like the root's is not under it
    (tmp_path / "root-2").mkdir()
    with pytest.raises(Forbidden):
        resolve_path(str(tmp_path / "root-2"), roots)


def test_scan_options_pass_datasan_checks_and_leave_the_service_its_own(data, tmp_path):
    roots = [os.path.realpath(data)]
    runs = str(tmp_path / "runs")
    assert check_scan_options({"fail_on": "warning", "select": "DS1"}, roots, runs) == \
        {"fail_on": "warning", "select": ["DS1"]}
    assert check_scan_options(None, roots, runs) == {}
    for bad, message in (({"fail_on": "x"}, "fail_on must be one of"), ({"nope": 1}, "unknown key"),
                         ({"probe_model": "m:f"}, "cannot be set per request"), ([1], "must be an object"),
                         ({"cache": str(tmp_path / "c")}, "cannot be set per request"),
                         ({"cache_max_bytes": 1}, "cannot be set per request"),
                         ({"thresholds": {"outlier_k": "big"}}, "thresholds.outlier_k must be a number")):
        with pytest.raises(ValueError, match=message):
            check_scan_options(bad, roots, runs)
    with pytest.raises(Forbidden):
        check_scan_options({"baseline": str(tmp_path / "elsewhere" / "findings.parquet")}, roots, runs)


def test_token_matches_only_the_exact_bearer_token():
    token = "0123456789abcdef"
    assert token_matches(f"Bearer {token}", token)
    for header in (None, "", token, f"Basic {token}", f"Bearer {token}x", f"Bearer {token[:-1]}", "Bearer "):
        assert not token_matches(header, token)


def test_rate_limiter_allows_a_burst_of_twice_the_rate_per_client():
    limiter = RateLimiter(rate=0.001)  # refills one request in 1,000 s: nothing refills during the test
    assert [limiter.allow("a") for _ in range(3)] == [True, False, False]  # burst max(1, 2 x rate) = 1
    assert limiter.allow("b")
    limiter = RateLimiter(rate=5)
    assert sum(limiter.allow("c") for _ in range(10)) == 10
    assert RateLimiter(rate=0).allow("d")


@pytest.fixture(scope="module")
def judged(tmp_path_factory):
    """A folder with an error (a NaN) and a warning (a constant column), scanned once at
    fail_on never: the stored run that other fail_on values re-judge."""
    import datasan

    base = tmp_path_factory.mktemp("rejudge")
    data = base / "data"
    data.mkdir()
    (data / "nan.csv").write_text("x,label\n" + "".join(f"{i / 3:.3f},{i % 2}\n" for i in range(20)) + "nan,1\n")
    (data / "flat.csv").write_text("x,c,label\n" + "".join(f"{i / 7:.3f},5,{i % 2}\n" for i in range(20)))
    config = base / "datasan.toml"
    config.write_text('fail_on = "warning"\n')
    with datasan.scan(data, out_dir=base / "stored", config=False, fail_on="never", probe=False) as r:
        assert r.passed
    return base


@pytest.mark.parametrize("options, config", [({"fail_on": "error"}, False), ({"fail_on": "warning"}, False),
                                             ({"fail_on": "never"}, False), ({}, False), ({}, "datasan.toml")])
def test_rejudging_a_stored_run_gives_the_verdict_of_a_scan_at_that_fail_on(judged, options, config):
    import datasan
    from datasan.serve.jobs import findings_digest, rejudge, verdict_of

    config = str(judged / config) if config else False
    with datasan.scan(judged / "data", config=config, probe=False, **options) as direct:
        expected = verdict_of(direct)
    assert rejudge({"out_dir": str(judged / "stored")}, {"probe": False, **options}, config) == expected
    # what the two runs must share for one to answer for the other: everything but fail_on
    assert findings_digest({"probe": False, **options}, False) == findings_digest({"probe": False}, False)
    assert findings_digest({"probe": True}, False) != findings_digest({"probe": False}, False)


def test_the_rejudged_verdicts_differ_as_fail_on_does(judged):
    from datasan.serve.jobs import rejudge

    job = {"out_dir": str(judged / "stored")}
    verdicts = {f: rejudge(job, {"fail_on": f}, False) for f in ("error", "warning", "never")}
    assert {f: (v[0], v[1], [r.split()[0] for r in v[2]]) for f, v in verdicts.items()} == {
        "error": (False, 1, ["DS101"]), "warning": (False, 1, ["DS101", "DS108"]), "never": (True, 0, [])}
