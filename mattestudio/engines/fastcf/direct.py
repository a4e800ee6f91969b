"""Sparse Cholesky of the matting system by geometric nested dissection and multifrontal elimination.

Why direct: with epsilon = 1e-7 the matting Laplacian is so ill-conditioned that pymatting needs
an almost complete incomplete-Cholesky factor anyway; a real factor with a good ordering costs
about the same memory, is exact, and its dense frontal matrices run at BLAS speed.

The order comes from ``ordering`` (geometric nested dissection): a tree whose nodes are eliminated
children first. Each node's front is its own pixels plus the later pixels they touch after fill (its
"boundary"); the dense Cholesky of the front's leading block and the Schur-complement update of
the boundary are done with LAPACK/BLAS. Cancel and progress are checked between nodes.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import scipy.sparse
from numba import njit
from scipy.linalg import blas, lapack

from mattestudio.engines.fastcf.blas_threads import set_local_threads, single_threaded
from mattestudio.engines.fastcf.ordering import LEAF, _stack_size, plan


class NotPositiveDefinite(ArithmeticError):
    pass


@njit(cache=True, nogil=True)
def _assemble_front(indptr, indices, data, rank, vs, V, B, loc, F, lower_only):
    """Scatter the original entries of the node's rows (columns not yet eliminated) into F;
    with ``lower_only`` only its lower triangle (the small-front path never reads the upper)."""
    nv = V.shape[0]
    for t in range(nv):
        loc[V[t]] = t
    for t in range(B.shape[0]):
        loc[B[t]] = nv + t
    for t in range(nv):
        i = V[t]
        for q in range(indptr[i], indptr[i + 1]):
            j = indices[q]
            if rank[j] >= vs:
                u = loc[j]
                if u >= t:
                    F[u, t] = data[q]
                    if not lower_only:
                        F[t, u] = data[q]
                else:
                    F[t, u] = data[q]
                    if not lower_only:
                        F[u, t] = data[q]


@njit(cache=True, nogil=True)
def _extend_add(F, U, Bc, loc):
    """F += U scattered to the parent's positions; U holds its lower triangle only (from syrk)."""
    n = Bc.shape[0]
    for b in range(n):
        pb = loc[Bc[b]]
        F[pb, pb] += U[b, b]
        for a in range(b + 1, n):
            pa = loc[Bc[a]]
            v = U[a, b]
            F[pa, pb] += v
            F[pb, pa] += v


@njit(cache=True, nogil=True)
def _extend_add_lower(F, U, Bc, loc):
    """_extend_add into the lower triangle only. Positions in a front increase with elimination
    rank, as do a child's boundary ids, so U's lower triangle lands in F's lower triangle."""
    n = Bc.shape[0]
    for b in range(n):
        pb = loc[Bc[b]]
        F[pb, pb] += U[b, b]
        for a in range(b + 1, n):
            F[loc[Bc[a]], pb] += U[a, b]


@njit(cache=True, nogil=True, fastmath={"reassoc", "contract"})
def _forward(perm_v, vstart, vend, bptr, bidx, fptr, factors, x, nodes):
    """Forward substitution over ``nodes`` (children before parents): y_V = L11^-1 y_V, then
    y_B -= X^T y_V. Each node gathers its pixels' and its boundary's entries into contiguous
    buffers, works there, and scatters back: the inner loops run over contiguous memory. The
    updates of y_B are sums, so work on disjoint subtrees can go to separate copies of x.

    The inner loops index slices with their range variable: with ``factors[off + t]`` numba
    must allow for a negative index and LLVM did not vectorise (measured 4-13x slower)."""
    cap = 1
    for k in nodes:
        cap = max(cap, vend[k] - vstart[k], bptr[k + 1] - bptr[k])
    yv = np.empty(cap)
    yb = np.empty(cap)
    for k in nodes:
        vs = vstart[k]
        nv = vend[k] - vs
        b0 = bptr[k]
        nb = bptr[k + 1] - b0
        off = fptr[k]
        pix = perm_v[vs : vs + nv]
        for a in range(nv):
            row = factors[off + a * nv : off + a * nv + a + 1]
            s = x[pix[a]]
            for b in range(a):
                s -= row[b] * yv[b]
            yv[a] = s / row[a]
            x[pix[a]] = yv[a]
        if nb == 0:
            continue
        bnd = bidx[b0 : b0 + nb]
        ybv = yb[:nb]
        for t in range(nb):
            ybv[t] = x[bnd[t]]
        xo = off + nv * nv
        for a in range(nv):
            ya = yv[a]
            if ya != 0.0:
                row = factors[xo + a * nb : xo + a * nb + nb]
                for t in range(nb):
                    ybv[t] -= row[t] * ya
        for t in range(nb):
            x[bnd[t]] = ybv[t]


