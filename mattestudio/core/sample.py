"""A synthetic sample a new user can try at once: a furry ball with hair-like strands in front of
a soft, out-of-focus background, with its exact ground-truth alpha.

The alpha is drawn at 4x resolution and averaged down, so strands a fraction of a pixel wide get
true fractional alpha, as hair does in a photo.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

SAMPLE_SIZE = (480, 640)  # H, W


def _background(h: int, w: int, rng: np.random.Generator) -> np.ndarray:
    import cv2

    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    bg = np.dstack([0.15 + 0.35 * xx / w, 0.35 + 0.3 * yy / h, 0.55 - 0.2 * xx / w]).astype(
        np.float32
    )
    # Out-of-focus blobs ("bokeh"): the kind of busy background that makes matting hard.
    for _ in range(40):
        cx, cy = rng.uniform(0, w), rng.uniform(0, h)
        r = rng.uniform(8, 40)
        color = rng.uniform(0.1, 0.95, 3).astype(np.float32)
        disc = ((xx - cx) ** 2 + (yy - cy) ** 2 <= r * r).astype(np.float32)
        disc = cv2.GaussianBlur(disc, (0, 0), 4)[:, :, None]
        bg = bg * (1 - 0.6 * disc) + 0.6 * disc * color
    return np.clip(bg, 0, 1)


def _alpha(h: int, w: int, rng: np.random.Generator, ss: int = 4) -> np.ndarray:
    import cv2

    H, W = h * ss, w * ss
    canvas = np.zeros((H, W), np.uint8)
    cx, cy, r = 0.5 * W, 0.55 * H, 0.27 * min(H, W)
    cv2.circle(canvas, (int(cx), int(cy)), int(r), 255, -1, cv2.LINE_AA)
    # Strands: gently curving thin lines from the body outwards.
    for _ in range(900):
        ang = rng.uniform(0, 2 * np.pi)
        length = r * rng.uniform(0.15, 0.55)
        curl = rng.normal(0, 0.6)
        steps = 12
        pts = []
        for k in range(steps + 1):
            t = k / steps
            a = ang + curl * t * t
            rad = r * 0.92 + length * t
            pts.append((cx + rad * np.cos(a), cy + rad * np.sin(a)))
        poly = np.asarray(pts, np.int32).reshape(-1, 1, 2)
        thickness = int(rng.integers(1, 3))  # 1-2 px at 4x = a quarter to half a pixel
        cv2.polylines(canvas, [poly], False, 255, thickness, cv2.LINE_AA)
    alpha = cv2.resize(canvas.astype(np.float32) / 255.0, (w, h), interpolation=cv2.INTER_AREA)
    return np.clip(alpha, 0, 1)


def _foreground(h: int, w: int, rng: np.random.Generator) -> np.ndarray:
    import cv2

    noise = cv2.GaussianBlur(rng.normal(0, 1, (h, w)).astype(np.float32), (0, 0), 2)
    shade = 0.5 + 0.15 * noise
    fg = np.dstack([0.95 * shade + 0.25, 0.65 * shade + 0.1, 0.3 * shade]).astype(np.float32)
    return np.clip(fg, 0, 1)


def make_sample(seed: int = 7) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Returns (image, trimap, true_alpha, true_foreground); image float32 H x W x 3 in [0, 1]."""
    from mattestudio.core.trimap import from_alpha

    rng = np.random.default_rng(seed)
    h, w = SAMPLE_SIZE
    bg = _background(h, w, rng)
    alpha = _alpha(h, w, rng)
    fg = _foreground(h, w, rng)
    image = alpha[:, :, None] * fg + (1 - alpha[:, :, None]) * bg
    trimap = from_alpha(alpha, band=14)
    return image.astype(np.float32), trimap, alpha.astype(np.float32), fg


def write_sample(folder: str | Path) -> dict[str, Path]:
    """Write sample.png, sample_trimap.png and sample_alpha.png (ground truth) into ``folder``."""
    from mattestudio.core import io

    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    image, trimap, alpha, _ = make_sample()
    paths = {
        "image": folder / "sample.png",
        "trimap": folder / "sample_trimap.png",
        "alpha": folder / "sample_alpha.png",
    }
    io.save_rgb(paths["image"], image)
    io.save_trimap(paths["trimap"], trimap)
    io.save_alpha(paths["alpha"], alpha)
    return paths


def sample_paths() -> dict[str, Path]:
    """The sample in the user's cache folder, written on first use."""
    from platformdirs import user_cache_dir

    folder = Path(user_cache_dir("mattestudio")) / "sample-v1"
    paths = {
        "image": folder / "sample.png",
        "trimap": folder / "sample_trimap.png",
        "alpha": folder / "sample_alpha.png",
    }
    if not all(p.exists() for p in paths.values()):
        write_sample(folder)
    return paths
