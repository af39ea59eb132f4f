"""Compare a scan's statistics with a baseline scan's: distribution, class and image drift.

The baseline is a previous output folder (checked with
:func:`~datasan.outputs.manifest.verify_output`); its stats.json and
report.json are compared with this scan's, source by source and column by
column.  Every comparison goes to report.json ``drift.comparisons`` with its
raw value, the limit it was held against and whether it drifted; the drifted
ones become warnings (rules DS501-DS514, :mod:`datasan.checks.drift`).

A change counts as drift when it passes its threshold (``Thresholds.drift_*``)
*and* ``drift_noise_z`` standard errors of the sampling noise expected for the
two scans' sizes, so a small table resampled never drifts while a large one
reports small real changes.  See docs/drift.md.
"""

from __future__ import annotations

import json
import math
import os
from bisect import bisect_left
from typing import Any

from datasan.errors import UsageError
from datasan.stats import sketch_buckets

Entry = dict[str, Any]


def _shown(path: str) -> str:
    """The baseline as report.json names it: a store URI as given, a local path made absolute."""
    from datasan import fs

    path = fs.local_path(os.fspath(path))
    return path if fs.is_remote(path) else os.path.abspath(path)


def no_comparison(reason: str) -> dict[str, Any]:
    """report.json ``drift`` when statistics were not compared, and why."""
    return {"compared": False, "reason": reason, "comparisons": [], "drifted": 0}


def baseline_folder(path: str) -> str | None:
    """The output folder a ``--baseline`` value names (local or a store URI), or None for a
    findings.parquet that sits alone (no manifest beside it): then only findings can be compared."""
    from datasan import fs
    from datasan.outputs.manifest import MANIFEST

    path = fs.local_path(os.fspath(path))
    if fs.is_dir(path):
        return path
    folder = fs.dirname(path)
    if path.endswith(".json") or fs.exists(fs.join(folder, MANIFEST)):
        return folder
    return None


def read_baseline(path: str) -> tuple[dict, dict] | str:
    """(stats.json, report.json) of the baseline output folder, or the reason there are none."""
    from datasan import fs
    from datasan.outputs.manifest import verify_output

    folder = baseline_folder(path)
    if folder is None:
        return (f"the baseline {path} is a findings.parquet without its output folder: "
                "findings were compared, statistics were not")
    verify_output(folder)
    docs = []
    for name in ("stats.json", "report.json"):
        where = fs.join(folder, name)
        try:
            if fs.info(where) is None:
                return f"the baseline folder {folder} has no {name}: statistics were not compared"
            docs.append(json.loads(fs.read_bytes(where)))
        except (OSError, ValueError) as exc:
            raise UsageError(f"baseline {folder}: {name} cannot be read: {exc}") from exc
    return docs[0], docs[1]


def compare_to_baseline(options, stats: dict, report: dict, findings) -> dict[str, Any]:
    """report.json ``drift`` for this scan against ``options.baseline``; the drifted
    comparisons are added to ``findings`` (a FindingBuffer) under the options' policy."""
    if not options.baseline:
        return no_comparison("no --baseline was given")
    base = read_baseline(options.baseline)
    if isinstance(base, str):
        return no_comparison(base)
    from datasan.checks.drift import drift_findings
    from datasan.findings import FindingBuffer

    base_stats, base_report = base
    comparisons = compare(base_stats, base_report, stats, report, options)
    fb = FindingBuffer()
    fb.extend(drift_findings(comparisons))
    fb.apply_policy(options)
    findings.merge(fb)
    th = options.thresholds
    return {"compared": True, "baseline": _shown(options.baseline),
            "baseline_run_id": base_stats.get("run_id") or base_report.get("run_id"),
            "thresholds": {k: getattr(th, k) for k in vars(th) if k.startswith("drift_")},
            "comparisons": comparisons, "drifted": sum(1 for e in comparisons if e["drifted"])}


def compare(base_stats: dict, base_report: dict, stats: dict, report: dict, options) -> list[Entry]:
    """Every comparison between the baseline's statistics and these, in a stable order."""
    out: list[Entry] = []
    base_read = _missing_by_source(base_report)
    cur_read = _missing_by_source(report)
    targets = {s.get("source"): s.get("target") for s in report.get("sources") or []}
    base_labels, cur_labels = base_stats.get("labels") or {}, stats.get("labels") or {}
    for section in ("tables", "images"):
        base, cur = base_stats.get(section) or {}, stats.get(section) or {}
        for src in sorted(set(base) | set(cur)):
            if src not in cur:
                out.append(_entry(section, src, None, "missing_source", None, drifted=True))
                continue
            if src not in base:
                out.append(_entry(section, src, None, "new_source", None, drifted=True))
                continue
            th = options.for_source(src).thresholds
            if section == "tables":
                # a class target is compared by its class shares, not as a number
                classes = targets.get(src) if src in base_labels and src in cur_labels else None
                out.extend(table_comparisons(src, base[src], cur[src], th, skip=classes))
                out.extend(missing_comparisons(src, base_read.get(src), cur_read.get(src), th))
            else:
                bp, cp = base[src].get("profile") or {}, cur[src].get("profile") or {}
                for col in ("brightness", "width", "height", "aspect"):
                    if col in bp and col in cp:
                        out.extend(numeric_comparisons("images", src, col, bp[col], cp[col], th))
    for src in sorted(set(base_labels) & set(cur_labels)):
        th = options.for_source(src).thresholds
        out.extend(class_comparisons(src, targets.get(src), base_labels[src], cur_labels[src], th))
    return out


