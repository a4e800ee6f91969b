"""Image reading and writing: formats, bit depths, modes, EXIF orientation, bad input, atomic output."""

from __future__ import annotations

import os
from pathlib import Path

import cv2
import numpy as np
import pytest
from PIL import Image, ImageOps

from mattestudio.core import io
from mattestudio.errors import ImageLoadError, MattestudioError, OutputError

RNG = np.random.default_rng(1234)
RGB8 = RNG.integers(0, 256, (12, 16, 3), dtype=np.uint8)
GRAY8 = RNG.integers(0, 256, (12, 16), dtype=np.uint8)
RGBA8 = RNG.integers(0, 256, (12, 16, 4), dtype=np.uint8)
# 16-bit values whose low byte is never zero, so an 8-bit round trip cannot preserve them.
GRAY16 = (RNG.integers(0, 256, (12, 16)) * 256 + RNG.integers(1, 256, (12, 16))).astype(np.uint16)
RGB16 = (RNG.integers(0, 256, (12, 16, 3)) * 256 + RNG.integers(1, 256, (12, 16, 3))).astype(
    np.uint16
)
RGBA16 = (RNG.integers(0, 256, (12, 16, 4)) * 256 + RNG.integers(1, 256, (12, 16, 4))).astype(
    np.uint16
)

LOSSLESS = {"png": {}, "tif": {}, "bmp": {}, "webp": {"lossless": True}}


