"""Flat exports: every file is re-read and compared with what was exported."""

from __future__ import annotations

import os

import cv2
import numpy as np
import pytest
from PIL import Image

from mattestudio.core import export
from mattestudio.errors import OutputError

H, W = 12, 17


@pytest.fixture()
def data(make_layers):
    return make_layers(H, W, seed=1)


def leftovers(folder):
    return [n for n in os.listdir(folder) if n.startswith(".") or n.endswith(".part")]


def test_alpha_png_8_and_16_bit(tmp_path, data):
    _, _, alpha, _ = data
    p8 = export.save_alpha_png(tmp_path / "a8.png", alpha)
    p16 = export.save_alpha_png(tmp_path / "a16.png", alpha, bits=16)
    a8 = cv2.imread(str(p8), cv2.IMREAD_UNCHANGED)
    a16 = cv2.imread(str(p16), cv2.IMREAD_UNCHANGED)
    assert a8.dtype == np.uint8 and a8.shape == (H, W)
    assert a16.dtype == np.uint16 and a16.shape == (H, W)
    assert Image.open(p16).mode.startswith("I;16")  # really a 16-bit PNG, not 8 bits scaled
    assert np.abs(a8 / 255.0 - alpha).max() <= 0.5 / 255 + 1e-6
    assert np.abs(a16 / 65535.0 - alpha).max() <= 0.5 / 65535 + 1e-6
    # 16 bits keeps information 8 bits loses
    assert len(np.unique(a16)) > len(np.unique(a8)) or len(np.unique(a8)) == alpha.size


def test_cutout_straight_and_premultiplied(tmp_path, data):
    _, fg, alpha, _ = data
    rgba = np.asarray(Image.open(export.save_cutout(tmp_path / "c.png", fg, alpha)))
    assert rgba.shape == (H, W, 4) and rgba.dtype == np.uint8
    assert np.abs(rgba[..., 3] / 255.0 - alpha).max() <= 0.5 / 255 + 1e-6
    assert np.abs(rgba[..., :3] / 255.0 - fg).max() <= 0.5 / 255 + 1e-6  # straight colors
    pre = np.asarray(
        Image.open(export.save_cutout(tmp_path / "p.png", fg, alpha, premultiplied=True))
    )
    assert np.abs(pre[..., :3] / 255.0 - fg * alpha[..., None]).max() <= 0.5 / 255 + 1e-6
    c16 = cv2.imread(
        str(export.save_cutout(tmp_path / "c16.png", fg, alpha, bits=16)), cv2.IMREAD_UNCHANGED
    )
    assert c16.dtype == np.uint16 and c16.shape == (H, W, 4)
    assert np.abs(c16[..., 3] / 65535.0 - alpha).max() <= 1 / 65535


def test_composite_png(tmp_path, data):
    _, fg, alpha, _ = data
    p = export.save_composite(tmp_path / "comp.png", fg, alpha, (0.0, 1.0, 0.0))
    out = np.asarray(Image.open(p)).astype(np.float32)
    expected = (alpha[..., None] * fg + (1 - alpha[..., None]) * np.array([0, 1, 0])) * 255
    assert out.shape == (H, W, 3)
    assert np.abs(out - expected).max() <= 0.5 + 1e-3
    assert np.array_equal(out[0, 0], [0, 255, 0])  # alpha 0: pure background


def test_composite_jpeg(tmp_path):
    # smooth content: JPEG of random noise is meaningless to compare
    h, w = 32, 48
    ramp = np.linspace(0, 1, w, dtype=np.float32)[None, :].repeat(h, 0)
    fg = np.dstack([ramp, 1 - ramp, np.full_like(ramp, 0.5)])
    alpha = np.linspace(0, 1, h, dtype=np.float32)[:, None].repeat(w, 1)
    p = export.save_composite(tmp_path / "comp.jpeg", fg, alpha, "white", quality=95)
    assert p.read_bytes()[:3] == b"\xff\xd8\xff"
    out = np.asarray(Image.open(p)).astype(np.float32)
    expected = (alpha[..., None] * fg + (1 - alpha[..., None])) * 255
    assert out.shape == (h, w, 3) and np.abs(out - expected).mean() < 3


def test_composite_named_backgrounds(tmp_path, data):
    image, fg, alpha, _ = data
    for bg in ("white", "checker", "blur", "#ff0000"):
        p = export.save_composite(tmp_path / f"{bg.strip('#')}.png", fg, alpha, bg, original=image)
        assert np.asarray(Image.open(p)).shape == (H, W, 3)
    bg_img = np.zeros((5, 7, 3), np.float32)  # another size: covered to fit
    p = export.save_composite(tmp_path / "img.png", fg, np.zeros_like(alpha), bg_img)
    assert np.asarray(Image.open(p)).max() == 0


