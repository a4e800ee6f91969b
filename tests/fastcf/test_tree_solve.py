"""Solves with the direct factor split across threads, and from a float32 copy (synthetic data)."""

import numpy as np
import pytest

from mattestudio.engines.fastcf import direct, laplacian
from mattestudio.engines.fastcf.tree_solve import TreeSolver, split


def _factor(h=70, w=90, seed=3):
    rng = np.random.default_rng(seed)
    image = rng.random((h, w, 3))
    unknown = np.zeros((h, w), bool)
    unknown[4:-4, 6:-6] = rng.random((h - 8, w - 12)) < 0.9
    fixed = (rng.random((h, w)) < 0.5).astype(float)
    system = laplacian.assemble(laplacian.window_stats(image), image, unknown, fixed)
    return system, direct.factorize(system.matrix, system.coords, leaf=16)


def test_split_covers_every_node_once_children_first():
    _, factor = _factor()
    assert factor.parent is not None
    nv = (factor.vend - factor.vstart).astype(float)
    groups, top = split(factor.parent, nv * nv, 2)
    assert len(groups) == 2 and all(len(g) for g in groups) and len(top)
    every = np.concatenate([*groups, top])
    assert np.array_equal(np.sort(every), np.arange(len(factor.vstart)))
    # No node of one group is an ancestor of a node of the other: their pixels meet only in top.
    owner = np.full(len(factor.vstart), -1)
    for g, nodes in enumerate(groups):
        owner[nodes] = g
    for k in np.flatnonzero(owner >= 0):
        p = factor.parent[k]
        assert p < 0 or owner[p] in (owner[k], -1)
    # Roughly balanced work.
    work = [float((nv * nv)[g].sum()) for g in groups]
    assert max(work) <= 1.5 * min(work)


@pytest.mark.parametrize("threads", [1, 2, 3])
def test_threaded_solve_equals_sequential(threads):
    system, factor = _factor()
    b = np.random.default_rng(0).standard_normal(len(system.rhs))
    expected = factor.solve(b)
    got = TreeSolver(factor, threads=threads).solve(b)
    assert np.allclose(got, expected, rtol=0, atol=1e-12 * np.abs(expected).max())


def test_float32_copy_is_close():
    system, factor = _factor()
    b = system.rhs
    exact = factor.solve(b)
    approx = TreeSolver(factor, threads=2, dtype=np.float32).solve(b)
    assert np.linalg.norm(approx - exact) <= 1e-5 * np.linalg.norm(exact)
    assert np.linalg.norm(approx - exact) > 0  # it really is the float32 copy
