"""OpenRaster and PSD exports, re-read with our ORA reader and with psd-tools."""

from __future__ import annotations

import io
import os
import zipfile
from xml.etree import ElementTree as ET

import numpy as np
import pytest
from PIL import Image
from psd_tools import PSDImage

from mattestudio.core import layered
from mattestudio.core.io import to_uint
from mattestudio.errors import ImageLoadError, OutputError

H, W = 10, 14
ORDER = ["Original", "Background", "Cutout", "Trimap"]  # bottom -> top
VISIBLE = {"Original": False, "Background": True, "Cutout": True, "Trimap": False}
BG = (0.2, 0.4, 0.6)


@pytest.fixture()
def data(make_layers):
    return make_layers(H, W, seed=2)


def expected_merged(fg, alpha):
    a = to_uint(alpha)[..., None] / 255.0
    return a * to_uint(fg) + (1 - a) * to_uint(np.broadcast_to(np.float32(BG), fg.shape))


def check_layers(layers, image, fg, alpha, trimap):
    """layers: bottom -> top (name, visible, H x W x 3|4 uint8 RGB(A) with alpha applied)."""
    assert [n for n, _, _ in layers] == ORDER
    assert {n: v for n, v, _ in layers} == VISIBLE
    px = {n: a for n, _, a in layers}
    for arr in px.values():
        assert arr.shape[:2] == (H, W)
    assert np.array_equal(px["Original"][..., :3], to_uint(image))
    assert np.array_equal(
        px["Background"][..., :3], to_uint(np.broadcast_to(np.float32(BG), (H, W, 3)))
    )
    assert np.array_equal(px["Trimap"][..., 0], trimap)


def leftovers(folder):
    return [n for n in os.listdir(folder) if n.startswith(".") or n.endswith(".part")]


# --- OpenRaster --------------------------------------------------------------------------------


def test_ora_structure_and_layers(tmp_path, data):
    image, fg, alpha, trimap = data
    p = layered.save_ora(tmp_path / "x.ora", image, fg, alpha, BG, trimap)
    with zipfile.ZipFile(p) as zf:
        first = zf.infolist()[0]
        assert first.filename == "mimetype" and first.compress_type == zipfile.ZIP_STORED
        assert zf.read("mimetype") == b"image/openraster"
        assert p.read_bytes()[30:38] == b"mimetype"  # name right after the first local header
        names = zf.namelist()
        assert {"stack.xml", "mergedimage.png", "Thumbnails/thumbnail.png"} <= set(names)
        root = ET.fromstring(zf.read("stack.xml"))
        assert (root.get("w"), root.get("h")) == (str(W), str(H))
        assert [el.get("name") for el in root.iter("layer")] == ORDER[::-1]  # top first in XML
    layers = layered.read_ora(p)
    check_layers(layers, image, fg, alpha, trimap)
    cut = {n: a for n, _, a in layers}["Cutout"]
    assert np.array_equal(cut[..., :3], to_uint(fg)) and np.array_equal(cut[..., 3], to_uint(alpha))
    merged = layered.read_ora_merged(p)
    assert merged.shape == (H, W, 4) and (merged[..., 3] == 255).all()
    assert np.abs(merged[..., :3] - expected_merged(fg, alpha)).max() < 1.01
    assert leftovers(tmp_path) == []


def test_ora_thumbnail_is_small(tmp_path):
    h, w = 300, 520
    img = np.zeros((h, w, 3), np.float32)
    p = layered.save_ora(tmp_path / "big.ora", img, None, np.ones((h, w), np.float32), "white")
    with zipfile.ZipFile(p) as zf:
        thumb = Image.open(io.BytesIO(zf.read("Thumbnails/thumbnail.png")))
    assert max(thumb.size) == 256 and thumb.size[0] > thumb.size[1]
    # no trimap given: no Trimap layer; no foreground: the image colors
    assert [n for n, _, _ in layered.read_ora(p)] == ORDER[:3]


def test_read_ora_rejects_bad_files(tmp_path):
    bad = tmp_path / "bad.ora"
    bad.write_bytes(b"PK\x03\x04 truncated")
    with pytest.raises(ImageLoadError, match="bad.ora"):
        layered.read_ora(bad)
    with zipfile.ZipFile(tmp_path / "notora.ora", "w") as zf:
        zf.writestr("mimetype", "image/png")
    with pytest.raises(ImageLoadError, match="not an OpenRaster"):
        layered.read_ora(tmp_path / "notora.ora")


