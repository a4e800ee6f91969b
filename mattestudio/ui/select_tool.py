"""The "Select subject" tool: clicks and a box give a subject mask (SAM 2, or GrabCut without a
model), shown as an outline; "Make trimap" turns it into a trimap with an unknown band, as one
undo step.

Click: on the subject. Alt+click or right click: not the subject. Drag: a box around it.
The SAM 2 image embedding runs once per image on a worker thread (progress, cancel); each
click then runs the mask decoder, also off the GUI thread. The maths lives in
mattestudio.engines.segment; this file wires it to the canvas and shows it.

Wiring into the main window is ``install(window)``, called from MainWindow.__init__.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from PySide6.QtCore import QEvent, QObject, QPointF, QRectF, Qt, Signal, Slot
from PySide6.QtGui import QAction, QColor, QKeySequence, QPainterPath, QPen
from PySide6.QtWidgets import (
    QDockWidget,
    QGraphicsEllipseItem,
    QGraphicsItem,
    QGraphicsPathItem,
    QGraphicsRectItem,
    QHBoxLayout,
    QLabel,
    QProgressBar,
    QPushButton,
    QSlider,
    QVBoxLayout,
    QWidget,
)

from mattestudio.core.document import Document
from mattestudio.engines.segment import select as seg
from mattestudio.engines.segment.prompts import Prompts
from mattestudio.errors import Cancelled, MattestudioError
from mattestudio.types import CancelToken
from mattestudio.ui.qt_utils import setp
from mattestudio.ui.tasks import run_task

TOOL = "select"  # the ToolController's name for this tool (its own painting stays idle)
DRAG_PX = 5  # screen pixels a press must move to become a box instead of a click


class _ProgressRelay(QObject):
    """Carries progress from the worker thread to the GUI thread (queued signal)."""

    moved = Signal(float, str)


class SelectController(QObject):
    """Prompts -> mask for one Document. Emits; never touches widgets."""

    mask_changed = Signal()  # self.mask changed (None or a bool H x W array)
    prompts_changed = Signal()
    busy_changed = Signal(bool)  # the embedding is running
    progress = Signal(float, str)
    message = Signal(str)  # a status line for the user
    trimap_made = Signal()

    def __init__(self, document: Document, parent=None):
        super().__init__(parent)
        self.document = document
        self.prompts = Prompts()
        self.mask: np.ndarray | None = None
        self.band = 12
        self.model: str | None = None  # None: the first imported SAM 2 model
        self.backend, self.reason = self._choose_backend()
        self.predictor = None
        self.embedding = False
        self._embedded_version: int | None = None
        self._token: CancelToken | None = None
        self._gen = 0  # the newest prompt change; older mask results are dropped
        self._mask_job = False  # a mask computation is in flight
        self._pending = False  # prompts changed while it was
        self._relay = _ProgressRelay()
        self._relay.moved.connect(self.progress)
        document.image_changed.connect(self._image_changed)

    # -- backend -------------------------------------------------------------------------------------
    def _choose_backend(self) -> tuple[str, str]:
        why = seg.sam2_unavailable(self.model)
        return ("grabcut", why) if why else ("sam2", "")

    def refresh_backend(self) -> None:
        """Re-check for a SAM 2 model (after an import)."""
        backend, self.reason = self._choose_backend()
        if backend != self.backend:
            self.backend, self.predictor, self._embedded_version = backend, None, None
        self.message.emit(self.describe())

    def describe(self) -> str:
        if self.backend == "sam2":
            name = self.predictor.name if self.predictor is not None else "SAM 2"
            return (
                f"{name}: click the subject; Alt+click or right click: not the subject; drag: a box"
            )
        return f"Using GrabCut: {self.reason}"

    @property
    def ready(self) -> bool:
        return self.backend == "grabcut" or (
            self._embedded_version == self.document.image_version and not self.embedding
        )

    def prepare(self) -> None:
        """Start the image embedding on a worker unless it is done or running (SAM 2 only)."""
        if self.backend != "sam2" or self.embedding or self.ready:
            return
        doc = self.document
        image, version = doc.image, doc.image_version
        key = f"{id(doc)}:{version}"
        token = self._token = CancelToken()
        relay = self._relay
        predictor, model = self.predictor, self.model

        def job():
            p = predictor
            if p is None:
                from mattestudio.engines.segment.predictor import Sam2Predictor

                relay.moved.emit(0.0, "SAM 2: loading the model")
                p = Sam2Predictor.load(model)
            token.raise_if_cancelled()
            p.set_image(image, key=key, progress=lambda f, m: relay.moved.emit(f, m), cancel=token)
            return p

        def done(p) -> None:
            self.predictor = p
            self._set_embedding(False)
            if self.document.image_version != version:
                self.prepare()  # the image changed meanwhile
                return
            self._embedded_version = version
            self.message.emit(self.describe())
            if not self.prompts.empty:
                self._update()

        def failed(exc) -> None:
            self._set_embedding(False)
            if isinstance(exc, Cancelled):
                self.message.emit("SAM 2: cancelled; click again to restart")
                return
            # An unusable model: say why and fall back so the tool still works.
            self.backend, self.reason = "grabcut", f"SAM 2 failed ({exc})"
            self.message.emit(self.describe())
            if not self.prompts.empty:
                self._update()

        self._set_embedding(True)
        run_task(job, done, failed)

    def cancel(self) -> None:
        if self._token is not None:
            self._token.cancel()

    def _set_embedding(self, on: bool) -> None:
        self.embedding = on
        self.busy_changed.emit(on)

    # -- prompts ---------------------------------------------------------------------------------------
    def add_point(self, x: float, y: float, positive: bool = True) -> None:
        h, w = self.document.shape
        if not (0 <= x < w and 0 <= y < h):
            return  # a click beside the image selects nothing
        self.prompts = self.prompts.add_point(x, y, positive)
        self._changed()

    def set_box(self, x0: float, y0: float, x1: float, y1: float) -> None:
        h, w = self.document.shape
        x0, x1 = sorted((max(0.0, min(x0, w)), max(0.0, min(x1, w))))
        y0, y1 = sorted((max(0.0, min(y0, h)), max(0.0, min(y1, h))))
        if x1 - x0 < 2 or y1 - y0 < 2:
            return
        self.prompts = self.prompts.with_box((x0, y0, x1, y1))
        self._changed()

    def clear(self) -> None:
        self.prompts = Prompts()
        self._gen += 1
        self._set_mask(None)
        self.prompts_changed.emit()

    def _changed(self) -> None:
        self._gen += 1
        self.prompts_changed.emit()
        self._update()

    def _image_changed(self) -> None:
        self.cancel()
        self._embedded_version = None
        self.clear()

    # -- masks -----------------------------------------------------------------------------------------
    def _update(self) -> None:
        """Compute the mask for the current prompts on a worker; one job at a time, the newest
        prompts win."""
        if self.prompts.empty:
            return
        if self.backend == "sam2" and not self.ready:
            self.prepare()  # the mask follows when the embedding is done
            return
        if self._mask_job:
            self._pending = True
            return
        gen, prompts, image = self._gen, self.prompts, self.document.image
        version = self.document.image_version
        predictor = self.predictor if self.backend == "sam2" else None
        self._mask_job, self._pending = True, False
        if predictor is None:
            self.message.emit("GrabCut: segmenting...")

        def job():
            if predictor is not None:
                return seg.check_mask(predictor.predict(prompts).mask)
            return seg.grabcut_select(image, prompts)

        def finish() -> None:
            self._mask_job = False
            if self._pending:
                self._update()

        def done(mask) -> None:
            if gen == self._gen and version == self.document.image_version:
                self._set_mask(mask)
                if predictor is None:
                    self.message.emit(self.describe())
            finish()

        def failed(exc) -> None:
            if gen == self._gen:
                self._set_mask(None)
                self.message.emit(str(exc) if isinstance(exc, MattestudioError) else repr(exc))
            finish()

        run_task(job, done, failed)

    def _set_mask(self, mask: np.ndarray | None) -> None:
        self.mask = mask
        self.mask_changed.emit()

    @property
    def busy(self) -> bool:
        return self.embedding or self._mask_job or self._pending

    # -- trimap ----------------------------------------------------------------------------------------
    def set_band(self, band: int) -> None:
        self.band = max(1, int(band))

    def make_trimap(self) -> bool:
        """The mask -> trimap with the band, as one undo step. False (and a message) if no mask."""
        if self.mask is None:
            self.message.emit("Click on the subject first: there is no selection yet")
            return False
        try:
            tri = seg.mask_to_trimap(self.mask, self.band)
        except MattestudioError as exc:
            self.message.emit(str(exc))
            return False
        if self.document.set_trimap(tri, "Select subject", source="select"):
            self.message.emit("Trimap from the selection (Ctrl+Z to undo)")
            self.trimap_made.emit()
        return True


# -- the view: outline, click markers and the box on a canvas ----------------------------------------
def _pen(color: QColor, width: float, style=Qt.PenStyle.SolidLine) -> QPen:
    pen = QPen(color, width, style)
    pen.setCosmetic(True)  # constant on-screen width at any zoom
    return pen


def outline_path(mask: np.ndarray) -> QPainterPath:
    """The mask's contours as a path in image pixel coordinates (pixel edges)."""
    import cv2

    contours, _ = cv2.findContours(mask.astype(np.uint8), cv2.RETR_LIST, cv2.CHAIN_APPROX_SIMPLE)
    path = QPainterPath()
    for c in contours:
        pts = c[:, 0, :].astype(np.float64) + 0.5  # pixel centres
        path.moveTo(QPointF(*pts[0]))
        for x, y in pts[1:]:
            path.lineTo(QPointF(x, y))
        path.closeSubpath()
    return path


