"""What drift against a baseline scan means (rules DS501-DS519).

:mod:`datasan.drift` measures every comparison between this scan's statistics
and the baseline's and lists them, raw values included, in report.json
``drift.comparisons``; :func:`drift_findings` turns the ones marked
``drifted`` into findings, one per source and column, naming the raw value.
"""

from __future__ import annotations

from typing import Any, Iterable

from datasan.checks.rule import Rule

# ------------------------------------------------------------------ rules of this family
DISTRIBUTION_DRIFT = Rule(
    "DS501", "distribution-drift", "warning",
    "A numeric column's distribution moved away from the baseline scan's (Jensen-Shannon distance).",
    what="Per numeric column (features and numeric targets): the Jensen-Shannon distance "
    "(base 2, 0..1) between this scan's and the baseline's value distributions, taken over "
    "equal-mass bins of the baseline built from the stats.json sketches.",
    why="A model trained on one distribution and fed another degrades silently: every row is "
    "valid, so no static check fires, yet the inputs are no longer what the model learned.",
    fix="Find what changed upstream (a unit, a sensor, a join, a filter); retrain or rescale, or "
    "accept the new distribution by scanning the new data as the baseline.",
    example="alcohol shifted by +3 standard deviations",
)
MEAN_SHIFT = Rule(
    "DS502", "mean-shift", "warning",
    "A numeric column's mean moved by more than a threshold of baseline standard deviations.",
    what="Per numeric column: |mean - baseline mean| / baseline std.",
    why="Normalization statistics computed on the baseline no longer centre the data; a shifted "
    "mean is the most common symptom of a changed unit or pipeline.",
    fix="Check the column's source and units; recompute the normalization statistics.",
    example="mean 13.0 -> 15.4 with baseline std 0.8 (3.0 std)",
)
CLASS_BALANCE_DRIFT = Rule(
    "DS503", "class-balance-drift", "warning",
    "The class shares of a target or label set moved away from the baseline's (L-infinity distance).",
    what="Per target column and image label set: the largest absolute change of a class's share "
    "of the samples (L-infinity distance, as TensorFlow Data Validation uses).",
    why="A class that shrank or grew changes what the loss optimizes and the calibration of the "
    "model's scores; class weights tuned on the baseline no longer fit.",
    fix="Find where the class was lost or gained (a filter, a failed export); rebalance or reweight.",
    example="class 0: 33 % of rows -> 9 %",
)
NEW_CLASS = Rule(
    "DS504", "new-class", "warning",
    "A class appears that the baseline scan did not have.",
    what="Class values of a target or label set present now and absent from the baseline.",
    why="A model's output layer is sized for the baseline's classes; a new one is out of range or "
    "silently mapped to the wrong output.",
    fix="Add the class on purpose (and resize the head), or remove the rows that carry it.",
    example="label 'unknown' in 12 rows",
)
VANISHED_CLASS = Rule(
    "DS505", "vanished-class", "warning",
    "A class of the baseline scan has no sample any more.",
    what="Class values present in the baseline and absent now.",
    why="The model stops seeing a class it must still predict; its recall for it decays.",
    fix="Find where the class was lost (a filter, a join, an export limit).",
    example="class 7: 180 rows in the baseline, none now",
)
MISSING_RATE_CHANGE = Rule(
    "DS506", "missing-rate-change", "warning",
    "The share of missing cells (null, NaN, empty) of a column changed.",
    what="Per column: the share of missing cells over every row read, before the quarantine, "
    "compared with the baseline's.",
    why="More missing values mean more quarantined rows or more imputation; a jump usually is a "
    "broken upstream field.",
    fix="Find what stopped filling the column.",
    example="missing 0.1 % -> 12 %",
)
NEW_COLUMN = Rule(
    "DS507", "new-column", "warning",
    "A table has a column the baseline's version of it did not have.",
    what="Columns of a table present now and absent from the same table in the baseline.",
    why="A feature pipeline selecting columns by position or by 'all columns' changes its input.",
    fix="Add the column to the model on purpose, or drop it.",
    example="column 'color_v2' appeared",
)
MISSING_COLUMN = Rule(
    "DS508", "missing-column", "warning",
    "A column of the baseline's table is gone.",
    what="Columns of a table in the baseline and absent now.",
    why="The model's input lacks a feature it was trained on: a crash or a silent default.",
    fix="Restore the column upstream.",
    example="column 'alcohol' missing",
)
COLUMN_TYPE_CHANGE = Rule(
    "DS509", "column-type-change", "warning",
    "A column's type differs from the baseline's.",
    what="The type datasan decided (text tables) or read (typed tables) per column, compared with "
    "the baseline's.",
    why="A number read as text, or an int turned float, changes the features a model gets.",
    fix="Fix the export that changed the type, or declare the type in the config (types).",
    example="'age': int64 -> string",
)
CATEGORY_DRIFT = Rule(
    "DS510", "category-drift", "warning",
    "A categorical column's value shares moved away from the baseline's (L-infinity distance).",
    what="Per string column with at most 1000 distinct values: the largest absolute change of a "
    "value's share of the rows (new and vanished values included).",
    why="Embeddings and one-hot encodings trained on the baseline's categories see other "
    "frequencies, or values they never saw.",
    fix="Find the upstream change (a renamed category, a new source of rows).",
    example="country 'DE': 40 % -> 10 %",
)
IMAGE_BRIGHTNESS_DRIFT = Rule(
    "DS511", "image-brightness-drift", "warning",
    "The brightness of an image dataset's images moved away from the baseline's.",
    what="Per image dataset: the per-image mean pixel (0..1) compared with the baseline's, by "
    "Jensen-Shannon distance and by mean shift in baseline standard deviations.",
    why="Darker or brighter images (a new camera, another exposure, a changed decode) shift every "
    "input of a vision model and its normalization statistics.",
    fix="Find the capture or preprocessing change; recompute the normalization statistics.",
    example="mean brightness 0.48 -> 0.21",
)
IMAGE_SIZE_DRIFT = Rule(
    "DS512", "image-size-drift", "warning",
    "The widths, heights or aspect ratios of an image dataset moved away from the baseline's.",
    what="Per image dataset: width, height and aspect (width / height) of the images compared "
    "with the baseline's, by Jensen-Shannon distance and by mean shift in baseline standard deviations.",
    why="Resizing to a fixed input size distorts images whose aspect changed and blurs ones that "
    "shrank: the model sees other shapes than it learned.",
    fix="Find the export or capture change that resized the images.",
    example="width 640 -> 320",
)
MISSING_SOURCE = Rule(
    "DS513", "missing-source", "warning",
    "A source (table, image dataset) of the baseline scan is not in this scan.",
    what="Sources with statistics in the baseline's stats.json that this scan did not produce.",
    why="A whole table or image set missing from a training dump is lost training data.",
    fix="Find why the file or folder is gone; scan the right folder.",
    example="tables/wine.csv in the baseline only",
)
NEW_SOURCE = Rule(
    "DS514", "new-source", "info",
    "A source of this scan has no counterpart in the baseline, so it was not compared.",
    what="Sources with statistics now and none in the baseline's stats.json.",
    why="Nothing to compare it with: its drift is unknown, not zero.",
    fix="Nothing, if it is new on purpose; the next scan against this one will compare it.",
    example="tables/wine_2025.csv is new",
)

