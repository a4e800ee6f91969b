"""The field's matting errors (Composition-1K / Adobe MATLAB definitions), over the trimap's unknown region.

All functions take ``pred`` and ``gt`` as alpha in [0, 1] (float) or 0..255 (uint8) and a trimap;
"unknown" means trimap == 128 exactly, as in the reference code. SAD, Grad and Conn are divided
by 1000 as published; MSE is the plain mean (papers often print it x 1000).
"""

from __future__ import annotations

import math

import numpy as np

from mattestudio.types import UNKNOWN


def _unit(a: np.ndarray) -> np.ndarray:
    a = np.asarray(a)
    if a.dtype == np.uint8:
        return a.astype(np.float64) / 255.0
    return a.astype(np.float64)


def _unknown(trimap: np.ndarray) -> np.ndarray:
    return np.asarray(trimap) == UNKNOWN


def sad(pred, gt, trimap) -> float:
    """Sum of absolute differences over the unknown region, / 1000."""
    m = _unknown(trimap)
    return float(np.abs(_unit(pred) - _unit(gt))[m].sum() / 1000.0)


def mse(pred, gt, trimap) -> float:
    """Mean squared difference over the unknown region (0 if it is empty)."""
    m = _unknown(trimap)
    n = int(m.sum())
    if n == 0:
        return 0.0
    return float(((_unit(pred) - _unit(gt)) ** 2)[m].sum() / n)


def gaussian_gradient_kernel(sigma: float = 1.4, epsilon: float = 0.01) -> np.ndarray:
    """hx of MATLAB's gaussgradient: g(row offset) * g'(column offset), unit L2 norm."""
    half = int(
        math.ceil(sigma * math.sqrt(-2.0 * math.log(math.sqrt(2.0 * math.pi) * sigma * epsilon)))
    )
    u = np.arange(-half, half + 1, dtype=np.float64)
    g = np.exp(-(u**2) / (2 * sigma**2)) / (sigma * math.sqrt(2 * math.pi))
    dg = -u * g / sigma**2
    hx = g[:, None] * dg[None, :]
    return hx / np.sqrt((hx**2).sum())


def _mat2gray(a: np.ndarray) -> np.ndarray:
    lo, hi = a.min(), a.max()
    if hi <= lo:
        return np.zeros_like(a)
    return (a - lo) / (hi - lo)


def _grad_magnitude(a: np.ndarray, sigma: float) -> np.ndarray:
    import cv2

    hx = gaussian_gradient_kernel(sigma)
    gx = cv2.filter2D(a, cv2.CV_64F, hx, borderType=cv2.BORDER_REPLICATE)
    gy = cv2.filter2D(a, cv2.CV_64F, hx.T.copy(), borderType=cv2.BORDER_REPLICATE)
    return np.sqrt(gx**2 + gy**2)


def gradient_error(pred, gt, trimap, sigma: float = 1.4) -> float:
    """Squared difference of Gaussian-gradient magnitudes over the unknown region, / 1000."""
    p = _mat2gray(_unit(pred))
    t = _mat2gray(_unit(gt))
    d = (_grad_magnitude(p, sigma) - _grad_magnitude(t, sigma)) ** 2
    return float(d[_unknown(trimap)].sum() / 1000.0)


def _largest_component(mask: np.ndarray) -> np.ndarray:
    import cv2

    n, labels, stats, _ = cv2.connectedComponentsWithStats(mask.astype(np.uint8), connectivity=4)
    if n <= 1:
        return np.zeros(mask.shape, bool)
    biggest = 1 + int(np.argmax(stats[1:, cv2.CC_STAT_AREA]))
    return labels == biggest


def connectivity_error(pred, gt, trimap, step: float = 0.1, theta: float = 0.15) -> float:
    """Connectivity error of Rhemann et al. as in the MATLAB reference, / 1000."""
    p = _unit(pred)
    t = _unit(gt)
    thresholds = np.arange(0.0, 1.0 + step / 2, step)
    level = np.full(p.shape, -1.0)
    for i in range(1, len(thresholds)):
        omega = _largest_component((p >= thresholds[i]) & (t >= thresholds[i]))
        level[(level == -1) & ~omega] = thresholds[i - 1]
    level[level == -1] = 1.0
    dp = p - level
    dt = t - level
    phi_p = 1.0 - dp * (dp >= theta)
    phi_t = 1.0 - dt * (dt >= theta)
    return float(np.abs(phi_p - phi_t)[_unknown(trimap)].sum() / 1000.0)


def all_metrics(pred, gt, trimap) -> dict[str, float]:
    return {
        "sad": sad(pred, gt, trimap),
        "mse": mse(pred, gt, trimap),
        "grad": gradient_error(pred, gt, trimap),
        "conn": connectivity_error(pred, gt, trimap),
    }
