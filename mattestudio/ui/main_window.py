"""The main window: builds the parts, places them and connects them. No image maths here.

Who does what: the Document holds the data and announces every change (``edited``,
``result_changed``...); ``RunController`` turns edits into engine jobs (Run, Live, GrabCut) on the
``MattingRunner``; ``FileOps`` reads and writes files; the canvases and panels show the Document.
A new panel or tool plugs in by connecting to the Document's signals and the controller.
"""

from __future__ import annotations

from pathlib import Path

from PySide6.QtCore import Qt, QThreadPool
from PySide6.QtGui import QAction, QKeySequence
from PySide6.QtWidgets import (
    QColorDialog,
    QDockWidget,
    QFileDialog,
    QLabel,
    QMainWindow,
    QMessageBox,
    QProgressBar,
    QPushButton,
    QScrollArea,
    QSplitter,
)

from mattestudio.core.document import Document
from mattestudio.errors import MattestudioError
from mattestudio.ui import edge_panel, settings, window_state
from mattestudio.ui.canvas import Canvas
from mattestudio.ui.engine_panel import EnginePanel, choose_checkpoint
from mattestudio.ui.file_ops import EXPORTS, FileOps, load_background_image
from mattestudio.ui.qt_utils import setp
from mattestudio.ui.run_control import RunController
from mattestudio.ui.runner import MattingRunner
from mattestudio.ui.tools import ToolController, ToolPanel
from mattestudio.ui.view_panel import ViewPanel, color_to_spec


