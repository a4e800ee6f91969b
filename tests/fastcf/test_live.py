"""Live mode and large solves under forced small budgets: bounded work per call, no whole-image
solve after a stroke, approximate regions marked and later refined, parallel tiles equal to the
sequential sweep, factor sizes within memory_gb.

Stated tolerances: a settled Live result (no approximate region left) matches a whole-image solve
to 5x the engine's ``tolerance`` (2e-3) wherever no region is marked; refinement is a Schwarz
iteration that stops when alpha moves less than ``tolerance`` at the tiles' shared bands.
"""

import numpy as np
import pytest

from mattestudio.engines.fastcf import regional
from mattestudio.engines.fastcf.engine import FastClosedFormEngine
from tests.conftest import make_synthetic_matte


@pytest.fixture(scope="module")
def scene():
    return make_synthetic_matte(h=200, w=260, seed=5, band=16)


def _full(image, trimap):
    e = FastClosedFormEngine(incremental=False, memory_gb=64)
    e.prepare(image)
    return e.predict(trimap)[0]


def _engine(image, **params):
    e = FastClosedFormEngine(tile=40, **params)
    e.prepare(image)
    e.live_first_unknowns = 600
    e.live_start_unknowns = 2000
    return e


def _stroke(trimap, y0, y1, x0, x1, value, where=128):
    out = trimap.copy()
    part = out[y0:y1, x0:x1]
    part[part == where] = value
    return out


def _covered(regions, mask):
    inside = np.zeros(mask.shape, bool)
    for r in regions:
        y0, y1, x0, x1 = r.box
        inside[y0:y1, x0:x1] = True
    return bool(np.all(inside[mask]))


def test_stroke_work_is_bounded_and_refined(scene, sizes):
    e = _engine(scene.image)
    e.predict(scene.trimap)  # a full solve first, as after Run
    total = int((scene.trimap == 128).sum())
    # A stroke over a large part of the band: far beyond the first-change budget.
    tri = _stroke(scene.trimap, 40, 160, 30, 230, 0)
    sizes.clear()
    r = e.predict_live(tri)
    assert r.mode == "proxy" and e.last_mode == "live-proxy"
    assert sizes and max(sizes) <= e.live_first_unknowns
    assert r.approximate_regions and {g.reason for g in r.approximate_regions} == {"coarse"}
    assert r.changed is not None and r.alpha.dtype == np.float32
    assert np.all(r.alpha[tri == 0] == 0) and np.all(r.alpha[tri == 255] == 1)
    # Refinement: each call factorizes at most one tile per worker, never the whole band.
    tile_cap = 40 * 40
    calls = 0
    while (q := e.refine(seconds=0.0)) is not None:
        r = q
        calls += 1
        assert calls < 500
    assert calls > 1 and max(sizes) <= max(e.live_first_unknowns, tile_cap) < total
    assert not e.live_pending
    full = _full(scene.image, tri)
    bad = np.abs(r.alpha - full) > 5 * e.params["tolerance"]
    unsettled = [g for g in r.approximate_regions if g.reason == "unsettled"]
    assert len(unsettled) == len(r.approximate_regions)  # nothing refinable is left
    assert _covered(unsettled, bad)  # every pixel off the full solve is marked


