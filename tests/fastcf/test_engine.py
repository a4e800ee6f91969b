"""FastClosedFormEngine: agreement with pymatting, incremental = full, cancel, coarse preview.

Stated tolerances: the full solve is exact up to rounding, so it matches pymatting's rtol=1e-7 CG
to 1e-3 (max abs alpha) here; an incremental re-solve matches a full solve to the engine's
``tolerance`` parameter (2e-3 max abs alpha by default).
"""

import numpy as np
import pytest

from mattestudio.core.metrics import sad
from mattestudio.engines import registry
from mattestudio.engines.fastcf.engine import FastClosedFormEngine
from mattestudio.errors import Cancelled
from mattestudio.types import CancelToken
from tests.conftest import make_synthetic_matte
from tests.scenes import paint_disc


@pytest.fixture(scope="module")
def big():
    return make_synthetic_matte(h=150, w=190, seed=5, band=10)


def _full(image, trimap, **params):
    e = FastClosedFormEngine(incremental=False, **params)
    e.prepare(image)
    return e.predict(trimap)[0]


def test_registered_as_closed_form():
    engine = registry.create("closed-form")
    assert isinstance(engine, FastClosedFormEngine)
    assert engine.info.display_name == "Closed-form (fast)"
    assert registry.create("closed-form-pymatting").info.name == "closed-form-pymatting"


def test_agrees_with_pymatting(synthetic_matte):
    from pymatting import estimate_alpha_cf

    m = synthetic_matte
    ref = estimate_alpha_cf(m.image.astype(np.float64), m.trimap / 255.0)
    alpha = _full(m.image, m.trimap)
    unknown = m.trimap == 128
    assert alpha.dtype == np.float32 and alpha.shape == m.trimap.shape
    assert np.abs(alpha - ref)[unknown].max() < 1e-3
    s_ref, s_fast = sad(ref, m.alpha, m.trimap), sad(alpha, m.alpha, m.trimap)
    assert abs(s_fast - s_ref) <= 0.01 * s_ref


def test_known_regions_exact(synthetic_matte):
    m = synthetic_matte
    alpha = _full(m.image, m.trimap)
    assert np.all(alpha[m.trimap == 255] == 1.0)
    assert np.all(alpha[m.trimap == 0] == 0.0)


@pytest.mark.parametrize("kind", ["to_fg", "to_unknown"])
def test_incremental_equals_full(big, kind):
    engine = FastClosedFormEngine()
    engine.prepare(big.image)
    engine.predict(big.trimap)
    assert engine.last_mode == "full"
    if kind == "to_fg":
        ys, xs = np.nonzero(big.trimap == 128)
        i = len(ys) // 3
        tri = paint_disc(big.trimap, ys[i], xs[i], 5, 255, lambda t: t == 128)
    else:
        ys, xs = np.nonzero(big.trimap == 255)
        i = len(ys) // 2
        tri = paint_disc(big.trimap, ys[i], xs[i], 6, 128, lambda t: t == 255)
    alpha, _ = engine.predict(tri)
    assert engine.last_mode == "incremental"
    full = _full(big.image, tri)
    assert np.abs(alpha - full).max() <= engine.params["tolerance"]
    # Unchanged trimap: the stored result, no solve.
    again, _ = engine.predict(tri)
    assert engine.last_mode == "unchanged" and np.array_equal(again, alpha)
    engine.forget_previous()
    engine.predict(tri)
    assert engine.last_mode == "full"


def test_cancel_mid_solve_keeps_previous_result(big):
    engine = FastClosedFormEngine()
    engine.prepare(big.image)
    first, _ = engine.predict(big.trimap)
    token = CancelToken()
    calls = []

    def progress(frac, msg):
        calls.append(frac)
        token.cancel()  # the next check inside the solver raises

    changed = big.trimap.copy()
    changed[big.trimap == 128] = 0  # a global change: a full solve
    changed[40:110, 60:130][big.trimap[40:110, 60:130] == 128] = 128
    with pytest.raises(Cancelled):
        engine.predict(changed, progress=progress, cancel=token)
    assert calls and calls[-1] < 1.0
    again, _ = engine.predict(big.trimap)
    assert engine.last_mode == "unchanged"
    assert np.array_equal(again, first)
    # Cancelling an incremental re-solve also leaves the state alone.
    tri = paint_disc(big.trimap, *np.argwhere(big.trimap == 128)[10], 4, 255, lambda t: t == 128)
    token2 = CancelToken()
    token2.cancel()
    with pytest.raises(Cancelled):
        engine.predict(tri, cancel=token2)
    assert np.array_equal(engine.predict(big.trimap)[0], first)


def test_coarse_preview(big):
    engine = FastClosedFormEngine()
    engine.prepare(big.image)
    coarse, fg = engine.predict_coarse(big.trimap, 0.5)
    assert fg is None
    assert coarse.shape == big.trimap.shape and coarse.dtype == np.float32
    assert np.all(coarse[big.trimap == 255] == 1.0) and np.all(coarse[big.trimap == 0] == 0.0)
    full, _ = engine.predict(big.trimap)
    unknown = big.trimap == 128
    assert np.abs(coarse - full)[unknown].mean() < 0.1


def test_coarse_to_fine_path_close_to_direct(big):
    engine = FastClosedFormEngine(memory_gb=0.05, tile=48)
    engine.prepare(big.image)
    # Force the coarse-to-fine path on a small image by pretending the budget is tiny.
    engine._budget_entries = lambda: 600_000.0
    alpha, _ = engine.predict(big.trimap)
    assert engine.last_mode == "coarse-to-fine"
    full = _full(big.image, big.trimap)
    unknown = big.trimap == 128
    assert np.abs(alpha - full)[unknown].mean() < 0.02


def test_pipeline_runs_the_engine(synthetic_matte):
    from mattestudio.pipeline import run_matting

    m = synthetic_matte
    result = run_matting(
        registry.create("closed-form"), m.image, m.trimap, estimate_foreground=False
    )
    assert result.alpha.shape == m.trimap.shape and result.engine == "closed-form"