class SelectOverlay:
    """Graphics items on a canvas that show a SelectController's prompts and mask."""

    def __init__(self, canvas, controller: SelectController):
        self.canvas, self.controller = canvas, controller
        self.outline = QGraphicsPathItem()
        self.outline_shadow = QGraphicsPathItem()
        self.outline_shadow.setPen(_pen(QColor(0, 0, 0, 200), 3))
        self.outline.setPen(_pen(QColor(80, 230, 255), 1.5))
        self.box = QGraphicsRectItem()
        self.box.setPen(_pen(QColor(80, 230, 255), 1, Qt.PenStyle.DashLine))
        for z, item in enumerate((self.outline_shadow, self.outline, self.box)):
            item.setZValue(12 + z)
            canvas.vb.addItem(item, ignoreBounds=True)
        self.markers: list[QGraphicsEllipseItem] = []
        controller.mask_changed.connect(self.update_mask)
        controller.prompts_changed.connect(self.update_prompts)
        self.update_mask()
        self.update_prompts()

    def update_mask(self) -> None:
        mask = self.controller.mask
        path = outline_path(mask) if mask is not None else QPainterPath()
        self.outline.setPath(path)
        self.outline_shadow.setPath(path)

    def update_prompts(self) -> None:
        for m in self.markers:
            self.canvas.vb.removeItem(m)
        self.markers = []
        p = self.controller.prompts
        for pts, color in ((p.positive, QColor(60, 220, 90)), (p.negative, QColor(235, 60, 60))):
            for x, y in pts:
                m = QGraphicsEllipseItem(-5, -5, 10, 10)  # screen pixels: ignores the zoom
                m.setFlag(QGraphicsItem.GraphicsItemFlag.ItemIgnoresTransformations, True)
                m.setPen(_pen(QColor(255, 255, 255), 1.5))
                m.setBrush(color)
                m.setPos(x, y)
                m.setZValue(15)
                self.canvas.vb.addItem(m, ignoreBounds=True)
                self.markers.append(m)
        self.box.setVisible(p.box is not None)
        if p.box is not None:
            x0, y0, x1, y1 = p.box
            self.box.setRect(QRectF(x0, y0, x1 - x0, y1 - y0))


