"""Foreground color estimation (decontamination) for engines that give only alpha.

Solving I = alpha F + (1 - alpha) B for smooth F and B removes the old background's color from
semi-transparent pixels, so a cut-out carries no halo. Uses pymatting's multilevel estimator
(Germer et al. 2020), which is fast and needs no linear solve.
"""

from __future__ import annotations

import numpy as np


def estimate_foreground(image: np.ndarray, alpha: np.ndarray) -> np.ndarray:
    """``image`` float32 H x W x 3, ``alpha`` float32 H x W -> foreground float32 H x W x 3 in [0, 1]."""
    from pymatting import estimate_foreground_ml

    fg = estimate_foreground_ml(
        np.ascontiguousarray(image, np.float64), np.ascontiguousarray(alpha, np.float64)
    )
    fg = np.clip(fg, 0.0, 1.0).astype(np.float32)
    # Where the object is opaque the photo already is the foreground.
    opaque = alpha >= 0.999
    fg[opaque] = image[opaque]
    return fg
