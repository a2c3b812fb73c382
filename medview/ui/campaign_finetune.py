"""Fine-tune from corrections as a background job: export folder + model family, a few minutes
of training (``medview.campaign.finetune``) with progress and Cancel, then both held-out
figures and whether the new version became active. The family's versions are listed with the
active one marked; any of them can be made active again (the old version stays selectable)."""

from __future__ import annotations

from typing import Any

from PySide6.QtWidgets import (
    QComboBox,
    QDoubleSpinBox,
    QFileDialog,
    QFormLayout,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QListWidget,
    QListWidgetItem,
    QProgressBar,
    QPushButton,
    QVBoxLayout,
    QWidget,
)

from medview.ui.workers import Worker, start


def finetune_job(recipe_id: str, export_dir: str, minutes: float, max_epochs: int | None = None,
                 progress=None, cancelled=None):
    from medview.campaign.finetune import finetune

    return finetune(recipe_id, export_dir, minutes=minutes, max_epochs=max_epochs, progress=progress,
                    cancelled=cancelled, log=lambda s: None)


class FinetunePanel(QWidget):
    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        from medview.training.recipes import RECIPES

        self.worker: Worker | None = None
        self.result: Any = None
        self.max_epochs: int | None = None  # tests: a one-epoch run
        form = QFormLayout()
        self.family_combo = QComboBox()
        for rid, r in RECIPES.items():
            if r.kind != "classification":
                self.family_combo.addItem(rid, rid)
        self.family_combo.currentIndexChanged.connect(lambda _i: self.refresh_versions())
        form.addRow("Model family", self.family_combo)
        self.export_edit = QLineEdit()
        browse = QPushButton("Browse...")
        browse.clicked.connect(self._browse)
        row = QHBoxLayout()
        row.addWidget(self.export_edit)
        row.addWidget(browse)
        form.addRow("Corrections (training export)", row)
        self.minutes_spin = QDoubleSpinBox()
        self.minutes_spin.setRange(0.1, 30.0)
        self.minutes_spin.setValue(3.0)
        self.minutes_spin.setSuffix(" min")
        form.addRow("Training time", self.minutes_spin)
        self.start_button = QPushButton("Fine-tune")
        self.start_button.clicked.connect(self.start)
        self.cancel_button = QPushButton("Cancel")
        self.cancel_button.setEnabled(False)
        self.cancel_button.clicked.connect(self.cancel)
        buttons = QHBoxLayout()
        buttons.addWidget(self.start_button)
        buttons.addWidget(self.cancel_button)
        self.progress = QProgressBar()
        self.progress.setRange(0, 1000)
        self.stage = QLabel("")
        self.stage.setWordWrap(True)
        self.result_label = QLabel("")
        self.result_label.setWordWrap(True)
        self.versions_list = QListWidget()
        self.activate_button = QPushButton("Make the selected version active")
        self.activate_button.clicked.connect(self.activate_selected)
        lay = QVBoxLayout(self)
        lay.addLayout(form)
        lay.addLayout(buttons)
        lay.addWidget(self.progress)
        lay.addWidget(self.stage)
        lay.addWidget(self.result_label)
        lay.addWidget(QLabel("Versions (* = active)"))
        lay.addWidget(self.versions_list)
        lay.addWidget(self.activate_button)
        self.refresh_versions()

    def _browse(self) -> None:
        d = QFileDialog.getExistingDirectory(self, "Training export with corrections", self.export_edit.text())
        if d:
            self.export_edit.setText(d)

    def family(self) -> str:
        return str(self.family_combo.currentData() or "")

    def refresh_versions(self) -> None:
        from medview.campaign import versions

        fam = self.family()
        active = versions.active_id(fam)
        self.versions_list.clear()
        for p in versions.versions(fam):
            held = (p.manifest.get("lineage") or {}).get("held_out") or {}
            fig = f"  held-out Dice {held['new']:.4f} (parent {held['parent']:.4f})" if held else ""
            li = QListWidgetItem(f"{'*' if p.id == active else '  '} {p.id}  {p.version}{fig}")
            li.setData(256, p.id)
            self.versions_list.addItem(li)

    def activate_selected(self) -> None:
        from medview.campaign import versions

        item = self.versions_list.currentItem()
        if item is not None:
            versions.set_active(self.family(), item.data(256), "chosen in the app")
            self.refresh_versions()

    def start(self) -> Worker | None:
        if not self.export_edit.text().strip():
            self.stage.setText("Choose the training export with the corrections first")
            return None
        w = Worker(finetune_job, self.family(), self.export_edit.text().strip(), self.minutes_spin.value(),
                   self.max_epochs)
        w.signals.progress.connect(self._on_progress)
        w.signals.finished.connect(self._on_finished)
        w.signals.failed.connect(self._on_failed)
        self.start_button.setEnabled(False)
        self.cancel_button.setEnabled(True)
        self.result_label.setText("")
        self.worker = start(w)
        return w

    def cancel(self) -> None:
        if self.worker is not None:
            self.worker.cancel()

    def _on_progress(self, fraction: float, stage: str) -> None:
        self.progress.setValue(int(1000 * fraction))
        self.stage.setText(stage)

    def _on_finished(self, res) -> None:
        self.result = res
        self.start_button.setEnabled(True)
        self.cancel_button.setEnabled(False)
        self.result_label.setText(res.summary())
        self.refresh_versions()

    def _on_failed(self, message: str) -> None:
        self.start_button.setEnabled(True)
        self.cancel_button.setEnabled(False)
        self.result_label.setText("cancelled: nothing was written" if message == "cancelled" else f"error: {message}")
