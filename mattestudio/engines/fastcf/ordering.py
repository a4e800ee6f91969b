"""Elimination order for the direct solver: geometric nested dissection and its symbolic analysis.

The unknown pixels are cut recursively by lines 2r pixels wide (a radius-r Laplacian couples pixels
up to 2r apart, so such a cut separates the two sides), each cut placed where it crosses the fewest
unknown pixels while leaving 30..70 % on each side. Each node of the resulting tree eliminates its
cut (or a small leaf) after its two children; ``plan`` also lists every node's boundary (the later
pixels its front couples to after fill) and sizes the factor.
"""

from __future__ import annotations

import numpy as np
import scipy.sparse
from numba import njit

LEAF = 32  # pixels per leaf of the dissection tree


@njit(cache=True, nogil=True)
def _best_cut(coords, ids, lo, hi, sep):
    """(axis, first line) of the cut with the fewest pixels leaving >= 30 % on each side, or (-1, 0)."""
    n = hi - lo
    best_axis, best_line, best_size = -1, 0, n + 1
    for axis in range(2):
        cmin = coords[ids[lo], axis]
        cmax = cmin
        for t in range(lo, hi):
            c = coords[ids[t], axis]
            cmin = min(cmin, c)
            cmax = max(cmax, c)
        span = cmax - cmin + 1
        if span < sep + 2:
            continue
        cnt = np.zeros(span, np.int64)
        for t in range(lo, hi):
            cnt[coords[ids[t], axis] - cmin] += 1
        for relaxed in range(2):
            before = 0
            found = False
            for p in range(span - sep + 1):
                cut = 0
                for q in range(sep):
                    cut += cnt[p + q]
                after = n - before - cut
                if relaxed == 0:
                    ok = before >= 0.3 * n and after >= 0.3 * n
                else:
                    ok = before > 0 and after > 0
                if ok:
                    found = True
                    if cut < best_size:
                        best_axis, best_line, best_size = axis, cmin + p, cut
                before += cnt[p]
            if found:
                break
    return best_axis, best_line


@njit(cache=True, nogil=True)
def _dissect(coords, sep, leaf):
    n = coords.shape[0]
    ids = np.arange(n)
    tmp = np.empty(n, np.int64)
    perm = np.empty(n, np.int64)
    cap = 2 * n + 64  # frames: every split has two non-empty children, so fewer than 2n
    f_lo = np.empty(cap, np.int64)
    f_hi = np.empty(cap, np.int64)
    f_mid = np.empty(cap, np.int64)  # start of the separator's segment once split, -1 for a leaf
    f_parent = np.full(cap, -1, np.int64)
    f_node = np.full(cap, -1, np.int64)
    vstart = np.empty(cap, np.int64)
    vend = np.empty(cap, np.int64)
    stack = np.empty(cap, np.int64)
    state = np.zeros(cap, np.int64)
    nf = 1
    f_lo[0], f_hi[0] = 0, n
    stack[0] = 0
    top = 1
    pos = 0
    nodes = 0
    while top > 0:
        f = stack[top - 1]
        lo, hi = f_lo[f], f_hi[f]
        if state[f] == 0:
            axis, line = (-1, 0) if hi - lo <= leaf else _best_cut(coords, ids, lo, hi, sep)
            if axis >= 0:
                nl = nr = 0
                for t in range(lo, hi):
                    if coords[ids[t], axis] < line:
                        nl += 1
                    elif coords[ids[t], axis] >= line + sep:
                        nr += 1
                a, b, c = lo, lo + nl, lo + nl + nr
                for t in range(lo, hi):
                    v = coords[ids[t], axis]
                    i = ids[t]
                    if v < line:
                        tmp[a] = i
                        a += 1
                    elif v >= line + sep:
                        tmp[b] = i
                        b += 1
                    else:
                        tmp[c] = i
                        c += 1
                ids[lo:hi] = tmp[lo:hi]
                state[f] = 1
                f_mid[f] = lo + nl + nr
                for clo, chi in (
                    (lo + nl, lo + nl + nr),
                    (lo, lo + nl),
                ):  # left ends on top: done first
                    if chi > clo:
                        f_lo[nf], f_hi[nf], f_parent[nf] = clo, chi, f
                        stack[top] = nf
                        top += 1
                        nf += 1
                continue
            f_mid[f] = lo
        # Leaf, or both children done: eliminate the separator (or the leaf's pixels).
        top -= 1
        m0 = f_mid[f]
        vstart[nodes] = pos
        for t in range(m0, hi):
            perm[pos] = ids[t]
            pos += 1
        vend[nodes] = pos
        f_node[f] = nodes
        nodes += 1
    parent = np.full(nodes, -1, np.int64)
    for f in range(nf):
        if f_parent[f] >= 0:
            parent[f_node[f]] = f_node[f_parent[f]]
    return perm, vstart[:nodes].copy(), vend[:nodes].copy(), parent


