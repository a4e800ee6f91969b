"""Layered exports: OpenRaster (.ora) and Photoshop (.psd).

Both files hold the same four layers, bottom to top:

- "Original"    the photo, hidden (kept for reference and re-masking; hidden so that hiding
                "Background" shows the cut-out over transparency, not over the photo),
- "Background"  the chosen background (color, image, checkerboard or blurred photo), opaque,
- "Cutout"      the estimated foreground colors with the alpha,
- "Trimap"      the trimap as gray, hidden.

So the visible result is exactly the composite, and hiding "Background" shows the cut-out alone.
The layering was designed for GIMP, Krita, Photoshop and Photopea: full-canvas layers at offset
(0, 0), normal blending, 100 % opacity, 8 bits per channel (the depth every one of them reads).

In the PSD the cut-out is an opaque RGB layer with the alpha as a real *layer mask* (written with
psd-tools' ``Layer.create_mask`` and ``create_pixel_layer_from_array``, as in psd-tools 1.26; older
releases lack them), so the matte stays editable with a brush in
Photoshop, Photopea, GIMP and Krita (Krita shows it as a transparency mask). ``mask=False`` writes
RGBA transparency instead. OpenRaster has no layer masks in its baseline spec, so the ORA cut-out
is an RGBA PNG with straight alpha.

Both writers take ``progress`` (fraction, text: one report per layer built and per layer written)
and ``cancel`` (a CancelToken, looked at between those steps: Cancelled, and no file is left).
"""

from __future__ import annotations

import io
import os
import zipfile
from pathlib import Path
from xml.etree import ElementTree as ET

import numpy as np

from mattestudio.core import io as _io
from mattestudio.core.atomic import write_with_atomic
from mattestudio.core.compositing import Background, background_array
from mattestudio.core.ziplimits import png_limit, read_member
from mattestudio.errors import Cancelled, ImageLoadError, OutputError
from mattestudio.types import CancelToken, ProgressFn

PathLike = _io.PathLike

ORA_MIMETYPE = b"image/openraster"
ORA_VERSION = "0.0.5"
THUMBNAIL_MAX = 256
#: The PSD format (not PSB) allows at most 30000 pixels a side.
PSD_MAX_SIDE = 30000


class _Steps:
    """Progress over ``total`` calls (the first reports 0, the last 1), with a cancel check
    at each one."""

    def __init__(self, total: int, progress: ProgressFn | None, cancel: CancelToken | None):
        self.total, self.done = total, 0
        self.progress, self.cancel = progress, cancel

    def __call__(self, text: str) -> None:
        if self.cancel is not None and self.cancel.cancelled:
            raise Cancelled()
        if self.progress is not None:
            self.progress(min(self.done / max(self.total - 1, 1), 1.0), text)
        self.done += 1


