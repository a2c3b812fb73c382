"""The crash-recovery banner of the annotation panel (non-modal: never blocks start-up)."""

from __future__ import annotations

from PySide6.QtCore import Signal
from PySide6.QtWidgets import QFrame, QHBoxLayout, QLabel, QPushButton, QVBoxLayout, QWidget


class RecoveryBanner(QFrame):
    restore_requested = Signal()
    discard_requested = Signal()

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setStyleSheet("QFrame { background: #5a4500; color: white; border-radius: 4px; }")
        lay = QVBoxLayout(self)
        self.label = QLabel("", self)
        self.label.setWordWrap(True)
        lay.addWidget(self.label)
        row = QHBoxLayout()
        self.restore_button = QPushButton("Restore", self)
        self.restore_button.clicked.connect(self.restore_requested)
        self.discard_button = QPushButton("Discard", self)
        self.discard_button.clicked.connect(self.discard_requested)
        row.addWidget(self.restore_button)
        row.addWidget(self.discard_button)
        lay.addLayout(row)
        self.hide()


class SaveErrorBanner(QLabel):
    """Autosave failure (disk full, I/O error): shown at once, cleared when written again."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__("", parent)
        self.setWordWrap(True)
        self.setStyleSheet("QLabel { background: #8b1a1a; color: white; padding: 4px; border-radius: 4px; }")
        self.hide()
