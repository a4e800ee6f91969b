"""Engine picker and parameter form, built from the registry's EngineInfo.

Unavailable engines stay in the list, greyed out, with the reason as a tooltip and under the
list; for engines that need weights an "Import checkpoint..." button appears.
"""

from __future__ import annotations

import contextlib
import math
from typing import Any

from PySide6.QtCore import Qt, Signal
from PySide6.QtGui import QStandardItemModel
from PySide6.QtWidgets import (
    QCheckBox,
    QComboBox,
    QDoubleSpinBox,
    QFileDialog,
    QFormLayout,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QPushButton,
    QSpinBox,
    QVBoxLayout,
    QWidget,
)

from mattestudio.engines import registry
from mattestudio.errors import MattestudioError
from mattestudio.ui.engine_guide import advanced_box, engine_label, engine_tip, param_tip
from mattestudio.ui.qt_utils import setp

# Order in the picker: the Live engine first (the editor starts on it), then the best classical
# matte for a Run, then the others, fast ones first.
PREFERRED = ("closed-form", "information-flow", "knn", "large-kernel", "dim", "sim")


def engine_names() -> list[str]:
    names = registry.names()
    return sorted(
        names,
        key=lambda n: (PREFERRED.index(n) if n in PREFERRED else len(PREFERRED), names.index(n)),
    )


def device_text(name: str) -> str:
    """'CPU' or the GPU's name, without importing torch for classical engines."""
    try:
        info = registry.info(name)
    except Exception:
        return "CPU"
    if info.kind != "deep":
        return "CPU"
    try:
        from mattestudio.engines.deep.device import describe, select_device

        dev = select_device("auto")
        return "CPU" if dev.type == "cpu" else f"GPU: {describe(dev)}"
    except Exception:
        return "CPU"


class _ParamField:
    def __init__(self, param, widget: QWidget, getter, setter):
        self.param, self.widget, self.get, self.set = param, widget, getter, setter


def _make_field(p) -> _ParamField:
    tip = param_tip(p)  # what it does to the matte first (issue 13)
    if p.minimum is not None or p.maximum is not None:
        tip += f"\nRange: {p.minimum if p.minimum is not None else '-inf'} .. {p.maximum if p.maximum is not None else 'inf'}"
    tip += f"\nDefault: {p.default}"
    w: Any
    if p.choices:
        w = QComboBox()
        for c in p.choices:
            w.addItem(str(c), c)
        field = _ParamField(
            p, w, lambda: w.currentData(), lambda v: w.setCurrentIndex(max(w.findData(v), 0))
        )
    elif isinstance(p.default, bool):
        w = QCheckBox()
        field = _ParamField(p, w, w.isChecked, lambda v: w.setChecked(bool(v)))
    elif isinstance(p.default, int):
        w = QSpinBox()
        w.setRange(
            int(p.minimum if p.minimum is not None else -(10**9)),
            int(p.maximum if p.maximum is not None else 10**9),
        )
        field = _ParamField(p, w, w.value, lambda v: w.setValue(int(v)))
    elif isinstance(p.default, float) and not (
        p.minimum and p.maximum and p.maximum / max(p.minimum, 1e-300) > 1e4
    ):
        w = QDoubleSpinBox()
        w.setDecimals(4)
        w.setRange(
            p.minimum if p.minimum is not None else -1e9,
            p.maximum if p.maximum is not None else 1e9,
        )
        w.setSingleStep(0.01)
        field = _ParamField(p, w, w.value, lambda v: w.setValue(float(v)))
    else:  # strings, and floats spanning orders of magnitude (1e-7): typed as text, checked by Param.coerce
        w = QLineEdit()
        field = _ParamField(
            p, w, w.text, lambda v: w.setText(f"{v:g}" if isinstance(v, float) else str(v))
        )
    w.setToolTip(tip)
    field.set(p.default)
    return field


