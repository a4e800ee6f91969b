"""Array -> displayable uint8 conversions for the canvas (no Qt here; no image processing either:
the maths lives in mattestudio.core, this only changes the number format for display)."""

from __future__ import annotations

import numpy as np

from mattestudio.types import BACKGROUND, FOREGROUND, UNKNOWN

#: Default overlay colours (RGB) per trimap value; the user can choose others. The unknown band
#: gets a lighter tint than the solid regions, so hair in the band stays visible through it.
TRIMAP_COLORS = {
    BACKGROUND: (220, 50, 60),
    UNKNOWN: (250, 210, 40),
    FOREGROUND: (40, 200, 90),
}
UNKNOWN_STRENGTH = 0.6


def trimap_lut(opacity: float, colors: dict | None = None) -> np.ndarray:
    """256 x 4 uint8 RGBA lookup table for a {0, 128, 255} trimap (pyqtgraph's fast path)."""
    colors = {**TRIMAP_COLORS, **(colors or {})}
    lut = np.zeros((256, 4), np.uint8)
    a = max(0.0, min(1.0, float(opacity)))
    for value, rgb in colors.items():
        lut[value, :3] = rgb
        strength = UNKNOWN_STRENGTH if value == UNKNOWN else 1.0
        lut[value, 3] = int(round(255 * a * strength))
    return lut


def plain_trimap_lut() -> np.ndarray:
    """Opaque grayscale: the trimap as it is stored (black, gray, white)."""
    lut = np.zeros((256, 4), np.uint8)
    lut[:, :3] = np.arange(256, dtype=np.uint8)[:, None]
    lut[:, 3] = 255
    return lut


def preview_pixels(
    mode: str, alpha: np.ndarray, foreground: np.ndarray, background: np.ndarray | None
) -> np.ndarray:
    """What the preview layer shows, as uint8: the alpha in grayscale (H x W), the cut-out as
    straight RGBA (H x W x 4) when ``background`` is None (drawn over the on-screen
    checkerboard), else the composite over ``background`` (H x W x 3). Works on crops too."""
    if mode == "alpha":
        return to_u8(alpha)
    if background is None:
        out = np.empty(alpha.shape[:2] + (4,), np.uint8)
        out[..., :3] = to_u8(foreground)
        out[..., 3] = to_u8(alpha)
        return out
    from mattestudio.core.compositing import composite

    return to_u8(composite(foreground, alpha, background))


def result_pixels(
    mode: str,
    alpha: np.ndarray,
    foreground: np.ndarray,
    image: np.ndarray,
    background: np.ndarray | None,
    edges,
) -> np.ndarray:
    """The preview of a result in ``mode`` with the edge adjustments (core.edges) applied:
    "alpha", "composite" (over ``background``, or the RGBA cut-out when it is None), "on-black"
    and "on-white". Works on crops too (see :func:`edge_reach`)."""
    from mattestudio.core import edges as edge_ops

    alpha = edge_ops.adjust_alpha(alpha, edges)
    if mode == "alpha":
        return preview_pixels(mode, alpha, foreground, None)
    fg = edge_ops.decontaminate(image, foreground, edges.decontaminate)
    solid = {"on-black": 0.0, "on-white": 1.0}.get(mode)
    if solid is not None:
        background = np.full(alpha.shape[:2] + (3,), solid, np.float32)
    return preview_pixels("composite", alpha, fg, background)


def edge_pixels(image: np.ndarray, band: np.ndarray) -> np.ndarray:
    """The "edge only" view: the photo inside the unknown band, dark grey elsewhere."""
    return to_u8(np.where(band[:, :, None], image, np.float32(0.12)))


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
