"""A uint8 display image and its 2x, 4x, 8x ... reductions, so the canvas shows about as many
pixels as the screen has (Qt-free; the canvas picks the level from the zoom).

Level k is the 2^k x 2^k block mean of the full-resolution pixels (rounded at each halving; an
odd last row or column is repeated). A change inside a box of level 0 is carried up by
re-halving only the aligned boxes above it, which gives the same pixels as rebuilding the
whole pyramid, so incremental patches and full refreshes never disagree.
"""

from __future__ import annotations

import math

import numpy as np

#: Reductions stop once a level's longer side is at most this (a thumbnail is enough).
SMALLEST_SIDE = 256

Box = tuple[int, int, int, int]  # (y0, y1, x0, x1), half-open


def halve(a: np.ndarray) -> np.ndarray:
    """2 x 2 block means, rounded to nearest (uint8 in, uint8 out)."""
    h, w = a.shape[:2]
    if h % 2 or w % 2:
        a = np.pad(a, ((0, h % 2), (0, w % 2)) + ((0, 0),) * (a.ndim - 2), mode="edge")
    s = a[0::2, 0::2].astype(np.uint16)
    s += a[1::2, 0::2]
    s += a[0::2, 1::2]
    s += a[1::2, 1::2]
    s += 2
    s >>= 2
    return s.astype(np.uint8)


def level_for_zoom(zoom: float, levels: int) -> int:
    """The coarsest level that still has at least one pixel per screen pixel at ``zoom``
    (screen pixels per image pixel): full resolution from 50 % up."""
    if not math.isfinite(zoom) or zoom <= 0 or levels <= 1:
        return 0
    k = int(math.floor(math.log2(1.0 / zoom))) if zoom < 1.0 else 0
    return max(0, min(k, levels - 1))


class Pyramid:
    """``levels[0]`` is the full-resolution uint8 image (H x W or H x W x C); levels[k] has
    ceil(H / 2^k) x ceil(W / 2^k) pixels. Levels are edited in place (an ImageItem may wrap one)."""

    def __init__(self, base: np.ndarray) -> None:
        self.levels = [base]
        while max(self.levels[-1].shape[:2]) > SMALLEST_SIDE:
            self.levels.append(halve(self.levels[-1]))

    @property
    def base(self) -> np.ndarray:
        return self.levels[0]

    def update(self, box: Box) -> list[Box]:
        """Level 0 changed inside ``box``: redo that part of every level. Returns the box
        rewritten in each level (in that level's pixels)."""
        y0, y1, x0, x1 = box
        boxes = [box]
        for k in range(1, len(self.levels)):
            y0, y1, x0, x1 = y0 // 2, -(-y1 // 2), x0 // 2, -(-x1 // 2)
            src = self.levels[k - 1][2 * y0 : 2 * y1, 2 * x0 : 2 * x1]
            if src.size:
                self.levels[k][y0:y1, x0:x1] = halve(src)
            boxes.append((y0, y1, x0, x1))
        return boxes
