"""Whole-label operations: islands, largest part, slice copy / interpolation, smoothing,
margins and hole filling in mm, grow from seeds (``medview.annotation.region_tools``)."""

from __future__ import annotations

from PySide6.QtWidgets import (
    QComboBox,
    QDoubleSpinBox,
    QGridLayout,
    QGroupBox,
    QPushButton,
    QSpinBox,
    QWidget,
)

from medview.annotation.region_tools import SMOOTHING


class RegionOpsGroup(QGroupBox):
    def __init__(self, session, parent: QWidget | None = None) -> None:
        super().__init__("Label operations", parent)
        s = self.session = session
        g = QGridLayout(self)
        self.islands_spin = QSpinBox(self)
        self.islands_spin.setRange(1, 10_000_000)
        self.islands_spin.setValue(50)
        self.islands_spin.setSuffix(" vox")
        self.islands_button = QPushButton("Remove islands <", self)
        self.islands_button.clicked.connect(lambda: s.remove_islands(self.islands_spin.value()))
        self.largest_button = QPushButton("Keep largest", self)
        self.largest_button.clicked.connect(s.keep_largest)
        self.interp_button = QPushButton("Interpolate slices", self)
        self.interp_button.setToolTip("Fill the gaps between slices that have the active label (active view's plane)")
        self.interp_button.clicked.connect(lambda: s.interpolate())
        self.copy_button = QPushButton("Copy previous slice", self)
        self.copy_button.clicked.connect(lambda: s.copy_previous_slice())
        g.addWidget(self.islands_button, 0, 0)
        g.addWidget(self.islands_spin, 0, 1)
        g.addWidget(self.largest_button, 1, 0)
        g.addWidget(self.interp_button, 1, 1)
        g.addWidget(self.copy_button, 2, 0)
        self.grow_button = QPushButton("Grow from seeds", self)
        self.grow_button.setToolTip("Paint strokes of two or more labels (object + surroundings), then grow them "
                                    "until they meet at an edge (this slice; Shift-click: 3D)")
        self.grow_button.clicked.connect(lambda: s.grow_from_seeds())
        g.addWidget(self.grow_button, 2, 1)
        self.smooth_combo = QComboBox(self)
        self.smooth_combo.addItems(list(SMOOTHING))
        self.smooth_mm = QDoubleSpinBox(self)
        self.smooth_mm.setRange(0.1, 50.0)
        self.smooth_mm.setValue(1.0)
        self.smooth_mm.setSuffix(" mm")
        self.smooth_button = QPushButton("Smooth", self)
        self.smooth_button.clicked.connect(lambda: s.smooth(self.smooth_combo.currentText(), self.smooth_mm.value()))
        g.addWidget(self.smooth_combo, 3, 0)
        g.addWidget(self.smooth_mm, 3, 1)
        g.addWidget(self.smooth_button, 4, 0)
        self.margin_mm = QDoubleSpinBox(self)
        self.margin_mm.setRange(0.1, 100.0)
        self.margin_mm.setValue(1.0)
        self.margin_mm.setSuffix(" mm")
        self.grow_mm_button = QPushButton("Dilate", self)
        self.grow_mm_button.clicked.connect(lambda: s.margin(self.margin_mm.value()))
        self.shrink_mm_button = QPushButton("Erode", self)
        self.shrink_mm_button.clicked.connect(lambda: s.margin(-self.margin_mm.value()))
        g.addWidget(self.margin_mm, 5, 0)
        g.addWidget(self.grow_mm_button, 5, 1)
        g.addWidget(self.shrink_mm_button, 6, 0)
        self.holes_button = QPushButton("Fill holes", self)
        self.holes_button.setToolTip("Fill the holes of the active label, slice by slice in the active view's plane")
        self.holes_button.clicked.connect(lambda: s.fill_holes())
        g.addWidget(self.holes_button, 6, 1)

    def buttons(self) -> list[QPushButton]:
        return [self.islands_button, self.largest_button, self.interp_button, self.copy_button, self.grow_button,
                self.smooth_button, self.grow_mm_button, self.shrink_mm_button, self.holes_button]
