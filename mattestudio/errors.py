"""Typed errors. Every message names the file (when there is one) and the problem in one line."""

from __future__ import annotations

import os
from pathlib import Path


class MattestudioError(Exception):
    """Base class: a problem the user can fix, shown as one line without a traceback."""

    def __init__(self, message: str, path: str | os.PathLike | None = None):
        self.path = None if path is None else Path(path)
        super().__init__(f"{self.path}: {message}" if path is not None else message)
        self.reason = message


class ImageLoadError(MattestudioError):
    """An image could not be read (missing, not an image, truncated, too large, empty)."""


class TrimapError(MattestudioError):
    """A trimap is unusable (wrong size, no unknown pixel, bad values)."""


class OutputError(MattestudioError):
    """An output file could not be written."""


class CheckpointError(MattestudioError):
    """A model checkpoint is missing, corrupt, of the wrong kind or unsafe."""


class EngineUnavailable(MattestudioError):
    """The engine cannot run here (missing dependency or weights); the message says how to fix it."""


class UnknownEngine(MattestudioError):
    """No engine of that name is registered."""


class Cancelled(MattestudioError):
    """The user cancelled the run."""

    def __init__(self, message: str = "cancelled"):
        super().__init__(message)


def is_interrupt(exc: BaseException) -> bool:
    """True for Ctrl-C, also when numba-compiled code (pymatting's kernels) turned the
    KeyboardInterrupt into "SystemError: ... returned a result with an exception set"."""
    seen: set[int] = set()
    e: BaseException | None = exc
    while e is not None and id(e) not in seen:
        if isinstance(e, KeyboardInterrupt):
            return True
        seen.add(id(e))
        e = e.__cause__ or e.__context__
    return False


def naming_file(exc: Exception, path: str | Path, engine: str) -> MattestudioError:
    """``exc`` (raised while matting the image at ``path``) as one line that names the file.

    An error that names its own file (e.g. the trimap's) is kept; an engine's own exception (a
    solver that fails on an odd image) becomes "FILE: engine NAME failed: ...".
    """
    if isinstance(exc, MattestudioError):
        if exc.path is not None:
            return exc
        return type(exc)(exc.reason, path) if type(exc) is not Cancelled else exc
    if isinstance(exc, MemoryError):
        return MattestudioError("out of memory; try a smaller image or a lighter engine", path)
    return MattestudioError(f"engine {engine} failed: {type(exc).__name__}: {exc}", path)
