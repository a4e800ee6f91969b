"""Coarse-to-fine Run beyond the memory budget (forced on small images by a tiny budget): the
matrix-free Laplacian and the guided upsampling it rests on, when the path is taken, how close it
is to the exact solve, that every factorization fits the budget, and that it is deterministic.

Stated bounds (the 200 x 260 synthetic scene below, band 16, 8 347 unknowns, 40 px tiles): the
coarse-to-fine alpha is within 0.002 of the exact whole-image solve on average over the unknown
pixels (measured 0.0004, max 0.02; 4 688 of them re-solved), and within 0.001 when every unknown
pixel is re-solved at full resolution (``fine_residual=0``; measured 0.00015).
"""

import cv2
import numpy as np
import pytest

from mattestudio.engines.fastcf import local_linear, regional
from mattestudio.engines.fastcf.engine import FastClosedFormEngine
from mattestudio.engines.fastcf.laplacian import WindowStats, assemble
from tests.conftest import make_synthetic_matte

BUDGET = 600_000.0  # factor entries: the scene's 25 000 unknowns need about 4 M


@pytest.fixture(scope="module")
def scene():
    return make_synthetic_matte(h=200, w=260, seed=5, band=16)


@pytest.fixture(scope="module")
def exact(scene):
    e = FastClosedFormEngine(incremental=False, memory_gb=64)
    e.prepare(scene.image)
    alpha = e.predict(scene.trimap)[0]
    assert e.last_mode == "full"
    return alpha


def _c2f(image, trimap, **params):
    e = FastClosedFormEngine(incremental=False, workers=2, **params)
    e.prepare(image)
    e._budget_entries = lambda: BUDGET
    return e, e.predict(trimap)[0]


def test_laplacian_times_matches_the_assembled_system(monkeypatch):
    rng = np.random.default_rng(0)
    img = cv2.GaussianBlur(rng.random((70, 50, 3)), (0, 0), 1.5)
    p = rng.random((70, 50))
    monkeypatch.setattr(local_linear, "STRIP_ROWS", 16)  # several strips and their seams
    for radius in (1, 2):
        system = assemble(
            WindowStats.lazy(radius, 1e-7), img, np.ones((70, 50), bool), np.zeros((70, 50))
        )
        x = p[system.coords[:, 0], system.coords[:, 1]]
        want = system.matrix @ x - system.rhs
        got = local_linear.laplacian_times(img, p, radius, 1e-7)[
            system.coords[:, 0], system.coords[:, 1]
        ]
        assert np.abs(got - want).max() <= 1e-8 * np.abs(want).max()


def test_guided_upsample_in_strips_equals_the_whole_image(monkeypatch):
    rng = np.random.default_rng(1)
    img = rng.random((61, 47, 3)).astype(np.float32)
    small = cv2.resize(img, (20, 25), interpolation=cv2.INTER_AREA)
    a_small = rng.random((25, 20))
    monkeypatch.setattr(local_linear, "STRIP_ROWS", 7)
    got = local_linear.guided_upsample(small, a_small, img, 1, 1e-4)
    a, b = local_linear._coefficients(small.astype(np.float64), a_small, 1, 1e-4)
    a = local_linear._box(a, 1).astype(np.float32)
    b = local_linear._box(b, 1).astype(np.float32)
    want = (cv2.resize(a, (47, 61)) * img).sum(axis=2) + cv2.resize(b, (47, 61))
    assert got.shape == (61, 47) and got.dtype == np.float32
    assert np.abs(got - want).max() < 1e-5


def test_guided_upsample_keeps_a_linear_matte_exact():
    """Where alpha is a linear function of the colours the upsampling reproduces it."""
    rng = np.random.default_rng(2)
    img = cv2.GaussianBlur(rng.random((80, 80, 3)), (0, 0), 3).astype(np.float32)
    true = (0.2 + img @ np.array([0.5, -0.3, 0.4], np.float32)).astype(np.float32)
    small = cv2.resize(img, (40, 40), interpolation=cv2.INTER_AREA)
    a_small = 0.2 + small @ np.array([0.5, -0.3, 0.4], np.float32)
    up = local_linear.guided_upsample(small, a_small, img, 1, 1e-7)
    bilinear = cv2.resize(a_small, (80, 80))
    assert np.abs(up - true).mean() < 0.2 * np.abs(bilinear - true).mean()


def test_used_above_the_budget_only(scene):
    e = FastClosedFormEngine(incremental=False)
    e.prepare(scene.image)
    e.predict(scene.trimap)
    assert e.last_mode == "full"  # the default budget holds this image: exact direct solve
    e2, _ = _c2f(scene.image, scene.trimap)
    assert e2.last_mode == "coarse-to-fine"
    s = e2.last_solve
    assert 0 < s["scale"] < 1 and s["coarse_unknowns"] > 0


def test_close_to_the_exact_solve(scene, exact):
    unknown = scene.trimap == 128
    n = int(unknown.sum())
    e, alpha = _c2f(scene.image, scene.trimap)
    assert np.all(alpha[scene.trimap == 0] == 0) and np.all(alpha[scene.trimap == 255] == 1)
    assert 0 < e.last_solve["fine_unknowns"] < n  # only part of the band is re-solved
    assert np.abs(alpha - exact)[unknown].mean() < 0.002
    e_all, alpha_all = _c2f(scene.image, scene.trimap, fine_residual=0.0)
    assert e_all.last_solve["fine_unknowns"] == n
    assert np.abs(alpha_all - exact)[unknown].mean() < 0.001


def test_every_factorization_fits_the_budget(scene, sizes):
    e, _ = _c2f(scene.image, scene.trimap, fine_residual=0.0)
    assert e.last_mode == "coarse-to-fine"
    # The coarse solve alone within 0.64 of the budget, the full-resolution tiles (two at once)
    # within half of it each, and none larger than a tile.
    coarse, tiles = sizes[0], sizes[1:]
    assert coarse == e.last_solve["coarse_unknowns"]
    assert regional.factor_entries(coarse) <= 0.64 * BUDGET
    side = e.last_solve["tile_side"]
    assert tiles and max(tiles) <= side * side
    assert max(regional.factor_entries(n) for n in tiles) <= BUDGET / 2


def test_deterministic_and_independent_of_workers(scene, monkeypatch):
    from mattestudio.engines.fastcf import tiling

    _, a = _c2f(scene.image, scene.trimap)
    _, b = _c2f(scene.image, scene.trimap)
    assert np.array_equal(a, b)
    # The same grid (sized for two workers) run one tile at a time: the same alpha, bit for bit.
    real = tiling.solve_tiles
    monkeypatch.setattr(tiling, "solve_tiles", lambda *a, **k: real(*a, **{**k, "workers": 1}))
    _, c = _c2f(scene.image, scene.trimap)
    assert np.array_equal(a, c)
