"""``--format html`` and every scan's ``report.html``: one self-contained page for people.

Everything is inline (CSS, matplotlib SVG charts, JPEG thumbnails as data
URLs, a few lines of plain JavaScript to filter the findings table) and a
Content-Security-Policy forbids the browser any other load, so the file opens
offline and makes no network request.  The page is rendered with Jinja2 from
the :class:`~datasan.outputs.view.FindingsView` and the run's stats.json /
report.json documents; nothing under PATH is read but the flagged images.
Its size is bounded whatever the data: findings rows per rule, charts and
thumbnails (``report_thumbnails``) are capped.
"""

from __future__ import annotations

import functools
import threading
from typing import TYPE_CHECKING, Any

from datasan.outputs.escape import printable

if TYPE_CHECKING:  # pragma: no cover
    from datasan.outputs.view import FindingsView

#: findings listed per rule in the filterable table (findings.parquet has them all)
ROWS_PER_RULE = 50
#: histograms drawn per report (numeric columns first come, first drawn)
MAX_CHARTS = 120
#: sources listed in the sources table (worst first)
MAX_SOURCES = 300
#: drift comparisons listed (drifted first)
MAX_DRIFT_ROWS = 200
#: the default of the report_thumbnails option, for reports of scans that did not record it
DEFAULT_THUMBNAILS = 200
#: offending boxes drawn over one thumbnail
MAX_BOXES = 20
#: classes of a box source whose area histogram is drawn (most boxes first)
MAX_CLASS_CHARTS = 8
#: classes of a box source listed in its per-class table
MAX_CLASS_ROWS = 100
#: highest-loss samples shown with a thumbnail, over all probed sources
MAX_LOSS_THUMBNAILS = 40
#: the meta tag that carries the run id (read back by the manifest check)
RUN_ID_META = "datasan-run-id"


def render_html(view: "FindingsView", out_dir: str | None = None) -> str:
    """The whole report.html document for ``view`` (its charts kept in the scan's content
    cache, when it had one)."""
    from datasan.outputs import chart_helper
    from datasan.outputs.charts import chart_cache

    try:
        with chart_cache(getattr(view.result, "cache_dir", None)):
            context, page = _queued_context(view, out_dir)
            # compiled while the helper draws (its code may come from the cache too)
            template = _template()
            _fill_charts(context, page)
    finally:
        chart_helper.stop()  # a scan's helper draws one page
    return template.render(**context)


_TEMPLATE_LOCK = threading.Lock()


def _template():
    # compiling the template takes 0.1-0.3 s: once per process, not once per page (datasan
    # report, a service rendering many runs), and its code is kept in the scan's content
    # cache for the next process; a scan with workers compiles it while they work
    # (:func:`compile_template`): the page waits for that compilation, never does it twice
    with _TEMPLATE_LOCK:
        return _compiled_template()


def compile_template(cache_path: str | None) -> None:
    """Compile report.html's template now (on a background thread while the scan's workers
    work), its code taken from and kept in the content cache at ``cache_path`` (None: none)."""
    from datasan.outputs.charts import chart_cache

    with chart_cache(cache_path):
        _template()


@functools.lru_cache(maxsize=1)
def _compiled_template():
    import jinja2

    from datasan.outputs.charts import TemplateCodeCache

    env = jinja2.Environment(loader=jinja2.PackageLoader("datasan.outputs", "templates"),
                             autoescape=True, trim_blocks=True, lstrip_blocks=True,
                             bytecode_cache=TemplateCodeCache())
    env.filters["p"] = printable
    env.filters["num"] = _num
    return env.get_template("report.html.j2")


def write(view: "FindingsView", out_dir: str | None, console: Any, quiet: bool = False) -> None:
    """Print :func:`render_html` on stdout."""
    console.file.write(render_html(view, out_dir))


