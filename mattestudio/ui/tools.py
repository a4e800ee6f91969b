"""Tools: the panel (buttons, sliders) and the controller that turns canvas mouse events into
Document edits through the Qt-free brush in mattestudio.core.strokes.

Values: foreground (F), background (B), unknown/edge (U). Tools: brush, eraser (E, restores the
loaded or generated trimap under the brush), fill bucket (G), rectangle for GrabCut (R).
"""

from __future__ import annotations

from PySide6.QtCore import QObject, QRectF, Qt, Signal
from PySide6.QtWidgets import (
    QButtonGroup,
    QCheckBox,
    QGridLayout,
    QGroupBox,
    QHBoxLayout,
    QLabel,
    QPushButton,
    QSlider,
    QToolButton,
    QVBoxLayout,
    QWidget,
)

from mattestudio.core import trimap as trimap_ops
from mattestudio.core.document import Document
from mattestudio.core.strokes import Brush
from mattestudio.types import BACKGROUND, FOREGROUND, UNKNOWN
from mattestudio.ui.qt_utils import setp

VALUES = {"fg": FOREGROUND, "bg": BACKGROUND, "unknown": UNKNOWN}
TOOLS = (
    "brush",
    "eraser",
    "fill",
    "rect",
    "refine",
    "select",
)  # refine: Refine Edge brush (issue 13); select: ui/select_tool.py (issue 14)
MIN_SIZE, MAX_SIZE = 1, 500


class ToolController(QObject):
    """State of the active tool; connects a Canvas to a Document."""

    changed = Signal()
    grabcut_requested = Signal()

    def __init__(self, document: Document, canvas, parent=None):
        super().__init__(parent)
        self.document = document
        self.canvas = canvas
        self.value = "fg"
        self.tool = "brush"
        self.size = 20.0
        self.band = 10
        self.smart_band = False  # GrabCut band follows the edge (issue 13)
        self.rect: tuple[int, int, int, int] | None = None  # x, y, w, h for GrabCut
        self._brush: Brush | None = None
        self._rect_start: tuple[float, float] | None = None
        self.canvases: list = []
        self.attach(canvas)

    def attach(self, canvas) -> None:
        """Paint on this canvas too (the side-by-side result pane shares the tools)."""
        self.canvases.append(canvas)
        canvas.pressed.connect(lambda x, y, b, c=canvas: self._on_canvas(c) or self._press(x, y, b))
        canvas.moved.connect(self._move)
        canvas.released.connect(self._release)
        canvas.drag_cancelled.connect(self.cancel_stroke)
        self._sync_canvas()

    def _on_canvas(self, canvas) -> None:
        if canvas is not self.canvas:
            self.canvas.show_rubber(None)
            self.canvas = canvas

    # -- state ---------------------------------------------------------------------------------------
    def set_value(self, value: str) -> None:
        self.value = value
        if self.tool == "eraser":
            self.tool = "brush"
        self._sync_canvas()

    def set_tool(self, tool: str) -> None:
        if tool not in TOOLS:
            raise ValueError(tool)
        self.tool = tool
        self._sync_canvas()

    def set_size(self, size: float) -> None:
        self.size = float(min(max(size, MIN_SIZE), MAX_SIZE))
        self._sync_canvas()

    def grow(self, factor: float) -> None:
        """`]` and `[`: about 15 % per press, at least one pixel."""
        new = self.size * factor
        if abs(new - self.size) < 1:
            new = self.size + (1 if factor > 1 else -1)
        self.set_size(round(new))

    def set_band(self, band: int) -> None:
        self.band = int(band)
        self.changed.emit()

    def _sync_canvas(self) -> None:
        for canvas in self.canvases:
            canvas.set_brush_size(self.size)
            canvas.set_show_brush(self.tool in ("brush", "eraser", "refine"))
        self.changed.emit()

    def paint_value(self):
        if self.tool == "refine":
            return "refine"
        return "erase" if self.tool == "eraser" else VALUES[self.value]

    # -- mouse ---------------------------------------------------------------------------------------
    def _press(self, x: float, y: float, _button) -> None:
        if self.tool in ("brush", "eraser", "refine"):
            self._brush = Brush(self.document, self.paint_value(), self.size)
            self._brush.press(x, y)
        elif self.tool == "fill":
            self.document.fill(x, y, VALUES[self.value])
        elif self.tool == "rect":
            self._rect_start = (x, y)
            self.canvas.show_rubber(QRectF(x, y, 0, 0))

    def _move(self, x: float, y: float) -> None:
        if self._brush is not None:
            self._brush.move(x, y)
        elif self._rect_start is not None:
            x0, y0 = self._rect_start
            self.canvas.show_rubber(QRectF(min(x0, x), min(y0, y), abs(x - x0), abs(y - y0)))

    def _release(self, x: float, y: float) -> None:
        if self._brush is not None:
            self._brush.move(x, y)
            self._brush.release()
            self._brush = None
        elif self._rect_start is not None:
            x0, y0 = self._rect_start
            self._rect_start = None
            h, w = self.document.shape
            left, top = max(int(min(x0, x)), 0), max(int(min(y0, y)), 0)
            right, bottom = min(int(max(x0, x)) + 1, w), min(int(max(y0, y)) + 1, h)
            if right - left >= 2 and bottom - top >= 2:
                self.rect = (left, top, right - left, bottom - top)
                self.grabcut_requested.emit()
            else:
                self.canvas.show_rubber(None)

    def cancel_stroke(self) -> None:
        """Esc during a drag: the stroke so far is undone (no history step), a GrabCut box dropped."""
        if self._brush is not None:
            self._brush.cancel()
            self._brush = None
        if self._rect_start is not None:
            self._rect_start = None
            self.canvas.show_rubber(None)

    # -- trimap generators ----------------------------------------------------------------------------
    def trimap_from_alpha(self) -> bool:
        alpha = self.document.alpha()
        if alpha is None:
            return False
        self.document.set_trimap(
            trimap_ops.from_alpha(
                alpha, self.band, image=self.document.image if self.smart_band else None
            ),
            "trimap from alpha",
            source="from-alpha",
        )
        return True


