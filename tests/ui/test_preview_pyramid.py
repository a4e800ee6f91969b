"""The preview is a uint8 pyramid: zoomed out the canvas shows a reduced level, at 100 % the full
resolution pixels; a Live patch rewrites only its box in every level and leaves them exactly as
a rebuild from scratch would (no stale tiles)."""

from __future__ import annotations

import numpy as np
import pytest

from mattestudio.types import MattingResult
from mattestudio.ui.display import result_pixels, result_pixels_in_strips, to_u8
from mattestudio.ui.pyramid import Pyramid, halve, level_for_zoom


@pytest.mark.parametrize("shape", [(301, 517), (300, 516, 4), (257, 1031, 3)])
def test_a_box_update_equals_a_rebuild(shape):
    rng = np.random.default_rng(0)
    base = rng.integers(0, 256, shape, dtype=np.uint8)
    pyr = Pyramid(base.copy())
    assert len(pyr.levels) >= 2
    for k, lvl in enumerate(pyr.levels):
        assert lvl.shape[:2] == (-(-shape[0] // 2**k), -(-shape[1] // 2**k))
    for box in [(0, 7, 0, 9), (120, 301, 400, 517), (33, 34, 250, 251), (5, 300, 1, 516)]:
        y0, y1, x0, x1 = box
        y1, x1 = min(y1, shape[0]), min(x1, shape[1])
        pyr.levels[0][y0:y1, x0:x1] = rng.integers(0, 256, (y1 - y0, x1 - x0) + shape[2:])
        pyr.update((y0, y1, x0, x1))
        fresh = Pyramid(pyr.levels[0].copy())
        for mine, theirs in zip(pyr.levels, fresh.levels, strict=True):
            np.testing.assert_array_equal(mine, theirs)


def test_halve_is_the_rounded_block_mean():
    a = np.array([[0, 1, 255], [2, 3, 255], [10, 10, 0]], np.uint8)
    np.testing.assert_array_equal(halve(a), [[2, 255], [10, 0]])  # (0+1+2+3+2)//4 = 2


def test_level_for_zoom():
    assert [level_for_zoom(z, 5) for z in (4.0, 1.0, 0.6, 0.5, 0.4, 0.26, 0.2, 0.01)] == [
        0,
        0,
        0,
        1,
        1,
        1,
        2,
        4,
    ]
    assert level_for_zoom(0.1, 1) == 0 and level_for_zoom(float("nan"), 4) == 0


def test_strips_give_the_same_pixels_as_one_piece():
    from mattestudio.core.edges import EdgeAdjustments

    rng = np.random.default_rng(1)
    h, w = 700, 90
    alpha = rng.uniform(0, 1, (h, w)).astype(np.float32)
    fg = rng.uniform(0, 1, (h, w, 3)).astype(np.float32)
    image = rng.uniform(0, 1, (h, w, 3)).astype(np.float32)
    bg = rng.uniform(0, 1, (h, w, 3)).astype(np.float32)
    for edges in (EdgeAdjustments(), EdgeAdjustments(feather=2.0, shift_edge=1.5, contrast=20)):
        for mode, back in (("alpha", None), ("composite", bg), ("composite", None)):
            whole = result_pixels(mode, alpha, fg, image, back, edges)
            strips = result_pixels_in_strips(mode, alpha, fg, image, back, edges, rows=64)
            np.testing.assert_array_equal(strips, whole)
    big = rng.uniform(0, 1, (1500, 1000, 3)).astype(np.float32)  # over the strip threshold
    np.testing.assert_array_equal(
        to_u8(big), np.clip(np.rint(big * 255.0), 0, 255).astype(np.uint8)
    )


@pytest.fixture
def big_window(window, qtbot):
    """A 1200 x 1600 photo with a result, alpha view, fitted in the 1000 x 700 window."""
    rng = np.random.default_rng(2)
    h, w = 1200, 1600
    image = rng.uniform(0, 1, (h, w, 3)).astype(np.float32)
    trimap = np.full((h, w), 128, np.uint8)
    doc = window.document
    doc.set_image(image, trimap)
    alpha = np.clip(np.linspace(0, 1, w, dtype=np.float32)[None, :] + 0 * image[..., 0], 0, 1)
    doc.set_result(MattingResult(alpha=alpha, foreground=image.copy(), engine="test"))
    window.view_panel.set_mode("alpha")
    c = window.canvas
    c.fit()
    qtbot.waitUntil(lambda: not c.preview_pending and c.preview_pyramid is not None)
    return window


def test_zoomed_out_shows_a_reduced_level_and_100_percent_the_full_pixels(big_window, qtbot):
    c, doc = big_window.canvas, big_window.document
    assert c.zoom_factor() < 0.5
    k = c.preview_level
    assert k >= 1
    shown = c.preview_item.image
    assert np.shares_memory(shown, c.preview_pyramid.levels[k]) and shown.shape == (
        -(-1200 // 2**k),
        -(-1600 // 2**k),
    )
    # The level covers the whole image in view coordinates.
    rect = c.preview_item.mapRectToParent(c.preview_item.boundingRect())
    assert (rect.width(), rect.height()) == pytest.approx((1600, 1200))
    np.testing.assert_array_equal(c.preview_shown, to_u8(doc.alpha()))
    c.actual_size()
    qtbot.waitUntil(lambda: c.preview_level == 0)
    assert np.shares_memory(
        c.preview_item.image, c.preview_shown
    )  # full resolution, no scaling at 100 %
    c.fit()
    qtbot.waitUntil(lambda: c.preview_level == k)


def test_a_patch_while_zoomed_out_updates_the_level_shown(big_window, qtbot):
    c, doc = big_window.canvas, big_window.document
    k = c.preview_level
    assert k >= 1
    before = c.patches
    result = doc.result
    alpha = result.alpha.copy()
    box = (301, 517, 777, 1013)
    alpha[box[0] : box[1], box[2] : box[3]] = 0.25
    doc.set_result(MattingResult(alpha=alpha, foreground=result.foreground, engine="test"), box=box)
    assert c.patches == before + 1 and not c.preview_pending  # drawn in place, no recompute
    fresh = Pyramid(to_u8(alpha))
    for mine, theirs in zip(c.preview_pyramid.levels, fresh.levels, strict=True):
        np.testing.assert_array_equal(mine, theirs)
    assert np.shares_memory(c.preview_item.image, c.preview_pyramid.levels[k])
    if c.preview_item.qimage is None:
        c.preview_item.render()
    qimg = c.preview_item.qimage
    y, x = (box[0] + box[1]) // 2 >> k, (box[2] + box[3]) // 2 >> k
    assert qimg.pixelColor(x, y).red() == c.preview_pyramid.levels[k][y, x] == to_u8(0.25)
