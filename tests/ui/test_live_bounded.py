"""Live on an engine with bounded per-stroke updates (the fast closed-form engine's predict_live
and refine): a stroke never costs a whole-image solve, the approximate regions travel with the
result and are outlined on the canvas until refined, and what is finally shown equals the
engine's settled matte. Budgets are forced small so a small image exercises every path."""

from __future__ import annotations

import numpy as np
import pytest

from mattestudio.types import BACKGROUND, UNKNOWN
from tests.conftest import make_synthetic_matte

PARAMS = {"tile": 40, "memory_gb": 0.05}


@pytest.fixture(scope="module")
def scene():
    return make_synthetic_matte(h=160, w=200, seed=5, band=16)


class _Conn:
    def __init__(self) -> None:
        self.sent: list = []

    def send(self, msg) -> None:
        self.sent.append(msg)


def _stroke(trimap, y0, y1, x0, x1, value):
    out = trimap.copy()
    part = out[y0:y1, x0:x1]
    part[part == UNKNOWN] = value
    return out


def _replay(image, trimaps, **params):
    """A fresh engine given the same Live trimaps and refined to the end: the settled matte."""
    from mattestudio.engines.fastcf.engine import FastClosedFormEngine

    e = FastClosedFormEngine(**params)
    e.prepare(image)
    for t in trimaps:
        e.predict_live(t)
        while e.live_pending:
            e.refine(seconds=0.0)
    return e


@pytest.fixture
def small_budgets(monkeypatch):
    """First change and start solved at a reduced resolution above a few hundred unknowns;
    records the size of every factorization and every whole-image solve."""
    from mattestudio.engines.fastcf import direct
    from mattestudio.engines.fastcf.engine import FastClosedFormEngine

    monkeypatch.setattr(FastClosedFormEngine, "live_first_unknowns", 600)
    monkeypatch.setattr(FastClosedFormEngine, "live_start_unknowns", 2000)
    seen: dict = {"sizes": [], "whole": []}
    factorize, full = direct.factorize, FastClosedFormEngine._full

    def spy_factorize(matrix, coords, **kw):
        seen["sizes"].append(matrix.shape[0])
        return factorize(matrix, coords, **kw)

    def spy_full(self, trimap, progress, cancel):
        seen["whole"].append(trimap.shape)
        return full(self, trimap, progress, cancel)

    monkeypatch.setattr(direct, "factorize", spy_factorize)
    monkeypatch.setattr(FastClosedFormEngine, "_full", spy_full)
    return seen


def test_server_live_is_bounded_and_refines_progressively(scene, small_budgets, monkeypatch):
    from mattestudio.types import CancelToken, MattingResult
    from mattestudio.ui import engine_process
    from mattestudio.ui.engine_process import EngineProcess, _Server
    from mattestudio.ui.protocol import MattingJob, Result

    monkeypatch.setattr(engine_process, "REFINE_SECONDS", 0.0)  # one batch of tiles per result

    h, w = scene.trimap.shape
    conn = _Conn()
    server = _Server(conn, CancelToken())
    server.image, server.image_key = scene.image, 1
    parent = EngineProcess()  # only its patch-pasting side is used
    shown: list[MattingResult] = []

    def run(trimap, job_id):
        conn.sent.clear()
        server.matte(MattingJob("closed-form", PARAMS, None, 1, trimap, job_id, job_id=job_id))
        results = [parent._full_result(m) for m in conn.sent if isinstance(m, Result)]
        shown.extend(r.value for r in results)
        return results

    # Start without any result: a reduced-resolution whole matte first, then tiles refined.
    first = run(scene.trimap, 1)
    assert first[0].value.approximate and first[0].value.refining
    assert len(first) > 2  # delivered progressively
    assert all(r.box is not None for r in first[1:])  # refinements: changed boxes only
    assert not first[-1].value.refining
    assert max(small_budgets["sizes"]) <= 2000  # no solve above the start budget
    small_budgets["sizes"].clear()

    # A wide stroke: the first change is a bounded (proxy) solve, then refinement in tiles.
    tri2 = _stroke(scene.trimap, 30, 130, 20, 180, BACKGROUND)
    second = run(tri2, 2)
    assert second[0].patch is False and second[0].box is not None
    assert second[0].box != (0, h, 0, w) and second[0].value.approximate
    assert conn.sent and all(m.patch for m in conn.sent if isinstance(m, Result))
    assert len(second) > 1 and not second[-1].value.refining
    assert (h, w) not in small_budgets["whole"], "a Live stroke ran a whole-image solve"
    assert max(small_budgets["sizes"]) <= 40 * 40  # the first change and the tiles, no more

    # What the parent ends with is exactly the engine's settled matte ...
    replay = _replay(scene.image, [scene.trimap, tri2], **PARAMS)
    final = second[-1].value
    np.testing.assert_allclose(final.alpha, np.clip(replay._live.alpha, 0, 1), atol=1e-6)
    # ... and the foreground colors were re-estimated wherever the alpha changed.
    from mattestudio.engines.foreground import estimate_foreground

    fg = estimate_foreground(scene.image, final.alpha)
    band = tri2 == UNKNOWN
    assert np.abs(final.foreground[band] - fg[band]).mean() < 0.02