class SelectMouse(QObject):
    """Turns canvas mouse input into prompts while the ToolController's tool is ``select``.

    Left clicks come through the canvas's signals (the event filter only notes their modifiers);
    right clicks, which the canvas would use to pan, are taken here.
    """

    def __init__(self, canvas, tools, controller: SelectController):
        super().__init__(canvas)
        self.canvas, self.tools, self.controller = canvas, tools, controller
        self._start: tuple[float, float] | None = None
        self._negative = False
        canvas.viewport().installEventFilter(self)
        canvas.pressed.connect(self._press)
        canvas.moved.connect(self._move)
        canvas.released.connect(self._release)

    @property
    def active(self) -> bool:
        return self.tools.tool == TOOL

    def eventFilter(self, obj, ev) -> bool:
        if not self.active or ev.type() not in (
            QEvent.Type.MouseButtonPress,
            QEvent.Type.MouseButtonRelease,
            QEvent.Type.MouseButtonDblClick,
        ):
            return False
        if ev.button() == Qt.MouseButton.RightButton:
            if ev.type() == QEvent.Type.MouseButtonPress:
                x, y = self.canvas.widget_to_image(ev.position())
                self.controller.add_point(x, y, positive=False)
            return True  # the canvas must not pan or zoom on it
        if ev.type() == QEvent.Type.MouseButtonPress:
            self._negative = bool(ev.modifiers() & Qt.KeyboardModifier.AltModifier)
        return False

    @Slot(float, float, object)
    def _press(self, x: float, y: float, _button) -> None:
        if self.active:
            self._start = (x, y)

    @Slot(float, float)
    def _move(self, x: float, y: float) -> None:
        if self.active and self._start is not None and self._dragged(self._start, x, y):
            x0, y0 = self._start
            self.canvas.show_rubber(QRectF(min(x0, x), min(y0, y), abs(x - x0), abs(y - y0)))

    @Slot(float, float)
    def _release(self, x: float, y: float) -> None:
        if not self.active or self._start is None:
            return
        x0, y0 = self._start
        self._start = None
        self.canvas.show_rubber(None)
        if self._dragged((x0, y0), x, y):
            self.controller.set_box(x0, y0, x, y)
        else:
            self.controller.add_point(x0, y0, positive=not self._negative)

    def _dragged(self, start: tuple[float, float], x: float, y: float) -> bool:
        zoom = self.canvas.zoom_factor()
        return max(abs(x - start[0]), abs(y - start[1])) * zoom >= DRAG_PX


