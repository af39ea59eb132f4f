"""The one table of rule codes.

Every finding datasan can emit has a stable code here.  Codes are never reused:
a retired rule stays in the table with ``retired=True``.  Families:

* ``DS0xx`` file-level problems (unreadable, empty, encoding, unsafe paths)
* ``DS1xx`` tables (values, labels, scales, duplicates)
* ``DS2xx`` images
* ``DS3xx`` labels and boxes (image labels, COCO, YOLO)
* ``DS4xx`` the probe (non-finite loss or gradient)

``datasan rules`` lists the table; ``datasan rule CODE`` prints one entry.
"""

from __future__ import annotations

from dataclasses import dataclass

SEVERITIES = ("error", "warning", "info")


@dataclass(frozen=True)
class Rule:
    """One rule: its stable code, kebab-case name, default severity and docs.

    ``what`` says what is checked, ``why`` how it breaks training, ``fix`` what
    to do about it and ``example`` a minimal input that triggers it.
    """

    code: str
    name: str
    severity: str
    summary: str
    what: str
    why: str
    fix: str
    example: str = ""
    retired: bool = False


def _rules(*rules: Rule) -> dict[str, Rule]:
    table: dict[str, Rule] = {}
    names: set[str] = set()
    for rule in rules:
        assert rule.code not in table, f"duplicate rule code {rule.code}"
        assert rule.name not in names, f"duplicate rule name {rule.name}"
        assert rule.severity in SEVERITIES, rule
        table[rule.code] = rule
        names.add(rule.name)
    return table