def _layers(
    path: Path, image, foreground, alpha, background: Background, trimap, step=lambda text: None
):
    """Check the inputs and build the layer list bottom -> top as (name, visible, uint8 RGB(A)).
    ``step(text)`` is called before each of its 5 stages."""
    alpha = np.asarray(alpha)
    if alpha.ndim == 3 and alpha.shape[2] == 1:
        alpha = alpha[:, :, 0]
    if alpha.ndim != 2 or alpha.size == 0:
        raise OutputError(f"alpha must be an H x W array, got shape {alpha.shape}", path)
    h, w = alpha.shape
    alpha = _io.as_gray_float(alpha)

    def rgb(arr, what):
        arr = np.asarray(arr)
        if arr.ndim < 2 or arr.shape[:2] != (h, w):
            raise OutputError(
                f"{what} is {arr.shape[1] if arr.ndim > 1 else '?'}x{arr.shape[0]} "
                f"but the alpha is {w}x{h}",
                path,
            )
        return _io.as_rgb_float(arr, what)

    image = rgb(image, "image")
    fg = image if foreground is None else rgb(foreground, "foreground")
    step("building the background layer")
    try:
        bg = background_array(background, h, w, original=image)
    except Exception as exc:  # bad color spec, unreadable background image
        raise OutputError(f"cannot build the background: {exc}", path) from exc
    a8 = _io.to_uint(alpha)
    layers = [("Background", True, _io.to_uint(bg))]
    del bg
    step("building the original layer")
    layers.insert(0, ("Original", False, _io.to_uint(image)))
    step("building the cut-out layer")
    layers.append(("Cutout", True, np.dstack([_io.to_uint(fg), a8])))
    step("building the trimap layer")
    if trimap is not None:
        trimap = np.asarray(trimap)
        if trimap.shape != (h, w):
            raise OutputError(f"trimap has shape {trimap.shape} but the alpha is {h} x {w}", path)
        layers.append(("Trimap", False, np.repeat(trimap.astype(np.uint8)[:, :, None], 3, axis=2)))
    # The visible stack (opaque background under the cut-out) is the composite.
    step("merging the layers")
    af = a8[:, :, None].astype(np.float32) / 255.0
    merged = _io.to_uint(af * (layers[2][2][:, :, :3] / 255.0) + (1 - af) * (layers[1][2] / 255.0))
    return layers, merged


def _fsync(path: Path) -> None:
    # write_with_atomic renames whatever the writer left; flush it to disk first so a crash
    # right after the rename cannot leave an empty file under the final name.
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _write(path: Path, kind: str, writer) -> Path:
    """Atomic write; library errors other than OSError become an OutputError naming the file."""

    def guarded(tmp: Path) -> None:
        try:
            writer(tmp)
        except (OSError, OutputError, Cancelled):
            raise
        except Exception as exc:
            raise OutputError(f"could not write the {kind} file: {exc}", path) from exc
        _fsync(tmp)

    return write_with_atomic(path, guarded)


# ---------------------------------------------------------------------------------------------
# OpenRaster


def _png(arr: np.ndarray) -> bytes:
    return _io.encode(arr, ".png")


def _thumbnail(merged: np.ndarray) -> np.ndarray:
    import cv2

    h, w = merged.shape[:2]
    scale = min(1.0, THUMBNAIL_MAX / max(h, w))
    if scale >= 1.0:
        return merged
    size = (max(1, round(w * scale)), max(1, round(h * scale)))
    return cv2.resize(merged, size, interpolation=cv2.INTER_AREA)


def save_ora(
    path: PathLike,
    image: np.ndarray,
    foreground: np.ndarray | None,
    alpha: np.ndarray,
    background: Background = "white",
    trimap: np.ndarray | None = None,
    progress: ProgressFn | None = None,
    cancel: CancelToken | None = None,
) -> Path:
    """Write an OpenRaster file (GIMP, Krita, MyPaint) with the layers described in the module doc.

    ``foreground`` None uses the image colors. ``trimap`` None leaves the Trimap layer out.
    The zip starts with the uncompressed ``mimetype`` member, as the spec requires, and carries
    ``mergedimage.png`` and ``Thumbnails/thumbnail.png`` for viewers and file managers.
    """
    path = Path(path)
    if path.suffix.lower() != ".ora":
        raise OutputError(
            f"unsupported file type {path.suffix or '(none)'!r} for OpenRaster; use .ora", path
        )
    step = _Steps(5 + 3 + (4 if trimap is not None else 3), progress, cancel)
    layers, merged = _layers(path, image, foreground, alpha, background, trimap, step)
    h, w = merged.shape[:2]

    root = ET.Element(
        "image", {"version": ORA_VERSION, "w": str(w), "h": str(h), "xres": "72", "yres": "72"}
    )
    stack = ET.SubElement(root, "stack")
    members = []
    # stack.xml lists the topmost layer first.
    for i, (name, visible, arr) in reversed(list(enumerate(layers))):
        src = f"data/layer{i}.png"
        ET.SubElement(
            stack,
            "layer",
            {
                "name": name,
                "src": src,
                "x": "0",
                "y": "0",
                "opacity": "1.0",
                "visibility": "visible" if visible else "hidden",
                "composite-op": "svg:src-over",
            },
        )
        members.append((src, arr))
    xml = b"<?xml version='1.0' encoding='UTF-8'?>\n" + ET.tostring(root, encoding="utf-8")

    def writer(tmp: Path) -> None:
        with zipfile.ZipFile(tmp, "w") as zf:
            zf.writestr(zipfile.ZipInfo("mimetype"), ORA_MIMETYPE, compress_type=zipfile.ZIP_STORED)
            zf.writestr("stack.xml", xml, compress_type=zipfile.ZIP_DEFLATED)
            for src, arr in members:  # PNGs are compressed already
                step(f"writing layer {src}")
                zf.writestr(src, _png(arr), compress_type=zipfile.ZIP_STORED)
            step("writing the merged image")
            zf.writestr("mergedimage.png", _png(merged), compress_type=zipfile.ZIP_STORED)
            step("writing the thumbnail")
            zf.writestr(
                "Thumbnails/thumbnail.png",
                _png(_thumbnail(merged)),
                compress_type=zipfile.ZIP_STORED,
            )
        step("done")

    return _write(path, "OpenRaster", writer)


