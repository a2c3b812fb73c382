"""Export (NIfTI + JSON, DICOM SEG, training set) and import of label maps."""

from __future__ import annotations

from PySide6.QtWidgets import QGridLayout, QGroupBox, QPushButton, QWidget


class ExportGroup(QGroupBox):
    def __init__(self, panel, parent: QWidget | None = None) -> None:
        super().__init__("Export / import", parent)
        el = QGridLayout(self)
        self.nifti_button = QPushButton("NIfTI + JSON...", self)
        self.nifti_button.clicked.connect(panel._ask_export_nifti)
        self.seg_button = QPushButton("DICOM SEG...", self)
        self.seg_button.clicked.connect(panel._ask_export_seg)
        self.train_button = QPushButton("Add to training set...", self)
        self.train_button.clicked.connect(panel._ask_export_training)
        self.import_button = QPushButton("Import labels...", self)
        self.import_button.clicked.connect(panel._ask_import)
        el.addWidget(self.nifti_button, 0, 0)
        el.addWidget(self.seg_button, 0, 1)
        el.addWidget(self.train_button, 1, 0)
        el.addWidget(self.import_button, 1, 1)
