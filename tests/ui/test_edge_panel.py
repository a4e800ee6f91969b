"""The Edge panel, the Refine Edge brush and the extra view modes in the editor."""

from __future__ import annotations

import numpy as np
import pytest

from mattestudio.core import edges, io
from mattestudio.core.edges import EdgeAdjustments
from mattestudio.types import UNKNOWN


def _wait_preview(qtbot, canvas):
    qtbot.waitUntil(lambda: not canvas.preview_pending, timeout=10000)


def test_sliders_update_the_preview_live_without_rerunning_the_engine(solved, qtbot, monkeypatch):
    win, doc, c = solved, solved.document, solved.canvas
    submitted = []
    monkeypatch.setattr(win.runner, "submit", lambda *a, **k: submitted.append(a))
    win.view_panel.set_mode("alpha")
    _wait_preview(qtbot, c)
    engine_alpha = doc.alpha().copy()
    panel = win.edge_panel
    panel.rows["shift_edge"].slider.setValue(8)  # 8 steps of 0.25 px = +2 px
    assert doc.edges.shift_edge == 2.0 and panel.rows["shift_edge"].spin.value() == 2.0
    panel.rows["feather"].spin.setValue(1.5)
    assert doc.edges == EdgeAdjustments(feather=1.5, shift_edge=2.0)
    _wait_preview(qtbot, c)
    expected = edges.adjust_alpha(engine_alpha, doc.edges)
    np.testing.assert_array_equal(c.preview_shown, io.to_uint(expected))
    assert c.preview_shown.astype(float).sum() > io.to_uint(engine_alpha).astype(float).sum()
    np.testing.assert_array_equal(doc.alpha(), engine_alpha)  # the engine's alpha is kept
    assert submitted == [] and not win.runner.busy


def test_decontaminate_toggle_and_amount(solved, qtbot, synthetic_matte):
    win, doc, panel = solved, solved.document, solved.edge_panel
    assert panel.decontaminate.isChecked() and doc.edges.decontaminate == 1.0
    panel.amount.setValue(40)
    assert doc.edges.decontaminate == pytest.approx(0.4)
    panel.decontaminate.setChecked(False)
    assert doc.edges.decontaminate == 0.0 and not panel.amount.isEnabled()
    _, fg = doc.output()
    np.testing.assert_array_equal(fg, doc.image)  # the photo's own colours in the cut-out
    panel.decontaminate.setChecked(True)
    assert doc.edges.decontaminate == pytest.approx(0.4)  # the amount was remembered
    doc.set_background("white")
    win.view_panel.set_mode("composite")
    _wait_preview(qtbot, win.canvas)
    np.testing.assert_array_equal(win.canvas.preview_shown, io.to_uint(doc.composite()))


def test_reset_and_tooltips(solved):
    doc, panel = solved.document, solved.edge_panel
    panel.rows["contrast"].spin.setValue(60)
    panel.rows["smooth"].slider.setValue(4)
    panel.decontaminate.setChecked(False)
    assert doc.edges.changes_alpha
    panel.reset_button.click()
    assert doc.edges == EdgeAdjustments()
    assert panel.rows["contrast"].slider.value() == 0 and panel.decontaminate.isChecked()
    assert panel.amount.value() == 100
    for row in panel.rows.values():
        assert "edge" in row.slider.toolTip().lower() or "soft" in row.slider.toolTip().lower()
    assert "colour" in panel.decontaminate.toolTip()


def test_exports_and_project_carry_the_adjustments(solved, tmp_path, make_window):
    panel = solved.edge_panel
    panel.rows["contrast"].spin.setValue(100)
    assert solved.files.export("alpha8", str(tmp_path / "a.png")) and solved.files.wait_writes()
    alpha = io.read_image_array(tmp_path / "a.png")
    assert set(np.unique(alpha)) == {0, 255}
    assert solved.files.export("psd", str(tmp_path / "a.psd")) and solved.files.wait_writes()
    assert solved.files.save_project(str(tmp_path / "p.mattestudio"))
    other = make_window(open_files=False)
    assert other.files.open_project(str(tmp_path / "p.mattestudio"))
    assert other.document.edges == EdgeAdjustments(contrast=100)
    assert other.edge_panel.rows["contrast"].spin.value() == 100
    # The project stored the engine's alpha, not the adjusted one (no double application).
    assert len(np.unique(np.round(other.document.alpha() * 255))) > 2


def test_opening_an_image_starts_from_the_engines_alpha(solved, synthetic_files):
    solved.edge_panel.rows["feather"].spin.setValue(3)
    assert solved.files.open_image(str(synthetic_files["image"]), str(synthetic_files["trimap"]))
    assert solved.document.edges == EdgeAdjustments()
    assert solved.edge_panel.rows["feather"].spin.value() == 0


