"""The Select subject tool driven with real mouse events: SAM 2 (tiny random model) and the
GrabCut fallback; the mask shows as an outline; Make trimap is one undo step."""

from __future__ import annotations

import numpy as np
import pytest
from PySide6.QtCore import QEvent, QPointF, Qt
from PySide6.QtGui import QMouseEvent
from PySide6.QtWidgets import QApplication

from mattestudio.engines.segment.select import mask_to_trimap


@pytest.fixture
def empty_models(tmp_path, monkeypatch):
    d = tmp_path / "models"
    monkeypatch.setenv("MATTESTUDIO_MODELS", str(d))
    return d


@pytest.fixture
def sam2_model(tmp_path, monkeypatch):
    pytest.importorskip("transformers")
    from mattestudio.engines.segment.random_sam2 import write_folder
    from mattestudio.engines.segment.sam2_store import import_folder

    monkeypatch.setenv("MATTESTUDIO_MODELS", str(tmp_path / "models"))
    return import_folder(write_folder(tmp_path / "sam2-tiny"), name="tiny-random")


def _click(widget, pos, button=Qt.MouseButton.LeftButton, mods=Qt.KeyboardModifier.NoModifier):
    p = QPointF(pos)
    for kind, buttons in (
        (QEvent.Type.MouseButtonPress, button),
        (QEvent.Type.MouseButtonRelease, Qt.MouseButton.NoButton),
    ):
        ev = QMouseEvent(kind, p, widget.mapToGlobal(p), button, buttons, mods)
        QApplication.sendEvent(widget, ev)


def _activate(win):
    tool = win.select_tool
    tool.action.trigger()
    assert win.tools.tool == "select" and tool.panel.activate_button.isChecked()
    return tool


def test_grabcut_fallback_box_then_make_trimap(window, empty_models, send_mouse, qtbot):
    tool = _activate(window)
    c, ctrl, doc = window.canvas, tool.controller, window.document
    assert ctrl.backend == "grabcut"
    assert "Using GrabCut: no SAM 2 model imported" in tool.panel.info.text()
    before = doc.trimap.copy()
    vp = c.viewport()
    send_mouse(vp, "press", c.image_to_widget(12, 8))
    send_mouse(vp, "move", c.image_to_widget(40, 30))
    send_mouse(vp, "release", c.image_to_widget(60, 56))
    box = ctrl.prompts.box
    assert box is not None and abs(box[0] - 12) < 1.5 and abs(box[3] - 56) < 1.5
    np.testing.assert_array_equal(doc.trimap, before)  # the tool never painted
    qtbot.waitUntil(lambda: ctrl.mask is not None and not ctrl.busy, timeout=30000)
    assert not tool.overlay.outline.path().isEmpty()
    tool.panel.band_slider.setValue(6)
    tool.panel.make_button.click()
    expected = mask_to_trimap(ctrl.mask, 6)
    np.testing.assert_array_equal(doc.trimap, expected)
    assert set(np.unique(doc.trimap)) <= {0, 128, 255} and doc.trimap.shape == before.shape
    assert len(doc.history) == 1
    window.undo_action.trigger()
    np.testing.assert_array_equal(doc.trimap, before)
    # with the Tools panel's Smart band on, the band follows the edge as it does for GrabCut
    window.tool_panel.smart_check.setChecked(True)
    tool.panel.make_button.click()
    smart = mask_to_trimap(ctrl.mask, 6, image=doc.image, smart=True)
    np.testing.assert_array_equal(doc.trimap, smart)
    assert not np.array_equal(smart, expected)


