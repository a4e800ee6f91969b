"""The Edge panel: Smooth, Feather, Contrast, Shift Edge and Decontaminate, with a live preview.

The sliders write ``Document.edges`` (a mattestudio.core.edges.EdgeAdjustments); the document
emits ``edges_changed`` and the canvases recompute their preview from the engine's last result,
off the GUI thread. The engine never re-runs for an edge change. ``install(window)`` adds the
panel, the Refine Edge brush action and the extra view modes to a MainWindow in one call, so the
window needs a single line for all of it.
"""

from __future__ import annotations

from PySide6.QtCore import Qt, QTimer
from PySide6.QtWidgets import (
    QCheckBox,
    QDoubleSpinBox,
    QGridLayout,
    QHBoxLayout,
    QLabel,
    QPushButton,
    QRadioButton,
    QSlider,
    QVBoxLayout,
    QWidget,
)

from mattestudio.core.document import Document
from mattestudio.core.edges import HELP, LIMITS, UNITS, EdgeAdjustments
from mattestudio.ui.qt_utils import setp

#: name -> (label, step); the slider moves in steps, the spin box takes any value in range.
SLIDERS = {
    "smooth": ("Smooth", 0.5),
    "feather": ("Feather", 0.5),
    "contrast": ("Contrast", 1.0),
    "shift_edge": ("Shift Edge", 0.25),
}
TIPS = {
    "smooth": "Smooth: " + HELP["smooth"] + ".",
    "feather": "Feather: " + HELP["feather"] + ".",
    "contrast": "Contrast: " + HELP["contrast"] + ".",
    "shift_edge": "Shift Edge: " + HELP["shift_edge"] + ".",
    "decontaminate": "Decontaminate colours: removes the old background's colour fringe from "
    "the cut-out's edge pixels. Amount 0 % keeps the photo's own colours, 100 % uses the "
    "estimated foreground colours. Affects the cut-out and composites, not the alpha.",
}


class _SliderRow:
    """A slider and a spin box showing one float value; the slider maps value / step to ints."""

    def __init__(self, name: str, label: str, step: float, on_change):
        lo, hi = LIMITS[name]
        self.name, self.step = name, step
        self.label = setp(QLabel(label), toolTip=TIPS[name])
        self.slider = setp(
            QSlider(Qt.Orientation.Horizontal),
            minimum=round(lo / step),
            maximum=round(hi / step),
            toolTip=TIPS[name],
        )
        self.spin = setp(
            QDoubleSpinBox(),
            minimum=lo,
            maximum=hi,
            singleStep=step,
            decimals=2,
            suffix=f" {UNITS[name]}",
            toolTip=TIPS[name],
            keyboardTracking=False,
        )
        self.slider.valueChanged.connect(lambda v: self._set(v * self.step, on_change))
        self.spin.valueChanged.connect(lambda v: self._set(v, on_change))

    def _set(self, value: float, on_change) -> None:
        self.show(value)
        on_change()

    def show(self, value: float) -> None:
        for w, v in ((self.slider, round(value / self.step)), (self.spin, value)):
            w.blockSignals(True)
            w.setValue(v)
            w.blockSignals(False)

    def value(self) -> float:
        return float(self.spin.value())


class EdgePanel(QWidget):
    """Edge sliders bound to a Document's edge adjustments."""

    def __init__(self, document: Document, parent=None):
        super().__init__(parent)
        self.document = document
        layout = QVBoxLayout(self)
        grid = QGridLayout()
        self.rows: dict[str, _SliderRow] = {}
        for i, (name, (label, step)) in enumerate(SLIDERS.items()):
            row = _SliderRow(name, label, step, self._changed)
            grid.addWidget(row.label, i, 0)
            grid.addWidget(row.slider, i, 1)
            grid.addWidget(row.spin, i, 2)
            self.rows[name] = row
        grid.setColumnStretch(1, 1)
        layout.addLayout(grid)

        self.decontaminate = setp(
            QCheckBox("Decontaminate colours"), checked=True, toolTip=TIPS["decontaminate"]
        )
        amount = QHBoxLayout()
        amount.addWidget(setp(QLabel("Amount"), toolTip=TIPS["decontaminate"]))
        self.amount = setp(
            QSlider(Qt.Orientation.Horizontal),
            minimum=0,
            maximum=100,
            value=100,
            toolTip=TIPS["decontaminate"],
        )
        self.amount_label = QLabel("100 %")
        self.amount_label.setMinimumWidth(44)
        amount.addWidget(self.amount, 1)
        amount.addWidget(self.amount_label)
        layout.addWidget(self.decontaminate)
        layout.addLayout(amount)
        self.decontaminate.toggled.connect(self._changed)
        self.amount.valueChanged.connect(self._changed)

        buttons = QHBoxLayout()
        self.reset_button = setp(
            QPushButton("Reset"),
            toolTip="Back to the engine's own alpha: every edge slider at 0, colours fully "
            "decontaminated",
        )
        self.reset_button.clicked.connect(self.reset)
        buttons.addStretch(1)
        buttons.addWidget(self.reset_button)
        layout.addLayout(buttons)
        self.note = setp(
            QLabel("Changes show at once; the engine does not re-run. Applied to every export."),
            wordWrap=True,
        )
        self.note.setStyleSheet("color: gray")
        layout.addWidget(self.note)
        layout.addStretch(1)
        document.edges_changed.connect(self.sync)
        self.sync()

    def edges(self) -> EdgeAdjustments:
        """The adjustments the controls show (always in range: the widgets clamp them)."""
        amount = self.amount.value() / 100.0 if self.decontaminate.isChecked() else 0.0
        return EdgeAdjustments(
            **{name: row.value() for name, row in self.rows.items()}, decontaminate=amount
        )

    def _changed(self, *_) -> None:
        self.amount.setEnabled(self.decontaminate.isChecked())
        self.amount_label.setText(f"{self.amount.value()} %")
        self.document.set_edges(self.edges())

    def sync(self) -> None:
        """Show the document's adjustments (after a project is opened or Reset)."""
        e = self.document.edges
        for name, row in self.rows.items():
            row.show(getattr(e, name))
        on = e.decontaminate > 0
        for w, setter, v in (
            (self.decontaminate, "setChecked", on),
            (self.amount, "setValue", round(100 * e.decontaminate) if on else self.amount.value()),
        ):
            w.blockSignals(True)
            getattr(w, setter)(v)
            w.blockSignals(False)
        self.amount.setEnabled(on)
        self.amount_label.setText(f"{self.amount.value()} %")

    def reset(self) -> None:
        self.amount.blockSignals(True)
        self.amount.setValue(100)
        self.amount.blockSignals(False)
        self.document.set_edges(EdgeAdjustments())
        self.sync()


