"""Previews, settings persistence and start-up."""

import numpy as np
from PySide6.QtGui import QColor

from mattestudio.core import io


def _wait_preview(qtbot, canvas):
    qtbot.waitUntil(lambda: not canvas.preview_pending, timeout=10000)


def test_view_modes_and_backgrounds_never_rerun(solved, qtbot, monkeypatch):
    c, doc, vp = solved.canvas, solved.document, solved.view_panel
    submitted = []
    monkeypatch.setattr(solved.runner, "submit", lambda *a, **k: submitted.append(a))
    vp.set_mode("alpha")
    _wait_preview(qtbot, c)
    np.testing.assert_array_equal(c.preview_shown, io.to_uint(doc.alpha()))
    assert not c.overlay_item.isVisible() and c.clip_item.isVisible()
    vp.set_mode("composite")
    for key in ("black", "white", "blur"):
        solved.choose_background(key)
        _wait_preview(qtbot, c)
        np.testing.assert_array_equal(c.preview_shown, io.to_uint(doc.composite()))
        assert not c.checker_item.isVisible()
    # over the checkerboard: the straight cut-out, drawn over a checker item of fixed screen size
    solved.choose_background("checker")
    _wait_preview(qtbot, c)
    np.testing.assert_array_equal(c.preview_shown[..., 3], io.to_uint(doc.alpha()))
    np.testing.assert_array_equal(c.preview_shown[..., :3], io.to_uint(doc.foreground()))
    assert c.checker_item.isVisible()
    monkeypatch.setattr(
        "PySide6.QtWidgets.QColorDialog.getColor", lambda *a, **k: QColor(0, 255, 0)
    )
    solved.choose_background("color")
    _wait_preview(qtbot, c)
    assert c.preview_shown[0, 0].tolist() == [0, 255, 0]  # alpha is 0 in the corner
    vp.set_mode("trimap")
    assert c.overlay_item.isVisible() and not c.clip_item.isVisible()
    assert submitted == []


def test_user_background_image_and_split(solved, qtbot, tmp_path):
    c, doc = solved.canvas, solved.document
    bg = np.zeros((30, 30, 3), np.float32)
    bg[..., 0] = 1.0
    path = tmp_path / "red.png"
    io.save_rgb(path, bg)
    assert solved.set_background_image(str(path))
    solved.view_panel.set_mode("composite")
    _wait_preview(qtbot, c)
    assert c.preview_shown[0, 0].tolist() == [255, 0, 0]
    solved.view_panel.split.setValue(40)
    w = doc.shape[1]
    assert abs(c.clip_item.rect().left() - 0.4 * w) < 1e-6 and c.split_line.isVisible()


def test_overlay_opacity_changes_lut_only(window):
    c = window.canvas
    window.view_panel.opacity.setValue(100)
    lut = c.overlay_item.lut
    assert lut[255, 3] == 255 and lut[0, 3] == 255
    window.view_panel.opacity.setValue(0)
    assert c.overlay_item.lut[255, 3] == 0


def test_histogram_updates(solved, qtbot):
    vp = solved.view_panel
    qtbot.waitUntil(lambda: "partly transparent" in vp.stats.text(), timeout=5000)
    _x, y = vp.curve.getData()
    assert y.sum() > 0


def test_trimap_from_alpha_and_grabcut(solved, qtbot):
    doc = solved.document
    solved.tools.set_band(6)
    solved.trimap_from_alpha()
    assert doc.can_undo and (doc.trimap == 128).any()
    solved.tools.rect = (10, 5, 50, 54)
    solved.run_grabcut()
    qtbot.waitUntil(lambda: solved.tool_panel.grabcut_button.isEnabled(), timeout=20000)
    assert solved.last_error is None and len(doc.history) == 2
    solved.undo_action.trigger()
    assert len(doc.history) == 1


def test_settings_are_remembered(make_window):
    first = make_window()
    first.tools.set_size(42)
    first.engine_panel.set_engine("knn")
    first.live_action.trigger()
    first.choose_background("white")
    first.document.modified = False
    first.close()
    second = make_window(open_files=False)
    assert second.tools.size == 42
    assert second.engine_panel.engine == "knn"
    assert second.live_action.isChecked()
    assert second.document.background == "white"
    assert second.view_panel.background.currentData() == "white"


