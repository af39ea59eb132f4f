"""Rule cases (see tests/test_rule_cases.py) for the drift rules: each case scans a
baseline first and compares the positive and negative data with it."""

from __future__ import annotations

from functools import partial
from pathlib import Path

import numpy as np

from rule_case import Case, write

N = 400


def table(root: Path, seed: int = 1, name: str = "t.csv", shift: float = 0.0, shrink: bool = False,
          new_class: bool = False, drop_class: bool = False, missing: float = 0.0, extra: bool = False,
          no_color: bool = False, color_ints: bool = False, one_color: bool = False) -> Path:
    """A 400-row table x (normal 10, 2), color (a/b/c), label (0/1/2), and one change."""
    rng = np.random.default_rng(seed)
    x = rng.normal(10.0, 2.0, N) + shift
    y = rng.integers(0, 3, N)
    color = rng.choice(["a", "b", "c"], N)
    if shrink:  # class 0 to a fifth
        keep = (y != 0) | (rng.random(N) < 0.2)
        x, y, color = x[keep], y[keep], color[keep]
    if new_class:
        y[: N // 4] = 3
    if drop_class:
        y[y == 2] = 1
    if one_color:
        color[:] = "a"
    cells = [f"{v:.4f}" for v in x]
    for i in np.flatnonzero(rng.random(len(x)) < missing):
        cells[i] = ""
    colors = [str(ord(c) - 96) for c in color] if color_ints else list(color)
    head = ["x"] + ([] if no_color else ["color"]) + ["label"] + (["z"] if extra else [])
    lines = [",".join(head)]
    for i in range(len(x)):
        row = [cells[i]] + ([] if no_color else [colors[i]]) + [str(y[i])] + (["1"] if extra else [])
        lines.append(",".join(row))
    write(root / name, "\n".join(lines) + "\n")
    return root


def two_tables(root: Path, seed: int = 1) -> Path:
    table(root, seed)
    return table(root, seed + 10, name="u.csv")


def images(root: Path, seed: int = 1, bright: float = 0.5, side: int = 16) -> Path:
    """24 gray PNGs of brightness about ``bright`` and sides ``side`` .. ``side`` + 8."""
    from PIL import Image

    rng = np.random.default_rng(seed)
    (root / "imgs").mkdir(parents=True, exist_ok=True)
    for i in range(24):
        w, h = (int(v) for v in rng.integers(side, side + 9, 2))
        level = np.clip(rng.normal(bright, 0.05), 0, 1) * 255
        px = np.clip(rng.normal(level, 10, (h, w)), 0, 255).astype(np.uint8)
        Image.fromarray(px, "L").save(root / "imgs" / f"{i:03d}.png")
    return root


same = partial(table, seed=2)  # the baseline's distribution, other rows
CASES = {
    "DS501": Case(partial(table, seed=2, shift=6.0), same, baseline=table),
    "DS502": Case(partial(table, seed=2, shift=6.0), same, baseline=table),
    "DS503": Case(partial(table, seed=2, shrink=True), same, baseline=table),
    "DS504": Case(partial(table, seed=2, new_class=True), same, baseline=table),
    "DS505": Case(partial(table, seed=2, drop_class=True), same, baseline=table),
    "DS506": Case(partial(table, seed=2, missing=0.15), same, baseline=table),
    "DS507": Case(partial(table, seed=2, extra=True), same, baseline=table),
    "DS508": Case(partial(table, seed=2, no_color=True), same, baseline=table),
    "DS509": Case(partial(table, seed=2, color_ints=True), same, baseline=table),
    "DS510": Case(partial(table, seed=2, one_color=True), same, baseline=table),
    "DS511": Case(partial(images, seed=2, bright=0.15), partial(images, seed=2), baseline=images),
    "DS512": Case(partial(images, seed=2, side=40), partial(images, seed=2), baseline=images),
    "DS513": Case(same, partial(two_tables, seed=2), baseline=two_tables),
    "DS514": Case(partial(two_tables, seed=2), same, baseline=table),
}