def _num(x: Any) -> str:
    if x is None:
        return "–"
    if isinstance(x, bool) or isinstance(x, int):
        return f"{x:,}"
    if isinstance(x, float):
        return f"{x:.4g}"
    return str(x)


class _Salt:
    """Distinct, repeatable id prefixes for the charts of one page."""

    def __init__(self) -> None:
        self.n = 0

    def __call__(self) -> str:
        self.n += 1
        return f"c{self.n}"


def report_context(view: "FindingsView", out_dir: str | None) -> dict[str, Any]:
    """Everything the template shows, as plain values."""
    context, page = _queued_context(view, out_dir)
    _fill_charts(context, page)
    return context


def _queued_context(view: "FindingsView", out_dir: str | None) -> tuple[dict[str, Any], Any]:
    """The context with a slot where each chart goes, and the page's queued charts (the
    helper starts drawing them as they are queued)."""
    from datasan.outputs.charts import PageCharts

    result, summary, verdict = view.result, view.result.summary, view.verdict
    stats = result.stats or {}
    salt = _Salt()
    charts = {"left": MAX_CHARTS, "page": PageCharts()}
    options = dict(summary.options or {})
    cap = options.get("report_thumbnails", DEFAULT_THUMBNAILS)
    context = {
        "run_id": summary.run_id, "run_id_meta": RUN_ID_META,
        "version": summary.datasan_version, "path": summary.path, "started": summary.started,
        "seconds": summary.seconds, "options": options, "out_dir": out_dir,
        "passed": verdict.passed, "verdict": verdict, "gate_summary": view.gate_summary(),
        "samples": summary.samples, "kept": summary.kept, "quarantined": summary.quarantined,
        "sources": view.sources[:MAX_SOURCES], "more_sources": max(0, len(view.sources) - MAX_SOURCES),
        "rules": _rules(view), "findings": _finding_rows(result.findings_table),
        "total_findings": result.findings_table.num_rows, "rows_per_rule": ROWS_PER_RULE,
        "tables": _tables(stats, result.findings_table, salt, charts),
        "labels": _labels(stats, result.findings_table, salt, charts),
        "images": _images(stats, salt, charts),
        "boxes": _boxes(stats, salt, charts),
        "thumbnails": _thumbnail_groups(summary.path, result.findings_table, int(cap)),
        "thumbnail_cap": int(cap),
        "probe": summary.probe or {},
        "losses": _probe_losses(summary.path, summary.probe or {}, salt, charts),
        "drift": _drift(summary.drift or {}),
        "charts_left_out": max(0, -charts["left"]),
        "internal_errors": summary.internal_errors,
    }
    return context, charts["page"]


def send_charts_ahead(stats: dict[str, Any], cache_dir: str | None) -> None:
    """Send the charts of a run's stats.json to the chart helper (when one runs) while the run
    still writes its other outputs: the page then finds them drawn or being drawn.  The page's
    own builders make the calls, so they come in the page's order with the page's salts;
    the probe's loss charts, last on the page, are left to the page."""
    from datasan.outputs import chart_helper
    from datasan.outputs.charts import AheadCharts, chart_cache

    if not chart_helper.running():
        return
    with chart_cache(cache_dir):
        salt = _Salt()
        charts = {"left": MAX_CHARTS, "page": AheadCharts()}
        _tables(stats, None, salt, charts)
        _labels(stats, None, salt, charts)
        _images(stats, salt, charts)
        _boxes(stats, salt, charts)


def _fill_charts(context: dict[str, Any], page: Any) -> None:
    """Put each queued chart's SVG in its slot (drawn by now, by the helper or here)."""
    svgs = page.results()
    for section in _CHART_SECTIONS:
        context[section] = _filled(context[section], svgs)


#: the parts of the context that hold charts
_CHART_SECTIONS = ("tables", "labels", "images", "boxes", "losses")


