"""Array -> displayable uint8 conversions for the canvas (no Qt here; no image processing either:
the maths lives in mattestudio.core, this only changes the number format for display)."""

from __future__ import annotations

import numpy as np

from mattestudio.types import BACKGROUND, FOREGROUND, UNKNOWN

#: Overlay colours (RGB) and their relative strength, multiplied by the user's opacity. Unknown
#: stays untinted so hair and soft edges in the band are seen as they are.
TRIMAP_COLORS = {
    BACKGROUND: ((220, 50, 60), 1.0),
    UNKNOWN: ((250, 210, 40), 0.0),  # untinted: the edge band shows the photo as it is
    FOREGROUND: ((40, 200, 90), 1.0),
}


def trimap_lut(opacity: float) -> np.ndarray:
    """256 x 4 uint8 RGBA lookup table for a {0, 128, 255} trimap (pyqtgraph's fast path)."""
    lut = np.zeros((256, 4), np.uint8)
    for value, (rgb, strength) in TRIMAP_COLORS.items():
        lut[value, :3] = rgb
        lut[value, 3] = int(round(255 * max(0.0, min(1.0, opacity)) * strength))
    return lut


def to_u8(arr: np.ndarray) -> np.ndarray:
    """float [0, 1] -> uint8, rounded (for display only)."""
    return np.clip(np.rint(np.asarray(arr, np.float32) * 255.0), 0, 255).astype(np.uint8)


def histogram(alpha: np.ndarray, bins: int = 64) -> tuple[np.ndarray, np.ndarray, float]:
    """(bin edges, counts, fraction of pixels partly transparent) of the fractional alpha values
    (0 and 1 are left out: they dominate). Large mattes are subsampled."""
    step = max(1, int((alpha.size / 1_000_000) ** 0.5 + 0.999))  # a sample is enough for a plot
    alpha = alpha[::step, ::step]
    a = alpha[(alpha > 0.002) & (alpha < 0.998)]
    counts = np.bincount(np.minimum((a * bins).astype(np.intp), bins - 1), minlength=bins)
    edges = np.linspace(0.0, 1.0, bins + 1)
    return edges, counts, a.size / max(alpha.size, 1)