@njit(cache=True, nogil=True, fastmath={"reassoc", "contract"})
def _backward(perm_v, vstart, vend, bptr, bidx, fptr, factors, x, nodes):
    """Backward substitution over ``nodes`` in reverse (parents before children): y_V -= X x_B,
    x_V = L11^-T y_V (by rows of L11: contiguous reads). A node writes only its own pixels and
    reads its ancestors'. Slices indexed by range variables, as in ``_forward``."""
    cap = 1
    for k in nodes:
        cap = max(cap, vend[k] - vstart[k], bptr[k + 1] - bptr[k])
    yv = np.empty(cap)
    yb = np.empty(cap)
    for i in range(nodes.shape[0] - 1, -1, -1):
        k = nodes[i]
        vs = vstart[k]
        nv = vend[k] - vs
        b0 = bptr[k]
        nb = bptr[k + 1] - b0
        off = fptr[k]
        xo = off + nv * nv
        pix = perm_v[vs : vs + nv]
        bnd = bidx[b0 : b0 + nb]
        ybv = yb[:nb]
        for t in range(nb):
            ybv[t] = x[bnd[t]]
        for a in range(nv):
            row = factors[xo + a * nb : xo + a * nb + nb]
            s = x[pix[a]]
            for t in range(nb):
                s -= row[t] * ybv[t]
            yv[a] = s
        for a in range(nv - 1, -1, -1):
            row = factors[off + a * nv : off + a * nv + a + 1]
            ya = yv[a] / row[a]
            yv[a] = ya
            for b in range(a):
                yv[b] -= row[b] * ya
        for a in range(nv):
            x[pix[a]] = yv[a]


@njit(cache=True, nogil=True)
def _solve(perm_v, vstart, vend, bptr, bidx, fptr, factors, x):
    """x <- A^{-1} x with the stored factors: L11 (nv x nv, row-major, lower) then X = L11^-1 F_VB."""
    nodes = np.arange(vstart.shape[0])
    _forward(perm_v, vstart, vend, bptr, bidx, fptr, factors, x, nodes)
    _backward(perm_v, vstart, vend, bptr, bidx, fptr, factors, x, nodes)