# ------------------------------------------------------------------ findings
def _rules(view: "FindingsView") -> list[dict[str, Any]]:
    from datasan.outputs.digest import EXAMPLES
    from datasan.rules import RULES

    counts = view.rule_counts()
    out = []
    for d in view.rules:
        rule, c = RULES[d.code], counts[d.code]
        out.append({"code": d.code, "name": rule.name, "severity": d.severity, "count": d.count,
                    "new": c.new, "failing": c.failing, "what": rule.what, "why": rule.why, "fix": rule.fix,
                    "examples": [(k.example, k.count) for k in d.kinds[:EXAMPLES]],
                    "more": sum(k.count for k in d.kinds[EXAMPLES:])})
    return out


def _first_per_code(ft, per_code: int) -> list[int]:
    """Row numbers of the first ``per_code`` findings of each code, in table order."""
    from datasan.outputs.digest import dense_ids, first_per_key

    if ft.num_rows == 0:
        return []
    return first_per_key(dense_ids(ft.column("code"))[0], per_code).tolist()


def _finding_rows(ft) -> list[dict[str, Any]]:
    """Up to ROWS_PER_RULE findings of each rule, as dicts of the contract's columns."""
    import pyarrow as pa

    rows = _first_per_code(ft, ROWS_PER_RULE)
    if not rows:
        return []
    return ft.take(pa.array(rows, type=pa.int64())).select(
        ["code", "check", "severity", "sample", "source", "row", "column", "message"]).to_pylist()


# ------------------------------------------------------------------ tables
def _quarantined_per_column(ft) -> dict[tuple[str, str], int]:
    """{(source, column): rows quarantined by an error finding on that column} (none for no
    findings table)."""
    import pyarrow as pa
    import pyarrow.compute as pc

    from datasan.numpy_arrow import from_numpy
    from datasan.outputs.digest import first_of_groups

    if ft is None or ft.num_rows == 0:
        return {}
    mask = pc.and_(pc.equal(ft.column("severity"), pa.scalar("error", pa.string())), pc.is_valid(ft.column("column")))
    sub = ft.filter(mask)
    if sub.num_rows == 0:
        return {}
    pairs, _ = first_of_groups([sub.column("source"), sub.column("column")])
    out = {(s, c): 0 for s, c in zip(sub.column("source").take(from_numpy(pairs)).to_pylist(),
                                     sub.column("column").take(from_numpy(pairs)).to_pylist())}
    # distinct non-null rows per (source, column)
    sub = sub.filter(pc.is_valid(sub.column("row")))
    if sub.num_rows:
        firsts, _ = first_of_groups([sub.column("source"), sub.column("column"), sub.column("row")])
        for s, c in zip(sub.column("source").take(from_numpy(firsts)).to_pylist(),
                        sub.column("column").take(from_numpy(firsts)).to_pylist()):
            out[(s, c)] += 1
    return out


class _Slot:
    """Where a queued chart goes in the context (its index in the page's charts)."""

    __slots__ = ("i",)

    def __init__(self, i: int) -> None:
        self.i = i


def _chart(charts: dict[str, Any], salt: _Salt, draw, *args: Any, **kwargs: Any) -> _Slot | None:
    """Queue chart function ``draw`` of datasan.outputs.charts with a new salt (None: past
    the page's chart limit)."""
    charts["left"] -= 1
    if charts["left"] < 0:
        return None
    return _Slot(charts["page"].add(draw, *args, salt=salt(), **kwargs))


def _histogram_of(m: dict, charts: dict[str, Any], salt: _Salt, **kwargs: Any) -> _Slot | None:
    """Queue the histogram of a stats.json entry (its sketch, mean ± std, min..max)."""
    from datasan.outputs import charts as ch

    return _chart(charts, salt, ch.histogram, m.get("sketch"), m.get("mean"), m.get("std"),
                  lo=m.get("min"), hi=m.get("max"), **kwargs)