# -- the panel -------------------------------------------------------------------------------------------
class SelectPanel(QWidget):
    """Buttons for the tool: activate, clear, band, Make trimap; embedding progress and cancel."""

    def __init__(self, controller: SelectController, tools, parent=None):
        super().__init__(parent)
        self.controller, self.tools = controller, tools
        layout = QVBoxLayout(self)
        self.activate_button = setp(
            QPushButton("Select subject"),
            checkable=True,
            toolTip="Click the subject; Alt+click or right click what is not; drag a box (S)",
        )
        layout.addWidget(self.activate_button)
        self.info = setp(QLabel(), wordWrap=True)
        layout.addWidget(self.info)
        row = QHBoxLayout()
        self.progress = setp(QProgressBar(), maximum=1000, textVisible=False, visible=False)
        self.cancel_button = setp(
            QPushButton("Cancel"), toolTip="Stop computing the embedding", visible=False
        )
        row.addWidget(self.progress, 1)
        row.addWidget(self.cancel_button)
        layout.addLayout(row)
        band_row = QHBoxLayout()
        band_row.addWidget(QLabel("Edge band"))
        self.band_slider = setp(
            QSlider(Qt.Orientation.Horizontal),
            minimum=1,
            maximum=100,
            value=controller.band,
            toolTip="Width in pixels of the unknown band along the selection's edge",
        )
        self.band_label = QLabel(f"{controller.band} px")
        band_row.addWidget(self.band_slider, 1)
        band_row.addWidget(self.band_label)
        layout.addLayout(band_row)
        buttons = QHBoxLayout()
        self.make_button = setp(
            QPushButton("Make trimap"),
            toolTip="Turn the selection into a trimap with an edge band (one undo step)",
        )
        self.clear_button = setp(QPushButton("Clear clicks"), toolTip="Start the selection again")
        buttons.addWidget(self.make_button)
        buttons.addWidget(self.clear_button)
        layout.addLayout(buttons)
        layout.addStretch(1)

        self.activate_button.toggled.connect(self._toggled)
        self.cancel_button.clicked.connect(controller.cancel)
        self.band_slider.valueChanged.connect(self._band)
        self.make_button.clicked.connect(controller.make_trimap)
        self.clear_button.clicked.connect(controller.clear)
        controller.message.connect(self.info.setText)
        controller.busy_changed.connect(self._busy)
        controller.progress.connect(lambda f, m: self.progress.setValue(int(f * 1000)))
        controller.mask_changed.connect(self._sync_buttons)
        tools.changed.connect(self._sync_active)
        self.info.setText(controller.describe())
        self._sync_buttons()

    def _toggled(self, on: bool) -> None:
        if on:
            self.tools.set_tool(TOOL)
            self.controller.refresh_backend()
            self.controller.prepare()
        elif self.tools.tool == TOOL:
            self.tools.set_tool("brush")

    def _sync_active(self) -> None:
        self.activate_button.blockSignals(True)
        self.activate_button.setChecked(self.tools.tool == TOOL)
        self.activate_button.blockSignals(False)

    def _band(self, value: int) -> None:
        self.controller.set_band(value)
        self.band_label.setText(f"{value} px")

    def _busy(self, busy: bool) -> None:
        self.progress.setVisible(busy)
        self.cancel_button.setVisible(busy)
        if busy:
            self.progress.setValue(0)

    def _sync_buttons(self) -> None:
        self.make_button.setEnabled(self.controller.mask is not None)