class ToolPanel(QWidget):
    """Buttons and sliders for a ToolController."""

    def __init__(self, controller: ToolController, parent=None):
        super().__init__(parent)
        self.controller = controller
        layout = QVBoxLayout(self)
        layout.setContentsMargins(4, 4, 4, 4)

        paint = QGroupBox("Paint")
        grid = QGridLayout(paint)
        self.value_group = QButtonGroup(self)
        self.value_buttons = {}
        for col, (key, text, tip) in enumerate(
            (
                ("fg", "Foreground", "Definitely the subject (F)"),
                ("bg", "Background", "Definitely not the subject (B)"),
                (
                    "unknown",
                    "Edge",
                    "Unknown: let the engine decide, paint over hair and soft edges (U)",
                ),
            )
        ):
            b = setp(QToolButton(), text=text, checkable=True, toolTip=tip)
            b.setToolButtonStyle(Qt.ToolButtonStyle.ToolButtonTextOnly)
            self.value_group.addButton(b)
            self.value_buttons[key] = b
            grid.addWidget(b, col // 2, col % 2)  # two columns: the panel stays narrow
            b.clicked.connect(lambda _=False, k=key: controller.set_value(k))
        self.tool_group = QButtonGroup(self)
        self.tool_buttons = {}
        for col, (key, text, tip) in enumerate(
            (
                ("brush", "Brush", "Paint the chosen value"),
                ("eraser", "Eraser", "Restore the loaded or generated trimap under the brush (E)"),
                (
                    "fill",
                    "Fill",
                    "Fill the connected region under the click with the chosen value (G)",
                ),
                ("rect", "Rectangle", "Drag a box around the subject: GrabCut makes a trimap (R)"),
                (
                    "refine",
                    "Refine",
                    "Paint over hair or a soft edge: only pixels with an edge or mixed colours "
                    "under the brush become unknown, flat areas keep their value (H)",
                ),
            )
        ):
            b = setp(QToolButton(), text=text, checkable=True, toolTip=tip)
            self.tool_group.addButton(b)
            self.tool_buttons[key] = b
            grid.addWidget(b, 2 + col // 2, col % 2)
            b.clicked.connect(lambda _=False, k=key: controller.set_tool(k))
        layout.addWidget(paint)

        size_row = QHBoxLayout()
        size_row.addWidget(QLabel("Size"))
        self.size_slider = setp(
            QSlider(Qt.Orientation.Horizontal),
            minimum=MIN_SIZE,
            maximum=MAX_SIZE,
            toolTip="Brush diameter in image pixels ([ and ] change it)",
        )
        self.size_label = QLabel()
        self.size_label.setMinimumWidth(44)
        size_row.addWidget(self.size_slider, 1)
        size_row.addWidget(self.size_label)
        layout.addLayout(size_row)
        self.size_slider.valueChanged.connect(controller.set_size)

        auto = QGroupBox("Automatic trimap")
        av = QVBoxLayout(auto)
        band_row = QHBoxLayout()
        band_row.addWidget(QLabel("Edge band"))
        self.band_slider = setp(
            QSlider(Qt.Orientation.Horizontal),
            minimum=1,
            maximum=100,
            toolTip="Width in pixels of the unknown band GrabCut and 'From alpha' leave "
            "around the edge. Wider for hair and fur.",
        )
        self.band_label = QLabel()
        band_row.addWidget(self.band_slider, 1)
        band_row.addWidget(self.band_label)
        av.addLayout(band_row)
        self.grabcut_button = setp(
            QPushButton("GrabCut from box / marks"),
            toolTip="Segment with OpenCV GrabCut using the rectangle (R) and your "
            "foreground/background marks, then add the edge band",
        )
        self.from_alpha_button = setp(
            QPushButton("Trimap from current alpha"),
            toolTip="Solid where the alpha is 0 or 1, unknown in a band around the edge",
        )
        self.clear_button = setp(
            QPushButton("Clear trimap"), toolTip="Everything unknown (undoable)"
        )
        self.smart_check = setp(  # issue 13
            QCheckBox("Smart band"),
            toolTip="The band of GrabCut and 'From alpha' follows the edge: thin (a third of "
            "the width) on hard edges, up to twice as wide on hair and fur",
        )
        self.smart_check.toggled.connect(lambda on: setattr(controller, "smart_band", on))
        av.addWidget(self.smart_check)
        for b in (self.grabcut_button, self.from_alpha_button, self.clear_button):
            av.addWidget(b)
        self.band_slider.valueChanged.connect(controller.set_band)
        layout.addWidget(auto)
        layout.addStretch(1)
        controller.changed.connect(self.sync)
        self.sync()

    def sync(self) -> None:
        c = self.controller
        for key, b in self.value_buttons.items():
            b.setChecked(key == c.value)
        for key, b in self.tool_buttons.items():
            b.setChecked(key == c.tool)
        self.size_slider.blockSignals(True)
        self.size_slider.setValue(int(round(c.size)))
        self.size_slider.blockSignals(False)
        self.size_label.setText(f"{c.size:.0f} px")
        self.band_slider.blockSignals(True)
        self.band_slider.setValue(c.band)
        self.band_slider.blockSignals(False)
        self.band_label.setText(f"{c.band} px")