def _filled(obj: Any, svgs: list[str | None]) -> Any:
    """``obj`` with every chart slot replaced by its SVG."""
    if isinstance(obj, _Slot):
        return svgs[obj.i]
    if isinstance(obj, dict):
        return {k: _filled(v, svgs) for k, v in obj.items()}
    if isinstance(obj, list):
        return [_filled(v, svgs) for v in obj]
    return obj


def _tables(stats: dict, ft, salt: _Salt, charts: dict[str, Any]) -> list[dict[str, Any]]:
    from datasan.outputs import charts as ch

    quarantined = _quarantined_per_column(ft)
    out = []
    for source, table in (stats.get("tables") or {}).items():
        cols = []
        for name, c in (table.get("columns") or {}).items():
            svg = _histogram_of(c, charts, salt)
            cols.append({"name": name, "stats": c, "quarantined": quarantined.get((source, name), 0),
                         "svg": svg})
        cats = []
        for name, c in (table.get("categories") or {}).items():
            counts = c.get("counts")
            cats.append({"name": name, "nulls": c.get("nulls"), "distinct": len(counts) if counts else None,
                         "svg": _chart(charts, salt, ch.bars, counts) if counts else None})
        out.append({"source": source, "rows": table.get("rows"), "columns": cols, "categories": cats})
    return out


def _bad_labels(ft) -> dict[str, dict[str, int]]:
    """{label source: {rule name: findings}} of the out-of-range and distant labels, which are
    quarantined and so missing from the class bars of kept labels."""
    import pyarrow as pa
    import pyarrow.compute as pc

    from datasan.checks.images import DISTANT_IMAGE_LABEL, IMAGE_LABEL_OUT_OF_RANGE
    from datasan.checks.tables.labels import DISTANT_LABEL, LABEL_OUT_OF_RANGE

    rules = {r.code: r.name for r in (LABEL_OUT_OF_RANGE, DISTANT_LABEL, IMAGE_LABEL_OUT_OF_RANGE,
                                      DISTANT_IMAGE_LABEL)}
    if ft is None or ft.num_rows == 0:
        return {}
    sub = ft.filter(pc.is_in(ft.column("code"), value_set=pa.array(list(rules), pa.string()))).select(["source", "code"])
    out: dict[str, dict[str, int]] = {}
    for src, code in zip(sub.column("source").to_pylist(), sub.column("code").to_pylist()):
        per = out.setdefault(src or "", {})
        per[rules[code]] = per.get(rules[code], 0) + 1
    return out


def _labels(stats: dict, ft, salt: _Salt, charts: dict[str, Any]) -> list[dict[str, Any]]:
    from datasan.outputs import charts as ch

    bad = _bad_labels(ft)

    def marks(src: str) -> dict[str, int]:
        # an image dataset's label findings name its labels file inside it
        found: dict[str, int] = {}
        for where, per in bad.items():
            if where == src or where.startswith(src.rstrip("/") + "/"):
                for name, n in per.items():
                    found[name] = found.get(name, 0) + n
        return found

    return [{"source": src, "classes": len(counts), "total": sum(counts.values()), "bad": marks(src),
             "svg": _chart(charts, salt, ch.bars, counts, xlabel="class")}
            for src, counts in (stats.get("labels") or {}).items() if counts]


def _profile_charts(profile: dict, salt: _Salt, charts: dict[str, Any]) -> list[dict[str, Any]]:
    return [{"name": name, "stats": m,
             "svg": _histogram_of(m, charts, salt, xlabel=name)}
            for name, m in profile.items() if isinstance(m, dict)]


def _images(stats: dict, salt: _Salt, charts: dict[str, Any]) -> list[dict[str, Any]]:
    return [{"dataset": ds, "count": s.get("count"), "channels": s.get("channels"),
             "mean": s.get("mean") or [], "std": s.get("std") or [],
             "profile": _profile_charts(s.get("profile") or {}, salt, charts)}
            for ds, s in (stats.get("images") or {}).items()]


