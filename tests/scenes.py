"""Small test scenes shared by test files that cannot share a fixture (module-level helpers)."""

from __future__ import annotations

import numpy as np


def disc_scene(
    h: int = 40,
    w: int = 48,
    seed: int = 0,
    colour: tuple[float, float, float] = (0.9, 0.4, 0.1),
    noise: float = 0.3,
    eight_bit: bool = False,
) -> tuple[np.ndarray, np.ndarray]:
    """(float32 image, uint8 trimap): a soft-edged ``colour`` disc over uniform noise of amplitude
    ``noise``; the trimap is 255 where the disc is opaque, 128 on its soft edge, 0 elsewhere.
    ``eight_bit`` rounds the image to 8-bit levels, so an 8-bit file keeps it unchanged."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[:h, :w]
    r = np.hypot(yy - h / 2, xx - w / 2)
    alpha = np.clip((min(h, w) / 3 - r) / 4 + 0.5, 0, 1)
    image = np.clip(alpha[..., None] * np.array(colour) + rng.random((h, w, 3)) * noise, 0, 1)
    if eight_bit:
        image = np.rint(image * 255) / 255
    trimap = np.zeros((h, w), np.uint8)
    trimap[alpha > 0.0] = 128
    trimap[alpha >= 1.0] = 255
    return image.astype(np.float32), trimap


def paint_disc(trimap: np.ndarray, y: int, x: int, r: int, value: int, where) -> np.ndarray:
    """A copy of ``trimap`` with a disc stroke of ``value`` (radius ``r`` at y, x), painted only
    where ``where(trimap)`` holds: a local trimap edit for incremental-solve tests."""
    out = trimap.copy()
    yy, xx = np.ogrid[: trimap.shape[0], : trimap.shape[1]]
    out[((yy - y) ** 2 + (xx - x) ** 2 <= r * r) & where(trimap)] = value
    return out