# --- PSD ---------------------------------------------------------------------------------------


def psd_layers(psd):
    out = []
    for layer in psd:  # psd-tools iterates bottom -> top
        arr = layer.numpy()  # float in [0, 1], RGBA, the layer's own pixels (mask not applied)
        out.append((layer.name, layer.visible, np.rint(arr * 255).astype(np.uint8)))
    return out


def test_psd_layers_and_mask(tmp_path, data):
    image, fg, alpha, trimap = data
    p = layered.save_psd(tmp_path / "x.psd", image, fg, alpha, BG, trimap)
    psd = PSDImage.open(p)
    assert psd.size == (W, H) and psd.depth == 8 and psd.channels == 3
    layers = psd_layers(psd)
    check_layers(layers, image, fg, alpha, trimap)
    for layer in psd:
        assert layer.bbox == (0, 0, W, H) and layer.opacity == 255
    cut = psd[2]
    assert cut.has_mask() and not cut.mask.disabled
    assert cut.mask.bbox == (0, 0, W, H)
    mask = np.asarray(cut.mask.topil())
    assert mask.dtype == np.uint8 and np.array_equal(mask, to_uint(alpha))
    color = {n: a for n, _, a in layers}["Cutout"]
    assert np.array_equal(color[..., :3], to_uint(fg))
    # merged image stored in the file (what viewers show) = the composite
    merged = np.asarray(psd.topil().convert("RGB")).astype(np.float32)
    assert np.abs(merged - expected_merged(fg, alpha)).max() < 1.01
    # psd-tools' own rendering of the layers agrees
    rendered = np.asarray(psd.composite(ignore_preview=True).convert("RGB")).astype(np.float32)
    assert np.abs(rendered - expected_merged(fg, alpha)).max() < 1.01
    assert leftovers(tmp_path) == []


def test_psd_without_mask_uses_transparency(tmp_path, data):
    image, fg, alpha, _trimap = data
    p = layered.save_psd(tmp_path / "t.psd", image, fg, alpha, BG, None, mask=False)
    psd = PSDImage.open(p)
    assert [layer.name for layer in psd] == ORDER[:3]
    cut = psd[2]
    assert not cut.has_mask()
    rgba = np.rint(cut.numpy() * 255).astype(np.uint8)
    assert np.array_equal(rgba[..., 3], to_uint(alpha))
    nz = rgba[..., 3] > 0  # color under zero alpha is not defined in a transparent layer
    assert np.array_equal(rgba[..., :3][nz], to_uint(fg)[nz])


# --- bad inputs --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "func,name",
    [(layered.save_ora, "x.psd"), (layered.save_psd, "x.ora"), (layered.save_psd, "x.png")],
)
def test_wrong_extension(tmp_path, data, func, name):
    image, fg, alpha, trimap = data
    with pytest.raises(OutputError, match="unsupported file type") as info:
        func(tmp_path / name, image, fg, alpha, BG, trimap)
    assert name in str(info.value)
    assert os.listdir(tmp_path) == []


@pytest.mark.parametrize("func,name", [(layered.save_ora, "x.ora"), (layered.save_psd, "x.psd")])
def test_unwritable_folder_and_size_mismatch(tmp_path, data, func, name):
    image, fg, alpha, trimap = data
    with pytest.raises(OutputError, match="does not exist"):
        func(tmp_path / "missing" / name, image, fg, alpha, BG, trimap)
    (tmp_path / "file").write_text("")
    with pytest.raises(OutputError, match=name):
        func(tmp_path / "file" / name, image, fg, alpha, BG, trimap)
    with pytest.raises(OutputError, match="trimap"):
        func(tmp_path / name, image, fg, alpha, BG, trimap[:3])
    with pytest.raises(OutputError, match="foreground"):
        func(tmp_path / name, image, fg[:, :4], alpha, BG, trimap)
    assert sorted(os.listdir(tmp_path)) == ["file"]


