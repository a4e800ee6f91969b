"""Edge-aware bands: the Refine Edge brush (undoable, replayable) and the smart band."""

from __future__ import annotations

import numpy as np
import pytest

from mattestudio.core import strokes
from mattestudio.core import trimap as trimap_ops
from mattestudio.core.document import Document
from mattestudio.core.strokes import Brush
from mattestudio.types import BACKGROUND, FOREGROUND, UNKNOWN

RED, BLUE = (0.85, 0.15, 0.1), (0.1, 0.2, 0.8)


def hard_and_hairy(h=80, w=120, seed=0) -> np.ndarray:
    """Red left of column 40, blue right of it (a hard edge), plus fine red/blue strands in
    columns 80..119 (hair); a little sensor noise everywhere."""
    rng = np.random.default_rng(seed)
    img = np.empty((h, w, 3), np.float32)
    img[:, :40] = RED
    img[:, 40:] = BLUE
    strands = rng.random((h, 40)) < 0.45
    img[:, 80:][strands] = RED
    return np.clip(img + rng.normal(0, 0.004, img.shape).astype(np.float32), 0, 1)


def test_edge_band_is_thin_on_a_hard_edge_and_empty_on_flat_colour():
    band = trimap_ops.edge_band(hard_and_hairy())
    cols = np.flatnonzero(band[:, :70].any(axis=0))
    assert cols.min() >= 36 and cols.max() <= 43  # a few pixels around the edge at 39.5
    assert not band[:, :30].any() and not band[:, 50:75].any()
    assert band[:, 84:116].mean() > 0.9  # hair: mixed colours everywhere


def test_refine_brush_marks_unknown_only_on_edges_and_is_one_undo_step():
    image = hard_and_hairy()
    tri = np.full(image.shape[:2], FOREGROUND, np.uint8)
    tri[:, 60:] = BACKGROUND
    doc = Document(image, tri)
    brush = Brush(doc, "refine", 16)
    brush.press(5, 40)
    for x in range(10, 120, 7):
        brush.move(x, 40)
    brush.release()
    changed = doc.trimap != tri
    assert changed.any() and np.all(doc.trimap[changed] == UNKNOWN)
    rows, cols = np.nonzero(changed)
    assert rows.min() >= 32 and rows.max() <= 48  # inside the 16 px brush
    flat = (cols < 36) | ((cols > 43) & (cols < 77))  # hair starts at 80: 77 is near it
    assert not flat.any()  # flat colour under the brush keeps its value
    assert changed[:, 84:116].sum() > 0.8 * 15 * 32  # the hair under the brush became unknown
    assert doc.strokes[-1]["value"] == "refine" and doc.history.can_undo
    assert doc.undo()
    np.testing.assert_array_equal(doc.trimap, tri)
    assert doc.redo() and np.any(doc.trimap != tri)


def test_refine_records_replay_with_the_image():
    image = hard_and_hairy()
    doc = Document(image, np.full(image.shape[:2], BACKGROUND, np.uint8))
    for y, value in ((20, "refine"), (60, FOREGROUND), (50, "refine")):
        b = Brush(doc, value, 12)
        b.press(2, y)
        b.move(118, y + 3)
        b.release()
    again = strokes.replay(doc.strokes, doc.shape, doc.base_trimap, image=image)
    np.testing.assert_array_equal(again, doc.trimap)
    with pytest.raises(ValueError, match="needs the image"):
        strokes.replay(doc.strokes, doc.shape, doc.base_trimap)


def band_width_per_column(tri: np.ndarray) -> np.ndarray:
    return (tri == UNKNOWN).sum(axis=0)


def test_smart_band_is_thin_on_hard_edges_and_wide_on_hair():
    h, w = 120, 160
    rng = np.random.default_rng(1)
    img = np.empty((h, w, 3), np.float32)
    img[:60] = RED  # the subject is the top half; hard edge at row 60 on the left
    img[60:] = BLUE
    hair = rng.random((40, 80)) < 0.4  # strands across the edge on the right half
    img[40:80, 80:][hair] = RED
    img[40:80, 80:][~hair & (rng.random((40, 80)) < 0.5)] = BLUE
    img = np.clip(img + rng.normal(0, 0.004, img.shape).astype(np.float32), 0, 1)
    mask = np.zeros((h, w), bool)
    mask[:60] = True
    tri = trimap_ops.smart_band(img, mask, thin=3, wide=24)
    widths = band_width_per_column(tri)
    assert np.all(widths[5:60] <= 4) and np.all(widths[5:60] >= 2)  # hard edge: thin
    assert np.all(widths[95:155] >= 20)  # hair: wide
    assert np.all(tri[mask & (tri != UNKNOWN)] == FOREGROUND)
    assert np.all(tri[~mask & (tri != UNKNOWN)] == BACKGROUND)
    # A fixed band for comparison is the same width everywhere.
    fixed = band_width_per_column(trimap_ops.from_mask(mask, 24))
    assert fixed.min() == fixed.max()


def test_grabcut_smart_band_follows_the_edge():
    h, w = 90, 120
    img = np.empty((h, w, 3), np.float32)
    img[:] = BLUE
    img[20:70, 30:90] = RED
    tri = trimap_ops.grabcut(img, rect=(20, 10, 80, 70), band=9, smart=True)
    assert np.any(tri == UNKNOWN) and tri[45, 60] == FOREGROUND and tri[5, 5] == BACKGROUND
    assert band_width_per_column(tri)[60] <= 8  # a hard edge keeps a thin band (3 + 3)


def test_from_alpha_with_the_image_uses_the_smart_band():
    h, w = 90, 120
    img = np.empty((h, w, 3), np.float32)
    img[:] = BLUE
    img[20:70, 30:90] = RED
    alpha = np.zeros((h, w), np.float32)
    alpha[20:70, 30:90] = 1.0
    fixed = trimap_ops.from_alpha(alpha, 12)
    smart = trimap_ops.from_alpha(alpha, 12, image=img)
    top = slice(0, 45)  # the top edge only
    assert band_width_per_column(fixed[top])[60] >= 12
    assert 2 <= band_width_per_column(smart[top])[60] <= 6  # a hard edge: a third of it
    assert smart[45, 60] == FOREGROUND and smart[5, 5] == BACKGROUND
