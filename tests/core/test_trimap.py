"""Trimaps: reading any reasonable encoding, checking against the image, generating one."""

from __future__ import annotations

import cv2
import numpy as np
import pytest
from PIL import Image

from mattestudio.core import trimap as T
from mattestudio.errors import ImageLoadError, TrimapError

BG, UNK, FG = 0, 128, 255


# ---------------------------------------------------------------------------------------------
# normalize


def test_uint8_values_between_0_and_255_are_unknown():
    arr = np.array([[0, 1, 102, 127, 128, 129, 200, 254, 255]], np.uint8)
    out = T.normalize(arr)
    assert out.dtype == np.uint8
    np.testing.assert_array_equal(out, [[BG, UNK, UNK, UNK, UNK, UNK, UNK, UNK, FG]])


def test_102_valued_trimap_works():
    arr = np.full((4, 4), 102, np.uint8)
    arr[0] = 0
    arr[-1] = 255
    out = T.normalize(arr)
    assert set(np.unique(out)) == {BG, UNK, FG}
    assert np.all(out[1:3] == UNK)


def test_float_unit_range():
    arr = np.array([[0.0, 0.5, 1.0, 0.01, 0.99]], np.float32)
    np.testing.assert_array_equal(T.normalize(arr), [[BG, UNK, FG, UNK, UNK]])


def test_float_0_255_range():
    arr = np.array([[0.0, 128.0, 255.0, 3.0]], np.float64)
    np.testing.assert_array_equal(T.normalize(arr), [[BG, UNK, FG, UNK]])


def test_uint16():
    arr = np.array([[0, 32768, 65535, 255]], np.uint16)
    np.testing.assert_array_equal(T.normalize(arr), [[BG, UNK, FG, UNK]])


def test_bool_mask():
    arr = np.array([[True, False]])
    np.testing.assert_array_equal(T.normalize(arr), [[FG, BG]])


@pytest.mark.parametrize("channels", [1, 3, 4])
def test_equal_channels_accepted(channels):
    gray = np.array([[0, 128, 255], [60, 255, 0]], np.uint8)
    arr = np.repeat(gray[:, :, None], channels, axis=2)
    if channels == 4:
        arr[:, :, 3] = 17  # an alpha channel is ignored
    np.testing.assert_array_equal(T.normalize(arr), [[BG, UNK, FG], [UNK, FG, BG]])


def test_unequal_channels_refused_with_clear_message():
    arr = np.zeros((3, 3, 3), np.uint8)
    arr[1, 1] = (255, 0, 0)
    with pytest.raises(TrimapError, match="channels differ") as info:
        T.normalize(arr, "colored.png")
    assert "colored.png" in str(info.value)


def test_bad_shape_refused():
    with pytest.raises(TrimapError, match="shape"):
        T.normalize(np.zeros((2, 2, 2, 2), np.uint8))


# ---------------------------------------------------------------------------------------------
# check / load


def test_check_size_mismatch_names_both_sizes():
    tri = np.full((5, 10), UNK, np.uint8)
    with pytest.raises(TrimapError) as info:
        T.check(tri, (8, 20, 3), source="tri.png", image_source="photo.jpg")
    msg = str(info.value)
    assert "10x5" in msg and "20x8" in msg
    assert "tri.png" in msg and "photo.jpg" in msg


def test_check_no_unknown():
    tri = np.zeros((4, 4), np.uint8)
    tri[:2] = FG
    with pytest.raises(TrimapError, match="no unknown") as info:
        T.check(tri, (4, 4), source="t.png")
    assert "t.png" in str(info.value)
    assert T.check(tri, (4, 4), require_unknown=False) is tri


def test_check_accepts_matching_trimap():
    tri = np.full((4, 6), UNK, np.uint8)
    assert T.check(tri, (4, 6, 3)) is tri


def test_load_from_path_normalizes_and_checks(tmp_path):
    arr = np.full((6, 8), 102, np.uint8)
    arr[0] = 0
    arr[-1] = 255
    path = tmp_path / "tri.png"
    Image.fromarray(arr).save(path)
    tri = T.load(path, (6, 8, 3))
    assert tri[0, 0] == BG and tri[-1, 0] == FG and tri[3, 3] == UNK


def test_load_rgb_png_with_equal_channels(tmp_path):
    arr = np.zeros((6, 8, 3), np.uint8)
    arr[2:4] = 128
    arr[4:] = 255
    path = tmp_path / "tri_rgb.png"
    Image.fromarray(arr).save(path)
    tri = T.load(path, (6, 8))
    np.testing.assert_array_equal(tri[:, 0], [BG, BG, UNK, UNK, FG, FG])


