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
    return dict(sorted(table.items()))


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
    Rule(
        "DS010", "duplicate-column-name", "warning",
        "Two or more columns of a table have the same name.",
        what="Repeated names in a CSV header or a Parquet/Arrow schema. datasan reads the "
        "repeats as 'name.1', 'name.2', ... (as pandas does) and checks them all.",
        why="Selecting the column by name returns one of them or fails, so features silently "
        "go missing or a loader crashes.",
        fix="Rename the columns in the producing job.",
        example="a,a,label",
    ),
    Rule(
        "DS011", "internal-error", "error",
        "datasan failed on a source (a bug in datasan); all its samples were quarantined.",
        what="A source whose reader or checks raised, or whose counts broke kept + quarantined "
        "== seen. Every file of the source is quarantined (sample = the file, row empty); the "
        "message names the exception and where it was raised. The scan still writes every "
        "output and exits 3. Config and --ignore cannot turn this rule off.",
        why="Nothing about the source was checked: training on it would take unchecked data "
        "for checked data.",
        fix="Report the message (exception and place) to datasan's maintainers; until then "
        "check the source by hand or remove it from PATH.",
        example="tables/x.csv: ZeroDivisionError: division by zero (at datasan/checks/tabular.py:120 in _scale)",
    ),
    Rule(
        "DS012", "undecodable-file-name", "warning",
        "A file or folder name is not valid UTF-8; its sample ids show the bad bytes as \\xNN.",
        what="Names whose bytes do not decode as UTF-8 (a Latin-1 name copied from an old "
        "machine). Sample ids are strings, so the undecodable bytes are written as the four "
        "characters \\xNN (bad\\xffname.csv); the file itself is read under its real name.",
        why="Python and most loaders decode names with surrogate escapes that cannot be written "
        "to Parquet, JSON or CSV: a training script that lists the folder may crash on it, and "
        "the id in findings is not the literal name.",
        fix="Rename the file to a UTF-8 name (`convmv -f latin1 -t utf-8`).",
        example="tables/bad\\xffname.csv",
    ),
    Rule(
        "DS013", "shortened-clean-name", "info",
        "A source's clean file name would be too long; it was written under a shortened name.",
        what="clean/<source>.parquet adds 8 bytes to the source's file name; when that passes "
        "the file system's 255-byte limit the clean file is written as the name cut to fit, "
        "'~' and 8 hex digits of the name's hash, recorded as clean_file in report.json.",
        why="A reader that builds clean/<source>.parquet by hand will not find the file.",
        fix="Shorten the source's file name, or read clean_file from report.json.",
        example="clean/aaaa...aaa~1f2e3d4c.parquet for a 251-byte name",
    ),
    Rule(
        "DS014", "record-too-deep", "error",
        "A record is nested deeper than datasan reads (JSON arrays/objects in arrays ...).",
        what="A JSONL record (or a COCO file) whose nesting passes what Python's json parser "
        "can take (about 1,000 levels); the record is quarantined without being parsed.",
        why="json.loads and most loaders raise RecursionError on it, killing the DataLoader "
        "worker that reaches it.",
        fix="Fix the job that wrote the record; real features are never nested that deep.",
        example='{"x": [[[[...3,000 levels...]]]]}',
    ),
    Rule(
        "DS015", "folder-too-deep", "warning",
        "Folders nested more than 256 levels deep were not walked.",
        what="A folder at depth 256 below PATH that holds further folders; nothing below it is "
        "read (its files are not part of the scan).",
        why="Such trees come from a runaway copy or a symlink-free loop; their path names "
        "approach the OS limits and many tools fail on them.",
        fix="Flatten the tree, or scan the deep folder itself.",
        example="a/a/a/... 1,500 levels",
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
    # ------------------------------------------------- DS114-DS129: column types, targets and missing data
    Rule(
        "DS114", "coded-numeric-column", "warning",
        "A column of whole numbers with some codes ('136A', 'c168', 'C', '5+') was read as text.",
        what="A CSV/TSV/JSONL column whose values are mostly whole numbers but also hold codes: "
        "text with a letter or digit that is not a word for 'missing' (identifiers such as '207a', "
        "ordinal bins such as '5+' or '<1'). Such a column is a column of identifiers or categories, "
        "so it is kept as text and its rows are not quarantined. Numbers with stray garbage ('6.2\\x1a', "
        "'?', 'unknown') or codes among decimal numbers stay DS109 errors on their rows.",
        why="Reading an identifier column as numbers turns '136A' into a non-number and every such row "
        "into a false error; treating ids as a numeric feature gives the model a meaningless order.",
        fix="Nothing if it is an id or category. If it is a measurement, declare its type in the config "
        "(types = { family = \"float\" }, or per source under [sources.\"<glob>\"]): its codes then "
        "become DS109 errors on their rows.",
        example="family = 1, 2, ..., 136, '136A', 137 (Galton's heights)",
    ),
    Rule(
        "DS115", "target-looks-like-feature", "warning",
        "The column named like a target ('y', 'class') looks like a feature; it was not used as the target.",
        what="A target picked by the weak names 'y' or 'class' (no column is named label, target or "
        "labels) when 'y' sits beside both 'x' and 'z' (a coordinate) or another column names an outcome "
        "(survived, outcome, response, diagnosis, churn, died, death, dead, default).",
        why="Label checks on a feature quarantine genuine rows (a width in mm read as a regression target "
        "with distant values, a passenger class read as class ids) while the real label goes unchecked.",
        fix="Name the target: --target FILE=COLUMN (repeatable), --target COLUMN for every table, or "
        "target under [sources.\"<glob>\"] in the config.",
        example="titanic.csv: class, age, sex, survived",
    ),
    Rule(
        "DS116", "missing-text-value", "warning",
        "A text (categorical) column has missing values.",
        what="Per text column, the number of null, empty or NA/None/null cells. The clean file keeps "
        "them as nulls (never as ''); the rows are kept.",
        why="Encoders treat a missing category differently: pandas get_dummies drops it, sklearn's "
        "OneHotEncoder raises on None, a vocabulary lookup maps '' to a real token.",
        fix="Impute a category (\"unknown\") or drop the rows, knowingly; see the count per column.",
        example="sex missing in 11 of 344 penguins",
    ),
    Rule(
        "DS117", "empty-column", "warning",
        "A column has no value in any row.",
        what="A column whose every cell is null, empty or a missing token. The clean file keeps it as "
        "a column of nulls.",
        why="An all-missing feature carries no information and makes every row incomplete: dropping "
        "incomplete rows then drops the whole table.",
        fix="Drop the column, or find why the export left it empty.",
        example="a column 'notes' with an empty cell in every row",
    ),
    Rule(
        "DS118", "sparse-column", "warning",
        "A column is missing in more than thresholds.sparse_fraction (20 %) of the rows.",
        what="Per column, the share of rows where it is null, empty, a missing token or NaN. With "
        "missing_policy = \"quarantine\" (the default) the rows with a missing numeric value are "
        "quarantined (DS101) and the finding says how many; with missing_policy = \"drop-column\" "
        "the column leaves the clean file and no row is quarantined for it.",
        why="Dropping every row with a NaN can remove most of a table because of one column; imputing "
        "a mostly-missing column invents most of its values.",
        fix="Drop the column (missing_policy = \"drop-column\" in the config, per source if needed), or "
        "impute it with a missing-indicator column.",
        example="repub vote share missing in 62 % of the rows",
    ),
    # ------------------------------------------------- DS320-DS369: box labels (COCO, YOLO; issue 4)
    Rule(
        "DS320", "coco-invalid-json", "error",
        "A COCO annotation file is not valid JSON.",
        what="A .json file that names images, annotations and categories but does not parse.",
        why="pycocotools and torchvision's CocoDetection raise on it before the first batch; "
        "nothing in the file can be used.",
        fix="Re-export the annotations; a truncated download or a hand edit is the usual cause.",
        example='{"images": [], "annotations": [',
    ),
    Rule(
        "DS321", "coco-bad-structure", "error",
        "A COCO file's top level is wrong (not an object, or images/annotations/categories not lists).",
        what="The top-level JSON value and the types of its images, annotations and categories "
        "entries. One finding per file; its boxes are not read.",
        why="COCO loaders index these lists directly and fail with a KeyError or TypeError.",
        fix="Fix the exporter so that it writes the three lists.",
        example='{"images": {}, "annotations": [], "categories": []}',
    ),
    Rule(
        "DS322", "non-standard-json-number", "warning",
        "A JSON file uses NaN / Infinity tokens, which strict JSON parsers reject.",
        what="The Python-style tokens NaN, Infinity and -Infinity anywhere in a COCO file "
        "(Python's json module writes and accepts them; JSON does not).",
        why="Another loader (JSON.parse, orjson, simdjson, Go, Rust) rejects the whole file; "
        "Python silently yields NaN coordinates.",
        fix="Use the cleaned file in clean/ (strict JSON, non-finite values as null outside "
        "quarantined boxes) or fix the exporter (json.dump(..., allow_nan=False)).",
        example='"bbox": [10, NaN, 20, 30]',
    ),
    Rule(
        "DS323", "degenerate-box", "error",
        "A box has width or height <= 0.",
        what="COCO bbox (x, y, w, h) and YOLO 'class xc yc w h' lines whose w or h is zero "
        "or negative.",
        why="Box regression encodes log(w / prior_w): a zero width gives -inf and the loss "
        "turns NaN (the textbook cause of a NaN box loss); IoU divides by zero area.",
        fix="Drop the box or fix its coordinates (often x2/y2 written where w/h belong).",
        example="bbox [10, 10, 0, 25]",
    ),
    Rule(
        "DS324", "non-finite-box", "error",
        "A box coordinate is NaN or infinite.",
        what="Every coordinate of every box (COCO bbox, YOLO line).",
        why="One NaN coordinate makes the box loss NaN and, after one step, every weight NaN.",
        fix="Drop the box and find the division that produced it in the export.",
        example="0 0.5 nan 0.2 0.3",
    ),
    Rule(
        "DS325", "box-outside-image", "error",
        "A box lies outside its image (beyond a small tolerance), or YOLO values leave [0, 1].",
        what="COCO boxes whose edges pass the image border by more than "
        "thresholds.box_tolerance of the image side (at least 1 px); image size from the "
        "JSON or, when missing, the image header. YOLO values outside [0, 1] and boxes whose "
        "edges pass 0 or 1 by more than the tolerance.",
        why="Ultralytics drops the whole label file when a value is outside [0, 1]; other "
        "pipelines clip the box to a sliver or crash in augmentation (albumentations raises).",
        fix="Clip boxes that only overlap the border slightly; drop the others and check the "
        "export's coordinate convention (pixels vs normalized, xyxy vs xywh).",
        example="bbox [600, 10, 100, 50] in a 640x480 image",
    ),
    Rule(
        "DS326", "unknown-class", "error",
        "A box's class is not in the class list.",
        what="COCO category_id not among the categories' ids; YOLO class id negative or not "
        "below the number of names in classes.txt / data.yaml.",
        why="A class id past the head's size raises a device-side assert on CUDA, or indexes "
        "garbage; an unknown category is silently dropped by some loaders.",
        fix="Add the category, or map the box to the right class id.",
        example="category_id 99 with categories 1..3",
    ),
    Rule(
        "DS327", "non-integer-class-id", "error",
        "A YOLO class id is not an integer.",
        what="The first field of a YOLO line: '1.5', 'car' or '' are not class ids.",
        why="Ultralytics casts with int(float(x)), silently turning 1.5 into class 1; other "
        "loaders raise.",
        fix="Write the integer index of the class (see classes.txt).",
        example="car 0.5 0.5 0.2 0.2",
    ),
    Rule(
        "DS328", "malformed-box", "error",
        "A box record cannot be read: wrong field count, not a number, missing keys, bad bytes.",
        what="COCO annotations that are not objects, lack id, image_id, category_id or bbox, or "
        "whose bbox is not a list of 4 numbers; YOLO lines without exactly 5 fields, with "
        "unparseable numbers or with bytes that are not UTF-8.",
        why="Collate functions need a fixed-length numeric box; these records raise in a "
        "DataLoader worker hours into a run.",
        fix="Repair or drop the record; polygons (segmentation labels) belong in a "
        "segmentation dataset.",
        example="0 0.5 0.5 0.2",
    ),
    Rule(
        "DS329", "unknown-image-id", "error",
        "A COCO annotation's image_id is not among the images.",
        what="Each annotation's image_id against the ids of the images list.",
        why="The box has no image: pycocotools raises a KeyError, other loaders drop it.",
        fix="Add the image entry, or drop the annotation.",
        example="image_id 77 with images 1..10",
    ),
    Rule(
        "DS330", "missing-image-file", "error",
        "An image listed in a COCO file does not exist.",
        what="Each image's file_name, relative to the JSON's folder or an images/ folder "
        "beside it. Every box on such an image is quarantined (one finding per box); an "
        "image with no boxes gives one finding about the file (sample empty).",
        why="The loader raises FileNotFoundError in a worker process mid-epoch.",
        fix="Restore the image, or remove the image entry and its annotations.",
        example='"file_name": "img_404.jpg" with no such file',
    ),
    Rule(
        "DS331", "unsafe-image-path", "error",
        "A label file names an image path that is absolute or leaves PATH; it was not opened.",
        what="COCO file_name values that are absolute or climb out with '..'.",
        why="Such paths read files that are not part of the dataset (or fail on another machine).",
        fix="Make file_name relative to the dataset folder.",
        example='"file_name": "../../etc/passwd"',
    ),
    Rule(
        "DS332", "label-without-image", "error",
        "A YOLO label file has no image.",
        what="labels/<...>/x.txt for which no images/<...>/x.<image extension> exists. Every box "
        "in it is quarantined (sample = the label file); an empty one gives one finding.",
        why="Its boxes never reach training, and it usually means images were renamed or lost.",
        fix="Restore the image or remove the label file.",
        example="labels/train/img_9.txt without images/train/img_9.jpg",
    ),
    Rule(
        "DS333", "unlisted-image", "warning",
        "An image file beside a COCO file is not listed in its images.",
        what="Image files in the folders that the COCO file's images live in, but not named by "
        "any of its image entries.",
        why="The image is silently left out of training (or was meant to be a negative).",
        fix="Add an image entry (with no annotations for a background image) or remove it.",
        example="images/img_extra.jpg, not in images[]",
    ),
    Rule(
        "DS334", "duplicate-id", "warning",
        "Two COCO annotations, images or categories share an id.",
        what="Repeated ids in the annotations, images and categories lists.",
        why="pycocotools keeps only the last entry per id: evaluation silently loses boxes, "
        "and image_id lookups pick the wrong image.",
        fix="Renumber the ids uniquely.",
        example='two annotations with "id": 7',
    ),
    Rule(
        "DS335", "tiny-box", "warning",
        "A COCO box is under 1 px wide or high.",
        what="Boxes with 0 < w < thresholds.min_box_px or 0 < h < thresholds.min_box_px (pixels).",
        why="Sub-pixel boxes vanish at the feature stride, give near-degenerate log(w) "
        "targets and are usually annotation slips.",
        fix="Drop the box or check its units.",
        example="bbox [10, 10, 0.4, 12]",
    ),
    Rule(
        "DS336", "background-images", "info",
        "Images in a YOLO set have no label file (background images).",
        what="Images under images/ with no matching labels/ file; one finding per dataset.",
        why="Legal (Ultralytics treats them as negatives), but a large number can mean the "
        "labels were written to the wrong folder.",
        fix="Nothing, if the images are meant as negatives.",
        example="images/train/bg_001.jpg without labels/train/bg_001.txt",
    ),
    Rule(
        "DS337", "bad-coco-entry", "warning",
        "A COCO image or category entry is malformed and was ignored.",
        what="Image entries that are not objects or lack id / file_name, and category entries "
        "that are not objects or lack id; also image width/height that are not positive numbers.",
        why="Loaders raise on them, or use a wrong image size when rescaling boxes.",
        fix="Repair the entry in the exporter.",
        example='{"id": 3}  (an image without file_name)',
    ),
    Rule(
        "DS338", "image-size-unknown", "warning",
        "An image's size is neither in the label file nor readable from its header.",
        what="COCO images without width/height whose file header cannot be read; the "
        "out-of-image check is skipped for their boxes.",
        why="Without the size, boxes outside the image cannot be found.",
        fix="Add width and height to the image entry, or fix the image file.",
        example='{"id": 1, "file_name": "broken.jpg"}',
    ),
    Rule(
        "DS339", "no-class-list", "info",
        "A YOLO set has no classes.txt or data.yaml names; class ids were checked only for sign.",
        what="The labels folder, its parents up to PATH, for classes.txt, data.yaml or data.yml "
        "with a names entry.",
        why="Without the class list, ids past the model's head cannot be found.",
        fix="Add classes.txt (one name a line) or data.yaml with names.",
        example="yolo/labels/... with no classes.txt",
    ),
    # ---------------------------------------------------------------- DS2xx images (issue 3)
    Rule(
        "DS201", "undecodable-image", "error",
        "An image file cannot be fully decoded.",
        what="Every image is opened and fully decoded (not just `verify()`ed): zero-byte "
        "files, text or garbage with an image extension, truncated files, corrupt "
        "compressed data and formats Pillow cannot decode.",
        why="The DataLoader worker that reaches the file raises (or, with "
        "LOAD_TRUNCATED_IMAGES, silently trains on grey padding) hours into a run.",
        fix="Re-export or re-download the image, or remove it.",
        example="cats/0007.jpg: 'image file is truncated (12 bytes not processed)'",
    ),
    Rule(
        "DS202", "decompression-bomb", "error",
        "An image declares more pixels than the limit (Pillow's MAX_IMAGE_PIXELS by default).",
        what="The width x height in the image header, read without decoding the pixels, "
        "compared with thresholds.max_image_pixels (default 89,478,485, Pillow's).",
        why="Decoding it allocates gigabytes: the worker is OOM-killed, or Pillow raises "
        "DecompressionBombError in the middle of training.",
        fix="Remove the file or resize it offline; raise the limit only for data you trust.",
        example="huge.png: 100000 x 100000 pixels",
    ),
    Rule(
        "DS203", "non-finite-pixel", "error",
        "A float image holds NaN or infinite pixels.",
        what="Float images (TIFF mode F): every pixel is checked for NaN, +Inf and -Inf.",
        why="One NaN pixel makes the forward pass, the loss and then every weight NaN.",
        fix="Fix the export (masked or no-data values) or drop the image.",
        example="depth/0003.tif: 12 NaN pixels",
    ),
    Rule(
        "DS204", "constant-image", "warning",
        "Every pixel of an image has the same value.",
        what="Images whose every pixel is equal (blank, all-black, a single colour).",
        why="Per-image standardization divides by a zero std (NaN); blank frames are "
        "usually capture or export failures that teach the model nothing.",
        fix="Check the capture/export; drop the image if it is a failure.",
        example="frames/0100.png: every pixel is (0, 0, 0)",
    ),
    Rule(
        "DS205", "tiny-image", "warning",
        "An image is smaller than thresholds.min_image_side pixels on a side (8 by default).",
        what="Width or height below the minimum side.",
        why="Random crops and resizes fail or upsample noise; often a thumbnail or icon "
        "saved by mistake.",
        fix="Remove it or replace it with the full-size image.",
        example="cats/0001.png: 1 x 1 pixels",
    ),
    Rule(
        "DS206", "extreme-aspect-ratio", "warning",
        "An image's longer side is more than thresholds.max_aspect (10) times its shorter side.",
        what="The ratio of the longer to the shorter side.",
        why="Resizing to a square squashes it beyond recognition; usually a banner, a "
        "strip of frames or a wrongly reshaped export.",
        fix="Check the image; crop or drop it.",
        example="cats/banner.png: 400 x 20 pixels (aspect 20.0)",
    ),
    Rule(
        "DS207", "inconsistent-image-mode", "warning",
        "An image's mode or channel count differs from most images of its dataset.",
        what="The Pillow mode (L, RGB, RGBA, CMYK, I;16, F, ...) of each image, compared "
        "with the most common mode of its dataset folder.",
        why="A grayscale or RGBA image among RGB ones breaks batching (tensor shapes differ) "
        "unless every loader converts; 16-bit images scale differently.",
        fix="Convert the image to the dataset's mode, or convert in the loader "
        "(`Image.convert('RGB')`).",
        example="cats/0004.png is L (1 channel) among RGB images",
    ),
    Rule(
        "DS208", "duplicate-image", "warning",
        "Two image files have byte-identical content.",
        what="A content hash (BLAKE2b) of every file's bytes, within each dataset folder.",
        why="Duplicates weight some samples twice and, across train/val/test splits, leak "
        "test data into training and inflate the scores.",
        fix="Keep one copy (and only in one split).",
        example="train/cat/1.png is identical to val/cat/9.png",
    ),
    Rule(
        "DS209", "conflicting-duplicate-image", "warning",
        "Identical image files carry different labels.",
        what="Byte-identical images (see DS208) whose labels differ; the message names both.",
        why="The model is asked to predict two classes for the same input: label noise "
        "that caps accuracy and confuses evaluation.",
        fix="Decide the right label and drop the other copy.",
        example="cat/1.png and dog/7.png are identical",
    ),
    Rule(
        "DS210", "image-extension-mismatch", "warning",
        "An image's file extension disagrees with its real format.",
        what="The format Pillow detects from the file's bytes, compared with its "
        "extension (a PNG named .jpg, a JPEG without an extension).",
        why="Loaders that choose a decoder by extension fail, and tools that filter by "
        "extension (ImageFolder) skip the file silently.",
        fix="Rename the file to match its format, or re-encode it.",
        example="cats/0005.jpg is a PNG file",
    ),
    # ---------------------------------------------------------------- DS30x image labels (issue 3)
    Rule(
        "DS301", "missing-image-label", "error",
        "An image has no label.",
        what="In a labelled image set: an image with no row in the labels table, an "
        "empty or NaN label, or a file outside any class folder of an ImageFolder tree.",
        why="The loader raises a KeyError for it, or a NaN/empty label becomes a class "
        "of its own.",
        fix="Label the image, or move it out of the labelled set.",
        example="cats_and_dogs/stray.jpg sits beside the class folders",
    ),
    Rule(
        "DS302", "label-names-missing-file", "error",
        "A label row names an image that does not exist.",
        what="Every path in a labels table, resolved against the table's folder: a file "
        "that does not exist, or is not an image of the set. Reported with source = the "
        "table and row = its 0-based data row.",
        why="The Dataset's __getitem__ raises FileNotFoundError when it reaches the row.",
        fix="Restore the image or drop the row.",
        example="labels.csv row 12: img_999.png does not exist",
    ),
    Rule(
        "DS303", "label-path-outside-root", "error",
        "A label row names a path outside the scanned folder (absolute or with ..).",
        what="Paths in a labels table that are absolute or leave PATH; datasan never opens them.",
        why="The dataset silently depends on files elsewhere (or reads /etc/passwd as an "
        "image): it is not reproducible and may be unsafe.",
        fix="Copy the image into the dataset and use a relative path.",
        example="labels.csv row 3: ../../secret.png",
    ),
    Rule(
        "DS304", "image-label-out-of-range", "error",
        "A numeric class id is negative or not below --num-classes.",
        what="Integer labels (from a labels table or numeric class folders) below 0 or at "
        "or above num_classes when it is given.",
        why="cross_entropy raises a device-side assert on CUDA, an IndexError elsewhere.",
        fix="Map the label into 0..num_classes-1, or fix --num-classes.",
        example="label = -1",
    ),
    Rule(
        "DS305", "distant-image-label", "error",
        "A numeric class id lies far above all the others.",
        what="Integer labels past a large gap above the bulk and rare (8000 among 0..9), "
        "same rule as DS104.",
        why="The output head is sized by the largest id (or crashes); usually a sentinel value.",
        fix="Fix the label (a typo or sentinel) or drop the image.",
        example="label = 8000 among 0..9",
    ),
    Rule(
        "DS306", "unknown-image-class", "error",
        "A label is not among the class names given in the options.",
        what="With `classes` set in the options, every label (table value or class folder "
        "name) must be one of them.",
        why="A misspelt class folder ('dgo') becomes a class of its own and shifts every "
        "class index after it.",
        fix="Rename the folder / fix the label, or add the class to the list.",
        example="dgo/0001.jpg with classes [cat, dog]",
    ),
    Rule(
        "DS307", "conflicting-image-labels", "error",
        "A labels table gives the same image two different labels.",
        what="Two or more rows of the labels tables that resolve to the same image with "
        "different labels.",
        why="Which label the loader uses depends on row order: label noise at best.",
        fix="Keep one row per image.",
        example="labels.csv rows 3 and 9 both name a.png, as cat and dog",
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
