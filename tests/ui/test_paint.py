"""Painting with real (synthetic) Qt mouse events changes exactly the expected trimap pixels."""

import itertools

import numpy as np
from PySide6.QtCore import QPoint, Qt

from mattestudio.core import strokes
from mattestudio.types import BACKGROUND, FOREGROUND, UNKNOWN


def _stroke(win, send_mouse, qtbot, points):
    """Drag through widget points; return the image coordinates the canvas saw."""
    vp = win.canvas.viewport()
    seen = [win.canvas.widget_to_image(p) for p in points]
    send_mouse(vp, "press", points[0])
    for p in points[1:]:
        qtbot.wait(2)
        send_mouse(vp, "move", p)
    send_mouse(vp, "release", points[-1])
    return seen


def _expected(trimap, seen, size, value):
    exp = trimap.copy()
    pts = [seen[0]] + seen
    for a, b in itertools.pairwise(pts):
        strokes.paint_segment(exp, a, b, size, value)
    return exp


def test_brush_stroke_paints_exact_pixels_and_is_one_undo_step(window, send_mouse, qtbot):
    doc, c = window.document, window.canvas
    before = doc.trimap.copy()
    window.tools.set_value("fg")
    window.tools.set_tool("brush")
    window.tools.set_size(5)
    pts = [c.image_to_widget(x, 10.5) for x in (10, 20, 30, 45)]
    seen = _stroke(window, send_mouse, qtbot, pts)
    # the canvas maps widget pixels to the right image pixels (within one image pixel)
    assert abs(seen[0][0] - 10) < 1 and abs(seen[0][1] - 10.5) < 1
    expected = _expected(before, seen, 5, FOREGROUND)
    np.testing.assert_array_equal(doc.trimap, expected)
    assert (doc.trimap != before).any()
    assert len(doc.history) == 1
    window.undo_action.trigger()
    np.testing.assert_array_equal(doc.trimap, before)
    window.redo_action.trigger()
    np.testing.assert_array_equal(doc.trimap, expected)


def test_each_value_and_eraser(window, send_mouse, qtbot):
    doc, c = window.document, window.canvas
    base = doc.trimap.copy()
    window.tools.set_size(7)
    for value, code in (("bg", BACKGROUND), ("unknown", UNKNOWN), ("fg", FOREGROUND)):
        window.tools.set_value(value)
        _stroke(window, send_mouse, qtbot, [c.image_to_widget(40, 32), c.image_to_widget(41, 33)])
        assert doc.trimap[32, 40] == code
    window.tools.set_value("bg")
    _stroke(window, send_mouse, qtbot, [c.image_to_widget(40, 32)])
    window.tools.set_tool("eraser")
    window.tools.set_size(60)
    _stroke(window, send_mouse, qtbot, [c.image_to_widget(40, 32)])
    np.testing.assert_array_equal(doc.trimap, base)  # the eraser restores the loaded trimap
    assert len(doc.history) == 5


def test_fill_bucket_by_click(window, send_mouse, qtbot):
    doc, c = window.document, window.canvas
    window.tools.set_tool("fill")
    window.tools.set_value("fg")
    assert doc.trimap[1, 1] == BACKGROUND
    _stroke(window, send_mouse, qtbot, [c.image_to_widget(1.5, 1.5)])
    assert not (doc.trimap == BACKGROUND).any()  # the background was one connected region
    window.undo_action.trigger()
    assert doc.trimap[1, 1] == BACKGROUND


def test_space_drag_pans_instead_of_painting(window, send_mouse, qtbot):
    doc, c = window.document, window.canvas
    before = doc.trimap.copy()
    window.tools.set_value("fg")
    qtbot.keyPress(c, Qt.Key.Key_Space)
    _stroke(window, send_mouse, qtbot, [c.image_to_widget(5, 5), c.image_to_widget(30, 30)])
    qtbot.keyRelease(c, Qt.Key.Key_Space)
    np.testing.assert_array_equal(doc.trimap, before)
    send_mouse(c.viewport(), "press", c.image_to_widget(5, 5), button=Qt.MouseButton.MiddleButton)
    send_mouse(c.viewport(), "release", c.image_to_widget(6, 6), button=Qt.MouseButton.MiddleButton)
    np.testing.assert_array_equal(doc.trimap, before)


def test_brush_size_keys_and_outline_true_size(window, qtbot):
    t, c = window.tools, window.canvas
    t.set_size(20)
    actions = {a.text(): a for a in window.actions()}
    actions["Larger brush"].trigger()
    assert t.size == 23
    actions["Smaller brush"].trigger()
    assert t.size == 20
    c.actual_size()
    assert abs(c.zoom_factor() - 1.0) < 0.02
    c._place_cursor(30, 30)
    rect = c.cursor_items[0].rect()
    assert rect.width() == 20  # image pixels; on screen it scales with the zoom
    a, b = c.image_to_widget(rect.left(), 30), c.image_to_widget(rect.right(), 30)
    assert abs((b.x() - a.x()) - 20 * c.zoom_factor()) <= 1.5
    c.fit()
    h, w = window.document.shape
    tl, br = c.image_to_widget(0, 0), c.image_to_widget(w, h)
    vp = c.viewport().rect()
    assert vp.contains(tl) and vp.contains(QPoint(br.x() - 1, br.y() - 1))


