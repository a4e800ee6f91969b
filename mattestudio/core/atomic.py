"""Atomic file writes: write to a temporary file beside the target, then rename over it.

A crash or an error mid-write never leaves a half-written file under the final name.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Callable
from pathlib import Path

from mattestudio.errors import OutputError

# mkstemp creates files readable by the owner only; give outputs the usual umask-based mode.
_UMASK = os.umask(0)
os.umask(_UMASK)
_FILE_MODE = 0o666 & ~_UMASK


def write_with_atomic(path: str | Path, writer: Callable[[Path], None]) -> Path:
    """Call ``writer(tmp_path)`` to write a file, then rename it to ``path``.

    For libraries (psd-tools, zipfile) that want a path rather than bytes. Raises OutputError
    naming the file; on failure neither the file nor the temporary file is left behind.
    """
    path = Path(path)
    parent = path.parent if str(path.parent) else Path(".")
    if path.is_dir():
        raise OutputError("is a directory, expected a file name", path)
    if not parent.exists():
        raise OutputError(f"folder {parent} does not exist", path)
    tmp = None
    try:
        fd, tmp = tempfile.mkstemp(
            prefix=f".{path.name}.", suffix=".part" + path.suffix, dir=parent
        )
        os.fchmod(fd, _FILE_MODE)
        os.close(fd)
        writer(Path(tmp))
        os.replace(tmp, path)
        tmp = None
    except OSError as exc:
        raise OutputError(f"cannot write: {exc.strerror or exc}", path) from exc
    finally:
        if tmp is not None and os.path.exists(tmp):
            os.unlink(tmp)
    return path


def write_bytes_atomic(path: str | Path, data: bytes) -> Path:
    """Write ``data`` to ``path`` atomically, flushed to disk before the rename."""

    def writer(tmp: Path) -> None:
        with open(tmp, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())

    return write_with_atomic(path, writer)
