"""Reading images and trimaps, writing alpha, cut-outs and composites.

Pillow reads the header first so that the pixel-count limit refuses a decompression bomb before
any pixel is decoded, and so that a truncated file is reported rather than half-decoded. OpenCV
decodes the files with more than 8 bits per channel, which Pillow would reduce to 8 bits.
"""

from __future__ import annotations

import functools
import io
import os
import warnings
from pathlib import Path

import numpy as np

from mattestudio.core.atomic import write_bytes_atomic
from mattestudio.errors import ImageLoadError, OutputError

PathLike = str | os.PathLike

#: Largest image accepted, in pixels (default 200 MP); override with MATTESTUDIO_MAX_PIXELS.
DEFAULT_MAX_PIXELS = 200_000_000

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".tif", ".tiff", ".webp", ".bmp")
_EXIF_ORIENTATION = 0x0112


def max_pixels() -> int:
    try:
        return int(os.environ.get("MATTESTUDIO_MAX_PIXELS", DEFAULT_MAX_PIXELS))
    except ValueError:
        return DEFAULT_MAX_PIXELS


def _check_file(path: Path) -> None:
    if not path.exists():
        raise ImageLoadError("file not found", path)
    if path.is_dir():
        raise ImageLoadError("is a folder, not an image file", path)


def _check_pixels(w: int, h: int, path: Path) -> None:
    """Refuse an empty image or one over max_pixels(), from its header's size alone."""
    if w == 0 or h == 0:
        raise ImageLoadError("image is empty (0 pixels)", path)
    limit = max_pixels()
    if w * h > limit:
        raise ImageLoadError(
            f"image is {w}x{h} = {w * h:,} pixels, over the limit of {limit:,} pixels "
            "(set MATTESTUDIO_MAX_PIXELS to raise it)",
            path,
        )


def _orientation(im) -> int:
    """The EXIF orientation (1 to 8) of an opened Pillow image."""
    try:
        return int(im.getexif().get(_EXIF_ORIENTATION, 1))
    except Exception:  # a broken EXIF block must not stop the image from loading
        return 1


def _decode_error(exc: Exception, path: Path) -> ImageLoadError:
    """The ImageLoadError for what Pillow raised opening or decoding ``path``."""
    from PIL import UnidentifiedImageError

    if isinstance(exc, UnidentifiedImageError):
        return ImageLoadError(
            "not an image, or a format that cannot be read "
            f"(supported: {', '.join(s[1:] for s in IMAGE_SUFFIXES)})",
            path,
        )
    return ImageLoadError(f"corrupt or truncated image ({exc})", path)


def _read_bytes(path: Path) -> bytes:
    _check_file(path)
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise ImageLoadError(f"cannot read: {exc.strerror or exc}", path) from exc
    if not data:
        raise ImageLoadError("file is empty (0 bytes)", path)
    return data


def _high_bit_depth(data: bytes, pil_image) -> bool:
    """True when the file stores more than 8 bits per channel."""
    if pil_image.mode in ("I;16", "I;16B", "I;16L", "I", "F"):
        return True
    if data[:8] == b"\x89PNG\r\n\x1a\n" and len(data) > 24:
        return data[24] == 16  # IHDR bit depth
    if pil_image.format == "TIFF":
        bits = pil_image.tag_v2.get(258)
        if bits is not None:
            bits = bits if isinstance(bits, tuple) else (bits,)
            return max(bits) > 8
    return False


def _orient(arr: np.ndarray, orientation: int) -> np.ndarray:
    """Apply an EXIF orientation (1..8) to an H x W (x C) array."""
    ops = {
        2: lambda a: a[:, ::-1],
        3: lambda a: a[::-1, ::-1],
        4: lambda a: a[::-1],
        5: lambda a: np.swapaxes(a, 0, 1),
        6: lambda a: np.swapaxes(a, 0, 1)[:, ::-1],
        7: lambda a: np.swapaxes(a, 0, 1)[::-1, ::-1],
        8: lambda a: np.swapaxes(a, 0, 1)[::-1],
    }
    op = ops.get(orientation)
    return np.ascontiguousarray(op(arr)) if op else arr


@functools.cache
def _cv2_orients_tiff() -> bool:
    """True when OpenCV's TIFF decoder applies the orientation tag itself (OpenCV 5 does, even with
    IMREAD_UNCHANGED, where PNG and JPEG are left as stored). Probed once on a 2 x 1 image so that
    an orientation is never applied twice."""
    import cv2
    from PIL import Image

    im = Image.fromarray(np.array([[1, 2]], np.uint16))
    exif = im.getexif()
    exif[_EXIF_ORIENTATION] = 6
    buf = io.BytesIO()
    im.save(buf, format="TIFF", exif=exif.tobytes())
    arr = cv2.imdecode(np.frombuffer(buf.getvalue(), np.uint8), cv2.IMREAD_UNCHANGED)
    return arr is not None and arr.shape[:2] == (2, 1)


