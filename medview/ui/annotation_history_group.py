"""Undo / redo buttons, the list of edits and the summary of changes against the AI labels."""

from __future__ import annotations

from PySide6.QtWidgets import QGroupBox, QHBoxLayout, QLabel, QListWidget, QPushButton, QVBoxLayout, QWidget


class HistoryGroup(QGroupBox):
    def __init__(self, session, parent: QWidget | None = None) -> None:
        super().__init__("History", parent)
        self.session = session
        lay = QVBoxLayout(self)
        row = QHBoxLayout()
        self.undo_button = QPushButton("Undo", self)
        self.undo_button.setToolTip("Ctrl+Z")
        self.undo_button.clicked.connect(session.undo)
        self.redo_button = QPushButton("Redo", self)
        self.redo_button.setToolTip("Ctrl+Y or Ctrl+Shift+Z")
        self.redo_button.clicked.connect(session.redo)
        row.addWidget(self.undo_button)
        row.addWidget(self.redo_button)
        lay.addLayout(row)
        self.list = QListWidget(self)
        self.list.setMaximumHeight(110)
        lay.addWidget(self.list)
        self.summary_label = QLabel("", self)
        self.summary_label.setWordWrap(True)
        lay.addWidget(self.summary_label)

    def refresh(self) -> None:
        h = self.session.history
        self.list.clear()
        if h is None:
            self.undo_button.setEnabled(False)
            self.redo_button.setEnabled(False)
            return
        for name in h.undo_names():
            self.list.addItem(name)
        for name in reversed(h.redo_names()):
            self.list.addItem(f"({name}: undone)")
        n = len(h.undo_names())
        if n:
            self.list.setCurrentRow(n - 1)
        self.undo_button.setEnabled(h.can_undo())
        self.redo_button.setEnabled(h.can_redo())
        self.list.setToolTip(f"undo memory: {h.nbytes / 1024:.1f} KiB")

    def refresh_summary(self) -> None:
        s = self.session
        if s.labelmap is None:
            self.summary_label.setText("")
            return
        p = s.labelmap.provenance
        stats = f"{p.strokes} edit(s), {p.undos} undo(s); {p.voxels_painted} voxels painted, {p.voxels_erased} erased"
        if p.ai_assisted:
            stats += "; AI-assisted: " + ", ".join(f"{n} with {k}" for k, n in p.ai_assisted.items())
        summ = s.summary()
        if summ is None:
            self.summary_label.setText(stats)
            return
        lines = [f"vs AI: {summ['voxels_changed']} voxels changed, Dice {summ['dice_all']:.3f}"]
        for r in summ["labels"]:
            lines.append(f"  {r['name']}: +{r['added']} / -{r['removed']} vox, Dice {r['dice']:.3f}")
        self.summary_label.setText("\n".join([*lines, stats]))
