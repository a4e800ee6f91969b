"""Single-file projects (``.mattestudio``) and crash autosave.

A project is a zip holding:

- ``mimetype``       ``application/x-mattestudio-project``, first and uncompressed (like ORA), so
                     the file can be recognised by its first bytes,
- ``manifest.json``  format name and version, size, which members exist, the source image path,
- ``image.png``      8-bit RGB when the image is exactly 8-bit, else 16-bit (keeps high-depth
                     sources and float edits to 1/65535),
- ``trimap.png``     8-bit gray, 0/128/255,
- ``alpha.png``      16-bit gray, if there is a result,
- ``foreground.png`` 8 or 16-bit RGB (like the image), if there is a result with foreground colors,
- ``settings.json``  engine, params, background, view, brush size... (any JSON); ``edges``
                     holds the edge adjustments (mattestudio.core.edges) applied to renders,
- ``strokes.json``   optional list of JSON-able stroke records that led to the trimap
                     (``Document.strokes``; format in mattestudio.core.strokes).

Readers refuse a newer format version rather than guess. Autosaves use the same format, one file
per source image, in :func:`autosave_dir`, but without ``image.png``: the manifest's ``image`` is
``"external"`` and the image is the source file at ``image_path`` (or the one the caller has open),
so an autosave of a 24 MP photo writes the trimap and strokes, not the photo, every time.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import zipfile
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from mattestudio.core import io as _io
from mattestudio.core import ziplimits
from mattestudio.core.atomic import write_with_atomic
from mattestudio.errors import ImageLoadError, MattestudioError, OutputError

PathLike = _io.PathLike

SUFFIX = ".mattestudio"
MIMETYPE = b"application/x-mattestudio-project"
FORMAT_NAME = "mattestudio-project"
FORMAT_VERSION = 1
AUTOSAVE_ENV = "MATTESTUDIO_AUTOSAVE_DIR"

# Largest JSON members read (a zip bomb must be refused before it is inflated). Settings are a few
# kilobytes; a stroke log of a long session is a few megabytes.
MAX_MANIFEST_BYTES = 1 << 20
MAX_SETTINGS_BYTES = 16 << 20
MAX_STROKES_BYTES = 64 << 20


class ProjectError(ImageLoadError):
    """A project file cannot be opened (corrupt, truncated, incomplete, newer format)."""


#: The editor's view modes a project may store.
VIEWS = ("trimap", "alpha", "composite", "plain", "on-black", "on-white", "edge")


@dataclass
class ProjectSettings:
    """The session settings a project stores (settings.json): what the editor maps its widgets
    to and from, and what ``mattestudio matte project.mattestudio`` renders with.
    None means "not stored": the reader keeps its own default."""

    engine: str | None = None
    params: dict = field(default_factory=dict)
    #: "checker", "black", "white", "blur", another color name, [r, g, b] in [0, 1], or "image".
    background: str | list | None = None
    brush_size: float | None = None
    band: int | None = None
    view: str | None = None  # one of VIEWS
    #: Seconds the stored result took, and whether it was computed for the stored trimap.
    result_seconds: float | None = None
    result_current: bool = True
    #: Edge adjustments (core.edges.EdgeAdjustments.to_dict()); validated where they are used.
    edges: dict | None = None

    def to_dict(self) -> dict:
        out = {k: v for k, v in self.__dict__.items() if v is not None}
        out["params"] = dict(self.params)
        return out

    @classmethod
    def from_dict(cls, data: dict | None) -> ProjectSettings:
        """Tolerant of missing, extra and wrongly typed keys (a hand-edited or older file)."""
        d = data if isinstance(data, dict) else {}

        def typed(key, kind, check=lambda v: True):
            v = d.get(key)
            try:
                v = None if v is None else kind(v)
            except (TypeError, ValueError):
                return None
            return v if v is None or check(v) else None

        bg = d.get("background")
        if isinstance(bg, (list, tuple)):
            bg = [float(v) for v in bg] if len(bg) == 3 else None
        elif not isinstance(bg, str):
            bg = None
        params = d.get("params")
        return cls(
            engine=typed("engine", str, bool),
            params=dict(params) if isinstance(params, dict) else {},
            background=bg,
            brush_size=typed("brush_size", float, lambda v: v > 0),
            band=typed("band", int, lambda v: v > 0),
            view=typed("view", str, lambda v: v in VIEWS),
            result_seconds=typed("result_seconds", float, lambda v: v >= 0),
            result_current=bool(d.get("result_current", True)),
            edges=dict(d["edges"]) if isinstance(d.get("edges"), dict) else None,
        )


@dataclass
class ProjectState:
    """Everything needed to reopen a session. Arrays follow mattestudio.types conventions."""

    image: np.ndarray
    trimap: np.ndarray
    alpha: np.ndarray | None = None
    foreground: np.ndarray | None = None
    settings: dict = field(default_factory=dict)
    image_path: str | None = None
    strokes: list | None = None


# ---------------------------------------------------------------------------------------------
# Saving


def _is_8bit(arr: np.ndarray) -> bool:
    # An image loaded from an 8-bit file is k/255 exactly; storing it in 8 bits is lossless.
    scaled = arr * 255.0
    return bool(np.all(np.abs(scaled - np.rint(scaled)) < 1e-3))


def _check_state(state: ProjectState, path: Path) -> None:
    image = np.asarray(state.image)
    if image.ndim != 3 or image.shape[2] != 3 or image.size == 0:
        raise OutputError(f"image must be H x W x 3, got shape {image.shape}", path)
    h, w = image.shape[:2]
    checks = [
        ("trimap", state.trimap, (h, w)),
        ("alpha", state.alpha, (h, w)),
        ("foreground", state.foreground, (h, w, 3)),
    ]
    for name, arr, shape in checks:
        if arr is not None and np.asarray(arr).shape != shape:
            raise OutputError(
                f"{name} has shape {np.asarray(arr).shape}, expected {shape} to match the image",
                path,
            )
    if np.asarray(state.trimap).dtype != np.uint8:
        raise OutputError(f"trimap must be uint8, got {np.asarray(state.trimap).dtype}", path)


def _app_version() -> str:
    # Not `mattestudio.__version__`: importing the package from core would break the layering
    # contract (the package imports the api layer).
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("mattestudio")
    except PackageNotFoundError:
        return "unknown"


def _json_default(obj):
    # Engine params and stroke points often arrive as numpy scalars or arrays.
    if isinstance(obj, np.generic):
        return obj.item()
    if isinstance(obj, np.ndarray):
        return obj.tolist()
    if isinstance(obj, (set, frozenset)):
        return sorted(obj)
    raise TypeError(f"{type(obj).__name__} is not JSON-serialisable")


def _members(
    state: ProjectState, path: Path, embed_image: bool = True
) -> tuple[dict, list[tuple[str, bytes]]]:
    h, w = np.asarray(state.image).shape[:2]
    pngs = [("trimap.png", _io.encode(np.asarray(state.trimap, np.uint8), ".png"))]
    image_bits = None
    if embed_image:
        image = np.clip(np.asarray(state.image, np.float32), 0, 1)
        image_bits = 8 if _is_8bit(image) else 16
        pngs.insert(0, ("image.png", _io.encode(_io.to_uint(image, image_bits), ".png")))
    if state.alpha is not None:
        pngs.append(("alpha.png", _io.encode(_io.to_uint(state.alpha, 16), ".png")))
    fg_bits = None
    if state.foreground is not None:
        fg = np.clip(np.asarray(state.foreground, np.float32), 0, 1)
        fg_bits = 8 if _is_8bit(fg) else 16
        pngs.append(("foreground.png", _io.encode(_io.to_uint(fg, fg_bits), ".png")))
    try:
        settings = json.dumps(
            state.settings or {}, indent=1, sort_keys=True, default=_json_default
        ).encode()
        strokes = (
            None
            if state.strokes is None
            else json.dumps(state.strokes, default=_json_default).encode()
        )
    except (TypeError, ValueError) as exc:
        raise OutputError(f"settings or strokes are not JSON-serialisable ({exc})", path) from exc
    manifest = {
        "format": FORMAT_NAME,
        "version": FORMAT_VERSION,
        "app_version": _app_version(),
        "width": w,
        "height": h,
        "image_bits": image_bits,
        "foreground_bits": fg_bits,
        "members": [name for name, _ in pngs]
        + ["settings.json"]
        + (["strokes.json"] if strokes else []),
        "image_path": None if state.image_path is None else str(state.image_path),
    }
    if not embed_image:
        manifest["image"] = "external"
    files = pngs + [("settings.json", settings)] + ([("strokes.json", strokes)] if strokes else [])
    return manifest, files


def save_project(path: PathLike, state: ProjectState, *, embed_image: bool = True) -> Path:
    """Write ``state`` to a ``.mattestudio`` file atomically; returns the path written.
    ``embed_image`` False: the file refers to the image at ``state.image_path`` (autosaves).

    A path without an extension gets ``.mattestudio``; any other extension is refused so that a
    project can never overwrite an image by mistake.
    """
    path = Path(path)
    if path.suffix == "":
        path = path.with_name(path.name + SUFFIX)
    elif path.suffix.lower() != SUFFIX:
        raise OutputError(
            f"unsupported file type {path.suffix!r} for a project; use {SUFFIX}", path
        )
    _check_state(state, path)
    if not embed_image and state.image_path is None:
        raise OutputError("a project without its image needs the image's path", path)
    manifest, files = _members(state, path, embed_image)

    def writer(tmp: Path) -> None:
        with open(tmp, "wb") as f:
            with zipfile.ZipFile(f, "w") as zf:
                zf.writestr(zipfile.ZipInfo("mimetype"), MIMETYPE, compress_type=zipfile.ZIP_STORED)
                zf.writestr(
                    "manifest.json",
                    json.dumps(manifest, indent=1),
                    compress_type=zipfile.ZIP_DEFLATED,
                )
                for name, data in files:
                    kind = zipfile.ZIP_STORED if name.endswith(".png") else zipfile.ZIP_DEFLATED
                    zf.writestr(name, data, compress_type=kind)
            f.flush()
            os.fsync(f.fileno())

    return write_with_atomic(path, writer)


# ---------------------------------------------------------------------------------------------
# Loading


def _read_member(zf: zipfile.ZipFile, name: str, path: Path, limit: int) -> bytes:
    """A member's bytes, refused before inflating past ``limit`` (see core.ziplimits)."""
    return ziplimits.read_member(
        zf,
        name,
        limit,
        lambda msg: ProjectError(msg.replace(name, f"{name} in the project", 1), path),
    )