class MainWindow(QMainWindow):
    def __init__(self, document: Document | None = None):
        super().__init__()
        self.setWindowTitle("mattestudio")
        self.document = document or Document()
        self.canvas = Canvas(self.document)
        # Side by side: a second, linked view showing the result while you paint on either.
        self.result_view = Canvas(self.document)
        self.result_view.set_mode("composite")
        self.result_view.vb.setXLink(self.canvas.vb)
        self.result_view.vb.setYLink(self.canvas.vb)
        self.result_view.setVisible(False)
        self.splitter = QSplitter(Qt.Orientation.Horizontal)
        self.splitter.addWidget(self.canvas)
        self.splitter.addWidget(self.result_view)
        self.setCentralWidget(self.splitter)
        self.tools = ToolController(self.document, self.canvas, self)
        self.tools.attach(self.result_view)
        self.main_canvas = self.canvas
        self.tool_panel = ToolPanel(self.tools)
        self.engine_panel = EnginePanel()
        self.view_panel = ViewPanel(self.document)
        self.runner = MattingRunner(self)
        self.control = RunController(self.document, self.engine_panel, self.runner, self)
        self.files = FileOps(self.document, self)
        self.files.settings_source = self.settings_snapshot
        self.last_error: str | None = None
        # Engine and View share the right side as tabs, so the canvas keeps most of the width.
        tools_dock = self._dock("Tools", self.tool_panel, Qt.DockWidgetArea.LeftDockWidgetArea)
        engine_dock = self._dock("Engine", self.engine_panel, Qt.DockWidgetArea.RightDockWidgetArea)
        view_dock = self._dock("View", self.view_panel, Qt.DockWidgetArea.RightDockWidgetArea)
        self.tabifyDockWidget(engine_dock, view_dock)
        engine_dock.raise_()
        self.docks = [tools_dock, engine_dock, view_dock]
        self.resizeDocks([tools_dock, engine_dock], [200, 250], Qt.Orientation.Horizontal)
        self._build_status()
        self._build_actions()
        self._connect()
        # Issue 14: the Select subject tool (clicks/box -> SAM 2 or GrabCut mask -> trimap).
        from mattestudio.ui.select_tool import install as install_select_tool

        self.select_tool = install_select_tool(self)
        edge_panel.install(self)  # issue 13: Edge dock, Refine Edge brush, extra view modes
        self.restore_settings()
        self.resize(1280, 820) if not settings.get("window/geometry") else None

    # -- building --------------------------------------------------------------------------------------
    def _dock(self, title: str, widget, area) -> QDockWidget:
        dock = QDockWidget(title, self)
        dock.setObjectName(f"dock-{title.lower()}")
        scroll = QScrollArea()
        scroll.setWidget(widget)
        scroll.setWidgetResizable(True)
        scroll.setFrameShape(QScrollArea.Shape.NoFrame)
        scroll.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
        scroll.setMinimumWidth(widget.minimumSizeHint().width() + 14)
        dock.setWidget(scroll)
        dock.setFeatures(
            QDockWidget.DockWidgetFeature.DockWidgetClosable
            | QDockWidget.DockWidgetFeature.DockWidgetMovable
            | QDockWidget.DockWidgetFeature.DockWidgetFloatable
        )
        self.addDockWidget(area, dock)
        return dock

    def _build_status(self) -> None:
        bar = self.statusBar()
        self.message = QLabel()
        self.info = QLabel()
        self.progress = setp(QProgressBar(), maximumWidth=220, maximum=1000, textVisible=False)
        self.cancel_button = setp(QPushButton("Cancel"), toolTip="Stop the running engine (Esc)")
        bar.addWidget(self.message, 1)
        bar.addPermanentWidget(self.info)
        bar.addPermanentWidget(self.progress)
        bar.addPermanentWidget(self.cancel_button)
        self.progress.setVisible(False)
        self.cancel_button.setVisible(False)

    def _action(
        self, menu, text: str, slot, shortcut=None, tip: str = "", checkable: bool = False
    ) -> QAction:
        act = setp(QAction(text, self), checkable=checkable)
        if shortcut:
            act.setShortcut(QKeySequence(shortcut))
            act.setShortcutContext(Qt.ShortcutContext.WindowShortcut)
        act.setStatusTip(tip)
        act.setToolTip(tip or text)
        act.triggered.connect(slot)
        if menu is not None:
            menu.addAction(act)
        self.addAction(act)
        return act

    def _build_actions(self) -> None:
        m = self.menuBar()
        f = m.addMenu("&File")
        self._action(f, "&Open...", lambda: self.files.open_any(), QKeySequence.StandardKey.Open)
        self.recent_menu = f.addMenu("Open &Recent")
        self._action(f, "Open &Project...", lambda: self.files.open_project())
        self._action(
            f, "&Save Project...", lambda: self.files.save_project(), QKeySequence.StandardKey.Save
        )
        f.addSeparator()
        self._action(f, "Load &Trimap...", lambda: self.files.open_trimap(), "Ctrl+T")
        self._action(f, "Save Trimap...", lambda: self.files.save_trimap(), "Ctrl+Shift+T")
        ex = f.addMenu("&Export")
        self.export_actions = {
            k: self._action(ex, text, lambda _=False, k=k: self.files.export(k))
            for k, (text, _, _) in EXPORTS.items()
        }
        self.export_actions["alpha8"].setShortcut(QKeySequence("Ctrl+E"))
        f.addSeparator()
        self._action(f, "&Quit", self.close, QKeySequence.StandardKey.Quit)

        e = m.addMenu("&Edit")
        self.undo_action = self._action(
            e, "&Undo", self.document.undo, QKeySequence.StandardKey.Undo
        )
        self.redo_action = self._action(e, "&Redo", self.document.redo, "Ctrl+Shift+Z")
        e.addSeparator()
        self._action(e, "Clear Trimap", self.clear_trimap)
        tp = self.tool_panel
        tp.clear_button.clicked.connect(self.clear_trimap)
        tp.grabcut_button.clicked.connect(self.run_grabcut)
        tp.from_alpha_button.clicked.connect(self.trimap_from_alpha)

        t = m.addMenu("&Tools")
        for key, text, sc in (
            ("fg", "Foreground brush", "F"),
            ("bg", "Background brush", "B"),
            ("unknown", "Edge (unknown) brush", "U"),
        ):
            self._action(
                t,
                text,
                lambda _=False, k=key: (self.tools.set_value(k), self.tools.set_tool("brush")),
                sc,
            )
        for key, text, sc in (
            ("eraser", "Eraser", "E"),
            ("fill", "Fill bucket", "G"),
            ("rect", "Rectangle (GrabCut)", "R"),
        ):
            self._action(t, text, lambda _=False, k=key: self.tools.set_tool(k), sc)
        self._action(t, "Smaller brush", lambda: self.tools.grow(1 / 1.15), "[")
        self._action(t, "Larger brush", lambda: self.tools.grow(1.15), "]")

        v = m.addMenu("&View")
        self._action(v, "Fit to window", self.canvas.fit, "Ctrl+0")
        self._action(v, "Actual size (100%)", self.canvas.actual_size, "Ctrl+1")
        self.side_action = self._action(
            v,
            "Side by side",
            self.set_side_by_side,
            "Ctrl+D",
            "Show the result next to the trimap, both views zoom and pan together",
            checkable=True,
        )
        v.addSeparator()
        # 4-6 are the edge views (edge_panel.install); the plain trimap comes after them, as
        # in the View panel.
        for key, sc in (("trimap", "1"), ("alpha", "2"), ("composite", "3"), ("plain", "7")):
            self._action(
                v,
                "Show plain trimap" if key == "plain" else f"Show {key}",
                lambda _=False, k=key: self.view_panel.set_mode(k),
                sc,
            )
        v.addSeparator()
        for dock in self.docks:  # closed panels come back from here
            v.addAction(dock.toggleViewAction())

        r = m.addMenu("&Run")
        self.run_action = self._action(
            r, "&Run", lambda: self.run(), "Ctrl+R", "Run the engine on the trimap"
        )
        self.live_action = self._action(
            r,
            "&Live",
            self.set_live,
            "Ctrl+L",
            "Re-run after every edit of the trimap, engine or parameters",
            checkable=True,
        )
        self.cancel_action = self._action(r, "&Cancel", self._escape, "Esc")
        self.cancel_action.setEnabled(False)
        tb = self.addToolBar("Main")
        tb.setObjectName("toolbar-main")
        tb.addAction(self.run_action)
        tb.addAction(self.live_action)
        tb.addAction(self.cancel_action)
        tb.addSeparator()
        tb.addAction(self.undo_action)
        tb.addAction(self.redo_action)
        self.rebuild_recent(settings.recent_files())

    def _connect(self) -> None:
        d, c, vp, ctl = self.document, self.canvas, self.view_panel, self.control
        d.history_changed.connect(self._history_changed)
        d.image_changed.connect(self._image_changed)
        self.tools.grabcut_requested.connect(self.run_grabcut)
        self.tools.changed.connect(lambda: settings.put("brush/size", self.tools.size))
        vp.mode_changed.connect(c.set_mode)
        vp.mode_changed.connect(self._sync_result_view)
        vp.opacity_changed.connect(c.set_overlay_opacity)
        vp.colors_changed.connect(c.set_overlay_colors)
        vp.split_changed.connect(c.set_split)
        vp.background_chosen.connect(self.choose_background)
        c.zoom_changed_signal().connect(self._show_position)
        for canvas in (c, self.result_view):
            canvas.hovered.connect(self._hover)
            canvas.files_dropped.connect(lambda paths: self.files.open_any(paths[0]))
        fo = self.files
        fo.recent_changed.connect(self.rebuild_recent)
        fo.message.connect(self.status)
        fo.settings_loaded.connect(self.apply_settings)
        fo.run_requested.connect(self.run)
        fo.progress.connect(self._file_progress)
        self.engine_panel.engine_changed.connect(lambda name: settings.put("engine/name", name))
        self.engine_panel.import_checkpoint.connect(self.import_checkpoint)
        ctl.status.connect(self.status)
        ctl.error.connect(self._failed)
        ctl.grabcut_busy.connect(lambda busy: self.tool_panel.grabcut_button.setEnabled(not busy))
        ctl.grabcut_busy.connect(lambda busy: busy or self.tools.canvas.show_rubber(None))
        rn = self.runner
        rn.result_ready.connect(self._result)
        rn.progress.connect(
            lambda f, msg: (self.progress.setValue(int(f * 1000)), self.status(msg))
        )
        rn.busy_changed.connect(self._busy)
        rn.cancelled.connect(self._cancelled)
        self.cancel_button.clicked.connect(self.cancel)
        self._history_changed()

    # -- running ---------------------------------------------------------------------------------------
    def run(self, live: bool = False) -> int | None:
        self.last_error = None
        return self.control.run(live=live)

    def set_live(self, on: bool) -> None:
        self.live_action.setChecked(bool(on))
        settings.put("run/live", bool(on))
        self.control.set_live(bool(on))

    def _result(self, event) -> None:
        from mattestudio.types import MattingResult

        value = event.value
        if (
            isinstance(value, MattingResult)
            and self.canvas.mode == "trimap"
            and value.scale == 1.0
            and not self.control.live
            and not self.result_view.isVisible()
        ):
            self.view_panel.set_mode("composite")

    def _failed(self, message: str) -> None:
        self.last_error = message
        self.files.drop_pending_export()
        self.message.setStyleSheet("color: #e74c3c")
        self.message.setText(f"Error: {message}")

    def _escape(self) -> None:
        """Esc: a brush stroke or box being dragged is dropped first; otherwise the engine stops."""
        if any(c.cancel_drag() for c in (self.canvas, self.result_view)):
            return
        self.cancel()

    def _cancelled(self) -> None:
        self.files.drop_pending_export()
        self.status("Cancelled")

    def _busy(self, busy: bool) -> None:
        self.progress.setVisible(busy)
        self.cancel_button.setVisible(busy)
        self.cancel_action.setEnabled(busy)
        if busy:
            self.progress.setValue(0)

    def cancel(self) -> None:
        """Esc / Cancel: stop the engine job and the exports being written."""
        self.runner.cancel()
        self.files.cancel_writes()

    def _file_progress(self, fraction: float, text: str) -> None:
        """An export on the pool thread: the progress bar (and Cancel) while no engine job
        uses them."""
        if not self.runner.busy:
            writing = fraction < 1.0 or self.files.writing > 0
            self.progress.setVisible(writing)
            self.progress.setValue(int(fraction * 1000))
            self.cancel_button.setVisible(writing)
            self.cancel_action.setEnabled(writing)
        self.status(text)

    def status(self, text: str) -> None:
        self.message.setStyleSheet("")
        self.message.setText(text)

    # -- trimap commands ---------------------------------------------------------------------------------
    def clear_trimap(self) -> None:
        self.document.clear_trimap()

    def run_grabcut(self) -> None:
        try:
            self.control.run_grabcut(self.tools.rect, self.tools.band, self.tools.smart_band)
        except MattestudioError as exc:
            self.tools.canvas.show_rubber(None)
            QMessageBox.information(self, "GrabCut", exc.reason)

    def trimap_from_alpha(self) -> None:
        if not self.tools.trimap_from_alpha():
            QMessageBox.information(
                self, "Trimap from alpha", "Run an engine first: there is no alpha yet."
            )

    def import_checkpoint(self, engine: str) -> None:
        path = choose_checkpoint(self, engine)
        if not path:
            return
        from mattestudio.ui.tasks import run_task

        def job():  # imports torch and reads a few hundred MB: off the GUI thread
            from mattestudio.engines.deep.checkpoints import import_checkpoint

            return import_checkpoint(path)

        def done(imported) -> None:
            self.engine_panel.refresh_availability()
            self.status(f"Imported {imported.kind} checkpoint as {imported.name}")

        def failed(exc) -> None:
            QMessageBox.warning(self, "Cannot import checkpoint", str(exc))

        self.status(f"Importing {path} ...")
        run_task(job, done, failed)

    # -- view ----------------------------------------------------------------------------------------
    def set_side_by_side(self, on: bool) -> None:
        self.side_action.setChecked(bool(on))
        self.result_view.setVisible(bool(on))
        settings.put("view/side_by_side", bool(on))
        self._sync_result_view()
        if on:
            self.splitter.setSizes([1, 1])

    def _sync_result_view(self, *_):
        """The side pane shows the composite, or the alpha when the main view already shows the composite."""
        mode = "alpha" if self.canvas.mode == "composite" else "composite"
        if self.result_view.isVisible() and self.result_view.mode != mode:
            self.result_view.set_mode(mode)
        self.result_view.set_split(0.0)

    def choose_background(self, key: str) -> None:
        doc = self.document
        if key == "color":
            color = QColorDialog.getColor(parent=self, title="Background color")
            if not color.isValid():
                return
            doc.set_background(color_to_spec(color))
            settings.put("view/background_color", color.name())
        elif key == "image":
            path, _ = QFileDialog.getOpenFileName(
                self,
                "Background image",
                settings.last_dir("backgrounds"),
                "Images (*.png *.jpg *.jpeg *.tif *.tiff *.webp *.bmp)",
            )
            if not path or not self.set_background_image(path):
                return
        else:
            doc.set_background(key)
        self.view_panel.set_background_key(key)
        settings.put("view/background", key)
        if (
            self.canvas.mode == "trimap"
            and doc.result is not None
            and not self.result_view.isVisible()
        ):
            self.view_panel.set_mode("composite")

    def set_background_image(self, path: str) -> bool:
        try:
            image = load_background_image(path)
        except (MattestudioError, MemoryError) as exc:
            self.files.error("Cannot use that background", exc)
            return False
        settings.set_last_dir("backgrounds", path)
        settings.put("view/background_image", path)
        self.document.set_background(image)
        self.view_panel.set_background_key("image")
        return True

    def _hover(self, x: float, y: float) -> None:
        self._pointer = (x, y)
        self._show_position()

    def _show_position(self, *_) -> None:
        """Pixel, alpha under the cursor and zoom (also updated when only the zoom changes)."""
        zoom = f"zoom {100 * self.canvas.zoom_factor():.0f}%"
        x, y = getattr(self, "_pointer", (-1.0, -1.0))
        h, w = self.document.shape
        if not (0 <= x < w and 0 <= y < h):
            self.info.setText(zoom)
            return
        a = self.document.alpha_at(x, y)
        alpha = "" if a is None else f"  alpha {a:.3f}"
        self.info.setText(f"{int(x)}, {int(y)}{alpha}  {zoom}")

    def _image_changed(self) -> None:
        name = self.document.image_path.name if self.document.image_path else "untitled"
        h, w = self.document.shape
        self.setWindowTitle(f"{name} ({w}x{h}) - mattestudio")
        self.view_panel.set_mode("trimap")

    def _history_changed(self) -> None:
        self.undo_action.setEnabled(self.document.can_undo)
        self.redo_action.setEnabled(self.document.can_redo)

    def rebuild_recent(self, paths: list) -> None:
        self.recent_menu.clear()
        for p in paths:
            act = self.recent_menu.addAction(Path(p).name)
            act.setToolTip(p)
            act.triggered.connect(lambda _=False, p=p: self.files.open_any(p))
        self.recent_menu.setEnabled(bool(paths))

    # -- settings ------------------------------------------------------------------------------------
    def settings_snapshot(self):
        """The session's ProjectSettings (what a project file stores)."""
        return window_state.snapshot(self)

    def apply_settings(self, values) -> None:
        """Widgets from a ProjectSettings (or its dict form)."""
        from mattestudio.core.project import ProjectSettings

        if isinstance(values, dict):
            values = ProjectSettings.from_dict(values)
        window_state.apply(self, values)

    def restore_settings(self) -> None:
        window_state.restore(self)

    def closeEvent(self, ev) -> None:
        if self.document.modified and self.document.image_path is not None:
            answer = QMessageBox.question(
                self,
                "Save changes?",
                "The trimap has changed since it was last saved. Save a project first?",
                QMessageBox.StandardButton.Save
                | QMessageBox.StandardButton.Discard
                | QMessageBox.StandardButton.Cancel,
            )
            if answer == QMessageBox.StandardButton.Cancel or (
                answer == QMessageBox.StandardButton.Save and not self.files.save_project()
            ):
                ev.ignore()
                return
        settings.put("window/geometry", self.saveGeometry())
        settings.put("window/state", self.saveState())
        self.runner.shutdown()
        self.files.wait_writes()  # an export being written finishes before the exit
        QThreadPool.globalInstance().waitForDone(
            5000
        )  # previews, histogram, GrabCut still in flight
        self.files.discard_autosave()  # a normal exit leaves no recovery prompt behind
        super().closeEvent(ev)
