"""Solves with a sparse Cholesky factor on several threads, optionally from a float32 copy.

The nested-dissection tree splits into disjoint subtrees whose nodes touch each other only through
their common ancestors' separators ("top" nodes). Forward: each thread substitutes through its
subtrees, the first in ``x`` itself and the others in copies; their updates to the top pixels are
sums, so the copies' changes there are added to ``x``; then the top nodes run on one thread.
Backward: the top nodes first, then the subtrees in parallel on ``x`` (a node writes only its own
pixels). The numba kernels release the GIL, so plain Python threads run them side by side.

A float32 copy halves the memory read per solve (the solves are memory-bound); the arithmetic
stays in float64. As a preconditioner its relative error (about 1e-7) is far below any
conjugate-gradient tolerance used.
"""

from __future__ import annotations

import os
from concurrent.futures import ThreadPoolExecutor
from functools import lru_cache, partial
from typing import Any

import numpy as np

from mattestudio.engines.fastcf import direct
from mattestudio.engines.fastcf.direct import Factor

# The numba kernels, called with the factor's arrays spread from a tuple (typed loosely: numba's
# dispatcher does not describe its signature).
_forward: Any = direct._forward
_backward: Any = direct._backward


@lru_cache(maxsize=1)
def _pool() -> ThreadPoolExecutor:
    return ThreadPoolExecutor(max(1, (os.cpu_count() or 1) - 1), thread_name_prefix="tree-solve")


def default_threads() -> int:
    return max(1, min(2, os.cpu_count() or 1))


def split(parent: np.ndarray, work: np.ndarray, groups: int, balance: float = 1.05):
    """(node lists per group, top nodes): disjoint subtrees dealt to ``groups`` with about equal
    ``work``, and the nodes above them, all in postorder. A subtree rooted at r holds the nodes
    r - size[r] + 1 .. r (postorder)."""
    nn = len(parent)
    size = np.ones(nn, np.int64)
    total = np.asarray(work, np.float64).copy()
    kids: list[list[int]] = [[] for _ in range(nn)]
    for k in range(nn):  # children come before their parent
        p = int(parent[k])
        if p >= 0:
            size[p] += size[k]
            total[p] += total[k]
            kids[p].append(k)
    frontier = [int(k) for k in np.flatnonzero(parent < 0)]
    top: list[int] = []
    best = None
    for _ in range(64):
        loads = [0.0] * groups
        owner: list[list[int]] = [[] for _ in range(groups)]
        for r in sorted(frontier, key=lambda r: -total[r]):
            g = int(np.argmin(loads))
            loads[g] += total[r]
            owner[g].append(r)
        top_work = float(sum(work[k] for k in top))
        score = max(loads) + top_work  # the wall time, in units of work
        if best is None or score < best[0]:
            best = (score, [list(o) for o in owner], list(top))
        if max(loads) <= balance * sum(loads) / groups:
            break
        r = max(frontier, key=lambda r: total[r])
        if not kids[r]:
            break
        frontier.remove(r)
        frontier.extend(kids[r])
        top.append(r)
    assert best is not None
    _, owner, top = best
    lists = []
    for roots in owner:
        ranges = [np.arange(r - size[r] + 1, r + 1) for r in sorted(roots)]
        lists.append(np.concatenate(ranges) if ranges else np.zeros(0, np.int64))
    return lists, np.array(sorted(top), np.int64)


class TreeSolver:
    """``solve(b)``: A^{-1} b with ``factor``, on up to ``threads`` threads, the factor's entries
    kept as ``dtype``."""

    def __init__(self, factor: Factor, *, threads: int | None = None, dtype=np.float64):
        # The index arrays only: a float32 copy lets the float64 factor be freed.
        f = factor
        self._index = (f.perm, f.vstart, f.vend, f.bptr, f.bidx, f.fptr)
        self.factors = np.ascontiguousarray(factor.factors, dtype)
        threads = default_threads() if threads is None else max(1, int(threads))
        nn = len(factor.vstart)
        if threads > 1 and factor.parent is not None and nn > 1:
            nv = (factor.vend - factor.vstart).astype(np.float64)
            work = nv * (nv + 1) / 2 + nv * np.diff(factor.bptr)
            self.groups, self.top = split(factor.parent, work, threads)
        else:
            self.groups, self.top = [np.arange(nn)], np.zeros(0, np.int64)
        self.groups = [g for g in self.groups if len(g)]
        # Pixels a group eliminates (copied back from its copy of x) and the top nodes' pixels.
        self._own = [self._pixels(g) for g in self.groups]
        self._top_pixels = self._pixels(self.top)

    def _pixels(self, nodes: np.ndarray) -> np.ndarray:
        perm, vstart, vend = self._index[:3]
        if not len(nodes):
            return np.zeros(0, np.int64)
        return np.concatenate([perm[vstart[k] : vend[k]] for k in nodes])

    def _args(self) -> tuple[Any, ...]:
        return (*self._index, self.factors)

    def solve(self, b: np.ndarray) -> np.ndarray:
        args = self._args()
        x = np.array(b, np.float64, copy=True)
        if len(self.groups) == 1:
            _forward(*args, x, self.groups[0])
            _forward(*args, x, self.top)
            _backward(*args, x, self.top)
            _backward(*args, x, self.groups[0])
            return x
        before = x[self._top_pixels]
        copies = [x.copy() for _ in self.groups[1:]]
        jobs = [
            _pool().submit(partial(_forward, *args, xc, g))
            for xc, g in zip(copies, self.groups[1:], strict=True)
        ]
        _forward(*args, x, self.groups[0])
        for job in jobs:
            job.result()
        for xc, own in zip(copies, self._own[1:], strict=True):
            x[own] = xc[own]
            x[self._top_pixels] += xc[self._top_pixels] - before
        _forward(*args, x, self.top)
        _backward(*args, x, self.top)
        jobs = [_pool().submit(partial(_backward, *args, x, g)) for g in self.groups[1:]]
        _backward(*args, x, self.groups[0])
        for job in jobs:
            job.result()
        return x