def _decode_png(data: bytes, max_pixels: int, fail) -> np.ndarray:
    from PIL import Image

    with Image.open(io.BytesIO(data)) as im:
        # The header is read lazily: a small PNG announcing a huge image is refused undecoded.
        if im.size[0] * im.size[1] > max_pixels:
            raise fail(f"a layer of {im.size[0]}x{im.size[1]} pixels is larger than the canvas")
        return np.asarray(im.convert("RGBA"))


#: stack.xml of a layered file is a few kilobytes; more is a damaged or hostile file.
MAX_STACK_BYTES = 1 << 20


def read_ora(path: PathLike) -> list[tuple[str, bool, np.ndarray]]:
    """Read an OpenRaster file's layers, **bottom to top** (like iterating a psd-tools PSDImage).

    Returns [(name, visible, H x W x 4 uint8 RGBA)], each layer placed on the full canvas at its
    x/y offset. Nested stacks are flattened in order. Raises ImageLoadError naming the file.
    """
    path = Path(path)

    def fail(msg: str) -> ImageLoadError:
        return ImageLoadError(msg, path)

    try:
        with zipfile.ZipFile(path) as zf:
            if zf.namelist()[:1] != ["mimetype"] or zf.read("mimetype").strip() != ORA_MIMETYPE:
                raise ImageLoadError(
                    "not an OpenRaster file (no image/openraster mimetype first)", path
                )
            root = ET.fromstring(read_member(zf, "stack.xml", MAX_STACK_BYTES, fail))
            w, h = int(root.get("w", "")), int(root.get("h", ""))
            if w < 1 or h < 1 or w * h > _io.max_pixels():
                raise fail(f"OpenRaster canvas of {w}x{h} pixels is empty or too large")
            out = []
            for el in root.iter("layer"):  # document order = top first
                data = read_member(zf, el.get("src", ""), png_limit((h, w, 4)), fail)
                rgba = _decode_png(data, w * h, fail)
                x, y = int(float(el.get("x", 0))), int(float(el.get("y", 0)))
                canvas = np.zeros((h, w, 4), np.uint8)
                ys, xs = max(0, y), max(0, x)
                ye, xe = min(h, y + rgba.shape[0]), min(w, x + rgba.shape[1])
                if ye > ys and xe > xs:
                    canvas[ys:ye, xs:xe] = rgba[ys - y : ye - y, xs - x : xe - x]
                out.append(
                    (el.get("name", ""), el.get("visibility", "visible") != "hidden", canvas)
                )
    except ImageLoadError:
        raise
    except FileNotFoundError as exc:
        raise ImageLoadError("file not found", path) from exc
    except (zipfile.BadZipFile, KeyError, ET.ParseError, TypeError, ValueError, OSError) as exc:
        raise ImageLoadError(f"corrupt or truncated OpenRaster file ({exc})", path) from exc
    return out[::-1]