def _decode(zf: zipfile.ZipFile, name: str, path: Path, shape: tuple) -> np.ndarray:
    import cv2

    # The PNG header is checked against the manifest's size before the member is inflated, so
    # a forged member cannot make us allocate far more than the manifest announced.
    with zf.open(name) as f:
        head = f.read(24)
    if head[:8] != b"\x89PNG\r\n\x1a\n" or len(head) < 24 or head[12:16] != b"IHDR":
        raise ProjectError(f"{name} in the project is not a PNG image", path)
    pw, ph = int.from_bytes(head[16:20], "big"), int.from_bytes(head[20:24], "big")
    if (ph, pw) != tuple(shape[:2]):
        raise ProjectError(
            f"{name} in the project is {pw}x{ph} but the image is {shape[1]}x{shape[0]}", path
        )
    data = _read_member(zf, name, path, ziplimits.png_limit(shape))
    arr = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_UNCHANGED)
    if arr is None:
        raise ProjectError(f"{name} in the project is corrupt (cannot decode it)", path)
    if arr.ndim == 3:
        arr = arr[:, :, 2::-1]  # BGR(A) -> RGB
    if arr.shape[:2] != shape[:2] or (len(shape) == 3) != (arr.ndim == 3):
        raise ProjectError(
            f"{name} in the project is {arr.shape[1]}x{arr.shape[0]} but the image "
            f"is {shape[1]}x{shape[0]}",
            path,
        )
    return np.ascontiguousarray(arr)