# -- wiring into the main window ---------------------------------------------------------------------

#: Extra view modes: key -> (label, tooltip). The canvas computes them (ui.display.result_pixels, edge_pixels).
VIEW_MODES = (
    ("on-black", "On black", "The cut-out over black: shows light fringes and halos"),
    ("on-white", "On white", "The cut-out over white: shows dark fringes and lost detail"),
    ("edge", "Edge only", "The photo inside the unknown band only: where the engine decides"),
)


class _LatestOnly:
    """Recompute the canvases' previews for slider moves, one at a time: while one is being
    computed, further moves only mark it dirty, and one more runs when it lands. A fast drag then
    costs a few previews instead of a queue of stale ones lagging behind the slider."""

    def __init__(self, canvases):
        self.canvases = canvases
        self.busy = self.dirty = False
        for c in canvases:
            c.preview_ready.connect(self._landed)

    def request(self) -> None:
        if self.busy:
            self.dirty = True
            for c in self.canvases:
                c.preview_pending = True  # what is shown is stale; the next one is coming
            return
        self._start()

    def _start(self) -> None:
        self.busy, self.dirty = True, False
        for c in self.canvases:
            c.refresh_preview()
        self._landed()

    def _landed(self) -> None:
        if not self.busy or any(c.preview_pending for c in self.canvases):
            return
        self.busy = False
        if self.dirty:
            self._start()


def install(win) -> EdgePanel:
    """Add the Edge dock, the Refine Edge brush action and the extra view modes to ``win``."""
    from PySide6.QtGui import QKeySequence

    doc = win.document
    panel = EdgePanel(doc)
    win.edge_panel = panel
    dock = win._dock("Edge", panel, Qt.DockWidgetArea.RightDockWidgetArea)
    win.edge_dock = dock
    # A tab beside Engine and View, so the canvas keeps most of the window (issue 9).
    view_dock = next(d for d in win.docks if d.objectName() == "dock-view")
    win.tabifyDockWidget(view_dock, dock)
    win.docks.append(dock)
    win.docks[1].raise_()

    canvases = (win.canvas, win.result_view)
    throttle = _LatestOnly(canvases)
    win.edge_throttle = throttle
    doc.edges_changed.connect(throttle.request)
    # The edge-only view follows the trimap while you paint (coalesced like the overlay).
    timer = setp(QTimer(win), singleShot=True, interval=40)
    timer.timeout.connect(
        lambda: [c.refresh_preview() for c in canvases if getattr(c, "mode", "") == "edge"]
    )
    doc.trimap_changed.connect(lambda _bbox: timer.isActive() or timer.start())

    act = win._action(
        None,
        "Refine Edge brush",
        lambda: win.tools.set_tool("refine"),
        QKeySequence("H"),
        "Paint over hair or a soft edge: only pixels with an edge or mixed colours under the "
        "brush become unknown (H)",
    )
    win.refine_action = act
    menus = {a.menu().title(): a.menu() for a in win.menuBar().actions() if a.menu() is not None}
    if "&Tools" in menus:
        menus["&Tools"].addAction(act)

    vp = win.view_panel
    box = vp.layout()
    after = box.indexOf(vp.mode_buttons["composite"]) + 1
    for i, (key, text, tip) in enumerate(VIEW_MODES):
        b = setp(QRadioButton(text), toolTip=tip)
        vp.mode_group.addButton(b)
        vp.mode_buttons[key] = b
        box.insertWidget(after + i, b)
        b.toggled.connect(lambda on, k=key: on and vp.mode_changed.emit(k))
        win._action(
            menus.get("&View"),
            f"Show {text.lower()}",
            lambda _=False, k=key: vp.set_mode(k),
            str(4 + i),
            tip,
        )
    return panel
