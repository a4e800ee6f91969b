"""Qt-free painting on a trimap: round brush strokes, fill bucket, clear.

Coordinates are image coordinates in pixels, as floats: pixel (row i, column j) covers
[j, j+1) x [i, i+1), so its centre is (j + 0.5, i + 0.5). A brush of ``size`` pixels paints every
pixel whose centre lies within ``size / 2`` of the stroke's path; between two mouse positions the
path is the straight segment, so a stroke is the union of discs stamped continuously along it
(a capsule per segment), with no gaps however fast the mouse moves.

The raster functions here only compute and write; ``Document`` wraps them with undo and signals,
and ``Brush`` turns press/move/release into one undoable stroke.

Every edit is also logged as a JSON-able record (``Document.strokes``, saved in projects), so a
trimap can be re-rendered from vectors with :func:`replay`:

- ``{"tool": "brush", "value": 0 | 128 | 255 | "erase", "size": 10.0, "points": [[x, y], ...]}``
  paints the disc at the first point, then the capsule of each consecutive pair (``size`` is the
  brush diameter; "erase" restores the base trimap),
- ``{"tool": "brush", "value": "refine", ...}`` the Refine Edge brush: like an unknown brush, but
  only where the image has an edge or mixed colours (:func:`mattestudio.core.trimap.edge_band`),
- ``{"tool": "fill", "value": 0 | 128 | 255, "seed": [x, y]}`` fill bucket at the seed,
- ``{"tool": "set", "source": "loaded" | "grabcut" | "from-alpha" | "clear" | ...}`` the whole
  trimap was replaced; the pixels are not logged, so replay cannot go across it.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from mattestudio.core.history import BBox
from mattestudio.core.trimap import edge_band
from mattestudio.types import UNKNOWN

if TYPE_CHECKING:  # pragma: no cover
    from mattestudio.core.document import Document

Point = tuple[float, float]  # (x, y)
Value = int | np.ndarray


def segment_bbox(p0: Point, p1: Point, radius: float, shape: tuple[int, int]) -> BBox | None:
    """Pixels a segment of the given brush radius can touch, clipped to the array (or None)."""
    h, w = shape[:2]
    r = max(radius, 0.5) + 1
    x0 = max(int(np.floor(min(p0[0], p1[0]) - r)), 0)
    x1 = min(int(np.ceil(max(p0[0], p1[0]) + r)) + 1, w)
    y0 = max(int(np.floor(min(p0[1], p1[1]) - r)), 0)
    y1 = min(int(np.ceil(max(p0[1], p1[1]) + r)) + 1, h)
    if x0 >= x1 or y0 >= y1:
        return None
    return (y0, y1, x0, x1)


def capsule_mask(p0: Point, p1: Point, radius: float, bbox: BBox) -> np.ndarray:
    """Boolean mask over ``bbox``: pixel centres within ``radius`` of the segment p0-p1.

    The pixel containing each end point is always included, so a 1-pixel brush paints the
    pixel under the cursor.
    """
    y0, y1, x0, x1 = bbox
    cy = (np.arange(y0, y1, dtype=np.float64) + 0.5)[:, None]
    cx = (np.arange(x0, x1, dtype=np.float64) + 0.5)[None, :]
    ax, ay = float(p0[0]), float(p0[1])
    dx, dy = float(p1[0]) - ax, float(p1[1]) - ay
    seg2 = dx * dx + dy * dy
    if seg2 > 0:
        t = np.clip(((cx - ax) * dx + (cy - ay) * dy) / seg2, 0.0, 1.0)
    else:
        t = 0.0
    ex = cx - (ax + t * dx)
    ey = cy - (ay + t * dy)
    mask = ex * ex + ey * ey <= radius * radius
    for px, py in (p0, p1):
        j, i = int(np.floor(px)) - x0, int(np.floor(py)) - y0
        if 0 <= i < mask.shape[0] and 0 <= j < mask.shape[1]:
            mask[i, j] = True
    return mask


def paint_segment(
    target: np.ndarray,
    p0: Point,
    p1: Point,
    size: float,
    value: Value,
    before_change=None,
    where: np.ndarray | None = None,
) -> BBox | None:
    """Paint a capsule of diameter ``size`` from p0 to p1 into ``target`` (H x W) in place.

    ``value``: a scalar, or an array of ``target``'s shape to copy from (the eraser restores the
    base trimap this way). ``before_change(target, bbox)`` is called before writing (undo hook).
    ``where``: optional boolean H x W limiting the paint (the Refine Edge brush's edge band).
    Returns the bbox that was written, or None when the segment lies outside the array.
    """
    radius = max(float(size), 1.0) / 2.0
    bbox = segment_bbox(p0, p1, radius, target.shape)
    if bbox is None:
        return None
    mask = capsule_mask(p0, p1, radius, bbox)
    y0, y1, x0, x1 = bbox
    if where is not None:
        mask &= where[y0:y1, x0:x1]
    if not mask.any():
        return None
    if before_change is not None:
        before_change(target, bbox)
    crop = target[y0:y1, x0:x1]
    if isinstance(value, np.ndarray):
        crop[mask] = value[y0:y1, x0:x1][mask]
    else:
        crop[mask] = value
    return bbox


def fill_region(trimap: np.ndarray, x: float, y: float) -> tuple[BBox, np.ndarray] | None:
    """The 4-connected region of equal trimap value containing (x, y): (bbox, mask over bbox), or None."""
    import cv2

    h, w = trimap.shape[:2]
    j, i = int(np.floor(x)), int(np.floor(y))
    if not (0 <= i < h and 0 <= j < w):
        return None
    mask = np.zeros((h + 2, w + 2), np.uint8)
    flags = 4 | cv2.FLOODFILL_MASK_ONLY | cv2.FLOODFILL_FIXED_RANGE | (1 << 8)
    _, _, _, (rx, ry, rw, rh) = cv2.floodFill(
        np.ascontiguousarray(trimap), mask, (j, i), 0, 0, 0, flags
    )
    bbox = (ry, ry + rh, rx, rx + rw)
    region = mask[1 + ry : 1 + ry + rh, 1 + rx : 1 + rx + rw].astype(bool)
    return bbox, region


def fill_at(trimap: np.ndarray, x: float, y: float, value: int, before_change=None) -> BBox | None:
    """Fill bucket in place: the region under (x, y) becomes ``value``. Returns the written bbox,
    or None when nothing changes. ``before_change(trimap, bbox)`` is called before writing."""
    found = fill_region(trimap, x, y)
    if found is None:
        return None
    bbox, region = found
    y0, y1, x0, x1 = bbox
    crop = trimap[y0:y1, x0:x1]
    if np.all(crop[region] == value):
        return None
    if before_change is not None:
        before_change(trimap, bbox)
    crop[region] = value
    return bbox


# -- stroke records ---------------------------------------------------------------------------------


def _xy(p) -> list[float]:
    return [float(p[0]), float(p[1])]


def extend_brush_records(
    records: list[dict], p0: Point, p1: Point, size: float, value: int | str
) -> None:
    """Log one painted segment into ``records`` (the open stroke's list), in place.

    A segment continuing the last record (same value and size, starting at its last point) just
    appends its end point; anything else starts a new record, so replay stays exact whatever
    sequence of segments a caller paints.
    """
    a, b = _xy(p0), _xy(p1)
    value = value if value in ("erase", "refine") else int(value)
    last = records[-1] if records else None
    if (
        last is not None
        and last["tool"] == "brush"
        and last["value"] == value
        and last["size"] == float(size)
        and last["points"][-1] == a
    ):
        if b != a:  # a zero-length segment at the end point paints nothing new
            last["points"].append(b)
        return
    records.append(
        {"tool": "brush", "value": value, "size": float(size), "points": [a] if a == b else [a, b]}
    )


def fill_record(x: float, y: float, value: int) -> dict:
    return {"tool": "fill", "value": int(value), "seed": _xy((x, y))}


def set_record(source: str) -> dict:
    return {"tool": "set", "source": str(source)}


def replay(
    records,
    shape: tuple[int, int],
    base_trimap: np.ndarray | None = None,
    image: np.ndarray | None = None,
) -> np.ndarray:
    """Re-render a trimap from brush and fill records, painted on a copy of ``base_trimap``
    (default: all unknown), which is also what the eraser restores. Refine Edge records need the
    ``image`` (their band is where it has edges, :func:`mattestudio.core.trimap.edge_band`).

    Replaying ``Document.strokes`` on the document's base trimap reproduces its trimap exactly when
    the session has only brush and fill records. A "set" record raises ValueError: its pixels are
    not in the log (replay the records after it on the trimap it produced instead).
    """
    h, w = shape[:2]
    if base_trimap is None:
        base = np.full((h, w), UNKNOWN, np.uint8)
    else:
        base = np.array(base_trimap, np.uint8, copy=True)
        if base.shape != (h, w):
            raise ValueError(f"base trimap shape {base.shape} does not match {(h, w)}")
    out = base.copy()
    band = None
    for i, rec in enumerate(records):
        tool = rec.get("tool") if isinstance(rec, dict) else None
        if tool == "brush":
            where = None
            value: Value
            if rec["value"] == "refine":
                if image is None:
                    raise ValueError(f"record {i} is a Refine Edge stroke: replay needs the image")
                if band is None:
                    band = edge_band(image)
                value, where = UNKNOWN, band
            else:
                value = base if rec["value"] == "erase" else int(rec["value"])
            points = [_xy(p) for p in rec["points"]]
            for a, b in zip(points[:1] + points[:-1], points):  # the first disc, then each segment
                paint_segment(out, a, b, float(rec["size"]), value, where=where)
        elif tool == "fill":
            fill_at(out, *_xy(rec["seed"]), int(rec["value"]))
        elif tool == "set":
            raise ValueError(
                f"record {i} replaces the whole trimap ({rec.get('source')!r}); "
                "it cannot be replayed from vectors"
            )
        else:
            raise ValueError(f"record {i} has an unknown tool {tool!r}")
    return out


class Brush:
    """Turns press / move / release into one undoable stroke on a Document's trimap.

    ``value``: a trimap value (0, 128, 255), "erase" to restore the document's base trimap
    (the one loaded or generated last) under the brush, or "refine" for the Refine Edge brush.
    """

    def __init__(self, document: Document, value: int | str, size: float):
        self.document = document
        self.value = value
        self.size = float(size)
        self._last: Point | None = None

    @property
    def active(self) -> bool:
        return self._last is not None

    def press(self, x: float, y: float) -> None:
        if self._last is not None:
            self.release()
        self.document.begin_stroke(self.value if self.value in ("erase", "refine") else "brush")
        self._last = (float(x), float(y))
        self.document.paint_segment(self._last, self._last, self.size, self.value)

    def move(self, x: float, y: float) -> None:
        if self._last is None:
            return
        p = (float(x), float(y))
        self.document.paint_segment(self._last, p, self.size, self.value)
        self._last = p

    def release(self) -> None:
        if self._last is None:
            return
        self._last = None
        self.document.end_stroke()

    def cancel(self) -> None:
        if self._last is None:
            return
        self._last = None
        self.document.abort_stroke()
