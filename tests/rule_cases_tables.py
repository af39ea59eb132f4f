"""Rule cases (see tests/test_rule_cases.py) for the file-level (DS0xx) and table (DS1xx) rules.

Each negative is the positive with the smallest change that removes the defect.
DS011 (internal-error) has no case here: it is datasan failing, which no
dataset triggers on purpose; tests/test_odd_inputs.py plants a bug to test it.
"""

from __future__ import annotations

import os
from pathlib import Path

from rule_case import Case, write


def table(text: str, name: str = "t.csv"):
    """A builder writing one text table ``name`` under PATH."""
    def build(root: Path) -> Path:
        write(root / name, text)
        return root
    return build


def raw(name: str | bytes, data: bytes):
    """A builder writing ``data`` to the file ``name`` (bytes: a name that need not be UTF-8)."""
    def build(root: Path) -> Path:
        path = os.path.join(os.fsencode(root), name if isinstance(name, bytes) else name.encode())
        with open(path, "wb") as f:
            f.write(data)
        return root
    return build


def _parquet(ok: bool):
    def build(root: Path) -> Path:
        if not ok:
            write(root / "t.parquet", b"PAR1 this is not a parquet file")
            return root
        import pyarrow as pa
        import pyarrow.parquet as pq

        pq.write_table(pa.table({"x": [1.0, 2.0], "label": [0, 1]}), root / "t.parquet")
        return root
    return build


def _link(outside: bool):
    """PATH holds a table and a symlink to a folder outside PATH, or to one inside it."""
    def build(root: Path) -> Path:
        data = root / "data"
        write(data / "t.csv", "x,label\n1,0\n")
        target = root / "elsewhere" if outside else data / "inside"
        write(target / "u.csv", "x,label\n2,1\n")
        os.symlink(target, data / "link")
        return data
    return build


def _fifo(special: bool):
    def build(root: Path) -> Path:
        write(root / "t.csv", "x,label\n1,0\n")
        if special:
            os.mkfifo(root / "pipe")
        else:
            write(root / "pipe", "")
        return root
    return build


def _deep(levels: int):
    """A table at the bottom of ``levels`` nested folders."""
    def build(root: Path) -> Path:
        folder = root.joinpath(*["d"] * levels)
        write(folder / "t.csv", "x,label\n1,0\n")
        return root
    return build


def _nested_jsonl(depth: int) -> str:
    return '{"x": 1.0, "label": 0}\n{"x": ' + "[" * depth + "]" * depth + ', "label": 1}\n'


CLASSES = "".join(f"{i % 2 + 0.5},{i % 10}\n" for i in range(30))
NUMBERS = "".join(f"{i}.5,{i % 2}\n" for i in range(20))
WHOLE = "".join(f"{i},{i % 2}\n" for i in range(20))
TEXT_ROWS = "".join(f"n{i},{i}.5,{i % 2}\n" for i in range(9))

CASES = {
    "DS001": Case(_parquet(ok=False), _parquet(ok=True)),
    "DS002": Case(table(""), table("x,label\n1,0\n")),
    "DS003": Case(raw("t.csv", "name,label\ncafé,0\n".encode("latin-1")),
                  raw("t.csv", "name,label\ncafé,0\n".encode("utf-8"))),
    "DS004": Case(table("a,b,label\n1,2,0\n1,2\n"), table("a,b,label\n1,2,0\n1,2,1\n")),
    "DS005": Case(table('{"x": 1, "meta": {"a": 1}, "label": 0}\n', "t.jsonl"),
                  table('{"x": 1, "meta": "a", "label": 0}\n', "t.jsonl")),
    "DS006": Case(_link(outside=True), _link(outside=False)),
    "DS007": Case(_fifo(special=True), _fifo(special=False)),
    "DS008": Case(raw("notes.xyz", b"x,label\n1,0\n"), raw("notes.csv", b"x,label\n1,0\n")),
    "DS009": Case(table('{"x": 1, "label": 0}\n{"x": 2, "label": 1\n', "t.jsonl"),
                  table('{"x": 1, "label": 0}\n{"x": 2, "label": 1}\n', "t.jsonl")),
    "DS010": Case(table("a,a,label\n1,2,0\n"), table("a,b,label\n1,2,0\n")),
    "DS012": Case(raw(b"bad\xffname.csv", b"x,label\n1,0\n"), raw(b"badname.csv", b"x,label\n1,0\n")),
    "DS013": Case(table("x,label\n1,0\n", "a" * 248 + ".csv"), table("x,label\n1,0\n", "a" * 240 + ".csv")),
    "DS014": Case(table(_nested_jsonl(3000), "t.jsonl"), table(_nested_jsonl(3), "t.jsonl")),
    "DS015": Case(_deep(260), _deep(250)),
    "DS101": Case(table("x,label\n1.0,0\nnan,1\n"), table("x,label\n1.0,0\n2.0,1\n")),
    "DS102": Case(table("x,label\n1.0,0\n2.0,\n"), table("x,label\n1.0,0\n2.0,1\n")),
    "DS103": Case(table("x,label\n" + CLASSES + "0.5,-1\n"), table("x,label\n" + CLASSES + "0.5,1\n")),
    "DS104": Case(table("x,label\n" + CLASSES + "0.5,8000\n"), table("x,label\n" + CLASSES + "0.5,9\n")),
    "DS105": Case(table("x,label\n1,0\n1e20,1\n"), table("x,label\n1,0\n1e2,1\n")),
    "DS106": Case(table("x,label\n70000,0\n1,1\n"), table("x,label\n60000,0\n1,1\n")),
    "DS107": Case(table("x,label\n0,0\n255,1\n128,0\n30,1\n"), table("x,label\n0,0\n1,1\n0.5,0\n0.1,1\n")),
    "DS108": Case(table("x,c,label\n1,5,0\n2,5,1\n"), table("x,c,label\n1,5,0\n2,6,1\n")),
    "DS109": Case(table("x,label\n" + NUMBERS + "abc,0\n"), table("x,label\n" + NUMBERS + "2.5,0\n")),
    "DS110": Case(table("x,label\n1,0\n1,0\n2,1\n"), table("x,label\n1,0\n3,0\n2,1\n")),
    "DS111": Case(table("x,label\n1,0\n1,1\n2,0\n"), table("x,label\n1,0\n3,1\n2,0\n")),
    "DS112": Case(table("a,b\n1,2\n"), table("a,label\n1,0\n")),
    "DS113": Case(table("x,label\n1,0\n1e300,1\n"), table("x,label\n1,0\n1e30,1\n")),
    "DS114": Case(table("family,label\n" + WHOLE + "13A,0\n"), table("family,label\n" + WHOLE + "13,0\n")),
    "DS115": Case(table("class,age,survived\n1,22,0\n3,38,1\n"), table("class,age,fare\n1,22,0\n3,38,1\n")),
    "DS116": Case(table("name,x,label\n" + TEXT_ROWS + ",9.5,1\n"), table("name,x,label\n" + TEXT_ROWS + "n9,9.5,1\n")),
    "DS117": Case(table("a,x,label\n,1,0\n,2,1\n"), table("a,x,label\nq,1,0\n,2,1\n")),
    "DS118": Case(table("name,x,label\n" + "".join(f"{'' if i < 5 else 'n'},{i},{i % 2}\n" for i in range(10))),
                  table("name,x,label\n" + "".join(f"{'' if i < 1 else 'n'},{i},{i % 2}\n" for i in range(10)))),
}
