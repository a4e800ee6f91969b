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
