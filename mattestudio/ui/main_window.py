"""The main window: builds the parts, places them and connects them. No image maths here."""

from __future__ import annotations

from pathlib import Path

from PySide6.QtCore import Qt, QThreadPool, QTimer
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
from mattestudio.ui.runner import MattingRunner
from mattestudio.ui.tools import ToolController, ToolPanel
from mattestudio.ui.view_panel import ViewPanel, color_to_spec

LIVE_DELAY_MS = 120
COARSE_ABOVE = 120_000  # pixels; smaller images go straight to full resolution in Live mode


def coarse_scale(h: int, w: int) -> float | None:
    if h * w <= COARSE_ABOVE:
        return None
    return min(0.5, (60_000 / (h * w)) ** 0.5)


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
        self.files = FileOps(self)
        self.last_error: str | None = None
        docks = [
            self._dock("Tools", self.tool_panel, Qt.DockWidgetArea.LeftDockWidgetArea),
            self._dock("Engine", self.engine_panel, Qt.DockWidgetArea.RightDockWidgetArea),
            self._dock("View", self.view_panel, Qt.DockWidgetArea.RightDockWidgetArea),
        ]
        self.resizeDocks(docks, [250, 300, 300], Qt.Orientation.Horizontal)
        self._build_status()
        self._build_actions()
        self._live_timer = setp(QTimer(self), singleShot=True, interval=LIVE_DELAY_MS)
        self._live_timer.timeout.connect(lambda: self.run(live=True))
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
        scroll.setMinimumWidth(widget.minimumSizeHint().width() + 12)
        dock.setWidget(scroll)
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
        for i, key in enumerate(("trimap", "alpha", "composite")):
            self._action(
                v, f"Show {key}", lambda _=False, k=key: self.view_panel.set_mode(k), str(i + 1)
            )

        r = m.addMenu("&Run")
        self.run_action = self._action(
            r, "&Run", lambda: self.run(), "Ctrl+R", "Run the engine on the trimap"
        )
        self.live_action = self._action(
            r,
            "&Live",
            self._live_toggled,
            "Ctrl+L",
            "Re-run after every stroke (coarse preview first)",
            checkable=True,
        )
        self.cancel_action = self._action(r, "&Cancel", self.runner.cancel, "Esc")
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
        d, c, vp = self.document, self.canvas, self.view_panel
        d.history_changed.connect(self._history_changed)
        d.image_changed.connect(self._image_changed)
        self.tools.stroke_finished.connect(self._edited)
        self.tools.grabcut_requested.connect(self.run_grabcut)
        self.tools.changed.connect(lambda: settings.put("brush/size", self.tools.size))
        vp.mode_changed.connect(c.set_mode)
        vp.mode_changed.connect(self._sync_result_view)
        vp.opacity_changed.connect(c.set_overlay_opacity)
        vp.split_changed.connect(c.set_split)
        vp.background_chosen.connect(self.choose_background)
        c.files_dropped.connect(lambda paths: self.files.open_any(paths[0]))
        c.hovered.connect(self._hover)
        self.result_view.hovered.connect(self._hover)
        self.result_view.files_dropped.connect(lambda paths: self.files.open_any(paths[0]))
        self.files.recent_changed.connect(self.rebuild_recent)
        self.engine_panel.engine_changed.connect(lambda name: settings.put("engine/name", name))
        self.engine_panel.import_checkpoint.connect(self.import_checkpoint)
        rn = self.runner
        rn.result_ready.connect(self._result)
        rn.failed.connect(self._failed)
        rn.progress.connect(
            lambda f, msg: (self.progress.setValue(int(f * 1000)), self.status(msg))
        )
        rn.busy_changed.connect(self._busy)
        rn.cancelled.connect(lambda: self.status("Cancelled"))
        self.cancel_button.clicked.connect(rn.cancel)
        self._history_changed()

    # -- running ---------------------------------------------------------------------------------------
    def run(self, live: bool = False) -> int | None:
        doc, panel = self.document, self.engine_panel
        if not panel.available():
            self._failed(
                f"engine {panel.engine or '(none)'} is not available: {panel.reasons.get(panel.engine)}"
            )
            return None
        try:
            params = panel.params()
        except MattestudioError as exc:
            self._failed(str(exc))
            return None
        if not doc.has_unknown:
            self._failed(
                "the trimap has no unknown (edge) pixels: paint the edge band with U, or use GrabCut"
            )
            return None
        scales: tuple[float, ...] = (1.0,)
        if live:
            s = coarse_scale(*doc.shape)
            if s is not None:
                scales = (s, 1.0)
        self.last_error = None
        # Live re-solves incrementally after each stroke; Run gives a clean full solve, so small
        # differences that incremental re-solves may accumulate never reach an export.
        return self.runner.submit(
            panel.engine,
            params,
            doc.image,
            doc.image_version,
            doc.trimap,
            doc.trimap_version,
            scales,
            exact=not live,
        )

    def _live_toggled(self, on: bool) -> None:
        settings.put("run/live", bool(on))
        if on:
            self._live_timer.start()

    def _edited(self) -> None:
        if self.live_action.isChecked():
            self._live_timer.start()

    def _result(self, result, trimap_version: int) -> None:
        self.document.set_result(result, trimap_version)
        stale = " (trimap changed since)" if self.document.result_is_stale else ""
        kind = "coarse preview" if result.scale != 1.0 else "alpha"
        self.status(f"{result.engine}: {kind} in {result.seconds:.2f} s{stale}")
        if (
            self.canvas.mode == "trimap"
            and result.scale == 1.0
            and not self.live_action.isChecked()
            and not self.result_view.isVisible()
        ):
            self.view_panel.set_mode("composite")

    def _failed(self, message: str) -> None:
        self.last_error = message
        self.message.setStyleSheet("color: #e74c3c")
        self.message.setText(f"Error: {message}")

    def _busy(self, busy: bool) -> None:
        self.progress.setVisible(busy)
        self.cancel_button.setVisible(busy)
        self.cancel_action.setEnabled(busy)
        if busy:
            self.progress.setValue(0)

    def status(self, text: str) -> None:
        self.message.setStyleSheet("")
        self.message.setText(text)

    # -- trimap commands ---------------------------------------------------------------------------------
    def clear_trimap(self) -> None:
        if self.document.clear_trimap():
            self.tools.stroke_finished.emit()

    def run_grabcut(self) -> None:
        from mattestudio.ui.tasks import run_task

        try:
            job = self.tools.grabcut_job()
        except MattestudioError as exc:
            QMessageBox.information(self, "GrabCut", exc.reason)
            return
        version = self.document.image_version
        self.status("GrabCut: segmenting...")
        self.tool_panel.grabcut_button.setEnabled(False)

        def done(tri):
            self.tool_panel.grabcut_button.setEnabled(True)
            self.tools.canvas.show_rubber(None)
            if self.document.image_version == version and self.document.set_trimap(
                tri, "GrabCut", source="grabcut"
            ):
                self.status("GrabCut trimap ready (Ctrl+Z to undo)")
                self.tools.stroke_finished.emit()

        def failed(exc):
            self.tool_panel.grabcut_button.setEnabled(True)
            self.tools.canvas.show_rubber(None)
            self._failed(f"GrabCut failed: {exc}")

        run_task(job, done, failed)

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
        h, w = self.document.shape
        if 0 <= x < w and 0 <= y < h:
            self.info.setText(f"{int(x)}, {int(y)}  zoom {100 * self.canvas.zoom_factor():.0f}%")

    def _image_changed(self) -> None:
        name = self.document.image_path.name if self.document.image_path else "untitled"
        h, w = self.document.shape
        self.setWindowTitle(f"{name} ({w}x{h}) - mattestudio")
        self.runner.cancel()
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
    def settings_snapshot(self) -> dict:
        return window_state.snapshot(self)

    def apply_settings(self, values: dict) -> None:
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
        QThreadPool.globalInstance().waitForDone(
            5000
        )  # previews, histogram, GrabCut still in flight
        self.files.discard_autosave()  # a normal exit leaves no recovery prompt behind
        super().closeEvent(ev)