class EnginePanel(QWidget):
    engine_changed = Signal(str)
    #: A parameter was edited by the user (Live re-runs on it).
    params_changed = Signal()
    import_checkpoint = Signal(str)  # engine name

    def __init__(self, parent=None):
        super().__init__(parent)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(4, 4, 4, 4)
        self.combo = setp(QComboBox(), toolTip="Matting engine")
        # as wide as the panel, not as the longest "(unavailable)" entry
        self.combo.setSizeAdjustPolicy(
            QComboBox.SizeAdjustPolicy.AdjustToMinimumContentsLengthWithIcon
        )
        self.combo.setMinimumContentsLength(14)
        self.reasons: dict[str, str | None] = {}
        model = QStandardItemModel(self.combo)
        self.combo.setModel(model)
        for name in engine_names():
            try:
                reason = registry.unavailable_reason(name)
                info = registry.info(name)
                label = engine_label(name, info.display_name)  # issue 13: artist's names
                desc = engine_tip(name, info.description)
            except Exception as exc:
                reason, label, desc = str(exc), name, ""
            self.reasons[name] = reason
            self.combo.addItem(label if reason is None else f"{label} (unavailable)", name)
            item = model.item(self.combo.count() - 1)
            item.setToolTip(desc if reason is None else f"{desc}\nUnavailable: {reason}")
            if reason is not None:
                item.setFlags(item.flags() & ~Qt.ItemFlag.ItemIsEnabled)
        layout.addWidget(self.combo)
        self.good_at = setp(QLabel(), wordWrap=True)  # issue 13: what the engine is good at
        layout.addWidget(self.good_at)
        self.device_label = QLabel()
        self.reason_label = setp(QLabel(), wordWrap=True)
        self.reason_label.setStyleSheet("color: #c0392b")
        self.import_button = QPushButton("Import checkpoint...")
        self.import_button.clicked.connect(lambda: self.import_checkpoint.emit(self.engine))
        layout.addWidget(self.device_label)
        layout.addWidget(self.reason_label)
        layout.addWidget(self.import_button)
        self.form_host = QWidget()
        self.form = QFormLayout(self.form_host)
        # labels above their fields: the panel stays narrow, so the canvas keeps the room
        self.form.setRowWrapPolicy(QFormLayout.RowWrapPolicy.WrapAllRows)
        self.form.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(advanced_box(self.form_host))  # issue 13: solver params under Advanced
        reset = QHBoxLayout()
        self.reset_button = setp(
            QPushButton("Reset"), toolTip="Reset the engine's parameters to their defaults"
        )
        self.reset_button.clicked.connect(self._reset)
        reset.addStretch(1)
        reset.addWidget(self.reset_button)
        layout.addLayout(reset)
        layout.addStretch(1)
        self.fields: list[_ParamField] = []
        self.combo.currentIndexChanged.connect(self._rebuild)
        first = next((n for n in engine_names() if self.reasons.get(n) is None), None)
        if first is not None:
            self.set_engine(first)
        self._rebuild()

    @property
    def engine(self) -> str:
        return self.combo.currentData() or ""

    def set_engine(self, name: str) -> bool:
        idx = self.combo.findData(name)
        if idx < 0:
            return False
        self.combo.setCurrentIndex(idx)
        return True

    def _rebuild(self, *_):
        while self.form.rowCount():
            self.form.removeRow(0)
        self.fields = []
        name = self.engine
        reason = self.reasons.get(name)
        try:
            info = registry.info(name)
        except Exception:
            info = None
        self.good_at.setText(engine_tip(name, ""))  # issue 13
        self.reason_label.setText("" if reason is None else f"Unavailable: {reason}")
        self.reason_label.setVisible(reason is not None)
        self.import_button.setVisible(bool(info is not None and info.needs_checkpoint))
        self.device_label.setText(f"Device: {device_text(name)}" if reason is None else "")
        if info is not None:
            for p in info.params:
                if p.name == "checkpoint":
                    continue
                f = _make_field(p)
                label = QLabel(p.label or p.name.replace("_", " ").capitalize())
                label.setToolTip(f.widget.toolTip())
                self.form.addRow(label, f.widget)
                self.fields.append(f)
                _on_edit(f.widget, self.params_changed.emit)
        self.engine_changed.emit(name)

    def _reset(self) -> None:
        self.blockSignals(True)
        try:
            for f in self.fields:
                f.set(f.param.default)
        finally:
            self.blockSignals(False)
        self.params_changed.emit()

    def available(self) -> bool:
        return bool(self.engine) and self.reasons.get(self.engine) is None

    def params(self) -> dict[str, Any]:
        """The non-default parameters, coerced and range-checked (raises MattestudioError)."""
        out = {}
        for f in self.fields:
            v = f.param.coerce(f.get())
            if (
                isinstance(v, float)
                and isinstance(f.param.default, float)
                and math.isclose(v, f.param.default)
            ):
                continue
            if v != f.param.default:
                out[f.param.name] = v
        return out

    def params_raw(self) -> dict[str, Any]:
        """Like params(), but never raises (for saving settings)."""
        try:
            return self.params()
        except MattestudioError:
            return {}

    def set_params(self, values: dict) -> None:
        self.blockSignals(True)
        try:
            for f in self.fields:
                if f.param.name in values:
                    with contextlib.suppress(TypeError, ValueError):
                        f.set(values[f.param.name])
        finally:
            self.blockSignals(False)

    def refresh_availability(self) -> None:
        """Re-check reasons (after importing a checkpoint)."""
        model = self.combo.model()
        for i in range(self.combo.count()):
            name = self.combo.itemData(i)
            try:
                reason = registry.unavailable_reason(name)
            except MattestudioError as exc:
                reason = str(exc)
            self.reasons[name] = reason
            item = model.item(i)
            flags = item.flags()
            item.setFlags(
                flags | Qt.ItemFlag.ItemIsEnabled
                if reason is None
                else flags & ~Qt.ItemFlag.ItemIsEnabled
            )
            label = engine_label(name, registry.info(name).display_name)
            self.combo.setItemText(i, label if reason is None else f"{label} (unavailable)")
        self._rebuild()


def _on_edit(widget: QWidget, slot) -> None:
    """Call ``slot`` when the user has finished changing ``widget``'s value."""
    if isinstance(widget, QComboBox):
        widget.currentIndexChanged.connect(lambda *_: slot())
    elif isinstance(widget, QCheckBox):
        widget.toggled.connect(lambda *_: slot())
    elif isinstance(widget, (QSpinBox, QDoubleSpinBox)):
        widget.valueChanged.connect(lambda *_: slot())
    elif isinstance(widget, QLineEdit):
        widget.editingFinished.connect(slot)


def choose_checkpoint(parent, engine: str) -> str | None:
    path, _ = QFileDialog.getOpenFileName(
        parent,
        f"Import a {engine.upper()} checkpoint",
        "",
        "Checkpoints (*.pth *.pt *.ckpt *.tar *.safetensors);;All files (*)",
    )
    return path or None
