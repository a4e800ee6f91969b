"""Solving the matting system on all of an image or on a box of it.

A box solve treats the unknown pixels inside the box as variables and every other pixel as fixed:
the trimap's 0 / 1 where known, the current alpha where unknown but outside the box. With the
current alpha equal to a full solution, a box solve that contains the whole reach of a trimap
change gives the full solution again; that is what the incremental and tiled paths rely on.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from mattestudio.engines.fastcf import direct
from mattestudio.engines.fastcf.laplacian import WindowStats, assemble, crop_stats

Box = tuple[int, int, int, int]  # y0, y1, x0, x1 (half-open)


def clip_box(box: Box, shape) -> Box:
    y0, y1, x0, x1 = box
    h, w = shape[:2]
    return max(0, y0), min(h, y1), max(0, x0), min(w, x1)


def grow(box: Box, margin: int, shape) -> Box:
    y0, y1, x0, x1 = box
    return clip_box((y0 - margin, y1 + margin, x0 - margin, x1 + margin), shape)


def factor_entries(n_unknown: int) -> float:
    """Rough size of the direct factor in float64 entries, from the dataset's measurements
    (about 150 entries per unknown at 1e5 unknowns, growing like log n)."""
    return 150.0 * n_unknown * max(1.0, 1.0 + 0.35 * np.log2(max(n_unknown, 1) / 1e5))


def solve_box(
    stats: WindowStats,
    image: np.ndarray,
    unknown: np.ndarray,
    fixed: np.ndarray,
    box: Box,
    check: Callable[[float], None] | None = None,
) -> np.ndarray | None:
    """Alpha of the unknown pixels inside ``box`` (a box-shaped float64 array, NaN elsewhere), or
    None if the box holds no unknown pixel.

    ``fixed``: H x W float, the value of every pixel that is not a variable (trimap 0/1, current alpha).
    """
    r = stats.radius
    y0, y1, x0, x1 = box
    cy0, cy1, cx0, cx1 = grow(
        box, 2 * r, unknown.shape
    )  # every window touching a variable lies inside
    variables = np.zeros((cy1 - cy0, cx1 - cx0), bool)
    variables[y0 - cy0 : y1 - cy0, x0 - cx0 : x1 - cx0] = unknown[y0:y1, x0:x1]
    if not variables.any():
        return None
    system = assemble(
        crop_stats(stats, cy0, cy1, cx0, cx1),
        image[cy0:cy1, cx0:cx1],
        variables,
        fixed[cy0:cy1, cx0:cx1],
    )
    factor = direct.factorize(system.matrix, system.coords, sep=2 * r, check=check)
    x = factor.solve(system.rhs)
    out = np.full((y1 - y0, x1 - x0), np.nan)
    out[system.coords[:, 0] - (y0 - cy0), system.coords[:, 1] - (x0 - cx0)] = x
    return out


def paste(alpha: np.ndarray, values: np.ndarray | None, box: Box) -> None:
    if values is None:
        return
    y0, y1, x0, x1 = box
    view = alpha[y0:y1, x0:x1]
    ok = ~np.isnan(values)
    view[ok] = values[ok]


def ring_change(values: np.ndarray, before: np.ndarray, box: Box, shape, depth: int) -> float:
    """Largest |change| within ``depth`` pixels of the box's sides that are not image borders:
    how much a box solve still moves alpha where the box cuts the image (0 if it cuts nowhere)."""
    y0, y1, x0, x1 = box
    h, w = shape[:2]
    diff = np.abs(np.nan_to_num(values - before[y0:y1, x0:x1]))
    parts = []
    if y0 > 0:
        parts.append(diff[:depth])
    if y1 < h:
        parts.append(diff[-depth:])
    if x0 > 0:
        parts.append(diff[:, :depth])
    if x1 < w:
        parts.append(diff[:, -depth:])
    return max((float(p.max()) for p in parts if p.size), default=0.0)


def tiles(shape, tile: int, overlap: int) -> list[Box]:
    h, w = shape[:2]
    step = max(tile - overlap, 1)
    out = []
    for y in range(0, max(h - overlap, 1), step):
        for x in range(0, max(w - overlap, 1), step):
            out.append(clip_box((y, y + tile, x, x + tile), shape))
    return out
