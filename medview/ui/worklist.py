"""PACS worklist: search a study source, open a study, send MedView's results back.

Every network call runs on a worker (``medview.ui.workers``), never on the GUI thread. Opening a
study retrieves it into the on-disk cache (``medview.pacs``: largest image series first, its
middle slice first, shown in the viewer as soon as it is on disk), then hands the cached study
folder to ``MainWindow.open_path`` - the same way a folder is opened, so the study browser,
loading and every panel work unchanged. A source that cannot be reached leaves one line in the
panel and lists the studies the cache can open offline.
"""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Optional

import numpy as np
from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import (
    QAbstractItemView,
    QComboBox,
    QDockWidget,
    QGridLayout,
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QLineEdit,
    QProgressBar,
    QPushButton,
    QTableWidget,
    QTableWidgetItem,
    QVBoxLayout,
    QWidget,
)

from medview.pacs import PacsError, StudyQuery, StudyResult, open_source
from medview.pacs.cache import DicomCache
from medview.pacs.source import SourceConfig, load_sources, parse_source
from medview.progress import check_cancelled
from medview.ui.workers import Worker, start

COLUMNS = ("Patient", "Patient ID", "Date", "Description", "Modalities", "Series", "MedView results")
MODALITIES = ("", "CT", "MR", "PT", "US", "CR", "DX", "MG", "NM", "XA", "SEG", "SR")


# ---- jobs (plain functions: run on a worker thread) ----------------------------------------------
def find_job(config: SourceConfig, cache: DicomCache, query: StudyQuery, progress=None, cancelled=None):
    """Studies matching ``query``, each with ``medview_results`` checked (series asked only for
    studies that hold a SEG or SR at all)."""
    src = open_source(config, cache)
    studies = src.find_studies(query)
    for i, st in enumerate(studies):
        check_cancelled(cancelled)
        st.medview_results = bool(st.may_have_results and src.medview_results(st.study_uid))
        if progress is not None:
            progress((i + 1) / len(studies), f"Checked {i + 1}/{len(studies)} studies for results")
    return studies