def test_sam2_clicks_update_the_mask_with_one_embedding(window, sam2_model, qtbot):
    tool = _activate(window)
    ctrl, c, doc = tool.controller, window.canvas, window.document
    assert ctrl.backend == "sam2"
    # the embedding runs on a worker: the GUI thread is free right after it starts
    assert ctrl.embedding and tool.panel.progress.isVisible()
    qtbot.waitUntil(lambda: ctrl.ready, timeout=30000)
    assert "tiny-random" in tool.panel.info.text()
    vp = c.viewport()
    _click(vp, c.image_to_widget(36, 32))
    qtbot.waitUntil(lambda: ctrl.mask is not None and not ctrl.busy, timeout=30000)
    first = ctrl.mask.copy()
    assert len(ctrl.prompts.positive) == 1 and not tool.overlay.outline.path().isEmpty()
    _click(vp, c.image_to_widget(5, 5), mods=Qt.KeyboardModifier.AltModifier)
    _click(vp, c.image_to_widget(75, 60), button=Qt.MouseButton.RightButton)
    assert len(ctrl.prompts.negative) == 2 and len(ctrl.prompts.positive) == 1
    qtbot.waitUntil(lambda: not ctrl.busy, timeout=30000)
    assert ctrl.predictor.embeddings_computed == 1  # three clicks, one embedding
    np.testing.assert_array_equal(ctrl.mask, ctrl.predictor.predict(ctrl.prompts).mask)
    assert len(tool.overlay.markers) == 3
    assert first.shape == doc.shape
    before = doc.trimap.copy()
    tool.panel.band_slider.setValue(4)
    tool.panel.make_button.click()
    np.testing.assert_array_equal(doc.trimap, mask_to_trimap(ctrl.mask, 4))
    window.undo_action.trigger()
    np.testing.assert_array_equal(doc.trimap, before)
    tool.panel.clear_button.click()
    assert ctrl.prompts.empty and ctrl.mask is None and tool.overlay.outline.path().isEmpty()


def test_other_tools_paint_again_after_select(window, empty_models, send_mouse):
    tool = _activate(window)
    window.tools.set_tool("brush")
    assert not tool.panel.activate_button.isChecked()
    c = window.canvas
    _click(c.viewport(), c.image_to_widget(30, 30))
    assert tool.controller.prompts.empty  # the brush painted; the select tool saw nothing


def test_sam2_embedding_cancel_then_restart_on_click(window, sam2_model, qtbot, monkeypatch):
    import threading

    from mattestudio.engines.segment.predictor import Sam2Predictor

    gate = threading.Event()
    real_load = Sam2Predictor.load.__func__

    def slow_load(cls, *args, **kwargs):
        gate.wait(10)  # hold the worker until the test has pressed Cancel
        return real_load(cls, *args, **kwargs)

    monkeypatch.setattr(Sam2Predictor, "load", classmethod(slow_load))
    tool = _activate(window)
    ctrl, c = tool.controller, window.canvas
    assert ctrl.embedding and tool.panel.cancel_button.isVisible()
    tool.panel.cancel_button.click()
    gate.set()
    qtbot.waitUntil(lambda: not ctrl.embedding, timeout=30000)
    assert "cancelled" in tool.panel.info.text() and not ctrl.ready
    assert not tool.panel.progress.isVisible()
    _click(c.viewport(), c.image_to_widget(36, 32))  # a click starts it again
    qtbot.waitUntil(lambda: ctrl.mask is not None and not ctrl.busy, timeout=30000)
    assert ctrl.predictor.embeddings_computed == 1


