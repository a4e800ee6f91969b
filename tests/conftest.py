"""Shared fixtures. Every test makes its own data; nothing is read from outside the repository."""

from __future__ import annotations

import os
import sys
from pathlib import Path

# tests/scenes.py and other plain helper modules import by name (pytest runs in importlib mode)
sys.path.insert(0, str(Path(__file__).parent))

# Qt tests (tests/ui) run without a screen; set before anything imports Qt.
os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

from dataclasses import dataclass

import numpy as np
import pytest

SYNTH_H, SYNTH_W = 64, 80


@dataclass(frozen=True)
class SyntheticMatte:
    """A known composite: image = alpha * foreground + (1 - alpha) * background."""

    image: np.ndarray  # float32 H x W x 3 in [0, 1]
    alpha: np.ndarray  # float32 H x W in [0, 1], the ground truth
    foreground: np.ndarray  # float32 H x W x 3
    background: np.ndarray  # float32 H x W x 3
    trimap: np.ndarray  # uint8 {0, 128, 255}, from core.trimap.from_alpha

    @property
    def shape(self) -> tuple[int, int]:
        return self.alpha.shape


def make_synthetic_alpha(h: int = SYNTH_H, w: int = SYNTH_W, ss: int = 4) -> np.ndarray:
    """A disc with a soft (about 3 px) edge plus a few thin strands, drawn at ``ss``x and averaged
    down so the strands carry fractional alpha."""
    import cv2

    H, W = h * ss, w * ss
    yy, xx = np.mgrid[0:H, 0:W].astype(np.float32) / ss
    cy, cx, r = 0.5 * h, 0.45 * w, 0.28 * min(h, w)
    dist = np.sqrt((yy - cy) ** 2 + (xx - cx) ** 2)
    disc = np.clip((r - dist) / 3.0 + 0.5, 0.0, 1.0)  # linear ramp 3 px wide across the edge
    canvas = (disc * 255).astype(np.uint8)
    for ang in (0.2, 0.9, 2.4, 3.6, 5.1):  # strands leaving the disc
        x0 = cx + 0.9 * r * np.cos(ang)
        y0 = cy + 0.9 * r * np.sin(ang)
        x1 = cx + 1.6 * r * np.cos(ang + 0.15)
        y1 = cy + 1.6 * r * np.sin(ang + 0.15)
        cv2.line(
            canvas, (int(x0 * ss), int(y0 * ss)), (int(x1 * ss), int(y1 * ss)), 255, 2, cv2.LINE_AA
        )
    alpha = cv2.resize(canvas.astype(np.float32) / 255.0, (w, h), interpolation=cv2.INTER_AREA)
    return np.clip(alpha, 0.0, 1.0).astype(np.float32)


def make_synthetic_matte(
    h: int = SYNTH_H, w: int = SYNTH_W, seed: int = 3, band: int = 8
) -> SyntheticMatte:
    import cv2

    from mattestudio.core.trimap import from_alpha

    rng = np.random.default_rng(seed)
    alpha = make_synthetic_alpha(h, w)
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    # Foreground: warm orange with mild smooth texture. Background: a cool blue-green gradient
    # with smooth blotches, so the two are well separated in color.
    tex = cv2.GaussianBlur(rng.normal(0, 1, (h, w)).astype(np.float32), (0, 0), 2)
    fg = np.dstack([0.85 + 0.05 * tex, 0.55 + 0.05 * tex, 0.2 + 0.03 * tex])
    blot = cv2.GaussianBlur(rng.normal(0, 1, (h, w)).astype(np.float32), (0, 0), 4)
    bg = np.dstack([0.1 + 0.1 * xx / w, 0.35 + 0.2 * yy / h + 0.1 * blot, 0.6 - 0.1 * xx / w])
    fg = np.clip(fg, 0, 1).astype(np.float32)
    bg = np.clip(bg, 0, 1).astype(np.float32)
    image = (alpha[:, :, None] * fg + (1 - alpha[:, :, None]) * bg).astype(np.float32)
    trimap = from_alpha(alpha, band=band)
    return SyntheticMatte(image=image, alpha=alpha, foreground=fg, background=bg, trimap=trimap)


@pytest.fixture(scope="session")
def _synthetic_matte_cached() -> SyntheticMatte:
    return make_synthetic_matte()


@pytest.fixture
def synthetic_matte(_synthetic_matte_cached) -> SyntheticMatte:
    """A fresh copy of the synthetic composite, so a test may modify its arrays."""
    m = _synthetic_matte_cached
    return SyntheticMatte(
        image=m.image.copy(),
        alpha=m.alpha.copy(),
        foreground=m.foreground.copy(),
        background=m.background.copy(),
        trimap=m.trimap.copy(),
    )


@pytest.fixture
def synthetic_files(synthetic_matte, tmp_path):
    """The synthetic composite written as PNG files: {'image', 'trimap', 'alpha'} -> Path."""
    import cv2

    paths = {
        "image": tmp_path / "image.png",
        "trimap": tmp_path / "trimap.png",
        "alpha": tmp_path / "alpha.png",
    }
    rgb8 = np.clip(np.rint(synthetic_matte.image * 255), 0, 255).astype(np.uint8)
    assert cv2.imwrite(str(paths["image"]), rgb8[:, :, ::-1])
    assert cv2.imwrite(str(paths["trimap"]), synthetic_matte.trimap)
    assert cv2.imwrite(str(paths["alpha"]), np.rint(synthetic_matte.alpha * 255).astype(np.uint8))
    return paths
