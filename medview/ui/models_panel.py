"""AI models side panel: pick a model that fits the open series, run it in a worker, show results.

- The list shows every discovered package; those that do not fit the current series (modality,
  2D/3D, unusable package) are greyed with the reason.
- Run / Cancel; a progress bar with the core's stage names; errors as one line.
- Classification: probability bars with the top class, Grad-CAM / Grad-CAM++ heatmap layer for a
  chosen class with an opacity slider. Segmentation: label layer + legend with mL (mm2 for one
  2D image), optional TTA-uncertainty heatmap. Device and timing are shown.
- Work runs in ``medview.ui.workers.Worker`` with ``gui_worker=True`` (torch uses one thread,
  the GUI keeps a core). Results are cached per series + model version (``DEFAULT_CACHE``).

No torch import at module import or construction (start-up stays fast): the core is imported
when a model runs. ``install(main_window)`` adds the panel as the "AI models" tab.
"""

from __future__ import annotations

from typing import Any

from PySide6.QtCore import QRectF, QSize, Qt, Signal
from PySide6.QtGui import QColor, QFont, QFontMetrics, QPainter, QPalette
from PySide6.QtWidgets import (
    QCheckBox,
    QComboBox,
    QFormLayout,
    QGroupBox,
    QHBoxLayout,
    QLabel,
    QListWidget,
    QListWidgetItem,
    QProgressBar,
    QPushButton,
    QSizePolicy,
    QSlider,
    QTableWidget,
    QTableWidgetItem,
    QVBoxLayout,
    QWidget,
)

from medview.inference.grading import grade_text as grading_text
from medview.inference.prediction import label_size_text
from medview.ui.grade_scale import GradeScale
from medview.ui.viewer_state import HeatmapLayer, LabelLayer, ViewerState
from medview.ui.workers import Worker, start

LABEL_LAYER = "AI segmentation"
HEAT_LAYER = "AI heatmap"
DEVICES = ("auto", "cpu", "cuda", "mps")


