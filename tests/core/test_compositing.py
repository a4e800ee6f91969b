"""Compositing: I = alpha F + (1 - alpha) B over colors, checkerboards, images and a blurred original."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from mattestudio.core import compositing as C
from mattestudio.errors import ImageLoadError, MattestudioError


@pytest.mark.parametrize(
    "spec, rgb",
    [
        ("white", (1, 1, 1)),
        ("Black", (0, 0, 0)),
        ("grey", (0.5, 0.5, 0.5)),
        ("#ff0000", (1, 0, 0)),
        ("00ff00", (0, 1, 0)),
        ("#00F", (0, 0, 1)),
        ("#808080", (128 / 255,) * 3),
        ("255, 128, 0", (1, 128 / 255, 0)),
        (" blue ", (0, 0, 1)),
    ],
)
def test_parse_color(spec, rgb):
    np.testing.assert_allclose(C.parse_color(spec), rgb, atol=1e-9)


@pytest.mark.parametrize("spec", ["", "nocolor", "#12345", "#ggg", "256,0,0", "1,2", "photo.png"])
def test_parse_color_rejects(spec):
    assert C.parse_color(spec) is None


def test_checkerboard():
    board = C.checkerboard(5, 7, size=2, light=0.8, dark=0.6)
    assert board.shape == (5, 7, 3) and board.dtype == np.float32
    assert board[0, 0, 0] == pytest.approx(0.8) and board[0, 2, 0] == pytest.approx(0.6)
    assert board[2, 0, 0] == pytest.approx(0.6) and board[2, 2, 0] == pytest.approx(0.8)
    assert board[1, 1, 0] == pytest.approx(0.8)
    np.testing.assert_array_equal(board[:, :, 0], board[:, :, 2])


def test_cover_scales_up_and_crops_centre():
    # 10 high x 20 wide -> cover 20 x 20: scaled 2x to 20 x 40, the centre 20 columns kept.
    img = np.zeros((10, 20, 3), np.float32)
    img[:, :5] = 1.0  # the leftmost quarter is white: it ends up cropped away
    img[:, 15:] = 0.5  # the rightmost quarter too
    out = C.cover(img, 20, 20)
    assert out.shape == (20, 20, 3)
    assert out[:, 2:18].max() == pytest.approx(0.0, abs=1e-6)


def test_cover_scales_down_keeping_aspect():
    img = np.zeros((100, 50, 3), np.float32)
    img[:50] = 1.0  # top half white
    out = C.cover(img, 10, 10)  # scale 0.2 -> 20 x 10, crop rows 5..15
    assert out.shape == (10, 10, 3)
    assert np.all(out[:4] > 0.99) and np.all(out[6:] < 0.01)


def test_composite_solid_color_by_hand():
    fg = np.zeros((1, 3, 3), np.float32)
    fg[..., 0] = 1.0  # red foreground
    alpha = np.array([[0.0, 0.25, 1.0]], np.float32)
    out = C.composite(fg, alpha, (0.0, 0.0, 1.0))  # over blue
    assert out.dtype == np.float32 and out.shape == (1, 3, 3)
    np.testing.assert_allclose(out[0], [[0, 0, 1], [0.25, 0, 0.75], [1, 0, 0]], atol=1e-6)


def test_composite_color_string_and_0_255_tuple():
    fg = np.ones((2, 2, 3), np.float32)
    alpha = np.full((2, 2), 0.5, np.float32)
    np.testing.assert_allclose(C.composite(fg, alpha, "black"), 0.5, atol=1e-6)
    np.testing.assert_allclose(C.composite(fg, alpha, (0, 0, 255))[..., 2], 1.0, atol=1e-6)
    np.testing.assert_allclose(C.composite(fg, alpha, "#000000"), 0.5, atol=1e-6)


def test_composite_reconstructs_synthetic_image(synthetic_matte):
    s = synthetic_matte
    out = C.composite(s.foreground, s.alpha, s.background)
    np.testing.assert_allclose(out, s.image, atol=1e-6)


def test_composite_over_checker():
    fg = np.zeros((32, 32, 3), np.float32)
    alpha = np.zeros((32, 32), np.float32)
    out = C.composite(fg, alpha, "checker")
    np.testing.assert_allclose(out, C.checkerboard(32, 32), atol=1e-6)


def test_composite_over_blurred_original():
    rng = np.random.default_rng(0)
    original = rng.random((40, 40, 3)).astype(np.float32)
    alpha = np.zeros((40, 40), np.float32)
    out = C.composite(original, alpha, "blur", original=original)
    np.testing.assert_allclose(out, C.blurred(original), atol=1e-6)
    assert out.std() < original.std() / 3  # really blurred
    with pytest.raises(MattestudioError, match="original"):
        C.composite(original, alpha, "blur")


def test_composite_over_image_array_of_other_size_covers():
    fg = np.zeros((8, 8, 3), np.float32)
    alpha = np.zeros((8, 8), np.float32)
    bg = np.full((4, 16, 3), 200, np.uint8)
    out = C.composite(fg, alpha, bg)
    assert out.shape == (8, 8, 3)
    np.testing.assert_allclose(out, 200 / 255, atol=1e-5)


def test_composite_over_image_file(tmp_path):
    path = tmp_path / "bg.png"
    Image.fromarray(np.full((30, 60, 3), (0, 255, 0), np.uint8)).save(path)
    fg = np.ones((10, 10, 3), np.float32)
    alpha = np.full((10, 10), 0.5, np.float32)
    out = C.composite(fg, alpha, str(path))
    np.testing.assert_allclose(out[..., 0], 0.5, atol=1e-5)
    np.testing.assert_allclose(out[..., 1], 1.0, atol=1e-5)


def test_background_neither_color_nor_file(tmp_path):
    missing = tmp_path / "nosuch.png"
    with pytest.raises(ImageLoadError, match="not found") as info:
        C.background_array(str(missing), 4, 4)
    assert "nosuch.png" in str(info.value)
    with pytest.raises(MattestudioError, match="unsupported background"):
        C.background_array(42, 4, 4)


def test_rgba_straight_and_premultiplied():
    fg = np.full((1, 2, 3), 0.8, np.float32)
    alpha = np.array([[0.5, 1.0]], np.float32)
    straight = C.rgba(fg, alpha)
    pre = C.rgba(fg, alpha, premultiplied=True)
    assert straight.shape == (1, 2, 4) and straight.dtype == np.float32
    np.testing.assert_allclose(straight[0, :, :3], 0.8)
    np.testing.assert_allclose(pre[0, 0, :3], 0.4, atol=1e-6)
    np.testing.assert_allclose(pre[0, 1, :3], 0.8, atol=1e-6)
    np.testing.assert_allclose(straight[..., 3], alpha)
    np.testing.assert_allclose(pre[..., 3], alpha)
    np.testing.assert_allclose(C.premultiply(fg, alpha), pre[..., :3])
