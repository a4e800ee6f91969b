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
#: Whole-image conversions go by strips of about this many pixels (bounded temporaries).
STRIP_PIXELS = 1 << 20
#: Rows per strip of a result preview.
STRIP_ROWS = 256


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


def result_pixels_in_strips(
    mode: str,
    alpha: np.ndarray,
    foreground: np.ndarray,
    image: np.ndarray,
    background: np.ndarray | None,
    edges,
    rows: int = STRIP_ROWS,
) -> np.ndarray:
    """:func:`result_pixels` of the whole image, computed a strip of rows at a time (with the
    edge adjustments' reach as context above and below), so the float temporaries are a strip's,
    not the image's. Same pixels as one call on the whole image."""
    from mattestudio.core import edges as edge_ops

    reach = edge_ops.reach(edges)
    h = alpha.shape[0]
    if reach is None or h <= rows:  # not local (a large blur): in one piece
        return result_pixels(mode, alpha, foreground, image, background, edges)
    out: np.ndarray | None = None
    for y0 in range(0, h, rows):
        y1 = min(y0 + rows, h)
        c0, c1 = max(y0 - reach, 0), min(y1 + reach, h)
        bg = None if background is None else background[c0:c1]
        px = result_pixels(mode, alpha[c0:c1], foreground[c0:c1], image[c0:c1], bg, edges)
        if out is None:
            out = np.empty((h,) + px.shape[1:], np.uint8)
        out[y0:y1] = px[y0 - c0 : y1 - c0]
    assert out is not None
    return out


def edge_pixels(image: np.ndarray, band: np.ndarray) -> np.ndarray:
    """The "edge only" view: the photo inside the unknown band, dark grey elsewhere."""
    out = np.empty(image.shape, np.uint8)
    for y0 in range(0, image.shape[0], STRIP_ROWS):
        rows = slice(y0, y0 + STRIP_ROWS)
        out[rows] = to_u8(np.where(band[rows, :, None], image[rows], np.float32(0.12)))
    return out


def to_u8(arr: np.ndarray) -> np.ndarray:
    """float [0, 1] -> uint8, rounded (for display only). Large arrays go a strip of rows at a
    time (the float temporaries of a whole 12 MP photo are ~300 MB)."""
    arr = np.asarray(arr)
    if arr.ndim >= 2 and arr.size > 4 * STRIP_PIXELS:
        out = np.empty(arr.shape, np.uint8)
        step = max(1, STRIP_PIXELS // max(arr[0].size, 1))
        for y0 in range(0, arr.shape[0], step):
            out[y0 : y0 + step] = to_u8(arr[y0 : y0 + step])
        return out
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