def load_project(path: PathLike, image: np.ndarray | None = None) -> ProjectState:
    """Read a ``.mattestudio`` file. Raises ProjectError (an ImageLoadError) naming the file.
    ``image``: for a file that does not hold its image (an autosave), the image it belongs to
    when the caller has it open; otherwise that image is read from the file's ``image_path``."""
    path = Path(path)
    if not path.exists():
        raise ProjectError("file not found", path)
    if path.is_dir():
        raise ProjectError("is a folder, not a project file", path)
    try:
        zf = zipfile.ZipFile(path)
    except zipfile.BadZipFile as exc:
        raise ProjectError(
            "not a mattestudio project, or the file is truncated (not a complete zip archive)", path
        ) from exc
    except OSError as exc:
        raise ProjectError(f"cannot read: {exc.strerror or exc}", path) from exc
    try:
        with zf:
            return _load(zf, path, image)
    except ProjectError:
        raise
    except zipfile.BadZipFile as exc:  # e.g. a CRC mismatch: damaged on disk or in transfer
        raise ProjectError(f"the project file is corrupt ({exc})", path) from exc
    except KeyError as exc:
        raise ProjectError(
            f"the project is incomplete: member {exc.args[0]!r} is missing", path
        ) from exc
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise ProjectError(f"the project's JSON is corrupt ({exc})", path) from exc
    except RecursionError as exc:  # "[[[[..." nested deeper than the parser can follow
        raise ProjectError("the project's JSON is nested too deeply to read", path) from exc
    except (OSError, EOFError, zipfile.LargeZipFile, ValueError) as exc:
        raise ProjectError(f"cannot read the project ({exc})", path) from exc


