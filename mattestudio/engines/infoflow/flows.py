"""The four information flows of Aksoy, Aydin and Pollefeys (CVPR 2017), as sparse pieces.

Written from the paper's equations. Every pixel is addressed by its flat index y * w + x.

- Colour-mixture flow (Sec. 3.1): each unknown pixel p is an affine combination of its K_CM nearest
  neighbours in [r, g, b, x/w, y/h]; the weights are the locally-linear-embedding solution
  min |f_p - sum_q w_pq f_q|^2 with sum_q w_pq = 1. Energy sum_p (alpha_p - sum_q w_pq alpha_q)^2.
- Known-to-unknown flow (Sec. 3.2): the same kind of weights over K_KU foreground and K_KU
  background neighbours in [r, g, b, 10 x/w, 10 y/h]; their foreground share w^F_p is an estimate
  of alpha_p, trusted by eta_p = |F_p - B_p|^2 / 3 (how far apart the two estimated colours are).
- Intra-unknown flow (Sec. 3.3): K_U nearest unknown neighbours in [r, g, b, x/(20 w), y/(20 h)]
  with weights max(1 - |f_p - f_q|, 0), symmetrised into a graph Laplacian.
- Local flow (Sec. 3.4): Levin et al.'s matting Laplacian, taken from ``fastcf``.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

import numpy as np
import scipy.sparse
from numba import njit


def features(image: np.ndarray, spatial: float) -> np.ndarray:
    """H*W x 5 float64 feature rows [r, g, b, spatial * x / w, spatial * y / h]."""
    h, w = image.shape[:2]
    out = np.empty((h, w, 5))
    out[..., :3] = image
    out[..., 3] = (spatial / w) * np.arange(w)[None, :]
    out[..., 4] = (spatial / h) * np.arange(h)[:, None]
    return out.reshape(h * w, 5)


def knn(
    database: np.ndarray,
    queries: np.ndarray,
    k: int,
    *,
    own: np.ndarray | None = None,
    eps: float = 0.0,
) -> np.ndarray:
    """Indices into ``database`` of the k nearest rows to each query (scipy's cKDTree).

    ``own``: each query's own row in ``database``, left out of its neighbours. ``eps`` > 0:
    approximate neighbours, each within (1 + eps) of the true k-th distance."""
    from scipy.spatial import cKDTree

    extra = int(own is not None)
    k_eff = min(k + extra, len(database))
    tree = cKDTree(database, balanced_tree=False, compact_nodes=False)
    # All cores: the same answer, 1.13x faster here (docs/benchmarks.md).
    _, idx = tree.query(queries, k=k_eff, workers=-1, eps=float(eps))
    idx = np.asarray(idx, np.int64).reshape(len(queries), k_eff)
    if own is None:
        return idx
    # An exact search finds the row itself first (distance 0); an approximate one may not:
    # drop it where found, else the farthest.
    drop = idx == np.asarray(own, np.int64)[:, None]
    drop[~drop.any(axis=1), -1] = True
    return idx[~drop].reshape(len(idx), k_eff - 1)


@njit(cache=True, nogil=True)
def _lle_weights(feat, query, neigh, reg, out):
    """out[i] = affine weights reconstructing feat[query[i]] from feat[neigh[i]] (sum 1).

    The Gram matrix G = Z Z^T (Z: neighbours minus the query, K x d) has rank <= d < K, so it is
    regularised: (G + eps I) w = 1 with eps = reg * trace(G). Solved through the d x d system
    (Woodbury): (Z Z^T + eps I)^-1 1 = (1 - Z (Z^T Z + eps I)^-1 Z^T 1) / eps.
    """
    n, k = neigh.shape
    d = feat.shape[1]
    z = np.empty((k, d))
    m = np.empty((d, d))
    v = np.empty(d)
    for i in range(n):
        p = query[i]
        tr = 0.0
        for a in range(k):
            q = neigh[i, a]
            for c in range(d):
                t = feat[q, c] - feat[p, c]
                z[a, c] = t
                tr += t * t
        eps = max(reg * tr, 1e-12)
        # m = Z^T Z + eps I, v = Z^T 1
        for c in range(d):
            s = 0.0
            for a in range(k):
                s += z[a, c]
            v[c] = s
            for e in range(c + 1):
                s = 0.0
                for a in range(k):
                    s += z[a, c] * z[a, e]
                m[c, e] = s
            m[c, c] += eps
        # Cholesky of m in place (lower), then solve m y = v
        for c in range(d):
            s = m[c, c]
            for e in range(c):
                s -= m[c, e] * m[c, e]
            s = np.sqrt(s)
            m[c, c] = s
            for r in range(c + 1, d):
                t = m[r, c]
                for e in range(c):
                    t -= m[r, e] * m[c, e]
                m[r, c] = t / s
        for c in range(d):
            t = v[c]
            for e in range(c):
                t -= m[c, e] * v[e]
            v[c] = t / m[c, c]
        for c in range(d - 1, -1, -1):
            t = v[c]
            for e in range(c + 1, d):
                t -= m[e, c] * v[e]
            v[c] = t / m[c, c]
        total = 0.0
        for a in range(k):
            t = 1.0
            for c in range(d):
                t -= z[a, c] * v[c]
            out[i, a] = t  # the common factor 1 / eps cancels in the normalisation
            total += t
        for a in range(k):
            out[i, a] /= total


def lle_weights(
    feat: np.ndarray, query: np.ndarray, neigh: np.ndarray, reg: float = 1e-3
) -> np.ndarray:
    out = np.empty(neigh.shape)
    query = query.astype(np.int64)
    neigh = neigh.astype(np.int64)
    n = len(query)
    if n < 10000 or (os.cpu_count() or 1) < 2:
        _lle_weights(feat, query, neigh, float(reg), out)
        return out
    # Rows are independent and the kernel releases the GIL: the halves on two threads.
    from concurrent.futures import ThreadPoolExecutor

    h = n // 2
    with ThreadPoolExecutor(1) as pool:
        job = pool.submit(_lle_weights, feat, query[h:], neigh[h:], float(reg), out[h:])
        _lle_weights(feat, query[:h], neigh[:h], float(reg), out[:h])
        job.result()
    return out


@dataclass
class Flows:
    """Everything the linear system needs, over flat pixel indices (n = H*W).

    ``mix``: rows e_p - sum_q w_pq e_q for each unknown p (n_u x n), the colour-mixture residuals.
    ``intra``: symmetric non-negative weights between unknown pixels (n x n).
    ``ku_target`` / ``ku_confidence``: per pixel (zero outside the unknown region).
    """

    mix: scipy.sparse.csr_matrix
    intra: scipy.sparse.csr_matrix
    ku_target: np.ndarray
    ku_confidence: np.ndarray


def colour_mixture(
    image: np.ndarray,
    unknown_idx: np.ndarray,
    database_idx: np.ndarray,
    k: int,
    reg: float,
    eps: float = 0.0,
) -> scipy.sparse.csr_matrix:
    h, w = image.shape[:2]
    n = h * w
    feat = features(image, 1.0)
    own = np.searchsorted(database_idx, unknown_idx)  # both sorted; the queries are in the database
    neigh = database_idx[knn(feat[database_idx], feat[unknown_idx], k, own=own, eps=eps)]
    wts = lle_weights(feat, unknown_idx, neigh, reg)
    nu = len(unknown_idx)
    kk = neigh.shape[1]
    # Row i holds its pixel and its kk distinct neighbours: CSR directly, no sort or merge needed.
    indptr = np.arange(0, nu * (kk + 1) + 1, kk + 1)
    cols = np.concatenate([unknown_idx[:, None], neigh], axis=1).ravel()
    vals = np.concatenate([np.ones((nu, 1)), -wts], axis=1).ravel()
    return scipy.sparse.csr_matrix((vals, cols, indptr), shape=(nu, n))


def known_to_unknown(
    image: np.ndarray,
    unknown_idx: np.ndarray,
    fg_idx: np.ndarray,
    bg_idx: np.ndarray,
    k: int,
    reg: float,
    colour_only: bool = True,
    eps: float = 0.0,
):
    """(target w^F_p, confidence eta_p) for each unknown pixel."""
    nu = len(unknown_idx)
    if nu == 0 or len(fg_idx) == 0 or len(bg_idx) == 0:
        return np.zeros(nu), np.zeros(nu)
    feat = features(image, 10.0)
    q = feat[unknown_idx]
    nf = fg_idx[knn(feat[fg_idx], q, k, eps=eps)]
    nb = bg_idx[knn(feat[bg_idx], q, k, eps=eps)]
    neigh = np.concatenate([nf, nb], axis=1)
    # The neighbours are found in colour + position, but the mixture weights are fitted to the
    # colours only: fitting the (10x weighted) positions too makes the foreground share follow
    # the pixel's place between the two regions rather than its colour (measured: SAD 12.2 vs
    # 1.2 for w^F alone on core/sample.py's ball). ``colour_only=False`` is the paper's literal form.
    fit = np.ascontiguousarray(feat[:, :3]) if colour_only else feat
    wts = lle_weights(fit, unknown_idx, neigh, reg)
    kf = nf.shape[1]
    wf = wts[:, :kf].sum(axis=1)
    wb = 1.0 - wf
    colours = image.reshape(-1, 3)
    safe_f = np.where(np.abs(wf) > 1e-6, wf, 1.0)
    safe_b = np.where(np.abs(wb) > 1e-6, wb, 1.0)
    col_f = np.einsum("ik,ikc->ic", wts[:, :kf], colours[nf]) / safe_f[:, None]
    col_b = np.einsum("ik,ikc->ic", wts[:, kf:], colours[nb]) / safe_b[:, None]
    eta = np.clip(((col_f - col_b) ** 2).sum(axis=1) / 3.0, 0.0, 1.0)
    eta[(np.abs(wf) <= 1e-6) | (np.abs(wb) <= 1e-6)] = 0.0
    return wf, eta


def intra_unknown(
    image: np.ndarray, unknown_idx: np.ndarray, k: int, eps: float = 0.0
) -> scipy.sparse.csr_matrix:
    h, w = image.shape[:2]
    n = h * w
    nu = len(unknown_idx)
    if nu <= 1:
        return scipy.sparse.csr_matrix((n, n))
    feat = features(image, 1.0 / 20.0)
    fu = feat[unknown_idx]
    neigh = knn(fu, fu, k, own=np.arange(nu), eps=eps)
    dist = np.sqrt(((fu[neigh] - fu[:, None, :]) ** 2).sum(axis=2))
    wts = np.maximum(1.0 - dist, 0.0)
    rows = np.repeat(unknown_idx, neigh.shape[1])
    cols = unknown_idx[neigh].ravel()
    m = scipy.sparse.csr_matrix((wts.ravel(), (rows, cols)), shape=(n, n))
    return ((m + m.T) * 0.5).tocsr()


def known_to_unknown_flow(
    image64: np.ndarray,
    trimap: np.ndarray,
    *,
    k_ku: int = 7,
    reg: float = 1e-3,
    colour_only=True,
    eps: float = 0.0,
) -> tuple[np.ndarray, np.ndarray]:
    """(target, confidence) of the known-to-unknown flow per pixel (H*W; zero where known)."""
    from mattestudio.types import BACKGROUND, FOREGROUND, UNKNOWN

    flat = trimap.ravel()
    ui = np.flatnonzero(flat == UNKNOWN)
    wf, eta = known_to_unknown(
        image64,
        ui,
        np.flatnonzero(flat == FOREGROUND),
        np.flatnonzero(flat == BACKGROUND),
        int(k_ku),
        reg,
        colour_only,
        eps,
    )
    target = np.zeros(flat.size)
    conf = np.zeros(flat.size)
    target[ui] = wf
    conf[ui] = eta
    return target, conf


def compute(
    image64: np.ndarray,
    trimap: np.ndarray,
    *,
    k_mix: int = 20,
    k_ku: int = 7,
    k_uu: int = 5,
    band: int = 5,
    reg: float = 1e-3,
    known_rows: bool = False,
    ku_colour_only: bool = True,
    ku: tuple[np.ndarray, np.ndarray] | None = None,
    eps: float = 0.0,
    check=None,
) -> Flows:
    """All non-local flows for a trimap (uint8 0 / 128 / 255). ``band``: colour-mixture neighbours
    are searched among the unknown pixels and the known ones within this many pixels of them;
    with ``known_rows`` those known pixels also get a mixture equation (the paper writes one for
    the unknown pixels only), which ties the unknown pixels they mix from to their known alpha.
    ``ku``: the known-to-unknown flow if already made by ``known_to_unknown_flow``. ``eps``:
    approximate neighbour searches (cKDTree's eps; docs/benchmarks.md measures its effect).
    ``check(fraction)`` is called between the stages (progress and cancellation)."""
    import cv2

    from mattestudio.types import UNKNOWN

    unknown = trimap == UNKNOWN
    ui = np.flatnonzero(trimap.ravel() == UNKNOWN)
    size = 2 * int(band) + 1
    near = cv2.dilate(unknown.astype(np.uint8), np.ones((size, size), np.uint8)) > 0
    di = np.flatnonzero(near.ravel())
    if check is not None:
        check(0.0)
    if ku is None:
        ku = known_to_unknown_flow(image64, trimap, k_ku=k_ku, reg=reg, colour_only=ku_colour_only)
    if check is not None:
        check(0.35)
    mix = colour_mixture(image64, di if known_rows else ui, di, int(k_mix), reg, eps)
    if check is not None:
        check(0.8)
    intra = intra_unknown(image64, ui, int(k_uu), eps)
    if check is not None:
        check(1.0)
    return Flows(mix, intra, ku[0], ku[1])