def _boxes(stats: dict, salt: _Salt, charts: dict[str, Any]) -> list[dict[str, Any]]:
    return [{"source": src, "count": s.get("count"), "units": s.get("units"),
             "profile": _profile_charts({k: s[k] for k in ("width", "height", "aspect") if k in s}, salt, charts),
             **_box_classes(s, salt, charts)}
            for src, s in (stats.get("boxes") or {}).items()]


def _box_classes(entry: dict, salt: _Salt, charts: dict[str, Any]) -> dict[str, Any]:
    """Per-class parts of a box source: kept boxes per class with the quarantined ones stacked
    in red, a row per class, and area histograms of the MAX_CLASS_CHARTS classes with most boxes."""
    from datasan.outputs import charts as ch

    per = entry.get("per_class")
    if not isinstance(per, dict) or not per:
        return {"classes": [], "class_cap": entry.get("per_class_over_cap")}
    kept = {name: c.get("count") or 0 for name, c in per.items()}
    bad = {name: c.get("quarantined") or 0 for name, c in per.items() if c.get("quarantined")}
    top = sorted(per, key=lambda name: (-kept[name], name))[:MAX_CLASS_CHARTS]
    areas = [{"name": name, "stats": per[name]["area"],
              "svg": _histogram_of(per[name]["area"], charts, salt, xlabel="area", ylabel="kept boxes")}
             for name in top if kept[name]]
    rows = [{"name": name, **{k: per[name].get(k) for k in ("count", "quarantined")},
             **{k: (per[name].get(k) or {}).get("mean") for k in ("width", "height", "area", "aspect")}}
            for name in sorted(per, key=lambda name: (-kept[name] - bad.get(name, 0), name))[:MAX_CLASS_ROWS]]
    return {"classes": rows, "more_classes": max(0, len(per) - MAX_CLASS_ROWS), "quarantined": sum(bad.values()),
            "class_svg": _chart(charts, salt, ch.bars, kept, xlabel="class", marked=bad),
            "areas": areas, "class_cap": None}


# ------------------------------------------------------------------ images
def _flagged_images(ft) -> dict[str, list[tuple]]:
    """{code: [(sample, code, severity, message, [(label file, row), ...])]}: distinct image
    samples per rule with an error or warning, in finding order, with where their boxes are."""
    import pyarrow as pa
    import pyarrow.compute as pc

    from datasan.outputs.thumbnails import IMAGE_ENDINGS

    if ft.num_rows == 0:
        return {}
    ending = "(" + "|".join(e.lstrip(".").replace(".", r"\.") for e in IMAGE_ENDINGS) + ")$"
    sample = ft.column("sample")
    mask = pc.and_(pc.is_in(ft.column("severity"), value_set=pa.array(["error", "warning"], pa.string())),
                   pc.match_substring_regex(pc.utf8_lower(sample.fill_null(pa.scalar("", pa.string()))), r"\." + ending))
    sub = ft.filter(mask).select(["sample", "code", "severity", "message", "source", "row"])
    groups: dict[str, list] = {}
    seen: dict[tuple[str, str], tuple] = {}
    for s, code, sev, msg, src, row in zip(*(sub.column(i).to_pylist() for i in range(6))):
        item = seen.get((code, s))
        if item is None:
            item = seen[(code, s)] = (s, code, sev, msg, [])
            groups.setdefault(code, []).append(item)
        if src and src != s and row is not None and len(item[4]) < MAX_BOXES:
            item[4].append((src, row))
    return groups


def _round_robin(groups: dict[str, list], cap: int) -> dict[str, list]:
    """At most ``cap`` items, taken one per group in turn, so every rule shows some."""
    taken: dict[str, list] = {k: [] for k in groups}
    left = cap
    depth = 0
    while left > 0:
        added = False
        for k, items in groups.items():
            if depth < len(items) and left > 0:
                taken[k].append(items[depth])
                left -= 1
                added = True
        if not added:
            break
        depth += 1
    return {k: v for k, v in taken.items() if v}


