"""The canvas: a pyqtgraph ViewBox with stacked ImageItems, reading from a Document.

Layers, bottom to top: the photo; the trimap overlay (uint8 trimap through a uint8 RGBA LUT, the
pyqtgraph fast path; in the "plain" view an opaque grayscale trimap); the preview (alpha in
grayscale or the composite), clipped to the right of the split position so the original shows on
the left. Over the checkerboard the preview is the straight RGBA cut-out drawn over a checker
item whose squares keep their size on screen at any zoom.

The preview is a uint8 pyramid (mattestudio.ui.pyramid): the full-resolution pixels and their
2x, 4x ... reductions; the canvas shows the level with about one pixel per screen pixel (full
resolution from 50 % zoom up), scaled onto the image's rectangle. A result that differs from the
one on screen only inside a box (a Live re-run) is drawn by rewriting that box of the full
resolution pixels and of each reduction (the ImageItem's QImage shares the level it shows) and
repainting that rectangle; anything else recomputes the whole preview off the GUI thread, a
strip of rows at a time (no full-size float temporaries). A
badge in the corner says when the result on screen is older than the trimap. A Live result whose
engine solved part of it approximately (bounded per-stroke work) has those regions outlined
with a dashed line, and a "refining…" badge while the engine is still settling them. Wheel zooms around the cursor (ViewBox),
the middle button or space+left drag pans, Ctrl+0 fits, Ctrl+1 shows 100%.

Mouse presses/moves/releases in image pixel coordinates are emitted as signals; the tool
controller decides what they do. The canvas never writes the Document.
"""

from __future__ import annotations

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import QPoint, QPointF, QRectF, Qt, QTimer, Signal
from PySide6.QtGui import QBrush, QColor, QCursor, QPainterPath, QPen, QPixmap, QTransform
from PySide6.QtWidgets import (
    QGraphicsEllipseItem,
    QGraphicsItem,
    QGraphicsLineItem,
    QGraphicsPathItem,
    QGraphicsRectItem,
    QLabel,
)

from mattestudio.core import edges as edge_ops
from mattestudio.core.compositing import result_alpha, result_foreground
from mattestudio.core.document import Document
from mattestudio.types import UNKNOWN
from mattestudio.ui.display import (
    edge_pixels,
    plain_trimap_lut,
    result_pixels,
    result_pixels_in_strips,
    to_u8,
    trimap_lut,
)
from mattestudio.ui.free_memory import release_free_memory
from mattestudio.ui.pyramid import Pyramid, level_for_zoom
from mattestudio.ui.qt_utils import setp
from mattestudio.ui.tasks import run_task

#: "on-black", "on-white" and "edge" (the photo inside the unknown band) are issue 13's views.
MODES = ("trimap", "alpha", "composite", "plain", "on-black", "on-white", "edge")
RESULT_MODES = ("alpha", "composite", "on-black", "on-white")  # previews of the result
CHECKER_PX = 8  # checkerboard square, in screen pixels
#: Boxes larger than this are redrawn off the GUI thread like a whole new result.
PATCH_MAX_PIXELS = 400_000


class CheckerItem(QGraphicsRectItem):
    """A checkerboard whose squares are CHECKER_PX screen pixels at any zoom."""

    def __init__(self) -> None:
        super().__init__()
        tile = QPixmap(2 * CHECKER_PX, 2 * CHECKER_PX)
        tile.fill(QColor(204, 204, 204))
        from PySide6.QtGui import QPainter

        p = QPainter(tile)
        light = QColor(255, 255, 255)
        p.fillRect(0, 0, CHECKER_PX, CHECKER_PX, light)
        p.fillRect(CHECKER_PX, CHECKER_PX, CHECKER_PX, CHECKER_PX, light)
        p.end()
        self._brush = QBrush(tile)
        self.setPen(QPen(Qt.PenStyle.NoPen))

    def paint(self, painter, option, widget=None) -> None:
        device = painter.worldTransform().mapRect(self.rect())
        painter.save()
        painter.setWorldTransform(QTransform())  # device pixels: the squares do not scale
        painter.fillRect(device, self._brush)
        painter.restore()


