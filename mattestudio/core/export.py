"""File > Export: alpha, cut-out, composite and trimap files, for the editor and the CLI.

Thin wrappers over :mod:`mattestudio.core.io` and :mod:`mattestudio.core.compositing` that check
the arrays against each other first, so a mismatch is reported as an OutputError naming the file
instead of a numpy broadcast error. Every write is atomic (temp file + rename), so a failed export
never leaves a half-written file under the final name.
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

import numpy as np

from mattestudio.core import io as _io
from mattestudio.core.atomic import write_bytes_atomic
from mattestudio.core.compositing import Background, composite, rgba
from mattestudio.errors import OutputError

PathLike = _io.PathLike

#: Suffixes each export accepts (the editor builds its file-dialog filters from these).
ALPHA_SUFFIXES = (".png", ".tif", ".tiff")
CUTOUT_SUFFIXES = (".png", ".tif", ".tiff", ".webp")
COMPOSITE_SUFFIXES = (".png", ".jpg", ".jpeg", ".tif", ".tiff", ".webp")
TRIMAP_SUFFIXES = (".png", ".tif", ".tiff", ".bmp")

#: Kinds understood by export_all, in the order they are written.
ALL_KINDS = ("alpha", "cutout", "composite", "trimap", "ora", "psd")


def check_suffix(path: PathLike, allowed: Iterable[str]) -> Path:
    """Return ``path`` as a Path, or raise OutputError if its extension is not in ``allowed``."""
    path = Path(path)
    allowed = tuple(allowed)
    suffix = path.suffix.lower()
    if suffix not in allowed:
        raise OutputError(
            f"unsupported file type {suffix or '(none)'!r}; use one of {', '.join(allowed)}", path
        )
    return path


def _alpha2d(alpha: np.ndarray, path: Path) -> np.ndarray:
    alpha = np.asarray(alpha)
    if alpha.ndim == 3 and alpha.shape[2] == 1:
        alpha = alpha[:, :, 0]
    if alpha.ndim != 2 or alpha.size == 0:
        raise OutputError(f"alpha must be an H x W array, got shape {alpha.shape}", path)
    return _io.as_gray_float(alpha)


def _rgb_like(arr: np.ndarray, alpha: np.ndarray, what: str, path: Path) -> np.ndarray:
    arr = np.asarray(arr)
    if arr.ndim != 3 or arr.shape[2] not in (3, 4) or arr.shape[:2] != alpha.shape:
        raise OutputError(
            f"{what} has shape {arr.shape}, expected {alpha.shape[0]} x {alpha.shape[1]} x 3 "
            "to match the alpha",
            path,
        )
    return _io.as_rgb_float(arr, what)


def save_alpha_png(path: PathLike, alpha: np.ndarray, bits: int = 8) -> Path:
    """Alpha as a grayscale PNG (or TIFF), 8 or 16 bit. Returns the path written."""
    path = check_suffix(path, ALPHA_SUFFIXES)
    return _io.save_alpha(path, _alpha2d(alpha, path), bits=bits)


def save_cutout(
    path: PathLike,
    foreground: np.ndarray,
    alpha: np.ndarray,
    premultiplied: bool = False,
    bits: int = 8,
) -> Path:
    """RGBA cut-out: the estimated clean foreground colors with the alpha as transparency.

    Straight (unassociated) alpha by default, which is what PNG viewers and editors expect; the
    foreground estimate matters here because the original photo's edge pixels still contain the
    old background. ``bits`` 16 keeps soft edges smooth (PNG and TIFF only).
    """
    path = check_suffix(path, CUTOUT_SUFFIXES)
    if bits not in (8, 16):
        raise OutputError(f"bit depth must be 8 or 16, not {bits}", path)
    if bits == 16 and path.suffix.lower() == ".webp":
        raise OutputError("WebP holds 8 bits per channel only; use PNG or TIFF for 16 bit", path)
    a = _alpha2d(alpha, path)
    fg = _rgb_like(foreground, a, "foreground", path)
    data = _io.encode(_io.to_uint(rgba(fg, a, premultiplied), bits), path.suffix.lower())
    return write_bytes_atomic(path, data)


def save_composite(
    path: PathLike,
    foreground: np.ndarray,
    alpha: np.ndarray,
    background: Background,
    original: np.ndarray | None = None,
    quality: int = 95,
) -> Path:
    """alpha * F + (1 - alpha) * B over ``background`` (color, "checker", "blur", image or path).

    ``original`` is needed for the "blur" background. ``quality`` applies to JPEG and WebP.
    """
    path = check_suffix(path, COMPOSITE_SUFFIXES)
    a = _alpha2d(alpha, path)
    fg = _rgb_like(foreground, a, "foreground", path)
    if original is not None:
        original = _rgb_like(original, a, "original image", path)
    try:
        out = composite(fg, a, background, original)
    except OutputError:
        raise
    except Exception as exc:  # a bad background spec or an unreadable background image
        raise OutputError(f"cannot build the background: {exc}", path) from exc
    return _io.save_rgb(path, out, quality=quality)


def save_trimap_png(path: PathLike, trimap: np.ndarray) -> Path:
    """Trimap as an 8-bit grayscale PNG with values 0 / 128 / 255."""
    path = check_suffix(path, TRIMAP_SUFFIXES)
    trimap = np.asarray(trimap)
    if trimap.ndim != 2 or trimap.size == 0:
        raise OutputError(f"trimap must be an H x W array, got shape {trimap.shape}", path)
    if trimap.dtype != np.uint8:
        raise OutputError(f"trimap must be uint8 (0/128/255), got {trimap.dtype}", path)
    return _io.save_trimap(path, trimap)


def export_all(
    folder: PathLike,
    stem: str,
    image: np.ndarray,
    alpha: np.ndarray,
    foreground: np.ndarray | None = None,
    trimap: np.ndarray | None = None,
    background: Background = "white",
    kinds: Iterable[str] = ALL_KINDS,
    alpha_bits: int = 8,
    composite_suffix: str = ".png",
) -> dict[str, Path]:
    """Write several exports named ``<stem>_alpha.png``, ``<stem>_cutout.png``,
    ``<stem>_composite.png``, ``<stem>_trimap.png``, ``<stem>.ora``, ``<stem>.psd`` into ``folder``.

    ``foreground`` defaults to the image (engines without a foreground estimate). Kinds that
    need a missing input (trimap) are skipped. Each file is written atomically; if one fails,
    the ones already written stay and the OutputError names the failing file.
    Returns {kind: path} for the files written.
    """
    from mattestudio.core import layered

    folder = Path(folder)
    if not folder.is_dir():
        raise OutputError(
            "folder does not exist" if not folder.exists() else "is not a folder", folder
        )
    kinds = tuple(kinds)
    unknown = [k for k in kinds if k not in ALL_KINDS]
    if unknown:
        raise OutputError(
            f"unknown export kind(s) {', '.join(unknown)}; use {', '.join(ALL_KINDS)}", folder
        )
    fg = image if foreground is None else foreground
    out: dict[str, Path] = {}
    for kind in ALL_KINDS:
        if kind not in kinds:
            continue
        if kind == "alpha":
            out[kind] = save_alpha_png(folder / f"{stem}_alpha.png", alpha, bits=alpha_bits)
        elif kind == "cutout":
            out[kind] = save_cutout(folder / f"{stem}_cutout.png", fg, alpha)
        elif kind == "composite":
            out[kind] = save_composite(
                folder / f"{stem}_composite{composite_suffix}",
                fg,
                alpha,
                background,
                original=image,
            )
        elif kind == "trimap" and trimap is not None:
            out[kind] = save_trimap_png(folder / f"{stem}_trimap.png", trimap)
        elif kind == "ora":
            out[kind] = layered.save_ora(
                folder / f"{stem}.ora", image, fg, alpha, background, trimap
            )
        elif kind == "psd":
            out[kind] = layered.save_psd(
                folder / f"{stem}.psd", image, fg, alpha, background, trimap
            )
    return out
