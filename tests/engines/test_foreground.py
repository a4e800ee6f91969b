"""Foreground estimation removes the old background's color from semi-transparent pixels."""

import numpy as np

from mattestudio.engines.foreground import estimate_foreground


def test_foreground_estimate_removes_background_halo():
    h, w = 40, 60
    yy, xx = np.mgrid[:h, :w]
    alpha = np.clip((14 - np.hypot(yy - 20, xx - 30)) / 6 + 0.5, 0, 1).astype(np.float32)
    fg = np.empty((h, w, 3), np.float32)
    fg[:] = (0.9, 0.6, 0.1)  # orange subject
    bg = np.empty((h, w, 3), np.float32)
    bg[:] = (0.1, 0.2, 0.9)  # over a blue background
    image = alpha[..., None] * fg + (1 - alpha[..., None]) * bg
    est = estimate_foreground(image, alpha)
    soft = (alpha > 0.1) & (alpha < 0.9)
    assert soft.sum() > 50
    err_image = np.abs(image[soft] - fg[soft]).mean()  # using the photo as the cut-out's colors
    err_est = np.abs(est[soft] - fg[soft]).mean()
    assert err_est < 0.1 * err_image
    # Opaque pixels keep the photo's colors exactly.
    assert np.array_equal(est[alpha >= 0.999], image[alpha >= 0.999])
