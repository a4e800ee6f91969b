"""Live mode re-runs on every kind of trimap edit, and what it shows equals a fresh solve."""

import dataclasses
import subprocess
import sys

import numpy as np
import pytest

from mattestudio.types import BACKGROUND, FOREGROUND, UNKNOWN


def _fresh_alpha(doc) -> np.ndarray:
    """A solve from scratch of the document's current trimap (a new engine, no history)."""
    from mattestudio.engines import registry
    from mattestudio.pipeline import run_matting

    return run_matting(registry.create("closed-form"), doc.image, doc.trimap.copy()).alpha


def _settled(win) -> bool:
    doc = win.document
    return (
        not win.runner.busy
        and not win.canvas.preview_pending
        and (doc.result is None or not doc.result_is_stale)
    )


def _check_shown_is_fresh(win) -> None:
    from mattestudio.ui.display import to_u8

    doc, c = win.document, win.canvas
    assert doc.result is not None and not doc.result_is_stale
    assert doc.result_revision == doc.revision
    fresh = _fresh_alpha(doc)
    # Incremental re-solves match a full solve to the engine's tolerance (2e-3).
    np.testing.assert_allclose(doc.alpha(), fresh, atol=5e-3)
    # The pixels on the canvas are exactly the current result's alpha ...
    np.testing.assert_array_equal(c.preview_shown, to_u8(doc.alpha()))
    # ... within one grey level of the fresh solve,
    assert np.abs(c.preview_shown.astype(int) - to_u8(fresh).astype(int)).max() <= 2
    # and the QImage pyqtgraph paints shares them (a patched box is really on screen).
    assert np.shares_memory(c.preview_item.image, c.preview_shown)
    if c.preview_item.qimage is None:  # not painted yet (a hidden or busy window): render now
        c.preview_item.render()
    qimg = c.preview_item.qimage
    h, w = doc.shape
    for y, x in ((0, 0), (h // 2, w // 2), (h - 1, w - 1), (h // 3, w // 4)):
        assert qimg.pixelColor(x, y).red() == c.preview_shown[y, x]
    assert not c.badge.isVisible()


@pytest.fixture
def live(window, qtbot, idle):
    win = window
    win.engine_panel.set_engine("closed-form")
    win.view_panel.set_mode("alpha")
    win.set_live(True)
    qtbot.waitUntil(lambda: _settled(win) and win.document.result is not None, timeout=60000)
    _check_shown_is_fresh(win)
    return win


def _wait_rerun(win, qtbot, before_revision: int) -> None:
    doc = win.document
    assert doc.revision > before_revision, "the action did not change the trimap"
    qtbot.waitUntil(
        lambda: _settled(win) and (doc.result is None or doc.result_revision == doc.revision),
        timeout=60000,
    )


def test_live_reruns_after_stroke_fill_undo_redo_grabcut_and_clear(live, qtbot, send_mouse):
    win, doc, c = live, live.document, live.canvas
    ran = []
    win.runner.started.connect(ran.append)

    # a brush stroke with real mouse events
    win.tools.set_value("fg")
    win.tools.set_tool("brush")
    win.tools.set_size(5)
    rev = doc.revision
    vp = c.viewport()
    pts = [c.image_to_widget(x, 16.5) for x in (20, 28, 36)]  # across the edge band
    send_mouse(vp, "press", pts[0])
    for p in pts[1:]:
        send_mouse(vp, "move", p)
    send_mouse(vp, "release", pts[-1])
    _wait_rerun(win, qtbot, rev)
    _check_shown_is_fresh(win)
    assert c.patches >= 1  # the re-run redrew only its changed box

    steps = [
        ("fill", lambda: doc.fill(2, 2, UNKNOWN)),
        ("undo", win.undo_action.trigger),
        ("undo", win.undo_action.trigger),
        ("redo", win.redo_action.trigger),
        ("from alpha", win.trimap_from_alpha),
    ]
    for name, action in steps:
        rev, n = doc.revision, len(ran)
        action()
        _wait_rerun(win, qtbot, rev)
        assert len(ran) > n, f"{name} did not re-run"
        _check_shown_is_fresh(win)

    # GrabCut runs on the worker; its trimap is an edit like any other
    win.tools.rect = (12, 6, 50, 52)
    rev = doc.revision
    win.run_grabcut()
    qtbot.waitUntil(lambda: doc.revision > rev, timeout=60000)
    _wait_rerun(win, qtbot, rev)
    _check_shown_is_fresh(win)
    assert doc.history._undo[-1].label == "GrabCut"

    # Clear leaves nothing known: no matte can be solved, and the old one must not stay
    rev = doc.revision
    win.clear_trimap()
    _wait_rerun(win, qtbot, rev)
    assert doc.result is None and c.preview_shown is None
    assert "foreground" in win.message.text().lower()
    # ... and undoing the clear brings a fresh matte back
    rev = doc.revision
    win.undo_action.trigger()
    _wait_rerun(win, qtbot, rev)
    _check_shown_is_fresh(win)


def test_grabcut_again_with_another_band_rederives_without_segmenting(live, qtbot):
    win, doc = live, live.document
    win.tools.rect = (12, 6, 50, 52)
    jobs = []
    win.runner.started.connect(jobs.append)
    win.tools.set_band(4)
    win.run_grabcut()
    qtbot.waitUntil(lambda: win.tool_panel.grabcut_button.isEnabled(), timeout=60000)
    qtbot.waitUntil(lambda: _settled(win), timeout=60000)
    narrow = int((doc.trimap == UNKNOWN).sum())
    n = len(jobs)
    win.tools.set_band(16)
    rev = doc.revision
    win.run_grabcut()
    # re-derived at once on the GUI thread: the next job is the Live re-run, not a GrabCut
    assert doc.revision > rev and int((doc.trimap == UNKNOWN).sum()) > narrow
    _wait_rerun(win, qtbot, rev)
    assert len(jobs) == n + 1
    _check_shown_is_fresh(win)
    assert "GrabCut trimap ready" in win.message.text() or doc.result is not None


def test_grabcut_shows_progress_and_can_be_cancelled(make_window, qtbot, idle):
    win = make_window(trimap=False)  # all unknown: GrabCut from the rectangle alone
    progress = []
    win.runner.progress.connect(lambda f, m: progress.append(m))
    win.tools.rect = (12, 6, 50, 52)
    rev = win.document.revision
    win.run_grabcut()
    assert not win.tool_panel.grabcut_button.isEnabled() and win.cancel_action.isEnabled()
    idle(win)
    assert any("GrabCut" in m for m in progress)
    assert win.last_error is None, win.last_error
    assert win.tool_panel.grabcut_button.isEnabled() and win.document.revision > rev, (
        win.message.text()
    )
    # cancelled right away: the trimap stays as it is and the button comes back
    win.tools.rect = (10, 4, 40, 40)
    win.document.begin_stroke()
    win.document.paint_segment((40, 30), (44, 30), 3, FOREGROUND)  # new marks: a real GrabCut
    win.document.end_stroke()
    before = win.document.trimap.copy()
    win.run_grabcut()
    win.cancel_action.trigger()
    idle(win)
    assert win.tool_panel.grabcut_button.isEnabled()
    np.testing.assert_array_equal(win.document.trimap, before)
    assert win.message.text() == "Cancelled"
    # superseded by a Run: the GrabCut result is dropped and its button comes back too
    win.engine_panel.set_engine("closed-form")
    win.run_grabcut()
    win.run()
    idle(win)
    assert win.tool_panel.grabcut_button.isEnabled()
    np.testing.assert_array_equal(win.document.trimap, before)


def test_stale_result_is_marked_and_export_reruns_first(window, qtbot, idle, tmp_path):
    from mattestudio.core import io

    win, doc, c = window, window.document, window.canvas
    win.engine_panel.set_engine("closed-form")
    win.view_panel.set_mode("alpha")
    win.run()
    qtbot.waitUntil(lambda: _settled(win) and doc.result is not None, timeout=60000)
    assert not c.badge.isVisible()
    doc.begin_stroke()
    doc.paint_segment((20, 20), (30, 24), 6, BACKGROUND)
    doc.end_stroke()
    assert doc.result_is_stale and c.badge.isVisible()  # Live is off: nothing re-runs
    qtbot.wait(300)
    assert doc.result_is_stale and not win.runner.busy
    # exporting the stale matte runs the engine first and writes the fresh one
    out = tmp_path / "a.png"
    win.files.export("alpha8", str(out))
    assert not out.exists()
    qtbot.waitUntil(out.exists, timeout=60000)
    idle(win)
    assert not doc.result_is_stale and not c.badge.isVisible()
    saved = io.load_image(out)[..., 0] if io.load_image(out).ndim == 3 else io.load_image(out)
    fresh = _fresh_alpha(doc)
    assert np.abs(saved - fresh).max() <= 1.5 / 255


def test_live_reruns_on_open_engine_and_parameter_change(make_window, synthetic_files, qtbot):
    win = make_window(open_files=False)
    win.engine_panel.set_engine("closed-form")
    win.set_live(True)
    ran = []
    win.runner.started.connect(ran.append)
    assert win.files.open_image(str(synthetic_files["image"]), str(synthetic_files["trimap"]))
    assert len(ran) == 1
    qtbot.waitUntil(lambda: _settled(win) and win.document.result is not None, timeout=60000)
    assert "Cancelled" not in win.message.text()
    win.engine_panel.set_engine("knn")
    assert len(ran) == 2
    qtbot.waitUntil(lambda: _settled(win) and win.document.result.engine == "knn", timeout=60000)
    field = next(f for f in win.engine_panel.fields if f.param.name == "maxiter")
    field.set(field.param.default + 7)
    assert len(ran) == 3
    qtbot.waitUntil(
        lambda: _settled(win) and win.document.result.params["maxiter"] == field.param.default + 7,
        timeout=60000,
    )


def test_no_event_loop_gap_during_live_strokes(window, qtbot, synthetic_matte, no_stall):
    """The event loop keeps ticking every 5 ms while Live re-runs after strokes
    (conftest.check_no_stall: time spent waiting for a CPU on a loaded machine is not a stall)."""
    import cv2

    win, doc = window, window.document
    big = cv2.resize(synthetic_matte.image, (400, 320))
    tri = cv2.resize(synthetic_matte.trimap, (400, 320), interpolation=cv2.INTER_NEAREST)
    doc.set_image(big, tri)
    win.engine_panel.set_engine("closed-form")
    win.view_panel.set_mode("composite")
    win.set_live(True)
    qtbot.waitUntil(lambda: _settled(win) and doc.result is not None, timeout=60000)

    def strokes(round_: int) -> None:
        for k in range(4):
            doc.begin_stroke()
            y = 78 + 30 * round_
            doc.paint_segment((100 + 25 * k, y), (150 + 25 * k, y + 6), 8, FOREGROUND)
            doc.end_stroke()
            qtbot.wait(30)
        qtbot.waitUntil(lambda: _settled(win), timeout=60000)
        qtbot.wait(100)

    no_stall(strokes)
    assert doc.result_revision == doc.revision


def test_engine_process_does_not_import_the_document():
    """The child side of the worker needs the engines and the pipeline, not the editor's model."""
    code = (
        "import sys, numpy as np\n"
        "from mattestudio.ui.engine_process import _Server\n"
        "from mattestudio.ui.protocol import MattingJob, Result\n"
        "from mattestudio.types import CancelToken\n"
        "class Conn:\n"
        "    sent = []\n"
        "    def send(self, m): self.sent.append(m)\n"
        "s = _Server(Conn(), CancelToken())\n"
        "rng = np.random.default_rng(0)\n"
        "s.image, s.image_key = rng.random((60, 60, 3), dtype=np.float32), 1\n"
        "t = np.full((60, 60), 128, np.uint8); t[:10] = 0; t[-10:] = 255\n"
        "s.matte(MattingJob('closed-form', {}, None, 1, t, 1, coarse_scale=0.5, job_id=1))\n"
        "assert any(isinstance(m, Result) for m in Conn.sent)\n"
        "bad = [m for m in sys.modules if m.startswith(('mattestudio.core.document', 'PySide6'))]\n"
        "assert not bad, bad\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True, timeout=300)


def test_another_engine_marks_the_result_stale_and_export_reruns_with_it(
    window, qtbot, idle, tmp_path
):
    """Found in QA: after switching engine (Live off, or Live's re-run cancelled with Esc) the
    old engine's matte stayed on screen unmarked, and an export wrote it."""
    win, doc, c = window, window.document, window.canvas
    win.engine_panel.set_engine("closed-form")
    win.view_panel.set_mode("alpha")
    win.run()
    qtbot.waitUntil(lambda: _settled(win) and doc.result is not None, timeout=60000)
    assert not doc.result_is_stale and not c.badge.isVisible()
    win.engine_panel.set_engine("knn")
    assert doc.result_is_stale and c.badge.isVisible()
    assert doc.result.engine == "closed-form"  # still shown, but marked
    out = tmp_path / "a.png"
    win.files.export("alpha8", str(out))
    qtbot.waitUntil(out.exists, timeout=60000)
    idle(win)
    assert doc.result.engine == "knn" and not doc.result_is_stale and not c.badge.isVisible()


def test_coarse_preview_arrives_at_full_size_sharper_than_bilinear(synthetic_matte):
    """A slow engine's first Live answer is a small solve; the engine process brings it to the
    photo's size with a guided upsampling and the trimap's known pixels exact, which lands closer
    to the true matte than the bilinear resize it replaced."""
    import cv2

    import mattestudio
    from mattestudio.core.trimap import downscaled
    from mattestudio.ui.engine_process import full_size_preview

    m = synthetic_matte
    h, w = m.trimap.shape
    small_image, small_trimap = downscaled(m.image, m.trimap, 0.4)
    small = mattestudio.matte(small_image, small_trimap, engine="closed-form")
    small = dataclasses.replace(small, scale=0.4)
    shown = full_size_preview(small, small_image, m.image, m.trimap)
    assert shown.alpha.shape == (h, w) and shown.scale == 0.4  # still marked as a preview
    assert (shown.alpha[m.trimap == FOREGROUND] == 1).all()
    assert (shown.alpha[m.trimap == BACKGROUND] == 0).all()
    bilinear = cv2.resize(small.alpha, (w, h), interpolation=cv2.INTER_LINEAR)
    unknown = m.trimap == UNKNOWN

    def sad(alpha):
        return float(np.abs(alpha - m.alpha)[unknown].sum())

    assert sad(shown.alpha) < 0.5 * sad(bilinear), (sad(shown.alpha), sad(bilinear))