def image_size(path: PathLike) -> tuple[int, int]:
    """(height, width) of an image file as it will load (EXIF orientation applied), read from its
    header without decoding a pixel, so that a trimap can be checked before a huge image is decoded.
    Raises ImageLoadError like read_image_array (missing, not an image, over the pixel limit)."""
    from PIL import Image

    path = Path(path)
    _check_file(path)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            old_limit = Image.MAX_IMAGE_PIXELS
            Image.MAX_IMAGE_PIXELS = None  # our own limit applies below
            try:
                with Image.open(path) as im:
                    w, h = im.size
                    orientation = _orientation(im)
            finally:
                Image.MAX_IMAGE_PIXELS = old_limit
    except (OSError, SyntaxError, ValueError) as exc:
        raise _decode_error(exc, path) from exc
    _check_pixels(w, h, path)
    return (w, h) if orientation in (5, 6, 7, 8) else (h, w)


def read_image_array(path: PathLike) -> np.ndarray:
    """Decode an image file to a numpy array as stored (uint8 or uint16), EXIF orientation applied.

    Returns H x W (grayscale), H x W x 3 (RGB) or H x W x 4 (RGBA). Palette images are expanded.
    Raises ImageLoadError with the file name and the reason.
    """
    from PIL import Image

    path = Path(path)
    data = _read_bytes(path)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            old_limit = Image.MAX_IMAGE_PIXELS
            Image.MAX_IMAGE_PIXELS = None  # our own limit applies below, before decoding
            try:
                im = Image.open(io.BytesIO(data))
            finally:
                Image.MAX_IMAGE_PIXELS = old_limit
            _check_pixels(*im.size, path)
            orientation = _orientation(im)
            im.load()  # decodes everything: a truncated file fails here
    except ImageLoadError:
        raise
    except (OSError, SyntaxError, ValueError) as exc:
        raise _decode_error(exc, path) from exc

    # OpenCV decodes files with more than 8 bits per channel (Pillow would reduce them to 8 bits)
    # and TIFFs with an orientation tag: Pillow transposes TIFFs itself while loading, and Pillow 13
    # decodes orientations 5-8 with width and height swapped. (OpenCV reads such TIFFs through
    # libtiff's RGBA interface, so an alpha channel in an oriented 8-bit TIFF comes back
    # premultiplied; a rare combination, and far better than scrambled pixels.)
    oriented_tiff = im.format == "TIFF" and orientation != 1
    if oriented_tiff or _high_bit_depth(data, im):
        import cv2

        arr = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_UNCHANGED)
        if arr is None:
            raise ImageLoadError("corrupt image (cannot decode its pixels)", path)
        if arr.ndim == 3 and arr.shape[2] == 1:
            arr = arr[:, :, 0]
        elif arr.ndim == 3 and arr.shape[2] == 2:  # gray + alpha
            arr = arr[:, :, [0, 0, 0, 1]]
        elif arr.ndim == 3 and arr.shape[2] == 3:
            arr = arr[:, :, ::-1]
        elif arr.ndim == 3 and arr.shape[2] == 4:
            arr = arr[:, :, [2, 1, 0, 3]]
        if arr.dtype not in (np.uint8, np.uint16):
            arr = np.clip(arr.astype(np.float64) * 65535.0, 0, 65535).astype(np.uint16)
        arr = np.ascontiguousarray(arr)
        if im.format == "TIFF" and _cv2_orients_tiff():
            return arr  # OpenCV's TIFF decoder applied the orientation tag already
        return _orient(arr, orientation)

    pixels: Image.Image = im
    if im.mode == "P":
        pixels = im.convert("RGBA" if "transparency" in im.info else "RGB")
    elif im.mode in ("LA", "PA", "RGBa", "La"):
        pixels = im.convert("RGBA")
    elif im.mode not in ("L", "RGB", "RGBA"):
        pixels = im.convert("RGB")
    return _orient(np.asarray(pixels), orientation)


def _to_unit_float(arr: np.ndarray) -> np.ndarray:
    if arr.dtype == np.uint8:
        return arr.astype(np.float32) / 255.0
    if arr.dtype == np.uint16:
        return arr.astype(np.float32) / 65535.0
    if arr.dtype == bool:
        return arr.astype(np.float32)
    out = arr.astype(np.float32)
    if out.size and out.max() > 1.0 + 1e-6:
        out = out / 255.0
    return np.clip(out, 0.0, 1.0)


def as_rgb_float(arr: np.ndarray, source: str = "image") -> np.ndarray:
    """Any image array (gray, RGB, RGBA; uint8, uint16 or float) -> float32 H x W x 3 in [0, 1]."""
    arr = np.asarray(arr)
    if arr.ndim == 2:
        arr = np.repeat(arr[:, :, None], 3, axis=2)
    elif arr.ndim == 3 and arr.shape[2] == 1:
        arr = np.repeat(arr, 3, axis=2)
    elif arr.ndim == 3 and arr.shape[2] == 4:
        arr = arr[:, :, :3]
    if arr.ndim != 3 or arr.shape[2] != 3:
        raise ImageLoadError(
            f"{source}: expected an H x W or H x W x 3/4 array, got shape {arr.shape}"
        )
    if arr.shape[0] == 0 or arr.shape[1] == 0:
        raise ImageLoadError(f"{source}: image is empty (shape {arr.shape})")
    return np.ascontiguousarray(_to_unit_float(arr))


