"""A camera-size test photo: a furry subject whose trimap has a wide hair band (about 40 % of the
pixels unknown), textured foreground and background, at any size (12 MP, 24 MP).

Textures are drawn at a fraction of the size and upscaled, so 24 MP takes a few seconds.
"""

from __future__ import annotations

import numpy as np

#: Photo sizes (height, width) by megapixels: 3 MP is a quick check, 12 and 24 MP camera sizes.
SIZES = {3: (1416, 2120), 12: (2832, 4240), 24: (4000, 6000)}


def _texture(h: int, w: int, rng: np.random.Generator, cell: int, sigma: float) -> np.ndarray:
    import cv2

    small = rng.normal(0, 1, (max(h // cell, 2), max(w // cell, 2))).astype(np.float32)
    small = cv2.GaussianBlur(small, (0, 0), sigma)
    return cv2.resize(small, (w, h), interpolation=cv2.INTER_CUBIC)


def make_scene(h: int, w: int, unknown: float = 0.4, seed: int = 0):
    """(image float32 H x W x 3, trimap uint8, true alpha float32)."""
    import cv2

    rng = np.random.default_rng(seed)
    # Subject: an ellipse; strands grow outwards from its rim through a band as wide as needed
    # for the requested unknown fraction.
    cy, cx = 0.55 * h, 0.5 * w
    ay, ax = 0.30 * h, 0.26 * w
    core = np.zeros((h, w), np.uint8)
    cv2.ellipse(core, (int(cx), int(cy)), (int(ax), int(ay)), 0, 0, 360, 255, -1, cv2.LINE_AA)
    inside = cv2.distanceTransform((core > 127).astype(np.uint8), cv2.DIST_L2, 3)
    outside = cv2.distanceTransform((core <= 127).astype(np.uint8), cv2.DIST_L2, 3)
    signed = np.where(core > 127, -inside, outside)
    half = float(
        np.quantile(np.abs(signed), unknown)
    )  # |signed| < half covers `unknown` of the image
    del inside, outside
    canvas = core.copy()
    n = int(2 * np.pi * max(ax, ay) / 2.0)  # a strand every 2 px of rim
    for _ in range(n):
        ang = rng.uniform(0, 2 * np.pi)
        length = half * rng.uniform(0.3, 0.95)
        curl = rng.normal(0, 0.25)
        t = np.linspace(0, 1, 10)
        a = ang + curl * t * t
        rx = ax + length * t - 0.2 * half
        ry = ay + length * t - 0.2 * half
        pts = np.stack([cx + rx * np.cos(a), cy + ry * np.sin(a)], 1).astype(np.int32)
        cv2.polylines(canvas, [pts.reshape(-1, 1, 2)], False, 255, 1, cv2.LINE_AA)
    alpha = canvas.astype(np.float32) / 255.0
    trimap = np.where(signed < 0, 255, 0).astype(np.uint8)
    trimap[np.abs(signed) < half] = 128
    trimap[(alpha > 0.02) & (trimap == 0)] = 128
    del signed
    yy = np.linspace(0, 1, h, dtype=np.float32)[:, None]
    xx = np.linspace(0, 1, w, dtype=np.float32)[None, :]
    t_bg = _texture(h, w, rng, 16, 2.0)
    bg = np.empty((h, w, 3), np.float32)
    bg[..., 0] = 0.15 + 0.35 * xx + 0.08 * t_bg
    bg[..., 1] = 0.35 + 0.30 * yy + 0.08 * t_bg
    bg[..., 2] = 0.55 - 0.20 * xx + 0.05 * t_bg
    t_fg = _texture(h, w, rng, 4, 1.0)
    fg = np.empty((h, w, 3), np.float32)
    fg[..., 0] = 0.80 + 0.10 * t_fg
    fg[..., 1] = 0.55 + 0.08 * t_fg
    fg[..., 2] = 0.25 + 0.05 * t_fg
    a3 = alpha[:, :, None]
    image = np.clip(a3 * fg + (1 - a3) * bg, 0, 1).astype(np.float32)
    return image, trimap, alpha