def read_ora_merged(path: PathLike) -> np.ndarray:
    """The ``mergedimage.png`` of an OpenRaster file as H x W x 4 uint8."""
    path = Path(path)
    try:
        with zipfile.ZipFile(path) as zf:
            root = ET.fromstring(
                read_member(zf, "stack.xml", MAX_STACK_BYTES, lambda m: ImageLoadError(m, path))
            )
            shape = (int(root.get("h", "")), int(root.get("w", "")), 4)
            if shape[0] * shape[1] > _io.max_pixels():
                raise ImageLoadError("OpenRaster canvas too large", path)
            data = read_member(
                zf, "mergedimage.png", png_limit(shape), lambda m: ImageLoadError(m, path)
            )
            return _decode_png(data, shape[0] * shape[1], lambda m: ImageLoadError(m, path))
    except ImageLoadError:
        raise
    except (zipfile.BadZipFile, KeyError, ET.ParseError, TypeError, ValueError, OSError) as exc:
        raise ImageLoadError(f"corrupt or truncated OpenRaster file ({exc})", path) from exc


# ---------------------------------------------------------------------------------------------
# Photoshop


def save_psd(
    path: PathLike,
    image: np.ndarray,
    foreground: np.ndarray | None,
    alpha: np.ndarray,
    background: Background = "white",
    trimap: np.ndarray | None = None,
    mask: bool = True,
    progress: ProgressFn | None = None,
    cancel: CancelToken | None = None,
) -> Path:
    """Write an 8-bit RGB Photoshop file (Photoshop, Photopea, GIMP, Krita) with the layers
    described in the module doc.

    ``mask`` True: "Cutout" is the opaque foreground colors plus the alpha as a layer mask
    (white = shown). False: "Cutout" is RGBA with the alpha as layer transparency.
    The merged image stored in the file (used by viewers and thumbnails) is rendered by psd-tools.
    """
    from PIL import Image
    from psd_tools import PSDImage

    path = Path(path)
    if path.suffix.lower() != ".psd":
        raise OutputError(
            f"unsupported file type {path.suffix or '(none)'!r} for Photoshop; use .psd", path
        )
    # psd-tools' save (the channels' compression) is about half of the time: counted as
    # as many steps as the layers.
    n = 4 if trimap is not None else 3
    step = _Steps(5 + 2 * n + 1, progress, cancel)
    layers, merged = _layers(path, image, foreground, alpha, background, trimap, step)
    h, w = merged.shape[:2]
    if max(h, w) > PSD_MAX_SIDE:
        raise OutputError(
            f"image is {w}x{h}; PSD files hold at most {PSD_MAX_SIDE} pixels a side "
            "(export OpenRaster instead)",
            path,
        )

    def writer(tmp: Path) -> None:
        psd = PSDImage.new("RGB", (w, h), color=(255, 255, 255))
        for name, visible, arr in layers:  # layers are appended on top
            step(f"adding layer {name}")
            if name == "Cutout" and mask:
                layer = psd.create_pixel_layer_from_array(
                    np.ascontiguousarray(arr[:, :, :3]), name=name
                )
                layer.create_mask(Image.fromarray(np.ascontiguousarray(arr[:, :, 3])))
            else:
                # From an array, a 4th channel becomes layer transparency (a PIL RGBA image would
                # be turned into a mask by psd-tools in an RGB document).
                layer = psd.create_pixel_layer_from_array(np.ascontiguousarray(arr), name=name)
            layer.visible = visible
        step("compressing and writing the layers")
        step.done += n - 1
        psd.save(tmp)
        step("done")

    return _write(path, "PSD", writer)
