"""Box labels (COCO JSON, YOLO txt): rule codes DS320-DS339, exact counts, cleaned label files."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import pytest
from conftest import Scanned

REPO = Path(__file__).resolve().parent.parent
DETECTION = REPO / "sample_data" / "detection"
BOX_CODES = [f"DS{n}" for n in range(320, 340)]


class Out(Scanned):
    """A scan written to a folder, with the contract files loaded back (see conftest.Scanned)."""

    def of(self, code: str, source: str | None = None):
        f = self.findings[self.findings["code"] == code]
        return f if source is None else f[f["source"] == source]

    def by_row(self, source: str) -> dict[int, list[str]]:
        """{row: sorted codes} of the findings of ``source`` that name a row."""
        f = self.findings[(self.findings["source"] == source) & self.findings["row"].notna()]
        out: dict[int, list[str]] = {}
        for code, row in zip(f["code"], f["row"]):
            out.setdefault(int(row), []).append(code)
        return {r: sorted(c) for r, c in sorted(out.items())}


@pytest.fixture
def scan(scan_to):
    """conftest's scan_to, limited to this issue's codes: the image kind (DS2xx,
    DS301-DS319) may also see these images."""

    def run(path, **options) -> Out:
        options.setdefault("select", ["DS32", "DS33"])
        s = scan_to(path, **options)
        return Out(s.result, s.out)

    return run


def digest(path: Path) -> dict[str, str]:
    return {str(p.relative_to(path)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(path.rglob("*")) if p.is_file()}


def png(path: Path, size=(64, 48)) -> None:
    from PIL import Image

    path.parent.mkdir(parents=True, exist_ok=True)
    Image.new("RGB", size, (90, 30, 160)).save(path)


def assert_nothing_lost(o: Out) -> None:
    for s in o.report["sources"]:
        if s["unit"] == "boxes":
            assert s["kept"] + s["quarantined"] == s["seen"], s
            q = o.quarantine[o.quarantine["source"].str.startswith(s["source"])]
            if s["kind"] == "coco":
                assert len(q) == s["quarantined"]


# --------------------------------------------------------------------------- COCO sample set

COCO_ROWS = {
    2: ["DS323"], 3: ["DS324"], 4: ["DS325"], 5: ["DS325"], 6: ["DS326"], 7: ["DS329"], 8: ["DS328"],
    9: ["DS328"], 10: ["DS330"], 11: ["DS334"], 12: ["DS335"], 13: ["DS331"], 14: ["DS328"],
}


def test_coco_sample_every_defect_and_exact_counts(scan):
    before = digest(DETECTION)
    o = scan(DETECTION / "coco")
    src = "annotations.json"
    assert o.by_row(src) == COCO_ROWS
    s = o.source(src)
    assert (s["seen"], s["kept"], s["quarantined"]) == (16, 5, 11)
    assert_nothing_lost(o)
    q = o.quarantine.sort_values("row")
    assert q["row"].tolist() == [2, 3, 4, 5, 6, 7, 8, 9, 10, 13, 14]
    # sample = the box's image; the JSON itself when the annotation names no usable image
    assert dict(zip(q["row"], q["sample"]))[2] == "images/img_001.png"
    assert dict(zip(q["row"], q["sample"]))[5] == "images/img_002.png"  # size read from the header
    assert dict(zip(q["row"], q["sample"]))[10] == "images/img_003.png"  # listed, file missing
    assert dict(zip(q["row"], q["sample"]))[7] == "annotations.json"  # image_id 77 unknown
    # file-level findings carry no sample and quarantine nothing
    for code, n in {"DS322": 1, "DS333": 1, "DS337": 1}.items():
        f = o.of(code)
        assert len(f) == n and f["sample"].isna().all(), code
    assert len(o.of("DS330")) == 2 and o.of("DS330")["sample"].isna().sum() == 1  # img_004: no boxes
    assert "img_004.png" in o.of("DS330")["message"].dropna().iloc[1]
    assert len(o.of("DS334")) == 2  # one duplicate image id, one duplicate annotation id
    assert "images/img_extra.png" in o.of("DS333")["message"].iloc[0]
    assert o.of("DS323")["severity"].tolist() == ["error"]
    assert o.of("DS335")["severity"].tolist() == ["warning"]
    assert digest(DETECTION) == before  # PATH is never written


def test_coco_clean_file_is_strict_json_with_exactly_the_kept_boxes(scan):
    o = scan(DETECTION / "coco")
    text = (o.out / "clean" / "annotations.json").read_text()

    def reject(token):
        raise AssertionError(f"non-standard token {token} in the clean file")

    clean = json.loads(text, parse_constant=reject)
    orig = json.loads((DETECTION / "coco" / "annotations.json").read_text())
    kept_rows = [i for i in range(16) if i not in set(o.quarantine["row"])]
    assert kept_rows == [0, 1, 11, 12, 15]
    assert clean["annotations"][:4] == [orig["annotations"][i] for i in kept_rows[:4]]
    assert clean["annotations"][4]["area"] is None  # Infinity -> null; the box is kept
    for key in ("info", "images", "categories"):
        assert clean[key] == orig[key]
    assert "annotations.json" in o.result.clean_files


def test_coco_stats_per_class_and_box_moments(scan):
    o = scan(DETECTION / "coco")
    assert o.stats["labels"]["annotations.json"] == {"cat": 2, "dog": 3}
    b = o.stats["boxes"]["annotations.json"]
    assert b["count"] == 5 and b["units"] == "pixels"
    widths, heights = [20, 30, 8, 0.5, 10], [15, 20, 8, 6, 10]
    assert b["width"]["mean"] == pytest.approx(sum(widths) / 5)
    assert b["height"]["max"] == 20 and b["width"]["min"] == 0.5
    assert b["aspect"]["mean"] == pytest.approx(sum(w / h for w, h in zip(widths, heights)) / 5)
    per = b["per_class"]
    # kept: cat rows 0, 12; dog rows 1, 11, 15.  Quarantined with a readable class: cat rows
    # 2, 4, 5, 7, 8, 13, dog rows 3, 10, category 99 row 6 (rows 9 and 14 have none)
    assert {k: (v["count"], v["quarantined"]) for k, v in per.items()} == {"99": (0, 1), "cat": (2, 6),
                                                                           "dog": (3, 2)}
    assert per["cat"]["width"]["mean"] == pytest.approx((20 + 0.5) / 2)
    assert per["cat"]["area"]["max"] == 300 and per["cat"]["area"]["min"] == 3
    assert per["dog"]["aspect"]["mean"] == pytest.approx((30 / 20 + 1 + 1) / 3)
    assert sum(per["dog"]["height"]["sketch"]["count"]) == 3
    assert per["99"]["width"]["count"] == 0 and per["99"]["width"]["mean"] is None


def test_coco_broken_files_are_one_finding_each(scan):
    o = scan(DETECTION / "coco_broken")
    assert o.codes() == ["DS320", "DS321"]
    assert o.of("DS320")["source"].tolist() == ["truncated.json"]
    assert o.of("DS321")["source"].tolist() == ["structure.json"]
    assert o.findings["sample"].isna().all()
    for name in ("truncated.json", "structure.json"):
        s = o.source(name)
        assert (s["seen"], s["kept"], s["quarantined"], s["readable"]) == (0, 0, 0, False)
    assert not (o.out / "clean" / "truncated.json").exists()


def _coco(tmp_path: Path, images, annotations, categories=None, name="ann.json", raw=None) -> Path:
    root = tmp_path / "data"
    root.mkdir(exist_ok=True)
    doc = {"images": images, "annotations": annotations,
           "categories": categories if categories is not None else [{"id": 1, "name": "a"}]}
    (root / name).write_text(raw if raw is not None else json.dumps(doc))
    return root


def test_coco_robust_to_odd_values(scan, tmp_path):
    root = _coco(tmp_path, [{"id": 1, "file_name": "x.png", "width": 64, "height": 48}, "junk",
                            {"id": [1], "file_name": "y.png"}],
                 [{"id": [1, 2], "image_id": 1, "category_id": 1, "bbox": "10,10,5,5"},
                  {"id": {"a": 1}, "image_id": 1, "category_id": 1, "bbox": [1, 1, True, 4]},
                  {"id": 3, "image_id": 1, "category_id": 1, "bbox": [1, 1, 4, 4]},
                  None, 7,
                  {"id": 6, "image_id": 1, "category_id": 1, "bbox": [1, 1, 10 ** 400, 4]}])
    png(root / "x.png")
    o = scan(root)
    assert o.by_row("ann.json") == {0: ["DS328"], 1: ["DS328"], 3: ["DS328"], 4: ["DS328"], 5: ["DS324"]}
    assert len(o.of("DS337")) == 1 and len(o.of("DS330")) == 1  # y.png: listed, missing, no boxes
    s = o.source("ann.json")
    assert (s["seen"], s["kept"]) == (6, 1)
    assert_nothing_lost(o)


def test_coco_non_utf8_and_top_level_list(scan, tmp_path):
    root = tmp_path / "data"
    root.mkdir()
    (root / "bytes.json").write_bytes(b'{"images": [], "annotations": [], "categories": ["\xff"]}')
    (root / "list.json").write_text('[{"images": [], "annotations": [], "categories": []}]')
    (root / "other.json").write_text('{"not": "coco"}')  # not claimed: left to later kinds
    o = scan(root, select=[])
    assert o.of("DS320")["source"].tolist() == ["bytes.json"]
    assert o.of("DS321")["source"].tolist() == ["list.json"]
    assert "other.json" not in {s["source"] for s in o.report["sources"] if s.get("unit") == "boxes"}


def test_coco_images_folder_beside_json_and_unlisted(scan, tmp_path):
    root = _coco(tmp_path, [{"id": 1, "file_name": "a.png"}],
                 [{"id": 1, "image_id": 1, "category_id": 1, "bbox": [60, 0, 10, 10]},
                  {"id": 2, "image_id": 1, "category_id": 1, "bbox": [62, 0, 2.5, 10]}])
    png(root / "images" / "a.png")
    png(root / "images" / "b.png")
    o = scan(root)
    # the size comes from the header (64x48): box 0 ends at 70 > 64 + 1 px tolerance, box 1 at 64.5
    assert o.by_row("ann.json") == {0: ["DS325"]}
    assert o.of("DS333")["message"].str.contains("images/b.png").tolist() == [True]
    assert o.quarantine["sample"].tolist() == ["images/a.png"]


def test_coco_unreadable_image_header_skips_border_check(scan, tmp_path):
    root = _coco(tmp_path, [{"id": 1, "file_name": "bad.png"}],
                 [{"id": 1, "image_id": 1, "category_id": 1, "bbox": [0, 0, 500, 500]}])
    (root / "bad.png").write_bytes(b"not an image")
    o = scan(root)
    assert len(o.of("DS338")) == 1 and o.of("DS338")["sample"].isna().all()
    assert o.source("ann.json")["kept"] == 1


def test_severity_overrides_keep_counts_exact(scan):
    o = scan(DETECTION / "coco", severity={"DS323": "warning", "DS333": "error", "DS337": "error"})
    s = o.source("annotations.json")
    assert (s["seen"], s["kept"], s["quarantined"]) == (16, 6, 10)  # the degenerate box is kept
    assert o.of("DS323")["severity"].tolist() == ["warning"]
    assert o.of("DS333")["severity"].tolist() == ["error"]  # a file-level error: quarantines no box
    assert_nothing_lost(o)
    clean = json.loads((o.out / "clean" / "annotations.json").read_text())
    assert [a["id"] for a in clean["annotations"]] == [1, 2, 3, 1, 13, 16]


def test_ignored_rule_keeps_its_boxes(scan):
    o = scan(DETECTION / "coco", ignore=["DS325"])
    assert len(o.of("DS325")) == 0
    assert o.source("annotations.json")["kept"] == 7


# --------------------------------------------------------------------------- YOLO sample set

YOLO_A = {2: ["DS326"], 3: ["DS327"], 4: ["DS328"], 5: ["DS328"], 6: ["DS325"], 7: ["DS323"], 8: ["DS324"]}


def test_yolo_sample_every_defect_and_exact_counts(scan):
    before = digest(DETECTION)
    o = scan(DETECTION / "yolo")
    assert o.by_row("labels/train/a.txt") == YOLO_A
    assert o.by_row("labels/train/b.txt") == {1: ["DS328"], 3: ["DS325"]}  # non-UTF-8; edges out
    assert o.by_row("labels/val/ghost.txt") == {0: ["DS332"]}
    ghost_empty = o.of("DS332", "labels/val/ghost_empty.txt")
    assert len(ghost_empty) == 1 and ghost_empty["sample"].isna().all() and ghost_empty["row"].isna().all()
    bg = o.of("DS336")
    assert bg["severity"].tolist() == ["info"] and "images/train/bg.png" in bg["message"].iloc[0]
    assert len(o.of("DS339")) == 0  # data.yaml names were found
    s = o.source("labels")
    assert (s["seen"], s["kept"], s["quarantined"], s["classes"]) == (14, 4, 10, 2)
    assert len(o.quarantine) == 10
    assert_nothing_lost(o)
    samples = dict(zip(zip(o.quarantine["source"], o.quarantine["row"]), o.quarantine["sample"]))
    assert samples[("labels/train/a.txt", 2)] == "images/train/a.png"
    assert samples[("labels/val/ghost.txt", 0)] == "labels/val/ghost.txt"  # no image: the label file
    assert digest(DETECTION) == before


def test_yolo_clean_files_hold_exactly_the_kept_lines(scan):
    o = scan(DETECTION / "yolo")
    clean = o.out / "clean" / "labels"
    assert (clean / "train" / "a.txt").read_text() == "0 0.5 0.5 0.2 0.2\n1 0.3 0.3 0.1 0.1\n"
    assert (clean / "train" / "b.txt").read_bytes() == b"0 0.25 0.25 0.1 0.2\n"
    assert (clean / "train" / "c.txt").read_text() == ""
    assert (clean / "val" / "v.txt").read_text() == "1 0.5 0.5 0.5 0.5\n"
    assert (clean / "val" / "ghost.txt").read_text() == ""
    lines = sum(len(p.read_text().splitlines()) for p in clean.rglob("*.txt"))
    assert lines == o.source("labels")["kept"] == 4
    assert sorted(o.result.clean_files) == sorted(f"labels/{p}" for p in (
        "train/a.txt", "train/b.txt", "train/c.txt", "val/v.txt", "val/ghost.txt", "val/ghost_empty.txt"))


def test_yolo_stats(scan):
    o = scan(DETECTION / "yolo")
    assert o.stats["labels"]["labels"] == {"cat": 2, "dog": 2}
    b = o.stats["boxes"]["labels"]
    assert b["count"] == 4 and b["units"] == "normalized"
    assert b["width"]["mean"] == pytest.approx((0.2 + 0.1 + 0.1 + 0.5) / 4)
    per = b["per_class"]
    # a.txt line 2 (class 5, outside the class list) and seven class-0 lines are quarantined
    assert {k: (v["count"], v["quarantined"]) for k, v in per.items()} == {"5": (0, 1), "cat": (2, 6),
                                                                           "dog": (2, 0)}
    assert per["dog"]["area"]["mean"] == pytest.approx((0.01 + 0.25) / 2)


def test_box_stats_per_class_merge_in_any_order_and_cap():
    from datasan.checks.boxes import CLASS_CAP, BoxStats

    classes = ["a", "b", "a", "c", "a"]
    widths, heights = [1.0, 2.0, 3.0, 4.0, 5.0], [2.0, 2.0, 3.0, 1.0, 10.0]
    whole = BoxStats.of(classes, widths, heights, ["b", "d"]).as_json("pixels")
    left = BoxStats.of(classes[:2], widths[:2], heights[:2], ["d"])
    right = BoxStats.of(classes[2:], widths[2:], heights[2:], ["b"])
    for merged in (BoxStats().merge(left).merge(right), BoxStats().merge(right).merge(left)):
        got = merged.as_json("pixels")["per_class"]
        assert list(got) == ["a", "b", "c", "d"]
        for name, entry in whole["per_class"].items():
            for key in ("count", "quarantined"):
                assert got[name][key] == entry[key]
            for field in ("width", "height", "area", "aspect"):
                # sketches and counts merge exactly; moments up to float rounding
                assert got[name][field].get("sketch") == entry[field].get("sketch")
                assert got[name][field]["count"] == entry[field]["count"]
                assert got[name][field]["mean"] == pytest.approx(entry[field]["mean"])
    assert whole["per_class"]["a"]["count"] == 3 and whole["per_class"]["a"]["area"]["mean"] == pytest.approx(
        (2 + 9 + 50) / 3)
    assert (whole["per_class"]["b"]["quarantined"], whole["per_class"]["d"]["count"]) == (1, 0)
    many = [f"k{i}" for i in range(CLASS_CAP + 1)]
    half = len(many) // 2
    over = BoxStats.of(many[:half], [1.0] * half, [1.0] * half).merge(
        BoxStats.of(many[half:], [1.0] * (len(many) - half), [1.0] * (len(many) - half)))
    assert over.per_class is None and over.as_json("pixels")["per_class_over_cap"] == CLASS_CAP
    assert len(over.classes) == CLASS_CAP + 1


def _yolo(tmp_path: Path, labels: dict[str, str | bytes], images: list[str], extra: dict | None = None) -> Path:
    root = tmp_path / "ds"
    for name in images:
        png(root / "images" / name, size=(16, 16))
    for name, text in labels.items():
        p = root / "labels" / name
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_bytes(text if isinstance(text, bytes) else text.encode())
    for name, text in (extra or {}).items():
        (root / name).write_text(text)
    return root


def test_yolo_without_class_list(scan, tmp_path):
    root = _yolo(tmp_path, {"x.txt": "7 0.5 0.5 0.1 0.1\n-1 0.5 0.5 0.1 0.1\n1.0 0.5 0.5 0.1 0.1\n"}, ["x.jpg"])
    o = scan(root)
    assert o.of("DS339")["severity"].tolist() == ["info"]
    assert o.by_row("labels/x.txt") == {1: ["DS326"]}  # 7 and 1.0 are fine without a list
    assert o.stats["labels"]["labels"] == {"1": 1, "7": 1}


def test_yolo_classes_txt_bom_crlf_and_polygons(scan, tmp_path):
    root = _yolo(tmp_path, {
        "train/p.txt": b"\xef\xbb\xbf0 0.5 0.5 0.2 0.2\r\n2 0.5 0.5 0.2 0.2\r\n1 0.1 0.1 0.2 0.1 0.2 0.2\r\n",
        "train/q.txt": "1.5 0.5 0.5 0.2 0.2\n",
    }, ["train/p.png", "train/q.png"], {"classes.txt": "cat\ndog\n"})
    o = scan(root)
    assert o.by_row("labels/train/p.txt") == {1: ["DS326"], 2: ["DS328"]}
    assert "segmentation polygon" in o.of("DS328")["message"].iloc[0]
    assert o.by_row("labels/train/q.txt") == {0: ["DS327"]}
    assert o.source("labels")["classes"] == 2
    assert (o.out / "clean" / "labels" / "train" / "p.txt").read_text() == "0 0.5 0.5 0.2 0.2\n"


def test_yolo_split_first_layout_and_many_shards(scan, tmp_path, monkeypatch):
    import datasan.sources.boxes as kind

    monkeypatch.setattr(kind, "CHUNK", 2)
    root = tmp_path / "ds"
    for i in range(5):
        png(root / "train" / "images" / f"i{i}.png", size=(16, 16))
        p = root / "train" / "labels" / f"i{i}.txt"
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_text("0 0.5 0.5 0.2 0.2\n0 0.5 0.5 -0.2 0.2\n")
    (root / "data.yaml").write_text("names: ['a', 'b']\n")
    o = scan(root)
    s = o.source("train/labels")
    assert (s["seen"], s["kept"], s["quarantined"]) == (10, 5, 5)
    assert len(o.of("DS323")) == 5 and len(o.of("DS325")) == 5  # width -0.2 is also outside [0, 1]
    assert o.stats["labels"]["train/labels"] == {"a": 5}


def test_parallel_scan_matches_serial(scan):
    serial = scan(DETECTION, workers=1)
    parallel = scan(DETECTION, workers=2)
    cols = ["code", "source", "row", "sample"]
    key = lambda o: sorted(repr(r) for r in o.findings[cols].values.tolist())  # noqa: E731
    assert key(serial) == key(parallel)
    assert serial.stats == parallel.stats
    assert len(parallel.quarantine) == 21


# --------------------------------------------------------------------------- claim, names, rules

def test_claim_takes_label_files_and_records_image_dirs():
    from datasan.discover import discover
    from datasan.options import ScanOptions
    from datasan.sources.base import ScanContext
    from datasan.sources.boxes import BoxKind

    d = discover(DETECTION)
    ctx = ScanContext(root=d.root, options=ScanOptions(), engine=None, staging="")
    sources, rest = BoxKind().claim(d.files, ctx)
    assert [(s.kind, s.name) for s in sources] == [
        ("coco", "coco/annotations.json"), ("coco", "coco_broken/structure.json"),
        ("coco", "coco_broken/truncated.json"), ("yolo", "yolo/labels")]
    assert ctx.shared["box_image_dirs"] == {"coco/images", "coco_broken", "yolo/images"}
    left = {f.rel for f in rest}
    assert all(r.endswith(".png") for r in left) and len(left) == 8  # images stay for the image kind
    assert "yolo/data.yaml" not in left


@pytest.mark.parametrize("text, names", [
    ("names: ['a', \"b\", c]\n", ["a", "b", "c"]),
    ("names:\n  - a\n  - b  # comment\nnc: 2\n", ["a", "b"]),
    ("names:\n  0: cat\n  2: dog\n", ["cat", "1", "dog"]),
    ("names: {0: x, 1: 'y'}\n", ["x", "y"]),
    ("names: [a,\n  b]\n", ["a", "b"]),
    ("nc: 3\n", ["0", "1", "2"]),
    ("train: images\n", None),
])
def test_data_yaml_names(text, names):
    from datasan.sources.boxes.yolo import parse_yaml_names

    assert parse_yaml_names(text) == names


def test_data_yaml_names_agree_with_pyyaml():
    yaml = pytest.importorskip("yaml")
    from datasan.sources.boxes.yolo import parse_yaml_names

    text = (DETECTION / "yolo" / "data.yaml").read_text()
    names = yaml.safe_load(text)["names"]
    assert parse_yaml_names(text) == [names[i] for i in sorted(names)]


def test_box_rules_are_documented():
    from datasan.rules import RULES

    assert [c for c in RULES if "DS320" <= c <= "DS369"] == BOX_CODES
    for code in BOX_CODES:
        r = RULES[code]
        assert r.what and r.why and r.fix and r.example, code


def test_every_box_code_is_asserted_in_this_file():
    text = Path(__file__).read_text()
    for code in BOX_CODES:
        assert f'"{code}"' in text, code


def test_coco_clean_copy_when_nothing_is_quarantined(scan, tmp_path):
    root = _coco(tmp_path, [{"id": 1, "file_name": "x.png", "width": 64, "height": 48}],
                 [{"id": 1, "image_id": 1, "category_id": 1, "bbox": [1, 1, 5, 5]}])
    png(root / "x.png")
    (root / "bom.json").write_bytes(b"\xef\xbb\xbf" + (root / "ann.json").read_bytes())
    o = scan(root)
    assert o.codes() == []
    assert (o.out / "clean" / "ann.json").read_bytes() == (root / "ann.json").read_bytes()
    assert (o.out / "clean" / "bom.json").read_bytes() == (root / "ann.json").read_bytes()  # BOM dropped
    assert o.source("bom.json")["kept"] == 1


def test_cli_scan_of_the_detection_samples(tmp_path):
    from typer.testing import CliRunner

    from datasan.cli import app

    out = tmp_path / "out"
    res = CliRunner().invoke(app, ["scan", str(DETECTION), "--out", str(out), "--no-probe",
                                   "--fail-on", "error"])
    assert res.exit_code == 1, res.output  # box errors fail the gate
    report = json.loads((out / "report.json").read_text())
    boxes = [s for s in report["sources"] if s["unit"] == "boxes"]
    assert sum(s["seen"] for s in boxes) == 30 and sum(s["kept"] for s in boxes) == 9
    assert (out / "clean" / "coco" / "annotations.json").is_file()
    assert (out / "clean" / "yolo" / "labels" / "train" / "a.txt").is_file()
