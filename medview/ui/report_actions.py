"""The "Report" menu: measurements that persist, DICOM SR / RTSTRUCT / one-page report exports,
de-identified export, key images and the audit trail. Glue only: the work is in medview.reporting.

``install(main_window)`` (called by medview.ui.app with the other panels) adds the menu and hooks
the audit trail to the window: an opened series and the first edit of a label map (annotation
panel); model runs and SEG / training-set exports are audited in the core (run_model,
export_dicom_seg, export_training_case), the exports here by this module.
"""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Any

from PySide6.QtCore import QObject, QTimer
from PySide6.QtWidgets import QFileDialog, QMessageBox

from medview.ui.viewer_state import Measurement
from medview.ui.workers import run_job


def _reference(vol) -> dict[str, Any]:
    from medview.annotation.labelmap import reference_from_image

    return reference_from_image(vol)


class ReportActions(QObject):
    def __init__(self, main_window) -> None:
        super().__init__(main_window)
        self.win = main_window
        self.state = main_window.state
        self.key_images: list[Path] = []
        self.predictions: list[Any] = []  # Prediction objects of the open series
        self._uids: dict[int, str] = {}  # measurement id -> tracking UID (kept across saves)
        self._restoring = False
        self._edited_once = False
        self._jobs: list = []
        self._key_dir = Path(tempfile.mkdtemp(prefix="medview-key-images-"))
        self._save_timer = QTimer(self)
        self._save_timer.setSingleShot(True)
        self._save_timer.setInterval(500)
        self._save_timer.timeout.connect(self.save_measurements)
        self.state.measurements_changed.connect(self._on_measurements_changed)
        main_window.volume_loaded.connect(self._on_volume_loaded)
        self._make_menu()
        self._hook_panels()

    # ---- menu ----------------------------------------------------------------------------------
    def _make_menu(self) -> None:
        from PySide6.QtWidgets import QMenu

        bar = self.win.menuBar()
        m = QMenu("&Report", bar)
        help_menu = next((a for a in bar.actions() if a.text().replace("&", "") == "Help"), None)
        bar.insertMenu(help_menu, m) if help_menu is not None else bar.addMenu(m)  # before Help
        self.menu = m
        self.actions = {
            "key": m.addAction("Add key image (active view)", self.add_key_image),
            "clear_keys": m.addAction("Clear key images", self.clear_key_images),
        }
        m.addSeparator()
        self.actions["report"] = m.addAction("Export one-page report (PDF/HTML)...", self._ask_report)
        self.actions["sr"] = m.addAction("Export report (DICOM SR)...", self._ask_sr)
        self.actions["import_sr"] = m.addAction("Open DICOM SR measurements...", self._ask_import_sr)
        self.actions["csv"] = m.addAction("Export measurements (CSV)...", self._ask_csv)
        m.addSeparator()
        self.actions["rtstruct"] = m.addAction("Export label map as RTSTRUCT...", self._ask_rtstruct)
        self.actions["import_rt"] = m.addAction("Import RTSTRUCT as label map...", self._ask_import_rtstruct)
        m.addSeparator()
        self.actions["deid"] = m.addAction("Export de-identified...", self._ask_deidentify)
        m.addSeparator()
        self.actions["audit"] = m.addAction("Audit trail...", self.show_audit)

    def _hook_panels(self) -> None:
        from medview.reporting import audit

        models = self.win.side_panel("AI models") if hasattr(self.win, "side_panel") else None
        if models is not None and hasattr(models, "prediction_ready"):
            models.prediction_ready.connect(self._on_prediction)
        annotation = self.win.side_panel("Annotation") if hasattr(self.win, "side_panel") else None
        session = getattr(annotation, "session", None)
        if session is not None and hasattr(session, "edited"):
            def first_edit(*_a) -> None:
                if not self._edited_once and self.state.volume is not None:
                    self._edited_once = True
                    audit.record("edit", self.state.volume.meta, {"what": "label map"})
            session.edited.connect(first_edit)
        self.annotation = annotation

    # ---- helpers -------------------------------------------------------------------------------
    def _msg(self, text: str, ms: int = 8000) -> None:
        self.win.statusBar().showMessage(text, ms)

    def _error(self, text: str) -> None:
        self._msg(text, 15000)
        if not getattr(self.win, "quiet_errors", False):
            box = QMessageBox(QMessageBox.Icon.Warning, "MedView", text, parent=self.win)
            box.show()

    def _run(self, fn, *args, done=None, **kwargs) -> None:
        def finished(result) -> None:
            self._jobs.remove(w)
            if done is not None:
                done(result)

        def failed(msg: str) -> None:
            self._jobs.remove(w)
            self._error(msg)
        w = run_job(fn, *args, pass_progress=False, on_finished=finished, on_failed=failed,
                    owner=self.win, **kwargs)
        self._jobs.append(w)

    def wait_idle(self, timeout_s: float = 60.0) -> bool:
        """For tests: process events until the export jobs are done."""
        import time

        from PySide6.QtWidgets import QApplication

        end = time.monotonic() + timeout_s
        while self._jobs and time.monotonic() < end:
            QApplication.processEvents()
            time.sleep(0.01)
        QApplication.processEvents()
        return not self._jobs

    def labelmap(self):
        lm = getattr(getattr(self.annotation, "session", None), "labelmap", None)
        return lm if lm is not None and lm.present_values() else None

    # ---- measurements ------------------------------------------------------------------------------
    def records(self):
        """The viewer's measurements as MeasurementRecords (values from the same math)."""
        from medview.reporting.measurements import MeasurementRecord, _new_uid
        from medview.ui.geometry import view_geometry

        vol = self.state.volume
        out = []
        for m in self.state.measurements:
            g = view_geometry(m.view, vol.shape, vol.spacing, vol.direction)
            uid = self._uids.setdefault(m.id, _new_uid())
            out.append(MeasurementRecord(m.kind, tuple(m.p0), tuple(m.p1), g.normal_axis, m.view,
                                         {k: float(v) for k, v in self.state.measurement_result(m).items()},
                                         tracking_uid=uid))
        return out

    def measurements_path(self) -> Path | None:
        from medview.reporting.measurements import measurements_file

        vol = self.state.volume
        if vol is None:
            return None
        base = getattr(self.annotation, "workspace_base", None)
        return measurements_file(_reference(vol), base=base)

    def _on_measurements_changed(self) -> None:
        if not self._restoring and self.state.volume is not None:
            self._save_timer.start()

    def save_measurements(self) -> Path | None:
        from medview.reporting.measurements import save_measurements

        path = self.measurements_path()
        if path is None:
            return None
        try:
            return save_measurements(self.records(), path, _reference(self.state.volume))
        except OSError as exc:
            self._msg(f"Measurements not saved: {exc}", 15000)
            return None

    def add_records(self, records) -> int:
        """Show MeasurementRecords (from the workspace or an SR) as viewer measurements."""
        from medview.ui.geometry import VIEWS, view_geometry

        vol = self.state.volume
        n = 0
        for r in records:
            if r.kind == "volume":
                continue
            view = r.view if r.view in VIEWS else "axial"
            if r.kind != "ruler":
                view = next((v for v in VIEWS if view_geometry(v, vol.shape, vol.spacing, vol.direction).normal_axis
                             == r.normal_axis), view)
            g = view_geometry(view, vol.shape, vol.spacing, vol.direction)
            m = Measurement(r.kind, view, int(round(r.p0[g.normal_axis])), tuple(r.p0), tuple(r.p1))
            self._uids[m.id] = r.tracking_uid
            self.state.add_measurement(m)
            n += 1
        return n

    def _on_volume_loaded(self, vol) -> None:
        from medview.reporting import audit
        from medview.reporting.measurements import load_measurements

        audit.record("open", vol.meta, {"what": vol.meta.get("SeriesDescription", "")})
        self.predictions, self._edited_once = [], False
        path = self.measurements_path()
        # the viewer keeps a series' measurements for the session: those are the newest
        if path is None or not path.is_file() or self.state.measurements:
            return
        self._restoring = True
        try:
            n = self.add_records(load_measurements(path))
        except (OSError, ValueError) as exc:
            n = 0
            self._msg(f"Saved measurements could not be read ({path}): {exc}", 15000)
        finally:
            self._restoring = False
        if n:
            self._msg(f"Restored {n} measurement(s) saved for this series")

    def _on_prediction(self, pred) -> None:
        """The AI findings the SR and the report carry (the run itself is audited by run_model)."""
        self.predictions = [p for p in self.predictions if p.model_id != pred.model_id] + [pred]

    # ---- key images ---------------------------------------------------------------------------------
    def add_key_image(self) -> Path | None:
        view = self.win.viewer.views.get(self.state.active_view)
        if view is None or self.state.volume is None:
            return None
        path = self._key_dir / f"{self.state.active_view} slice {view.slice_index + 1} ({len(self.key_images) + 1}).png"
        view.grab().save(str(path))
        self.key_images.append(path)
        self._msg(f"Key image {len(self.key_images)} added: {path.stem}")
        return path

    def clear_key_images(self) -> None:
        self.key_images.clear()
        self._msg("Key images cleared")

    # ---- exports ----------------------------------------------------------------------------------
    def _inputs(self):
        from medview.reporting.session import ReportInputs
        from medview.reporting.sr import Finding

        vol = self.state.volume
        preds = [p.to_json() for p in self.predictions]
        return ReportInputs(Path(str(vol.meta.get("source_path", ""))), image=vol, labelmap=self.labelmap(),
                            measurements=self.records(), predictions=preds,
                            findings=[Finding.from_prediction_json(p) for p in preds if p.get("probabilities")],
                            heatmap=next((p.heatmap for p in self.predictions if p.heatmap is not None), None))

    def export_report(self, path: str | Path) -> None:
        from medview.reporting import audit
        from medview.reporting.report_content import build_content

        inputs, shots = self._inputs(), list(self.key_images)

        def job():
            content = build_content(inputs, shots)
            if str(path).lower().endswith((".html", ".htm")):
                from medview.reporting.report_html import write_html

                return write_html(content, path)
            from medview.reporting.report_pdf import write_pdf

            return write_pdf(content, path)

        def done(out) -> None:
            audit.record("export", inputs.image.meta, {"format": "report", "output": str(out)})
            self._msg(f"Report written: {out}")
        self._run(job, done=done)

    def sr_writer(self):
        """A function ``write(path) -> (sr_path, seg_path_or_None)`` for this session's SR (with
        the SEG its segment volumes reference), safe to run on a worker; None (and a message)
        when the image is not DICOM."""
        inputs = self._inputs()
        vol, lm = inputs.image, inputs.labelmap
        if not vol.meta.get("source_files"):
            self._error("A DICOM SR needs a DICOM series: this image was not loaded from DICOM")
            return None
        records = inputs.all_measurements()

        def write(path):
            from medview.annotation.dicom_seg import export_dicom_seg
            from medview.reporting.sr import export_sr

            seg = None
            if lm is not None:
                out = Path(path)
                seg = export_dicom_seg(lm, out.with_name(out.stem + "_seg.dcm"), vol.meta["source_files"])
            pv = lm.provenance if lm is not None else None
            model = (pv.model_id, pv.model_version or "", pv.model_sha256 or "") if pv is not None and pv.model_id \
                else None
            try:
                return export_sr(path, vol, records, inputs.findings, seg_path=seg, segmentation_model=model), seg
            except Exception:
                if seg is not None:  # the SR was refused: no orphan SEG
                    Path(seg).unlink(missing_ok=True)
                raise
        return write

    def export_sr(self, path: str | Path) -> None:
        from medview.reporting import audit

        write = self.sr_writer()
        if write is None:
            return
        vol = self.state.volume

        def done(result) -> None:
            out, seg = result
            audit.record("export", vol.meta, {"format": "DICOM SR", "output": str(out), "seg": str(seg or "")})
            self._msg(f"DICOM SR written: {out}" + (f" (segment volumes reference {Path(seg).name})" if seg else ""))
        self._run(write, path, done=done)

    def import_sr(self, path: str | Path) -> int:
        from medview.reporting.sr import SRError, read_sr

        try:
            content = read_sr(path, self.state.volume)
        except SRError as exc:
            self._error(str(exc))
            return 0
        n = self.add_records(content.measurements)
        volumes = [r for r in content.measurements if r.kind == "volume"]
        self._msg(f"{n} measurement(s) from {Path(path).name}" + (
            f"; {len(volumes)} segment volume(s): " + ", ".join(f"{r.name} {r.values.get('volume_ml', 0):.2f} mL"
                                                               for r in volumes) if volumes else ""), 15000)
        return n

    def export_csv(self, path: str | Path) -> Path:
        from medview.reporting import audit
        from medview.reporting.measurements import write_csv

        inputs = self._inputs()
        out = write_csv(inputs.all_measurements(), path, inputs.image)
        audit.record("export", inputs.image.meta, {"format": "CSV", "output": str(out)})
        self._msg(f"Measurements written: {out}")
        return out

    def export_rtstruct(self, path: str | Path) -> None:
        from medview.reporting import audit
        from medview.reporting.rtstruct import export_rtstruct

        lm = self.labelmap()
        if lm is None:
            self._error("There is no label map with labels to export")
            return
        vol = self.state.volume

        def done(out) -> None:
            audit.record("export", vol.meta, {"format": "RTSTRUCT", "output": str(out)})
            self._msg(f"RTSTRUCT written: {out}")
        self._run(export_rtstruct, lm, path, vol.meta.get("source_files"), done=done)

    def import_rtstruct(self, path: str | Path) -> None:
        from medview.reporting import audit
        from medview.reporting.rtstruct import read_rtstruct
        from medview.ui.viewer_state import LabelLayer

        vol = self.state.volume

        def done(lm) -> None:
            if self.state.volume is not vol:
                return  # another series was opened meanwhile
            layer = LabelLayer(f"RTSTRUCT {Path(path).stem}", lm.volume,
                               colors={v: lab.color for v, lab in lm.labels.items()},
                               names={v: lab.name for v, lab in lm.labels.items()}, outline=True)
            self.state.add_layer(layer)
            audit.record("import", vol.meta, {"format": "RTSTRUCT", "input": str(path)})
            warn = f" ({'; '.join(lm.volume.warnings)})" if lm.volume.warnings else ""
            self._msg(f"RTSTRUCT {Path(path).name}: " + ", ".join(lab.name for lab in lm.labels.values()) + warn, 15000)
        self._run(read_rtstruct, path, vol, done=done)

    def export_deidentified(self, folder: str | Path, keep_dates: bool = False) -> None:
        """The open series (and the SEG/SR exported for it in this session) de-identified into ``folder``."""
        from medview.reporting import audit
        from medview.reporting.deidentify import Deidentifier

        vol = self.state.volume
        files = list(dict.fromkeys(str(f) for f in vol.meta.get("source_files") or []))
        if not files:
            self._error("De-identified export works on DICOM series; this image was not loaded from DICOM")
            return

        def job():
            deid = Deidentifier(keep_dates=keep_dates)
            warnings = []
            out = Path(folder)
            for i, f in enumerate(files, 1):
                w = deid.file(f, out / f"{i:05d}.dcm")
                if w:
                    warnings.append(w)
            return len(files), warnings

        def done(result) -> None:
            n, warnings = result
            audit.record("deidentify", vol.meta, {"output": str(folder), "files": n,
                                                  "burned_in_warnings": len(warnings)})
            self._msg(f"{n} de-identified file(s) written to {folder}", 15000)
            if warnings:
                self._error("The de-identified images may still show identifying text in the pixels:\n"
                            + "\n".join(warnings[:5]) + (f"\n... and {len(warnings) - 5} more" if len(warnings) > 5
                                                         else ""))
        self._run(job, done=done)

    # ---- dialogs ----------------------------------------------------------------------------------
    def _need_volume(self) -> bool:
        if self.state.volume is None:
            self._error("Open a series first")
            return False
        return True

    def _ask_report(self) -> None:
        if self._need_volume():
            f, _ = QFileDialog.getSaveFileName(self.win, "Export report", "report.pdf", "PDF (*.pdf);;HTML (*.html)")
            if f:
                self.export_report(f)

    def _ask_sr(self) -> None:
        if self._need_volume():
            f, _ = QFileDialog.getSaveFileName(self.win, "Export DICOM SR", "sr.dcm", "DICOM (*.dcm)")
            if f:
                self.export_sr(f)

    def _ask_import_sr(self) -> None:
        if self._need_volume():
            f, _ = QFileDialog.getOpenFileName(self.win, "Open DICOM SR", "", "DICOM (*.dcm);;All files (*)")
            if f:
                self.import_sr(f)

    def _ask_csv(self) -> None:
        if self._need_volume():
            f, _ = QFileDialog.getSaveFileName(self.win, "Export measurements", "measurements.csv", "CSV (*.csv)")
            if f:
                self.export_csv(f)

    def _ask_rtstruct(self) -> None:
        if self._need_volume():
            f, _ = QFileDialog.getSaveFileName(self.win, "Export RTSTRUCT", "rtstruct.dcm", "DICOM (*.dcm)")
            if f:
                self.export_rtstruct(f)

    def _ask_import_rtstruct(self) -> None:
        if self._need_volume():
            f, _ = QFileDialog.getOpenFileName(self.win, "Import RTSTRUCT", "", "DICOM (*.dcm);;All files (*)")
            if f:
                self.import_rtstruct(f)

    def _ask_deidentify(self) -> None:
        if not self._need_volume():
            return
        d = QFileDialog.getExistingDirectory(self.win, "Folder for the de-identified copy")
        if not d:
            return
        box = QMessageBox(QMessageBox.Icon.Question, "Export de-identified",
                          "Keep the dates (Retain Longitudinal Temporal Information option)?\n"
                          "No: dates are shifted by a random offset.",
                          QMessageBox.StandardButton.Yes | QMessageBox.StandardButton.No, self.win)
        self.export_deidentified(d, keep_dates=box.exec() == QMessageBox.StandardButton.Yes)

    def show_audit(self):
        from medview.ui.audit_view import AuditDialog

        dlg = AuditDialog(self.win)
        dlg.show()
        self._audit_dialog = dlg
        return dlg


def install(main_window) -> ReportActions:
    actions = ReportActions(main_window)
    main_window.report_actions = actions
    return actions