def middle_slice(path: Path) -> tuple[np.ndarray, Optional[tuple[float, float]]]:
    """The pixels (rescaled to stored units, e.g. HU) and pixel spacing of one DICOM file."""
    import pydicom

    ds = pydicom.dcmread(str(path))
    img = ds.pixel_array
    if img.ndim == 3 and getattr(ds, "SamplesPerPixel", 1) == 1:  # multi-frame: its middle frame
        img = img[img.shape[0] // 2]
    if getattr(ds, "SamplesPerPixel", 1) == 1:
        img = img.astype(np.float32) * np.float32(getattr(ds, "RescaleSlope", 1) or 1) \
            + np.float32(getattr(ds, "RescaleIntercept", 0) or 0)
    spacing = getattr(ds, "PixelSpacing", None)
    return img, (float(spacing[0]), float(spacing[1])) if spacing else None


def open_job(config: SourceConfig, cache: DicomCache, study: StudyResult, on_first=None, progress=None,
             cancelled=None) -> tuple[Path, list[str]]:
    """Retrieve a study into the cache; ``on_first(image, spacing)`` with the first middle slice.
    Returns the study folder and the SeriesInstanceUIDs of MedView's SEGs in it (newest last)."""
    src = open_source(config, cache)
    cache.remember_study(study)

    def first(path: Path) -> None:
        if on_first is not None:
            on_first(*middle_slice(path))

    src.retrieve_study(study.study_uid, progress, cancelled, on_first=first)
    segs = [s for s in src.study_series(study.study_uid) if s.modality == "SEG" and s.is_medview_result]
    segs.sort(key=lambda s: (s.number or 0, s.series_uid))
    return cache.study_dir(study.study_uid), [s.series_uid for s in segs]


def send_job(config: SourceConfig, cache: DicomCache, make_files, progress=None, cancelled=None) -> int:
    """Write DICOM objects with ``make_files(path)`` (a SEG, or an SR and the SEG it references:
    one path or several) into a temporary folder and store them on the source."""
    with tempfile.TemporaryDirectory(prefix="medview-send-") as tmp:
        made = make_files(Path(tmp) / "result.dcm")
        files = [Path(f) for f in (made if isinstance(made, (list, tuple)) else [made]) if f]
        check_cancelled(cancelled)
        return open_source(config, cache).store(files, progress)


# ---- the panel -------------------------------------------------------------------------------------
class WorklistPanel(QWidget):
    """Search fields, a study table, Open / Cancel, Send annotation / Send AI result."""

    searched = Signal(int)  # number of rows shown
    first_slice_shown = Signal()
    study_opened = Signal(str)  # the cached study folder handed to MainWindow.open_path
    sent = Signal(int)  # instances stored
    failed = Signal(str)  # one line (also shown in the panel)

    def __init__(self, main_window, cache: Optional[DicomCache] = None, parent=None) -> None:
        super().__init__(parent)
        self.win = main_window
        self.cache = cache or DicomCache.default()
        self.studies: list[StudyResult] = []
        self.opened_from: Optional[SourceConfig] = None  # where the open study came from (send target)
        self._jobs: dict[str, Worker] = {}  # "find" / "open" / "send": a new one replaces its own kind only
        self._extra_sources: dict[str, SourceConfig] = {}
        self._pending_seg: Optional[str] = None

        self.source_box = QComboBox(self)
        self.source_box.setEditable(True)
        self.source_box.setToolTip("A configured source, an http(s):// DICOMweb root or dicom://AET@HOST:PORT")
        self.patient_name = QLineEdit(self, placeholderText="name, e.g. DOE*")
        self.patient_id = QLineEdit(self, placeholderText="patient ID")
        self.date_from = QLineEdit(self, placeholderText="from YYYYMMDD")
        self.date_to = QLineEdit(self, placeholderText="to YYYYMMDD")
        self.modality = QComboBox(self)
        self.modality.addItems([m or "any" for m in MODALITIES])
        self.accession = QLineEdit(self, placeholderText="accession")
        for edit in (self.patient_name, self.patient_id, self.date_from, self.date_to, self.accession):
            edit.returnPressed.connect(self.search)
        self.search_button = QPushButton("Search", self)
        self.search_button.clicked.connect(self.search)

        self.table = QTableWidget(0, len(COLUMNS), self)
        self.table.setHorizontalHeaderLabels(COLUMNS)
        self.table.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
        self.table.setSelectionMode(QAbstractItemView.SelectionMode.SingleSelection)
        self.table.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        self.table.horizontalHeader().setSectionResizeMode(QHeaderView.ResizeMode.ResizeToContents)
        self.table.horizontalHeader().setStretchLastSection(True)
        self.table.cellDoubleClicked.connect(lambda row, _col: self.open_study(row))

        self.open_button = QPushButton("Open", self)
        self.open_button.clicked.connect(lambda: self.open_study(self.table.currentRow()))
        self.cancel_button = QPushButton("Cancel", self)
        self.cancel_button.clicked.connect(self.cancel)
        self.cancel_button.setEnabled(False)
        self.send_annotation_button = QPushButton("Send annotation (SEG)", self)
        self.send_annotation_button.clicked.connect(self.send_annotation)
        self.send_ai_button = QPushButton("Send AI result (SEG)", self)
        self.send_ai_button.clicked.connect(self.send_ai_result)
        self.send_sr_button = QPushButton("Send report (SR)", self)
        self.send_sr_button.setToolTip("The session's measurements and AI findings as a DICOM SR "
                                       "(with the SEG its segment volumes reference)")
        self.send_sr_button.clicked.connect(self.send_report)
        self.progress = QProgressBar(self)
        self.progress.setRange(0, 1000)
        self.status = QLabel("", self)
        self.status.setWordWrap(True)

        grid = QGridLayout()
        grid.addWidget(QLabel("Source"), 0, 0)
        grid.addWidget(self.source_box, 0, 1, 1, 3)
        grid.addWidget(self.patient_name, 1, 0, 1, 2)
        grid.addWidget(self.patient_id, 1, 2, 1, 2)
        grid.addWidget(self.date_from, 2, 0)
        grid.addWidget(self.date_to, 2, 1)
        grid.addWidget(self.modality, 2, 2)
        grid.addWidget(self.accession, 2, 3)
        buttons = QHBoxLayout()
        for b in (self.search_button, self.open_button, self.cancel_button):
            buttons.addWidget(b)
        send = QHBoxLayout()
        send.addWidget(self.send_annotation_button)
        send.addWidget(self.send_ai_button)
        send.addWidget(self.send_sr_button)
        layout = QVBoxLayout(self)
        layout.addLayout(grid)
        layout.addLayout(buttons)
        layout.addWidget(self.table, 1)
        layout.addWidget(self.progress)
        layout.addLayout(send)
        layout.addWidget(self.status)
        self.reload_sources()
        self._set_busy(False)

    # ---- sources ----------------------------------------------------------------------------------
    def reload_sources(self) -> None:
        """The combo lists the configured sources (settings) and any added with add_source."""
        current = self.source_box.currentText()
        try:
            names = sorted(load_sources())
        except PacsError as exc:
            names = []
            self._say(str(exc))
        self.source_box.clear()
        self.source_box.addItems(names + [n for n in self._extra_sources if n not in names])
        if current:
            self.source_box.setCurrentText(current)

    def add_source(self, config: SourceConfig) -> None:
        """Offer a source that is not in the settings (for this session) and select it."""
        self._extra_sources[config.name] = config
        self.reload_sources()
        self.source_box.setCurrentText(config.name)

    def current_config(self) -> SourceConfig:
        text = self.source_box.currentText().strip()
        if text in self._extra_sources:
            return self._extra_sources[text]
        return parse_source(text)

    def query(self) -> StudyQuery:
        mod = self.modality.currentText()
        return StudyQuery(patient_name=self.patient_name.text().strip(), patient_id=self.patient_id.text().strip(),
                          date_from=self.date_from.text().strip().replace("-", ""),
                          date_to=self.date_to.text().strip().replace("-", ""),
                          modality="" if mod == "any" else mod, accession=self.accession.text().strip())

    # ---- search -----------------------------------------------------------------------------------
    def search(self) -> None:
        try:
            cfg = self.current_config()
        except PacsError as exc:
            self._fail(str(exc))
            return
        warnings = cfg.warnings()
        self._say("; ".join(warnings) if warnings else f"Searching {cfg.describe()} ...")
        query = self.query()
        self._run("find", Worker(find_job, cfg, self.cache, query), self._on_found,
                  lambda msg, q=query: self._on_find_failed(msg, q))

    def _on_found(self, studies: list[StudyResult]) -> None:
        self._show(studies)
        self._say(f"{len(studies)} stud{'y' if len(studies) == 1 else 'ies'}")
        self.searched.emit(len(studies))

    def _on_find_failed(self, message: str, query: StudyQuery) -> None:
        if message == "cancelled":
            self._say("Cancelled")
            return
        cached = [s for s in self.cache.cached_studies() if query.matches(s)]
        self._show(cached)
        self._fail(f"{message}" + (f" - showing {len(cached)} stud{'y' if len(cached) == 1 else 'ies'} "
                                   "from the cache (offline)" if cached else ""))
        self.searched.emit(len(cached))

    def _show(self, studies: list[StudyResult]) -> None:
        self.studies = list(studies)
        self.table.setRowCount(len(studies))
        for row, st in enumerate(studies):
            date = st.study_date
            if len(date) == 8:
                date = f"{date[:4]}-{date[4:6]}-{date[6:]}"
            flag = {True: "yes", False: "", None: "?"}[st.medview_results]
            values = (st.patient_name.replace("^", " "), st.patient_id, date, st.description,
                      "/".join(st.modalities), str(st.n_series), flag)
            for col, text in enumerate(values):
                item = QTableWidgetItem(text)
                item.setToolTip(st.study_uid)
                self.table.setItem(row, col, item)
        if studies:
            self.table.selectRow(0)

    # ---- open ---------------------------------------------------------------------------------------
    def open_study(self, row: int) -> None:
        if not 0 <= row < len(self.studies):
            return
        study = self.studies[row]
        try:
            cfg = self.current_config()
        except PacsError as exc:
            self._fail(str(exc))
            return
        self.opened_from = cfg
        self.win.state.set_volume(None)  # the preview shows only while no volume is on screen
        w = Worker(open_job, cfg, self.cache, study)
        w.kwargs["on_first"] = lambda img, spacing: w.emit_event("first", (img, spacing))
        w.signals.event.connect(lambda _name, payload, w=w: self._on_first(w, payload))
        self._say(f"Retrieving {study.patient_name or study.patient_id} {study.study_date} ...")
        self._run("open", w, self._on_retrieved, self._fail)

    def _on_first(self, worker: Worker, payload) -> None:
        if worker is not self._jobs.get("open"):
            return
        img, spacing = payload
        self.win.viewer.show_preview(img, spacing)
        self.first_slice_shown.emit()

    def _on_retrieved(self, result: tuple[Path, list[str]]) -> None:
        folder, seg_uids = result
        self._say(f"Retrieved into the cache: {folder}")
        if seg_uids:  # once the study is open, MedView's newest SEG goes over the series it was drawn on
            self._pending_seg = seg_uids[-1]
            self.win.volume_loaded.connect(self._show_pending_seg)
        self.win.open_path(folder)
        self.study_opened.emit(str(folder))

    def _show_pending_seg(self, _volume) -> None:
        self.win.volume_loaded.disconnect(self._show_pending_seg)
        uid, self._pending_seg = self._pending_seg, None
        index = getattr(self.win, "index", None)
        seg = next((s for s in getattr(index, "series", []) if s.series_uid == uid), None)
        if seg is not None:
            self.win.open_series(seg)  # the viewer shows a SEG series as an overlay on its source

    # ---- send back -------------------------------------------------------------------------------------
    def send_annotation(self) -> None:
        from medview.pacs.results import annotation_seg

        panel = getattr(self.win, "annotation_panel", None)
        labelmap = getattr(getattr(panel, "session", None), "labelmap", None)
        if labelmap is None:
            self._fail("No annotation to send: draw or edit labels in the Annotation panel first")
            return
        self.send(lambda path, lm=labelmap: annotation_seg(lm, path))

    def send_ai_result(self) -> None:
        from medview.pacs.results import prediction_seg

        pred = getattr(getattr(self.win, "models_panel", None), "prediction", None)
        image = self.win.state.volume
        if pred is None or getattr(pred, "labels", None) is None or image is None:
            self._fail("No AI segmentation to send: run a segmentation model in the AI models panel first")
            return
        self.send(lambda path, p=pred, im=image: prediction_seg(p, im, path))

    def send_report(self) -> None:
        actions = getattr(self.win, "report_actions", None)
        if actions is None or self.win.state.volume is None:
            self._fail("No report to send: open a study first")
            return
        write = actions.sr_writer()
        if write is not None:
            self.send(write)

    def send(self, make_files) -> None:
        """Store what ``make_files(path)`` writes (a SEG, or an SR and its SEG) on the source the
        open study came from."""
        cfg = self.opened_from
        if cfg is None:
            try:
                cfg = self.current_config()
            except PacsError as exc:
                self._fail(str(exc))
                return
        self._say(f"Sending to {cfg.describe()} ...")
        self._run("send", Worker(send_job, cfg, self.cache, make_files), self._on_sent, self._fail)

    def _on_sent(self, n: int) -> None:
        self._say(f"Stored {n} instance(s); searching again")
        self.sent.emit(int(n))
        self.search()

    # ---- plumbing ------------------------------------------------------------------------------------
    def cancel(self) -> None:
        for job in list(self._jobs.values()):
            job.cancel()

    def _run(self, kind: str, worker: Worker, on_done, on_failed) -> None:
        if kind in self._jobs:
            self._jobs[kind].cancel()
        self._jobs[kind] = worker
        worker.signals.progress.connect(lambda f, s, w=worker: self._on_progress(w, f, s))
        worker.signals.finished.connect(lambda res, w=worker: self._finish(kind, w) and on_done(res))
        worker.signals.failed.connect(lambda msg, w=worker: self._finish(kind, w) and on_failed(msg))
        self._set_busy(True)
        start(worker)

    def _finish(self, kind: str, worker: Worker) -> bool:
        """True when ``worker`` is still the current job of its kind (a replaced one reports nothing)."""
        if self._jobs.get(kind) is not worker:
            return False
        del self._jobs[kind]
        self._set_busy(bool(self._jobs))
        return True

    def _on_progress(self, worker: Worker, fraction: float, stage: str) -> None:
        if worker in self._jobs.values():
            self.progress.setValue(int(1000 * max(0.0, min(1.0, fraction))))
            if stage:
                self.status.setText(stage)

    def _set_busy(self, busy: bool) -> None:
        was = self.cancel_button.isEnabled()
        self.cancel_button.setEnabled(busy)
        self.progress.setVisible(busy)
        if busy and not was:
            self.progress.setValue(0)

    def _say(self, text: str) -> None:
        self.status.setText(text)
        self.win.statusBar().showMessage(text, 8000)

    def _fail(self, message: str) -> None:
        if message == "cancelled":
            self._say("Cancelled")
            return
        self._say(message)
        self.failed.emit(message)

    def is_busy(self) -> bool:
        return bool(self._jobs)


def show_worklist(main_window, cache: Optional[DicomCache] = None) -> WorklistPanel:
    """The worklist as a dock of ``main_window`` (made once, then shown again)."""
    panel = getattr(main_window, "worklist", None)
    if panel is None:
        panel = WorklistPanel(main_window, cache)
        dock = QDockWidget("PACS worklist", main_window)
        dock.setObjectName("PACS_worklist")
        dock.setWidget(panel)
        main_window.addDockWidget(Qt.DockWidgetArea.BottomDockWidgetArea, dock)
        main_window.resizeDocks([dock], [300], Qt.Orientation.Vertical)  # the images keep most of the height
        main_window.worklist, main_window.worklist_dock = panel, dock
    main_window.worklist_dock.show()
    main_window.worklist_dock.raise_()
    return panel
