"""Reading members of zip containers (projects, OpenRaster) without inflating a zip bomb."""

from __future__ import annotations

import zipfile
from collections.abc import Callable


def read_member(
    zf: zipfile.ZipFile, name: str, limit: int, fail: Callable[[str], Exception]
) -> bytes:
    """A member's bytes, refused before inflating when it would inflate to more than ``limit``.

    The size in the zip's directory is checked first; the read itself stops at ``limit + 1``
    bytes too, so a directory that lies about the size cannot make us inflate a bomb either.
    ``fail(message)`` makes the exception raised (it names the file)."""
    size = zf.getinfo(name).file_size
    if size > limit:
        raise fail(
            f"{name} inflates to {size:,} bytes, more than the {limit:,} it can need "
            "(a damaged or hostile file; a zip bomb?)"
        )
    with zf.open(name) as f:
        data = f.read(limit + 1)
    if len(data) > limit:
        raise fail(
            f"{name} inflates to more than the {limit:,} bytes it can need "
            "(a damaged or hostile file; a zip bomb?)"
        )
    return data


def png_limit(shape: tuple) -> int:
    """Most bytes a PNG of ``shape`` can take: 16-bit samples with one alpha channel, a filter
    byte per row, stored (uncompressed) deflate blocks, and 1 MiB of chunks and metadata."""
    h, w = shape[:2]
    channels = (shape[2] if len(shape) == 3 else 1) + 1
    raw = h * (w * channels * 2 + 1)
    return raw + raw // 1000 + (1 << 20)