def as_gray_float(arr: np.ndarray) -> np.ndarray:
    """Any image array -> float32 H x W in [0, 1] (first channel of equal-channel RGB)."""
    arr = np.asarray(arr)
    if arr.ndim == 3:
        arr = arr[:, :, 0]
    return _to_unit_float(arr)


def load_image(source) -> np.ndarray:
    """Path or array -> float32 H x W x 3 RGB in [0, 1]. An alpha channel in the file is ignored."""
    if isinstance(source, np.ndarray):
        return as_rgb_float(source)
    return as_rgb_float(read_image_array(source), source=str(source))


def load_gray(source) -> np.ndarray:
    """Path or array -> float32 H x W in [0, 1] (for ground-truth alpha, masks)."""
    if isinstance(source, np.ndarray):
        return as_gray_float(source)
    return as_gray_float(read_image_array(source))


# ---------------------------------------------------------------------------------------------
# Writing


def _suffix(path: Path, allowed: tuple[str, ...]) -> str:
    suffix = path.suffix.lower()
    if suffix not in allowed:
        raise OutputError(
            f"unsupported file type {suffix or '(none)'!r}; use one of {', '.join(allowed)}", path
        )
    return suffix


def encode(arr: np.ndarray, suffix: str, quality: int = 95, path: PathLike | None = None) -> bytes:
    """Encode an RGB/RGBA/gray uint8 or uint16 array to file bytes with OpenCV.

    Raises OutputError (naming ``path`` when given) for an array OpenCV cannot encode.
    """
    import cv2

    if arr.ndim == 3 and arr.shape[2] == 3:
        arr = arr[:, :, ::-1]
    elif arr.ndim == 3 and arr.shape[2] == 4:
        arr = arr[:, :, [2, 1, 0, 3]]
    params = []
    if suffix in (".jpg", ".jpeg"):
        params = [cv2.IMWRITE_JPEG_QUALITY, int(quality)]
    elif suffix == ".webp":
        params = [cv2.IMWRITE_WEBP_QUALITY, int(quality)]
    try:
        ok, buf = cv2.imencode(suffix, np.ascontiguousarray(arr), params)
    except cv2.error:
        ok = False
    if not ok:
        raise OutputError(
            f"cannot encode a {suffix} file from an image of shape {arr.shape} ({arr.dtype})",
            None if path is None else Path(path),
        )
    return buf.tobytes()


def to_uint(arr: np.ndarray, bits: int = 8) -> np.ndarray:
    """float in [0, 1] -> uint8 or uint16, rounded."""
    top = 255.0 if bits == 8 else 65535.0
    dtype = np.uint8 if bits == 8 else np.uint16
    return np.clip(np.rint(np.asarray(arr, np.float32) * top), 0, top).astype(dtype)


def save_alpha(path: PathLike, alpha: np.ndarray, bits: int = 8) -> Path:
    """Alpha (float H x W in [0, 1]) as a grayscale PNG/TIFF, 8 or 16 bit."""
    path = Path(path)
    if bits not in (8, 16):
        raise OutputError(f"bit depth must be 8 or 16, not {bits}", path)
    suffix = _suffix(
        path,
        (".png", ".tif", ".tiff") if bits == 16 else (".png", ".tif", ".tiff", ".bmp", ".webp"),
    )
    return write_bytes_atomic(path, encode(to_uint(alpha, bits), suffix, path=path))


def save_rgba(path: PathLike, rgb: np.ndarray, alpha: np.ndarray, bits: int = 8) -> Path:
    """A straight (not premultiplied) RGBA cut-out as PNG, TIFF or WebP."""
    path = Path(path)
    if bits not in (8, 16):
        raise OutputError(f"bit depth must be 8 or 16, not {bits}", path)
    suffix = _suffix(
        path, (".png", ".tif", ".tiff") if bits == 16 else (".png", ".tif", ".tiff", ".webp")
    )
    rgba = np.dstack([np.asarray(rgb, np.float32), np.asarray(alpha, np.float32)])
    return write_bytes_atomic(path, encode(to_uint(rgba, bits), suffix, path=path))


def save_rgb(path: PathLike, rgb: np.ndarray, quality: int = 95) -> Path:
    """An RGB image (float H x W x 3 in [0, 1]) as PNG, JPEG, TIFF, WebP or BMP."""
    path = Path(path)
    suffix = _suffix(path, IMAGE_SUFFIXES)
    return write_bytes_atomic(path, encode(to_uint(rgb), suffix, quality, path=path))


def save_trimap(path: PathLike, trimap: np.ndarray) -> Path:
    path = Path(path)
    suffix = _suffix(path, (".png", ".tif", ".tiff", ".bmp"))
    return write_bytes_atomic(path, encode(np.asarray(trimap, np.uint8), suffix, path=path))
