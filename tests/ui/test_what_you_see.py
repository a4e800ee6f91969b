"""What an artist sees: overlay tints and the plain trimap, a checkerboard of fixed screen size,
alpha and zoom in the status bar, room for the canvas, a reopened project's timing."""

import numpy as np
import pytest
from PySide6.QtCore import Qt

from mattestudio.types import BACKGROUND, FOREGROUND, UNKNOWN, MattingResult


def test_unknown_band_is_tinted_and_colours_are_choosable(window):
    c, vp = window.canvas, window.view_panel
    lut = c.overlay_item.lut
    assert lut[UNKNOWN, 3] > 0 and lut[FOREGROUND, 3] > lut[UNKNOWN, 3]
    vp.set_color(UNKNOWN, (10, 20, 250))
    assert c.overlay_item.lut[UNKNOWN, :3].tolist() == [10, 20, 250]
    vp.opacity.setValue(100)
    assert c.overlay_item.lut[FOREGROUND, 3] == 255
    # the plain view: the trimap itself, opaque, whatever the tint
    vp.set_mode("plain")
    lut = c.overlay_item.lut
    assert c.overlay_item.isVisible() and (lut[:, 3] == 255).all()
    assert [lut[v, 0] for v in (BACKGROUND, UNKNOWN, FOREGROUND)] == [0, 128, 255]
    vp.set_mode("trimap")
    assert c.overlay_item.lut[UNKNOWN, :3].tolist() == [10, 20, 250]


def _period(row: np.ndarray) -> int:
    """Length of the first run of equal pixels after the first change."""
    changes = np.flatnonzero(np.any(row[1:] != row[:-1], axis=1)) + 1
    return int(changes[1] - changes[0])


def _grab(widget) -> np.ndarray:
    img = widget.grab().toImage().convertToFormat(widget.grab().toImage().Format.Format_RGB888)
    w, h, bpl = img.width(), img.height(), img.bytesPerLine()
    return (
        np.frombuffer(img.constBits(), np.uint8, count=h * bpl)
        .reshape(h, bpl)[:, : 3 * w]
        .reshape(h, w, 3)
    )


def test_checkerboard_keeps_its_screen_size_at_any_zoom(window, qtbot):
    from mattestudio.ui.canvas import CHECKER_PX

    doc, c = window.document, window.canvas
    h, w = doc.shape
    doc.set_result(MattingResult(np.zeros((h, w), np.float32), doc.image.copy(), "test"))
    window.choose_background("checker")
    window.view_panel.set_mode("composite")
    qtbot.waitUntil(lambda: not c.preview_pending and c.checker_item.isVisible(), timeout=10000)
    periods = []
    for zoom in (1.0, 3.0):
        c.vb.setRange(xRange=(0, w / zoom), yRange=(0, h / zoom), padding=0)
        qtbot.wait(50)
        px = _grab(c.viewport())
        p = c.image_to_widget(w / zoom / 2, h / zoom / 2)
        periods.append(_period(px[p.y(), :]))
    assert periods == [CHECKER_PX, CHECKER_PX]


def test_status_bar_shows_alpha_under_cursor_and_zoom_on_zoom(solved, qtbot, send_mouse):
    win, c = solved, solved.canvas
    doc = win.document
    y, x = np.argwhere((doc.alpha() > 0.2) & (doc.alpha() < 0.8))[0]
    send_mouse(c.viewport(), "move", c.image_to_widget(x + 0.5, y + 0.5))
    assert f"alpha {doc.alpha()[y, x]:.3f}" in win.info.text()
    assert f"{x}, {y}" in win.info.text()
    before = win.info.text()
    c.vb.scaleBy((0.5, 0.5))  # zoom in, no mouse move
    qtbot.wait(20)
    assert win.info.text() != before
    assert f"zoom {100 * c.zoom_factor():.0f}%" in win.info.text()


def test_canvas_keeps_most_of_a_small_window(make_window, qtbot):
    win = make_window()
    win.resize(1280, 800)
    qtbot.wait(100)
    assert win.canvas.width() >= 0.6 * win.width()
    assert win.canvas.width() * win.canvas.height() >= 0.5 * win.width() * win.height()
    # panels scroll instead of squeezing, and can be closed and brought back from the View menu
    for dock in win.docks:
        assert dock.widget().widgetResizable()
    # the left column (Tools, with Select subject as a tab beside it) closes and comes back
    left = [d for d in win.docks if win.dockWidgetArea(d) == Qt.DockWidgetArea.LeftDockWidgetArea]
    assert win.docks[0] in left
    for dock in left:
        dock.toggleViewAction().trigger()
    qtbot.wait(50)
    assert not any(d.isVisible() for d in left) and win.canvas.width() > 0.75 * win.width()
    for dock in left:
        dock.toggleViewAction().trigger()
    assert all(d.isVisible() for d in left)


def test_reopened_project_keeps_result_time_and_staleness(solved, make_window, tmp_path):
    doc = solved.document
    m = doc.result
    doc.set_result(MattingResult(m.alpha, m.foreground, "closed-form", seconds=0.37), doc.revision)
    path = tmp_path / "p.mattestudio"
    assert solved.files.save_project(str(path))
    other = make_window(open_files=False)
    assert other.files.open_project(str(path))
    assert other.document.result.seconds == pytest.approx(0.37)
    assert not other.document.result_is_stale
    # a result saved while stale comes back marked stale
    doc.begin_stroke()
    doc.paint_segment((5, 5), (20, 5), 3, UNKNOWN)
    doc.end_stroke()
    assert solved.files.save_project(str(path))
    third = make_window(open_files=False)
    assert third.files.open_project(str(path))
    assert third.document.result_is_stale


def test_file_ops_need_only_a_document(synthetic_files, qtbot, tmp_path):
    from mattestudio.core.document import Document
    from mattestudio.core.project import ProjectSettings
    from mattestudio.ui.file_ops import FileOps

    doc = Document()
    files = FileOps(doc)
    messages, loaded = [], []
    files.message.connect(messages.append)
    files.settings_loaded.connect(loaded.append)
    files.settings_source = lambda: ProjectSettings(engine="knn", brush_size=12.0)
    assert files.open_image(str(synthetic_files["image"]), str(synthetic_files["trimap"]))
    path = tmp_path / "x.mattestudio"
    assert files.save_project(str(path)) and "Saved" in messages[-1]
    assert files.open_project(str(path))
    assert loaded[-1].engine == "knn" and loaded[-1].brush_size == 12.0