def test_a_newer_job_stops_the_refinement(scene, small_budgets):
    from mattestudio.types import CancelToken
    from mattestudio.ui.engine_process import _Server
    from mattestudio.ui.protocol import MattingJob, Result

    class Newer:
        def is_set(self) -> bool:
            return True

    conn = _Conn()
    server = _Server(conn, CancelToken(), Newer())
    server.image, server.image_key = scene.image, 1
    server.matte(MattingJob("closed-form", PARAMS, None, 1, scene.trimap, 1, job_id=1))
    results = [m for m in conn.sent if isinstance(m, Result)]
    assert len(results) == 1 and results[0].value.refining  # the first change only
    engine = next(iter(server.sessions.values())).engine
    assert engine.live_pending  # the next job continues the refinement


def _settled(win) -> bool:
    doc = win.document
    return (
        not win.runner.busy
        and not win.canvas.preview_pending
        and doc.result is not None
        and doc.result_revision == doc.revision
    )


def test_canvas_outlines_approximate_regions_until_refined(window, qtbot):
    from mattestudio.ui.display import to_u8

    win, doc, c = window, window.document, window.canvas
    m = make_synthetic_matte(h=240, w=300, seed=5, band=40)  # more unknowns than the start budget
    doc.set_image(m.image, m.trimap)
    win.engine_panel.set_engine("closed-form")
    for f in win.engine_panel.fields:
        if f.param.name in PARAMS:
            f.set(PARAMS[f.param.name])
    win.view_panel.set_mode("alpha")
    seen: list[tuple] = []
    doc.result_changed.connect(
        lambda *_: seen.append(
            (c.approximate_shown, c.approx_item.isVisible(), c.refining_badge.isVisible())
        )
    )
    trimaps = [doc.trimap.copy()]
    win.set_live(True)
    qtbot.waitUntil(lambda: _settled(win), timeout=120000)
    # The reduced-resolution start was outlined and badged "refining…", then refined away.
    assert any(boxes and visible and badge for boxes, visible, badge in seen), seen[:3]
    assert doc.result.approximate == () and not doc.result.refining
    assert c.approximate_shown == () and not c.approx_item.isVisible()
    assert not c.refining_badge.isVisible()

    # A wide stroke: outlined again while it refines, and the final matte on screen is the
    # engine's settled one.
    seen.clear()
    patches = c.patches
    doc.begin_stroke()
    doc.paint_segment((60, 60), (240, 180), 30, BACKGROUND)
    doc.end_stroke()
    trimaps.append(doc.trimap.copy())
    qtbot.waitUntil(lambda: _settled(win), timeout=120000)
    assert any(boxes and visible for boxes, visible, _ in seen), seen[:3]
    assert not c.approx_item.isVisible() and not doc.result.approximate
    assert c.patches > patches  # the refinements were drawn box by box
    replay = _replay(m.image, trimaps, **PARAMS)
    settled = np.clip(replay._live.alpha, 0, 1).astype(np.float32)
    np.testing.assert_allclose(doc.alpha(), settled, atol=1e-5)
    np.testing.assert_array_equal(c.preview_shown, to_u8(doc.alpha()))