def test_load_jpeg_trimap_keeps_definite_regions(tmp_path):
    """A JPEG'd trimap: its flat 0 and 255 areas stay definite, ringing becomes unknown."""
    arr = np.zeros((32, 32), np.uint8)
    arr[:, 12:20] = 128
    arr[:, 20:] = 255
    path = tmp_path / "tri.jpg"
    Image.fromarray(arr).save(path, quality=95)
    tri = T.load(path, (32, 32))
    assert np.all(tri[:, 12:20] == UNK)
    assert np.all(tri[:, :4] == BG) and np.all(tri[:, 28:] == FG)


def test_load_size_mismatch_from_path(tmp_path):
    path = tmp_path / "small.png"
    Image.fromarray(np.full((5, 7), 128, np.uint8)).save(path)
    with pytest.raises(TrimapError) as info:
        T.load(path, (10, 20, 3), image_source="big.png")
    msg = str(info.value)
    assert "7x5" in msg and "20x10" in msg and "small.png" in msg and "big.png" in msg


def test_load_without_unknown_from_path(tmp_path):
    path = tmp_path / "binary.png"
    Image.fromarray(np.zeros((5, 7), np.uint8)).save(path)
    with pytest.raises(TrimapError, match="no unknown") as info:
        T.load(path)
    assert "binary.png" in str(info.value)


def test_load_missing_file(tmp_path):
    with pytest.raises(ImageLoadError, match="not found"):
        T.load(tmp_path / "nope.png")


# ---------------------------------------------------------------------------------------------
# helpers


def test_to_float_and_split_and_force_known():
    tri = np.array([[BG, UNK, FG]], np.uint8)
    np.testing.assert_allclose(T.to_float(tri), [[0.0, 128 / 255, 1.0]])
    fg, bg, unk = T.split(tri)
    np.testing.assert_array_equal(fg, [[False, False, True]])
    np.testing.assert_array_equal(bg, [[True, False, False]])
    np.testing.assert_array_equal(unk, [[False, True, False]])
    alpha = np.array([[0.3, 0.4, 0.5]], np.float32)
    out = T.force_known(alpha, tri)
    assert out is alpha
    np.testing.assert_array_equal(alpha, np.array([[0.0, 0.4, 1.0]], np.float32))


# ---------------------------------------------------------------------------------------------
# from_mask / from_alpha


@pytest.mark.parametrize("band", [1, 2, 7, 10])
def test_from_mask_band_width_centred_on_edge(band):
    mask = np.zeros((20, 80), bool)
    mask[:, :40] = True  # edge between columns 39 and 40
    tri = T.from_mask(mask, band)
    row = tri[10]
    unknown_cols = np.where(row == UNK)[0]
    assert len(unknown_cols) == band
    assert np.all(np.diff(unknown_cols) == 1)  # one contiguous band
    assert unknown_cols[0] == 40 - band // 2 and unknown_cols[-1] == 39 + (band - band // 2)
    assert np.all(row[: unknown_cols[0]] == FG) and np.all(row[unknown_cols[-1] + 1 :] == BG)
    assert np.all(tri == tri[10])  # same on every row


def test_from_mask_band_zero_is_binary():
    mask = np.zeros((10, 10), np.uint8)
    mask[3:7, 3:7] = 1
    tri = T.from_mask(mask, 0)
    np.testing.assert_array_equal(tri, np.where(mask > 0, FG, BG))


def test_from_mask_float_mask_thresholds_at_half():
    mask = np.zeros((20, 40), np.float32)
    mask[:, :20] = 0.8
    mask[:, 20:] = 0.3  # not foreground, although nonzero
    tri = T.from_mask(mask, 4)
    np.testing.assert_array_equal(np.where(tri[5] == UNK)[0], [18, 19, 20, 21])


def test_from_mask_thin_object_keeps_unknown_seam():
    mask = np.zeros((21, 21), bool)
    mask[10, :] = True  # 1 px wide line, eroded away by the band
    tri = T.from_mask(mask, 4)
    assert np.all(tri[10] == UNK)
    assert not np.any(tri == FG)


def test_from_alpha_known_regions_are_truly_known(synthetic_matte):
    alpha, tri = synthetic_matte.alpha, T.from_alpha(synthetic_matte.alpha, band=6)
    assert set(np.unique(tri)) == {BG, UNK, FG}
    assert alpha[tri == FG].min() >= 0.98
    assert alpha[tri == BG].max() <= 0.02
    # Every fractional pixel (strands included) is unknown.
    frac = (alpha > 0.02) & (alpha < 0.98)
    assert np.all(tri[frac] == UNK)