def _thumbnail_groups(root: str, ft, cap: int) -> list[dict[str, Any]]:
    from datasan.outputs.thumbnails import thumbnails
    from datasan.rules import RULES

    groups = _flagged_images(ft)
    chosen = _round_robin(groups, cap)
    return [{"code": code, "name": RULES[code].name, "flagged": len(groups[code]),
             "tiles": thumbnails(root, items)} for code, items in sorted(chosen.items())]


# ------------------------------------------------------------------ probe
def _probe_losses(root: str, probe: dict, salt: _Salt, charts: dict[str, Any]) -> list[dict[str, Any]]:
    """Per probed source with a loss summary: its loss histogram (non-finite samples noted in
    red), which stage found the non-finite samples (float32 loss or gradient: not drawn;
    float16 / bfloat16 autocast: drawn at their float32 loss), and its highest-loss samples
    (with a thumbnail when the sample is an image)."""
    from datasan.checks.probe import (BFLOAT16_NON_FINITE, EXTREME_LOSS, FLOAT16_NON_FINITE,
                                      NON_FINITE_GRADIENT, NON_FINITE_LOSS)
    from datasan.outputs import charts as ch
    from datasan.outputs.thumbnails import IMAGE_ENDINGS, thumbnails

    # a float32 loss or gradient that is non-finite leaves the sample out of the histogram;
    # an autocast failure does not (its float32 loss is finite and drawn)
    left_out = [(r.code, r.name) for r in (NON_FINITE_LOSS, NON_FINITE_GRADIENT)]
    autocast = [(r.code, r.name) for r in (FLOAT16_NON_FINITE, BFLOAT16_NON_FINITE)]
    thumbs_left = MAX_LOSS_THUMBNAILS
    out = []
    for src, rep in (probe.get("sources") or {}).items():
        loss = rep.get("loss") if isinstance(rep, dict) else None
        if not isinstance(loss, dict):
            continue
        flagged = rep.get("flagged") or {}
        bad = loss.get("non_finite") or 0
        note = f"{bad:,} non-finite sample(s), not drawn" if bad else ""
        top = list(loss.get("top") or [])
        images = [t["sample"] for t in top if str(t["sample"]).lower().endswith(IMAGE_ENDINGS)][:thumbs_left]
        thumbs_left -= len(images)
        tiles = {t.sample: t for t in thumbnails(root, [(sm, "", "", "", []) for sm in images])} if images else {}
        out.append({"source": src, "stats": loss, "non_finite": bad,
                    "stages": [(code, name, flagged[code]) for code, name in left_out if flagged.get(code)],
                    "autocast": [(code, name, flagged[code]) for code, name in autocast if flagged.get(code)],
                    "extreme": flagged.get(EXTREME_LOSS.code, 0), "extreme_rule": EXTREME_LOSS,
                    "top": [{"rank": i + 1, "sample": t["sample"], "loss": t["loss"], "tile": tiles.get(t["sample"])}
                            for i, t in enumerate(top)],
                    "svg": _chart(charts, salt, ch.histogram, loss.get("sketch"), None, None, xlabel="loss",
                                  lo=loss.get("min"), hi=loss.get("max"), note=note, ylabel="samples")})
    return out


# ------------------------------------------------------------------ drift
def _drift(drift: dict) -> dict[str, Any]:
    rows = sorted(drift.get("comparisons") or [], key=lambda c: not c.get("drifted"))
    return {"compared": bool(drift.get("compared")), "reason": drift.get("reason"),
            "baseline": drift.get("baseline"), "drifted": drift.get("drifted", 0),
            "rows": rows[:MAX_DRIFT_ROWS], "more": max(0, len(rows) - MAX_DRIFT_ROWS)}
