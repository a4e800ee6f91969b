"""Where the merged features meet: docks, shortcuts, view fit, project reopen (found by using
the editor as an artist would)."""

from PySide6.QtCore import Qt
from PySide6.QtGui import QAction
from PySide6.QtTest import QTest


def test_every_shortcut_belongs_to_one_action(window, qtbot):
    seen: dict[str, list[str]] = {}
    for act in window.findChildren(QAction):
        for seq in act.shortcuts():
            seen.setdefault(seq.toString(), []).append(act.text())
    assert {k: v for k, v in seen.items() if len(v) > 1} == {}
    # and the keys reach their view: an ambiguous key would do nothing at all
    window.activateWindow()
    window.canvas.setFocus()
    for key, mode in ((Qt.Key.Key_4, "on-black"), (Qt.Key.Key_7, "plain"), (Qt.Key.Key_2, "alpha")):
        QTest.keyClick(window.canvas, key)
        assert window.canvas.mode == mode


def test_edge_dock_is_a_tab_on_the_right_and_tools_show_first(window):
    area = window.dockWidgetArea
    assert area(window.edge_dock) == Qt.DockWidgetArea.RightDockWidgetArea
    tools = window.docks[0]
    assert area(tools) == Qt.DockWidgetArea.LeftDockWidgetArea
    assert not tools.visibleRegion().isEmpty(), "the Tools panel is hidden behind another tab"


def test_opening_fits_the_whole_image_in_the_view(window, qtbot, synthetic_files):
    c = window.canvas
    for _ in range(2):  # the second open starts from a fitted view of the same image
        assert window.files.open_image(str(synthetic_files["image"]))
        qtbot.wait(50)
        (x0, x1), (y0, y1) = c.vb.viewRange()
        h, w = window.document.shape
        assert x0 <= 0 and y0 <= 0 and x1 >= w and y1 >= h, c.vb.viewRange()


def test_selection_outline_shows_only_with_the_select_tool(window, qtbot, tmp_path, monkeypatch):
    monkeypatch.setenv("MATTESTUDIO_MODELS", str(tmp_path / "models"))  # GrabCut fallback
    tool = window.select_tool
    tool.action.trigger()
    ctrl, ov = tool.controller, tool.overlay
    ctrl.add_point(32, 40)
    ctrl.set_box(8, 8, 56, 70)
    qtbot.waitUntil(lambda: ctrl.mask is not None and not ctrl.busy, timeout=30000)
    items = lambda: [ov.outline, ov.outline_shadow, ov.box, *ov.markers]  # noqa: E731
    assert ov.markers and all(i.isVisible() for i in items())
    window.tools.set_tool("brush")  # painting the trimap: the old selection must not clutter it
    assert not any(i.isVisible() for i in items())
    tool.action.trigger()
    assert all(i.isVisible() for i in items())


def test_export_of_a_stale_result_runs_then_says_exported(window, qtbot, tmp_path):
    from mattestudio.types import BACKGROUND

    doc = window.document
    window.run()
    qtbot.waitUntil(lambda: not window.runner.busy and not doc.result_is_stale, timeout=60000)
    doc.begin_stroke()
    doc.paint_segment((2, 2), (20, 2), 4, BACKGROUND)
    doc.end_stroke()
    assert doc.result_is_stale
    out = tmp_path / "cut.png"
    assert not window.files.export("cutout", str(out))  # not yet: the engine runs first
    qtbot.waitUntil(lambda: out.exists() and not window.runner.busy, timeout=60000)
    qtbot.wait(50)
    assert "Exported" in window.message.text()  # not hidden by the run's own status line


def test_grabcut_dropped_before_it_started_frees_its_button(make_window, qtbot):
    """A GrabCut still waiting for the worker when Run (or Cancel) replaces it never runs; its
    button must come back all the same (it used to stay disabled for good)."""
    win = make_window(trimap=False)
    runner = win.runner
    button = win.tool_panel.grabcut_button
    for replace in (lambda: win.run(), lambda: win.cancel_action.trigger()):
        runner._wake.disconnect(runner._worker.wake)  # hold the job in the queue
        try:
            win.tools.rect = (12, 6, 50, 52)
            win.control._grabcut = None
            win.run_grabcut()
            assert not button.isEnabled()
            replace()
        finally:
            runner._wake.connect(runner._worker.wake)
        runner._wake.emit()
        qtbot.waitUntil(lambda: not runner.busy, timeout=60000)
        assert button.isEnabled()


def test_engine_process_that_never_started_stops_quietly():
    """A failed start (start() raised) cleans up with stop(kill=True): that must not raise an
    AttributeError of its own, which hid the real reason from the user."""
    import multiprocessing as mp

    from mattestudio.ui.engine_process import EngineProcess

    proc = EngineProcess()
    proc._proc = mp.get_context("spawn").Process(target=print)  # created, never started
    proc.stop(kill=True)
    assert not proc.alive


def test_grabcut_box_drawn_on_the_result_pane_goes_away(window, qtbot, send_mouse):
    window.set_side_by_side(True)
    window.tools.set_tool("rect")
    pane = window.result_view
    vp = pane.viewport()
    send_mouse(vp, "press", pane.image_to_widget(10, 6))
    send_mouse(vp, "move", pane.image_to_widget(40, 40))
    send_mouse(vp, "release", pane.image_to_widget(60, 70))
    assert window.tools.rect is not None and pane.rubber.isVisible()
    qtbot.waitUntil(lambda: window.tool_panel.grabcut_button.isEnabled(), timeout=60000)
    assert not pane.rubber.isVisible() and not window.canvas.rubber.isVisible()