def test_refine_edge_brush_marks_only_edges_and_undoes(window, send_mouse, qtbot):
    doc, c = window.document, window.canvas
    doc.set_trimap(np.full(doc.shape, 255, np.uint8), "all fg")
    before = doc.trimap.copy()
    window.refine_action.trigger()
    assert window.tools.tool == "refine" and window.tool_panel.tool_buttons["refine"].isChecked()
    window.tools.set_size(9)
    vp = c.viewport()
    pts = [c.image_to_widget(x, 32.5) for x in (2, 20, 40, 60, 78)]
    send_mouse(vp, "press", pts[0])
    for p in pts[1:]:
        qtbot.wait(2)
        send_mouse(vp, "move", p)
    send_mouse(vp, "release", pts[-1])
    changed = doc.trimap != before
    band = doc.refine_band()
    assert changed.any() and np.all(doc.trimap[changed] == UNKNOWN)
    assert not np.any(changed & ~band)  # never outside the image's edges
    assert doc.strokes[-1]["value"] == "refine"
    window.undo_action.trigger()
    np.testing.assert_array_equal(doc.trimap, before)


def test_smart_band_checkbox_reaches_grabcut(window, qtbot):
    """GrabCut runs on the worker (issue 9); the checkbox's smart band reaches its job."""
    window.tool_panel.smart_check.setChecked(True)
    assert window.tools.smart_band
    window.tools.rect = (10, 8, 50, 48)
    doc = window.document
    rev = doc.revision
    window.run_grabcut()
    assert window.control._pending_grabcut.smart
    qtbot.waitUntil(lambda: doc.revision > rev, timeout=60000)
    assert np.any(doc.trimap == UNKNOWN)


def test_on_black_on_white_and_edge_only_views(solved, qtbot):
    win, doc, c = solved, solved.document, solved.canvas
    win.edge_panel.rows["feather"].spin.setValue(1)
    for mode, bg in (("on-black", (0.0, 0.0, 0.0)), ("on-white", (1.0, 1.0, 1.0))):
        win.view_panel.mode_buttons[mode].click()
        assert c.mode == mode
        _wait_preview(qtbot, c)
        np.testing.assert_array_equal(c.preview_shown, io.to_uint(doc.composite(bg)))
    shortcuts = {a.shortcut().toString(): a for a in win.actions()}
    shortcuts["6"].trigger()
    assert c.mode == "edge" and win.view_panel.mode_buttons["edge"].isChecked()
    _wait_preview(qtbot, c)
    band = doc.trimap == UNKNOWN
    shown = c.preview_shown
    np.testing.assert_array_equal(shown[band], io.to_uint(doc.image)[band])
    assert np.all(shown[~band] == io.to_uint(np.float32(0.12)))
    # Painting updates the edge-only view.
    doc.set_trimap(np.where(band, 255, doc.trimap).astype(np.uint8), "no band")
    qtbot.waitUntil(lambda: np.all(c.preview_shown[band] == io.to_uint(np.float32(0.12))))


def test_a_fast_drag_computes_few_previews_and_ends_on_the_last_value(solved, qtbot, monkeypatch):
    win, doc, c = solved, solved.document, solved.canvas
    win.view_panel.set_mode("alpha")
    _wait_preview(qtbot, c)
    from mattestudio.ui import canvas as canvas_module

    calls = []
    real = canvas_module.result_pixels  # every preview of a result goes through it (issue 9)
    monkeypatch.setattr(
        canvas_module, "result_pixels", lambda mode, *a: calls.append(mode) or real(mode, *a)
    )
    slider = win.edge_panel.rows["shift_edge"].slider
    for v in range(1, 41):  # 40 moves without giving the event loop a chance
        slider.setValue(v)
    _wait_preview(qtbot, c)
    qtbot.waitUntil(lambda: not win.edge_throttle.busy, timeout=10000)
    assert doc.edges.shift_edge == 10.0
    assert len(calls) <= 4 * 2  # a few rounds for the two canvases, not 40
    np.testing.assert_array_equal(
        c.preview_shown, io.to_uint(edges.adjust_alpha(doc.alpha(), doc.edges))
    )


def test_a_project_with_bad_edge_values_opens_with_defaults_and_says_so(window, tmp_path):
    from mattestudio.core import project

    doc = window.document
    path = project.save_project(
        tmp_path / "bad.mattestudio",
        project.ProjectState(
            image=doc.image, trimap=doc.trimap, settings={"edges": {"contrast": 300}}
        ),
    )
    assert window.files.open_project(str(path))
    assert doc.edges == EdgeAdjustments()
    assert "contrast must be between 0 and 100" in window.message.text()
