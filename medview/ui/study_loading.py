"""Opening studies off the GUI thread: scan a folder or file, load a series (its middle slice
shown first), read SEG / RTSTRUCT / label-map overlays and a 4D file's other volumes, and
report progress, cancellation and failures on the window.

``StudyLoading`` is a mixin of MainWindow: its methods use the window's state, browser,
viewer, status bar and signals (``volume_loaded``, ``load_failed``, ``preview_shown``).
"""

from __future__ import annotations

from pathlib import Path

from PySide6.QtCore import Qt
from PySide6.QtWidgets import QMessageBox

from medview.ui.workers import Worker, start


def scan_job(path: str, progress=None, cancelled=None, on_preview=None):
    from medview.io import scan

    return scan(path, progress=progress, cancelled=cancelled, on_preview=on_preview)


def load_job(series, progress=None, cancelled=None, on_middle_slice=None, percentiles=(0.5, 99.5)):
    """Worker job: load a series and choose its first window (DICOM's when it fits the data,
    else percentiles); returns (volume, window, value range, where the window came from)."""
    from medview.io import load_series
    from medview.viewing.display import first_window

    vol = load_series(series, progress=progress, cancelled=cancelled, on_middle_slice=on_middle_slice)
    window, source = first_window(vol.meta, vol.array, percentiles)
    value_range = (float(vol.array.min()), float(vol.array.max())) if vol.array.size else (0.0, 0.0)
    return vol, window, value_range, source


def overlay_job(path: str, reference, progress=None, cancelled=None):
    from medview.viewing.overlays import load_overlay

    return load_overlay(path, reference)