def test_engine_panel_describes_engines():
    from mattestudio.ui.engine_panel import EnginePanel

    panel = EnginePanel()
    assert panel.available() and panel.device_label.text() == "Device: CPU"
    labels = [
        panel.form.itemAt(i, panel.form.ItemRole.LabelRole).widget().text()
        for i in range(panel.form.rowCount())
    ]
    assert "Smoothness (epsilon)" in labels
    assert all(f.widget.toolTip() for f in panel.fields)
    for name, reason in panel.reasons.items():
        idx = panel.combo.findData(name)
        enabled = bool(
            panel.combo.model().item(idx).flags()
            & panel.combo.model().item(idx).flags().ItemIsEnabled
        )
        assert enabled == (reason is None)


def test_open_window_with_argv(qtbot, synthetic_files):
    from mattestudio.ui.app import open_window

    win = open_window([str(synthetic_files["image"]), "--trimap", str(synthetic_files["trimap"])])
    qtbot.addWidget(win)
    assert win.document.image_path == synthetic_files["image"]
    np.testing.assert_array_equal(
        win.document.trimap, io.read_image_array(synthetic_files["trimap"])
    )
    win.close()


def test_main_without_display_explains(monkeypatch, capsys):
    from mattestudio.ui import app

    for var in ("DISPLAY", "WAYLAND_DISPLAY", "QT_QPA_PLATFORM"):
        monkeypatch.delenv(var, raising=False)
    assert app.main(["x.png"]) == 1
    err = capsys.readouterr().err
    assert "no display" in err and "mattestudio matte" in err


def test_side_by_side_result_pane_paints_and_follows(solved, qtbot, send_mouse):
    from mattestudio.types import FOREGROUND

    win = solved
    win.side_action.trigger()
    assert win.result_view.isVisible() and win.result_view.mode == "composite"
    qtbot.waitUntil(lambda: not win.result_view.preview_pending, timeout=10000)
    np.testing.assert_array_equal(
        win.result_view.preview_shown[..., 3], io.to_uint(win.document.alpha())
    )
    win.view_panel.set_mode("composite")
    assert win.result_view.mode == "alpha"
    # the panes are linked: same visible range
    win.canvas.actual_size()
    qtbot.wait(20)
    # the same range, to within a pixel (the two panes may differ in width by one pixel)
    np.testing.assert_allclose(win.result_view.vb.viewRange(), win.canvas.vb.viewRange(), atol=1.0)
    # painting on the result pane edits the same trimap
    win.tools.set_value("fg")
    win.tools.set_tool("brush")
    win.tools.set_size(3)
    vp = win.result_view.viewport()
    p = win.result_view.image_to_widget(5.5, 5.5)
    x, y = win.result_view.widget_to_image(p)
    send_mouse(vp, "press", p)
    send_mouse(vp, "release", p)
    assert win.document.trimap[int(y), int(x)] == FOREGROUND
    win.side_action.trigger()
    assert not win.result_view.isVisible()


def test_layers_cover_exactly_the_image(solved, qtbot, make_window):
    from PySide6.QtCore import QRectF

    win = solved
    h, w = win.document.shape
    win.view_panel.set_mode("alpha")
    qtbot.waitUntil(lambda: not win.canvas.preview_pending, timeout=10000)
    for item in (win.canvas.image_item, win.canvas.overlay_item, win.canvas.preview_item):
        assert win.canvas.vb.childGroup.mapRectFromItem(item, item.boundingRect()) == QRectF(
            0, 0, w, h
        )
    # and again after a second image of another size replaced the first
    win.document.set_image(np.zeros((30, 50, 3), np.float32))
    for item in (win.canvas.image_item, win.canvas.overlay_item):
        assert win.canvas.vb.childGroup.mapRectFromItem(item, item.boundingRect()) == QRectF(
            0, 0, 50, 30
        )