def load_settings(path: PathLike) -> dict:
    """Only a project's settings (engine, params, ...), without decoding its images (a batch
    picks each project's engine this way). Raises ProjectError naming the file."""
    path = Path(path)
    try:
        with zipfile.ZipFile(path) as zf:
            if "settings.json" not in zf.namelist():
                raise ProjectError(
                    "the project is incomplete: member 'settings.json' is missing", path
                )
            settings = json.loads(_read_member(zf, "settings.json", path, MAX_SETTINGS_BYTES))
    except ProjectError:
        raise
    except zipfile.BadZipFile as exc:
        raise ProjectError(
            "not a mattestudio project, or the file is truncated (not a complete zip archive)", path
        ) from exc
    except (OSError, EOFError, ValueError, RecursionError) as exc:  # JSON errors are ValueErrors
        raise ProjectError(f"cannot read the project's settings ({exc})", path) from exc
    return settings if isinstance(settings, dict) else {}


def _load(zf: zipfile.ZipFile, path: Path, given: np.ndarray | None = None) -> ProjectState:
    names = set(zf.namelist())
    if "manifest.json" not in names:
        raise ProjectError("not a mattestudio project (no manifest.json)", path)
    manifest = json.loads(_read_member(zf, "manifest.json", path, MAX_MANIFEST_BYTES))
    if not isinstance(manifest, dict) or manifest.get("format") != FORMAT_NAME:
        raise ProjectError("not a mattestudio project (unknown manifest format)", path)
    version = manifest.get("version")
    if not isinstance(version, int) or version < 1:
        raise ProjectError(f"invalid project format version {version!r}", path)
    if version > FORMAT_VERSION:
        raise ProjectError(
            f"made by a newer mattestudio (project format {version}; this version reads "
            f"up to {FORMAT_VERSION}); update mattestudio to open it",
            path,
        )
    w, h = int(manifest["width"]), int(manifest["height"])
    if w <= 0 or h <= 0 or w * h > _io.max_pixels():
        raise ProjectError(
            f"image size {w}x{h} is empty or over the limit of "
            f"{_io.max_pixels() / 1e6:.0f} megapixels",
            path,
        )
    members = set(manifest.get("members") or [])
    external = manifest.get("image") == "external"
    required = ("trimap.png",) if external else ("image.png", "trimap.png")
    for name in required + ("settings.json",) + tuple(sorted(members)):
        if name not in names:
            raise ProjectError(f"the project is incomplete: member {name!r} is missing", path)

    if external:
        image = _external_image(manifest.get("image_path"), given, (h, w), path)
    else:
        image = _io.as_rgb_float(_decode(zf, "image.png", path, (h, w, 3)))
    trimap = _decode(zf, "trimap.png", path, (h, w))
    if trimap.dtype != np.uint8 or not np.isin(trimap, (0, 128, 255)).all():
        raise ProjectError("trimap.png in the project is not an 8-bit 0/128/255 trimap", path)
    alpha = foreground = strokes = None
    if "alpha.png" in members:
        alpha = _io.as_gray_float(_decode(zf, "alpha.png", path, (h, w)))
    if "foreground.png" in members:
        foreground = _io.as_rgb_float(_decode(zf, "foreground.png", path, (h, w, 3)))
    settings = json.loads(_read_member(zf, "settings.json", path, MAX_SETTINGS_BYTES))
    if "strokes.json" in members:
        strokes = json.loads(_read_member(zf, "strokes.json", path, MAX_STROKES_BYTES))
        if not isinstance(strokes, list) or not all(isinstance(r, dict) for r in strokes):
            raise ProjectError("strokes.json in the project is not a list of stroke records", path)
    return ProjectState(
        image=image,
        trimap=trimap,
        alpha=alpha,
        foreground=foreground,
        settings=settings if isinstance(settings, dict) else {},
        image_path=manifest.get("image_path"),
        strokes=strokes,
    )