class StudyLoading:
    """MainWindow's open_path / open_series / open_overlay / wait_idle and their job callbacks."""

    def open_path(self, path: str | Path) -> None:
        """Scan ``path`` (folder or file) off the GUI thread, list it, then open its largest series."""
        path = str(path)
        if self.state.volume is not None and Path(path).is_file():
            from medview.viewing.overlays import dicom_kind

            if dicom_kind(path) in ("SEG", "RTSTRUCT"):
                self.open_overlay(path)  # onto the series shown (its own, or refused by name)
                return
        self._cancel_jobs()
        self.statusBar().showMessage(f"Scanning {path} ...")
        self._show_progress(True)
        w = Worker(scan_job, path)
        # a slice of what is being scanned shows before the scan of a large folder ends
        w.kwargs["on_preview"] = lambda img, spacing: w.emit_event("preview", (img, spacing))
        w.signals.event.connect(lambda name, payload, w=w: self._on_scan_preview(w, payload))
        w.signals.progress.connect(self._on_progress)
        w.signals.finished.connect(lambda index, p=path, w=w: self._on_scanned(w, p, index))
        w.signals.failed.connect(lambda msg, p=path, w=w: self._on_failed(f"{p}: {msg}", w))
        self._scan_worker = start(w)

    def open_overlay(self, path: str | Path) -> None:
        """Show a label NIfTI, DICOM SEG or RTSTRUCT as an overlay on the series shown."""
        from medview.ui.workers import run_job

        vol = self.state.volume
        if vol is None:
            self.statusBar().showMessage("Open the image series first, then its label map", 8000)
            return
        path = str(path)
        self.statusBar().showMessage(f"Reading overlay {Path(path).name} ...")
        run_job(overlay_job, path, vol,
                on_finished=lambda lm, p=path, v=vol: self._on_overlay(p, v, lm),
                on_failed=lambda msg, p=path: self._on_failed(f"{p}: {msg}"), owner=self)

    def _on_overlay(self, path: str, vol, labelmap) -> None:
        from medview.ui.viewer_state import LabelLayer
        from medview.viewing.overlays import overlay_layer_args

        if vol is not self.state.volume:
            return  # another series was opened meanwhile
        name = f"overlay: {Path(path).name}"
        self.state.add_layer(LabelLayer(name, labelmap.volume, **overlay_layer_args(labelmap)))
        self.add_recent(path)
        n = len(labelmap.labels)
        warn = f" ({labelmap.volume.warnings[0]})" if labelmap.volume.warnings else ""
        self.statusBar().showMessage(f"Overlay {Path(path).name}: {n} label(s){warn}", 10000)

    def open_series(self, series) -> None:
        """Load one SeriesInfo off the GUI thread; its middle slice shows as soon as it is read."""
        if series.modality in ("SEG", "RTSTRUCT") and series.kind == "dicom":
            self._open_label_series(series)
            return
        if self._load_worker is not None:
            self._load_worker.cancel()
        self.current_series = series
        self.browser.select_series(series.uid)
        self.statusBar().showMessage(f"Loading {series.description or series.path} ...")
        self._show_progress(True)
        self.state.set_volume(None)
        self.series_info.value_range = None
        pct = tuple(self.presets.get("auto_percentiles", (0.5, 99.5)))
        w = Worker(load_job, series, percentiles=pct)
        w.kwargs["on_middle_slice"] = lambda k, img: w.emit_event("middle", (k, img))
        w.signals.event.connect(lambda name, payload, s=series: self._on_preview(s, payload))
        w.signals.progress.connect(self._on_progress)
        w.signals.finished.connect(lambda res, w=w: self._on_loaded(w, res))
        w.signals.failed.connect(lambda msg, s=series, w=w: self._on_failed(f"{s.path}: {msg}", w))
        self._load_worker = start(w)

    def _open_label_series(self, series) -> None:
        """A SEG in the browser: shown over the series it references (opened first if needed)."""
        from medview.viewing.overlays import referenced_series_uid

        path = series.files[0]
        ref_uid = referenced_series_uid(path)
        vol = self.state.volume
        if vol is not None and (not ref_uid or vol.meta.get("SeriesInstanceUID") == ref_uid):
            self.open_overlay(path)
            return
        source = None
        if self.index is not None and ref_uid:
            source = next((s for s in self.index.series if s.series_uid == ref_uid), None)
        if source is None:
            self._on_failed(f"{path}: the series it was drawn on ({ref_uid or 'not named'}) is not open or listed")
            return
        self._pending_overlay = path
        self.open_series(source)

    def wait_idle(self, timeout_s: float = 30.0) -> bool:
        """For scripts/tests: True once no scan/load job is running (processes events)."""
        import time

        from PySide6.QtWidgets import QApplication

        end = time.monotonic() + timeout_s
        while time.monotonic() < end:
            busy = [w for w in (self._scan_worker, self._load_worker) if w is not None]
            if not busy:
                return True
            QApplication.processEvents()
            time.sleep(0.005)
        return False

    # ---- job callbacks ------------------------------------------------------------------------------
    def _cancel_jobs(self) -> None:
        for w in (self._scan_worker, self._load_worker):
            if w is not None:
                w.cancel()
        self._scan_worker = self._load_worker = None
        self._show_progress(False)

    def _on_progress(self, fraction: float, stage: str) -> None:
        self.progress.setValue(int(1000 * max(0.0, min(1.0, fraction))))
        if stage:
            self.statusBar().showMessage(stage)

    def _on_scanned(self, worker: Worker, path: str, index) -> None:
        if worker is not self._scan_worker:
            return  # superseded by a newer open
        self._scan_worker = None
        if not index.series:
            # the browser keeps listing what is shown: a failed open changes nothing
            reasons = "; ".join(f"{Path(p).name}: {r}" for p, r in index.problems[:3])
            self._on_failed(f"{path}: no loadable images found" + (f" ({reasons})" if reasons else ""))
            return
        self.index = index
        self.browser.set_index(index)
        self.add_recent(path)
        self.compare.close_comparison()
        self.open_series(self.apply_protocol(index))

    def _on_scan_preview(self, worker, payload) -> None:
        if worker is self._scan_worker and self.state.volume is None:
            self.viewer.show_preview(*payload)

    def _on_preview(self, series, payload) -> None:
        if series is not self.current_series or self.state.volume is not None:
            return
        k, img = payload
        self.viewer.show_preview(img, series.pixel_spacing)
        self.preview_shown.emit(int(k))

    def _on_loaded(self, worker: Worker, result) -> None:
        if worker is not self._load_worker:
            return  # a newer load replaced this one
        self._load_worker = None
        self._show_progress(False)
        vol, window, value_range, window_source = result
        self.series_info.value_range = value_range  # computed off the GUI thread
        if vol.shape[0] == 1:  # a 2D image: one big view
            if self.state.layout != "1x1" and self._layout_before_2d is None:
                self._layout_before_2d = self.state.layout
            self.state.set_active_view("axial")
            self.state.set_layout("1x1")
        elif self._layout_before_2d is not None:  # a volume after a 2D image: its layout back
            self.state.set_layout(self._layout_before_2d)
            self._layout_before_2d = None
        self.state.set_volume(vol, window=window)
        self.state.window_source = window_source
        if self.current_series is not None:
            self.browser.set_thumbnail_from(self.current_series.uid, vol)
            self.browser.select_series(self.current_series.uid)
        desc = vol.meta.get("SeriesDescription") or Path(str(vol.meta.get("source_path", ""))).name
        self.setWindowTitle(f"MedView - {desc} (research use only, not for diagnosis)")
        msg = f"Loaded {desc}: {vol.shape[2]}x{vol.shape[1]}x{vol.shape[0]}"
        if self.index is not None and not any("could not be read" in w for w in vol.warnings):
            from medview.io.loading import scan_problem_warnings

            vol.warnings.extend(scan_problem_warnings(self.index))
        if vol.warnings:  # stays until the next message: the user must see it
            msg += f"  ({len(vol.warnings)} warning(s): {vol.warnings[0]})"
            self.statusBar().setToolTip("\n".join(vol.warnings))
        else:
            self.statusBar().setToolTip("")
        if window_source.startswith("auto ("):
            msg += f"  window: {window_source}"
        self.statusBar().showMessage(msg, 0 if vol.warnings else 8000)
        self.volume_loaded.emit(vol)
        self._apply_protocol_window()
        self._load_frames(vol)
        compare = getattr(self, "_protocol_compare", None)
        if compare is not None:
            self._protocol_compare = None
            self.compare.open_series(compare, self.protocol.link if self.protocol else None)
        if self._pending_overlay:
            path, self._pending_overlay = self._pending_overlay, None
            self.open_overlay(path)

    def _on_failed(self, message: str, worker: Worker | None = None) -> None:
        if worker is not None and worker not in (self._scan_worker, self._load_worker):
            return  # a job that was replaced or cancelled: nothing to report
        self._scan_worker = None
        self._load_worker = None
        self._show_progress(False)
        if message.endswith("cancelled"):
            self.statusBar().showMessage("Cancelled", 3000)
            return
        self.statusBar().showMessage(message, 15000)
        self.load_failed.emit(message)
        if not getattr(self, "quiet_errors", False):
            box = QMessageBox(QMessageBox.Icon.Warning, "MedView", message, parent=self)
            box.setWindowModality(Qt.WindowModality.WindowModal)
            box.show()  # non-blocking: the app keeps running

    def _load_frames(self, vol) -> None:
        """A 4D file: read its other volumes off the GUI thread, then show the volume box."""
        from medview.ui.workers import run_job
        from medview.viewing.frames import count_dicom_frames, count_frames, read_dicom_frames, read_frames

        for a in self._frame_actions:
            a.setVisible(False)
        path = str(vol.meta.get("source_path", ""))
        dicom_4d = count_dicom_frames(vol.meta) > 1
        n = count_frames(path) if vol.meta.get("format") in ("nifti", "nrrd", "mha") else count_dicom_frames(vol.meta)
        if n < 2:
            return

        def done(frames, v=vol):
            if v is not self.state.volume:
                return
            self.state.set_frames(frames)
            self.frame_box.blockSignals(True)
            self.frame_box.setRange(1, len(frames))
            self.frame_box.setValue(1)
            self.frame_box.setSuffix(f" / {len(frames)}")
            self.frame_box.blockSignals(False)
            for a in self._frame_actions:
                a.setVisible(True)
            self.statusBar().showMessage(f"4D series: {len(frames)} volumes (Volume box in the toolbar)", 8000)

        job, args = (read_dicom_frames, (vol,)) if dicom_4d else (read_frames, (path, vol.array))
        run_job(job, *args, on_finished=done,
                on_failed=lambda msg: self.statusBar().showMessage(f"4D browsing off: {msg}", 10000), owner=self)
