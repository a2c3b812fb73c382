"""Annotation side panel: label list, tools, undo/redo history, AI-edit summary, export/import,
classification review (accept / reject / relabel) and crash recovery.

``install(main_window)`` adds it as the "Annotation" tab and sets ``main_window.annotation_panel``;
other panels call ``annotation_panel.edit_prediction(prediction)`` ("Edit" on a segmentation
result) and ``annotation_panel.set_classification(prediction)`` (review a classification).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from PySide6.QtCore import QEvent, QObject, Qt, QTimer
from PySide6.QtGui import QBrush, QColor, QKeySequence, QShortcut
from PySide6.QtWidgets import (
    QAbstractItemView,
    QButtonGroup,
    QCheckBox,
    QColorDialog,
    QComboBox,
    QDoubleSpinBox,
    QFileDialog,
    QFormLayout,
    QFrame,
    QGridLayout,
    QGroupBox,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QListWidget,
    QPushButton,
    QSpinBox,
    QTableWidget,
    QTableWidgetItem,
    QToolButton,
    QVBoxLayout,
    QWidget,
)

from medview.annotation.labelmap import REVIEWER_SETTING, reviewer_name
from medview.annotation.review import ClassificationReview, save_reviews_csv, save_reviews_json
from medview.annotation.workspace import discard, find_recoverable
from medview.ui.annotation_tools import AnnotationSession
from medview.ui.viewer_state import ViewerState

TOOLS = [
    ("navigate", "Navigate", "Move the crosshair (no editing)"),
    ("annotate.brush", "Brush", "Paint the active label (Shift: erase)"),
    ("annotate.erase", "Eraser", "Erase labels (locked labels stay)"),
    ("annotate.threshold", "Threshold", "Paint only where the intensity is inside the range"),
    ("annotate.fill", "Fill", "Flood fill the clicked region in this slice (Shift: erase)"),
    ("annotate.lasso", "Lasso", "Drag an outline; it is filled on release (Shift: erase)"),
]


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
        self._updating = False
        self._build()
        s = self.session
        s.labels_changed.connect(self._refresh_labels)
        s.history_changed.connect(self._refresh_history)
        s.edited.connect(self._schedule_summary)
        s.session_changed.connect(self._refresh_session)
        s.message.connect(self._message)
        s.save_status.connect(self._on_save_status)
        state.tool_changed.connect(self._on_tool_changed)
        state.volume_changed.connect(self._on_volume)
        self._summary_timer = QTimer(self)
        self._summary_timer.setSingleShot(True)
        self._summary_timer.setInterval(300)
        self._summary_timer.timeout.connect(self._refresh_summary)
        shortcut_parent = main_window if main_window is not None else self
        self.undo_shortcut = QShortcut(QKeySequence("Ctrl+Z"), shortcut_parent, self.undo)
        self.redo_shortcut = QShortcut(QKeySequence("Ctrl+Shift+Z"), shortcut_parent, self.redo)
        for sc in (self.undo_shortcut, self.redo_shortcut):
            sc.setContext(Qt.ShortcutContext.WindowShortcut)
        self._refresh_session()

    # ---- layout ----------------------------------------------------------------------------------
    def _build(self) -> None:
        lay = QVBoxLayout(self)
        lay.setContentsMargins(4, 4, 4, 4)

        # crash recovery banner (non-modal: never blocks start-up)
        self.recovery_box = QFrame(self)
        self.recovery_box.setStyleSheet("QFrame { background: #5a4500; color: white; border-radius: 4px; }")
        rb = QVBoxLayout(self.recovery_box)
        self.recovery_label = QLabel("", self.recovery_box)
        self.recovery_label.setWordWrap(True)
        rb.addWidget(self.recovery_label)
        row = QHBoxLayout()
        self.restore_button = QPushButton("Restore", self.recovery_box)
        self.restore_button.clicked.connect(lambda: self.restore(self._recoverable[0]))
        self.discard_button = QPushButton("Discard", self.recovery_box)
        self.discard_button.clicked.connect(self._discard_recovery)
        row.addWidget(self.restore_button)
        row.addWidget(self.discard_button)
        rb.addLayout(row)
        self.recovery_box.hide()
        self._recoverable: list[Path] = []
        lay.addWidget(self.recovery_box)
        # autosave failure banner (disk full, I/O error): shown at once, cleared when written again
        self.save_error_label = QLabel("", self)
        self.save_error_label.setWordWrap(True)
        self.save_error_label.setStyleSheet("QLabel { background: #8b1a1a; color: white; padding: 4px; "
                                            "border-radius: 4px; }")
        self.save_error_label.hide()
        lay.addWidget(self.save_error_label)

        row = QHBoxLayout()
        row.addWidget(QLabel("Reviewer", self))
        self.reviewer_edit = QLineEdit(reviewer_name(), self)
        self.reviewer_edit.setToolTip("Recorded in every label map and review you make (saved in settings)")
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
        row.addWidget(self.new_button)
        row.addWidget(self.reopen_button)
        row.addWidget(self.close_button)
        lay.addLayout(row)
        self.status = QLabel("", self)
        self.status.setWordWrap(True)
        lay.addWidget(self.status)

        # labels
        box = QGroupBox("Labels", self)
        bl = QVBoxLayout(box)
        self.label_table = QTableWidget(0, 4, box)
        self.label_table.setHorizontalHeaderLabels(["", "Name", "Show", "Lock"])
        self.label_table.verticalHeader().hide()
        self.label_table.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
        self.label_table.setSelectionMode(QAbstractItemView.SelectionMode.SingleSelection)
        self.label_table.horizontalHeader().setStretchLastSection(False)
        self.label_table.setColumnWidth(0, 24)
        self.label_table.setColumnWidth(1, 130)
        self.label_table.setColumnWidth(2, 44)
        self.label_table.setColumnWidth(3, 44)
        self.label_table.setMaximumHeight(150)
        self.label_table.itemChanged.connect(self._on_label_item_changed)
        self.label_table.itemSelectionChanged.connect(self._on_label_selected)
        self.label_table.cellDoubleClicked.connect(self._on_label_double_clicked)
        bl.addWidget(self.label_table)
        row = QHBoxLayout()
        self.add_label_button = QPushButton("Add", box)
        self.add_label_button.clicked.connect(lambda: self.add_label())
        self.recolor_button = QPushButton("Colour...", box)
        self.recolor_button.clicked.connect(self._ask_color)
        row.addWidget(self.add_label_button)
        row.addWidget(self.recolor_button)
        bl.addLayout(row)
        lay.addWidget(box)

        # tools
        box = QGroupBox("Tools", self)
        tl = QGridLayout(box)
        self.tool_buttons: dict[str, QToolButton] = {}
        self.tool_group = QButtonGroup(self)
        self.tool_group.setExclusive(True)
        for n, (name, text, tip) in enumerate(TOOLS):
            b = QToolButton(box)
            b.setText(text)
            b.setToolTip(tip)
            b.setCheckable(True)
            b.clicked.connect(lambda _=False, nm=name: self.state.set_tool(nm))
            self.tool_group.addButton(b)
            self.tool_buttons[name] = b
            tl.addWidget(b, n // 3, n % 3)
        form = QFormLayout()
        self.radius_spin = QDoubleSpinBox(box)
        self.radius_spin.setRange(0.1, 100.0)
        self.radius_spin.setSingleStep(0.5)
        self.radius_spin.setSuffix(" mm")
        self.radius_spin.setValue(self.session.radius_mm)
        self.radius_spin.valueChanged.connect(lambda v: setattr(self.session, "radius_mm", float(v)))
        self.sphere_check = QCheckBox("3D sphere", box)
        self.sphere_check.toggled.connect(lambda on: setattr(self.session, "sphere", bool(on)))
        r = QHBoxLayout()
        r.addWidget(self.radius_spin)
        r.addWidget(self.sphere_check)
        form.addRow("Brush radius", r)
        self.thr_lo = QDoubleSpinBox(box)
        self.thr_hi = QDoubleSpinBox(box)
        for sp in (self.thr_lo, self.thr_hi):
            sp.setRange(-1e6, 1e6)
            sp.setDecimals(1)
            sp.valueChanged.connect(self._on_threshold)
        r = QHBoxLayout()
        r.addWidget(self.thr_lo)
        r.addWidget(self.thr_hi)
        form.addRow("Threshold", r)
        self.tol_spin = QDoubleSpinBox(box)
        self.tol_spin.setRange(0, 1e6)
        self.tol_spin.setToolTip("0: fill the clicked label's region; >0: pixels within +- this intensity")
        self.tol_spin.valueChanged.connect(lambda v: setattr(self.session, "fill_tolerance", float(v)))
        form.addRow("Fill tolerance", self.tol_spin)
        tl.addLayout(form, 2, 0, 1, 3)
        ops_row = QGridLayout()
        self.islands_spin = QSpinBox(box)
        self.islands_spin.setRange(1, 10_000_000)
        self.islands_spin.setValue(50)
        self.islands_spin.setSuffix(" vox")
        self.islands_button = QPushButton("Remove islands <", box)
        self.islands_button.clicked.connect(lambda: self.session.remove_islands(self.islands_spin.value()))
        self.largest_button = QPushButton("Keep largest", box)
        self.largest_button.clicked.connect(self.session.keep_largest)
        self.interp_button = QPushButton("Interpolate slices", box)
        self.interp_button.setToolTip("Fill the gaps between slices that have the active label (active view's plane)")
        self.interp_button.clicked.connect(lambda: self.session.interpolate())
        self.copy_button = QPushButton("Copy previous slice", box)
        self.copy_button.clicked.connect(lambda: self.session.copy_previous_slice())
        ops_row.addWidget(self.islands_button, 0, 0)
        ops_row.addWidget(self.islands_spin, 0, 1)
        ops_row.addWidget(self.largest_button, 1, 0)
        ops_row.addWidget(self.interp_button, 1, 1)
        ops_row.addWidget(self.copy_button, 2, 0)
        tl.addLayout(ops_row, 3, 0, 1, 3)
        lay.addWidget(box)

        # history
        box = QGroupBox("History", self)
        hl = QVBoxLayout(box)
        row = QHBoxLayout()
        self.undo_button = QPushButton("Undo", box)
        self.undo_button.setToolTip("Ctrl+Z")
        self.undo_button.clicked.connect(self.undo)
        self.redo_button = QPushButton("Redo", box)
        self.redo_button.setToolTip("Ctrl+Shift+Z")
        self.redo_button.clicked.connect(self.redo)
        row.addWidget(self.undo_button)
        row.addWidget(self.redo_button)
        hl.addLayout(row)
        self.history_list = QListWidget(box)
        self.history_list.setMaximumHeight(110)
        hl.addWidget(self.history_list)
        self.summary_label = QLabel("", box)
        self.summary_label.setWordWrap(True)
        hl.addWidget(self.summary_label)
        lay.addWidget(box)

        # export / import
        box = QGroupBox("Export / import", self)
        el = QGridLayout(box)
        self.export_nifti_button = QPushButton("NIfTI + JSON...", box)
        self.export_nifti_button.clicked.connect(self._ask_export_nifti)
        self.export_seg_button = QPushButton("DICOM SEG...", box)
        self.export_seg_button.clicked.connect(self._ask_export_seg)
        self.export_train_button = QPushButton("Add to training set...", box)
        self.export_train_button.clicked.connect(self._ask_export_training)
        self.import_button = QPushButton("Import labels...", box)
        self.import_button.clicked.connect(self._ask_import)
        el.addWidget(self.export_nifti_button, 0, 0)
        el.addWidget(self.export_seg_button, 0, 1)
        el.addWidget(self.export_train_button, 1, 0)
        el.addWidget(self.import_button, 1, 1)
        lay.addWidget(box)

        # classification review
        self.review_box = QGroupBox("Classification review", self)
        rl = QVBoxLayout(self.review_box)
        self.review_label = QLabel("No classification result to review.", self.review_box)
        self.review_label.setWordWrap(True)
        rl.addWidget(self.review_label)
        row = QHBoxLayout()
        self.accept_button = QPushButton("Accept", self.review_box)
        self.reject_button = QPushButton("Reject", self.review_box)
        self.relabel_button = QPushButton("Relabel as", self.review_box)
        self.relabel_combo = QComboBox(self.review_box)
        self.accept_button.clicked.connect(lambda: self.review("accept"))
        self.reject_button.clicked.connect(lambda: self.review("reject"))
        self.relabel_button.clicked.connect(lambda: self.review("relabel", self.relabel_combo.currentText()))
        for w in (self.accept_button, self.reject_button, self.relabel_button, self.relabel_combo):
            row.addWidget(w)
        rl.addLayout(row)
        self.comment_edit = QLineEdit(self.review_box)
        self.comment_edit.setPlaceholderText("comment (optional)")
        rl.addWidget(self.comment_edit)
        self.reviews_list = QListWidget(self.review_box)
        self.reviews_list.setMaximumHeight(80)
        rl.addWidget(self.reviews_list)
        row = QHBoxLayout()
        self.export_reviews_button = QPushButton("Export reviews (JSON + CSV)...", self.review_box)
        self.export_reviews_button.clicked.connect(self._ask_export_reviews)
        row.addWidget(self.export_reviews_button)
        rl.addLayout(row)
        lay.addWidget(self.review_box)
        self._refresh_review()
        lay.addStretch(1)

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
        if self.state.tool == "navigate" or not self.state.tool.startswith("annotate."):
            self.state.set_tool("annotate.brush")

    def saved_workspace(self) -> Path | None:
        """The workspace of the open image left by an earlier (closed) session, if any."""
        from medview.annotation.labelmap import reference_from_image
        from medview.annotation.workspace import needs_recovery, workspace_key, workspaces_dir

        vol = self.state.volume
        if vol is None:
            return None
        root = (self.workspace_base or workspaces_dir()) / workspace_key(reference_from_image(vol))
        if (root / "snapshot.json").is_file() and not (root / "session.lock").exists() or needs_recovery(root):
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
        """"Edit" on a segmentation result: the AI labels become editable; the summary follows."""
        self.session.edit_prediction(prediction)
        self.state.set_tool("annotate.brush")
        self._refresh_summary()
        self._show_me()

    def _show_me(self) -> None:
        w = self.main_window
        tabs = getattr(w, "side_tabs", None)
        if tabs is not None and tabs.indexOf(self) >= 0:
            tabs.setCurrentWidget(self)

    def _refresh_session(self) -> None:
        s = self.session
        on = s.active
        for w in (self.close_button, self.add_label_button, self.recolor_button, self.islands_button,
                  self.largest_button, self.interp_button, self.copy_button, self.export_nifti_button,
                  self.export_seg_button, self.export_train_button):
            w.setEnabled(on)
        self.new_button.setEnabled(self.state.volume is not None)
        self.reopen_button.setEnabled(not on and self.saved_workspace() is not None)
        self.import_button.setEnabled(self.state.volume is not None)
        if on:
            assert s.labelmap is not None
            p = s.labelmap.provenance
            src = f"AI: {p.model_id} {p.model_version}" if p.source == "model" else p.source
            where = f"; autosaved in {s.workspace.root}" if s.workspace is not None else "; autosave OFF"
            self.status.setText(f"Editing ({src}), reviewer {p.reviewer}{where}")
            self.export_seg_button.setEnabled(bool(s.labelmap.reference.get("source_files")))
        else:
            self.status.setText("No label map. 'New label map' starts one on the open image.")
        self._refresh_summary()

    def _on_volume(self, vol) -> None:
        self._refresh_session()
        if vol is not None:  # a photograph has no pixel size: the brush is measured in pixels
            self.radius_spin.setSuffix(f" {vol.length_unit}")
        if vol is not None and not vol.is_rgb:
            self.set_threshold_from_window()  # a sensible threshold-paint range to start from
        if vol is not None and self._pending_restore is not None:
            root, self._pending_restore = self._pending_restore, None
            QTimer.singleShot(0, lambda: self.restore(root))

    # ---- labels --------------------------------------------------------------------------------
    def _refresh_labels(self) -> None:
        lm = self.session.labelmap
        self._updating = True
        try:
            self.label_table.setRowCount(0)
            if lm is None:
                return
            for v, lab in sorted(lm.labels.items()):
                r = self.label_table.rowCount()
                self.label_table.insertRow(r)
                sw = QTableWidgetItem("")
                sw.setBackground(QBrush(QColor(*lab.color)))
                sw.setFlags(Qt.ItemFlag.ItemIsEnabled | Qt.ItemFlag.ItemIsSelectable)
                sw.setData(Qt.ItemDataRole.UserRole, v)
                sw.setToolTip(f"value {v}; double-click to change the colour")
                self.label_table.setItem(r, 0, sw)
                nm = QTableWidgetItem(lab.name)
                nm.setData(Qt.ItemDataRole.UserRole, v)
                self.label_table.setItem(r, 1, nm)
                for col, on in ((2, lab.visible), (3, lab.locked)):
                    it = QTableWidgetItem("")
                    it.setFlags(Qt.ItemFlag.ItemIsEnabled | Qt.ItemFlag.ItemIsUserCheckable
                                | Qt.ItemFlag.ItemIsSelectable)
                    it.setCheckState(Qt.CheckState.Checked if on else Qt.CheckState.Unchecked)
                    it.setData(Qt.ItemDataRole.UserRole, v)
                    self.label_table.setItem(r, col, it)
                if v == self.session.active_value:
                    self.label_table.selectRow(r)
        finally:
            self._updating = False

    def _on_label_item_changed(self, item: QTableWidgetItem) -> None:
        lm = self.session.labelmap
        if self._updating or lm is None:
            return
        v = int(item.data(Qt.ItemDataRole.UserRole))
        if v not in lm.labels:
            return
        col = item.column()
        if col == 1 and item.text().strip() and item.text() != lm.labels[v].name:
            lm.rename(v, item.text().strip())
        elif col == 2:
            lm.set_visible(v, item.checkState() == Qt.CheckState.Checked)
        elif col == 3:
            lm.set_locked(v, item.checkState() == Qt.CheckState.Checked)

    def _on_label_selected(self) -> None:
        if self._updating:
            return
        rows = self.label_table.selectionModel().selectedRows()
        if rows:
            it = self.label_table.item(rows[0].row(), 1)
            if it is not None:
                self.session.active_value = int(it.data(Qt.ItemDataRole.UserRole))

    def _on_label_double_clicked(self, row: int, col: int) -> None:
        if col == 0:
            self._ask_color()

    def select_label(self, value: int) -> None:
        self.session.active_value = int(value)
        self._refresh_labels()

    def add_label(self, name: str | None = None, color: tuple[int, int, int] | None = None) -> int:
        lm = self.session.labelmap
        if lm is None:
            return 0
        lab = lm.add_label(name, color)
        self.select_label(lab.value)
        return lab.value

    def _ask_color(self) -> None:
        lm = self.session.labelmap
        v = self.session.active_value
        if lm is None or v not in lm.labels:
            return
        c = QColorDialog.getColor(QColor(*lm.labels[v].color), self, f"Colour of {lm.labels[v].name}")
        if c.isValid():
            lm.recolor(v, (c.red(), c.green(), c.blue()))

    # ---- tools -----------------------------------------------------------------------------------
    def _on_tool_changed(self, name: str) -> None:
        b = self.tool_buttons.get(name)
        if b is not None:
            b.setChecked(True)
        else:
            self.tool_group.setExclusive(False)
            for btn in self.tool_buttons.values():
                btn.setChecked(False)
            self.tool_group.setExclusive(True)

    def _on_threshold(self) -> None:
        lo, hi = self.thr_lo.value(), self.thr_hi.value()
        self.session.threshold = (min(lo, hi), max(lo, hi))

    def set_threshold_from_window(self) -> None:
        w, lev = self.state.window
        self.thr_lo.setValue(lev - w / 2)
        self.thr_hi.setValue(lev + w / 2)

    # ---- history -------------------------------------------------------------------------------
    def undo(self) -> None:
        self.session.undo()

    def redo(self) -> None:
        self.session.redo()

    def _refresh_history(self) -> None:
        h = self.session.history
        self.history_list.clear()
        if h is None:
            self.undo_button.setEnabled(False)
            self.redo_button.setEnabled(False)
            return
        for name in h.undo_names():
            self.history_list.addItem(name)
        for name in reversed(h.redo_names()):
            self.history_list.addItem(f"({name}: undone)")
        n = len(h.undo_names())
        if n:
            self.history_list.setCurrentRow(n - 1)
        self.undo_button.setEnabled(h.can_undo())
        self.redo_button.setEnabled(h.can_redo())
        self.history_list.setToolTip(f"undo memory: {h.nbytes / 1024:.1f} KiB")
        ws = self.session.workspace
        if ws is not None and ws.save_error:
            self._on_save_status(ws.save_error)

    def _schedule_summary(self) -> None:
        self._summary_timer.start()

    def _refresh_summary(self) -> None:
        s = self.session
        if s.labelmap is None:
            self.summary_label.setText("")
            return
        p = s.labelmap.provenance
        stats = f"{p.strokes} edit(s), {p.undos} undo(s); {p.voxels_painted} voxels painted, {p.voxels_erased} erased"
        summ = s.summary()
        if summ is None:
            self.summary_label.setText(stats)
            return
        lines = [f"vs AI: {summ['voxels_changed']} voxels changed, Dice {summ['dice_all']:.3f}"]
        for r in summ["labels"]:
            lines.append(f"  {r['name']}: +{r['added']} / -{r['removed']} vox, Dice {r['dice']:.3f}")
        self.summary_label.setText("\n".join([*lines, stats]))

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
        p = self.classification
        on = p is not None and bool(getattr(p, "probabilities", None))
        for w in (self.accept_button, self.reject_button, self.relabel_button, self.relabel_combo, self.comment_edit):
            w.setEnabled(on)
        self.export_reviews_button.setEnabled(bool(self.reviews))
        if on:
            probs = ", ".join(f"{k} {v:.2f}" for k, v in sorted(p.probabilities.items(), key=lambda kv: -kv[1]))
            self.review_label.setText(f"{p.model_id} {p.model_version}: <b>{p.top_class}</b> ({probs})")
            self.relabel_combo.clear()
            self.relabel_combo.addItems([c for c in (p.classes or list(p.probabilities)) if c != p.top_class])
        self.reviews_list.clear()
        for r in self.reviews:
            txt = f"{r.decision}: {r.predicted} -> {r.final_label or '-'}"
            self.reviews_list.addItem(txt + (f" ({r.comment})" if r.comment else ""))

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
        self._show_me()
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
        self._message(f"restored the labels of {root.name}")
        self.state.set_tool("annotate.brush")
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
