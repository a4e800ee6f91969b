"""The "Select subject" tool on the canvas: clicks and a box give a subject mask (SAM 2, or
GrabCut without a model), shown as an outline; "Make trimap" turns it into a trimap with an
unknown band, as one undo step.

Click: on the subject. Alt+click or right click: not the subject. Drag: a box around it.
The state and the workers are in select_controller.py; this file shows them and takes the mouse.
Wiring into the main window is ``install(window)``, called from MainWindow.__init__.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from PySide6.QtCore import QEvent, QObject, QPointF, QRectF, Qt, Slot
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

from mattestudio.ui.qt_utils import setp
from mattestudio.ui.select_controller import SelectController

TOOL = "select"  # the ToolController's name for this tool (its own painting stays idle)
DRAG_PX = 5  # screen pixels a press must move to become a box instead of a click


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
        self.visible = True
        controller.mask_changed.connect(self.update_mask)
        controller.prompts_changed.connect(self.update_prompts)
        self.update_mask()
        self.update_prompts()

    def set_visible(self, on: bool) -> None:
        """Shown only while the tool is in use: other tools paint the trimap under it."""
        self.visible = bool(on)
        for item in (self.outline, self.outline_shadow, *self.markers):
            item.setVisible(self.visible)
        self.box.setVisible(self.visible and self.controller.prompts.box is not None)

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
                m.setVisible(self.visible)
                self.canvas.vb.addItem(m, ignoreBounds=True)
                self.markers.append(m)
        self.box.setVisible(self.visible and p.box is not None)
        if p.box is not None:
            x0, y0, x1, y1 = p.box
            self.box.setRect(QRectF(x0, y0, x1 - x0, y1 - y0))


class SelectMouse(QObject):
    """Turns canvas mouse input into prompts while the ToolController's tool is ``select``.

    Works on every canvas given (the photo and the side-by-side result pane, which show the same
    image pixels). Left clicks come through the canvas's signals (the event filter only notes
    their modifiers); right clicks, which the canvas would use to pan, are taken here.
    """

    def __init__(self, canvases, tools, controller: SelectController):
        canvases = list(canvases)
        super().__init__(canvases[0])
        self.canvases, self.tools, self.controller = canvases, tools, controller
        self.canvas = canvases[0]  # the one the current press/drag is on
        self._start: tuple[float, float] | None = None
        self._negative = False
        for canvas in canvases:
            canvas.viewport().installEventFilter(self)
            canvas.pressed.connect(lambda x, y, b, c=canvas: self._press(x, y, b, c))
            canvas.moved.connect(self._move)
            canvas.released.connect(self._release)
            canvas.drag_cancelled.connect(self._cancel_drag)

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
                canvas = next((c for c in self.canvases if c.viewport() is obj), self.canvas)
                x, y = canvas.widget_to_image(ev.position())
                self.controller.add_point(x, y, positive=False)
            return True  # the canvas must not pan or zoom on it
        if ev.type() == QEvent.Type.MouseButtonPress:
            self._negative = bool(ev.modifiers() & Qt.KeyboardModifier.AltModifier)
        return False

    def _press(self, x: float, y: float, _button, canvas=None) -> None:
        if self.active:
            if canvas is not None and canvas is not self.canvas:
                self.canvas.show_rubber(None)
                self.canvas = canvas
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

    @Slot()
    def _cancel_drag(self) -> None:
        if self._start is not None:
            self._start = None
            self.canvas.show_rubber(None)

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
            self.tools.set_tool(TOOL)  # _sync_active starts the embedding
        elif self.tools.tool == TOOL:
            self.tools.set_tool("brush")

    def _sync_active(self) -> None:
        on = self.tools.tool == TOOL
        self.activate_button.blockSignals(True)
        self.activate_button.setChecked(on)
        self.activate_button.blockSignals(False)
        # However the tool was chosen: start the embedding now, not at the first click.
        self.controller.set_active(on)

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
    overlay: SelectOverlay  # on the photo
    result_overlay: SelectOverlay  # on the side-by-side result pane
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
    # Make trimap uses the Tools panel's Smart band like GrabCut does.
    smart = window.tool_panel.smart_check
    controller.smart = smart.isChecked()
    smart.toggled.connect(lambda on: setattr(controller, "smart", on))
    panel = SelectPanel(controller, window.tools)
    overlay = SelectOverlay(window.canvas, controller)
    result_overlay = SelectOverlay(window.result_view, controller)
    # Clicks on the side-by-side result pane select as on the photo (same image pixels).
    mouse = SelectMouse([window.canvas, window.result_view], window.tools, controller)
    for ov in (overlay, result_overlay):
        window.tools.changed.connect(lambda ov=ov: ov.set_visible(window.tools.tool == TOOL))
        ov.set_visible(window.tools.tool == TOOL)
    dock = window._dock("Select subject", panel, Qt.DockWidgetArea.LeftDockWidgetArea)
    # A tab beside Tools, so the canvas keeps most of the window (issue 9).
    window.tabifyDockWidget(window.docks[0], dock)
    window.docks.append(dock)
    window.docks[0].raise_()
    action = setp(QAction("Select subject", window), toolTip=panel.activate_button.toolTip())
    action.setShortcut(QKeySequence("S"))
    action.setShortcutContext(Qt.ShortcutContext.WindowShortcut)
    action.triggered.connect(lambda: panel.activate_button.setChecked(True))
    action.triggered.connect(lambda: (dock.show(), dock.raise_()))  # its tab comes to the front
    window.addAction(action)
    for menu_action in window.menuBar().actions():
        if menu_action.text().replace("&", "") == "Tools" and menu_action.menu() is not None:
            menu_action.menu().addAction(action)
    controller.message.connect(window.status)
    controller.progress.connect(lambda f, m: window.status(m))
    # Live re-runs on its own: Make trimap is a Document edit (Document.edited, issue 9).
    window.installEventFilter(_CloseWatcher(controller, window))
    return SelectTool(controller, panel, overlay, result_overlay, mouse, action, dock)
