"""MedView's main window: study browser | linked slice views | side panels, status bar, menus.

Other panels plug in with ``main_window.add_side_panel(title, widget)`` and talk to the views
only through ``main_window.state`` (a ViewerState).

Opening studies is in medview.ui.study_loading, hanging protocols in medview.ui.protocol_actions
(both mixins of MainWindow), the menus and toolbar in medview.ui.main_menus.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
from PySide6.QtCore import QSettings, Qt, Signal
from PySide6.QtGui import QGuiApplication
from PySide6.QtWidgets import (
    QDockWidget,
    QFileDialog,
    QLabel,
    QMainWindow,
    QProgressBar,
    QPushButton,
    QTabWidget,
    QWidget,
)

from medview.config import resources_dir
from medview.measure import auto_window, dicom_window
from medview.ui.dicom_tags import DicomTagBrowser, SeriesInfoPanel
from medview.ui.main_menus import build_menus_and_toolbar
from medview.ui.protocol_actions import HangingProtocolActions
from medview.ui.study_browser import StudyBrowser
from medview.ui.study_loading import StudyLoading
from medview.ui.viewer import ViewerArea
from medview.ui.viewer_state import ViewerState
from medview.ui.workers import Worker


def load_presets() -> dict[str, Any]:
    p = resources_dir() / "presets" / "window_level.json"
    try:
        return json.loads(p.read_text())
    except (OSError, ValueError):
        return {"ct": [], "auto_percentiles": [0.5, 99.5]}


MAX_RECENT = 10


def describe_position(vol, ijk) -> dict[str, str]:
    """Status-bar texts for a continuous voxel position: value (HU for CT), voxel, world mm."""
    z, y, x = vol.shape
    v = np.round(np.asarray(ijk, float)).astype(int)
    inside = 0 <= v[0] < x and 0 <= v[1] < y and 0 <= v[2] < z
    world = vol.index_to_world(np.asarray(ijk, float))
    out = {"voxel": f"voxel ({v[0]}, {v[1]}, {v[2]})" if inside else "outside",
           "world": f"LPS ({world[0]:.1f}, {world[1]:.1f}, {world[2]:.1f}) mm" if vol.pixel_size_known
           else "no pixel size (photograph)"}
    if inside:
        val = vol.array[v[2], v[1], v[0]]
        if vol.is_rgb:
            out["value"] = "RGB (" + ", ".join(str(int(c)) for c in val) + ")"
        else:
            unit = " HU" if vol.modality == "CT" or vol.meta.get("Units") == "HU" else ""
            out["value"] = f"{float(val):.6g}{unit}"
    else:
        out["value"] = ""
    return out


class MainWindow(StudyLoading, HangingProtocolActions, QMainWindow):
    volume_loaded = Signal(object)  # Volume (after it is shown)
    load_failed = Signal(str)
    preview_shown = Signal(int)  # slice index k shown while the rest of the series loads

    def __init__(self, parent=None) -> None:
        super().__init__(parent)
        self.setWindowTitle("MedView (research use only, not for diagnosis)")
        screen = QGuiApplication.primaryScreen()
        avail = screen.availableGeometry() if screen is not None else None
        if avail is not None and avail.width() > 0:
            self.resize(min(1600, int(avail.width() * 0.95)), min(1000, int(avail.height() * 0.92)))
        else:
            self.resize(1600, 1000)
        self.setAcceptDrops(True)
        self.state = ViewerState(self)
        self.presets = load_presets()
        self.index = None
        self.current_series = None
        self._load_worker: Worker | None = None
        self._scan_worker: Worker | None = None
        self._layout_before_2d: str | None = None  # restored when a 3D series follows a 2D image
        self._pending_overlay: str | None = None  # SEG/RTSTRUCT to show once its series is loaded

        self.viewer = ViewerArea(self.state, self)
        # the viewer, and beside it (hidden until used) a prior / second series to compare
        from PySide6.QtWidgets import QSplitter

        from medview.ui.compare_view import ComparePane

        self.compare = ComparePane(self.state, self.viewer.views, self)
        self.central_split = QSplitter(Qt.Orientation.Horizontal, self)
        self.central_split.addWidget(self.viewer)
        self.central_split.addWidget(self.compare)
        self.compare.loaded.connect(self._on_compare_loaded)
        self.setCentralWidget(self.central_split)
        self.protocol = None  # the hanging protocol applied to the open study
        self.viewer.hovered.connect(self._on_hover)

        # left: study browser, then series info / DICOM tags
        self.browser = StudyBrowser(self)
        self.browser.series_activated.connect(self.open_series)
        self.browser.files_dropped.connect(self.open_path)
        self.browser_dock = self._dock("Study browser", self.browser, Qt.DockWidgetArea.LeftDockWidgetArea)
        self.series_info = SeriesInfoPanel(self.state, self)
        self.tag_browser = DicomTagBrowser(self.state, self)
        self.info_tabs = QTabWidget(self)
        self.info_tabs.addTab(self.series_info, "Series info")
        self.info_tabs.addTab(self.tag_browser, "DICOM tags")
        self.info_dock = self._dock("Series", self.info_tabs, Qt.DockWidgetArea.LeftDockWidgetArea)

        # right: panels contributed by other parts (AI results, annotation ...)
        self.side_tabs = QTabWidget(self)
        self.side_dock = self._dock("Panels", self.side_tabs, Qt.DockWidgetArea.RightDockWidgetArea)
        self.side_dock.hide()
        self._side_panels: dict[str, QWidget] = {}

        self.resizeDocks([self.browser_dock], [330], Qt.Orientation.Horizontal)
        self._make_status_bar()
        build_menus_and_toolbar(self)
        self.state.volume_changed.connect(self._on_volume)
        self.state.tool_changed.connect(self._on_tool_changed)
        self.state.layout_changed.connect(self._on_layout_changed)
        # annotation tools and panels report through the state: the status bar shows it
        self.state.status_message.connect(lambda msg: self.statusBar().showMessage(msg, 8000))

    # ---- public API -----------------------------------------------------------------------------
    def add_side_panel(self, title: str, widget: QWidget) -> QWidget:
        """Add ``widget`` as a tab of the right-hand dock (shown on first use); returns it."""
        from PySide6.QtWidgets import QFrame, QScrollArea

        if title in self._side_panels:
            old = self._side_panels[title]
            holder = old.parentWidget()
            while holder is not None and not isinstance(holder, QScrollArea):
                holder = holder.parentWidget()
            self.side_tabs.removeTab(self.side_tabs.indexOf(holder if holder is not None else old))
        self._side_panels[title] = widget
        # a tall panel scrolls instead of forcing the window taller than the screen
        scroll = QScrollArea()
        scroll.setWidgetResizable(True)
        scroll.setFrameShape(QFrame.Shape.NoFrame)
        # panels scroll down, never sideways: the dock is as wide as its widest panel needs
        scroll.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
        scroll.setWidget(widget)
        self.side_tabs.addTab(scroll, title)
        self.side_dock.show()
        self._fit_side_dock()
        return widget

    def _fit_side_dock(self) -> None:
        """The right dock as wide as its widest panel needs (no sideways scrolling), at most
        a third of the default 1600-pixel window so the images keep the rest."""
        from PySide6.QtWidgets import QApplication, QStyle

        bar = QApplication.style().pixelMetric(QStyle.PixelMetric.PM_ScrollBarExtent)
        need = max((w.minimumSizeHint().width() for w in self._side_panels.values()), default=0)
        width = min(need + bar + 24, 530)
        self.side_dock.setMinimumWidth(width)
        self.resizeDocks([self.side_dock], [width], Qt.Orientation.Horizontal)

    def side_panel(self, title: str) -> QWidget | None:
        return self._side_panels.get(title)

    def show_worklist(self):
        """The PACS worklist dock (medview.ui.worklist), made on first use."""
        from medview.ui.worklist import show_worklist

        return show_worklist(self)

    # ---- docks, status bar --------------------------------------------------------------------------
    def _dock(self, title: str, widget: QWidget, area) -> QDockWidget:
        dock = QDockWidget(title, self)
        dock.setObjectName(title.replace(" ", "_"))
        dock.setWidget(widget)
        self.addDockWidget(area, dock)
        return dock

    def _make_status_bar(self) -> None:
        sb = self.statusBar()
        self.value_label = QLabel("")
        self.voxel_label = QLabel("")
        self.world_label = QLabel("")
        for lab in (self.value_label, self.voxel_label, self.world_label):
            lab.setMinimumWidth(150)
            sb.addPermanentWidget(lab)
        self.progress = QProgressBar()
        self.progress.setRange(0, 1000)
        self.progress.setMaximumWidth(220)
        self.cancel_button = QPushButton("Cancel")
        self.cancel_button.clicked.connect(self._cancel_jobs)
        sb.addPermanentWidget(self.progress)
        sb.addPermanentWidget(self.cancel_button)
        self._show_progress(False)

    def _show_progress(self, on: bool) -> None:
        self.progress.setVisible(on)
        self.cancel_button.setVisible(on)
        if on:
            self.progress.setValue(0)

    # ---- window/level ------------------------------------------------------------------------------
    def apply_preset(self, name: str) -> None:
        for p in self.presets.get("ct", []):
            if p["name"].lower() == name.lower():
                self.state.set_window(float(p["width"]), float(p["level"]))
                return
        raise KeyError(name)

    def apply_relative_preset(self, name: str) -> None:
        """A window between two percentiles of the data (for modalities without fixed units)."""
        vol = self.state.volume
        for p in self.presets.get("relative", []):
            if p["name"].lower() == name.lower():
                if vol is not None:
                    self.state.set_window(*auto_window(vol.array, float(p["low"]), float(p["high"])))
                return
        raise KeyError(name)

    def set_cine(self, on: bool) -> None:
        """Play the active view's slices (loops) at ``cine_fps``."""
        from PySide6.QtCore import QTimer

        if not hasattr(self, "_cine_timer"):
            self._cine_timer = QTimer(self)
            self._cine_timer.timeout.connect(self._cine_step)
            self.cine_fps = 10
        if on and self.state.volume is not None:
            self._cine_timer.start(int(1000 / self.cine_fps))
        else:
            self._cine_timer.stop()
            if self.cine_action.isChecked() != bool(on and self.state.volume is not None):
                self.cine_action.setChecked(False)

    def _cine_step(self) -> None:
        view = self.viewer.views.get(self.state.active_view)
        if view is None or view.geom is None:
            return
        axis, n = view.geom.normal_axis, view.geom.n_slices
        c = list(self.state.cursor)
        c[axis] = (c[axis] + 1) % max(n, 1)
        self.state.set_cursor(c)

    def auto_window(self) -> None:
        vol = self.state.volume
        if vol is not None:
            self.state.set_window(*auto_window(vol.array, *self.presets.get("auto_percentiles", (0.5, 99.5))))

    def dicom_window(self) -> None:
        vol = self.state.volume
        w = dicom_window(vol.meta) if vol is not None else None
        if w is not None:
            self.state.set_window(*w)
        else:
            self.statusBar().showMessage("This series has no DICOM window", 3000)

    def reset_view(self) -> None:
        self.state.reset_window()
        self.state.set_invert(False)
        self.viewer.fit_all()

    # ---- measurements ------------------------------------------------------------------------------
    def delete_selected_measurement(self) -> None:
        for v in self.viewer.views.values():
            if v.selected_measurement is not None:
                self.state.remove_measurement(v.selected_measurement)
                v.selected_measurement = None

    def delete_measurements_on_slices(self) -> None:
        keep = [m for m in self.state.measurements
                if m.slice_index != self.viewer.views[m.view].slice_index]
        for m in list(self.state.measurements):
            if m not in keep:
                self.state.remove_measurement(m.id)

    # ---- 3D view, heatmap threshold, comparison ----------------------------------------------------
    def show_3d(self, on: bool = True) -> None:
        """The 3D view in its own dock (made on first use: no GL cost at start-up)."""
        if on and getattr(self, "view3d_dock", None) is None:
            from medview.ui.volume3d import Volume3DView

            self.view3d = Volume3DView(self.state, self)
            self.view3d_dock = self._dock("3D view", self.view3d, Qt.DockWidgetArea.RightDockWidgetArea)
            self.tabifyDockWidget(self.side_dock, self.view3d_dock)  # a tab beside the panels, full height
            self.view3d_dock.visibilityChanged.connect(
                lambda vis: self.view3d_action.setChecked(vis) if not vis else None)
            if not self.view3d.available:
                self.statusBar().showMessage(f"3D view is off: {self.view3d.reason}", 8000)
        if getattr(self, "view3d_dock", None) is not None:
            self.view3d_dock.setVisible(on)
            if on:
                self.view3d_dock.raise_()
        if self.view3d_action.isChecked() != on:
            self.view3d_action.setChecked(on)

    def heatmap_for_threshold(self):
        from medview.ui.viewer_state import HeatmapLayer

        heat = [lay for lay in self.state.layers() if isinstance(lay, HeatmapLayer) and lay.visible]
        return heat[-1] if heat else None

    def _update_threshold_slider(self) -> None:
        layer = self.heatmap_for_threshold()
        for a in self._threshold_actions:
            a.setVisible(layer is not None)
        if layer is not None:
            span = max(layer.vmax - layer.vmin, 1e-12)
            self.threshold_slider.blockSignals(True)
            self.threshold_slider.setValue(int(round(100 * (layer.threshold - layer.vmin) / span)))
            self.threshold_slider.blockSignals(False)
            self.threshold_label.setText(f"  {layer.name} \u2265 {layer.threshold:.2f} ")

    def _on_threshold_slider(self, v: int) -> None:
        layer = self.heatmap_for_threshold()
        if layer is None:
            return
        t = layer.vmin + (layer.vmax - layer.vmin) * v / 100.0
        self.state.update_layer(layer.name, threshold=float(t))
        self.threshold_label.setText(f"  {layer.name} \u2265 {t:.2f} ")

    def _on_compare_loaded(self, _vol) -> None:
        """Each compared view as wide as one main view; the same magnification at once."""
        n = {"1x1": 1, "1x3": 3, "2x2": 2, "mpr": 2}[self.state.layout]
        total = max(self.central_split.width(), 2)
        self.central_split.setSizes([total * n // (n + 1), total // (n + 1)])
        from PySide6.QtWidgets import QApplication

        QApplication.processEvents()
        main_view = self.viewer.views.get(self.compare.view_name)
        if main_view is not None:
            self.compare._on_main_range(main_view)

    def _fill_compare_menu(self) -> None:
        m = self.compare_menu
        m.clear()
        if self.index is None:
            m.addAction("(open a study first)").setEnabled(False)
            return
        cur = self.current_series
        for s in sorted(self.index.series, key=lambda x: (x.study_date or "", x.series_number or 0), reverse=True):
            if cur is not None and s.uid == cur.uid:
                continue
            m.addAction(f"{s.study_date or ''} {s.modality} {s.description or Path(s.path).name}".strip(),
                        lambda s=s: self.compare.open_series(s))

    # ---- state reactions ----------------------------------------------------------------------------
    def _on_volume(self, vol) -> None:
        # readouts of the previous series must not stay beside the new one
        for lab in (self.value_label, self.voxel_label, self.world_label):
            lab.setText("")
        if vol is None and getattr(self, "cine_action", None) is not None:
            self.cine_action.setChecked(False)
        has_dicom_window = vol is not None and dicom_window(vol.meta) is not None
        self.dicom_window_action.setEnabled(has_dicom_window)
        for a in self.preset_actions.values():
            a.setEnabled(vol is not None and not vol.is_rgb)

    def _on_tool_changed(self, name: str) -> None:
        if name == "rotate" and self.state.layout not in ("2x2", "mpr"):
            self.state.set_layout("2x2")  # the oblique view it turns is the 2x2 fourth viewport
        act = self.tool_actions.get(name)
        if act is not None:
            act.setChecked(True)
        else:
            checked = self._tool_group.checkedAction()
            if checked is not None:
                self._tool_group.setExclusive(False)
                checked.setChecked(False)
                self._tool_group.setExclusive(True)

    def _on_layout_changed(self, layout: str) -> None:
        self.layout_actions[layout].setChecked(True)

    def _on_hover(self, view: str, ijk) -> None:
        vol = self.state.volume
        if vol is None or ijk is None:
            for lab in (self.value_label, self.voxel_label, self.world_label):
                lab.setText("")
            return
        d = describe_position(vol, ijk)
        self.value_label.setText(d["value"])
        self.voxel_label.setText(d["voxel"])
        self.world_label.setText(d["world"])

    # ---- file dialogs / drag and drop -----------------------------------------------------------------
    def _ask_folder(self) -> None:
        settings = QSettings("MedView", "MedView")
        d = QFileDialog.getExistingDirectory(self, "Open DICOM folder", settings.value("last_dir", ""))
        if d:
            settings.setValue("last_dir", d)
            self.open_path(d)

    def _ask_overlay(self) -> None:
        f, _ = QFileDialog.getOpenFileName(
            self, "Open label map as overlay", "",
            "Label maps (*.nii *.nii.gz *.nrrd *.mha *.mhd *.dcm);;All files (*)")
        if f:
            self.open_overlay(f)

    def _ask_export_measurements(self) -> None:
        f, _ = QFileDialog.getSaveFileName(self, "Export measurements", "measurements.csv", "CSV (*.csv)")
        if f:
            n = self.export_measurements(f)
            self.statusBar().showMessage(f"{n} measurement(s) written to {f}", 8000)

    def export_measurements(self, path: str | Path) -> int:
        """Every measurement of every series opened in this session, as CSV; returns the count."""
        import csv

        rows = self.state.measurement_rows()
        keys: list[str] = []
        for r in rows:
            keys.extend(k for k in r if k not in keys)
        with open(path, "w", newline="", encoding="utf-8") as fh:
            w = csv.DictWriter(fh, fieldnames=keys or ["kind"])
            w.writeheader()
            w.writerows(rows)
        return len(rows)

    # ---- recent files ------------------------------------------------------------------------------
    def recent_paths(self) -> list[str]:
        v = QSettings("MedView", "MedView").value("recent", [])
        return [str(x) for x in (v if isinstance(v, list) else [v] if v else [])]

    def add_recent(self, path: str | Path) -> None:
        p = str(Path(path).resolve()) if Path(path).exists() else str(path)
        items = [p] + [x for x in self.recent_paths() if x != p]
        QSettings("MedView", "MedView").setValue("recent", items[:MAX_RECENT])
        self._fill_recent_menu()

    def _fill_recent_menu(self) -> None:
        self.recent_menu.clear()
        paths = self.recent_paths()
        for p in paths:
            self.recent_menu.addAction(p, lambda x=p: self.open_path(x))
        self.recent_menu.setEnabled(bool(paths))

    def _ask_file(self) -> None:
        f, _ = QFileDialog.getOpenFileName(
            self, "Open image", "", "Images (*.dcm *.nii *.nii.gz *.nrrd *.mha *.mhd *.png *.jpg *.tif *.tiff "
                                    "DICOMDIR);;All files (*)")
        if f:
            self.open_path(f)

    def dragEnterEvent(self, ev):
        if ev.mimeData().hasUrls():
            ev.acceptProposedAction()

    def dropEvent(self, ev):
        urls = [u.toLocalFile() for u in ev.mimeData().urls() if u.isLocalFile()]
        if urls:
            self.open_path(urls[0])
            ev.acceptProposedAction()

    def closeEvent(self, ev):
        self._cancel_jobs()
        self.browser.cancel_thumbnails()
        super().closeEvent(ev)
