"""Edge adjustments applied after the engine, like Select and Mask's Global Refinements.

Non-destructive: they map the engine's alpha (and estimated foreground) to the output, so a slider
change never re-runs the engine. Applied in this order (Photoshop's): Smooth, Feather, Contrast,
Shift Edge; then the cut-out's colours are mixed by Decontaminate.

- Smooth (px): blur by ``smooth / 2`` and re-sharpen to a 1 px anti-aliased edge at the same
  place, so bumps, dents and specks narrower than about ``smooth`` px vanish from hard contours
  (strands thinner than that fade too: keep it low on hair).
- Feather (px): Gaussian blur with sigma = ``feather`` px.
- Contrast (%): gain around alpha 0.5, ``1 / (1 - contrast / 100)``; 100 % is a binary matte
  (alpha > 0.5 becomes 1, the rest 0).
- Shift Edge (px, fractional): grows (> 0) or shrinks (< 0) the matte by grayscale dilation or
  erosion with a near-disc (octagon), so every level set moves by that many pixels; the fraction
  interpolates between the two nearest whole pixels.
- Decontaminate (0..1): the cut-out's colours, from the photo's own (0) to the engine's estimated
  foreground colours (1, the default).

All four edge values at 0 return the engine's alpha unchanged (the same array).
"""

from __future__ import annotations

import math
import os
from collections.abc import Mapping
from dataclasses import asdict, dataclass, fields

import numpy as np

from mattestudio.errors import MattestudioError

#: Allowed range of each value; with UNITS, HELP and FLAGS, used by validation, the CLI and the UI.
LIMITS = {
    "smooth": (0.0, 50.0),
    "feather": (0.0, 250.0),
    "contrast": (0.0, 100.0),
    "shift_edge": (-100.0, 100.0),
    "decontaminate": (0.0, 1.0),
}
UNITS = {"smooth": "px", "feather": "px", "contrast": "%", "shift_edge": "px", "decontaminate": ""}
HELP = {
    "smooth": "rounds off jagged, noisy contours of hard edges; details narrower than the "
    "radius fade (keep it low on hair)",
    "feather": "softens the edge with a Gaussian blur of this radius (sigma) in pixels",
    "contrast": "hardens soft transitions; 100 gives a hard, binary edge",
    "shift_edge": "moves the edge outward (positive, grows the subject) or inward (negative, "
    "shrinks it) by this many pixels; fractions allowed",
    "decontaminate": "cut-out colours: 0 keeps the photo's own colours at the edge, 1 uses the "
    "estimated foreground colours without the old background's tint",
}
FLAGS = {
    "smooth": "--smooth",
    "feather": "--feather",
    "contrast": "--contrast",
    "shift_edge": "--shift-edge",
    "decontaminate": "--decontaminate",
}


class EdgeAdjustmentError(MattestudioError):
    """An edge adjustment is out of range or not a number."""


def check_value(name: str, value, source: str | os.PathLike | None = None) -> float:
    """``value`` as a float within LIMITS[name], or EdgeAdjustmentError with a readable message."""
    lo, hi = LIMITS[name]
    label = name.replace("_", " ")
    unit = f" {UNITS[name]}" if UNITS[name] else ""
    try:
        v = float(value)
    except (TypeError, ValueError):
        raise EdgeAdjustmentError(f"{label} must be a number, not {value!r}", source) from None
    if isinstance(value, bool) or not math.isfinite(v):
        raise EdgeAdjustmentError(f"{label} must be a finite number, not {value!r}", source)
    if not lo <= v <= hi:
        if name == "feather" and v < 0:
            why = "cannot be negative"
        else:
            why = f"must be between {lo:g} and {hi:g}{unit}"
        raise EdgeAdjustmentError(f"{label} {why} (got {v:g}{unit})", source)
    return v


