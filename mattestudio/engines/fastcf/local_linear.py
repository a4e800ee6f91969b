"""The closed-form model's local linear coefficients with box filters, matrix-free.

In every window k the matting Laplacian fits alpha = a_k . I + b_k (Levin et al. 2008):
a_k = (Sigma_k + epsilon / |w| I)^-1 (mean(I alpha)_k - mu_k mean(alpha)_k), b_k = mean(alpha)_k -
a_k . mu_k, and (L alpha)_i = sum over the windows k holding i of (alpha_i - a_k . I_i - b_k).
Both come out of a dozen box filters, without assembling a matrix:

- ``laplacian_times(image, alpha)``: L alpha over the whole image (the residual of a candidate
  alpha; same L as ``laplacian.assemble``: windows whose centre is at least r inside the image);
- ``guided_upsample(small_image, small_alpha, image)``: a coarse alpha brought to full size along
  the full-resolution image's edges (the guided filter's upsampling, He et al. 2013): the coarse
  coefficients, averaged and resized, applied to the full-resolution colours.

Work is done in float64 horizontal strips, so memory stays a few rows' worth at any size.
"""

from __future__ import annotations

import numpy as np

STRIP_ROWS = 256


def _box(x: np.ndarray, r: int) -> np.ndarray:
    import cv2

    return cv2.blur(x, (2 * r + 1, 2 * r + 1), borderType=cv2.BORDER_REFLECT)


def _coefficients(img: np.ndarray, p: np.ndarray, r: int, epsilon: float):
    """(a h x w x 3, b h x w) of every window centre of a float64 crop (border centres are
    computed with reflected pixels; callers ignore or zero them)."""
    area = (2 * r + 1) ** 2
    mu = _box(img, r)
    pbar = _box(p, r)
    cross = _box(img * p[..., None], r) - mu * pbar[..., None]
    c = {}
    for i in range(3):
        for j in range(i, 3):
            c[i, j] = _box(img[..., i] * img[..., j], r) - mu[..., i] * mu[..., j]
        c[i, i] += epsilon / area
    c00, c01, c02, c11, c12, c22 = c[0, 0], c[0, 1], c[0, 2], c[1, 1], c[1, 2], c[2, 2]
    i00 = c11 * c22 - c12 * c12
    i01 = c02 * c12 - c01 * c22
    i02 = c01 * c12 - c02 * c11
    i11 = c00 * c22 - c02 * c02
    i12 = c01 * c02 - c00 * c12
    i22 = c00 * c11 - c01 * c01
    det = c00 * i00 + c01 * i01 + c02 * i02
    x0, x1, x2 = cross[..., 0], cross[..., 1], cross[..., 2]
    a = np.empty_like(mu)
    a[..., 0] = (i00 * x0 + i01 * x1 + i02 * x2) / det
    a[..., 1] = (i01 * x0 + i11 * x1 + i12 * x2) / det
    a[..., 2] = (i02 * x0 + i12 * x1 + i22 * x2) / det
    b = pbar - (a * mu).sum(axis=2)
    return a, b


def _strips(h: int, halo: int):
    for y0 in range(0, h, STRIP_ROWS):
        y1 = min(h, y0 + STRIP_ROWS)
        yield y0, y1, max(0, y0 - halo), min(h, y1 + halo)


def laplacian_times(
    image: np.ndarray, alpha: np.ndarray, radius: int = 1, epsilon: float = 1e-7
) -> np.ndarray:
    """L alpha (H x W float64) for the closed-form Laplacian of ``image`` (H x W x 3)."""
    import cv2

    h, w = alpha.shape
    r = radius
    out = np.empty((h, w))
    k = (2 * r + 1, 2 * r + 1)
    for y0, y1, c0, c1 in _strips(h, 2 * r):
        img = np.ascontiguousarray(image[c0:c1], np.float64)
        p = np.ascontiguousarray(alpha[c0:c1], np.float64)
        a, b = _coefficients(img, p, r, epsilon)
        # Only windows whose centre lies at least r inside the image exist.
        valid = np.zeros((c1 - c0, w))
        valid[max(r, c0) - c0 : min(h - r, c1) - c0, r : w - r] = 1.0
        a *= valid[..., None]
        b *= valid
        kw = {"normalize": False, "borderType": cv2.BORDER_CONSTANT}
        n = cv2.boxFilter(valid, -1, k, **kw)
        sa = cv2.boxFilter(a, -1, k, **kw)
        sb = cv2.boxFilter(b, -1, k, **kw)
        lp = n * p - (sa * img).sum(axis=2) - sb
        out[y0:y1] = lp[y0 - c0 : y1 - c0]
    return out


def guided_upsample(
    small_image: np.ndarray,
    small_alpha: np.ndarray,
    image: np.ndarray,
    radius: int = 1,
    epsilon: float = 1e-4,
) -> np.ndarray:
    """``small_alpha`` (h x w, the solve of ``small_image``) at ``image``'s size (H x W float32):
    the coarse windows' mean linear coefficients, resized, applied to the full-resolution colours."""
    import cv2

    img = np.ascontiguousarray(small_image, np.float64)
    a, b = _coefficients(img, np.ascontiguousarray(small_alpha, np.float64), radius, epsilon)
    a = _box(a, radius).astype(np.float32)
    b = _box(b, radius).astype(np.float32)
    h, w = image.shape[:2]
    out = np.empty((h, w), np.float32)
    # Resize the coefficients strip by strip: full-size float32 a (3 channels) would be 12 bytes
    # a pixel. cv2.resize maps output row y to input row (y + 0.5) * sh / h - 0.5.
    sh = small_alpha.shape[0]
    for y0, y1, _, _ in _strips(h, 0):
        s0 = max(0, int(np.floor((y0 + 0.5) * sh / h - 0.5)) - 1)
        s1 = min(sh, int(np.ceil((y1 - 0.5) * sh / h - 0.5)) + 2)
        fx, fy = w / a.shape[1], h / sh
        # cv2.resize's map, x' = (x + 0.5) f - 0.5, for the rows s0..s1 shifted to the strip.
        m = np.array([[fx, 0, 0.5 * fx - 0.5], [0, fy, (s0 + 0.5) * fy - 0.5 - y0]])
        size = (w, y1 - y0)
        kw = {"flags": cv2.INTER_LINEAR, "borderMode": cv2.BORDER_REPLICATE}
        ra = cv2.warpAffine(a[s0:s1], m, size, **kw)
        rb = cv2.warpAffine(b[s0:s1], m, size, **kw)
        out[y0:y1] = (ra * image[y0:y1]).sum(axis=2) + rb
    return out