@njit(
    cache=True, nogil=True, fastmath={"reassoc", "contract"}
)  # reassoc lets LLVM vectorise the dot products
def _factor_run(
    k0,
    k1,
    indptr,
    indices,
    data,
    perm,
    rank,
    vstart,
    vend,
    bptr,
    bidx,
    cptr,
    parent,
    fptr,
    factors,
    loc,
    work,
    sbuf,
    s_off,
    s_top,
):
    """Factor nodes k0..k1-1 (small fronts) in plain loops: no Python call per node.

    Children's updates are taken from the top of the flat stack ``sbuf`` (entry e starts at s_off[e],
    s_top[0] entries in use); each node pushes its own. Returns -1, or the node whose pivot failed.
    """
    for k in range(k0, k1):
        vs = vstart[k]
        nv = vend[k] - vs
        b0 = bptr[k]
        nb = bptr[k + 1] - b0
        m = nv + nb
        F = work[: m * m].reshape(m, m)
        for i in range(m):  # only the lower triangle is written and read
            F[i, : i + 1] = 0.0
        V = perm[vs : vs + nv]
        B = bidx[b0 : b0 + nb]
        _assemble_front(indptr, indices, data, rank, vs, V, B, loc, F, True)
        nk = cptr[k + 1] - cptr[k]
        for e in range(s_top[0] - nk, s_top[0]):
            c = int(sbuf[s_off[e]])
            nbc = bptr[c + 1] - bptr[c]
            U = sbuf[s_off[e] + 1 : s_off[e] + 1 + nbc * nbc].reshape(nbc, nbc)
            _extend_add_lower(F, U, bidx[bptr[c] : bptr[c + 1]], loc)
        s_top[0] -= nk
        # Left-looking Cholesky of the front's first nv columns in loops: the leading block gives
        # L11, the rows below it L21 = F_BV L11^-T (a triangular solve's flops, no inverse); then the
        # boundary update U -= L21 L21^T through BLAS (numba's np.dot: no Python call).
        # Rows as 1-D views indexed by range variables: LLVM then vectorises the dot products
        # (with F[i, q] numba must allow for negative indices; see ``_forward``).
        for j in range(nv):
            Fj = F[j]
            d = Fj[j]
            for q in range(j):
                d -= Fj[q] * Fj[q]
            if d <= 0.0:
                return k
            d = np.sqrt(d)
            Fj[j] = d
            for i in range(j + 1, m):
                Fi = F[i]
                t = Fi[j]
                for q in range(j):
                    t -= Fi[q] * Fj[q]
                Fi[j] = t / d
        off = fptr[k]
        for a in range(nv):
            for b in range(nv):
                factors[off + a * nv + b] = F[a, b] if b <= a else 0.0
        Y = np.empty((nb, nv))
        for t in range(nb):
            for a in range(nv):
                Y[t, a] = F[nv + t, a]
        xo = off + nv * nv
        for a in range(nv):
            for t in range(nb):
                factors[xo + a * nb + t] = Y[t, a]
        if parent[k] >= 0:
            top = s_off[s_top[0]]
            sbuf[top] = k
            U = sbuf[top + 1 : top + 1 + nb * nb].reshape(nb, nb)
            if nv > 0 and nb > 0:
                # Only the lower triangle of Y Y^T is needed: row blocks times the columns up to
                # the block's end, about 0.6 of a full product's flops.
                nblk = max(1, min(8, nb // 32))
                for bi in range(nblk):
                    i0 = nb * bi // nblk
                    i1 = nb * (bi + 1) // nblk
                    G = np.dot(Y[i0:i1], Y[:i1].T)
                    for t in range(i0, i1):
                        for u in range(t + 1):
                            U[t, u] = F[nv + t, nv + u] - G[t - i0, u]
            else:
                for t in range(nb):
                    for u in range(t + 1):
                        U[t, u] = F[nv + t, nv + u]
            s_top[0] += 1
            s_off[s_top[0]] = top + 1 + nb * nb
    return -1


@dataclass
class Factor:
    perm: np.ndarray
    vstart: np.ndarray
    vend: np.ndarray
    bptr: np.ndarray
    bidx: np.ndarray
    fptr: np.ndarray
    factors: np.ndarray
    parent: np.ndarray | None = None  # the elimination tree (for solves split across threads)

    @property
    def nbytes(self) -> int:
        return self.factors.nbytes + self.bidx.nbytes + self.perm.nbytes

    def solve(self, b: np.ndarray) -> np.ndarray:
        x = np.array(b, np.float64, copy=True)
        _solve(self.perm, self.vstart, self.vend, self.bptr, self.bidx, self.fptr, self.factors, x)
        return x


# One BLAS thread by default: on a busy 2-core machine a second thread waits more than it works
# (measured: wall 2.0 s vs 0.9 s on the largest dataset image). MATTESTUDIO_BLAS_THREADS=2 tries it.
BIG_THREADS = int(os.environ.get("MATTESTUDIO_BLAS_THREADS", "1"))
SMALL_FRONT = 1000  # fronts up to this size run inside one numba call (no Python per node); larger ones via scipy's LAPACK/BLAS


def factorize(
    matrix: scipy.sparse.csr_matrix,
    coords: np.ndarray,
    *,
    sep: int = 2,
    leaf: int = LEAF,
    check: Callable[[float], None] | None = None,
) -> Factor:
    """Cholesky factor of the SPD matrix on the unknown pixels at ``coords`` (row-major y, x).

    ``check(fraction)`` is called about 50 times during the work (progress and cancellation; it may raise).
    """
    with single_threaded():
        return _factorize(matrix, coords, sep, leaf, check)


def _factorize(matrix, coords, sep, leaf, check) -> Factor:
    p = plan(matrix, coords, sep, leaf)
    perm, rank, vstart, vend, bptr, bidx, fptr = (
        p[k] for k in ("perm", "rank", "vstart", "vend", "bptr", "bidx", "fptr")
    )
    cptr, parent = p["cptr"], p["parent"]
    indptr = matrix.indptr
    indices = matrix.indices
    data = matrix.data
    nn = len(vstart)
    nv_all = vend - vstart
    nb_all = np.diff(bptr)
    front = nv_all + nb_all
    factors = np.empty(int(fptr[-1]))
    loc = np.full(len(perm), -1, np.int64)
    sbuf = np.empty(_stack_size(parent, cptr, nb_all) + 1)
    s_off = np.zeros(nn + 2, np.int64)
    s_top = np.zeros(1, np.int64)
    work = np.empty(min(SMALL_FRONT, int(front.max()) if nn else 1) ** 2)
    total = float(fptr[-1]) or 1.0
    step = total / 50
    big = np.flatnonzero(front > SMALL_FRONT)
    k = 0
    while k < nn:
        if front[k] <= SMALL_FRONT:
            # A run of small fronts, cut where a progress/cancel check is due.
            k1 = min(
                int(np.searchsorted(fptr, fptr[k] + step, "left")), nn
            )  # first node with fptr >= limit
            nxt = np.searchsorted(big, k)
            if nxt < len(big):
                k1 = min(k1, int(big[nxt]))
            k1 = max(k1, k + 1)
            bad = _factor_run(
                k,
                k1,
                indptr,
                indices,
                data,
                perm,
                rank,
                vstart,
                vend,
                bptr,
                bidx,
                cptr,
                parent,
                fptr,
                factors,
                loc,
                work,
                sbuf,
                s_off,
                s_top,
            )
            if bad >= 0:
                raise NotPositiveDefinite(f"front {bad} is not positive definite")
            k = k1
        else:
            _factor_big(
                k,
                indptr,
                indices,
                data,
                perm,
                rank,
                vstart,
                vend,
                bptr,
                bidx,
                cptr,
                parent,
                fptr,
                factors,
                loc,
                sbuf,
                s_off,
                s_top,
            )
            k += 1
        if check is not None:
            check(fptr[k] / total)
    return Factor(perm, vstart, vend, bptr, bidx, fptr, factors, parent)


def _factor_big(
    k,
    indptr,
    indices,
    data,
    perm,
    rank,
    vstart,
    vend,
    bptr,
    bidx,
    cptr,
    parent,
    fptr,
    factors,
    loc,
    sbuf,
    s_off,
    s_top,
) -> None:
    """One large front with LAPACK/BLAS, same stack protocol as _factor_run."""
    vs, ve = int(vstart[k]), int(vend[k])
    V = perm[vs:ve]
    B = bidx[bptr[k] : bptr[k + 1]]
    nv, nb = ve - vs, len(B)
    F = np.zeros(
        (nv + nb, nv + nb), order="F"
    )  # Fortran order: LAPACK/BLAS take slices without transposes
    _assemble_front(indptr, indices, data, rank, vs, V, B, loc, F, False)
    nk = int(cptr[k + 1] - cptr[k])
    top = int(s_top[0])
    for e in range(top - nk, top):
        c = int(sbuf[s_off[e]])
        nbc = int(bptr[c + 1] - bptr[c])
        U = sbuf[s_off[e] + 1 : s_off[e] + 1 + nbc * nbc].reshape(nbc, nbc)
        _extend_add(F, U, bidx[bptr[c] : bptr[c + 1]], loc)
    s_top[0] = top - nk
    off = int(fptr[k])
    U = F[nv:, nv:]
    many = BIG_THREADS > 1 and nv * (nv + nb) * (nv + nb) > 2e9 / 3
    if many:  # only the few largest fronts are worth waking a second BLAS thread for
        set_local_threads(BIG_THREADS)
    if nv:
        L11, info = lapack.dpotrf(F[:nv, :nv], lower=1, clean=1, overwrite_a=0)
        if info != 0:
            raise NotPositiveDefinite(f"front {k}: leading minor {info} is not positive")
        factors[off : off + nv * nv].reshape(nv, nv)[...] = L11
        if nb:
            X = blas.dtrsm(1.0, L11, F[:nv, nv:], lower=1)  # L11^-1 F_VB = L21^T
            factors[off + nv * nv : off + nv * nv + nv * nb].reshape(nv, nb)[...] = X
            # Schur complement on the boundary (lower triangle only; _extend_add reads just that).
            U = blas.dsyrk(-1.0, X, beta=1.0, c=U, trans=1, lower=1)
    if many:
        set_local_threads(1)
    if parent[k] >= 0:
        pos = int(s_off[s_top[0]])
        sbuf[pos] = k
        sbuf[pos + 1 : pos + 1 + nb * nb].reshape(nb, nb)[...] = U
        s_top[0] += 1
        s_off[s_top[0]] = pos + 1 + nb * nb
