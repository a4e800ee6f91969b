"""numba kernels of the conjugate-gradient solve: the system's product and the vector updates.

Why not scipy and numpy: the product A x = s_M D^T (D x) + (L + W) x + d * x in scipy allocates
per term, and its conversion to D^T took 26-67 ms against 5-20 ms for ``transpose`` here (once
per system). Every product is then a row-by-row gather: y = D x, then D^T y. (It used to be one
pass over D scattering each row's residual back through the same row: 12 ms on GT13 on one thread
against 7-11 ms for the two gathers.) And numpy's dot products go to its OpenBLAS, whose threads
then spin for a while after each call and took the two cores from the solver's own threads: the
CG's vector work measured 350-550 ms on GT09 instead of 10 ms (docs/benchmarks.md). These kernels
call no BLAS.

Inner loops index slices with range variables (numba then knows the index is not negative and
LLVM can vectorise; see ``fastcf.direct._forward``).
"""

from __future__ import annotations

import numpy as np
from numba import njit


@njit(cache=True, nogil=True, fastmath={"reassoc", "contract"}, inline="always")
def _row_dot(cols, vals, x):
    """One sparse row times x."""
    s = 0.0
    for q in range(cols.shape[0]):
        s += vals[q] * x[cols[q]]
    return s


@njit(cache=True, nogil=True, fastmath={"reassoc", "contract"})
def csr_rows(indptr, indices, data, weight, x, y, r0, r1):
    """y[r] = weight * (M x)[r] for the rows r0..r1-1 of the CSR matrix M."""
    for r in range(r0, r1):
        a, b = indptr[r], indptr[r + 1]
        y[r] = weight * _row_dot(indices[a:b], data[a:b], x)


@njit(cache=True, nogil=True, fastmath={"reassoc", "contract"})
def csr_product(indptr, indices, data, x, out, r0, r1):
    """out[r] += (M x)[r] for the rows r0..r1-1 of the CSR matrix M."""
    for r in range(r0, r1):
        a, b = indptr[r], indptr[r + 1]
        out[r] += _row_dot(indices[a:b], data[a:b], x)


@njit(cache=True, nogil=True, fastmath={"reassoc", "contract"})
def dot(a, b):
    s = 0.0
    for i in range(a.shape[0]):
        s += a[i] * b[i]
    return s


@njit(cache=True, nogil=True, fastmath={"reassoc", "contract"})
def step(x, r, p, ap, alpha):
    """x += alpha p, r -= alpha Ap; returns |r|^2."""
    s = 0.0
    for i in range(x.shape[0]):
        x[i] += alpha * p[i]
        ri = r[i] - alpha * ap[i]
        r[i] = ri
        s += ri * ri
    return s


@njit(cache=True, nogil=True, fastmath={"reassoc", "contract"})
def new_directions(p, z, mp, r, beta):
    """p = z + beta p and mp = r + beta mp, in place (mp = M p when z = M^-1 r)."""
    for i in range(p.shape[0]):
        p[i] = z[i] + beta * p[i]
        mp[i] = r[i] + beta * mp[i]


@njit(cache=True, nogil=True)
def variable_columns(indptr, indices, data, column):
    """The CSR entries whose column maps to a variable (``column`` >= 0), renumbered: (indptr,
    indices, data). Two passes over the entries, no temporaries of their size (numpy's mask,
    repeat and bincount took 57 % of a system build on GT09)."""
    m = indptr.shape[0] - 1
    out_ptr = np.empty(m + 1, np.int64)
    out_ptr[0] = 0
    count = 0
    for r in range(m):
        for j in range(indptr[r], indptr[r + 1]):
            if column[indices[j]] >= 0:
                count += 1
        out_ptr[r + 1] = count
    out_idx = np.empty(count, np.int64)
    out_val = np.empty(count, data.dtype)
    k = 0
    for r in range(m):
        for j in range(indptr[r], indptr[r + 1]):
            c = column[indices[j]]
            if c >= 0:
                out_idx[k] = c
                out_val[k] = data[j]
                k += 1
    return out_ptr, out_idx, out_val


@njit(cache=True, nogil=True)
def transpose(indptr, indices, data, n_cols):
    """The CSR arrays (indptr, indices, data) of the transpose of an m x n_cols CSR matrix, by a
    counting pass: each new row lists its columns in increasing order. Column indices are int32
    (m < 2^31, as for scipy's own indices of these sizes): the product reads them every iteration."""
    m = indptr.shape[0] - 1
    nnz = indptr[m]
    ptr = np.zeros(n_cols + 1, np.int64)
    for j in range(nnz):
        ptr[indices[j] + 1] += 1
    for c in range(n_cols):
        ptr[c + 1] += ptr[c]
    fill = ptr[:-1].copy()
    out_idx = np.empty(nnz, np.int32)
    out_val = np.empty(nnz, data.dtype)
    for r in range(m):
        for j in range(indptr[r], indptr[r + 1]):
            c = indices[j]
            k = fill[c]
            out_idx[k] = r
            out_val[k] = data[j]
            fill[c] = k + 1
    return ptr, out_idx, out_val