@dataclass(frozen=True)
class EdgeAdjustments:
    """The edge sliders. Construct with keywords; out-of-range values raise EdgeAdjustmentError."""

    smooth: float = 0.0
    feather: float = 0.0
    contrast: float = 0.0
    shift_edge: float = 0.0
    decontaminate: float = 1.0

    def __post_init__(self) -> None:
        for f in fields(self):
            object.__setattr__(self, f.name, check_value(f.name, getattr(self, f.name)))

    @property
    def changes_alpha(self) -> bool:
        return any((self.smooth, self.feather, self.contrast, self.shift_edge))

    @property
    def is_default(self) -> bool:
        return self == EdgeAdjustments()

    def to_dict(self) -> dict[str, float]:
        return asdict(self)

    @classmethod
    def from_dict(
        cls, values: Mapping | None, source: str | os.PathLike | None = None
    ) -> EdgeAdjustments:
        """From a project's settings (missing keys take defaults; unknown keys are refused, so a
        typo never passes silently). ``source`` names the file in error messages."""
        if values is None:
            return cls()
        if not isinstance(values, Mapping):
            raise EdgeAdjustmentError(
                "edge adjustments must be a mapping of name to number", source
            )
        unknown = sorted(set(values) - set(LIMITS))
        if unknown:
            raise EdgeAdjustmentError(
                f"unknown edge adjustment(s) {', '.join(map(str, unknown))}; "
                f"use {', '.join(LIMITS)}",
                source,
            )
        checked = {k: check_value(k, v, source) for k, v in values.items()}
        return cls(**checked)

    def replace(self, **changes) -> EdgeAdjustments:
        return EdgeAdjustments(**{**self.to_dict(), **changes})


# -- the operations --------------------------------------------------------------------------------

# Above this sigma, blur at a lower resolution: the same step response within 0.1 %, and the cost
# no longer grows with the radius.
_DIRECT_SIGMA = 6.0


def gaussian(alpha: np.ndarray, sigma: float) -> np.ndarray:
    """Gaussian blur of a float32 H x W array (reflecting borders)."""
    import cv2

    if sigma <= 0:
        return alpha
    a = np.ascontiguousarray(alpha, np.float32)
    if sigma <= _DIRECT_SIGMA:
        return cv2.GaussianBlur(a, (0, 0), sigma, borderType=cv2.BORDER_REFLECT)
    h, w = a.shape
    f = sigma / 4.0
    sh, sw = max(int(round(h / f)), 1), max(int(round(w / f)), 1)
    small = cv2.resize(a, (sw, sh), interpolation=cv2.INTER_AREA)
    fy, fx = h / sh, w / sw
    # Area averaging already blurred by about a box of width f (variance f^2 / 12), per axis.
    sx = math.sqrt(max(sigma**2 - fx * fx / 12.0, 0.25)) / fx
    sy = math.sqrt(max(sigma**2 - fy * fy / 12.0, 0.25)) / fy
    small = cv2.GaussianBlur(small, (0, 0), sx, sigmaY=sy, borderType=cv2.BORDER_REFLECT)
    return cv2.resize(small, (w, h), interpolation=cv2.INTER_LINEAR)


def smooth(alpha: np.ndarray, radius: float) -> np.ndarray:
    if radius <= 0:
        return alpha
    sigma = radius / 2.0
    blurred = gaussian(alpha, sigma)
    # A blurred step has slope 1 / (sqrt(2 pi) sigma) at 0.5: this gain restores a 1 px edge.
    gain = max(math.sqrt(2 * math.pi) * sigma, 1.0)
    return np.clip((blurred - 0.5) * gain + 0.5, 0.0, 1.0).astype(np.float32)


def contrast(alpha: np.ndarray, percent: float) -> np.ndarray:
    if percent <= 0:
        return alpha
    if percent >= 100:
        return (alpha > 0.5).astype(np.float32)
    gain = np.float32(1.0 / (1.0 - percent / 100.0))
    return np.clip((alpha - np.float32(0.5)) * gain + np.float32(0.5), 0.0, 1.0)


