"""The fast Laplacian and the direct solver against pymatting's matrix (synthetic data)."""

import numpy as np
import pytest

from mattestudio.engines.fastcf import direct, laplacian

pytest.importorskip("pymatting")


def _random_case(h=30, w=36, seed=0):
    rng = np.random.default_rng(seed)
    image = rng.random((h, w, 3))
    tri = np.zeros((h, w))
    tri[:, w // 2 :] = 1.0
    tri[5:25, 10:28] = 0.5
    tri[0:3, :] = 0.5  # unknown pixels on the image border
    return image, tri


@pytest.mark.parametrize("radius", [1, 2])
def test_system_matches_pymatting(radius):
    from pymatting import cf_laplacian

    image, tri = _random_case()
    unknown, fg = tri == 0.5, tri == 1.0
    known = ~unknown
    L = cf_laplacian(image, epsilon=1e-7, radius=radius, is_known=known)
    ui, ki = unknown.ravel(), known.ravel()
    LU = L[ui][:, ui]
    b = -L[ui][:, ki] @ fg.ravel()[ki]
    stats = laplacian.window_stats(image, 1e-7, radius)
    system = laplacian.assemble(stats, image, unknown, fg.astype(float))
    scale = abs(LU).max()
    assert abs(system.matrix - LU).max() <= 1e-10 * scale
    assert np.abs(system.rhs - b).max() <= 1e-10 * scale


def test_direct_factor_solves_the_system():
    image, tri = _random_case(48, 52, seed=1)
    unknown = tri == 0.5
    stats = laplacian.window_stats(image)
    system = laplacian.assemble(stats, image, unknown, (tri == 1.0).astype(float))
    factor = direct.factorize(system.matrix, system.coords)
    x = factor.solve(system.rhs)
    res = np.linalg.norm(system.matrix @ x - system.rhs) / np.linalg.norm(system.rhs)
    assert res < 1e-10


def test_factor_reports_progress_and_can_stop():
    image, tri = _random_case(48, 52, seed=2)
    stats = laplacian.window_stats(image)
    system = laplacian.assemble(stats, image, tri == 0.5, (tri == 1.0).astype(float))
    seen = []

    class Stop(Exception):
        pass

    def check(frac):
        seen.append(frac)
        if len(seen) == 2:
            raise Stop

    with pytest.raises(Stop):
        direct.factorize(system.matrix, system.coords, check=check)
    assert seen[0] < 1.0


@pytest.mark.parametrize("radius", [1, 2])
def test_lazy_window_stats_give_the_same_system(radius):
    """The engine computes window statistics during assembly (only windows touching unknowns):
    bit-for-bit the system built from a whole-image table."""
    image, tri = _random_case(seed=3)
    unknown, known = tri == 0.5, (tri == 1.0).astype(float)
    table = laplacian.assemble(laplacian.window_stats(image, 1e-7, radius), image, unknown, known)
    lazy = laplacian.assemble(laplacian.WindowStats.lazy(radius, 1e-7), image, unknown, known)
    assert (table.matrix != lazy.matrix).nnz == 0
    assert np.array_equal(table.rhs, lazy.rhs)


def test_direct_factor_with_large_fronts_matches_small_front_path(monkeypatch):
    """Fronts above SMALL_FRONT go through scipy's LAPACK/BLAS, the rest through the numba loops:
    both give the same solution."""
    image, tri = _random_case(60, 64, seed=4)
    tri[10:50, 5:60] = 0.5
    system = laplacian.assemble(
        laplacian.WindowStats.lazy(), image, tri == 0.5, (tri == 1.0).astype(float)
    )
    x_small = direct.factorize(system.matrix, system.coords).solve(system.rhs)
    monkeypatch.setattr(direct, "SMALL_FRONT", 40)
    x_big = direct.factorize(system.matrix, system.coords).solve(system.rhs)
    assert np.abs(x_small - x_big).max() < 1e-8
    res = np.linalg.norm(system.matrix @ x_big - system.rhs) / np.linalg.norm(system.rhs)
    assert res < 1e-10


def test_engine_module_imports_no_solver():
    """Listing engines imports the engine module for its EngineInfo: that must not load numba or scipy."""
    import subprocess
    import sys

    code = (
        "import sys, mattestudio.engines.fastcf.engine; "
        "print([m for m in ('numba', 'scipy', 'mattestudio.engines.fastcf.direct') if m in sys.modules])"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip().splitlines()[-1] == "[]"