@dataclass
class SelectTool:
    controller: SelectController
    panel: SelectPanel
    overlay: SelectOverlay
    mouse: SelectMouse
    action: QAction
    dock: QDockWidget


class _CloseWatcher(QObject):
    """Cancels the embedding when the window closes, so closing does not wait for it."""

    def __init__(self, controller: SelectController, parent):
        super().__init__(parent)
        self.controller = controller

    def eventFilter(self, obj, ev) -> bool:
        if ev.type() == QEvent.Type.Close:
            self.controller.cancel()
        return False


def install(window) -> SelectTool:
    """Add the tool to a MainWindow: a dock, a Tools menu action (S), the canvas overlay and
    mouse handling. Uses only the window's document, canvas, tools and status()."""
    controller = SelectController(window.document, window)
    panel = SelectPanel(controller, window.tools)
    overlay = SelectOverlay(window.canvas, controller)
    mouse = SelectMouse(window.canvas, window.tools, controller)
    dock = QDockWidget("Select subject", window)
    dock.setObjectName("dock-select-subject")
    dock.setWidget(panel)
    window.addDockWidget(Qt.DockWidgetArea.LeftDockWidgetArea, dock)
    action = setp(QAction("Select subject", window), toolTip=panel.activate_button.toolTip())
    action.setShortcut(QKeySequence("S"))
    action.setShortcutContext(Qt.ShortcutContext.WindowShortcut)
    action.triggered.connect(lambda: panel.activate_button.setChecked(True))
    window.addAction(action)
    for menu_action in window.menuBar().actions():
        if menu_action.text().replace("&", "") == "Tools" and menu_action.menu() is not None:
            menu_action.menu().addAction(action)
    controller.message.connect(window.status)
    controller.progress.connect(lambda f, m: window.status(m))
    controller.trimap_made.connect(window.tools.stroke_finished)
    window.installEventFilter(_CloseWatcher(controller, window))
    return SelectTool(controller, panel, overlay, mouse, action, dock)