def _octagon_steps(n: int) -> list[bool]:
    """For n one-pixel steps: True = 3x3 square, False = 3x3 cross. Square share sqrt(2) - 1 makes
    the combined shape an octagon whose axis and diagonal extents both equal n (a near-disc)."""
    k = math.sqrt(2.0) - 1.0
    return [round(k * (i + 1)) > round(k * i) for i in range(n)]


def _morph(alpha: np.ndarray, steps: list[bool], grow: bool) -> np.ndarray:
    import cv2

    op = cv2.dilate if grow else cv2.erode
    squares, crosses = sum(steps), len(steps) - sum(steps)
    out = alpha
    if squares:  # square steps commute with cross steps: one separable rectangle does them all
        out = op(out, cv2.getStructuringElement(cv2.MORPH_RECT, (2 * squares + 1,) * 2))
    if crosses:
        out = op(out, cv2.getStructuringElement(cv2.MORPH_CROSS, (3, 3)), iterations=crosses)
    return out


def shift_edge(alpha: np.ndarray, pixels: float) -> np.ndarray:
    import cv2

    if pixels == 0:
        return alpha
    grow = pixels > 0
    dist = abs(pixels)
    n = int(math.floor(dist))
    frac = dist - n
    steps = _octagon_steps(n + (1 if frac > 0 else 0))
    a = np.ascontiguousarray(alpha, np.float32)
    lower = _morph(a, steps[:n], grow) if n else a
    if frac == 0:
        return lower
    kind = cv2.MORPH_RECT if steps[n] else cv2.MORPH_CROSS
    op = cv2.dilate if grow else cv2.erode
    upper = op(lower, cv2.getStructuringElement(kind, (3, 3)))
    return (lower + np.float32(frac) * (upper - lower)).astype(np.float32)


def adjust_alpha(alpha: np.ndarray, edges: EdgeAdjustments) -> np.ndarray:
    """The engine's alpha -> the adjusted alpha (float32 H x W in [0, 1]); unchanged at all-zero."""
    if not edges.changes_alpha:
        return alpha
    out = np.asarray(alpha, np.float32)
    out = smooth(out, edges.smooth)
    out = gaussian(out, edges.feather)
    out = contrast(out, edges.contrast)
    out = shift_edge(out, edges.shift_edge)
    return np.clip(out, 0.0, 1.0).astype(np.float32, copy=False)


def reach(edges: EdgeAdjustments) -> int | None:
    """How many pixels beyond a changed box :func:`adjust_alpha` can change its output (so a crop
    that wide gives the box's pixels exactly), or None when it is not local (a large blur is done
    at a lower resolution)."""
    if not edges.changes_alpha:
        return 0
    sigmas = (edges.feather, edges.smooth / 2.0)
    if max(sigmas) > _DIRECT_SIGMA:
        return None
    # OpenCV's float Gaussian kernel reaches 4 sigma; shifting reaches ceil(shift) + 1.
    return int(math.ceil(4.0 * sum(sigmas) + abs(edges.shift_edge))) + 2


def decontaminate(image: np.ndarray, foreground: np.ndarray, amount: float) -> np.ndarray:
    """Cut-out colours: ``image`` at 0, the estimated ``foreground`` at 1, linear in between."""
    if amount >= 1.0:
        return foreground
    if amount <= 0.0:
        return image
    import cv2

    fg = np.ascontiguousarray(foreground, np.float32)
    return cv2.addWeighted(np.ascontiguousarray(image, np.float32), 1.0 - amount, fg, amount, 0.0)


def apply(
    alpha: np.ndarray, foreground: np.ndarray, image: np.ndarray, edges: EdgeAdjustments
) -> tuple[np.ndarray, np.ndarray]:
    """(alpha, foreground) of an engine result -> the adjusted (alpha, foreground) to show/export."""
    return adjust_alpha(alpha, edges), decontaminate(image, foreground, edges.decontaminate)