def test_from_alpha_marks_isolated_strand_unknown():
    alpha = np.zeros((30, 30), np.float32)
    alpha[10:20, 10:20] = 1.0
    alpha[25, 2:28] = 0.3  # a faint strand far from the body
    tri = T.from_alpha(alpha, band=4)
    assert np.all(tri[25, 2:28] == UNK)
    assert tri[15, 15] == FG and tri[0, 0] == BG


# ---------------------------------------------------------------------------------------------
# GrabCut


def test_grabcut_from_rectangle(synthetic_matte):
    s = synthetic_matte
    tri = T.grabcut(s.image, rect=(10, 5, 45, 55), band=6)
    assert tri.shape == s.alpha.shape and tri.dtype == np.uint8
    assert set(np.unique(tri)) == {BG, UNK, FG}
    cy, cx = 32, 36  # the disc's centre
    assert tri[cy, cx] == FG
    # Outside the rectangle (x 10..54), beyond the 3 px outer half of the band, is background.
    assert np.all(tri[:, 58:] == BG) and np.all(tri[:, :7] == BG)
    # The segmentation follows the object: almost no definite pixel contradicts the truth.
    assert np.sum((tri == FG) & (s.alpha < 0.5)) == 0
    assert np.sum((tri == BG) & (s.alpha > 0.5)) <= 10
    # The disc's edge lies in the unknown band.
    edge = (s.alpha > 0.3) & (s.alpha < 0.7) & (np.abs(np.mgrid[0:64, 0:80][1] - cx) < 12)
    assert np.mean(tri[edge] == UNK) > 0.9


def test_grabcut_from_scribbles(synthetic_matte):
    s = synthetic_matte
    fg = np.zeros(s.alpha.shape, bool)
    fg[24:40, 26:46] = True
    bg = np.zeros(s.alpha.shape, bool)
    bg[:3], bg[-3:], bg[:, :3], bg[:, -3:] = True, True, True, True
    tri = T.grabcut(s.image, fg_strokes=fg, bg_strokes=bg, band=4)
    assert np.all(tri[fg] == FG) and np.all(tri[bg] == BG)
    assert np.sum((tri == FG) & (s.alpha < 0.5)) == 0
    # It grew beyond the stroke to most of the opaque object.
    assert np.sum(tri == FG) > 1.5 * fg.sum()
    assert np.mean(tri[s.alpha > 0.5] != BG) > 0.9


def test_grabcut_strokes_override_rectangle(synthetic_matte):
    s = synthetic_matte
    fg = np.zeros(s.alpha.shape, bool)
    fg[30:34, 34:38] = True
    bg = np.zeros(s.alpha.shape, bool)
    bg[20:24, 30:34] = True  # inside the disc: the user insists it is background
    tri = T.grabcut(s.image, rect=(10, 5, 45, 55), fg_strokes=fg, bg_strokes=bg, band=4)
    assert np.all(tri[fg] == FG) and np.all(tri[bg] == BG)


def test_grabcut_needs_rect_or_fg_strokes(synthetic_matte):
    with pytest.raises(TrimapError, match="rectangle"):
        T.grabcut(synthetic_matte.image)


def test_grabcut_rect_too_small_or_outside(synthetic_matte):
    with pytest.raises(TrimapError, match="too small or outside") as info:
        T.grabcut(synthetic_matte.image, rect=(200, 200, 10, 10))
    assert "80x64" in str(info.value)


def test_grabcut_needs_background(synthetic_matte):
    with pytest.raises(TrimapError, match="background"):
        T.grabcut(synthetic_matte.image, rect=(0, 0, 80, 64))


def test_synthetic_fixture_is_consistent(synthetic_matte):
    """The shared fixture itself: composite equation holds and the trimap is sound."""
    s = synthetic_matte
    a = s.alpha[:, :, None]
    np.testing.assert_allclose(s.image, a * s.foreground + (1 - a) * s.background, atol=1e-6)
    assert s.image.shape == (64, 80, 3) and s.trimap.shape == (64, 80)
    assert np.sum(s.trimap == UNK) > 500
    assert np.sum((s.alpha > 0) & (s.alpha < 1)) > 300
    assert cv2.countNonZero((s.trimap == FG).astype(np.uint8)) > 200
