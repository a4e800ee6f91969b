"""View controls: what the canvas shows, the overlay opacity, the background, the split slider,
and an alpha histogram (pyqtgraph). Nothing here re-runs an engine."""

from __future__ import annotations

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import Qt, Signal
from PySide6.QtGui import QColor
from PySide6.QtWidgets import (
    QButtonGroup,
    QColorDialog,
    QComboBox,
    QHBoxLayout,
    QLabel,
    QRadioButton,
    QSlider,
    QToolButton,
    QVBoxLayout,
    QWidget,
)

from mattestudio.core.document import Document
from mattestudio.types import BACKGROUND, FOREGROUND, UNKNOWN
from mattestudio.ui.display import TRIMAP_COLORS, histogram
from mattestudio.ui.qt_utils import setp
from mattestudio.ui.tasks import run_task

MODE_LABELS = (
    ("trimap", "Image + trimap", "The photo with the trimap tinted over it (1)"),
    ("alpha", "Alpha", "The alpha matte in grayscale: white = subject (2)"),
    ("composite", "Composite", "The cut-out over the chosen background (3)"),
    ("plain", "Trimap only", "The trimap itself: black, gray (edge) and white (4)"),
)

#: Overlay tint buttons: trimap value, label.
TINTS = (
    (FOREGROUND, "Fg", "foreground"),
    (UNKNOWN, "Edge", "edge band"),
    (BACKGROUND, "Bg", "background"),
)

BACKGROUNDS = (
    ("checker", "Checkerboard"),
    ("black", "Black"),
    ("white", "White"),
    ("blur", "Blurred original"),
    ("color", "Color..."),
    ("image", "Image..."),
)


class ViewPanel(QWidget):
    mode_changed = Signal(str)
    opacity_changed = Signal(float)
    colors_changed = Signal(object)  # {trimap value: (r, g, b)}
    split_changed = Signal(float)
    background_chosen = Signal(str)  # key from BACKGROUNDS; "color"/"image" ask the window for more

    def __init__(self, document: Document, parent=None):
        super().__init__(parent)
        self.document = document
        layout = QVBoxLayout(self)
        layout.setContentsMargins(4, 4, 4, 4)
        self.mode_group = QButtonGroup(self)
        self.mode_buttons = {}
        for key, text, tip in MODE_LABELS:
            b = setp(QRadioButton(text), toolTip=tip)
            self.mode_group.addButton(b)
            self.mode_buttons[key] = b
            layout.addWidget(b)
            b.toggled.connect(lambda on, k=key: on and self.mode_changed.emit(k))
        self.mode_buttons["trimap"].setChecked(True)

        row = QHBoxLayout()
        row.addWidget(QLabel("Overlay"))
        self.opacity = setp(
            QSlider(Qt.Orientation.Horizontal),
            minimum=0,
            maximum=100,
            value=45,
            toolTip="Opacity of the trimap tint",
        )
        self.opacity.valueChanged.connect(lambda v: self.opacity_changed.emit(v / 100.0))
        row.addWidget(self.opacity, 1)
        layout.addLayout(row)

        row = QHBoxLayout()
        self.colors = dict(TRIMAP_COLORS)
        self.color_buttons = {}
        row.addWidget(QLabel("Tints"))
        for value, text, what in TINTS:
            b = setp(QToolButton(), text=text, toolTip=f"Overlay color of the {what}")
            b.clicked.connect(lambda _=False, v=value: self._pick_color(v))
            self.color_buttons[value] = b
            row.addWidget(b)
        layout.addLayout(row)
        self._paint_color_buttons()

        row = QHBoxLayout()
        row.addWidget(QLabel("Background"))
        self.background = setp(
            QComboBox(), toolTip="What the composite is shown over (and exported over)"
        )
        for key, text in BACKGROUNDS:
            self.background.addItem(text, key)
        self.background.activated.connect(
            lambda i: self.background_chosen.emit(self.background.itemData(i))
        )
        row.addWidget(self.background, 1)
        layout.addLayout(row)

        row = QHBoxLayout()
        row.addWidget(QLabel("Split"))
        self.split = setp(
            QSlider(Qt.Orientation.Horizontal),
            minimum=0,
            maximum=100,
            value=0,
            toolTip="Composite mode: the original on the left of the split, the composite on the right",
        )
        self.split.valueChanged.connect(lambda v: self.split_changed.emit(v / 100.0))
        row.addWidget(self.split, 1)
        layout.addLayout(row)

        self.plot = pg.PlotWidget(background=None)
        self.plot.setMaximumHeight(120)
        self.plot.setMinimumHeight(80)
        self.plot.setMouseEnabled(False, False)
        self.plot.hideButtons()
        self.plot.setMenuEnabled(False)
        self.plot.getPlotItem().setTitle("Alpha histogram (soft pixels)", size="8pt")
        self.plot.getPlotItem().hideAxis("left")
        self.curve = pg.PlotCurveItem(
            np.array([0.0, 1.0]),
            np.array([0.0]),
            stepMode="center",
            fillLevel=0,
            brush=(90, 160, 230, 150),
            pen=pg.mkPen((90, 160, 230)),
        )
        self.plot.addItem(self.curve)
        self.plot.setXRange(0, 1, padding=0.02)
        layout.addWidget(self.plot)
        self.stats = setp(QLabel(), wordWrap=True)
        layout.addWidget(self.stats)
        layout.addStretch(1)
        document.result_changed.connect(self.refresh_histogram)
        self.refresh_histogram()

    def set_mode(self, mode: str) -> None:
        self.mode_buttons[mode].setChecked(True)

    def set_color(self, value: int, rgb: tuple[int, int, int]) -> None:
        self.colors[value] = (int(rgb[0]), int(rgb[1]), int(rgb[2]))
        self._paint_color_buttons()
        self.colors_changed.emit(dict(self.colors))

    def _pick_color(self, value: int) -> None:
        color = QColorDialog.getColor(QColor(*self.colors[value]), self, "Overlay color")
        if color.isValid():
            self.set_color(value, (color.red(), color.green(), color.blue()))

    def _paint_color_buttons(self) -> None:
        for value, b in self.color_buttons.items():
            r, g, bl = self.colors[value]
            fg = "black" if r * 0.3 + g * 0.59 + bl * 0.11 > 140 else "white"
            b.setStyleSheet(f"background: rgb({r},{g},{bl}); color: {fg}; padding: 2px 4px")

    def set_background_key(self, key: str) -> None:
        idx = self.background.findData(key)
        if idx >= 0:
            self.background.setCurrentIndex(idx)

    def refresh_histogram(self, *_) -> None:
        if self.document.result is None:
            self.curve.setData(np.array([0.0, 1.0]), np.array([0.0]))
            self.stats.setText("No result yet: Run (Ctrl+R) or turn on Live.")
            return
        res = self.document.result
        run_task(lambda: histogram(res.alpha), lambda h: self._show_histogram(res, *h))

    def _show_histogram(self, res, edges, counts, frac) -> None:
        if res is not self.document.result:
            return
        self.curve.setData(edges, counts.astype(float))
        took = f"{res.seconds:.2f} s" if res.seconds > 0 else "saved result"
        self.stats.setText(
            f"{res.engine}: {took}{' (coarse preview)' if res.scale != 1.0 else ''}; "
            f"{100 * frac:.1f}% of pixels partly transparent"
        )


def color_to_spec(color: QColor) -> tuple[float, float, float]:
    return (color.redF(), color.greenF(), color.blueF())
