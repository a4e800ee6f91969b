"""Levin et al.'s matting Laplacian, restricted to the unknown pixels.

Same model as pymatting's ``cf_laplacian``: (2r+1)^2 windows whose centre lies at least r pixels
inside the image, covariance (sum c c^T + epsilon I) / |w|, entry
L_ij = sum_w [i == j] - (1 + c_i^T M_w c_j) / |w|.

Split in two so the editor pays only for what a stroke changes:

- ``window_stats(image)`` (per image, trimap-independent): window means and inverse covariances.
- ``assemble(stats, image, trimap)`` (per trimap): only windows touching an unknown pixel, only the
  unknown rows; pairs (unknown, foreground) go straight into the right-hand side and pairs with a
  background pixel vanish (alpha = 0 there). Output is the CSR matrix L_U and b with L_U x = b.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import scipy.sparse
from numba import njit


@dataclass
class WindowStats:
    """Per-window mean colour and inverse regularised covariance (6 unique entries), float64.

    ``mean`` / ``inv`` None (``WindowStats.lazy(radius, epsilon)``): ``assemble`` computes each
    window's statistics where it visits it, i.e. only for windows touching an unknown pixel. That is
    what the engine uses: computing a window's statistics costs about as much as reading them back,
    so a whole-image table in ``prepare()`` only added a fixed cost (about 30 ms per 0.5 MP).
    """

    radius: int
    epsilon: float
    mean: np.ndarray | None = None  # h x w x 3 (valid for interior centres only)
    inv: np.ndarray | None = None  # h x w x 6: m00 m01 m02 m11 m12 m22

    @classmethod
    def lazy(cls, radius: int = 1, epsilon: float = 1e-7) -> WindowStats:
        return cls(int(radius), float(epsilon))

    @property
    def nbytes(self) -> int:
        return 0 if self.mean is None or self.inv is None else self.mean.nbytes + self.inv.nbytes


@njit(cache=True, nogil=True, inline="always")
def _stats_at(image, y, x, r, epsilon):
    """Mean colour and inverse regularised covariance (m00 m01 m02 m11 m12 m22) of the window at (y, x)."""
    area = (2 * r + 1) ** 2
    s0 = s1 = s2 = 0.0
    q00 = q01 = q02 = q11 = q12 = q22 = 0.0
    for yy in range(y - r, y + r + 1):
        for xx in range(x - r, x + r + 1):
            p0 = image[yy, xx, 0]
            p1 = image[yy, xx, 1]
            p2 = image[yy, xx, 2]
            s0 += p0
            s1 += p1
            s2 += p2
            q00 += p0 * p0
            q01 += p0 * p1
            q02 += p0 * p2
            q11 += p1 * p1
            q12 += p1 * p2
            q22 += p2 * p2
    m0 = s0 / area
    m1 = s1 / area
    m2 = s2 / area
    # Centred second moments; equal to pymatting's sum of centred products up to rounding.
    a00 = (q00 - s0 * m0 + epsilon) / area
    a01 = (q01 - s0 * m1) / area
    a02 = (q02 - s0 * m2) / area
    a11 = (q11 - s1 * m1 + epsilon) / area
    a12 = (q12 - s1 * m2) / area
    a22 = (q22 - s2 * m2 + epsilon) / area
    c00 = a11 * a22 - a12 * a12
    c01 = a02 * a12 - a01 * a22
    c02 = a01 * a12 - a02 * a11
    det = a00 * c00 + a01 * c01 + a02 * c02
    inv_det = 1.0 / det
    return (
        m0,
        m1,
        m2,
        c00 * inv_det,
        c01 * inv_det,
        c02 * inv_det,
        (a00 * a22 - a02 * a02) * inv_det,
        (a01 * a02 - a00 * a12) * inv_det,
        (a00 * a11 - a01 * a01) * inv_det,
    )


@njit(cache=True, nogil=True)
def _window_stats(image, r, epsilon, mean, inv, y0, y1):
    h, w, _ = image.shape
    for y in range(max(y0, r), min(y1, h - r)):
        for x in range(r, w - r):
            m0, m1, m2, i0, i1, i2, i3, i4, i5 = _stats_at(image, y, x, r, epsilon)
            mean[y, x, 0] = m0
            mean[y, x, 1] = m1
            mean[y, x, 2] = m2
            inv[y, x, 0] = i0
            inv[y, x, 1] = i1
            inv[y, x, 2] = i2
            inv[y, x, 3] = i3
            inv[y, x, 4] = i4
            inv[y, x, 5] = i5


def window_stats(image: np.ndarray, epsilon: float = 1e-7, radius: int = 1) -> WindowStats:
    """Trimap-independent per-window statistics of an H x W x 3 image (float64 internally)."""
    img = np.ascontiguousarray(image, np.float64)
    h, w = img.shape[:2]
    mean = np.zeros((h, w, 3))
    inv = np.zeros((h, w, 6))
    _window_stats(img, int(radius), float(epsilon), mean, inv, 0, h)
    return WindowStats(int(radius), float(epsilon), mean, inv)


@njit(cache=True, nogil=True)
def _assemble(image, mean, inv, have_stats, r, epsilon, centres, index, known, values, rhs):
    """Accumulate every window in ``centres`` into the unknown rows.

    Window statistics come from ``mean`` / ``inv`` when ``have_stats``, else are computed here
    (same arithmetic, so the same bits): only the windows that touch an unknown pixel are visited.

    ``index``: unknown number per pixel or -1; ``values``: (n_unknown, 4r+1, 4r+1) slots for the
    neighbour at offset (dy, dx) + 2r; ``rhs`` gets -L_ij * known[j] for fixed pixels j.
    """
    area = (2 * r + 1) ** 2
    size = 2 * r + 1
    inv_area = 1.0 / area
    span = 4 * r + 1
    c = np.empty((area, 3))
    mc = np.empty((area, 3))
    idx = np.empty(area, np.int64)
    kv = np.empty(area)
    ua = np.empty(area, np.int64)
    ka = np.empty(area, np.int64)
    # Window-relative tables, so the pair loop has no integer division.
    oy = np.empty(area, np.int64)
    ox = np.empty(area, np.int64)
    for a in range(area):
        oy[a] = a // size
        ox[a] = a % size
    flat = values.reshape(values.shape[0], span * span)
    for k in range(centres.shape[0]):
        y = centres[k, 0]
        x = centres[k, 1]
        if have_stats:
            u0 = mean[y, x, 0]
            u1 = mean[y, x, 1]
            u2 = mean[y, x, 2]
            m00 = inv[y, x, 0]
            m01 = inv[y, x, 1]
            m02 = inv[y, x, 2]
            m11 = inv[y, x, 3]
            m12 = inv[y, x, 4]
            m22 = inv[y, x, 5]
        else:
            u0, u1, u2, m00, m01, m02, m11, m12, m22 = _stats_at(image, y, x, r, epsilon)
        # Unknown pixels of the window (variables) and known ones with a non-zero value (they feed
        # the right-hand side; pixels at alpha 0, e.g. background, contribute nothing).
        nu = 0
        nk = 0
        for a in range(area):
            yy = y - r + oy[a]
            xx = x - r + ox[a]
            ia = index[yy, xx]
            if ia >= 0:
                ua[nu] = a
                nu += 1
            else:
                kva = known[yy, xx]
                if kva == 0.0:
                    continue
                kv[a] = kva
                ka[nk] = a
                nk += 1
            c0 = image[yy, xx, 0] - u0
            c1 = image[yy, xx, 1] - u1
            c2 = image[yy, xx, 2] - u2
            c[a, 0] = c0
            c[a, 1] = c1
            c[a, 2] = c2
            mc[a, 0] = m00 * c0 + m01 * c1 + m02 * c2
            mc[a, 1] = m01 * c0 + m11 * c1 + m12 * c2
            mc[a, 2] = m02 * c0 + m12 * c1 + m22 * c2
            idx[a] = ia
        for p in range(nu):
            a = ua[p]
            ia = idx[a]
            row = flat[ia]
            for q in range(p, nu):  # symmetric: each pair once, written to both rows
                bb = ua[q]
                v = (
                    -(1.0 + mc[a, 0] * c[bb, 0] + mc[a, 1] * c[bb, 1] + mc[a, 2] * c[bb, 2])
                    * inv_area
                )
                if a == bb:
                    row[2 * r * span + 2 * r] += v + 1.0
                else:
                    dy = oy[bb] - oy[a]
                    dx = ox[bb] - ox[a]
                    row[(dy + 2 * r) * span + dx + 2 * r] += v
                    flat[idx[bb], (2 * r - dy) * span + 2 * r - dx] += v
            acc = 0.0
            for q in range(nk):
                bb = ka[q]
                v = (
                    -(1.0 + mc[a, 0] * c[bb, 0] + mc[a, 1] * c[bb, 1] + mc[a, 2] * c[bb, 2])
                    * inv_area
                )
                acc += v * kv[bb]
            rhs[ia] -= acc


@njit(cache=True, nogil=True)
def _to_csr(values, coords, index, r, indptr, indices, data):
    """Compress the dense neighbour slots of each unknown row into CSR (sorted columns)."""
    h, w = index.shape
    span = 4 * r + 1
    k = 0
    for i in range(values.shape[0]):
        y = coords[i, 0]
        x = coords[i, 1]
        for dy in range(span):
            yy = y + dy - 2 * r
            if yy < 0 or yy >= h:
                continue
            for dx in range(span):
                xx = x + dx - 2 * r
                if xx < 0 or xx >= w:
                    continue
                j = index[yy, xx]
                if j >= 0 and values[i, dy, dx] != 0.0:
                    indices[k] = j
                    data[k] = values[i, dy, dx]
                    k += 1
        indptr[i + 1] = k
    return k


@dataclass
class System:
    """L_U x = b over the unknown pixels, listed row-major in ``coords``."""

    matrix: scipy.sparse.csr_matrix
    rhs: np.ndarray
    coords: np.ndarray  # n x 2 (y, x) int64
    index: np.ndarray  # h x w int64: unknown number or -1


def window_centres(unknown: np.ndarray, r: int) -> np.ndarray:
    """Interior window centres whose window contains an unknown pixel (n x 2 int64)."""
    import cv2

    h, w = unknown.shape
    touch = cv2.dilate(unknown.astype(np.uint8), np.ones((2 * r + 1, 2 * r + 1), np.uint8)) > 0
    touch[:r, :] = False
    touch[h - r :, :] = False
    touch[:, :r] = False
    touch[:, w - r :] = False
    return np.argwhere(touch).astype(np.int64)


def assemble(
    stats: WindowStats, image: np.ndarray, unknown: np.ndarray, known: np.ndarray
) -> System:
    """The linear system for the pixels where ``unknown`` (H x W bool) holds.

    ``known`` (H x W float) gives the fixed alpha of every other pixel: the trimap's 0 / 1 for a
    full solve, or also a previous alpha for unknown pixels outside a local re-solve. ``stats``
    must be the statistics of this same image (or the same crop of it).
    """
    img = np.ascontiguousarray(image, np.float64)
    r = stats.radius
    coords = np.argwhere(unknown).astype(np.int64)
    n = len(coords)
    index = np.full(unknown.shape, -1, np.int64)
    index[coords[:, 0], coords[:, 1]] = np.arange(n)
    span = 4 * r + 1
    values = np.zeros((n, span, span))
    rhs = np.zeros(n)
    have = stats.mean is not None
    dummy = np.zeros((1, 1, 6))
    _assemble(
        img,
        stats.mean if have else dummy,
        stats.inv if have else dummy,
        have,
        r,
        float(stats.epsilon),
        window_centres(unknown, r),
        index,
        np.ascontiguousarray(known, np.float64),
        values,
        rhs,
    )
    # int32 indices halve the matrix's memory; int64 only past 2^31 entries.
    itype = np.int32 if n * span * span < 2**31 else np.int64
    indptr = np.zeros(n + 1, itype)
    indices = np.empty(n * span * span, itype)
    data = np.empty(n * span * span)
    nnz = _to_csr(values, coords, index, r, indptr, indices, data)
    del values
    mat = scipy.sparse.csr_matrix((data[:nnz], indices[:nnz], indptr), (n, n), copy=False)
    return System(mat, rhs, coords, index)


def crop_stats(stats: WindowStats, y0: int, y1: int, x0: int, x1: int) -> WindowStats:
    """Statistics of a crop (views). Only windows at least r inside the crop are valid, which is
    all a local solve uses when the crop extends 2r beyond its variables or ends at the image border."""
    if stats.mean is None or stats.inv is None:
        return stats
    return WindowStats(
        stats.radius, stats.epsilon, stats.mean[y0:y1, x0:x1], stats.inv[y0:y1, x0:x1]
    )
