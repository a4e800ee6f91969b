"""The canvas: a pyqtgraph ViewBox with stacked ImageItems, reading from a Document.

Layers, bottom to top: the photo; the trimap overlay (uint8 trimap through a uint8 RGBA LUT, the
pyqtgraph fast path); the preview (alpha in grayscale or the composite), clipped to the right of
the split position so the original shows on the left. Wheel zooms around the cursor (ViewBox),
the middle button or space+left drag pans, Ctrl+0 fits, Ctrl+1 shows 100%.

Mouse presses/moves/releases in image pixel coordinates are emitted as signals; the tool
controller decides what they do. The canvas never writes the Document.
"""

from __future__ import annotations

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import QPoint, QPointF, QRectF, Qt, QTimer, Signal
from PySide6.QtGui import QColor, QCursor, QPen
from PySide6.QtWidgets import (
    QGraphicsEllipseItem,
    QGraphicsItem,
    QGraphicsLineItem,
    QGraphicsRectItem,
)

from mattestudio.core.document import Document
from mattestudio.ui.display import to_u8, trimap_lut
from mattestudio.ui.qt_utils import setp
from mattestudio.ui.tasks import run_task

MODES = ("trimap", "alpha", "composite", "on-black", "on-white", "edge")  # last 3: issue 13


def _u8_or_none(arr: np.ndarray | None) -> np.ndarray | None:
    return None if arr is None else to_u8(arr)


