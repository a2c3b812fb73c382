"""The annotation tool buttons and their settings: brush size, threshold range, fill tolerance,
paint-over limit and outline display."""

from __future__ import annotations

from PySide6.QtWidgets import (
    QButtonGroup,
    QCheckBox,
    QComboBox,
    QDoubleSpinBox,
    QFormLayout,
    QGridLayout,
    QGroupBox,
    QHBoxLayout,
    QToolButton,
    QWidget,
)

# name, button text, tip, shortcut
TOOLS = [
    ("navigate", "Navigate", "Move the crosshair (no editing)", ""),
    ("annotate.brush", "Brush", "Paint the active label (Shift: erase)", "B"),
    ("annotate.erase", "Eraser", "Erase labels (locked labels stay)", "X"),
    ("annotate.threshold", "Threshold", "Paint only where the intensity is inside the range", "T"),
    ("annotate.fill", "Fill", "Flood fill the clicked region in this slice (Shift: erase)", "G"),
    ("annotate.lasso", "Lasso", "Drag an outline; it is filled on release (Shift: erase)", "L"),
    ("annotate.level", "Level trace", "Fill the region inside the iso-intensity line under the click", "V"),
    ("annotate.ai", "AI assist", "Left click adds, right click removes, drag a box (or a scribble)", "Q"),
]

PAINT_OVER = [("all", "everything (unlocked)"), ("background", "background only"), ("label", "one label:")]


class ToolsGroup(QGroupBox):
    def __init__(self, state, session, parent: QWidget | None = None) -> None:
        super().__init__("Tools", parent)
        self.state = state
        self.session = session
        tl = QGridLayout(self)
        self.buttons: dict[str, QToolButton] = {}
        self.group = QButtonGroup(self)
        self.group.setExclusive(True)
        for n, (name, text, tip, key) in enumerate(TOOLS):
            b = QToolButton(self)
            b.setText(text)
            b.setToolTip(f"{tip} ({key})" if key else tip)
            b.setCheckable(True)
            b.clicked.connect(lambda _=False, nm=name: self.state.set_tool(nm))
            self.group.addButton(b)
            self.buttons[name] = b
            tl.addWidget(b, n // 4, n % 4)
        form = QFormLayout()
        self.radius_spin = QDoubleSpinBox(self)
        self.radius_spin.setRange(0.1, 100.0)
        self.radius_spin.setSingleStep(0.5)
        self.radius_spin.setSuffix(" mm")
        self.radius_spin.setValue(session.radius_mm)
        self.radius_spin.setToolTip("[ and ] make the brush smaller / larger")
        self.radius_spin.valueChanged.connect(lambda v: setattr(session, "radius_mm", float(v)))
        self.sphere_check = QCheckBox("3D sphere", self)
        self.sphere_check.toggled.connect(lambda on: setattr(session, "sphere", bool(on)))
        r = QHBoxLayout()
        r.addWidget(self.radius_spin)
        r.addWidget(self.sphere_check)
        form.addRow("Brush radius", r)
        self.thr_lo = QDoubleSpinBox(self)
        self.thr_hi = QDoubleSpinBox(self)
        for sp in (self.thr_lo, self.thr_hi):
            sp.setRange(-1e6, 1e6)
            sp.setDecimals(1)
            sp.valueChanged.connect(self._on_threshold)
        r = QHBoxLayout()
        r.addWidget(self.thr_lo)
        r.addWidget(self.thr_hi)
        form.addRow("Threshold", r)
        self.tol_spin = QDoubleSpinBox(self)
        self.tol_spin.setRange(0, 1e6)
        self.tol_spin.setToolTip("0: fill the clicked label's region (on background only an enclosed hole); "
                                 ">0: pixels within +- this intensity")
        self.tol_spin.valueChanged.connect(lambda v: setattr(session, "fill_tolerance", float(v)))
        form.addRow("Fill tolerance", self.tol_spin)
        self.over_combo = QComboBox(self)
        for key, text in PAINT_OVER:
            self.over_combo.addItem(text, key)
        self.over_label = QComboBox(self)
        self.over_label.setEnabled(False)
        self.over_combo.currentIndexChanged.connect(self._on_over)
        self.over_label.currentIndexChanged.connect(self._on_over)
        r = QHBoxLayout()
        r.addWidget(self.over_combo)
        r.addWidget(self.over_label)
        form.addRow("Paint over", r)
        self.outline_check = QCheckBox("Outline only", self)
        self.outline_check.setToolTip("Draw the labels as outlines (the image stays visible inside)")
        self.outline_check.toggled.connect(session.set_outline)
        form.addRow("Display", self.outline_check)
        tl.addLayout(form, 2, 0, 1, 4)

    def on_tool_changed(self, name: str) -> None:
        b = self.buttons.get(name)
        if b is not None:
            b.setChecked(True)
            return
        self.group.setExclusive(False)
        for btn in self.buttons.values():
            btn.setChecked(False)
        self.group.setExclusive(True)

    def _on_threshold(self) -> None:
        lo, hi = self.thr_lo.value(), self.thr_hi.value()
        self.session.threshold = (min(lo, hi), max(lo, hi))

    def set_threshold_from_window(self) -> None:
        w, lev = self.state.window
        self.thr_lo.setValue(lev - w / 2)
        self.thr_hi.setValue(lev + w / 2)

    def _on_over(self) -> None:
        key = self.over_combo.currentData()
        self.over_label.setEnabled(key == "label")
        self.session.paint_over = key
        v = self.over_label.currentData()
        self.session.paint_over_label = int(v) if v is not None else None

    def refresh_labels(self) -> None:
        lm = self.session.labelmap
        keep = self.over_label.currentData()
        self.over_label.blockSignals(True)
        self.over_label.clear()
        for v, lab in sorted((lm.labels if lm is not None else {}).items()):
            self.over_label.addItem(lab.name, v)
        i = self.over_label.findData(keep)
        self.over_label.setCurrentIndex(max(i, 0))
        self.over_label.blockSignals(False)
        self._on_over()

    def change_radius(self, factor: float) -> None:
        self.radius_spin.setValue(max(0.1, round(self.radius_spin.value() * factor, 1)))