def test_many_strokes_undo_at_least_100(window):
    doc = window.document
    for k in range(110):
        doc.begin_stroke()
        doc.paint_segment(
            (k % 70 + 0.5, 2.0),
            (k % 70 + 0.5, 60.0),
            1,
            FOREGROUND if (k // 70) % 2 == 0 else BACKGROUND,
        )
        doc.end_stroke()
    n = 0
    while window.document.can_undo:
        window.undo_action.trigger()
        n += 1
    assert n >= 100


def test_painted_strokes_survive_project_save_and_reopen(
    window, make_window, send_mouse, qtbot, tmp_path
):
    doc, c = window.document, window.canvas
    base = doc.trimap.copy()
    window.tools.set_tool("brush")
    window.tools.set_value("fg")
    window.tools.set_size(6)
    _stroke(window, send_mouse, qtbot, [c.image_to_widget(x, 12.5) for x in (8, 25, 50)])
    window.tools.set_value("bg")
    window.tools.set_size(3)
    _stroke(window, send_mouse, qtbot, [c.image_to_widget(30, y) for y in (20, 40, 55)])
    window.tools.set_tool("eraser")
    window.tools.set_size(9)
    _stroke(window, send_mouse, qtbot, [c.image_to_widget(30, 40)])
    window.tools.set_tool("fill")
    window.tools.set_value("unknown")
    _stroke(window, send_mouse, qtbot, [c.image_to_widget(1.5, 1.5)])
    assert [r["tool"] for r in doc.strokes] == ["brush", "brush", "brush", "fill"]
    assert [r["value"] for r in doc.strokes] == [FOREGROUND, BACKGROUND, "erase", UNKNOWN]
    assert len(doc.strokes[0]["points"]) >= 3
    # the log re-renders the painted trimap from the loaded one
    np.testing.assert_array_equal(strokes.replay(doc.strokes, doc.shape, base), doc.trimap)

    path = tmp_path / "painted.mattestudio"
    assert window.files.save_project(str(path))
    other = make_window(open_files=False)
    assert other.files.open_project(str(path))
    d2 = other.document
    np.testing.assert_array_equal(d2.trimap, doc.trimap)
    assert d2.strokes == doc.strokes
    assert not d2.can_undo
    # painting on after reopening keeps logging, and undo returns to the saved state
    other.tools.set_tool("brush")
    other.tools.set_value("fg")
    _stroke(other, send_mouse, qtbot, [other.canvas.image_to_widget(5, 50)])
    assert len(d2.strokes) == 5
    other.undo_action.trigger()
    assert d2.strokes == doc.strokes
    np.testing.assert_array_equal(d2.trimap, doc.trimap)


def _drag_then_escape(win, send_mouse, qtbot, points, escape):
    vp = win.canvas.viewport()
    send_mouse(vp, "press", points[0])
    for p in points[1:]:
        qtbot.wait(2)
        send_mouse(vp, "move", p)
    escape()
    send_mouse(vp, "release", points[-1])  # the button comes up after Esc: nothing more happens


def test_escape_during_a_stroke_drops_it_whole(window, send_mouse, qtbot):
    doc, c = window.document, window.canvas
    before = doc.trimap.copy()
    window.tools.set_value("fg")
    window.tools.set_tool("brush")
    window.tools.set_size(5)
    pts = [c.image_to_widget(x, 10.5) for x in (10, 20, 30, 45)]
    c.setFocus()
    # Esc goes to the canvas when no engine runs (the Cancel action is disabled then) ...
    _drag_then_escape(window, send_mouse, qtbot, pts, lambda: qtbot.keyClick(c, Qt.Key.Key_Escape))
    np.testing.assert_array_equal(doc.trimap, before)
    assert len(doc.history) == 0 and not window.undo_action.isEnabled()
    # ... and to the Cancel action while one runs: the stroke is dropped, not the engine.
    cancels = []
    window.runner.cancel = lambda *a, **k: cancels.append(1)
    _drag_then_escape(window, send_mouse, qtbot, pts, window._escape)
    np.testing.assert_array_equal(doc.trimap, before)
    assert cancels == []
    window._escape()  # no drag: Esc stops the engine as before
    assert cancels == [1]
    # painting still works after a cancelled stroke
    _stroke(window, send_mouse, qtbot, pts)
    assert (doc.trimap != before).any() and len(doc.history) == 1


def test_escape_during_a_grabcut_box_drops_the_box(window, send_mouse, qtbot):
    c = window.canvas
    window.tools.set_tool("rect")
    requested = []
    window.tools.grabcut_requested.connect(lambda: requested.append(1))
    pts = [c.image_to_widget(5, 5), c.image_to_widget(30, 30), c.image_to_widget(40, 40)]
    c.setFocus()
    _drag_then_escape(window, send_mouse, qtbot, pts, lambda: qtbot.keyClick(c, Qt.Key.Key_Escape))
    assert requested == [] and window.tools.rect is None
    assert not c.rubber.isVisible()