def test_small_stroke_settles_to_the_full_solve(scene):
    e = _engine(scene.image)
    e.predict(scene.trimap)
    ys, xs = np.nonzero(scene.trimap == 128)
    y, x = ys[len(ys) // 2], xs[len(ys) // 2]
    tri = _stroke(scene.trimap, y - 3, y + 3, x - 3, x + 3, 255)
    r = e.predict_live(tri)
    while (q := e.refine()) is not None:
        r = q
    assert r.exact
    full = _full(scene.image, tri)
    assert np.abs(r.alpha - full).max() <= 5 * e.params["tolerance"]
    # Nothing changed: no work at all.
    again = e.predict_live(tri)
    assert again.mode == "unchanged" and again.changed is None and again.solved_unknowns == 0


def test_live_never_solves_the_whole_image(scene, sizes):
    """Even a change of the whole band stays within the Live budgets (the old path fell back to
    a whole-image solve when the box grew past half the image)."""
    e = _engine(scene.image)
    e.predict(scene.trimap)
    total = int((scene.trimap == 128).sum())
    tri = _stroke(scene.trimap, 0, 200, 0, 260, 0)
    tri[100:110, 100:140] = 128  # keep a few unknown pixels
    sizes.clear()
    e.predict_live(tri)
    for _ in range(5):
        e.refine(seconds=0.0)
    assert max(sizes) < min(total, 2000)


def test_start_without_a_result_is_coarse_then_refined(scene, sizes):
    e = _engine(scene.image)
    r = e.predict_live(scene.trimap)
    assert r.mode == "start" and max(sizes) <= e.live_start_unknowns
    assert r.approximate_regions and all(g.reason == "coarse" for g in r.approximate_regions)
    unknown = scene.trimap == 128
    assert _covered(r.approximate_regions, unknown)
    before = len(r.approximate_regions)
    r2 = e.refine(seconds=0.0)
    assert r2 is not None and len(r2.approximate_regions) < before + 8
    assert r2.changed is not None


def test_stroke_budget_marks_the_rest_unsettled(scene):
    e = _engine(scene.image)
    e.live_stroke_unknowns = 1000  # about one tile
    e.predict(scene.trimap)
    tri = _stroke(scene.trimap, 40, 160, 30, 230, 0)
    r = e.predict_live(tri)
    solved = 0
    while (q := e.refine(seconds=0.0)) is not None:
        r = q
        solved += r.solved_unknowns
    assert solved <= 1000 + 2 * 40 * 40  # the budget, plus the batch that crossed it
    assert r.approximate_regions and all(g.reason == "unsettled" for g in r.approximate_regions)


def test_parallel_tiles_equal_sequential_sweep(scene, monkeypatch):
    from mattestudio.engines.fastcf import tiling

    real = tiling.solve_tiles
    out = []
    for workers in (1, 2):
        # Same grid (the engine sizes tiles for 2 workers), run one tile at a time or two.
        monkeypatch.setattr(
            tiling, "solve_tiles", lambda *a, w=workers, **k: real(*a, **{**k, "workers": w})
        )
        e = FastClosedFormEngine(incremental=False, tile=48, workers=2)
        e.prepare(scene.image)
        e._budget_entries = lambda: 600_000.0  # force the coarse-to-fine path on a small image
        out.append(e.predict(scene.trimap)[0])
        assert e.last_mode == "coarse-to-fine"
    assert np.array_equal(out[0], out[1])
    full = _full(scene.image, scene.trimap)
    unknown = scene.trimap == 128
    assert np.abs(out[1] - full)[unknown].mean() < 0.02


def test_tiles_respect_memory_budget(scene, sizes):
    e = FastClosedFormEngine(incremental=False, workers=2)
    e.prepare(scene.image)
    budget = 600_000.0
    e._budget_entries = lambda: budget
    e.predict(scene.trimap)
    assert e.last_mode == "coarse-to-fine"
    # The coarse start (alone) within 0.64 of the budget; two tiles at once, together within it.
    assert max(regional.factor_entries(n) for n in sizes) <= 0.64 * budget


def test_incremental_predict_respects_memory_budget(scene, sizes):
    """predict()'s growing box no longer ignores memory_gb: past it, the coarse-to-fine full solve."""
    e = FastClosedFormEngine(tile=48)
    e.prepare(scene.image)
    e.predict(scene.trimap)
    e._budget_entries = lambda: 60_000.0
    sizes.clear()
    tri = _stroke(scene.trimap, 40, 160, 30, 230, 0)
    e.predict(tri)
    assert max(regional.factor_entries(n) for n in sizes) <= 60_000.0


def test_cancelled_refine_keeps_the_queue(scene):
    from mattestudio.errors import Cancelled
    from mattestudio.types import CancelToken

    e = _engine(scene.image)
    e.predict(scene.trimap)
    r = e.predict_live(_stroke(scene.trimap, 40, 160, 30, 230, 0))
    token = CancelToken()
    token.cancel()
    with pytest.raises(Cancelled):
        e.refine(cancel=token)
    assert e.live_pending
    again = e.refine(seconds=0.0)
    assert again is not None and len(again.approximate_regions) <= len(r.approximate_regions) + 8
