"""How an image looks (DS214-DS218): blurry, dark, overexposed, low information, gray as RGB.

Called in the workers by ``datasan/sources/images/decode.py`` on the
perceptual facts of one decoded image (``sources/images/perceptual.py``).
How the default limits were chosen on real photos: docs/images.md.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from datasan.checks.rule import Rule
from datasan.findings import Finding

if TYPE_CHECKING:  # pragma: no cover
    from datasan.sources.images.perceptual import Perceptual


BLURRY_IMAGE = Rule(
    "DS214", "blurry-image", "warning",
    "An image is blurred: the variance of its Laplacian is below thresholds.min_blur.",
    what="The variance of the 4-neighbour Laplacian of the image in gray, reduced to at most "
    "256 pixels on its longer side (so images of any size compare), against "
    "thresholds.min_blur (default 3.5; 0 turns the check off). Dark and overexposed images "
    "(DS215, DS216) are not reported again as blurry. The score is index.parquet's `blur`.",
    why="Out-of-focus or motion-blurred frames carry little of what the label names and "
    "teach the model that blur belongs to the class.",
    fix="Drop or recapture the image; if blur is expected at inference, keep it on purpose "
    "and lower the limit.",
    example="street/0412.jpg: Laplacian variance 1.9, below 3.5",
)
DARK_IMAGE = Rule(
    "DS215", "dark-image", "warning",
    "An image is nearly black: even its brightest pixels are dark.",
    what="The 95th percentile of the luminance (0..255, over every pixel) below "
    "thresholds.dark_p95 (default 30; 0 turns it off). A percentile, not the mean: a night "
    "scene with lit windows is not dark. The percentiles are index.parquet's `brightness_p*`.",
    why="Under-exposed frames (a closed shutter, a lens cap, a night frame without light) "
    "hold almost no signal and are usually capture failures.",
    fix="Drop the image or fix the exposure; keep it if the task is low-light on purpose.",
    example="cam2/0007.jpg: 95% of its pixels are at or below luminance 12",
)
OVEREXPOSED_IMAGE = Rule(
    "DS216", "overexposed-image", "warning",
    "An image is washed out: even its darkest pixels are bright.",
    what="The 5th percentile of the luminance (0..255) above thresholds.bright_p5 "
    "(default 225; 255 turns it off).",
    why="Blown-out frames lost their detail to saturation; the model learns glare.",
    fix="Drop the image or recapture it with a shorter exposure.",
    example="cam1/0100.jpg: 95% of its pixels are at or above luminance 240",
)
LOW_INFORMATION_IMAGE = Rule(
    "DS217", "low-information-image", "warning",
    "An image holds little information: the entropy of its gray histogram is very low.",
    what="The Shannon entropy (bits, 0..8) of the gray-level histogram below "
    "thresholds.min_entropy (default 3.0; 0 turns it off). Constant images are DS204, and dark, "
    "overexposed or blurry ones DS215, DS216 or DS214 instead. "
    "The score is index.parquet's `entropy`.",
    why="Near-blank frames, placeholder graphics and scanner-bed images teach nothing and "
    "often stand in for a failed capture.",
    fix="Drop the image or replace it with the real capture.",
    example="docs/0031.png: entropy 0.9 bits, below 3",
)
GRAYSCALE_STORED_AS_RGB = Rule(
    "DS218", "grayscale-stored-as-rgb", "warning",
    "An RGB image holds a grayscale picture (its three channels are equal everywhere).",
    what="Every pixel of an RGB image has R = G = B (an exact comparison).",
    why="Among colour photos it is a preprocessing slip (a gray copy re-saved as RGB); "
    "colour cues the model learns for its class are missing from it.",
    fix="Replace it with the colour original, or convert the whole dataset to gray on purpose.",
    example="birds/0044.jpg: R = G = B in every pixel",
)


@dataclass(frozen=True)
class QualityLimits:
    """The thresholds of DS214-DS217 (see their rules); a zero limit (255 for bright_p5)
    turns a check off."""

    min_blur: float = 3.5
    dark_p95: int = 30
    bright_p5: int = 225
    min_entropy: float = 3.0


def quality_findings(sample: str, facts: "Perceptual", limits: QualityLimits) -> list[Finding]:
    """DS214-DS218 for one (non-constant) image's perceptual facts."""
    s, f, lim = sample, facts, limits
    found = []
    if f.p95 < lim.dark_p95:
        found.append(Finding(DARK_IMAGE.code, f"{s}: 95% of its pixels are at or below luminance {f.p95} "
                             f"(under {lim.dark_p95}: dark).", sample=s, source=s))
    elif f.p5 > lim.bright_p5:
        found.append(Finding(OVEREXPOSED_IMAGE.code, f"{s}: 95% of its pixels are at or above luminance {f.p5} "
                             f"(over {lim.bright_p5}: overexposed).", sample=s, source=s))
    # a dark or washed-out frame has little contrast and a narrow histogram by nature:
    # one finding, the cause, not three
    if not found and f.blur < lim.min_blur:
        found.append(Finding(BLURRY_IMAGE.code, f"{s}: variance of the Laplacian {f.blur:.1f}, below "
                             f"{lim.min_blur:g} (blurred).", sample=s, source=s))
    if not found and f.entropy < lim.min_entropy:
        found.append(Finding(LOW_INFORMATION_IMAGE.code, f"{s}: entropy {f.entropy:.2f} bits, below "
                             f"{lim.min_entropy:g} (little information).", sample=s, source=s))
    if f.gray_rgb:
        found.append(Finding(GRAYSCALE_STORED_AS_RGB.code, f"{s} is RGB but R = G = B in every pixel (a gray "
                             "picture).", sample=s, source=s))
    return found
