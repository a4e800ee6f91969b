"""Big arrays between the editor and its engine process as files in shared memory, not pickles.

A 12 MP result (alpha + foreground, ~200 MB) pickled through the pipe costs the sender a
pickle buffer and the receiver the received bytes plus the rebuilt arrays. Instead the sender
writes each big array to a file in a folder on /dev/shm (a tmpfs: RAM, not disk) and sends a
``SharedArray`` naming it; the receiver maps the file (copy-on-write, so the array behaves like
a private one and costs no copy) and unlinks it at once. Memory goes back to the system when
the last array mapping it is freed.

The folder belongs to one engine process's lifetime and is made by the editor side, so every
path that can strand a file (a killed engine, a message never read, an editor that exits) ends
in removing the folder: ``EngineProcess.stop`` does, ``atexit`` does for folders still open, and
a new folder sweeps the folders of editor processes that no longer exist (killed outright).
Writing falls back to the pickle when the folder is full or gone.
"""

from __future__ import annotations

import atexit
import contextlib
import dataclasses
import mmap
import os
import shutil
import tempfile
import uuid
from pathlib import Path
from typing import Any, TypeVar

import numpy as np

from mattestudio.ui.protocol import SharedArray

#: Where the folders go: /dev/shm when the system has one (Linux), else the temp folder.
ROOT = Path("/dev/shm") if Path("/dev/shm").is_dir() else Path(tempfile.gettempdir())
PREFIX = "mattestudio-"
#: Smaller arrays are cheaper in the pickle than as a file.
MIN_BYTES = 1 << 20

_open_folders: set[Path] = set()

T = TypeVar("T")


def new_folder() -> Path:
    """A fresh folder for one engine process (named after this process, for the sweep)."""
    sweep_orphans()
    folder = Path(tempfile.mkdtemp(prefix=f"{PREFIX}{os.getpid()}-", dir=ROOT))
    _open_folders.add(folder)
    return folder


def remove_folder(folder: Path | None) -> None:
    """Remove ``folder`` and whatever is left in it (mapped arrays stay valid)."""
    if folder is None:
        return
    _open_folders.discard(folder)
    shutil.rmtree(folder, ignore_errors=True)


@atexit.register
def _remove_open_folders() -> None:
    for folder in list(_open_folders):
        remove_folder(folder)


def sweep_orphans() -> int:
    """Remove the folders of editor processes that are gone; returns how many."""
    removed = 0
    for folder in ROOT.glob(f"{PREFIX}*-*"):
        pid_text = folder.name[len(PREFIX) :].split("-", 1)[0]
        if not pid_text.isdigit() or not folder.is_dir():
            continue
        try:
            os.kill(int(pid_text), 0)
        except ProcessLookupError:
            shutil.rmtree(folder, ignore_errors=True)
            removed += 1
        except (PermissionError, OverflowError):  # someone else's process, or nonsense
            continue
    return removed


def put(array: np.ndarray, folder: Path) -> SharedArray | None:
    """Write ``array`` to a new file in ``folder``; None when that fails (send it inline)."""
    arr = np.ascontiguousarray(array)
    path = folder / f"{uuid.uuid4().hex}.bin"
    try:
        with open(path, "wb") as f:
            arr.tofile(f)
    except OSError:
        with contextlib.suppress(OSError):
            path.unlink()
        return None
    return SharedArray(str(path), tuple(int(n) for n in arr.shape), arr.dtype.str)


def take(ref: SharedArray, copy: bool = False) -> np.ndarray:
    """The array ``ref`` names, mapped copy-on-write (``copy``: read into a fresh array); the
    file is unlinked before returning."""
    path = Path(ref.path)
    try:
        dtype = np.dtype(ref.dtype)
        count = int(np.prod(ref.shape, dtype=np.int64))
        if count == 0:
            return np.empty(ref.shape, dtype)
        if copy:
            return np.fromfile(path, dtype, count).reshape(ref.shape)
        with open(path, "rb") as f:
            mapped = mmap.mmap(f.fileno(), count * dtype.itemsize, access=mmap.ACCESS_COPY)
        return np.frombuffer(mapped, dtype, count).reshape(ref.shape)
    finally:
        with contextlib.suppress(OSError):
            path.unlink()


def discard(shared: tuple[tuple[str, SharedArray], ...]) -> None:
    """Unlink the files of a message that will not be read."""
    for _, ref in shared:
        with contextlib.suppress(OSError):
            Path(ref.path).unlink()


def pack(value: T, folder: Path | None) -> tuple[T, tuple[tuple[str, SharedArray], ...]]:
    """``value`` (a dataclass) with its big array fields moved to files: (the value with empty
    placeholders in those fields, (field name, SharedArray) pairs)."""
    if folder is None or not dataclasses.is_dataclass(value):
        return value, ()
    moved: dict[str, Any] = {}
    shared: list[tuple[str, SharedArray]] = []
    for f in dataclasses.fields(value):
        arr = getattr(value, f.name)
        if isinstance(arr, np.ndarray) and arr.nbytes >= MIN_BYTES:
            ref = put(arr, folder)
            if ref is not None:
                shared.append((f.name, ref))
                moved[f.name] = np.empty(0, arr.dtype)
    if not moved:
        return value, ()
    return dataclasses.replace(value, **moved), tuple(shared)  # type: ignore[type-var]


def unpack(value: T, shared: tuple[tuple[str, SharedArray], ...], copy: bool = False) -> T:
    """The inverse of :func:`pack` (every file is unlinked, even when one fails). ``copy``: see
    :func:`take`."""
    if not shared:
        return value
    try:
        arrays = {name: take(ref, copy) for name, ref in shared}
    finally:
        discard(shared)
    return dataclasses.replace(value, **arrays)  # type: ignore[type-var]
