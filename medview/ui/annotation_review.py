"""Classification review: accept / reject / relabel a classifier's result, with a comment."""

from __future__ import annotations

from PySide6.QtWidgets import (
    QComboBox,
    QGroupBox,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QListWidget,
    QPushButton,
    QVBoxLayout,
    QWidget,
)


class ReviewGroup(QGroupBox):
    def __init__(self, panel, parent: QWidget | None = None) -> None:
        super().__init__("Classification review", parent)
        rl = QVBoxLayout(self)
        self.label = QLabel("No classification result to review.", self)
        self.label.setWordWrap(True)
        rl.addWidget(self.label)
        row = QHBoxLayout()
        self.accept_button = QPushButton("Accept", self)
        self.reject_button = QPushButton("Reject", self)
        self.relabel_button = QPushButton("Relabel as", self)
        self.relabel_combo = QComboBox(self)
        self.accept_button.clicked.connect(lambda: panel.review("accept"))
        self.reject_button.clicked.connect(lambda: panel.review("reject"))
        self.relabel_button.clicked.connect(lambda: panel.review("relabel", self.relabel_combo.currentText()))
        for w in (self.accept_button, self.reject_button, self.relabel_button, self.relabel_combo):
            row.addWidget(w)
        rl.addLayout(row)
        self.comment_edit = QLineEdit(self)
        self.comment_edit.setPlaceholderText("comment (optional)")
        rl.addWidget(self.comment_edit)
        self.list = QListWidget(self)
        self.list.setMaximumHeight(80)
        rl.addWidget(self.list)
        self.export_button = QPushButton("Export reviews (JSON + CSV)...", self)
        self.export_button.clicked.connect(panel._ask_export_reviews)
        rl.addWidget(self.export_button)

    def refresh(self, prediction, reviews) -> None:
        p = prediction
        on = p is not None and bool(getattr(p, "probabilities", None))
        for w in (self.accept_button, self.reject_button, self.relabel_button, self.relabel_combo, self.comment_edit):
            w.setEnabled(on)
        self.export_button.setEnabled(bool(reviews))
        if on:
            probs = ", ".join(f"{k} {v:.2f}" for k, v in sorted(p.probabilities.items(), key=lambda kv: -kv[1]))
            self.label.setText(f"{p.model_id} {p.model_version}: <b>{p.top_class}</b> ({probs})")
            self.relabel_combo.clear()
            self.relabel_combo.addItems([c for c in (p.classes or list(p.probabilities)) if c != p.top_class])
        self.list.clear()
        for r in reviews:
            txt = f"{r.decision}: {r.predicted} -> {r.final_label or '-'}"
            self.list.addItem(txt + (f" ({r.comment})" if r.comment else ""))