class ProbabilityBars(QWidget):
    """Horizontal bars, one per class, the top class in bold."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.values: list[tuple[str, float]] = []
        self.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Fixed)

    def set_values(self, values: dict[str, float] | None) -> None:
        self.values = list((values or {}).items())
        self.setFixedHeight(max(1, len(self.values)) * 20 + 4)
        self.update()

    def sizeHint(self) -> QSize:  # noqa: N802 - Qt API
        return QSize(220, max(1, len(self.values)) * 20 + 4)

    def paintEvent(self, ev) -> None:  # noqa: N802 - Qt API
        if not self.values:
            return
        p = QPainter(self)
        p.setRenderHint(QPainter.RenderHint.Antialiasing)
        top = max(range(len(self.values)), key=lambda i: self.values[i][1])
        bold = QFont(self.font())
        bold.setBold(True)
        bold_metrics = QFontMetrics(bold)  # the top class is bold, hence wider: measure it so
        name_w = min(max(120, self.width() // 2),
                     max(bold_metrics.horizontalAdvance(n) for n, _ in self.values) + 8)
        bar_w = max(10, self.width() - name_w - 52)
        text = self.palette().color(QPalette.ColorRole.WindowText)
        for i, (name, v) in enumerate(self.values):
            y = 2 + i * 20
            f = QFont(self.font())
            f.setBold(i == top)
            p.setFont(f)
            p.setPen(text)
            shown = p.fontMetrics().elidedText(name, Qt.TextElideMode.ElideMiddle, name_w - 4)
            p.drawText(QRectF(0, y, name_w - 4, 18), Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter, shown)
            p.setPen(Qt.PenStyle.NoPen)
            p.setBrush(QColor(120, 120, 120, 60))
            p.drawRect(QRectF(name_w, y + 3, bar_w, 12))
            p.setBrush(QColor(230, 120, 30) if i == top else QColor(70, 130, 200))
            p.drawRect(QRectF(name_w, y + 3, bar_w * max(0.0, min(1.0, float(v))), 12))
            p.setPen(text)
            p.drawText(QRectF(name_w + bar_w + 4, y, 48, 18), Qt.AlignmentFlag.AlignVCenter, f"{v:.3f}")
        p.end()


class ModelsPanel(QWidget):
    prediction_ready = Signal(object)  # Prediction (also after a cache hit)
    run_failed = Signal(str)

    def __init__(self, state: ViewerState, main_window: Any = None, parent: QWidget | None = None,
                 cache: Any = None, background: bool = False) -> None:
        super().__init__(parent)
        self.state = state
        self.main_window = main_window
        self._cache = cache  # None: the core's DEFAULT_CACHE (resolved lazily)
        self.packages: list[Any] = []
        self.worker: Worker | None = None
        self._job_volume = None
        self.prediction = None
        self._options_for: tuple | None = None

        lay = QVBoxLayout(self)
        lay.setContentsMargins(4, 4, 4, 4)

        head = QHBoxLayout()
        head.addWidget(QLabel("<b>Models for this series</b>"))
        head.addStretch(1)
        self.refresh_button = QPushButton("Refresh")
        self.refresh_button.setToolTip("Look for model packages again (bundled, user folder, $MEDVIEW_MODELS)")
        self.refresh_button.clicked.connect(self.refresh_packages)
        head.addWidget(self.refresh_button)
        lay.addLayout(head)

        self.list = QListWidget()
        self.list.setMinimumHeight(90)
        self.list.setWordWrap(True)
        self.list.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
        self.list.currentItemChanged.connect(lambda *_: self._on_selection())
        lay.addWidget(self.list)
        self.info_label = QLabel("")
        self.info_label.setWordWrap(True)
        lay.addWidget(self.info_label)

        opts = QFormLayout()
        self.explain_combo = QComboBox()
        self.explain_combo.addItems(["Grad-CAM", "Grad-CAM++", "none"])
        self.cam_class_combo = QComboBox()
        self.cam_class_combo.setToolTip("Class the heatmap explains (default: the top class)")
        self.tta_check = QCheckBox("Uncertainty map (test-time flips)")
        self.device_combo = QComboBox()
        self.device_combo.addItems(DEVICES)
        # `medview --device X` wins for this session; else the saved choice (settings.json)
        from medview.app_logging import load_settings

        dev = getattr(main_window, "device", None) or load_settings().get("inference_device")
        if dev:
            if self.device_combo.findText(str(dev)) < 0:
                self.device_combo.addItem(str(dev))
            self.device_combo.setCurrentText(str(dev))
        self.device_combo.setToolTip("auto = CUDA, then Apple MPS, then CPU; the choice is remembered")
        self.device_combo.currentTextChanged.connect(self._save_device)
        opts.addRow("Explain", self.explain_combo)
        opts.addRow("Class", self.cam_class_combo)
        opts.addRow("", self.tta_check)
        opts.addRow("Device", self.device_combo)
        lay.addLayout(opts)

        runrow = QHBoxLayout()
        self.run_button = QPushButton("Run")
        self.run_button.clicked.connect(self.run_selected)
        self.cancel_button = QPushButton("Cancel")
        self.cancel_button.clicked.connect(self.cancel)
        self.cancel_button.setEnabled(False)
        runrow.addWidget(self.run_button)
        runrow.addWidget(self.cancel_button)
        lay.addLayout(runrow)
        self.progress = QProgressBar()
        self.progress.setRange(0, 1000)
        self.progress.setTextVisible(True)
        self.progress.setFormat("idle")
        lay.addWidget(self.progress)
        self.error_label = QLabel("")
        self.error_label.setWordWrap(True)
        self.error_label.setStyleSheet("color: #c0392b")
        lay.addWidget(self.error_label)

        # results
        self.results = QGroupBox("Result")
        rl = QVBoxLayout(self.results)
        self.verify_label = QLabel("")  # "input not verified for this model: ..." on an unverified input
        self.verify_label.setWordWrap(True)
        self.verify_label.setStyleSheet("color: #c87800; font-weight: bold")
        rl.addWidget(self.verify_label)
        self.top_label = QLabel("")
        self.top_label.setWordWrap(True)
        rl.addWidget(self.top_label)
        self.grade_scale = GradeScale()  # graded models: the grade on its scale, value marked
        self.grade_scale.setVisible(False)
        rl.addWidget(self.grade_scale)
        self.bars = ProbabilityBars()
        rl.addWidget(self.bars)
        self.legend = QTableWidget(0, 3)
        self.legend.setHorizontalHeaderLabels(["", "label", "size"])
        self.legend.verticalHeader().setVisible(False)
        self.legend.horizontalHeader().setStretchLastSection(True)
        self.legend.setColumnWidth(0, 22)
        self.legend.setEditTriggers(QTableWidget.EditTrigger.NoEditTriggers)
        self.legend.setMaximumHeight(140)
        rl.addWidget(self.legend)
        op = QHBoxLayout()
        op.addWidget(QLabel("Overlay opacity"))
        self.opacity_slider = QSlider(Qt.Orientation.Horizontal)
        self.opacity_slider.setRange(0, 100)
        self.opacity_slider.setValue(50)
        self.opacity_slider.valueChanged.connect(self._on_opacity)
        op.addWidget(self.opacity_slider)
        rl.addLayout(op)
        self.heat_check = QCheckBox("Show heatmap")
        self.heat_check.setChecked(True)
        self.heat_check.toggled.connect(lambda on: self._set_layer_visible(HEAT_LAYER, on))
        rl.addWidget(self.heat_check)
        act = QHBoxLayout()
        self.edit_button = QPushButton("Edit labels")
        self.edit_button.setToolTip("Correct the AI segmentation in the Annotation panel")
        self.edit_button.clicked.connect(self._edit_labels)
        self.review_button = QPushButton("Review")
        self.review_button.setToolTip("Accept / reject / relabel this classification in the Annotation panel")
        self.review_button.clicked.connect(self._review)
        act.addWidget(self.edit_button)
        act.addWidget(self.review_button)
        rl.addLayout(act)
        self.run_info = QLabel("")
        self.run_info.setWordWrap(True)
        self.run_info.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        rl.addWidget(self.run_info)
        lay.addWidget(self.results)
        lay.addStretch(1)
        note = QLabel("<i>Research use only, not for diagnosis.</i>")
        lay.addWidget(note)

        self._show_prediction(None)
        self.state.volume_changed.connect(self._on_volume)
        if background:  # the app: hashing every package's weights must not delay the first paint
            self.refresh_packages_in_background()
        else:
            self.refresh_packages()

    # ---- packages ---------------------------------------------------------------------------------
    @property
    def cache(self):
        if self._cache is None:
            from medview.inference.pipeline import DEFAULT_CACHE

            self._cache = DEFAULT_CACHE
        return self._cache

    def refresh_packages(self) -> None:
        from medview.inference.package import discover_packages

        self.packages = discover_packages()
        self._fill_list()

    def refresh_packages_in_background(self) -> None:
        """Discover packages (manifests + weights sha256) on a worker; the list says so meanwhile."""
        from medview.inference.package import discover_packages
        from medview.ui.workers import run_job

        self.list.clear()
        waiting = QListWidgetItem("Checking model packages ...")
        waiting.setFlags(Qt.ItemFlag.NoItemFlags)
        self.list.addItem(waiting)

        def done(packages) -> None:
            self.packages = packages
            self._fill_list()

        def failed(msg: str) -> None:
            self.list.clear()
            self.list.addItem(QListWidgetItem(f"Model packages could not be listed: {msg}"))

        self._discover_worker = run_job(discover_packages, pass_progress=False, on_finished=done, on_failed=failed)

    def _fill_list(self) -> None:
        current = self.selected_package()
        self.list.blockSignals(True)
        self.list.clear()
        vol = self.state.volume
        first_ok = None
        self._checks = {}
        for pkg in self.packages:
            if pkg.ok and pkg.task == "interactive-segmentation":
                continue  # runs from prompts: the annotation panel's AI assist tool
            verified = False
            if vol is not None:
                chk = pkg.check_input(vol)
                self._checks[str(pkg.path)] = chk
                fits, verified = not chk.refused, chk.ok
                why = chk.note() if chk.verdict == "unverified" else chk.reason
            else:
                fits, why = pkg.ok, (pkg.reason if not pkg.ok else "")
            text = f"{pkg.name}  v{pkg.version}" if pkg.ok else f"{pkg.id}"
            kind = {"classification": "classifier", "segmentation": "segmentation", "regression": "regression"}
            text += f"  [{kind.get(pkg.task, pkg.task or '?')}, {pkg.dims}D]" if pkg.ok else "  [unusable]"
            if why:
                text += f"\n    {why}" + ("; select it to run anyway" if fits else "")
            item = QListWidgetItem(text)
            item.setData(Qt.ItemDataRole.UserRole, pkg)
            item.setToolTip(f"{pkg.path}\n{why}" if why else str(pkg.path))
            if not fits:
                item.setFlags(item.flags() & ~Qt.ItemFlag.ItemIsEnabled & ~Qt.ItemFlag.ItemIsSelectable)
            elif not verified and vol is not None:
                item.setForeground(QColor(200, 120, 0))
            self.list.addItem(item)
            # only a verified model is preselected; an unverified one runs only when the user picks it
            if verified and (first_ok is None or (current is not None and pkg.path == current.path)):
                first_ok = item
        if first_ok is None:
            self.list.setCurrentItem(None)
        self.list.blockSignals(False)
        if first_ok is not None:
            self.list.setCurrentItem(first_ok)
        self._on_selection()

    def input_check(self, pkg):
        """The acceptance check of ``pkg`` on the open series (None without a series)."""
        if pkg is None or self.state.volume is None:
            return None
        chk = getattr(self, "_checks", {}).get(str(pkg.path))
        return chk if chk is not None else pkg.check_input(self.state.volume)

    def item_for(self, model_id: str) -> QListWidgetItem | None:
        for i in range(self.list.count()):
            it = self.list.item(i)
            if it.data(Qt.ItemDataRole.UserRole).id == model_id:
                return it
        return None

    def is_enabled(self, model_id: str) -> bool:
        it = self.item_for(model_id)
        return it is not None and bool(it.flags() & Qt.ItemFlag.ItemIsEnabled)

    def selected_package(self):
        it = self.list.currentItem() if hasattr(self, "list") else None
        if it is None or not (it.flags() & Qt.ItemFlag.ItemIsEnabled):
            return None
        return it.data(Qt.ItemDataRole.UserRole)

    def select(self, model_id: str) -> bool:
        it = self.item_for(model_id)
        if it is None or not (it.flags() & Qt.ItemFlag.ItemIsEnabled):
            return False
        self.list.setCurrentItem(it)
        return True

    def _on_selection(self) -> None:
        pkg = self.selected_package()
        busy = self.worker is not None
        self.run_button.setEnabled(pkg is not None and self.state.volume is not None and not busy)
        is_cls = pkg is not None and pkg.task == "classification"
        self.explain_combo.setEnabled(is_cls and bool(pkg.gradcam_layer))
        self.cam_class_combo.setEnabled(is_cls)
        self.tta_check.setEnabled(pkg is not None and pkg.task == "segmentation")
        key = (str(pkg.path), pkg.sha256) if pkg is not None else None
        if key != self._options_for:  # keep the user's choices while the same model stays selected
            self._options_for = key
            self.cam_class_combo.clear()
            if is_cls:
                self.cam_class_combo.addItem("top class")
                self.cam_class_combo.addItems(pkg.classes)
        chk = self.input_check(pkg)
        if pkg is None and self.state.volume is not None and any(
                c.verdict == "unverified" for c in getattr(self, "_checks", {}).values()):
            self.info_label.setText("No model is verified for this series (it does not say what it shows); "
                                    "select one to run it anyway.")
        elif pkg is None:
            self.info_label.setText("No model fits this series." if self.state.volume is not None and self.packages
                                    else ("Open an image to run a model." if self.packages else
                                          "No model packages found."))
        else:
            mods = ", ".join(m or "unknown" for m in pkg.modalities) or "any"
            parts = [pkg.task, f"{pkg.dims}D", f"modality {mods}"]
            body = pkg.manifest.get("body_part")
            if body:
                parts.append(str(body))
            text = f"{pkg.id} v{pkg.version}: " + "; ".join(parts)
            if chk is not None and chk.verdict == "unverified":
                text += f"\n{chk.note()}"
            self.info_label.setText(text)

    # ---- running ---------------------------------------------------------------------------------
    def options(self) -> dict[str, Any]:
        pkg = self.selected_package()
        cam = None
        cam_class = None
        if pkg is not None and pkg.task == "classification" and self.explain_combo.isEnabled():
            cam = {"Grad-CAM": "gradcam", "Grad-CAM++": "gradcam++"}.get(self.explain_combo.currentText())
            if self.cam_class_combo.currentIndex() > 0:
                cam_class = self.cam_class_combo.currentText()
        tta = bool(pkg is not None and pkg.task == "segmentation" and self.tta_check.isChecked())
        dev = self.device_combo.currentText()
        return {"cam": cam, "cam_class": cam_class, "tta": tta, "device": None if dev == "auto" else dev}

    def run_selected(self) -> Worker | None:
        from medview.inference.pipeline import run_model

        pkg = self.selected_package()
        vol = self.state.volume
        if pkg is None or vol is None or self.worker is not None:
            return None
        self.error_label.setText("")
        self._job_volume = vol
        chk = self.input_check(pkg)
        # the user selected this model: an unverified input runs, and its result says so
        unverified_ok = chk is not None and chk.verdict == "unverified"
        w = Worker(run_model, pkg, vol, gui_worker=True, cache=self.cache, unverified_ok=unverified_ok,
                   **self.options())
        w.signals.progress.connect(self._on_progress)
        w.signals.finished.connect(lambda pred, w=w: self._on_finished(w, pred))
        w.signals.failed.connect(lambda msg, w=w, pkg=pkg: self._on_failed(w, pkg, msg))
        self.worker = w
        self.run_button.setEnabled(False)
        self.cancel_button.setEnabled(True)
        self.progress.setValue(0)
        self.progress.setFormat(f"{pkg.id}: starting")
        return start(w)

    def cancel(self) -> None:
        if self.worker is not None:
            self.worker.cancel()
            self.progress.setFormat("cancelling ...")

    def _on_progress(self, fraction: float, stage: str) -> None:
        if self.sender() is not None and self.worker is not None and self.sender() is not self.worker.signals:
            return
        self.progress.setFormat(f"%p%  {stage}")
        self.progress.setValue(int(round(1000 * max(0.0, min(1.0, fraction)))))

    def _job_done(self, worker: Worker) -> bool:
        if worker is not self.worker:
            return False
        self.worker = None
        self.cancel_button.setEnabled(False)
        self._on_selection()
        return True

    def _on_finished(self, worker: Worker, pred) -> None:
        if not self._job_done(worker):
            return
        self.progress.setValue(1000)
        self.progress.setFormat("done (cached)" if pred.from_cache else "done")
        if self.state.volume is not self._job_volume:
            return  # the series changed while it ran; the result belongs to another image
        self._show_prediction(pred)
        self.prediction_ready.emit(pred)

    def _on_failed(self, worker: Worker, pkg, message: str) -> None:
        if not self._job_done(worker):
            return
        self.progress.setValue(0)
        if message == "cancelled":
            self.progress.setFormat("cancelled")
            self.error_label.setText("")
            return
        self.progress.setFormat("failed")
        text = message.splitlines()[0] if message else "failed"
        self.error_label.setText(f"{pkg.id}: {text}" if pkg.id not in text else text)
        self.run_failed.emit(self.error_label.text())

    # ---- results ---------------------------------------------------------------------------------
    def _clear_layers(self) -> None:
        for name in (LABEL_LAYER, HEAT_LAYER):
            if self.state.layer(name) is not None:
                self.state.remove_layer(name)

    def _show_prediction(self, pred) -> None:
        self.prediction = pred
        has = pred is not None
        self.results.setVisible(has)
        if not has:
            return
        self._clear_layers()
        note = "" if pred.input_verified else str(pred.input_check.get("note") or "input not verified for this model")
        self.verify_label.setText(note)
        self.verify_label.setVisible(bool(note))
        opacity = self.opacity_slider.value() / 100.0
        if pred.probabilities or pred.values:
            vals = pred.probabilities or pred.values
            self.bars.set_values(pred.probabilities)
            self.bars.setVisible(bool(pred.probabilities))
            grading = getattr(pred, "grading", None)
            self.grade_scale.set_grading(grading)
            if grading:  # "KL 2.4: minimal (KL2, p 0.61); OA present: yes (p 0.83 >= 0.50)"
                self.top_label.setText(f"<b>{grading_text(grading)}</b>")
            elif pred.top_class:
                self.top_label.setText(f"<b>{pred.top_class}</b> ({pred.probabilities[pred.top_class]:.1%})")
            else:
                self.top_label.setText(", ".join(f"{k}: {v:.4g}" for k, v in vals.items()))
        else:
            self.bars.set_values(None)
            self.bars.setVisible(False)
            self.grade_scale.set_grading(None)
            self.top_label.setText("")
        self.legend.setVisible(pred.labels is not None)
        self.legend.setRowCount(0)
        if pred.labels is not None:
            colors = {int(i["value"]): tuple(i["color"]) for i in pred.label_info}
            names = {int(i["value"]): str(i["name"]) for i in pred.label_info}
            self.state.add_layer(LabelLayer(LABEL_LAYER, pred.labels, colors=colors, names=names, opacity=opacity))
            for info in pred.label_info:
                r = self.legend.rowCount()
                self.legend.insertRow(r)
                sw = QTableWidgetItem("")
                sw.setBackground(QColor(*info["color"][:3]))
                self.legend.setItem(r, 0, sw)
                self.legend.setItem(r, 1, QTableWidgetItem(str(info["name"])))
                size = label_size_text(info).replace("mm2", "mm²")
                self.legend.setItem(r, 2, QTableWidgetItem(size))
        if pred.heatmap is not None:
            unc = pred.heatmap_kind == "uncertainty"
            # only clearly unsure voxels / clear attention (>= 20% of the peak) are drawn: the labels and
            # the image under weak attention stay readable
            self.state.add_layer(HeatmapLayer(HEAT_LAYER, pred.heatmap, colormap="viridis" if unc else "inferno",
                                              opacity=opacity, threshold=0.2, visible=self.heat_check.isChecked()))
        self.heat_check.setVisible(pred.heatmap is not None)
        what = {"gradcam": "Grad-CAM", "gradcam++": "Grad-CAM++", "uncertainty": "TTA uncertainty"}
        self.heat_check.setText(f"Show {what.get(pred.heatmap_kind, 'heatmap')}"
                                + (f" for '{pred.cam_class}'" if pred.cam_class else ""))
        self.edit_button.setVisible(pred.labels is not None)
        self.review_button.setVisible(bool(pred.probabilities))
        ann = getattr(self.main_window, "annotation_panel", None)
        self.edit_button.setEnabled(ann is not None)
        self.review_button.setEnabled(ann is not None)
        timing = pred.timings.get("total", 0.0)
        lines = [f"{pred.model_name} v{pred.model_version} (sha256 {pred.model_sha256[:12]})",
                 f"device: {pred.device}; time: {timing:.2f} s" + (" (cached result)" if pred.from_cache else "")]
        lines += [f"note: {m}" for m in pred.messages]
        self.run_info.setText("\n".join(lines))

    def _save_device(self, text: str) -> None:
        from medview.app_logging import save_settings

        try:
            save_settings({"inference_device": None if text == "auto" else text})
        except OSError as exc:
            self.error_label.setText(f"could not save the device choice: {exc}")

    def _on_opacity(self, value: int) -> None:
        for name in (LABEL_LAYER, HEAT_LAYER):
            if self.state.layer(name) is not None:
                self.state.update_layer(name, opacity=value / 100.0)

    def _set_layer_visible(self, name: str, on: bool) -> None:
        if self.state.layer(name) is not None:
            self.state.update_layer(name, visible=bool(on))

    def _edit_labels(self) -> None:
        ann = getattr(self.main_window, "annotation_panel", None)
        if ann is not None and self.prediction is not None:
            try:
                ann.edit_prediction(self.prediction)
            except ValueError as exc:
                self.error_label.setText(str(exc).splitlines()[0])
                return
            # the annotation panel now draws the (editable) labels: hide the read-only AI layer
            self._set_layer_visible(LABEL_LAYER, False)

    def _review(self) -> None:
        ann = getattr(self.main_window, "annotation_panel", None)
        if ann is not None and self.prediction is not None:
            ann.set_classification(self.prediction)

    # ---- state -----------------------------------------------------------------------------------
    def _on_volume(self, vol) -> None:
        if self.worker is not None:
            self.worker.cancel()
        self._show_prediction(None)
        self.error_label.setText("")
        self.progress.setValue(0)
        self.progress.setFormat("idle")
        self._fill_list()

    def wait_idle(self, timeout_s: float = 60.0) -> bool:
        """For scripts/tests: True once no job runs (processes events meanwhile)."""
        import time

        from PySide6.QtWidgets import QApplication

        end = time.monotonic() + timeout_s
        while time.monotonic() < end:
            if self.worker is None:
                return True
            QApplication.processEvents()
            time.sleep(0.005)
        return False


def install(main_window, background: bool = False) -> ModelsPanel:
    """Add the panel to ``main_window`` as the "AI models" tab; sets ``main_window.models_panel``.
    ``background``: list the packages from a worker (the app at start-up) instead of right away."""
    panel = ModelsPanel(main_window.state, main_window, background=background)
    main_window.add_side_panel("AI models", panel)
    main_window.models_panel = panel
    return panel
