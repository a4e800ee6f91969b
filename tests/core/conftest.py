"""Fixtures shared by the core tests."""

import numpy as np
import pytest


@pytest.fixture
def make_layers():
    """Factory: random (image, foreground, alpha, trimap) of size h x w; alpha has an exact 0 and 1."""

    def make(h: int, w: int, seed: int = 0):
        rng = np.random.default_rng(seed)
        image = rng.random((h, w, 3), dtype=np.float32)
        fg = rng.random((h, w, 3), dtype=np.float32)
        alpha = rng.random((h, w), dtype=np.float32)
        alpha[0, 0], alpha[0, 1] = 0.0, 1.0
        trimap = rng.choice(np.array([0, 128, 255], np.uint8), size=(h, w))
        return image, fg, alpha, trimap

    return make