def nested_dissection(coords: np.ndarray, sep: int = 2, leaf: int = LEAF):
    """Elimination order and tree: (perm, vstart, vend, parent), nodes listed in postorder.

    Node k eliminates perm[vstart[k]:vend[k]]. Cuts are ``sep`` lines wide (a radius-r Laplacian
    couples pixels up to 2r apart) and chosen to cut as few pixels as possible.
    """
    return _dissect(np.ascontiguousarray(coords, np.int64), int(sep), int(leaf))


@njit(cache=True, nogil=True)
def _symbolic(indptr, indices, perm, rank, vstart, vend, cptr, cidx, mark):
    """Boundary set of every node (ids sorted by elimination rank), flattened as (bptr, bidx)."""
    nn = vstart.shape[0]
    bptr = np.zeros(nn + 1, np.int64)
    cap = max(16, 4 * perm.shape[0])
    bidx = np.empty(cap, np.int64)
    tmp = np.empty(perm.shape[0], np.int64)
    for k in range(nn):
        end = vend[k]
        cnt = 0
        for p in range(vstart[k], end):
            i = perm[p]
            for q in range(indptr[i], indptr[i + 1]):
                j = indices[q]
                if rank[j] >= end and mark[j] != k:
                    mark[j] = k
                    tmp[cnt] = rank[j]
                    cnt += 1
        for cc in range(cptr[k], cptr[k + 1]):
            c = cidx[cc]
            for q in range(bptr[c], bptr[c + 1]):
                j = bidx[q]
                if rank[j] >= end and mark[j] != k:
                    mark[j] = k
                    tmp[cnt] = rank[j]
                    cnt += 1
        ranks = np.sort(tmp[:cnt])
        start = bptr[k]
        if start + cnt > cap:
            while start + cnt > cap:
                cap *= 2
            grown = np.empty(cap, np.int64)
            grown[:start] = bidx[:start]
            bidx = grown
        for t in range(cnt):
            bidx[start + t] = perm[ranks[t]]
        bptr[k + 1] = start + cnt
    return bptr, bidx[: bptr[nn]].copy()


def plan(matrix: scipy.sparse.csr_matrix, coords: np.ndarray, sep: int = 2, leaf: int = LEAF):
    """Ordering, tree and boundary sets; also the factor's size in float64 entries (for memory checks)."""
    perm, vstart, vend, parent = nested_dissection(coords, sep, leaf)
    n = len(perm)
    rank = np.empty(n, np.int64)
    rank[perm] = np.arange(n)
    nn = len(vstart)
    order = np.argsort(parent, kind="stable")
    kids = order[parent[order] >= 0]
    cptr = np.zeros(nn + 1, np.int64)
    np.add.at(cptr, parent[kids] + 1, 1)
    cptr = np.cumsum(cptr)
    bptr, bidx = _symbolic(
        matrix.indptr,
        matrix.indices,
        perm,
        rank,
        vstart,
        vend,
        cptr,
        kids.astype(np.int64),
        np.full(n, -1, np.int64),
    )
    nv = vend - vstart
    nb = np.diff(bptr)
    fptr = np.zeros(nn + 1, np.int64)
    fptr[1:] = np.cumsum(nv * nv + nv * nb)
    return {
        "perm": perm,
        "rank": rank,
        "parent": parent,
        "vstart": vstart,
        "vend": vend,
        "cptr": cptr,
        "kids": kids,
        "bptr": bptr,
        "bidx": bidx,
        "fptr": fptr,
        "front": int((nv + nb).max()) if nn else 0,
    }


@njit(cache=True, nogil=True)
def _stack_size_kernel(parent, cptr, nb):
    peak = size = 0
    sizes = np.empty(parent.shape[0] + 1, np.int64)  # the pending updates, as a stack
    top = 0
    for k in range(parent.shape[0]):
        for _ in range(cptr[k + 1] - cptr[k]):
            top -= 1
            size -= sizes[top]
        if parent[k] >= 0:
            e = 1 + nb[k] * nb[k]
            sizes[top] = e
            top += 1
            size += e
            peak = max(peak, size)
    return peak


def _stack_size(parent, cptr, nb) -> int:
    """Peak size of the flat update stack (each entry: node id + nb x nb update)."""
    return int(
        _stack_size_kernel(
            np.ascontiguousarray(parent, np.int64),
            np.ascontiguousarray(cptr, np.int64),
            np.ascontiguousarray(nb, np.int64),
        )
    )