def _external_image(source, given: np.ndarray | None, shape: tuple, path: Path) -> np.ndarray:
    """The image of a file that refers to it: the caller's, else read from ``source``."""
    if given is None:
        if not isinstance(source, str) or not source:
            raise ProjectError("the project does not hold its image and names none", path)
        try:
            given = _io.load_image(source)
        except MattestudioError as exc:
            raise ProjectError(f"its image {source} cannot be read ({exc})", path) from exc
    if given.shape[:2] != shape:
        raise ProjectError(
            f"it belongs to a {shape[1]}x{shape[0]} image, not {given.shape[1]}x{given.shape[0]}",
            path,
        )
    return given


def edge_adjustments(state: ProjectState, path: PathLike | None = None):
    """The project's edge adjustments (defaults when it has none); a bad value raises an
    EdgeAdjustmentError naming ``path``."""
    from mattestudio.core.edges import EdgeAdjustments

    return EdgeAdjustments.from_dict(state.settings.get("edges"), path)


# ---------------------------------------------------------------------------------------------
# Autosave


def autosave_dir() -> Path:
    """Folder for autosaves: $MATTESTUDIO_AUTOSAVE_DIR, else the per-user state dir. Created."""
    env = os.environ.get(AUTOSAVE_ENV)
    if env:
        folder = Path(env)
    else:
        import platformdirs

        folder = Path(platformdirs.user_state_dir("mattestudio", appauthor=False)) / "autosave"
    folder.mkdir(parents=True, exist_ok=True)
    return folder


def autosave_key(image_path: PathLike | None) -> str:
    """Stable file-name-safe key for an image: its stem plus a hash of its absolute path."""
    if image_path is None:
        return "untitled"
    absolute = os.path.abspath(os.fspath(image_path))
    digest = hashlib.sha1(absolute.encode("utf-8", "surrogateescape")).hexdigest()[:16]
    stem = re.sub(r"[^A-Za-z0-9_.-]+", "_", Path(absolute).stem)[:40] or "image"
    return f"{stem}-{digest}"


def _autosave_path(key: str) -> Path:
    if not key or "/" in key or "\\" in key or key in (".", ".."):
        raise OutputError(f"invalid autosave key {key!r}")
    return autosave_dir() / f"{key}{SUFFIX}"


def autosave(state: ProjectState, key: str | None = None) -> Path:
    """Save ``state`` as the autosave for ``key`` (default: derived from state.image_path)."""
    return save_project(
        _autosave_path(key or autosave_key(state.image_path)),
        state,
        embed_image=state.image_path is None,  # the source image stays where it is
    )


def find_autosave(image_path: PathLike | None) -> Path | None:
    """The autosave left for this image (e.g. by a crash), or None."""
    path = autosave_dir() / f"{autosave_key(image_path)}{SUFFIX}"
    return path if path.is_file() else None


def clear_autosave(key: str) -> None:
    """Delete the autosave for ``key`` (after a normal save or close); no error if there is none."""
    try:
        _autosave_path(key).unlink()
    except FileNotFoundError:
        pass
    except OSError as exc:
        raise OutputError(
            f"cannot delete the autosave: {exc.strerror or exc}", _autosave_path(key)
        ) from exc