def test_choosing_the_tool_prepares_the_selection_in_the_background(window, sam2_model, qtbot):
    """The embedding starts when the tool is chosen (any way: here through the ToolController),
    the status line says "Preparing selection…" with a percentage, and the first click then
    gives its mask without a second embedding."""
    from mattestudio.ui.select_controller import PREPARING

    tool = window.select_tool
    ctrl, c = tool.controller, window.canvas
    statuses: list[str] = []
    ctrl.progress.connect(lambda _f, _m: statuses.append(window.message.text()))
    window.tools.set_tool("select")  # not through the panel's button
    assert tool.panel.activate_button.isChecked()
    assert ctrl.embedding and window.message.text().startswith(PREPARING)
    qtbot.waitUntil(lambda: ctrl.ready, timeout=30000)
    assert any(s.startswith(PREPARING) and s.endswith("%") for s in statuses)
    assert f"{PREPARING} 100 %" in statuses
    assert ctrl.predictor.embeddings_computed == 1 and ctrl.prompts.empty
    _click(c.viewport(), c.image_to_widget(36, 32))
    qtbot.waitUntil(lambda: ctrl.mask is not None and not ctrl.busy, timeout=30000)
    assert ctrl.predictor.embeddings_computed == 1  # the click used the prepared embedding


def test_opening_an_image_while_the_tool_is_active_prepares_that_image(
    window, sam2_model, qtbot, monkeypatch
):
    """An embedding under way for the old image is cancelled; the new image's starts at once,
    before any click."""
    import threading

    from mattestudio.engines.segment.predictor import Sam2Predictor

    gate = threading.Event()
    real_load = Sam2Predictor.load.__func__
    loads: list[int] = []

    def slow_load(cls, *args, **kwargs):
        loads.append(1)
        if len(loads) == 1:
            gate.wait(10)  # the first job is still loading when the image changes
        return real_load(cls, *args, **kwargs)

    monkeypatch.setattr(Sam2Predictor, "load", classmethod(slow_load))
    tool = _activate(window)
    ctrl, doc = tool.controller, window.document
    assert ctrl.embedding
    first_token = ctrl._token
    rng = np.random.default_rng(2)
    doc.set_image(rng.random((50, 70, 3)).astype(np.float32))
    assert first_token.cancelled  # the old image's embedding is stopped
    gate.set()
    qtbot.waitUntil(lambda: ctrl.ready, timeout=30000)
    assert ctrl._embedded_version == doc.image_version and ctrl.prompts.empty
    assert ctrl.predictor.image_shape == (50, 70) and ctrl.predictor.embeddings_computed == 1
    # and again with the model loaded: a new image is embedded without a click
    doc.set_image(rng.random((40, 60, 3)).astype(np.float32))
    assert ctrl.embedding
    qtbot.waitUntil(lambda: ctrl.ready, timeout=30000)
    assert ctrl.predictor.image_shape == (40, 60) and ctrl.predictor.embeddings_computed == 2


def test_leaving_the_tool_does_not_prepare_new_images(window, sam2_model, qtbot):
    tool = _activate(window)
    ctrl = tool.controller
    qtbot.waitUntil(lambda: ctrl.ready, timeout=30000)
    window.tools.set_tool("brush")
    assert not ctrl.active
    window.document.set_image(np.full((30, 40, 3), 0.5, np.float32))
    assert not ctrl.embedding and not ctrl.ready


def test_clicks_on_the_side_by_side_result_pane_select_as_on_the_photo(window, sam2_model, qtbot):
    window.set_side_by_side(True)
    tool = _activate(window)
    ctrl, pane = tool.controller, window.result_view
    qtbot.waitUntil(lambda: ctrl.ready, timeout=30000)
    qtbot.waitUntil(lambda: pane.width() > 50)
    _click(pane.viewport(), pane.image_to_widget(36, 32))
    (point,) = ctrl.prompts.positive
    assert abs(point[0] - 36) < 1.5 and abs(point[1] - 32) < 1.5
    _click(pane.viewport(), pane.image_to_widget(5, 5), button=Qt.MouseButton.RightButton)
    assert len(ctrl.prompts.negative) == 1
    qtbot.waitUntil(lambda: ctrl.mask is not None and not ctrl.busy, timeout=30000)
    assert not tool.result_overlay.outline.path().isEmpty()
    assert not tool.overlay.outline.path().isEmpty()
    np.testing.assert_array_equal(ctrl.mask, ctrl.predictor.predict(ctrl.prompts).mask)