#: comparison kinds (``drift.comparisons[].metric`` in report.json) -> the rule a drifted one raises
#: for tables; images use their own rules (see :func:`code_of`)
METRIC_CODES = {
    "js_distance": "DS501",
    "mean_shift": "DS502",
    "class_linf": "DS503",
    "new_class": "DS504",
    "vanished_class": "DS505",
    "missing_rate_change": "DS506",
    "new_column": "DS507",
    "missing_column": "DS508",
    "type_change": "DS509",
    "category_linf": "DS510",
    "missing_source": "DS513",
    "new_source": "DS514",
}


def code_of(entry: dict[str, Any]) -> str:
    """The rule code a comparison raises when drifted."""
    if entry.get("section") == "images" and entry["metric"] in ("js_distance", "mean_shift"):
        return "DS511" if entry.get("column") == "brightness" else "DS512"
    return METRIC_CODES[entry["metric"]]


def _fmt(v: Any) -> str:
    from datasan.findings import format_number

    return format_number(v)


def message_of(entry: dict[str, Any]) -> str:
    """One sentence naming the source, the column and the raw value of a drifted comparison."""
    from datasan.findings import quote

    src, col, m, v = entry.get("source"), entry.get("column"), entry["metric"], entry.get("value")
    what = f"{quote(col)} of {src}" if col is not None else str(src)
    limit = f"(limit {_fmt(entry['limit'])})" if entry.get("limit") is not None else ""
    if m == "js_distance":
        return (f"The distribution of {what} drifted from the baseline: Jensen-Shannon distance "
                f"{_fmt(v)} {limit}.")
    if m == "mean_shift" and v is None:
        return (f"{what} was constant at {_fmt(entry['baseline_mean'])} in the baseline and is constant "
                f"at {_fmt(entry['mean'])} now.")
    if m == "mean_shift":
        return (f"The mean of {what} moved {_fmt(v)} baseline standard deviations {limit}: "
                f"{_fmt(entry['baseline_mean'])} -> {_fmt(entry['mean'])}.")
    if m in ("class_linf", "category_linf"):
        kind = "class" if m == "class_linf" else "value"
        return (f"The {kind} shares of {what} drifted from the baseline: L-infinity distance {_fmt(v)} "
                f"{limit}, largest for {quote(entry['worst'])} ({_fmt(entry['baseline_share'])} -> "
                f"{_fmt(entry['share'])}).")
    if m == "new_class":
        return f"{what} has the class {quote(entry['class'])} ({v} samples), absent from the baseline."
    if m == "vanished_class":
        return (f"{what} no longer has the class {quote(entry['class'])} "
                f"({entry['baseline_count']} samples in the baseline).")
    if m == "missing_rate_change":
        return (f"The share of missing cells of {what} changed by {_fmt(v)} {limit}: "
                f"{_fmt(entry['baseline_rate'])} -> {_fmt(entry['rate'])}.")
    if m == "new_column":
        return f"{src} has the column {quote(col)}, absent from the baseline."
    if m == "missing_column":
        return f"{src} lacks the column {quote(col)} of the baseline."
    if m == "type_change":
        return f"The type of {what} changed from {entry['baseline_type']} to {entry['type']}."
    if m == "missing_source":
        return f"{src} is in the baseline but not in this scan."
    return f"{src} is not in the baseline; it was not compared."


def drift_findings(comparisons: Iterable[dict[str, Any]]):
    """The findings of the comparisons marked ``drifted``, in order."""
    from datasan.findings import Finding

    for e in comparisons:
        if e.get("drifted"):
            yield Finding(code_of(e), message_of(e), source=e.get("source"), column=e.get("column"))
