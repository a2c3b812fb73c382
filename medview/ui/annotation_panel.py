"""Annotation side panel: the session row (reviewer, new / reopen / close) above one small
widget per tool group (labels, tools, AI assist, label operations, history, export / import,
classification review) and the crash-recovery banner.

``install(main_window)`` adds it as the "Annotation" tab and sets ``main_window.annotation_panel``;
other panels call ``annotation_panel.edit_prediction(prediction)`` ("Edit" on a segmentation
result) and ``annotation_panel.set_classification(prediction)`` (review a classification).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from PySide6.QtCore import QEvent, QObject, Qt, QTimer
from PySide6.QtGui import QKeySequence, QShortcut
from PySide6.QtWidgets import QFileDialog, QHBoxLayout, QLabel, QLineEdit, QPushButton, QVBoxLayout, QWidget

from medview.annotation.labelmap import REVIEWER_SETTING, reviewer_name
from medview.annotation.review import ClassificationReview, save_reviews_csv, save_reviews_json
from medview.annotation.workspace import discard, find_recoverable
from medview.ui.ai_assist_widget import AIAssistGroup
from medview.ui.annotation_export import ExportGroup
from medview.ui.annotation_history_group import HistoryGroup
from medview.ui.annotation_labels import LabelsGroup
from medview.ui.annotation_recovery import RecoveryBanner, SaveErrorBanner
from medview.ui.annotation_region_ops import RegionOpsGroup
from medview.ui.annotation_review import ReviewGroup
from medview.ui.annotation_toolbox import TOOLS, ToolsGroup
from medview.ui.annotation_tools import AnnotationSession
from medview.ui.viewer_state import ViewerState

__all__ = ["TOOLS", "AnnotationPanel", "install"]


class AnnotationPanel(QWidget):
    def __init__(self, state: ViewerState, main_window: Any = None, parent: QWidget | None = None,
                 use_workspace: bool = True, workspace_base: Path | None = None) -> None:
        super().__init__(parent)
        self.state = state
        self.main_window = main_window
        self.session = AnnotationSession(state, self, use_workspace=use_workspace, workspace_base=workspace_base)
        viewer = getattr(main_window, "viewer", None)
        self.session.views = dict(getattr(viewer, "views", {}) or {})
        if viewer is not None and hasattr(viewer, "hovered"):
            viewer.hovered.connect(self.session.show_brush_cursor)
        self.workspace_base = workspace_base
        self.reviews: list[ClassificationReview] = []
        self.classification: Any = None
        self._pending_restore: Path | None = None
        self._build()
        s = self.session
        s.labels_changed.connect(self._refresh_labels)
        s.history_changed.connect(self._refresh_history)
        s.edited.connect(self._schedule_summary)
        s.session_changed.connect(self._refresh_session)
        s.message.connect(self._message)
        s.save_status.connect(self._on_save_status)
        state.tool_changed.connect(self.tools.on_tool_changed)
        state.volume_changed.connect(self._on_volume)
        self._summary_timer = QTimer(self)
        self._summary_timer.setSingleShot(True)
        self._summary_timer.setInterval(300)
        self._summary_timer.timeout.connect(self._refresh_summary)
        self._make_shortcuts(main_window if main_window is not None else self)
        self._refresh_session()

    # ---- layout ----------------------------------------------------------------------------------
    def _build(self) -> None:
        lay = QVBoxLayout(self)
        lay.setContentsMargins(4, 4, 4, 4)
        self.recovery_box = RecoveryBanner(self)
        self.recovery_box.restore_requested.connect(lambda: self.restore(self._recoverable[0]))
        self.recovery_box.discard_requested.connect(self._discard_recovery)
        self._recoverable: list[Path] = []
        lay.addWidget(self.recovery_box)
        self.save_error_label = SaveErrorBanner(self)
        lay.addWidget(self.save_error_label)

        row = QHBoxLayout()
        row.addWidget(QLabel("Reviewer", self))
        self.reviewer_edit = QLineEdit(reviewer_name(), self)
        self.reviewer_edit.setToolTip("Recorded in every label map and review you make (saved in settings)")
        # focus only by a click: when a banner hides, Qt must not move the focus here, where the
        # single-key shortcuts (A, B, ...) would type over the name and save it
        self.reviewer_edit.setFocusPolicy(Qt.FocusPolicy.ClickFocus)
        self.reviewer_edit.editingFinished.connect(self._on_reviewer)
        row.addWidget(self.reviewer_edit)
        lay.addLayout(row)
        row = QHBoxLayout()
        self.new_button = QPushButton("New label map", self)
        self.new_button.clicked.connect(self.new_labelmap)
        self.reopen_button = QPushButton("Reopen saved", self)
        self.reopen_button.setToolTip("Continue the label map saved for this image in its workspace")
        self.reopen_button.clicked.connect(self.reopen_saved)
        self.close_button = QPushButton("Close", self)
        self.close_button.setToolTip("Save and close the label map")
        self.close_button.clicked.connect(self.session.stop)
        for b in (self.new_button, self.reopen_button, self.close_button):
            row.addWidget(b)
        lay.addLayout(row)
        self.status = QLabel("", self)
        self.status.setWordWrap(True)
        lay.addWidget(self.status)

        self.labels = LabelsGroup(self.session, self)
        self.tools = ToolsGroup(self.state, self.session, self)
        self.ai_group = AIAssistGroup(self.state, self.session.ai, self)
        self.ops = RegionOpsGroup(self.session, self)
        self.history = HistoryGroup(self.session, self)
        self.export = ExportGroup(self, self)
        self.review_group = ReviewGroup(self, self)
        for w in (self.labels, self.tools, self.ai_group, self.ops, self.history, self.export, self.review_group):
            lay.addWidget(w)
        lay.addStretch(1)
        self._alias_widgets()
        self._refresh_review()

    def _alias_widgets(self) -> None:
        """The group widgets' controls under the panel's names (scripts and tests use them)."""
        self.recovery_label = self.recovery_box.label
        self.restore_button = self.recovery_box.restore_button
        self.discard_button = self.recovery_box.discard_button
        self.label_table = self.labels.table
        self.add_label_button = self.labels.add_button
        self.recolor_button = self.labels.recolor_button
        self.tool_buttons = self.tools.buttons
        self.tool_group = self.tools.group
        t = self.tools
        self.radius_spin, self.sphere_check = t.radius_spin, t.sphere_check
        self.thr_lo, self.thr_hi = t.thr_lo, t.thr_hi
        self.tol_spin = t.tol_spin
        o = self.ops
        self.islands_spin, self.islands_button, self.largest_button = o.islands_spin, o.islands_button, o.largest_button
        self.interp_button, self.copy_button = o.interp_button, o.copy_button
        h = self.history
        self.undo_button, self.redo_button, self.history_list = h.undo_button, h.redo_button, h.list
        self.summary_label = h.summary_label
        e = self.export
        self.export_nifti_button, self.export_seg_button = e.nifti_button, e.seg_button
        self.export_train_button, self.import_button = e.train_button, e.import_button
        r = self.review_group
        self.review_box, self.review_label = r, r.label
        self.accept_button, self.reject_button, self.relabel_button = r.accept_button, r.reject_button, r.relabel_button
        self.relabel_combo, self.comment_edit, self.reviews_list = r.relabel_combo, r.comment_edit, r.list
        self.export_reviews_button = r.export_button

    def _make_shortcuts(self, parent: QWidget) -> None:
        keys: list[tuple[str, Any]] = [
            ("Ctrl+Z", self.undo), ("Ctrl+Shift+Z", self.redo), ("Ctrl+Y", self.redo),
            ("[", lambda: self.tools.change_radius(1 / 1.25)), ("]", lambda: self.tools.change_radius(1.25)),
        ]
        keys += [(key, lambda nm=name: self.state.set_tool(nm)) for name, _t, _tip, key in TOOLS if key]
        self.shortcuts: dict[str, QShortcut] = {}
        for key, fn in keys:
            sc = QShortcut(QKeySequence(key), parent, fn)
            sc.setContext(Qt.ShortcutContext.WindowShortcut)
            self.shortcuts[key] = sc
        self.undo_shortcut, self.redo_shortcut = self.shortcuts["Ctrl+Z"], self.shortcuts["Ctrl+Shift+Z"]

    # ---- session -----------------------------------------------------------------------------
    def _on_reviewer(self) -> None:
        name = self.reviewer_edit.text().strip()
        if not name or name == reviewer_name():
            return
        try:
            from medview.app_logging import save_settings

            save_settings({REVIEWER_SETTING: name})
        except (ImportError, OSError) as exc:
            self._message(f"could not save the reviewer name: {exc}")
        s = self.session
        if s.labelmap is not None:
            s.labelmap.provenance.reviewer = name
            s.labelmap.provenance.touch()
            if s.workspace is not None:
                s.workspace.note()
        self._refresh_session()

    def _on_save_status(self, text: str) -> None:
        """Autosave failed (banner + status bar) or everything is written again (banner gone)."""
        was = self.save_error_label.isVisible() or bool(self.save_error_label.text())
        self.save_error_label.setText(text)
        self.save_error_label.setVisible(bool(text))
        sb = getattr(self.main_window, "statusBar", None)
        if text:
            self._message(text)
            if callable(sb):
                sb().showMessage(text)
        elif was:
            ws = self.session.workspace
            done = f"Autosave OK again: every edit is written to {ws.root}" if ws is not None else ""
            if done:
                self._message(done)
            if callable(sb):
                sb().showMessage(done, 8000)

    def _message(self, text: str) -> None:
        self.status.setText(text)
        if hasattr(self.state, "status_message"):
            self.state.status_message.emit(text)

    def new_labelmap(self) -> None:
        try:
            self.session.new_labelmap()
        except ValueError as exc:
            self._message(str(exc))
            return
        ws = self.session.workspace
        self.state.status_message.emit("New label map: " + (f"every edit is autosaved in {ws.root}" if ws is not None
                                                            else "autosave is OFF"))
        if self.state.tool == "navigate" or not self.state.tool.startswith("annotate."):
            self.state.set_tool("annotate.brush")

    def saved_workspace(self) -> Path | None:
        """The workspace of the open image left by an earlier (closed) session, if any."""
        from medview.annotation.labelmap import reference_from_image
        from medview.annotation.workspace import is_closing, needs_recovery, workspace_key, workspaces_dir

        vol = self.state.volume
        if vol is None:
            return None
        root = (self.workspace_base or workspaces_dir()) / workspace_key(reference_from_image(vol))
        if (root / "snapshot.json").is_file() and (not (root / "session.lock").exists() or is_closing(root)) \
                or needs_recovery(root):
            return root
        return None

    def reopen_saved(self) -> bool:
        root = self.saved_workspace()
        if root is None:
            return False
        try:
            self.session.resume(root)
        except (ValueError, OSError) as exc:
            self._message(f"cannot reopen {root}: {exc}")
            return False
        self._message(f"reopened the labels saved in {root}")
        return True

    def edit_prediction(self, prediction: Any) -> None:
        """"Edit" on a segmentation result: the AI labels become editable; the summary follows.
        No tool is armed: the next click in a view must not paint before the user chose a tool."""
        self.session.edit_prediction(prediction)
        self._refresh_summary()
        self._show_me()
        self._message("Editing the AI labels: choose a tool (B brush, X eraser, Q AI assist, ...)")

    def _show_me(self) -> None:
        """Bring this panel's tab to the front (the tab holds the scroll area around the panel)."""
        tabs = getattr(self.main_window, "side_tabs", None)
        if tabs is None:
            return
        w: QWidget | None = self
        while w is not None and tabs.indexOf(w) < 0:
            w = w.parentWidget()
        if w is not None:
            tabs.setCurrentWidget(w)
            dock = getattr(self.main_window, "side_dock", None)
            if dock is not None and not dock.isVisible():
                dock.show()

    def _focus_viewer(self) -> None:
        viewer = getattr(self.main_window, "viewer", None)
        views = getattr(viewer, "views", {}) or {}
        view = views.get(self.state.active_view) or next(iter(views.values()), None)
        if view is not None:
            view.setFocus(Qt.FocusReason.OtherFocusReason)
        elif self.focusWidget() is self.reviewer_edit:
            self.reviewer_edit.clearFocus()

    def _refresh_session(self) -> None:
        s = self.session
        on = s.active
        self.labels.set_enabled(on)
        for w in (self.close_button, *self.ops.buttons(), self.export_nifti_button, self.export_seg_button,
                  self.export_train_button, self.ai_group.tool_button, self.ai_group.new_button):
            w.setEnabled(on)
        self.ai_group.refresh_model()
        self.new_button.setEnabled(self.state.volume is not None)
        self.reopen_button.setEnabled(not on and self.saved_workspace() is not None)
        self.import_button.setEnabled(self.state.volume is not None)
        if on:
            assert s.labelmap is not None
            p = s.labelmap.provenance
            src = f"AI: {p.model_id} {p.model_version}" if p.source == "model" else p.source
            # the folder name is a long UID: break it anywhere, or it widens the side dock
            # past the window (the panel's buttons were cut off at 1600x1000)
            where = (f"; autosaved in {_breakable(str(s.workspace.root))}" if s.workspace is not None
                     else "; autosave OFF")
            self.status.setText(f"Editing ({src}), reviewer {p.reviewer}{where}")
            self.status.setToolTip(str(s.workspace.root) if s.workspace is not None else "")
            self.export_seg_button.setEnabled(bool(s.labelmap.reference.get("source_files")))
        else:
            self.status.setText("No label map. 'New label map' starts one on the open image.")
        self._refresh_summary()

    def _on_volume(self, vol) -> None:
        self._refresh_session()
        if vol is not None:  # a photograph has no pixel size: the brush is measured in pixels
            for spin in (self.radius_spin, self.ops.smooth_mm, self.ops.margin_mm):
                spin.setSuffix(f" {vol.length_unit}")
        if vol is not None and not vol.is_rgb:
            self.tools.set_threshold_from_window()  # a sensible threshold-paint range to start from
        if vol is not None and self._pending_restore is not None:
            root, self._pending_restore = self._pending_restore, None
            QTimer.singleShot(0, lambda: self.restore(root))

    # ---- labels, tools, history (the group widgets do the work) -----------------------------------
    def _refresh_labels(self) -> None:
        self.labels.refresh()
        self.tools.refresh_labels()

    def select_label(self, value: int) -> None:
        self.labels.select_label(value)

    def add_label(self, name: str | None = None, color: tuple[int, int, int] | None = None) -> int:
        return self.labels.add_label(name, color)

    def set_threshold_from_window(self) -> None:
        self.tools.set_threshold_from_window()

    def undo(self) -> None:
        self.session.ai.finish()
        self.session.undo()

    def redo(self) -> None:
        self.session.redo()

    def _refresh_history(self) -> None:
        self.history.refresh()
        ws = self.session.workspace
        if self.session.history is not None and ws is not None and ws.save_error:
            self._on_save_status(ws.save_error)

    def _schedule_summary(self) -> None:
        self._summary_timer.start()

    def _refresh_summary(self) -> None:
        self.history.refresh_summary()

    # ---- export / import --------------------------------------------------------------------------
    def export_nifti(self, path: str | Path) -> Path:
        from medview.annotation.nifti import save_nifti

        assert self.session.labelmap is not None
        out = save_nifti(self.session.labelmap, path)
        self._message(f"saved {out} (+ {Path(out).name.split('.')[0]}.json)")
        return out

    def export_seg(self, path: str | Path) -> Path:
        from medview.annotation.dicom_seg import export_dicom_seg

        assert self.session.labelmap is not None
        out = export_dicom_seg(self.session.labelmap, path)
        self._message(f"saved DICOM SEG {out}")
        return out

    def export_training(self, folder: str | Path) -> dict:
        from medview.annotation.training_set import export_training_case

        assert self.session.labelmap is not None and self.state.volume is not None
        entry = export_training_case(self.state.volume, self.session.labelmap, folder)
        self._message(f"added case {entry['case']} to {folder}")
        return entry

    def import_labels(self, path: str | Path, allow_resample: bool | None = None) -> None:
        """Labels onto the open image. Another patient/series: refused (shown here). A map with no
        sidecar on another grid: resampled only if the user confirms (``allow_resample`` None asks)."""
        from medview.annotation.commands import _load_labels
        from medview.annotation.identity import ResampleRefused

        vol = self.state.volume
        if vol is None:
            return
        try:
            lm = _load_labels(str(path), vol, bool(allow_resample))
        except ResampleRefused as exc:
            if allow_resample is False or not self._confirm_resample(Path(path).name):
                self._message(f"not imported: {exc.reason}")
                return
            lm = _load_labels(str(path), vol, True)
        self.session.start(lm)
        for w in lm.volume.warnings:
            self._message(w)

    def _confirm_resample(self, name: str) -> bool:
        from PySide6.QtWidgets import QMessageBox

        text = (f"{name} has no sidecar naming the patient or series it was drawn on, and its voxel grid is "
                "not the grid of this image.\n\nResampling places every label voxel at its world position "
                "(nearest neighbour) on this image's grid: labels outside the image are lost, and nothing "
                "checks that the labels belong to this patient.\n\nResample and import?")
        answer = QMessageBox.question(self, "Resample labels?", text,
                                      QMessageBox.StandardButton.Yes | QMessageBox.StandardButton.No,
                                      QMessageBox.StandardButton.No)
        return answer == QMessageBox.StandardButton.Yes

    def _run_guarded(self, fn, *args) -> None:
        try:
            fn(*args)
        except Exception as exc:  # noqa: BLE001 - any failure becomes one clear message; work is kept
            self._message(f"failed: {exc}")

    def _ask_export_nifti(self) -> None:
        path, _ = QFileDialog.getSaveFileName(self, "Export label map", "labels.nii.gz", "NIfTI (*.nii.gz *.nii)")
        if path:
            self._run_guarded(self.export_nifti, path)

    def _ask_export_seg(self) -> None:
        path, _ = QFileDialog.getSaveFileName(self, "Export DICOM SEG", "seg.dcm", "DICOM (*.dcm)")
        if path:
            self._run_guarded(self.export_seg, path)

    def _ask_export_training(self) -> None:
        folder = QFileDialog.getExistingDirectory(self, "Training-set folder")
        if folder:
            self._run_guarded(self.export_training, folder)

    def _ask_import(self) -> None:
        path, _ = QFileDialog.getOpenFileName(self, "Import labels", "", "Labels (*.nii.gz *.nii *.dcm);;All files (*)")
        if path:
            self._run_guarded(self.import_labels, path)

    # ---- classification review ---------------------------------------------------------------------
    def set_classification(self, prediction: Any) -> None:
        """Show a classification result to accept / reject / relabel."""
        self.classification = prediction
        self._refresh_review()
        self._show_me()

    def _refresh_review(self) -> None:
        self.review_group.refresh(self.classification, self.reviews)

    def review(self, decision: str, final_label: str | None = None) -> ClassificationReview | None:
        p = self.classification
        if p is None:
            return None
        meta = dict(self.state.volume.meta) if self.state.volume is not None else {}
        try:
            r = ClassificationReview.from_prediction(p, meta, decision, final_label=final_label,
                                                     comment=self.comment_edit.text().strip())
        except ValueError as exc:
            self._message(str(exc))
            return None
        self.reviews.append(r)
        self.comment_edit.clear()
        self._save_reviews_to_workspace()
        self._refresh_review()
        self._message(f"review saved: {decision} ({r.final_label or 'no class'})")
        return r

    def _save_reviews_to_workspace(self) -> None:
        from medview.annotation.workspace import atomic_write_bytes, workspaces_dir

        base = self.workspace_base or workspaces_dir()
        path = base / "reviews" / "classification_reviews.json"
        try:
            existing: list[dict] = []
            if path.is_file():
                existing = json.loads(path.read_text(encoding="utf-8")).get("reviews", [])
            data = {"schema": "medview-classification-reviews/1",
                    "reviews": existing + [self.reviews[-1].to_dict()]}
            atomic_write_bytes(path, json.dumps(data, indent=2).encode("utf-8"))
        except (OSError, ValueError) as exc:
            self._message(f"could not autosave the review: {exc}")

    def export_reviews(self, stem: str | Path) -> tuple[Path, Path]:
        stem = Path(stem)
        base = stem.with_suffix("") if stem.suffix.lower() in (".json", ".csv") else stem
        j, c = base.with_suffix(".json"), base.with_suffix(".csv")
        save_reviews_json(self.reviews, j)
        save_reviews_csv(self.reviews, c)
        self._message(f"saved {j} and {c}")
        return j, c

    def _ask_export_reviews(self) -> None:
        path, _ = QFileDialog.getSaveFileName(self, "Export reviews", "reviews.json", "JSON (*.json)")
        if path:
            self._run_guarded(self.export_reviews, path)

    # ---- crash recovery ----------------------------------------------------------------------------
    def check_recovery(self) -> list[Path]:
        """Look for sessions a crash left behind and offer to restore the newest (non-modal)."""
        self._recoverable = sorted(find_recoverable(self.workspace_base),
                                   key=lambda p: (p / "snapshot.json").stat().st_mtime, reverse=True)
        if not self._recoverable:
            self.recovery_box.hide()
            return []
        root = self._recoverable[0]
        try:
            info = json.loads((root / "workspace.json").read_text(encoding="utf-8"))
            ref = info.get("reference", {})
            what = ref.get("SeriesDescription") or ref.get("source_path") or root.name
        except (OSError, ValueError):
            what = root.name
        more = f" (and {len(self._recoverable) - 1} more)" if len(self._recoverable) > 1 else ""
        self.recovery_label.setText(f"MedView was not closed properly. Unsaved annotation of {what}{more} "
                                    "can be restored.")
        self.recovery_box.show()
        self._show_me()  # the offer must be in front, not behind another tab
        return self._recoverable

    def restore(self, root: Path) -> bool:
        """Restore a crashed session: opens its image if another one is shown, then its labels."""
        from medview.annotation.workspace import load_workspace

        lm, _ = load_workspace(root)
        vol = self.state.volume
        if vol is None or not vol.same_geometry(lm.volume, tol=1e-3):
            src = lm.reference.get("source_path")
            if self.main_window is not None and src and Path(src).exists():
                self._pending_restore = root
                self.main_window.open_path(src)
                self._message(f"opening {src} to restore its labels...")
                return False
            self._message(f"open the image of {root.name} first, then press Restore")
            return False
        try:
            self.session.resume(root)
        except ValueError as exc:
            self._message(str(exc))
            return False
        self._recoverable = [p for p in self._recoverable if p != root]
        self.recovery_box.setVisible(bool(self._recoverable))
        n = len(self.session.history.undo_names()) if self.session.history is not None else 0
        self._message(f"restored the labels of {root.name}" + (f" ({n} edit(s) can be undone)" if n else ""))
        self._focus_viewer()  # not a text field: single-key shortcuts must not type into it
        return True

    def _discard_recovery(self) -> None:
        if self._recoverable:
            discard(self._recoverable.pop(0))
        self.recovery_box.setVisible(bool(self._recoverable))

    # ---- closing -------------------------------------------------------------------------------------
    def shutdown(self) -> None:
        self.session.stop()


class _CloseWatcher(QObject):
    """Saves and closes the annotation session when the main window closes."""

    def __init__(self, panel: AnnotationPanel) -> None:
        super().__init__(panel)
        self.panel = panel

    def eventFilter(self, obj, ev) -> bool:  # noqa: N802 - Qt API
        if ev.type() == QEvent.Type.Close:
            self.panel.shutdown()
        return False


def install(main_window) -> AnnotationPanel:
    """Add the Annotation tab to ``main_window`` and offer to restore a crashed session."""
    panel = AnnotationPanel(main_window.state, main_window)
    main_window.add_side_panel("Annotation", panel)
    main_window.annotation_panel = panel
    watcher = _CloseWatcher(panel)
    main_window.installEventFilter(watcher)
    from PySide6.QtWidgets import QApplication

    app = QApplication.instance()
    if app is not None:
        app.aboutToQuit.connect(panel.shutdown)
    QTimer.singleShot(0, panel.check_recovery)
    return panel


def _breakable(path: str) -> str:
    """``path`` with zero-width spaces after its separators and dots, so a word-wrapped label
    can break a long folder name instead of growing as wide as it."""
    return path.replace("/", "/\u200b").replace("\\", "\\\u200b").replace(".", ".\u200b")