def test_failure_mid_write_leaves_old_file(tmp_path, data, monkeypatch):
    image, fg, alpha, trimap = data
    p = layered.save_psd(tmp_path / "x.psd", image, fg, alpha, BG, trimap)
    before = p.read_bytes()

    def broken_save(self, fp, *a, **k):
        with open(fp, "wb") as f:
            f.write(b"8BPS half a file")
        raise RuntimeError("encoder exploded")

    monkeypatch.setattr(PSDImage, "save", broken_save)
    with pytest.raises(OutputError, match="encoder exploded") as info:
        layered.save_psd(p, image, fg, alpha, BG, trimap)
    assert "x.psd" in str(info.value)
    assert p.read_bytes() == before
    assert leftovers(tmp_path) == []


def _ora(path, stack: str, members: dict) -> None:
    with zipfile.ZipFile(path, "w") as zf:
        zf.writestr(
            zipfile.ZipInfo("mimetype"), "image/openraster", compress_type=zipfile.ZIP_STORED
        )
        zf.writestr("stack.xml", stack, compress_type=zipfile.ZIP_DEFLATED)
        for name, data in members.items():
            zf.writestr(name, data, compress_type=zipfile.ZIP_DEFLATED)


def _png(w: int, h: int) -> bytes:
    import io as _bio

    from PIL import Image

    buf = _bio.BytesIO()
    Image.new("L", (w, h)).save(buf, format="PNG", optimize=True)
    return buf.getvalue()


def test_read_ora_refuses_bombs_without_inflating(tmp_path):
    layer = '<image w="{w}" h="{h}"><stack><layer name="a" src="data/a.png"/></stack></image>'
    # stack.xml that inflates to 64 MB (a zip bomb of a few tens of kB)
    p = tmp_path / "xmlbomb.ora"
    _ora(p, "<image " + " " * (64 << 20) + "/>", {})
    with pytest.raises(ImageLoadError, match="xmlbomb.ora.*zip bomb"):
        layered.read_ora(p)
    # a canvas announced larger than any image we accept
    p = tmp_path / "huge.ora"
    _ora(p, layer.format(w=100_000, h=100_000), {"data/a.png": _png(4, 4)})
    with pytest.raises(ImageLoadError, match="huge.ora.*too large"):
        layered.read_ora(p)
    # a small PNG (all zeros compress well) announcing a layer far larger than its canvas
    p = tmp_path / "layerbomb.ora"
    _ora(p, layer.format(w=8, h=8), {"data/a.png": _png(8000, 8000)})
    with pytest.raises(ImageLoadError, match="layerbomb.ora.*larger than the canvas"):
        layered.read_ora(p)
    # the same shapes within limits read fine
    p = tmp_path / "ok.ora"
    _ora(p, layer.format(w=8, h=8), {"data/a.png": _png(8, 8)})
    [(name, visible, px)] = layered.read_ora(p)
    assert name == "a" and visible and px.shape == (8, 8, 4)


# --- progress and cancel -----------------------------------------------------------------------


@pytest.mark.parametrize("func,name", [(layered.save_ora, "x.ora"), (layered.save_psd, "x.psd")])
@pytest.mark.parametrize("with_trimap", [True, False])
def test_writers_report_each_layer_from_0_to_1(tmp_path, data, func, name, with_trimap):
    image, fg, alpha, trimap = data
    seen: list[tuple[float, str]] = []
    tri = trimap if with_trimap else None
    func(tmp_path / name, image, fg, alpha, BG, tri, progress=lambda f, t: seen.append((f, t)))
    fractions = [f for f, _ in seen]
    assert fractions[0] == 0.0 and fractions[-1] == 1.0
    assert fractions == sorted(fractions) and len(set(fractions)) == len(fractions)
    layers = ORDER if with_trimap else ORDER[:3]
    assert all(any(n in t for _, t in seen) for n in layers if name.endswith(".psd"))
    assert len(seen) >= len(layers) + 5


@pytest.mark.parametrize("func,name", [(layered.save_ora, "x.ora"), (layered.save_psd, "x.psd")])
def test_a_cancel_between_layers_leaves_no_file(tmp_path, data, func, name):
    from mattestudio.errors import Cancelled
    from mattestudio.types import CancelToken

    image, fg, alpha, trimap = data
    for after in (0, 3, 7):
        token = CancelToken()
        calls = []

        def report(f, text, calls=calls, token=token, after=after):
            calls.append(f)
            if len(calls) > after:
                token.cancel()

        with pytest.raises(Cancelled):
            func(tmp_path / name, image, fg, alpha, BG, trimap, progress=report, cancel=token)
        assert len(calls) == after + 1  # the next step looked at the token and stopped
        assert os.listdir(tmp_path) == []