def test_trimap_png(tmp_path, data):
    *_, trimap = data
    t = cv2.imread(str(export.save_trimap_png(tmp_path / "t.png", trimap)), cv2.IMREAD_UNCHANGED)
    assert t.dtype == np.uint8 and np.array_equal(t, trimap)


def test_export_all(tmp_path, data):
    image, fg, alpha, trimap = data
    out = export.export_all(
        tmp_path, "photo", image, alpha, fg, trimap, background="black", alpha_bits=16
    )
    assert set(out) == set(export.ALL_KINDS)
    assert sorted(os.listdir(tmp_path)) == sorted(p.name for p in out.values())
    assert cv2.imread(str(out["alpha"]), cv2.IMREAD_UNCHANGED).dtype == np.uint16
    # no foreground estimate and no trimap: the image colors are used, the trimap is skipped
    sub = tmp_path / "sub"
    sub.mkdir()
    out = export.export_all(sub, "x", image, alpha, kinds=("cutout", "trimap"))
    assert list(out) == ["cutout"]
    rgba = np.asarray(Image.open(out["cutout"]))
    assert np.abs(rgba[..., :3] / 255.0 - image).max() <= 0.5 / 255 + 1e-6


# --- bad inputs -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "call",
    [
        lambda p, d: export.save_alpha_png(p / "a.jpg", d[2]),
        lambda p, d: export.save_alpha_png(p / "a", d[2]),
        lambda p, d: export.save_cutout(p / "c.jpg", d[1], d[2]),
        lambda p, d: export.save_composite(p / "c.gif", d[1], d[2], "white"),
        lambda p, d: export.save_trimap_png(p / "t.jpg", d[3]),
    ],
)
def test_unsupported_extension(tmp_path, data, call):
    with pytest.raises(OutputError, match="unsupported file type") as info:
        call(tmp_path, data)
    assert info.value.path is not None and str(info.value.path) in str(info.value)
    assert os.listdir(tmp_path) == []


def test_missing_or_unwritable_folder(tmp_path, data):
    _, fg, alpha, _trimap = data
    target = tmp_path / "nope" / "a.png"
    with pytest.raises(OutputError, match="does not exist") as info:
        export.save_alpha_png(target, alpha)
    assert "a.png" in str(info.value)
    (tmp_path / "file").write_text("x")  # a file used as a folder
    with pytest.raises(OutputError, match="cut.png"):
        export.save_cutout(tmp_path / "file" / "cut.png", fg, alpha)
    with pytest.raises(OutputError, match="does not exist"):
        export.export_all(tmp_path / "nope", "x", fg, alpha)
    assert sorted(os.listdir(tmp_path)) == ["file"]


@pytest.mark.skipif(
    os.name != "posix" or os.geteuid() == 0, reason="root ignores folder permissions"
)
def test_read_only_folder(tmp_path, data):
    ro = tmp_path / "ro"
    ro.mkdir()
    ro.chmod(0o500)
    try:
        with pytest.raises(OutputError, match="a.png"):
            export.save_alpha_png(ro / "a.png", data[2])
    finally:
        ro.chmod(0o700)
    assert os.listdir(ro) == []


def test_shape_mismatch_and_bad_background(tmp_path, data):
    _, fg, alpha, trimap = data
    with pytest.raises(OutputError, match="foreground"):
        export.save_cutout(tmp_path / "c.png", fg[:5], alpha)
    with pytest.raises(OutputError, match="background"):
        export.save_composite(tmp_path / "c.png", fg, alpha, "no-such-color-or-file")
    with pytest.raises(OutputError, match="uint8"):
        export.save_trimap_png(tmp_path / "t.png", trimap.astype(np.float32))
    with pytest.raises(OutputError, match="WebP"):
        export.save_cutout(tmp_path / "c.webp", fg, alpha, bits=16)
    assert os.listdir(tmp_path) == []


def test_failed_write_keeps_old_file(tmp_path, data, monkeypatch):
    _, _, alpha, _ = data
    target = export.save_alpha_png(tmp_path / "a.png", alpha)
    before = target.read_bytes()

    def boom(fd):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(os, "fsync", boom)
    with pytest.raises(OutputError, match="No space left"):
        export.save_alpha_png(target, 1 - alpha)
    assert target.read_bytes() == before
    assert leftovers(tmp_path) == []
