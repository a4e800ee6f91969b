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

# How far position counts against colour in each flow's neighbour search (module docstring).
MIX_SPATIAL = 1.0
KU_SPATIAL = 10.0
INTRA_SPATIAL = 1.0 / 20.0


def index_type(largest: int) -> type[np.signedinteger]:
    """int32 for indices and counts below 2^31 (scipy's own choice for sparse matrices of such
    sizes: half the bytes of int64 in every neighbour table), else int64."""
    return np.int32 if largest < 2**31 else np.int64


def pixels_where(mask: np.ndarray) -> np.ndarray:
    """Flat indices of ``mask``'s true pixels, sorted, in ``index_type``: the neighbour tables'
    and the CSR matrices' own index type."""
    return np.flatnonzero(mask.ravel()).astype(index_type(mask.size), copy=False)


@njit(cache=True, nogil=True)
def _search_rows(colours, width, sx, sy, pixels, out):
    for i in range(len(pixels)):
        p = pixels[i]
        for c in range(3):
            out[i, c] = colours[p, c]
        out[i, 3] = sx * (p % width)
        out[i, 4] = sy * (p // width)


def search_rows(image64: np.ndarray, spatial: float, pixels: np.ndarray) -> np.ndarray:
    """len(pixels) x 5 float32 feature rows [r, g, b, spatial * x / w, spatial * y / h] of the
    flat ``pixels``: what a search reads, each value computed in float64 and rounded once
    (``nearest``), made directly for the pixels searched rather than as an H*W x 5 float64 array
    cast and gathered (three fresh arrays of the whole image per flow)."""
    h, w = image64.shape[:2]
    out = np.empty((len(pixels), 5), np.float32)
    _search_rows(_colours(image64), w, spatial / w, spatial / h, pixels, out)
    return out


def _colours(image64: np.ndarray) -> np.ndarray:
    """H*W x 3 float64 view of the image (the kernels read a pixel's colour by flat index)."""
    return np.ascontiguousarray(image64, np.float64).reshape(-1, 3)


def knn_with_reach(
    database: np.ndarray,
    queries: np.ndarray,
    k: int,
    *,
    own: np.ndarray | None = None,
    eps: float = 0.0,
) -> tuple[np.ndarray, np.ndarray]:
    """Indices into ``database`` of the k nearest rows to each query (``nearest``), and each
    query's reach: the distance to its farthest found neighbour. A change to the database farther
    than that from a query cannot change its neighbours (``update``).

    ``own``: each query's own row in ``database``, left out of its neighbours. ``eps`` > 0:
    approximate neighbours, each within (1 + eps) of the true k-th distance."""
    extra = int(own is not None)
    k_eff = min(k + extra, len(database))
    if len(queries) == 0 or k_eff == 0:
        return np.zeros((len(queries), max(k_eff - extra, 0)), np.int64), np.zeros(len(queries))
    sq, idx = _query(database, queries, k_eff, eps, None)  # nearest first
    if own is None:
        return idx, np.sqrt(sq[:, -1], dtype=np.float64)
    own = np.asarray(own, np.int64)
    if (idx[:, 0] == own).all():  # the usual case, found first at distance 0: no masking
        return idx[:, 1:], np.sqrt(sq[:, -1], dtype=np.float64)
    dist = np.sqrt(sq, dtype=np.float64)
    # An approximate search may miss the row itself: drop it where found, else the farthest.
    drop = idx == own[:, None]
    drop[~drop.any(axis=1), -1] = True
    kept = dist[~drop].reshape(len(idx), k_eff - 1)
    return idx[~drop].reshape(len(idx), k_eff - 1), kept.max(axis=1, initial=0.0)


# Relative slack on distances compared across searches: they are computed in float32.
DISTANCE_SLACK = 1e-6


def nearest(
    database: np.ndarray,
    queries: np.ndarray,
    k: int,
    *,
    eps: float = 0.0,
    bound: float | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """(distances, indices), each len(queries) x k, of the k nearest database rows to each query,
    nearest first: every flow's search. ``eps`` > 0: approximate, each within (1 + eps) of the
    true k-th distance. ``bound``: only rows within this distance (else distance inf, index
    len(database)).

    pykdtree: float32 rows, queries on all cores (OpenMP); the four searches cost 1.5x less CPU
    than with scipy's cKDTree (docs/benchmarks.md). Rounding the rows to float32 moves a feature
    by at most 6e-7, far below a colour level or a pixel step; the distances between the rounded
    rows carry float32 rounding, hence DISTANCE_SLACK where they are compared."""
    sq, idx = _query(database, queries, k, eps, bound)
    return np.sqrt(sq, dtype=np.float64), idx.astype(np.int64)


def _query(database, queries, k, eps, bound) -> tuple[np.ndarray, np.ndarray]:
    """``nearest`` as pykdtree answers it: squared float32 distances and its own index type (the
    flows index with it directly and take the root of the reach column only)."""
    from pykdtree.kdtree import KDTree

    data = np.ascontiguousarray(database, np.float32)
    sq, idx = KDTree(data).query(
        np.ascontiguousarray(queries, np.float32),
        k=k,
        eps=float(eps),
        distance_upper_bound=bound,
        sqr_dists=True,
    )
    return sq.reshape(len(queries), k), idx.reshape(len(queries), k)


@njit(cache=True, nogil=True)
def _lle_weights(colours, width, sx, sy, d, query, neigh, reg, out):
    """out[i] = affine weights reconstructing f(query[i]) from f(neigh[i]) (sum 1), where f(p) is
    pixel p's colour (d = 3) or [colour, sx * x, sy * y] (d = 5), read from the flat index.

    The Gram matrix G = Z Z^T (Z: neighbours minus the query, K x d) has rank <= d < K, so it is
    regularised: (G + eps I) w = 1 with eps = reg * trace(G). Solved through the d x d system
    (Woodbury): (Z Z^T + eps I)^-1 1 = (1 - Z (Z^T Z + eps I)^-1 Z^T 1) / eps.
    """
    n, k = neigh.shape
    z = np.empty((k, d))
    m = np.empty((d, d))
    v = np.empty(d)
    for i in range(n):
        p = query[i]
        px = sx * (p % width)
        py = sy * (p // width)
        tr = 0.0
        for a in range(k):
            q = neigh[i, a]
            for c in range(3):
                t = colours[q, c] - colours[p, c]
                z[a, c] = t
                tr += t * t
            if d == 5:
                t = sx * (q % width) - px
                z[a, 3] = t
                tr += t * t
                t = sy * (q // width) - py
                z[a, 4] = t
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
    image64: np.ndarray,
    spatial: float | None,
    query: np.ndarray,
    neigh: np.ndarray,
    reg: float = 1e-3,
    out: np.ndarray | None = None,
) -> np.ndarray:
    """``_lle_weights`` over the features [r, g, b, spatial * x / w, spatial * y / h] (colour
    only with ``spatial`` None), computed in float64 from the image and each pixel's index.
    ``out``: where to write them (len(query) x K, may be a column slice)."""
    h, w = image64.shape[:2]
    args = (
        _colours(image64),
        w,
        (spatial or 0.0) / w,
        (spatial or 0.0) / h,
        3 if spatial is None else 5,
    )
    if out is None:
        out = np.empty(neigh.shape)
    n = len(query)
    if n < 10000 or (os.cpu_count() or 1) < 2:
        _lle_weights(*args, query, neigh, float(reg), out)
        return out
    # Rows are independent and the kernel releases the GIL: the halves on two threads.
    from concurrent.futures import ThreadPoolExecutor

    half = n // 2
    with ThreadPoolExecutor(1) as pool:
        job = pool.submit(_lle_weights, *args, query[half:], neigh[half:], float(reg), out[half:])
        _lle_weights(*args, query[:half], neigh[:half], float(reg), out[:half])
        job.result()
    return out


@dataclass
class Rows:
    """One flow's per-row pieces, kept so that a local trimap change rebuilds only some rows.

    ``query``: the rows' pixels (sorted flat indices); ``neigh``: their neighbours (flat indices;
    for the colour mixture the pixel itself first); ``values``: per-row numbers (the mixture
    residual's entries [1, -w...], intra weights, or [w^F, eta]); ``reach``: the distance to the
    farthest found neighbour (one column per searched database)."""

    query: np.ndarray
    neigh: np.ndarray
    values: np.ndarray
    reach: np.ndarray


@dataclass
class Flows:
    """Everything the linear system needs, over flat pixel indices (n = H*W).

    ``mix``: rows e_p - sum_q w_pq e_q for each unknown p (n_u x n), the colour-mixture residuals.
    ``intra``: symmetric non-negative weights between unknown pixels (n x n).
    ``ku_target`` / ``ku_confidence``: per pixel (zero outside the unknown region).
    ``rows``: the per-row pieces (mix, known-to-unknown, intra) for ``update``.
    """

    mix: scipy.sparse.csr_matrix
    intra: scipy.sparse.csr_matrix
    ku_target: np.ndarray
    ku_confidence: np.ndarray
    rows: tuple[Rows, Rows, Rows] | None = None


# The colour-mixture search (K_CM = 20, the costliest of the four) runs at this multiple of the
# flows' eps: at eps 0.5 -> 1.0 it cost ~5 % less CPU per call with SAD / Grad moving by <= 0.004
# / 0.016 on alphamatting-dev (docs/benchmarks.md, "Speed, fourth round"). eps 0 stays exact.
MIX_EPS_SCALE = 2.0


@njit(cache=True, nogil=True)
def _gather_neighbours(table, found, out):
    """out = table[found]: the pixels of a search's answers (positions in its database), written
    in ``table``'s index type, possibly into a column slice of a wider table. numpy's take would
    first copy the kd-tree's uint32 answers to a fresh int64 array."""
    n, k = found.shape
    for i in range(n):
        for a in range(k):
            out[i, a] = table[found[i, a]]


def _search_within(image64, spatial, database_idx, query, k, eps):
    """``knn_with_reach`` for ``query`` pixels that are themselves in the database (both sorted
    flat indices), each leaving itself out: (positions in the database, reaches). When the
    queries are the database (``query is database_idx``) one array of search rows serves both."""
    database = search_rows(image64, spatial, database_idx)
    if query is database_idx:
        queries, own = database, np.arange(len(query))
    else:
        queries = search_rows(image64, spatial, query)
        own = np.searchsorted(database_idx, query)
    return knn_with_reach(database, queries, k, own=own, eps=eps)


def _mix_rows(image64, query, database_idx, k, reg, eps) -> Rows:
    """The colour-mixture rows, kept as the residual rows themselves: ``neigh`` = [the pixel, its
    neighbours], ``values`` = [1, -w...], so that the matrix is made on them without a copy."""
    found, reach = _search_within(image64, MIX_SPATIAL, database_idx, query, k, eps * MIX_EPS_SCALE)
    cols = np.empty((len(query), found.shape[1] + 1), database_idx.dtype)
    cols[:, 0] = query
    _gather_neighbours(database_idx, found, cols[:, 1:])
    entries = np.empty(cols.shape)
    entries[:, 0] = 1.0
    weights = entries[:, 1:]
    lle_weights(image64, MIX_SPATIAL, query, cols[:, 1:], reg, out=weights)
    np.negative(weights, out=weights)
    return Rows(query, cols, entries, reach[:, None])


def _mix_matrix(rows: Rows, n: int) -> scipy.sparse.csr_matrix:
    """The mixture residuals as CSR over the rows' own arrays (``_mix_rows``): each row holds its
    pixel and its distinct neighbours, so no sort or merge is needed."""
    nu, width = rows.neigh.shape
    nnz = nu * width
    index = index_type(max(nnz, n))
    indptr = np.arange(0, nnz + 1, width, dtype=index)
    indices = rows.neigh.astype(index, copy=False).ravel()
    return scipy.sparse.csr_matrix((rows.values.ravel(), indices, indptr), shape=(nu, n))


@njit(cache=True, nogil=True)
def _ku_values(wts, neigh, kf, colours, out):
    """out[i] = [w^F, eta] from the mixture weights over kf foreground then background neighbours:
    w^F = the foreground weights' sum, F and B = the two sides' weighted mean colours, eta =
    |F - B|^2 / 3 clipped to [0, 1] (0 where either side's share is ~0: no colour to compare).
    One pass per row instead of numpy's per-term temporaries (a K x 3 gather per pixel)."""
    n, k = wts.shape
    for i in range(n):
        wf = 0.0
        for a in range(kf):
            wf += wts[i, a]
        wb = 1.0 - wf
        if abs(wf) <= 1e-6 or abs(wb) <= 1e-6:
            out[i, 0] = wf
            out[i, 1] = 0.0
            continue
        eta = 0.0
        for c in range(3):
            f = 0.0
            for a in range(kf):
                f += wts[i, a] * colours[neigh[i, a], c]
            b = 0.0
            for a in range(kf, k):
                b += wts[i, a] * colours[neigh[i, a], c]
            t = f / wf - b / wb
            eta += t * t
        out[i, 0] = wf
        out[i, 1] = min(max(eta / 3.0, 0.0), 1.0)


@njit(cache=True, nogil=True)
def _intra_weights(colours, width, sx, sy, query, neigh, out):
    """out[i, a] = max(1 - |f_p - f_q|, 0) for p = query[i], q = neigh[i, a], with f(p) = [colour,
    sx * x, sy * y] in float64 from the flat index."""
    n, k = neigh.shape
    for i in range(n):
        p = query[i]
        px = sx * (p % width)
        py = sy * (p // width)
        for a in range(k):
            q = neigh[i, a]
            s = 0.0
            for c in range(3):
                t = colours[q, c] - colours[p, c]
                s += t * t
            t = sx * (q % width) - px
            s += t * t
            t = sy * (q // width) - py
            s += t * t
            out[i, a] = max(1.0 - np.sqrt(s), 0.0)


def _ku_rows(image64, query, fg_idx, bg_idx, k, reg, colour_only, eps) -> Rows:
    nu = len(query)
    if nu == 0 or len(fg_idx) == 0 or len(bg_idx) == 0:
        return Rows(query, np.zeros((nu, 0), query.dtype), np.zeros((nu, 2)), np.zeros((nu, 2)))
    q = search_rows(image64, KU_SPATIAL, query)
    found_f, reach_f = knn_with_reach(search_rows(image64, KU_SPATIAL, fg_idx), q, k, eps=eps)
    found_b, reach_b = knn_with_reach(search_rows(image64, KU_SPATIAL, bg_idx), q, k, eps=eps)
    kf = found_f.shape[1]
    neigh = np.empty((nu, kf + found_b.shape[1]), np.result_type(fg_idx, bg_idx))
    _gather_neighbours(fg_idx, found_f, neigh[:, :kf])
    _gather_neighbours(bg_idx, found_b, neigh[:, kf:])
    # The neighbours are found in colour + position, but the mixture weights are fitted to the
    # colours only: fitting the (10x weighted) positions too makes the foreground share follow
    # the pixel's place between the two regions rather than its colour (measured: SAD 12.2 vs
    # 1.2 for w^F alone on core/sample.py's ball). ``colour_only=False`` is the paper's literal form.
    wts = lle_weights(image64, None if colour_only else KU_SPATIAL, query, neigh, reg)
    values = np.empty((nu, 2))
    _ku_values(wts, neigh, kf, _colours(image64), values)
    return Rows(query, neigh, values, np.stack([reach_f, reach_b], axis=1))


def _intra_rows(image64, unknown_idx, query, k, eps) -> Rows:
    """Rows of the intra-unknown flow for ``query`` (a subset of the sorted ``unknown_idx``)."""
    found, reach = _search_within(image64, INTRA_SPATIAL, unknown_idx, query, k, eps)
    neigh = np.empty(found.shape, unknown_idx.dtype)
    _gather_neighbours(unknown_idx, found, neigh)
    h, w = image64.shape[:2]
    weights = np.empty(neigh.shape)
    colours = _colours(image64)
    _intra_weights(colours, w, INTRA_SPATIAL / w, INTRA_SPATIAL / h, query, neigh, weights)
    return Rows(query, neigh, weights, reach[:, None])


@njit(cache=True, nogil=True)
def _sorted_rows(query, neigh, weights, indptr, indices, data):
    """CSR of W (n x n), W[p, q] = weights[i, a] for p = query[i] (sorted), q = neigh[i, a]
    (distinct in a row): each row's columns sorted, as scipy's COO -> CSR conversion leaves them."""
    rows, k = neigh.shape
    i = 0
    for p in range(len(indptr) - 1):
        indptr[p + 1] = indptr[p]
        if i < rows and query[i] == p:
            j0 = indptr[p]
            for a in range(k):
                c, v = neigh[i, a], weights[i, a]
                t = j0 + a - 1
                while t >= j0 and indices[t] > c:
                    indices[t + 1] = indices[t]
                    data[t + 1] = data[t]
                    t -= 1
                indices[t + 1] = c
                data[t + 1] = v
            indptr[p + 1] = j0 + k
            i += 1


def _intra_matrix(rows: Rows, n: int) -> scipy.sparse.csr_matrix:
    """(W + W^T) / 2 by scipy's sum of W and its transpose, W's CSR made directly from the rows
    (no COO and its conversion). A numba kernel for the whole sum (a counting sort for W^T, a
    merge per row) gave the same numbers but measured no faster (docs/benchmarks.md)."""
    if len(rows.query) <= 1:
        return scipy.sparse.csr_matrix((n, n))
    index = index_type(max(rows.neigh.size, n))
    indptr = np.zeros(n + 1, index)
    indices = np.empty(rows.neigh.size, index)
    data = np.empty(rows.neigh.size)
    _sorted_rows(rows.query, rows.neigh, rows.values, indptr, indices, data)
    m = scipy.sparse.csr_matrix((data, indices, indptr), shape=(n, n))
    return ((m + m.T) * 0.5).tocsr()


def known_to_unknown_rows(
    image64: np.ndarray,
    trimap: np.ndarray,
    *,
    k_ku: int = 5,
    reg: float = 1e-3,
    colour_only=True,
    eps: float = 0.0,
) -> Rows:
    """The known-to-unknown flow's rows (one per unknown pixel): [w^F_p, eta_p] and reaches."""
    from mattestudio.types import BACKGROUND, FOREGROUND, UNKNOWN

    return _ku_rows(
        image64,
        pixels_where(trimap == UNKNOWN),
        pixels_where(trimap == FOREGROUND),
        pixels_where(trimap == BACKGROUND),
        int(k_ku),
        reg,
        colour_only,
        eps,
    )


def intra_unknown_rows(image64: np.ndarray, trimap: np.ndarray, *, k_uu: int = 5, eps: float = 0.0):
    """The intra-unknown flow's rows (one per unknown pixel)."""
    from mattestudio.types import UNKNOWN

    ui = pixels_where(trimap == UNKNOWN)
    return _intra_rows(image64, ui, ui, int(k_uu), eps)


def ku_per_pixel(rows: Rows, n: int) -> tuple[np.ndarray, np.ndarray]:
    target = np.zeros(n)
    conf = np.zeros(n)
    target[rows.query] = rows.values[:, 0]
    conf[rows.query] = rows.values[:, 1]
    return target, conf


def _mix_database(trimap: np.ndarray, band: int) -> np.ndarray:
    """The colour-mixture database: unknown pixels and the known ones within ``band`` of them."""
    import cv2

    from mattestudio.types import UNKNOWN

    size = 2 * int(band) + 1
    unknown = (trimap == UNKNOWN).astype(np.uint8)
    return pixels_where(cv2.dilate(unknown, np.ones((size, size), np.uint8)) > 0)


def compute(
    image64: np.ndarray,
    trimap: np.ndarray,
    *,
    k_mix: int = 20,
    k_ku: int = 5,
    k_uu: int = 5,
    band: int = 5,
    reg: float = 1e-3,
    known_rows: bool = False,
    ku_colour_only: bool = True,
    ku: Rows | None = None,
    intra: Rows | None = None,
    eps: float = 0.0,
    check=None,
) -> Flows:
    """All non-local flows for a trimap (uint8 0 / 128 / 255). ``band``: colour-mixture neighbours
    are searched among the unknown pixels and the known ones within this many pixels of them;
    with ``known_rows`` those known pixels also get a mixture equation (the paper writes one for
    the unknown pixels only), which ties the unknown pixels they mix from to their known alpha.
    ``ku`` / ``intra``: those flows' rows if already made (``known_to_unknown_rows``,
    ``intra_unknown_rows``). ``eps``: approximate neighbour searches (``nearest``'s eps, times
    ``MIX_EPS_SCALE`` for the colour mixture's; docs/benchmarks.md measures its effect).
    ``check(fraction)`` is called between the stages (progress and cancellation)."""
    from mattestudio.types import UNKNOWN

    n = trimap.size
    ui = pixels_where(trimap == UNKNOWN)
    di = _mix_database(trimap, band)
    if check is not None:
        check(0.0)
    if ku is None:
        ku = known_to_unknown_rows(
            image64, trimap, k_ku=k_ku, reg=reg, colour_only=ku_colour_only, eps=eps
        )
    if check is not None:
        check(0.35)
    mix = _mix_rows(image64, di if known_rows else ui, di, int(k_mix), reg, eps)
    if check is not None:
        check(0.8)
    if intra is None:
        intra = intra_unknown_rows(image64, trimap, k_uu=k_uu, eps=eps)
    if check is not None:
        check(1.0)
    target, conf = ku_per_pixel(ku, n)
    return Flows(_mix_matrix(mix, n), _intra_matrix(intra, n), target, conf, (mix, ku, intra))


def _stale(
    image64: np.ndarray, spatial: float, rows: Rows, changed: np.ndarray, reach: np.ndarray
) -> np.ndarray:
    """Rows with a changed database pixel no farther than their reach: only their neighbour sets
    can differ from the old ones (a pixel added farther away cannot displace a found neighbour,
    and a removed one farther away was not among them)."""
    out = np.zeros(len(rows.query), bool)
    if len(changed) == 0 or len(rows.query) == 0:
        return out
    slack = 1 + DISTANCE_SLACK
    bound = float(reach.max()) * slack + 1e-12
    database = search_rows(image64, spatial, changed)
    d, _ = nearest(database, search_rows(image64, spatial, rows.query), 1, bound=bound)
    return d[:, 0] <= reach * slack + 1e-12


def _merge(old: Rows, stale: np.ndarray, query: np.ndarray, make) -> tuple[Rows, np.ndarray] | None:
    """Rows for the sorted pixels ``query``: the old row where it is not stale, else ``make(pixels)``.
    Also returns the pixels whose rows changed (rebuilt, added or dropped). None when the new rows
    are not the old rows' shape (a database smaller than K): then everything is rebuilt."""
    pos = np.minimum(np.searchsorted(old.query, query), max(len(old.query) - 1, 0))
    reuse = np.zeros(len(query), bool)
    if len(old.query):
        reuse = (old.query[pos] == query) & ~stale[pos]
    fresh = make(query[~reuse])
    if (
        fresh.neigh.shape[1:] != old.neigh.shape[1:]
        or fresh.values.shape[1:] != old.values.shape[1:]
    ):
        return None
    out = Rows(
        query,
        np.empty((len(query),) + old.neigh.shape[1:], old.neigh.dtype),
        np.empty((len(query),) + old.values.shape[1:]),
        np.empty((len(query),) + old.reach.shape[1:]),
    )
    for name in ("neigh", "values", "reach"):
        mine, theirs, new = getattr(out, name), getattr(old, name), getattr(fresh, name)
        mine[reuse] = theirs[pos[reuse]]
        mine[~reuse] = new
    dropped = np.setdiff1d(old.query, query, assume_unique=True)
    return out, np.concatenate([query[~reuse], dropped])


def update(
    image64: np.ndarray,
    before: np.ndarray,
    after: np.ndarray,
    old: Flows,
    *,
    k_mix: int = 20,
    k_ku: int = 5,
    k_uu: int = 5,
    band: int = 5,
    reg: float = 1e-3,
    known_rows: bool = False,
    ku_colour_only: bool = True,
    eps: float = 0.0,
) -> tuple[Flows, np.ndarray] | None:
    """The flows of trimap ``after`` from those of ``before`` (made by ``compute`` or ``update``
    with the same parameters): only rows whose neighbour search can have a different answer are
    rebuilt, the others are kept as they are. With exact searches (eps 0) and no distance ties
    the result equals ``compute(after)``; with eps > 0 every kept row is still a valid
    (1 + eps)-approximate answer. Also returns the flat pixels whose rows changed. None when the
    flows must be rebuilt whole (no rows kept, or a database smaller than K)."""
    from mattestudio.types import BACKGROUND, FOREGROUND, UNKNOWN

    if old.rows is None or before.shape != after.shape:
        return None
    mix_old, ku_old, intra_old = old.rows
    n = after.size
    b, a = before.ravel(), after.ravel()
    ui = pixels_where(a == UNKNOWN)
    fg = pixels_where(a == FOREGROUND)
    bg = pixels_where(a == BACKGROUND)
    changed_rows = []

    # Colour mixture: the database is the unknown pixels dilated by the band.
    di = _mix_database(after, band)
    di_old = _mix_database(before, band)
    changed = np.setxor1d(di, di_old, assume_unique=True)
    stale = _stale(image64, MIX_SPATIAL, mix_old, changed, mix_old.reach[:, 0])
    query = di if known_rows else ui
    merged = _merge(
        mix_old,
        stale,
        query,
        lambda q: _mix_rows(image64, q, di, int(k_mix), reg, eps),
    )
    if merged is None:
        return None
    mix, rows = merged
    changed_rows.append(rows)

    # Known to unknown: two databases, the foreground and the background pixels.
    if len(ku_old.query) and ku_old.neigh.shape[1] == 0:
        return None  # made without a foreground or background: no reaches to go by
    moved_f = np.flatnonzero((b == FOREGROUND) != (a == FOREGROUND))
    moved_b = np.flatnonzero((b == BACKGROUND) != (a == BACKGROUND))
    stale = _stale(image64, KU_SPATIAL, ku_old, moved_f, ku_old.reach[:, 0])
    stale |= _stale(image64, KU_SPATIAL, ku_old, moved_b, ku_old.reach[:, 1])
    merged = _merge(
        ku_old,
        stale,
        ui,
        lambda q: _ku_rows(image64, q, fg, bg, int(k_ku), reg, ku_colour_only, eps),
    )
    if merged is None:
        return None
    ku, rows = merged
    changed_rows.append(rows)

    # Intra unknown: the database is the unknown pixels.
    moved_u = np.flatnonzero((b == UNKNOWN) != (a == UNKNOWN))
    stale = _stale(image64, INTRA_SPATIAL, intra_old, moved_u, intra_old.reach[:, 0])
    merged = _merge(intra_old, stale, ui, lambda q: _intra_rows(image64, ui, q, int(k_uu), eps))
    if merged is None:
        return None
    intra, rows = merged
    changed_rows.append(rows)

    target, conf = ku_per_pixel(ku, n)
    flows = Flows(_mix_matrix(mix, n), _intra_matrix(intra, n), target, conf, (mix, ku, intra))
    return flows, np.unique(np.concatenate(changed_rows))