RULES: dict[str, Rule] = _rules(
    # ---------------------------------------------------------------- DS0xx
    Rule(
        "DS001", "unreadable-file", "error",
        "A file could not be read or parsed at all.",
        what="The file exists but cannot be opened, or its format cannot be parsed "
        "(a Parquet file with a bad footer, a CSV whose header cannot be read).",
        why="A loader that hits this file raises in the middle of an epoch, often hours "
        "into a run; with several DataLoader workers the traceback hides which file it was.",
        fix="Re-export or re-download the file, or remove it from the dataset.",
        example="tables/broken.parquet: 'Parquet magic bytes not found in footer'",
    ),
    Rule(
        "DS002", "empty-file", "warning",
        "A file holds no samples (zero bytes, or a header and no rows).",
        what="A data file that is empty or has no data rows.",
        why="Empty shards make some loaders yield empty batches, and `mean()` over them is NaN.",
        fix="Remove the file or fill it; check the job that produced it.",
        example="tables/empty.csv: 0 bytes",
    ),
    Rule(
        "DS003", "text-encoding", "warning",
        "A text file is not UTF-8; datasan decoded it with another encoding.",
        what="The file is not valid UTF-8. datasan tries utf-8, utf-8 with BOM, utf-16 "
        "with BOM, then latin-1, and says which one it used.",
        why="pandas and pyarrow assume UTF-8: the same file crashes one loader and "
        "silently garbles category names (and so labels) in another.",
        fix="Re-encode the file as UTF-8 (`iconv -f latin1 -t utf-8`).",
        example="tables/latin1.csv: byte 0xe9 in 'caf\\xe9'",
    ),
    Rule(
        "DS004", "ragged-row", "error",
        "A CSV/TSV line has a different number of fields than the header.",
        what="A data line whose field count differs from the header's.",
        why="Most readers either crash on it or shift every later field into the wrong "
        "column, so features and labels no longer match.",
        fix="Fix the line (often an unquoted delimiter inside a text field) or drop it.",
        example="a,b,label\\n1,2\\n -> line 2 has 2 fields, expected 3",
    ),
    Rule(
        "DS005", "unsupported-column", "warning",
        "A column has a nested or unsupported type; its values were not checked.",
        what="List, struct, map, binary or nested JSON values in a table column.",
        why="datasan cannot check what it cannot interpret; the column passes through to "
        "the clean output unchecked, and a tensor conversion of it will fail.",
        fix="Flatten the column, or drop it before training.",
        example="a JSONL column holding {'x': 1} objects",
    ),
    Rule(
        "DS006", "unsafe-path", "warning",
        "A symlink pointing outside PATH, or forming a loop, was not followed.",
        what="Symbolic links that leave the scanned folder or point back into an "
        "ancestor folder.",
        why="Following them reads data that is not part of the dataset, or loops forever.",
        fix="Copy the data into the dataset folder, or scan the folder the link points to.",
        example="data/link -> /etc",
    ),
    Rule(
        "DS007", "special-file", "warning",
        "A FIFO, socket or device file was skipped.",
        what="Files that are not regular files or folders.",
        why="Opening a FIFO blocks a loader forever.",
        fix="Remove the special file from the dataset folder.",
        example="data/pipe (a FIFO)",
    ),
    Rule(
        "DS008", "unrecognized-file", "info",
        "A file of a type datasan does not read was ignored.",
        what="Files whose extension or content matches no known source kind.",
        why="Worth knowing when a dataset file has a typo in its extension and is silently "
        "left out of training.",
        fix="Rename the file with the right extension, or ignore this note.",
        example="data/notes.docx",
    ),
    Rule(
        "DS009", "malformed-record", "error",
        "A JSONL line is not valid JSON (or not a JSON object).",
        what="A line of a JSON-lines file that does not parse, or parses to something "
        "other than an object.",
        why="`pandas.read_json(lines=True)` and `datasets` raise on the first such line.",
        fix="Repair or drop the line.",
        example='{"x": 1, "label": 0',
    ),
    # ---------------------------------------------------------------- DS1xx
    Rule(
        "DS101", "non-finite-value", "error",
        "A numeric feature is NaN, +Inf, -Inf or missing (empty cell / null).",
        what="Every numeric feature value of every row: NaN, infinities, nulls, empty "
        "CSV cells, and strings such as 'nan', 'inf' or '1e400' (which parses to inf).",
        why="One NaN input makes the forward pass NaN, the loss NaN and, after one "
        "optimizer step, every weight NaN: the run is lost.",
        fix="Impute or drop the row; find the join or division that produced it.",
        example="f3 = 'nan' in row 17",
    ),
    Rule(
        "DS102", "missing-label", "error",
        "The target of a row is missing (null, empty, 'nan', 'None').",
        what="Null or empty targets, and the strings 'nan', 'NaN', 'None', 'null', 'NA'.",
        why="A NaN target makes the loss NaN; a string 'nan' becomes its own class.",
        fix="Label the row or drop it.",
        example="label = '' in row 3",
    ),
    Rule(
        "DS103", "label-out-of-range", "error",
        "A class id is negative or not below the number of classes.",
        what="Classification targets below 0, at or above --num-classes, or not among "
        "the given class names.",
        why="cross_entropy with such a target raises a device-side assert on CUDA and "
        "an IndexError (or silent garbage) elsewhere.",
        fix="Map the label into 0..num_classes-1 or drop the row; check --num-classes.",
        example="label = -1 with 10 classes",
    ),
    Rule(
        "DS104", "distant-label", "error",
        "A target lies far outside the bulk of the targets.",
        what="Class ids far above every other id and rare (8000 among 0..9), and "
        "regression targets that are extreme robust outliers (both in value and in "
        "log-magnitude, with a conservative limit) or beyond float32 range.",
        why="A class id of 8000 sizes the output head wrong or crashes it; one target of "
        "1e30 dominates MSE, explodes gradients and turns the weights to Inf/NaN.",
        fix="Check the row's source: usually a sentinel value (-999, 9999) or a unit error.",
        example="label = 8000 among labels 0..9",
    ),
    Rule(
        "DS105", "float32-overflow-risk", "warning",
        "A value is so large (|x| > 1e18) that its square or a sum overflows float32.",
        what="Feature values with magnitude above 1e18.",
        why="float32 tops out at 3.4e38: squaring 1e19 (MSE, variance, L2 norms) gives inf.",
        fix="Rescale the column (log, standardize) or check the value for a unit error.",
        example="f0 = 1e20",
    ),
    Rule(
        "DS106", "float16-overflow", "warning",
        "A column has values beyond float16 range (|x| > 65504).",
        what="Per column, the count of values with magnitude above 65504.",
        why="Under mixed precision (AMP, fp16) these values become inf in the first layer.",
        fix="Standardize the column, or train in bfloat16 / float32.",
        example="price with values up to 3e6",
    ),
    Rule(
        "DS107", "unnormalized-scale", "warning",
        "A column's scale is far from unit, or orders of magnitude unlike the others.",
        what="Numeric features whose standard deviation or magnitude is far from 1, or "
        "differs from the median feature scale by over 1000x.",
        why="Unscaled inputs saturate activations and make one feature dominate the "
        "gradient; pixels left at 0..255 are the classic case.",
        fix="Standardize with the mean/std in stats.json (computed on the clean rows).",
        example="pixel columns ranging 0..255",
    ),
    Rule(
        "DS108", "constant-column", "warning",
        "A numeric column has a single value (std 0).",
        what="Numeric features whose kept values are all equal.",
        why="Standardizing divides by std = 0, giving NaN or Inf for the whole column.",
        fix="Drop the column, or guard the division (std + eps).",
        example="version = 1 in every row",
    ),
    Rule(
        "DS109", "non-numeric-value", "error",
        "A value in a numeric column is not a number (mixed types).",
        what="In a column where nearly every value is numeric, the values that are not "
        "(e.g. '?', 'n/a', 'abc').",
        why="`astype(float)` raises on them; `to_numeric(errors='coerce')` turns them into "
        "NaN that reach the loss.",
        fix="Fix or drop the row; if the token means 'missing', impute it.",
        example="age = '?' in row 12",
    ),
    Rule(
        "DS110", "duplicate-row", "warning",
        "A row is an exact duplicate of an earlier row.",
        what="Rows whose values (features and target) equal an earlier row's.",
        why="Duplicates weight some samples twice and leak between train and test splits.",
        fix="Deduplicate, or split by group so copies land in the same split.",
        example="row 40 equals row 3",
    ),
    Rule(
        "DS111", "conflicting-duplicate", "warning",
        "Two rows have identical features but different labels.",
        what="Rows whose features equal an earlier row's while the target differs.",
        why="The model is asked to predict two answers for one input: label noise that "
        "no model can fit.",
        fix="Decide which label is right, or drop both rows.",
        example="rows 5 and 91: same features, labels 2 and 7",
    ),
    Rule(
        "DS112", "no-target", "info",
        "No target column was found; label checks were skipped.",
        what="A table with none of the columns label, target, y, class, labels and no "
        "--target option.",
        why="Without a target, missing or distant labels cannot be checked.",
        fix="Pass --target NAME (or set it in the config).",
        example="a table with columns a, b, c",
    ),
    Rule(
        "DS113", "float32-overflow", "error",
        "A finite value exceeds float32 range (|x| > 3.4e38) and becomes inf as float32.",
        what="Feature values larger in magnitude than the largest float32.",
        why="`torch.tensor(x, dtype=torch.float32)` turns them into inf: a non-finite "
        "input as sure as a NaN.",
        fix="Fix the value (usually a unit or parsing error) or drop the row.",
        example="f1 = 1e300",
    ),
    # ---------------------------------------------------------------- DS4xx (the probe)
    Rule(
        "DS401", "non-finite-loss", "error",
        "A sample makes the probe network's output or loss non-finite in float32.",
        what="Every kept sample goes through a small seeded network (an MLP over the raw "
        "numeric features, a small CNN over images scaled to 0..1) in eval mode; a sample "
        "whose per-sample loss (reduction='none') or output is NaN/Inf is reported, saying "
        "whether the input, an activation (naming the layer) or the loss went non-finite first.",
        why="One such sample in a batch turns the batch's mean loss into NaN/Inf, the "
        "optimizer step writes NaN into every weight and the run is lost; the usual hunt is "
        "batch_size=1 over the whole dataset.",
        fix="Look at the named row: usually a finite but huge value (1e38) whose square "
        "overflows, or a target far out of range. Fix, rescale or drop it.",
        example="row 17: f3 = 1e38 -> squared error inf",
    ),
    Rule(
        "DS402", "non-finite-gradient", "error",
        "A sample's loss is finite but its gradient is NaN/Inf (float32).",
        what="Per-sample gradients of the loss with respect to the probe network's "
        "parameters (torch.func vmap + grad, only over batches whose summed gradient is "
        "non-finite) that contain NaN or Inf while the loss itself is finite.",
        why="The backward pass writes NaN into the weights even though the logged loss "
        "looks normal, so the failure shows up steps later, far from its cause.",
        fix="Look at the sample's values and at the loss (sqrt or log of zero, division "
        "by a tiny norm); clip or drop the sample.",
        example="RMSE loss on a row whose prediction equals its target: d sqrt(0) = inf",
    ),
    Rule(
        "DS403", "float16-non-finite", "warning",
        "A sample is finite in float32 but its loss goes non-finite under float16 autocast.",
        what="The forward pass replayed under torch.autocast(dtype=float16) (mixed "
        "precision, AMP) for samples that were finite in float32.",
        why="float16 overflows above 65504: training with AMP in float16 hits Inf/NaN on "
        "this sample (GradScaler then skips steps, or the loss is NaN).",
        fix="Standardize the inputs (stats.json has mean/std), train in bfloat16 or "
        "float32, or drop the sample.",
        example="f0 = 70000 -> inf after the first Linear in float16",
    ),
    Rule(
        "DS404", "bfloat16-non-finite", "warning",
        "A sample is finite in float32 but its loss goes non-finite under bfloat16 autocast.",
        what="The forward pass replayed under torch.autocast(dtype=bfloat16) for samples "
        "that were finite in float32.",
        why="bfloat16 has float32's range but rounds values near its top (above ~3.39e38) "
        "to Inf, and its 8-bit mantissa loses the cancellations that kept float32 finite.",
        fix="Rescale the values; keep the layers concerned in float32.",
        example="a value of 3.395e38 becomes inf in bfloat16",
    ),
    Rule(
        "DS405", "extreme-loss", "warning",
        "A sample's loss is finite but an extreme outlier among the per-sample losses.",
        what="Per-sample float32 losses whose log is more than k robust standard deviations "
        "(1.4826 MAD, k = 10 by default) above the median log-loss of their source.",
        why="A sample with a loss millions of times the typical one dominates the gradient "
        "of its batch: the step is as large as if it were the whole dataset.",
        fix="Check the sample's target and features for unit errors or sentinels; clip the "
        "loss or drop the sample.",
        example="regression target 1e9 among targets of order 1",
    ),
    Rule(
        "DS406", "probe-skipped", "info",
        "The probe could not run on a source, and says why.",
        what="A source the probe skipped: a table without numeric features or target, "
        "images without labels, a failing user model, or no kept samples.",
        why="Samples that were not probed may still break training under a network.",
        fix="Pass --target, label the images, or bring your own model with --probe-model.",
        example="tables/ids.csv: no numeric feature columns",
    ),
)


def rule(code: str) -> Rule:
    """Return the rule for ``code`` (case-insensitive); KeyError if unknown."""
    return RULES[code.upper()]


def matches(code: str, selectors: list[str] | tuple[str, ...]) -> bool:
    """True when ``code`` is selected by one of ``selectors`` (codes or prefixes such as "DS1")."""
    return any(code.startswith(s.upper()) for s in selectors)


def check_selectors(selectors: list[str] | tuple[str, ...]) -> list[str]:
    """Return the selectors that name no rule code or prefix (for config validation)."""
    return [s for s in selectors if not any(c.startswith(s.upper()) for c in RULES)]
