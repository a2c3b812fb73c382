""""Run on all": the campaign batch (``medview.campaign.batch.run_batch``, Dask workers) over a
folder of studies, with its own progress panel: counts done / failed / skipped, cases per
second, a table of every case as it finishes, Cancel (finished outputs stay; "resume" goes on
from them), and the ranked queue of the result (``worklist.json``) when it is done."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from PySide6.QtCore import Signal
from PySide6.QtWidgets import (
    QCheckBox,
    QComboBox,
    QFileDialog,
    QFormLayout,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QProgressBar,
    QPushButton,
    QSpinBox,
    QTableWidget,
    QTableWidgetItem,
    QVBoxLayout,
    QWidget,
)

from medview.ui.workers import Worker, start

COLUMNS = ("case", "status", "result", "uncertainty")


def batch_job(source: str, model: str, out: str, workers: int, tta: bool, resume: bool, unverified_ok: bool,
              on_record=None, progress=None, cancelled=None) -> dict[str, Any]:
    """The panel's job (runs on a worker thread): the same batch as `medview infer FOLDER`, then
    the worklist of the scored cases."""
    from medview.campaign import batch, cases, rank
    from medview.campaign.versions import resolve

    pkg = resolve(model)
    found, problems = cases.discover(source)
    job = batch.make_job(pkg, out, tta=tta and pkg.task == "segmentation", resume=resume,
                         unverified_ok=unverified_ok)
    res = batch.run_batch(found, job, problems=problems, workers=workers, on_record=on_record,
                          progress=progress, cancelled=cancelled)
    ranked = rank.worklist(res.records)
    worklist = str(rank.write_worklist(Path(out), ranked, job.model_record)[0]) if ranked else ""
    return {"counts": res.counts.text(), "seconds": res.seconds, "where": res.where, "cancelled": res.cancelled,
            "worklist": worklist, "failed": res.counts.failed, "out": out}


class BatchPanel(QWidget):
    worklist_ready = Signal(str)  # path of worklist.json

    def __init__(self, parent: QWidget | None = None, source: str = "") -> None:
        super().__init__(parent)
        self.worker: Worker | None = None
        self.result: dict[str, Any] | None = None
        form = QFormLayout()
        self.source_edit = QLineEdit(source)
        browse = QPushButton("Browse...")
        browse.clicked.connect(self._browse)
        row = QHBoxLayout()
        row.addWidget(self.source_edit)
        row.addWidget(browse)
        form.addRow("Folder of studies", row)
        self.model_combo = QComboBox()
        self._fill_models()
        form.addRow("Model", self.model_combo)
        self.out_edit = QLineEdit()
        form.addRow("Output folder", self.out_edit)
        self.workers_spin = QSpinBox()
        self.workers_spin.setRange(1, max(1, os.cpu_count() or 1) * 2)
        self.workers_spin.setValue(max(1, os.cpu_count() or 1))
        form.addRow("Workers", self.workers_spin)
        self.tta_check = QCheckBox("Uncertainty for ranking (segmenters: test-time flips)")
        self.tta_check.setChecked(True)
        self.resume_check = QCheckBox("Resume: skip cases already done with this model version")
        self.resume_check.setChecked(True)
        self.unverified_check = QCheckBox("Also images that state no modality (PNG, JPEG, NIfTI)")
        for w in (self.tta_check, self.resume_check, self.unverified_check):
            form.addRow(w)
        self.start_button = QPushButton("Run on all")
        self.start_button.clicked.connect(self.start)
        self.cancel_button = QPushButton("Cancel")
        self.cancel_button.setEnabled(False)
        self.cancel_button.clicked.connect(self.cancel)
        self.queue_button = QPushButton("Open ranked queue")
        self.queue_button.setEnabled(False)
        self.queue_button.clicked.connect(lambda: self.worklist_ready.emit(self.result["worklist"]))
        buttons = QHBoxLayout()
        for b in (self.start_button, self.cancel_button, self.queue_button):
            buttons.addWidget(b)
        self.progress = QProgressBar()
        self.progress.setRange(0, 1000)
        self.counts_label = QLabel("")
        self.table = QTableWidget(0, len(COLUMNS))
        self.table.setHorizontalHeaderLabels(list(COLUMNS))
        self.table.horizontalHeader().setStretchLastSection(True)
        lay = QVBoxLayout(self)
        lay.addLayout(form)
        lay.addLayout(buttons)
        lay.addWidget(self.progress)
        lay.addWidget(self.counts_label)
        lay.addWidget(self.table)
        self.source_edit.textChanged.connect(self._default_out)
        self.model_combo.currentIndexChanged.connect(self._default_out)
        self._default_out()

    def _fill_models(self) -> None:
        from medview.inference.package import discover_packages

        for p in discover_packages():
            if p.ok:
                self.model_combo.addItem(f"{p.id}  {p.version}  ({p.task})", p.id)

    def _browse(self) -> None:
        d = QFileDialog.getExistingDirectory(self, "Folder of studies", self.source_edit.text())
        if d:
            self.source_edit.setText(d)

    def _default_out(self) -> None:
        src, model = self.source_edit.text().strip(), self.model_combo.currentData()
        if src and model:
            from medview.campaign.commands import default_campaign_dir

            self.out_edit.setText(str(default_campaign_dir(Path(src), model)))

    def set_model(self, model_id: str) -> None:
        i = self.model_combo.findData(model_id)
        if i >= 0:
            self.model_combo.setCurrentIndex(i)

    # ---- run --------------------------------------------------------------------------------------
    def start(self) -> Worker | None:
        src, model, out = self.source_edit.text().strip(), self.model_combo.currentData(), self.out_edit.text()
        if not src or not model or not out:
            self.counts_label.setText("Choose a folder, a model and an output folder first")
            return None
        self.table.setRowCount(0)
        self.result = None
        self.queue_button.setEnabled(False)
        self.progress.setValue(0)
        self.counts_label.setText("starting the workers ...")
        w = Worker(batch_job, src, model, out, self.workers_spin.value(), self.tta_check.isChecked(),
                   self.resume_check.isChecked(), self.unverified_check.isChecked())
        w.kwargs["on_record"] = lambda rec, counts: w.emit_event(
            "record", (rec, counts.text(), counts.finished, counts.total))
        w.signals.event.connect(self._on_event)
        w.signals.finished.connect(self._on_finished)
        w.signals.failed.connect(self._on_failed)
        self.start_button.setEnabled(False)
        self.cancel_button.setEnabled(True)
        self.worker = start(w)
        return w

    def cancel(self) -> None:
        if self.worker is not None:
            self.worker.cancel()
            self.counts_label.setText(self.counts_label.text() + "  (cancelling ...)")

    def _on_event(self, name: str, payload) -> None:
        if name != "record":
            return
        rec, text, finished, total = payload
        r = self.table.rowCount()
        self.table.insertRow(r)
        unc = (rec.get("uncertainty") or {}).get("score")
        values = (rec.get("case", ""), rec.get("status", ""), rec.get("result") or rec.get("reason", ""),
                  "" if unc is None else f"{unc:.4f}")
        for c, v in enumerate(values):
            self.table.setItem(r, c, QTableWidgetItem(str(v)))
        self.progress.setValue(int(1000 * finished / max(total, 1)))
        self.counts_label.setText(text)

    def _on_finished(self, result: dict[str, Any]) -> None:
        self.result = result
        self.start_button.setEnabled(True)
        self.cancel_button.setEnabled(False)
        tail = " (cancelled; Resume goes on from the finished cases)" if result["cancelled"] else ""
        self.counts_label.setText(f"{result['counts']} in {result['seconds']:.1f} s, {result['where']}{tail}")
        self.queue_button.setEnabled(bool(result["worklist"]))

    def _on_failed(self, message: str) -> None:
        self.start_button.setEnabled(True)
        self.cancel_button.setEnabled(False)
        self.counts_label.setText(f"error: {message}")