def _entry(section: str, source: str, column: str | None, metric: str, value: Any, **extra) -> Entry:
    e = {"section": section, "source": source, "column": column, "metric": metric, "value": value}
    e.update(extra)
    e.setdefault("drifted", False)
    # report.json is strict JSON: a mean that overflowed to inf is reported as null
    return {k: (None if isinstance(v, float) and not math.isfinite(v) else v) for k, v in e.items()}


def table_comparisons(src: str, base: dict, cur: dict, th, skip: str | None = None) -> list[Entry]:
    """New / missing columns, type changes, numeric (but ``skip``) and categorical drift of one table."""
    out: list[Entry] = []
    bcols = base.get("types") or {c: None for c in base.get("columns") or {}}
    ccols = cur.get("types") or {c: None for c in cur.get("columns") or {}}
    for col in bcols:
        if col not in ccols:
            out.append(_entry("tables", src, col, "missing_column", None, drifted=True))
    for col in ccols:
        if col not in bcols:
            out.append(_entry("tables", src, col, "new_column", None, drifted=True))
        elif bcols[col] is not None and ccols[col] is not None and bcols[col] != ccols[col]:
            out.append(_entry("tables", src, col, "type_change", None, drifted=True,
                              baseline_type=bcols[col], type=ccols[col]))
    bnum, cnum = base.get("columns") or {}, cur.get("columns") or {}
    for col in bnum:
        if col in cnum and col != skip:
            out.extend(numeric_comparisons("tables", src, col, bnum[col], cnum[col], th))
    bcat, ccat = base.get("categories") or {}, cur.get("categories") or {}
    for col in bcat:
        if col in ccat and "counts" in bcat[col] and "counts" in ccat[col]:
            out.extend(share_comparisons("category_linf", src, col, bcat[col]["counts"], ccat[col]["counts"], th))
    return out