def _smooth_rgb(h=32, w=48) -> np.ndarray:
    """A smooth image that survives JPEG with small errors."""
    yy, xx = np.mgrid[0:h, 0:w]
    return np.dstack([xx * 255 // (w - 1), yy * 255 // (h - 1), np.full((h, w), 128)]).astype(
        np.uint8
    )


# ---------------------------------------------------------------------------------------------
# Formats, depths and modes


@pytest.mark.parametrize("ext", sorted(LOSSLESS))
def test_lossless_formats_rgb_roundtrip_exactly(tmp_path, ext):
    path = tmp_path / f"rgb.{ext}"
    Image.fromarray(RGB8).save(path, **LOSSLESS[ext])
    arr = io.read_image_array(path)
    assert arr.dtype == np.uint8
    assert arr.shape == RGB8.shape
    np.testing.assert_array_equal(arr, RGB8)


@pytest.mark.parametrize("ext", ["jpg", "jpeg"])
def test_jpeg_rgb_reads_close_to_original(tmp_path, ext):
    src = _smooth_rgb()
    path = tmp_path / f"smooth.{ext}"
    Image.fromarray(src).save(path, quality=95)
    arr = io.read_image_array(path)
    assert arr.shape == src.shape and arr.dtype == np.uint8
    assert np.abs(arr.astype(int) - src.astype(int)).mean() < 2.0
    # Channel order is RGB, not OpenCV's BGR: the red channel grows left to right.
    assert arr[16, -1, 0] > 240 and arr[16, 0, 0] < 15


def test_bgr_order_is_not_leaked_from_opencv_writes(tmp_path):
    path = tmp_path / "red.png"
    red_bgr = np.zeros((4, 4, 3), np.uint8)
    red_bgr[:, :, 2] = 255
    assert cv2.imwrite(str(path), red_bgr)
    arr = io.read_image_array(path)
    np.testing.assert_array_equal(arr[0, 0], [255, 0, 0])


@pytest.mark.parametrize("ext", ["png", "tif", "bmp", "webp"])
def test_grayscale_8bit_is_2d(tmp_path, ext):
    path = tmp_path / f"gray.{ext}"
    Image.fromarray(GRAY8, "L").save(path, **LOSSLESS[ext])
    arr = io.read_image_array(path)
    if ext == "webp":  # WebP has no grayscale mode: it comes back as equal-channel RGB
        assert arr.shape == GRAY8.shape + (3,)
        np.testing.assert_array_equal(arr[:, :, 0], GRAY8)
    else:
        assert arr.shape == GRAY8.shape
        np.testing.assert_array_equal(arr, GRAY8)


def test_grayscale_jpeg_is_2d(tmp_path):
    src = _smooth_rgb()[:, :, 0]
    path = tmp_path / "gray.jpg"
    Image.fromarray(src, "L").save(path, quality=95)
    arr = io.read_image_array(path)
    assert arr.shape == src.shape
    assert np.abs(arr.astype(int) - src.astype(int)).mean() < 2.0


@pytest.mark.parametrize("ext", ["png", "tif", "webp"])
def test_rgba_8bit_keeps_alpha(tmp_path, ext):
    path = tmp_path / f"rgba.{ext}"
    Image.fromarray(RGBA8, "RGBA").save(path, **LOSSLESS[ext])
    arr = io.read_image_array(path)
    assert arr.shape == RGBA8.shape
    np.testing.assert_array_equal(arr[:, :, 3], RGBA8[:, :, 3])
    if ext != "webp":  # lossless WebP may alter the color of fully transparent pixels
        np.testing.assert_array_equal(arr, RGBA8)


@pytest.mark.parametrize("ext", ["png", "tif"])
def test_16bit_gray_values_preserved_beyond_8_bits(tmp_path, ext):
    path = tmp_path / f"g16.{ext}"
    assert cv2.imwrite(str(path), GRAY16)
    arr = io.read_image_array(path)
    assert arr.dtype == np.uint16
    np.testing.assert_array_equal(arr, GRAY16)


@pytest.mark.parametrize("ext", ["png", "tif"])
def test_16bit_gray_written_by_pillow(tmp_path, ext):
    path = tmp_path / f"pil16.{ext}"
    Image.fromarray(GRAY16).save(path)  # mode I;16
    arr = io.read_image_array(path)
    assert arr.dtype == np.uint16
    np.testing.assert_array_equal(arr, GRAY16)


@pytest.mark.parametrize("ext", ["png", "tif"])
def test_16bit_rgb_values_and_channel_order_preserved(tmp_path, ext):
    path = tmp_path / f"rgb16.{ext}"
    assert cv2.imwrite(str(path), RGB16[:, :, ::-1])  # OpenCV writes BGR
    arr = io.read_image_array(path)
    assert arr.dtype == np.uint16 and arr.shape == RGB16.shape
    np.testing.assert_array_equal(arr, RGB16)


@pytest.mark.parametrize("ext", ["png", "tif"])
def test_16bit_rgba_values_and_channel_order_preserved(tmp_path, ext):
    path = tmp_path / f"rgba16.{ext}"
    assert cv2.imwrite(str(path), RGBA16[:, :, [2, 1, 0, 3]])
    arr = io.read_image_array(path)
    assert arr.dtype == np.uint16 and arr.shape == RGBA16.shape
    np.testing.assert_array_equal(arr, RGBA16)


def test_load_image_scales_16bit_to_unit_float(tmp_path):
    path = tmp_path / "rgb16.png"
    assert cv2.imwrite(str(path), RGB16[:, :, ::-1])
    img = io.load_image(path)
    assert img.dtype == np.float32 and img.shape == RGB16.shape
    np.testing.assert_allclose(img, RGB16 / 65535.0, atol=1e-6)


def test_load_gray_16bit(tmp_path):
    path = tmp_path / "g16.png"
    assert cv2.imwrite(str(path), GRAY16)
    g = io.load_gray(path)
    assert g.dtype == np.float32 and g.shape == GRAY16.shape
    np.testing.assert_allclose(g, GRAY16 / 65535.0, atol=1e-6)


@pytest.mark.parametrize("ext", ["png", "bmp", "tif"])
def test_palette_without_transparency_expands_to_rgb(tmp_path, ext):
    pal = Image.fromarray(RGB8).convert("P", palette=Image.Palette.ADAPTIVE, colors=8)
    path = tmp_path / f"pal.{ext}"
    pal.save(path)
    arr = io.read_image_array(path)
    assert arr.shape == RGB8.shape and arr.dtype == np.uint8
    np.testing.assert_array_equal(arr, np.asarray(pal.convert("RGB")))


def test_palette_with_transparency_expands_to_rgba(tmp_path):
    pal = Image.fromarray(RGB8).convert("P", palette=Image.Palette.ADAPTIVE, colors=8)
    index = np.asarray(pal)
    path = tmp_path / "palt.png"
    pal.save(path, transparency=0)
    arr = io.read_image_array(path)
    assert arr.shape == RGB8.shape[:2] + (4,)
    np.testing.assert_array_equal(arr[:, :, 3] == 0, index == 0)
    assert np.all(arr[:, :, 3][index != 0] == 255)
    np.testing.assert_array_equal(arr[:, :, :3], np.asarray(pal.convert("RGB")))


def test_load_image_drops_alpha_and_returns_unit_float(tmp_path):
    path = tmp_path / "rgba.png"
    Image.fromarray(RGBA8, "RGBA").save(path)
    img = io.load_image(path)
    assert img.dtype == np.float32 and img.shape == RGBA8.shape[:2] + (3,)
    np.testing.assert_allclose(img, RGBA8[:, :, :3] / 255.0, atol=1e-6)


def test_load_image_gray_becomes_three_equal_channels(tmp_path):
    path = tmp_path / "gray.png"
    Image.fromarray(GRAY8, "L").save(path)
    img = io.load_image(path)
    assert img.shape == GRAY8.shape + (3,)
    for c in range(3):
        np.testing.assert_allclose(img[:, :, c], GRAY8 / 255.0, atol=1e-6)


def test_load_image_accepts_arrays():
    np.testing.assert_allclose(io.load_image(RGB8), RGB8 / 255.0, atol=1e-6)
    f = RGB8 / 255.0
    np.testing.assert_allclose(io.load_image(f), f, atol=1e-6)
    assert io.load_image(GRAY8).shape == GRAY8.shape + (3,)


@pytest.mark.parametrize("shape", [(4, 4, 2), (4, 4, 5), (4,), (0, 4, 3)])
def test_load_image_rejects_bad_array_shapes(shape):
    with pytest.raises(ImageLoadError, match="shape"):
        io.load_image(np.zeros(shape, np.uint8))


# ---------------------------------------------------------------------------------------------
# EXIF orientation


def _two_color(h=20, w=40) -> np.ndarray:
    """Left half red, right half blue, top-left corner green."""
    arr = np.zeros((h, w, 3), np.uint8)
    arr[:, : w // 2] = (255, 0, 0)
    arr[:, w // 2 :] = (0, 0, 255)
    arr[:4, :4] = (0, 255, 0)
    return arr


def _save_with_orientation(arr, path, orientation, **kw):
    im = Image.fromarray(arr)
    exif = im.getexif()
    exif[0x0112] = orientation
    im.save(path, exif=exif.tobytes(), **kw)


def test_jpeg_exif_orientation_6_is_rotated_clockwise(tmp_path):
    path = tmp_path / "o6.jpg"
    _save_with_orientation(_two_color(), path, 6, quality=95)
    arr = io.read_image_array(path)
    # Stored 40 wide x 20 high; orientation 6 shows it rotated 90 degrees clockwise: 20 wide x 40 high.
    assert arr.shape == (40, 20, 3)
    # The left (red) half is now at the top, the right (blue) half at the bottom.
    assert arr[5, 10, 0] > 200 and arr[5, 10, 2] < 50
    assert arr[35, 10, 2] > 200 and arr[35, 10, 0] < 50
    # The stored top-left corner (green) is now top-right.
    assert arr[1, 18, 1] > 200 and arr[1, 1, 1] < 60


@pytest.mark.parametrize("orientation", range(1, 9))
def test_all_orientations_match_pillow_exif_transpose(tmp_path, orientation):
    path = tmp_path / f"o{orientation}.png"
    _save_with_orientation(_two_color(), path, orientation)
    expected = np.asarray(ImageOps.exif_transpose(Image.open(path)))
    np.testing.assert_array_equal(io.read_image_array(path), expected)


def _exif_oriented(a: np.ndarray, orientation: int) -> np.ndarray:
    """How a viewer shows stored pixels ``a`` under an EXIF orientation (written out independently)."""
    return {
        1: lambda: a,
        2: lambda: np.fliplr(a),
        3: lambda: np.rot90(a, 2),
        4: lambda: np.flipud(a),
        5: lambda: np.rot90(np.fliplr(a), 1),  # transpose
        6: lambda: np.rot90(a, -1),  # 90 degrees clockwise
        7: lambda: np.rot90(np.fliplr(a), -1),  # transverse
        8: lambda: np.rot90(a, 1),  # 90 degrees counter-clockwise
    }[orientation]()


@pytest.mark.parametrize("orientation", range(1, 9))
def test_numpy_orientation_table_agrees_with_pillow_on_png(tmp_path, orientation):
    path = tmp_path / f"o{orientation}.png"
    _save_with_orientation(_two_color(), path, orientation)
    expected = np.asarray(ImageOps.exif_transpose(Image.open(path)))
    np.testing.assert_array_equal(_exif_oriented(_two_color(), orientation), expected)


@pytest.mark.parametrize("ext", ["png", "tif"])
@pytest.mark.parametrize("orientation", range(1, 9))
@pytest.mark.parametrize("kind", ["gray8", "rgb8", "gray16"])
def test_orientation_applied_exactly_once(tmp_path, ext, orientation, kind):
    """PNG and TIFF, 8 and 16 bit: OpenCV's TIFF decoder and Pillow's TIFF loader both apply the
    tag by themselves; the pixels must still come out rotated once, correctly."""
    src = {"gray8": GRAY8, "rgb8": RGB8, "gray16": GRAY16}[kind]
    path = tmp_path / f"o{orientation}.{ext}"
    _save_with_orientation(src, path, orientation)
    arr = io.read_image_array(path)
    assert arr.dtype == src.dtype
    np.testing.assert_array_equal(arr, _exif_oriented(src, orientation))


# ---------------------------------------------------------------------------------------------
# Bad input: the error is an ImageLoadError whose message names the file and the problem


def _assert_load_error(path, *words):
    with pytest.raises(ImageLoadError) as info:
        io.read_image_array(path)
    msg = str(info.value)
    assert str(path) in msg, msg
    assert info.value.path == Path(path)
    for word in words:
        assert word in msg.lower(), msg
    assert "\n" not in msg
    # load_image and load_gray report the same way.
    with pytest.raises(ImageLoadError, match=str(Path(path).name)):
        io.load_image(path)
    with pytest.raises(ImageLoadError, match=str(Path(path).name)):
        io.load_gray(path)
    return msg


def test_missing_file(tmp_path):
    _assert_load_error(tmp_path / "nope.png", "not found")


def test_folder_instead_of_file(tmp_path):
    folder = tmp_path / "folder.png"
    folder.mkdir()
    _assert_load_error(folder, "folder")


def test_empty_file(tmp_path):
    path = tmp_path / "empty.png"
    path.write_bytes(b"")
    _assert_load_error(path, "empty")


def test_text_file_is_not_an_image(tmp_path):
    path = tmp_path / "notes.png"
    path.write_text("this is not an image\n" * 10)
    _assert_load_error(path, "not an image")


def test_truncated_png(tmp_path):
    src = tmp_path / "full.png"
    Image.fromarray(RNG.integers(0, 256, (64, 64, 3), dtype=np.uint8)).save(src)
    data = src.read_bytes()
    path = tmp_path / "cut.png"
    path.write_bytes(data[: len(data) // 2])
    _assert_load_error(path, "truncated")


def test_truncated_16bit_png(tmp_path):
    src = tmp_path / "full16.png"
    assert cv2.imwrite(str(src), RNG.integers(0, 65536, (64, 64), dtype=np.uint16))
    data = src.read_bytes()
    path = tmp_path / "cut16.png"
    path.write_bytes(data[: len(data) // 2])
    _assert_load_error(path, "truncated")


def test_truncated_jpeg(tmp_path):
    src = tmp_path / "full.jpg"
    Image.fromarray(RNG.integers(0, 256, (64, 64, 3), dtype=np.uint8)).save(src, quality=90)
    data = src.read_bytes()
    path = tmp_path / "cut.jpg"
    path.write_bytes(data[: len(data) // 2])
    _assert_load_error(path, "truncated")


def test_pixel_limit_refuses_enormous_image(tmp_path, monkeypatch):
    path = tmp_path / "big.png"
    Image.fromarray(np.zeros((100, 120, 3), np.uint8)).save(path)
    monkeypatch.setenv("MATTESTUDIO_MAX_PIXELS", "11999")
    msg = _assert_load_error(path, "limit", "mattestudio_max_pixels")
    assert "120x100" in msg
    # The numbers in the message tell the two sizes apart even for small limits.
    assert "12,000" in msg and "11,999" in msg


def test_pixel_limit_allows_image_at_the_limit(tmp_path, monkeypatch):
    path = tmp_path / "ok.png"
    Image.fromarray(np.zeros((100, 120, 3), np.uint8)).save(path)
    monkeypatch.setenv("MATTESTUDIO_MAX_PIXELS", "12000")
    assert io.read_image_array(path).shape == (100, 120, 3)


def test_pixel_limit_checked_before_decoding(tmp_path, monkeypatch):
    """A bomb is refused from its header: pixels are never decoded."""
    path = tmp_path / "bomb.png"
    Image.fromarray(np.zeros((100, 120), np.uint8)).save(path)
    monkeypatch.setenv("MATTESTUDIO_MAX_PIXELS", "100")
    loaded = []
    orig_load = Image.Image.load
    monkeypatch.setattr(
        Image.Image, "load", lambda self, *a, **k: loaded.append(1) or orig_load(self, *a, **k)
    )
    with pytest.raises(ImageLoadError, match="limit"):
        io.read_image_array(path)
    assert not loaded


def test_default_pixel_limit(monkeypatch):
    monkeypatch.delenv("MATTESTUDIO_MAX_PIXELS", raising=False)
    assert io.max_pixels() == io.DEFAULT_MAX_PIXELS
    monkeypatch.setenv("MATTESTUDIO_MAX_PIXELS", "not a number")
    assert io.max_pixels() == io.DEFAULT_MAX_PIXELS


# ---------------------------------------------------------------------------------------------
# Writing


def test_save_alpha_16bit_roundtrip(tmp_path):
    alpha = (GRAY16 / 65535.0).astype(np.float32)
    path = io.save_alpha(tmp_path / "a16.png", alpha, bits=16)
    back = io.read_image_array(path)
    assert back.dtype == np.uint16
    np.testing.assert_array_equal(back, GRAY16)


def test_save_alpha_8bit_rounds(tmp_path):
    alpha = np.array([[0.0, 0.5, 1.0, 0.2]], np.float32)
    back = io.read_image_array(io.save_alpha(tmp_path / "a.png", alpha))
    np.testing.assert_array_equal(back, [[0, 128, 255, 51]])


def test_save_rgba_roundtrip_is_straight_alpha(tmp_path):
    rgb = RGB8 / 255.0
    alpha = GRAY8 / 255.0
    back = io.read_image_array(io.save_rgba(tmp_path / "cut.png", rgb, alpha))
    assert back.shape == RGB8.shape[:2] + (4,)
    np.testing.assert_array_equal(back[:, :, :3], RGB8)
    np.testing.assert_array_equal(back[:, :, 3], GRAY8)


@pytest.mark.parametrize("ext", ["png", "tif", "bmp", "webp", "jpg"])
def test_save_rgb_every_format(tmp_path, ext):
    src = _smooth_rgb()
    back = io.read_image_array(io.save_rgb(tmp_path / f"out.{ext}", src / 255.0))
    assert back.shape == src.shape
    assert np.abs(back.astype(int) - src.astype(int)).mean() < 2.0


def test_save_trimap_roundtrip(tmp_path):
    tri = np.array([[0, 128, 255], [255, 128, 0]], np.uint8)
    np.testing.assert_array_equal(io.read_image_array(io.save_trimap(tmp_path / "t.png", tri)), tri)


def test_saved_file_has_umask_permissions(tmp_path):
    path = io.save_alpha(tmp_path / "perm.png", np.zeros((2, 2), np.float32))
    umask = os.umask(0)
    os.umask(umask)
    assert path.stat().st_mode & 0o777 == 0o666 & ~umask


def _leftovers(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir()) if folder.is_dir() else []


def test_output_into_missing_folder(tmp_path):
    target = tmp_path / "missing" / "alpha.png"
    with pytest.raises(OutputError) as info:
        io.save_alpha(target, np.zeros((4, 4), np.float32))
    assert str(target) in str(info.value) and "does not exist" in str(info.value)
    assert not (tmp_path / "missing").exists()
    assert _leftovers(tmp_path) == []


def test_output_whose_parent_is_a_file(tmp_path):
    blocker = tmp_path / "file.txt"
    blocker.write_text("x")
    target = blocker / "alpha.png"
    with pytest.raises(OutputError) as info:
        io.save_rgb(target, np.zeros((4, 4, 3), np.float32))
    assert str(target) in str(info.value) and "cannot write" in str(info.value)
    assert _leftovers(tmp_path) == ["file.txt"]
    assert blocker.read_text() == "x"


def test_output_onto_a_folder(tmp_path):
    target = tmp_path / "out.png"
    target.mkdir()
    with pytest.raises(OutputError, match="directory"):
        io.save_rgb(target, np.zeros((4, 4, 3), np.float32))
    assert _leftovers(target) == []


@pytest.mark.skipif(
    os.name != "posix" or os.geteuid() == 0,
    reason="root ignores folder permissions, so chmod cannot make a folder read-only",
)
def test_output_into_read_only_folder(tmp_path):
    folder = tmp_path / "ro"
    folder.mkdir()
    folder.chmod(0o555)
    try:
        with pytest.raises(OutputError) as info:
            io.save_rgb(folder / "x.png", np.zeros((4, 4, 3), np.float32))
        assert "x.png" in str(info.value)
        assert _leftovers(folder) == []
    finally:
        folder.chmod(0o755)


def test_failed_write_leaves_no_temp_file_and_keeps_old_file(tmp_path, monkeypatch):
    target = tmp_path / "alpha.png"
    target.write_bytes(b"old")

    def broken_replace(src, dst):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(os, "replace", broken_replace)
    with pytest.raises(OutputError) as info:
        io.save_alpha(target, np.zeros((4, 4), np.float32))
    assert "No space left" in str(info.value) and str(target) in str(info.value)
    assert _leftovers(tmp_path) == ["alpha.png"]
    assert target.read_bytes() == b"old"


def test_unsupported_output_suffix(tmp_path):
    with pytest.raises(OutputError, match=r"\.gif"):
        io.save_alpha(tmp_path / "a.gif", np.zeros((2, 2), np.float32))
    with pytest.raises(OutputError, match="bit depth"):
        io.save_alpha(tmp_path / "a.png", np.zeros((2, 2), np.float32), bits=12)
    with pytest.raises(OutputError, match=r"\.jpg"):  # 16-bit JPEG does not exist
        io.save_alpha(tmp_path / "a.jpg", np.zeros((2, 2), np.float32), bits=16)
    assert _leftovers(tmp_path) == []


def test_errors_share_a_base_class():
    assert issubclass(ImageLoadError, MattestudioError) and issubclass(
        OutputError, MattestudioError
    )


@pytest.mark.parametrize(
    "arr",
    [np.zeros((4, 4, 2), np.float32), np.zeros((0, 4, 3), np.float32)],
    ids=["two-channels", "empty"],
)
def test_unencodable_array_is_an_output_error_naming_the_file(tmp_path, arr):
    target = tmp_path / "out.png"
    with pytest.raises(OutputError) as info:
        io.save_rgb(target, arr)
    assert str(target) in str(info.value) and "cannot encode" in str(info.value)
    assert _leftovers(tmp_path) == []


def test_16bit_cutout_refuses_formats_without_16_bits(tmp_path):
    rgb, alpha = np.zeros((4, 4, 3), np.float32), np.zeros((4, 4), np.float32)
    with pytest.raises(OutputError, match=r"\.webp"):
        io.save_rgba(tmp_path / "cut.webp", rgb, alpha, bits=16)
    with pytest.raises(OutputError, match="bit depth"):
        io.save_rgba(tmp_path / "cut.png", rgb, alpha, bits=10)
    assert _leftovers(tmp_path) == []
    back = io.read_image_array(
        io.save_rgba(tmp_path / "cut16.png", RGB16 / 65535.0, GRAY16 / 65535.0, bits=16)
    )
    assert back.dtype == np.uint16
    np.testing.assert_array_equal(back[:, :, :3], RGB16)
    np.testing.assert_array_equal(back[:, :, 3], GRAY16)