class Canvas(pg.GraphicsView):
    pressed = Signal(float, float, object)  # x, y, Qt.MouseButton
    moved = Signal(float, float)  # while a button is down and a tool has the mouse
    released = Signal(float, float)
    drag_cancelled = Signal()  # Esc while a tool has the mouse: the tool undoes what it began
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
        self.checker_item = CheckerItem()
        self.checker_item.setParentItem(self.clip_item)
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
        # Regions of a Live result that are still approximate: a subtle dashed outline.
        self.approx_item = QGraphicsPathItem()
        pen = QPen(QColor(255, 200, 60, 170), 1, Qt.PenStyle.DashLine)
        pen.setCosmetic(True)
        self.approx_item.setPen(pen)
        self.approx_item.setZValue(4)
        self.approx_item.setVisible(False)
        self.vb.addItem(self.approx_item, ignoreBounds=True)
        #: The boxes outlined now (tests read this; empty when the result is settled).
        self.approximate_shown: tuple = ()

        self.badge = setp(
            QLabel("Stale: the trimap changed since this result", self), visible=False
        )
        self.badge.setStyleSheet(
            "background: rgba(200, 60, 40, 220); color: white; padding: 3px 8px; border-radius: 4px"
        )
        self.refining_badge = setp(QLabel("refining…", self), visible=False)
        self.refining_badge.setStyleSheet(
            "background: rgba(40, 40, 40, 200); color: rgb(255, 210, 90); padding: 2px 8px;"
            " border-radius: 4px"
        )
        self.mode = "trimap"
        self.overlay_opacity = 0.45
        self.overlay_colors: dict = {}
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
        #: The preview's full-resolution pixels (uint8), level 0 of ``preview_pyramid``.
        self.preview_shown: np.ndarray | None = None
        self.preview_pyramid: Pyramid | None = None
        self.preview_level = 0  # the pyramid level the preview item shows
        self._shown_key: tuple | None = None  # what preview_shown was computed for
        self.patches = 0  # results drawn by rewriting only their changed box (tests, benchmark)
        self._refresh = setp(QTimer(self), singleShot=True, interval=15)  # coalesce overlay redraws
        self._refresh.timeout.connect(self._flush)
        self.setAcceptDrops(True)
        self.setMouseTracking(True)
        self.viewport().setCursor(QCursor(Qt.CursorShape.CrossCursor))
        self.setFocusPolicy(Qt.FocusPolicy.StrongFocus)

        document.image_changed.connect(self._on_image)
        document.trimap_changed.connect(self._on_trimap)
        document.result_changed.connect(self._on_result)
        document.background_changed.connect(self.refresh_preview)
        document.trimap_changed.connect(self._update_badge)
        document.result_outdated.connect(self._update_badge)
        self.vb.sigRangeChanged.connect(self._show_level)
        self.vb.sigResized.connect(self._show_level)
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
        if not self.isHidden():  # a hidden linked pane (side by side) would fit to its own size
            self.fit()

    def _update_badge(self, *_) -> None:
        doc = self.document
        show = self.mode in RESULT_MODES and doc.result is not None
        self.badge.setVisible(show and doc.result_is_stale)
        self._update_approximate()

    def _update_approximate(self) -> None:
        """Outline the result's approximate regions; "refining…" while the engine settles them."""
        result = self.document.result
        boxes = tuple(result.approximate) if result is not None and result.scale == 1.0 else ()
        show = self.mode in RESULT_MODES and bool(boxes)
        if boxes != self.approximate_shown:
            path = QPainterPath()
            for y0, y1, x0, x1 in boxes:
                path.addRect(QRectF(x0, y0, x1 - x0, y1 - y0))
            # Overlapping tiles: outline their union, not every tile's own edges.
            self.approx_item.setPath(path.simplified())
            self.approximate_shown = boxes
        self.approx_item.setVisible(show)
        self.refining_badge.setVisible(show and result is not None and result.refining)

    def resizeEvent(self, ev) -> None:
        super().resizeEvent(ev)
        badge = getattr(self, "badge", None)  # pyqtgraph resizes before __init__ has finished
        if badge is not None and hasattr(self, "refining_badge"):
            badge.adjustSize()
            badge.move(max(self.width() - badge.width() - 10, 0), 10)
            self.refining_badge.adjustSize()
            self.refining_badge.move(
                max(self.width() - self.refining_badge.width() - 10, 0), 14 + badge.height()
            )

    def _on_trimap(self, _bbox) -> None:
        self._dirty_trimap = True
        if not self._refresh.isActive():
            self._refresh.start()

    def _flush(self) -> None:
        if self._dirty_trimap:
            self._dirty_trimap = False
            self.overlay_item.setImage(
                self.document.trimap, lut=self._lut(), levels=None, autoLevels=False
            )

    def _lut(self) -> np.ndarray:
        if self.mode == "plain":
            return plain_trimap_lut()
        return trimap_lut(self.overlay_opacity, self.overlay_colors)

    def set_overlay_opacity(self, opacity: float) -> None:
        self.overlay_opacity = float(opacity)
        self.overlay_item.setLookupTable(self._lut())

    def set_overlay_colors(self, colors: dict) -> None:
        """{trimap value: (r, g, b)} for the tint of foreground, background and the unknown band."""
        self.overlay_colors = dict(colors)
        self.overlay_item.setLookupTable(self._lut())

    def set_mode(self, mode: str) -> None:
        if mode not in MODES:
            raise ValueError(mode)
        self.mode = mode
        self.overlay_item.setLookupTable(self._lut())
        self.refresh_preview()

    def set_split(self, fraction: float) -> None:
        self.split = min(max(float(fraction), 0.0), 1.0)
        self._update_clip()

    def _preview_key(self) -> tuple:
        doc = self.document
        checker = isinstance(doc.background, str) and doc.background == "checker"
        bg = None if checker else doc.background
        return (
            self.mode,
            id(doc.image),
            doc.shape,
            checker,
            id(bg) if bg is not None else None,
            doc.edges,
        )

    def _on_result(self, box=None) -> None:
        self._update_badge()
        if box is not None and self._patch(box):
            return
        self.refresh_preview()

    def _patch(self, box) -> bool:
        """Redraw only ``box`` of the preview; False when that cannot be done."""
        doc = self.document
        result = doc.result
        edges = doc.edges
        if (
            self.mode not in RESULT_MODES
            or result is None
            or result.scale != 1.0
            or self.preview_pending
            or self.preview_shown is None
            or self._shown_key != self._preview_key()
        ):
            return False
        reach = edge_ops.reach(edges)  # how far the edge adjustments carry a change
        if reach is None:
            return False
        h, w = doc.shape
        y0, y1, x0, x1 = box
        y0, y1, x0, x1 = (
            max(y0 - reach, 0),
            min(y1 + reach, h),
            max(x0 - reach, 0),
            min(x1 + reach, w),
        )
        if (y1 - y0) * (x1 - x0) > PATCH_MAX_PIXELS:
            return False
        self._preview_gen += 1  # a full refresh still in flight would paint an older result
        self.patches += 1
        if y1 <= y0 or x1 <= x0:
            self.preview_ready.emit()
            return True
        # The adjustments see `reach` more pixels on each side, so the box's pixels come out as
        # they would from the whole image.
        cy0, cy1, cx0, cx1 = (
            max(y0 - reach, 0),
            min(y1 + reach, h),
            max(x0 - reach, 0),
            min(x1 + reach, w),
        )
        inner = (slice(y0 - cy0, y1 - cy0), slice(x0 - cx0, x1 - cx0))
        crop = (slice(cy0, cy1), slice(cx0, cx1))
        alpha = result.alpha[crop]
        fg = result_foreground(result, doc.image)[crop]
        bg = None
        if self.mode == "composite" and not self._shown_key[3]:
            bg = doc.background_array()[crop]
        pixels = result_pixels(self.mode, alpha, fg, doc.image[crop], bg, edges)
        self.preview_shown[y0:y1, x0:x1] = pixels[inner]
        assert self.preview_pyramid is not None  # set with preview_shown
        boxes = self.preview_pyramid.update((y0, y1, x0, x1))
        # The ImageItem's QImage wraps the level shown: repainting the rectangle (in that
        # level's pixels, the item's own coordinates) shows the change.
        ly0, ly1, lx0, lx1 = boxes[self.preview_level]
        self.preview_item.update(QRectF(lx0, ly0, lx1 - lx0, ly1 - ly0))
        self.preview_ready.emit()
        return True

    def refresh_preview(self) -> None:
        """Recompute the preview layer off the GUI thread (composites of big images take a while);
        only the newest request is shown."""
        self._preview_gen += 1
        gen = self._preview_gen
        self.overlay_item.setVisible(self.mode in ("trimap", "plain"))
        self._update_badge()
        doc = self.document
        if self.mode in ("trimap", "plain") or (doc.result is None and self.mode != "edge"):
            self._show_preview(gen, None, None)
            return
        key = self._preview_key()
        mode, result, image, shape, edges = self.mode, doc.result, doc.image, doc.shape, doc.edges
        if mode == "edge":
            band = doc.trimap == UNKNOWN

            def job():
                pyramid = Pyramid(edge_pixels(image, band))
                release_free_memory(band.size)
                return pyramid
        else:
            background = doc.background_array if mode == "composite" and not key[3] else None

            def job():
                alpha = result_alpha(result, shape)
                fg = result_foreground(result, image)
                bg = None if background is None else background()
                pyramid = Pyramid(result_pixels_in_strips(mode, alpha, fg, image, bg, edges))
                del alpha, fg, bg
                release_free_memory(shape[0] * shape[1])  # the strips' temporaries
                return pyramid

        self.preview_pending = True
        run_task(
            job,
            lambda arr: self._show_preview(gen, arr, key),
            lambda exc: self._show_preview(gen, None, None),
        )

    def _show_preview(self, gen: int, pyramid: Pyramid | None, key) -> None:
        if gen != self._preview_gen:
            return
        self.preview_pending = False
        self.preview_pyramid = pyramid
        self.preview_shown = None if pyramid is None else pyramid.base
        self._shown_key = key
        if pyramid is None:
            self.clip_item.setVisible(False)
            self.split_line.setVisible(False)
            self.preview_ready.emit()
            return
        arr = pyramid.base
        h, w = arr.shape[:2]
        self._show_level(force=True)
        self.checker_item.setRect(QRectF(0, 0, w, h))
        self.checker_item.setVisible(arr.ndim == 3 and arr.shape[2] == 4)
        self.clip_item.setVisible(True)
        self._update_clip()
        self.preview_ready.emit()

    def _show_level(self, *_, force: bool = False) -> None:
        """Show the pyramid level that suits the zoom (called when the view range changes)."""
        pyramid = self.preview_pyramid
        if pyramid is None:
            return
        level = level_for_zoom(self.zoom_factor(), len(pyramid.levels))
        if level == self.preview_level and not force:
            return
        self.preview_level = level
        h, w = pyramid.base.shape[:2]
        # Set the array before the rect: setRect scales relative to the current array.
        self.preview_item.setImage(pyramid.levels[level], autoLevels=False, levels=None)
        self.preview_item.setRect(QRectF(0, 0, w, h))

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

    def zoom_changed_signal(self):
        """Emitted (by the ViewBox) whenever the zoom or the visible range changes."""
        return self.vb.sigRangeChanged

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

    @property
    def tool_dragging(self) -> bool:
        return self._tool_drag

    def cancel_drag(self) -> bool:
        """End a tool's drag without its release (Esc); True if one was in progress."""
        if not self._tool_drag:
            return False
        self._tool_drag = False
        self.drag_cancelled.emit()
        return True

    def keyPressEvent(self, ev):
        if ev.key() == Qt.Key.Key_Escape and self.cancel_drag():
            ev.accept()
            return
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
