"""Trimaps: reading any reasonable encoding, checking it against the image, and generating one.

Stored form: uint8 H x W with exactly 0 (background), 128 (unknown) and 255 (foreground).
Any value strictly between 0 and 255 means unknown, so anti-aliased, JPEG-compressed or
102-valued trimaps work as painted.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np

from mattestudio.errors import TrimapError
from mattestudio.types import BACKGROUND, FOREGROUND, UNKNOWN


def normalize(arr: np.ndarray, source: str | Path | None = None) -> np.ndarray:
    """Any trimap array -> uint8 {0, 128, 255}.

    Accepts uint8/uint16 gray, float in [0, 1], bool masks, and RGB(A) with equal channels.
    """
    arr = np.asarray(arr)
    if arr.ndim == 3:
        if arr.shape[2] == 4:
            arr = arr[:, :, :3]
        if arr.shape[2] == 3:
            if not (
                np.array_equal(arr[:, :, 0], arr[:, :, 1])
                and np.array_equal(arr[:, :, 0], arr[:, :, 2])
            ):
                raise TrimapError(
                    "trimap has colors (its R, G and B channels differ); "
                    "expected grayscale: black background, white foreground, gray unknown",
                    source,
                )
            arr = arr[:, :, 0]
        elif arr.shape[2] == 1:
            arr = arr[:, :, 0]
    if arr.ndim != 2:
        raise TrimapError(f"trimap must be a 2-D grayscale image, got shape {arr.shape}", source)
    if arr.dtype == bool:
        return np.where(arr, FOREGROUND, BACKGROUND).astype(np.uint8)
    lo: float
    hi: float
    if arr.dtype == np.uint8:
        lo, hi = 0, 255
    elif arr.dtype == np.uint16:
        lo, hi = 0, 65535
    else:
        arr = arr.astype(np.float64)
        lo, hi = 0.0, (1.0 if arr.size == 0 or arr.max() <= 1.0 else 255.0)
    out = np.full(arr.shape, UNKNOWN, np.uint8)
    out[arr <= lo] = BACKGROUND
    out[arr >= hi] = FOREGROUND
    return out


def check(
    trimap: np.ndarray,
    image_shape: Sequence[int],
    source: str | Path | None = None,
    image_source: str | Path | None = None,
    require_unknown: bool = True,
) -> np.ndarray:
    """Raise TrimapError if the trimap does not fit the image or has nothing to solve."""
    h, w = image_shape[:2]
    th, tw = trimap.shape[:2]
    if (th, tw) != (h, w):
        img = f" ({image_source})" if image_source else ""
        raise TrimapError(
            f"trimap is {tw}x{th} but the image{img} is {w}x{h}; they must be the same size", source
        )
    if require_unknown and not np.any(trimap == UNKNOWN):
        raise TrimapError(
            "trimap has no unknown (gray) pixels, so there is nothing to solve; "
            "paint an unknown band over the edges",
            source,
        )
    return trimap


def load(
    source,
    image_shape: Sequence[int] | None = None,
    image_source=None,
    require_unknown: bool = True,
) -> np.ndarray:
    """Path or array -> checked uint8 {0, 128, 255} trimap."""
    from mattestudio.core.io import read_image_array

    name = None if isinstance(source, np.ndarray) else Path(source)
    arr = source if isinstance(source, np.ndarray) else read_image_array(source)
    tri = normalize(arr, name)
    if image_shape is not None:
        check(tri, image_shape, name, image_source, require_unknown)
    elif require_unknown and not np.any(tri == UNKNOWN):
        check(tri, tri.shape, name, require_unknown=True)
    return tri


def to_float(trimap: np.ndarray) -> np.ndarray:
    """uint8 trimap -> float64 0 / 0.5 / 1 (pymatting's convention)."""
    return trimap.astype(np.float64) / 255.0


def split(trimap: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Boolean masks (foreground, background, unknown)."""
    return trimap == FOREGROUND, trimap == BACKGROUND, trimap == UNKNOWN


def force_known(alpha: np.ndarray, trimap: np.ndarray) -> np.ndarray:
    """Set alpha to exactly 1 in the trimap's foreground and 0 in its background (in place)."""
    alpha[trimap == FOREGROUND] = 1.0
    alpha[trimap == BACKGROUND] = 0.0
    return alpha


def _disk(radius: int) -> np.ndarray:
    import cv2

    d = 2 * max(int(radius), 0) + 1
    return cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (d, d))


def from_mask(mask: np.ndarray, band: int = 10) -> np.ndarray:
    """Binary mask (True/nonzero = foreground) -> trimap with an unknown band about ``band`` px wide
    centred on the mask's edge."""
    import cv2

    fg = (np.asarray(mask) > (0.5 if np.asarray(mask).dtype.kind == "f" else 0)).astype(np.uint8)
    r_in = max(int(band) // 2, 0)
    r_out = max(int(band) - r_in, 0)
    inner = cv2.erode(fg, _disk(r_in)) if r_in else fg
    outer = cv2.dilate(fg, _disk(r_out)) if r_out else fg
    tri = np.zeros(fg.shape, np.uint8)
    tri[outer > 0] = UNKNOWN
    tri[inner > 0] = FOREGROUND
    if band > 0:
        # Keep an unknown seam even where erosion/dilation left none (a 1-pixel-wide object).
        edge = (outer > 0) & ~(inner > 0)
        tri[edge] = UNKNOWN
    return tri


def from_alpha(
    alpha: np.ndarray,
    band: int = 10,
    lo: float = 0.02,
    hi: float = 0.98,
    image: np.ndarray | None = None,
) -> np.ndarray:
    """Alpha matte -> trimap: fractional pixels plus a band around the 0.5 edge become unknown.
    With the ``image``, the band is a :func:`smart_band` (a third of ``band`` on hard edges, up to
    twice ``band`` on hair and fur) instead of a fixed width."""
    import cv2

    alpha = np.asarray(alpha, np.float32)
    if image is not None:
        tri = smart_band(image, alpha > 0.5, max(band / 3, 2), 2 * band)
    else:
        tri = from_mask(alpha > 0.5, band)
    frac = ((alpha > lo) & (alpha < hi)).astype(np.uint8)
    if band > 0:
        frac = cv2.dilate(frac, _disk(max(band // 4, 1)))
    tri[frac > 0] = UNKNOWN
    return tri


def grabcut_segment(
    image: np.ndarray,
    rect: tuple[int, int, int, int] | None = None,
    fg_strokes: np.ndarray | None = None,
    bg_strokes: np.ndarray | None = None,
    iterations: int = 5,
    progress=None,
    cancel=None,
) -> np.ndarray:
    """OpenCV GrabCut from a rectangle (x, y, w, h) and/or scribble masks: bool H x W, True = subject.

    ``image``: float32 H x W x 3 RGB in [0, 1]. Scribbles are boolean H x W masks. ``progress``
    (fraction, message) is called after every iteration and ``cancel`` (a CancelToken) checked.
    """
    import cv2

    h, w = image.shape[:2]
    if rect is None and fg_strokes is None:
        raise TrimapError("GrabCut needs a rectangle around the subject or some foreground strokes")
    bgr = np.ascontiguousarray((np.clip(image, 0, 1) * 255 + 0.5).astype(np.uint8)[:, :, ::-1])
    mask = np.full((h, w), cv2.GC_PR_BGD, np.uint8)
    if rect is not None:
        x, y, rw, rh = (int(v) for v in rect)
        x0, y0 = max(x, 0), max(y, 0)
        x1, y1 = min(x + rw, w), min(y + rh, h)
        if x1 - x0 < 2 or y1 - y0 < 2:
            raise TrimapError(f"the rectangle {rect} is too small or outside the {w}x{h} image")
        mask[:] = cv2.GC_BGD
        mask[y0:y1, x0:x1] = cv2.GC_PR_FGD
    if fg_strokes is not None:
        mask[np.asarray(fg_strokes, bool)] = cv2.GC_FGD
    if bg_strokes is not None:
        mask[np.asarray(bg_strokes, bool)] = cv2.GC_BGD
    if not np.any((mask == cv2.GC_BGD) | (mask == cv2.GC_PR_BGD)):
        raise TrimapError(
            "GrabCut needs some background: draw a rectangle smaller than the image or background strokes"
        )
    bgd = np.zeros((1, 65), np.float64)
    fgd = np.zeros((1, 65), np.float64)
    n = max(int(iterations), 1)
    for i in range(n):  # one iteration per call, so progress shows and a cancel is honoured
        if cancel is not None:
            cancel.raise_if_cancelled()
        mode = cv2.GC_INIT_WITH_MASK if i == 0 else cv2.GC_EVAL
        cv2.grabCut(bgr, mask, None, bgd, fgd, 1, mode)
        if progress is not None:
            progress((i + 1) / n, f"GrabCut: iteration {i + 1} of {n}")
    return (mask == cv2.GC_FGD) | (mask == cv2.GC_PR_FGD)


def from_segmentation(
    segmentation: np.ndarray,
    band: int = 10,
    fg_strokes: np.ndarray | None = None,
    bg_strokes: np.ndarray | None = None,
    *,
    image: np.ndarray | None = None,
    smart: bool = False,
) -> np.ndarray:
    """Trimap from a segmentation (bool H x W): an unknown band of ``band`` px along its edge;
    scribbled pixels stay definite. Re-deriving with another band needs no new segmentation.
    ``smart`` (needs ``image``): the band follows the edge instead (:func:`smart_band`, from a
    third of ``band`` on hard edges to twice ``band`` on hair and fur)."""
    if smart and image is not None:
        tri = smart_band(image, segmentation, max(band / 3, 2), 2 * band)
    else:
        tri = from_mask(segmentation, band)
    if fg_strokes is not None:
        tri[np.asarray(fg_strokes, bool)] = FOREGROUND
    if bg_strokes is not None:
        tri[np.asarray(bg_strokes, bool)] = BACKGROUND
    return tri


def grabcut(
    image: np.ndarray,
    rect: tuple[int, int, int, int] | None = None,
    fg_strokes: np.ndarray | None = None,
    bg_strokes: np.ndarray | None = None,
    band: int = 10,
    iterations: int = 5,
    smart: bool = False,
) -> np.ndarray:
    """Automatic trimap from a rectangle (x, y, w, h) and/or scribble masks, via OpenCV GrabCut.

    ``image``: float32 H x W x 3 RGB in [0, 1]. Scribbles are boolean H x W masks.
    Returns a trimap with a ``band``-pixel unknown band along the segmentation's edge; scribbled
    pixels stay definite. ``smart``: the band follows the edge (see :func:`from_segmentation`).
    """
    seg = grabcut_segment(image, rect, fg_strokes, bg_strokes, iterations)
    return from_segmentation(seg, band, fg_strokes, bg_strokes, image=image, smart=smart)


def downscaled(
    image: np.ndarray, trimap: np.ndarray, scale: float
) -> tuple[np.ndarray, np.ndarray]:
    """Image and trimap resized by ``scale`` for a coarse preview run.

    The trimap is area-averaged and re-thresholded: a pixel stays foreground or background only
    where all the pixels it covers agree, everything mixed becomes unknown.
    """
    import cv2

    h, w = image.shape[:2]
    nh, nw = max(int(round(h * scale)), 8), max(int(round(w * scale)), 8)
    if (nh, nw) == (h, w):
        return image, trimap
    small = cv2.resize(np.ascontiguousarray(image), (nw, nh), interpolation=cv2.INTER_AREA)
    t = cv2.resize(trimap.astype(np.float32), (nw, nh), interpolation=cv2.INTER_AREA)
    tri = np.full((nh, nw), UNKNOWN, np.uint8)
    tri[t <= 0.5] = 0
    tri[t >= 254.5] = FOREGROUND
    return np.clip(small, 0, 1).astype(np.float32), tri


# -- edge-aware bands: the Refine Edge brush and the smart band ------------------------------------

#: Floor of the local colour deviation that counts as an edge (in [0, 1] units, summed channels).
EDGE_MIN_STD = 0.03


def local_std(image: np.ndarray, radius: int = 2) -> np.ndarray:
    """Local colour deviation: sqrt of the summed per-channel variance in a (2r+1)^2 window.

    High on edges and in mixed-colour areas (hair against the sky), near 0 on flat colour.
    """
    import cv2

    img = np.ascontiguousarray(image, np.float32)
    k = (2 * int(radius) + 1,) * 2
    mean = cv2.blur(img, k, borderType=cv2.BORDER_REFLECT)
    sq = cv2.blur(img * img, k, borderType=cv2.BORDER_REFLECT)
    var = np.maximum(sq - mean * mean, 0.0)
    return np.sqrt(var.sum(axis=2) if var.ndim == 3 else var)


def edge_threshold(std: np.ndarray) -> float:
    """Deviation above the image's own noise: 3x the 30th percentile (mostly flat areas), at least
    EDGE_MIN_STD, so sensor noise and JPEG grain do not count as edges."""
    sample = std[:: max(std.shape[0] // 256, 1), :: max(std.shape[1] // 256, 1)]
    return max(EDGE_MIN_STD, 3.0 * float(np.percentile(sample, 30)))


def edge_band(image: np.ndarray, radius: int = 2) -> np.ndarray:
    """Boolean H x W: where the image has an edge or mixed colours (what the Refine Edge brush may
    mark unknown). A hard edge gives a band about 2 * radius + 2 px wide; hair gives whole areas."""
    import cv2

    std = local_std(image, radius)
    band = (std > edge_threshold(std)).astype(np.uint8)
    return cv2.dilate(band, _disk(1)).astype(bool)


def smart_band(
    image: np.ndarray, mask: np.ndarray, thin: float = 3.0, wide: float = 24.0
) -> np.ndarray:
    """Binary mask -> trimap whose unknown band follows the edge: about ``thin`` px wide where the
    image edge is hard (one clean contour nearby), up to ``wide`` px where it is hair or fur (much
    edge texture around the contour).

    The texture measure is the share of edge pixels (1 px deviation window) in a ``wide`` x ``wide``
    window at each point of the contour; a clean contour covers about 3 / wide of it.
    """
    import cv2

    fg = np.asarray(mask) > (0.5 if np.asarray(mask).dtype.kind == "f" else 0)
    thin, wide = float(thin), max(float(wide), float(thin))
    fg8 = fg.astype(np.uint8)
    cross = cv2.getStructuringElement(cv2.MORPH_CROSS, (3, 3))
    contour = cv2.dilate(fg8, cross) != cv2.erode(fg8, cross)
    if not contour.any() or wide <= 0:
        return np.where(fg, FOREGROUND, BACKGROUND).astype(np.uint8)
    std = local_std(image, 1)
    edgy = (std > edge_threshold(std)).astype(np.float32)
    win = max(int(round(wide)) | 1, 3)
    density = cv2.blur(edgy, (win, win), borderType=cv2.BORDER_REFLECT)
    clean = min(4.0 / win, 0.5)  # share of a straight 3-4 px edge strip in the window
    texture = np.clip((density - clean) / max(0.45 - clean, 1e-3), 0.0, 1.0)
    widths = thin + (wide - thin) * texture
    # Each pixel takes the width of its nearest contour pixel: one labelled distance transform.
    dist, labels = cv2.distanceTransformWithLabels(
        (~contour).astype(np.uint8), cv2.DIST_L2, 5, labelType=cv2.DIST_LABEL_PIXEL
    )
    width_of = np.zeros(int(labels.max()) + 1, np.float32)
    width_of[labels[contour]] = widths[contour]
    unknown = contour | (dist <= width_of[labels] / 2.0)
    tri = np.where(fg, FOREGROUND, BACKGROUND).astype(np.uint8)
    tri[unknown] = UNKNOWN
    return tri