def numeric_comparisons(section: str, src: str, col: str, base: dict, cur: dict, th) -> list[Entry]:
    """Mean shift (in baseline standard deviations) and Jensen-Shannon distance of one column."""
    nb, nc = base.get("count") or 0, cur.get("count") or 0
    if not nb or not nc:
        return []
    z = th.drift_noise_z
    inv = 1.0 / nb + 1.0 / nc
    out = []
    mb, mc = base["mean"], cur["mean"]
    scale = base["std"] or cur["std"]
    if not all(isinstance(v, (int, float)) and math.isfinite(v) for v in (mb, mc, scale)):
        pass  # moments overflowed (|x| near 1e308): no mean shift to speak of; the sketch still compares
    elif scale:
        shift = abs(mc - mb) / scale
        limit = max(th.drift_mean_shift, z * math.sqrt(inv))
        out.append(_entry(section, src, col, "mean_shift", shift, limit=limit, threshold=th.drift_mean_shift,
                          drifted=shift > limit, baseline_mean=mb, mean=mc, baseline_std=base["std"]))
    else:  # both constant: any change of the value is a shift
        out.append(_entry(section, src, col, "mean_shift", 0.0 if mc == mb else None, limit=None,
                          threshold=th.drift_mean_shift, drifted=mc != mb, baseline_mean=mb, mean=mc,
                          baseline_std=base["std"]))
    bs, cs = base.get("sketch"), cur.get("sketch")
    if bs and cs and bs.get("scheme") == cs.get("scheme"):
        # at least ~5 values of the smaller scan per bin, where the chi-square noise model holds
        bins = max(2, min(th.drift_bins, min(nb, nc) // 5))
        p, q = binned(sketch_buckets(bs), sketch_buckets(cs), bins)
        d = js_distance(p, q)
        k = len(p)
        # 8 JSD (nats) / (1/n1 + 1/n2) is about chi-square with k - 1 degrees of freedom
        noise = math.sqrt(chi2_quantile(k - 1, z) / 8 / math.log(2) * inv)
        limit = max(th.drift_js, noise)
        out.append(_entry(section, src, col, "js_distance", d, limit=limit, threshold=th.drift_js,
                          drifted=d > limit, bins=k))
    return out


def binned(base_buckets: list, cur_buckets: list, bins: int) -> tuple[list[int], list[int]]:
    """Counts of both sketches over up to ``bins`` equal-mass bins of the baseline.

    Bins are unions of whole sketch buckets, cut where the baseline's cumulative
    count passes j/bins of its total; values beyond the baseline's range fall in
    the first or last bin.  A baseline bucket holding more than 1/bins of the
    mass gives fewer bins.
    """
    total = sum(c for _, c in base_buckets)
    cuts: list[int] = []  # inclusive upper bucket index of every bin but the last
    acc, j = 0, 1
    for idx, c in base_buckets[:-1]:
        acc += c
        if acc * bins >= j * total:
            cuts.append(idx)
            while j * total <= acc * bins:
                j += 1
    p = [0] * (len(cuts) + 1)
    q = [0] * (len(cuts) + 1)
    for counts, buckets in ((p, base_buckets), (q, cur_buckets)):
        for idx, c in buckets:
            counts[bisect_left(cuts, idx)] += c
    return p, q


def js_distance(p: list[int], q: list[int]) -> float:
    """Jensen-Shannon distance (base 2, 0..1) between two count vectors."""
    sp, sq = sum(p), sum(q)
    jsd = 0.0
    for a, b in zip(p, q):
        pa, qb = a / sp, b / sq
        m = (pa + qb) / 2
        if pa:
            jsd += 0.5 * pa * math.log2(pa / m)
        if qb:
            jsd += 0.5 * qb * math.log2(qb / m)
    return math.sqrt(max(jsd, 0.0))


def chi2_quantile(dof: int, z: float) -> float:
    """The chi-square quantile with ``dof`` degrees of freedom at the normal quantile ``z``
    (Wilson-Hilferty: close in the tail where mean + z sd is not, for few degrees)."""
    if dof <= 0:
        return 0.0
    a = 2.0 / (9.0 * dof)
    return dof * max(1.0 - a + z * math.sqrt(a), 0.0) ** 3


def _poisson_floor(z: float) -> float:
    """The expected count below which seeing none is still plausible at ``z`` (one-sided)."""
    return -math.log(0.5 * math.erfc(z / math.sqrt(2)))


def class_comparisons(src: str, col: str | None, base: dict, cur: dict, th) -> list[Entry]:
    """L-infinity distance of class shares, and new and vanished classes, of one label set."""
    nb, nc = sum(base.values()), sum(cur.values())
    if not nb or not nc:
        return []
    out = share_comparisons("class_linf", src, col, base, cur, th)
    floor = _poisson_floor(th.drift_noise_z)
    for cls in sorted(set(base) | set(cur), key=str):
        if cls not in base:
            expected = cur[cls] * nb / nc  # had it been there at this share, the baseline's count
            out.append(_entry("labels", src, col, "new_class", cur[cls], drifted=expected > floor,
                              expected_baseline_count=expected, limit=floor, **{"class": cls}))
        elif cls not in cur:
            expected = base[cls] * nc / nb
            out.append(_entry("labels", src, col, "vanished_class", 0, drifted=expected > floor,
                              baseline_count=base[cls], expected_count=expected, limit=floor,
                              **{"class": cls}))
    return out


def share_comparisons(metric: str, src: str, col: str | None, base: dict, cur: dict, th) -> list[Entry]:
    """The L-infinity distance between two count tables' shares; drifted when some value's
    change passes both the threshold and ``drift_noise_z`` standard errors of its share."""
    nb, nc = sum(base.values()), sum(cur.values())
    if not nb or not nc:
        return []
    z, inv = th.drift_noise_z, 1.0 / nb + 1.0 / nc
    rows = []  # (change, key, limit, baseline share, share)
    for key in sorted(set(base) | set(cur), key=str):
        sb, sc = base.get(key, 0) / nb, cur.get(key, 0) / nc
        pooled = (base.get(key, 0) + cur.get(key, 0)) / (nb + nc)
        limit = max(th.drift_class_linf, z * math.sqrt(pooled * (1 - pooled) * inv))
        rows.append((abs(sc - sb), key, limit, sb, sc))
    over = [r for r in rows if r[0] > r[2]]
    # the value named: the largest change among those past their limit, else the largest
    _, worst, limit, sb, sc = max(over or rows, key=lambda r: r[0])
    section = "labels" if metric == "class_linf" else "tables"
    return [_entry(section, src, col, metric, max(r[0] for r in rows), limit=limit,
                   threshold=th.drift_class_linf, drifted=bool(over), worst=worst, baseline_share=sb, share=sc)]


def _missing_by_source(report: dict) -> dict[str, tuple[int, dict]]:
    """{table source: (rows read, missing cells per column)} from a report.json."""
    out = {}
    for s in report.get("sources") or []:
        if s.get("rows_read") is not None and s.get("missing") is not None:
            out[s["source"]] = (s["rows_read"], s["missing"])
    return out


def missing_comparisons(src: str, base, cur, th) -> list[Entry]:
    """The change of each column's share of missing cells over the rows read."""
    if not base or not cur or not base[0] or not cur[0]:
        return []
    (rb, mb), (rc, mc) = base, cur
    z, inv = th.drift_noise_z, 1.0 / rb + 1.0 / rc
    out = []
    for col in mb:
        if col not in mc:
            continue
        pb, pc = mb[col] / rb, mc[col] / rc
        pooled = (mb[col] + mc[col]) / (rb + rc)
        limit = max(th.drift_missing_rate, z * math.sqrt(pooled * (1 - pooled) * inv))
        d = abs(pc - pb)
        out.append(_entry("tables", src, col, "missing_rate_change", d, limit=limit,
                          threshold=th.drift_missing_rate, drifted=d > limit, baseline_rate=pb, rate=pc))
    return out