class Canvas(pg.GraphicsView):
    pressed = Signal(float, float, object)  # x, y, Qt.MouseButton
    moved = Signal(float, float)  # while a button is down and a tool has the mouse
    released = Signal(float, float)
    hovered = Signal(float, float)
    files_dropped = Signal(list)
    preview_ready = Signal()  # the preview layer shows the current mode's image

    def __init__(self, document: Document, parent=None):
        super().__init__(parent, background=QColor(45, 45, 48))
        self.document = document
        self.vb = pg.ViewBox(invertY=True, lockAspect=True, enableMenu=False)
        self.setCentralItem(self.vb)
        self.image_item = pg.ImageItem(axisOrder="row-major")
        self.overlay_item = pg.ImageItem(axisOrder="row-major")
        self.clip_item = QGraphicsRectItem()
        self.clip_item.setFlag(QGraphicsItem.GraphicsItemFlag.ItemClipsChildrenToShape, True)
        self.clip_item.setPen(QPen(Qt.PenStyle.NoPen))
        self.preview_item = pg.ImageItem(axisOrder="row-major")
        self.preview_item.setParentItem(self.clip_item)
        self.split_line = QGraphicsLineItem()
        split_pen = QPen(QColor(255, 255, 255, 220), 2)
        split_pen.setCosmetic(True)
        self.split_line.setPen(split_pen)
        for item in (self.image_item, self.overlay_item, self.clip_item):
            self.vb.addItem(item)
        self.vb.addItem(self.split_line, ignoreBounds=True)
        self.image_item.setZValue(0)
        self.overlay_item.setZValue(1)
        self.clip_item.setZValue(2)
        self.split_line.setZValue(3)
        self.cursor_items = []
        for color, width in ((QColor(0, 0, 0, 200), 3), (QColor(255, 255, 255, 230), 1)):
            e = QGraphicsEllipseItem()
            pen = QPen(color, width)
            pen.setCosmetic(True)  # constant on-screen width; the radius scales with the zoom
            e.setPen(pen)
            e.setZValue(10)
            e.setVisible(False)
            self.vb.addItem(e, ignoreBounds=True)
            self.cursor_items.append(e)
        self.rubber = QGraphicsRectItem()
        pen = QPen(QColor(255, 255, 0), 1, Qt.PenStyle.DashLine)
        pen.setCosmetic(True)
        self.rubber.setPen(pen)
        self.rubber.setZValue(11)
        self.rubber.setVisible(False)
        self.vb.addItem(self.rubber, ignoreBounds=True)

        self.mode = "trimap"
        self.overlay_opacity = 0.45
        self.split = 0.0  # fraction of the width showing the original (composite mode)
        self.brush_size = 20.0
        self.show_brush = True
        self.tool_captures_left = True
        self._space = False
        self._tool_drag = False
        self._pan_drag = False
        self._dirty_trimap = False
        self._preview_gen = 0
        self.preview_pending = False
        self.preview_shown: np.ndarray | None = None
        self._refresh = setp(QTimer(self), singleShot=True, interval=15)  # coalesce overlay redraws
        self._refresh.timeout.connect(self._flush)
        self.setAcceptDrops(True)
        self.setMouseTracking(True)
        self.viewport().setCursor(QCursor(Qt.CursorShape.CrossCursor))
        self.setFocusPolicy(Qt.FocusPolicy.StrongFocus)

        document.image_changed.connect(self._on_image)
        document.trimap_changed.connect(self._on_trimap)
        document.result_changed.connect(self.refresh_preview)
        document.background_changed.connect(self.refresh_preview)
        self._on_image()

    # -- document -> items ---------------------------------------------------------------------------
    def _on_image(self) -> None:
        # Set each item's array before its rect: setRect scales relative to the current array.
        self.image_item.setImage(to_u8(self.document.image), autoLevels=False, levels=(0, 255))
        self._dirty_trimap = True
        self._flush()
        h, w = self.document.shape
        self.image_item.setRect(QRectF(0, 0, w, h))
        self.overlay_item.setRect(QRectF(0, 0, w, h))
        self.refresh_preview()
        self.fit()

    def _on_trimap(self, _bbox) -> None:
        self._dirty_trimap = True
        if not self._refresh.isActive():
            self._refresh.start()

    def _flush(self) -> None:
        if self._dirty_trimap:
            self._dirty_trimap = False
            self.overlay_item.setImage(
                self.document.trimap,
                lut=trimap_lut(self.overlay_opacity),
                levels=None,
                autoLevels=False,
            )

    def set_overlay_opacity(self, opacity: float) -> None:
        self.overlay_opacity = float(opacity)
        self.overlay_item.setLookupTable(trimap_lut(self.overlay_opacity))

    def set_mode(self, mode: str) -> None:
        if mode not in MODES:
            raise ValueError(mode)
        self.mode = mode
        self.refresh_preview()

    def set_split(self, fraction: float) -> None:
        self.split = min(max(float(fraction), 0.0), 1.0)
        self._update_clip()

    def refresh_preview(self) -> None:
        """Recompute the preview layer off the GUI thread (composites of big images take a while);
        only the newest request is shown."""
        self._preview_gen += 1
        gen = self._preview_gen
        self.overlay_item.setVisible(self.mode == "trimap")
        if self.mode == "trimap" or (self.document.result is None and self.mode != "edge"):
            self._show_preview(gen, None)
            return
        job = self.document.preview_job(self.mode)
        self.preview_pending = True
        run_task(
            lambda: _u8_or_none(job()),
            lambda arr: self._show_preview(gen, arr),
            lambda exc: self._show_preview(gen, None),
        )

    def _show_preview(self, gen: int, arr: np.ndarray | None) -> None:
        if gen != self._preview_gen:
            return
        self.preview_pending = False
        self.preview_shown = arr
        if arr is None:
            self.clip_item.setVisible(False)
            self.split_line.setVisible(False)
            self.preview_ready.emit()
            return
        h, w = arr.shape[:2]
        self.preview_item.setImage(arr, autoLevels=False, levels=(0, 255))
        self.preview_item.setRect(QRectF(0, 0, w, h))
        self.clip_item.setVisible(True)
        self._update_clip()
        self.preview_ready.emit()

    def _update_clip(self) -> None:
        h, w = self.document.shape
        split = self.split if self.mode == "composite" else 0.0
        self.clip_item.setRect(QRectF(split * w, 0, w - split * w, h))
        self.split_line.setLine(split * w, 0, split * w, h)
        self.split_line.setVisible(
            self.mode == "composite" and 0.0 < split < 1.0 and self.clip_item.isVisible()
        )

    # -- view ------------------------------------------------------------------------------------
    def fit(self) -> None:
        h, w = self.document.shape
        self.vb.setRange(QRectF(0, 0, w, h), padding=0.02)

    def actual_size(self) -> None:
        """1 image pixel = 1 screen pixel, keeping the centre."""
        (x0, x1), (y0, y1) = self.vb.viewRange()
        cx, cy = (x0 + x1) / 2, (y0 + y1) / 2
        size = self.vb.boundingRect().size()
        w, h = size.width(), size.height()
        self.vb.setRange(
            xRange=(cx - w / 2, cx + w / 2), yRange=(cy - h / 2, cy + h / 2), padding=0
        )

    def zoom_factor(self) -> float:
        """Screen pixels per image pixel."""
        (x0, x1), _ = self.vb.viewRange()
        return self.vb.boundingRect().width() / max(x1 - x0, 1e-9)

    def widget_to_image(self, pos) -> tuple[float, float]:
        p = QPointF(pos)
        scene = self.mapToScene(p.toPoint())
        v = self.vb.mapSceneToView(scene)
        return v.x(), v.y()

    def image_to_widget(self, x: float, y: float) -> QPoint:
        scene = self.vb.mapViewToScene(QPointF(x, y))
        return self.mapFromScene(scene)

    # -- brush outline -----------------------------------------------------------------------------
    def set_brush_size(self, size: float) -> None:
        self.brush_size = float(size)
        self._place_cursor(*self._last_hover) if hasattr(self, "_last_hover") else None

    def set_show_brush(self, show: bool) -> None:
        self.show_brush = show
        for e in self.cursor_items:
            e.setVisible(False)

    def _place_cursor(self, x: float, y: float) -> None:
        r = self.brush_size / 2
        for e in self.cursor_items:
            e.setRect(QRectF(x - r, y - r, 2 * r, 2 * r))
            e.setVisible(self.show_brush and not self._space)

    def show_rubber(self, rect: QRectF | None) -> None:
        self.rubber.setVisible(rect is not None)
        if rect is not None:
            self.rubber.setRect(rect)

    # -- mouse & keys --------------------------------------------------------------------------------
    def _pans(self, ev) -> bool:
        return (
            ev.button() == Qt.MouseButton.MiddleButton
            or self._space
            or not self.tool_captures_left
            or ev.button() != Qt.MouseButton.LeftButton
        )

    def mousePressEvent(self, ev):
        if self._pans(ev):
            self._pan_drag = True
            super().mousePressEvent(ev)
            return
        self._tool_drag = True
        x, y = self.widget_to_image(ev.position())
        self.pressed.emit(x, y, ev.button())
        ev.accept()

    def mouseMoveEvent(self, ev):
        x, y = self.widget_to_image(ev.position())
        self._last_hover = (x, y)
        self._place_cursor(x, y)
        self.hovered.emit(x, y)
        if self._tool_drag:
            self.moved.emit(x, y)
            ev.accept()
            return
        super().mouseMoveEvent(ev)

    def mouseReleaseEvent(self, ev):
        if self._tool_drag:
            self._tool_drag = False
            x, y = self.widget_to_image(ev.position())
            self.released.emit(x, y)
            ev.accept()
            return
        self._pan_drag = False
        super().mouseReleaseEvent(ev)

    def enterEvent(self, ev):
        if not self.hasFocus():
            self.setFocus(
                Qt.FocusReason.MouseFocusReason
            )  # so space+drag works without a click first
        super().enterEvent(ev)

    def leaveEvent(self, ev):
        for e in self.cursor_items:
            e.setVisible(False)
        super().leaveEvent(ev)

    def keyPressEvent(self, ev):
        if ev.key() == Qt.Key.Key_Space and not ev.isAutoRepeat():
            self._space = True
            self.viewport().setCursor(QCursor(Qt.CursorShape.OpenHandCursor))
            for e in self.cursor_items:
                e.setVisible(False)
            ev.accept()
            return
        super().keyPressEvent(ev)

    def keyReleaseEvent(self, ev):
        if ev.key() == Qt.Key.Key_Space and not ev.isAutoRepeat():
            self._space = False
            self.viewport().setCursor(QCursor(Qt.CursorShape.CrossCursor))
            ev.accept()
            return
        super().keyReleaseEvent(ev)

    # -- drag and drop -------------------------------------------------------------------------------
    def dragEnterEvent(self, ev):
        if ev.mimeData().hasUrls():
            ev.acceptProposedAction()
        else:
            super().dragEnterEvent(ev)

    def dragMoveEvent(self, ev):
        if ev.mimeData().hasUrls():
            ev.acceptProposedAction()
        else:
            super().dragMoveEvent(ev)

    def dropEvent(self, ev):
        paths = [u.toLocalFile() for u in ev.mimeData().urls() if u.isLocalFile()]
        if paths:
            self.files_dropped.emit(paths)
            ev.acceptProposedAction()
