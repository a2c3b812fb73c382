"""MedView's main window: study browser | linked slice views | side panels, status bar, menus.

Other panels plug in with ``main_window.add_side_panel(title, widget)`` and talk to the views
only through ``main_window.state`` (a ViewerState).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
from PySide6.QtCore import QSettings, Qt, Signal
from PySide6.QtGui import QAction, QActionGroup, QGuiApplication, QKeySequence
from PySide6.QtWidgets import (
    QDockWidget,
    QFileDialog,
    QLabel,
    QMainWindow,
    QMessageBox,
    QProgressBar,
    QPushButton,
    QTabWidget,
    QToolBar,
    QWidget,
)

from medview.config import resources_dir
from medview.measure import auto_window, dicom_window
from medview.ui.dicom_tags import DicomTagBrowser, SeriesInfoPanel
from medview.ui.geometry import VIEWS
from medview.ui.study_browser import StudyBrowser
from medview.ui.viewer import ViewerArea
from medview.ui.viewer_state import LAYOUTS, ViewerState
from medview.ui.workers import Worker, start

TOOLS = (("navigate", "Navigate", "N"), ("wl", "Window/Level", "W"), ("pan", "Pan", "P"),
         ("ruler", "Ruler", "M"), ("ellipse", "Ellipse ROI", "E"), ("rect", "Rectangle ROI", "R"),
         ("rotate", "Rotate oblique", "O"))


def load_presets() -> dict[str, Any]:
    p = resources_dir() / "presets" / "window_level.json"
    try:
        return json.loads(p.read_text())
    except (OSError, ValueError):
        return {"ct": [], "auto_percentiles": [0.5, 99.5]}


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


class MainWindow(QMainWindow):
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
        self._make_actions()
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

    def show_worklist(self):
        """The PACS worklist dock (medview.ui.worklist), made on first use."""
        from medview.ui.worklist import show_worklist

        return show_worklist(self)

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

    # ---- docks, status, actions -------------------------------------------------------------------
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

    def _make_actions(self) -> None:
        mb = self.menuBar()
        fm = mb.addMenu("&File")
        a = fm.addAction("Open &folder...", self._ask_folder)
        a.setShortcut(QKeySequence("Ctrl+Shift+O"))
        a = fm.addAction("&Open file...", self._ask_file)
        a.setShortcut(QKeySequence.StandardKey.Open)
        fm.addAction("Open &label map / SEG / RTSTRUCT as overlay...", self._ask_overlay)
        fm.addAction("&PACS worklist...", self.show_worklist)
        self.recent_menu = fm.addMenu("&Recent")
        self._fill_recent_menu()
        fm.addAction("Export &measurements (CSV)...", self._ask_export_measurements)
        fm.addSeparator()
        a = fm.addAction("&Quit", self.close)
        a.setShortcut(QKeySequence.StandardKey.Quit)

        vm = mb.addMenu("&View")
        self.layout_actions: dict[str, QAction] = {}
        grp = QActionGroup(self)
        for n, lay in enumerate(LAYOUTS):
            act = QAction("MPR (patient axes)" if lay == "mpr" else f"Layout {lay}", self, checkable=True)
            act.setShortcut(QKeySequence(f"Ctrl+{n + 1}"))
            act.triggered.connect(lambda _c=False, x=lay: self.state.set_layout(x))
            grp.addAction(act)
            vm.addAction(act)
            self.layout_actions[lay] = act
        self.layout_actions[self.state.layout].setChecked(True)
        vm.addSeparator()
        for name in VIEWS:
            vm.addAction(f"Show {name} (1x1)", lambda x=name: (self.state.set_active_view(x),
                                                               self.state.set_layout("1x1")))
        vm.addSeparator()
        a = vm.addAction("&Fit to window", self.viewer.fit_all)
        a.setShortcut(QKeySequence("Ctrl+0"))
        a = vm.addAction("&Reset view and window", self.reset_view)
        a.setShortcut(QKeySequence("Ctrl+R"))
        self.crosshair_action = QAction("Crosshair", self, checkable=True, checked=True)
        self.crosshair_action.setShortcut(QKeySequence("C"))
        self.crosshair_action.toggled.connect(
            lambda on: [v.set_crosshair_visible(on) for v in self.viewer.views.values()])
        vm.addAction(self.crosshair_action)
        self.smooth_action = QAction("&Smooth display (interpolated)", self, checkable=True,
                                     checked=self.state.smooth)
        self.smooth_action.setShortcut(QKeySequence("S"))
        self.smooth_action.toggled.connect(self.state.set_smooth)
        vm.addAction(self.smooth_action)
        slab_menu = vm.addMenu("Sla&b")
        self.slab_actions: dict[tuple, QAction] = {}
        sgrp = QActionGroup(self)
        for mm, mode in ((0.0, "mip"), (5.0, "mip"), (10.0, "mip"), (20.0, "mip"), (10.0, "minip"),
                         (10.0, "mean")):
            act = QAction("Thin slice" if not mm else f"{mode.upper()} {mm:g} mm", self, checkable=True)
            act.triggered.connect(lambda _c=False, m=mm, md=mode: self.state.set_slab(m, md))
            sgrp.addAction(act)
            slab_menu.addAction(act)
            self.slab_actions[(mm, mode)] = act
        self.slab_actions[(0.0, "mip")].setChecked(True)
        self.cine_action = QAction("&Cine (play slices)", self, checkable=True)
        self.cine_action.setShortcut(QKeySequence("Space"))
        self.cine_action.toggled.connect(self.set_cine)
        vm.addAction(self.cine_action)
        self._panels_menu = vm.addMenu("Panels")
        for d in (self.browser_dock, self.info_dock, self.side_dock):
            self._panels_menu.addAction(d.toggleViewAction())

        wm = mb.addMenu("&Window/Level")
        self.invert_action = QAction("&Invert", self, checkable=True)
        self.invert_action.setShortcut(QKeySequence("I"))
        self.invert_action.toggled.connect(self.state.set_invert)
        self.state.invert_changed.connect(self.invert_action.setChecked)
        wm.addAction(self.invert_action)
        a = wm.addAction("&Auto (percentiles)", self.auto_window)
        a.setShortcut(QKeySequence("A"))
        self.dicom_window_action = wm.addAction("&DICOM window", self.dicom_window)
        self.dicom_window_action.setShortcut(QKeySequence("D"))
        wm.addSeparator()
        self.preset_actions: dict[str, QAction] = {}
        for p in self.presets.get("ct", []):
            a = wm.addAction(f"CT {p['name']}  (W {p['width']} L {p['level']})",
                             lambda p=p: self.apply_preset(p["name"]))
            if p.get("shortcut"):
                a.setShortcut(QKeySequence(p["shortcut"]))
            self.preset_actions[p["name"]] = a
        wm.addSeparator()
        self.relative_preset_actions: dict[str, QAction] = {}
        for p in self.presets.get("relative", []):  # MR, PET, US, X-ray: no absolute units
            a = wm.addAction(f"{p['name']}  ({p['low']}-{p['high']} %)",
                             lambda p=p: self.apply_relative_preset(p["name"]))
            self.relative_preset_actions[p["name"]] = a

        tm = mb.addMenu("&Tools")
        tb = QToolBar("Tools", self)
        tb.setObjectName("tools_toolbar")
        self.addToolBar(tb)
        self.tool_actions: dict[str, QAction] = {}
        tgrp = QActionGroup(self)
        for name, text, key in TOOLS:
            act = QAction(text, self, checkable=True)
            act.setShortcut(QKeySequence(key))
            act.triggered.connect(lambda _c=False, x=name: self.state.set_tool(x))
            tgrp.addAction(act)
            tm.addAction(act)
            tb.addAction(act)
            self.tool_actions[name] = act
        self.tool_actions["navigate"].setChecked(True)
        self._tool_group = tgrp
        tb.addSeparator()
        for lay in LAYOUTS:
            tb.addAction(self.layout_actions[lay])
        tb.addSeparator()
        tb.addAction(self.invert_action)
        # 4D series: which volume (time point / diffusion direction) is shown
        from PySide6.QtWidgets import QSpinBox

        self.frame_label = QLabel("  Volume ")
        self.frame_box = QSpinBox()
        self.frame_box.setToolTip("4D series: time point / diffusion direction shown (PageUp/PageDown in cine)")
        self.frame_box.valueChanged.connect(lambda v: self.state.set_frame(v - 1))
        self.state.frame_changed.connect(lambda t: self.frame_box.setValue(t + 1))
        self._frame_actions = [tb.addWidget(self.frame_label), tb.addWidget(self.frame_box)]
        for a in self._frame_actions:
            a.setVisible(False)
        # heatmaps (probability, Grad-CAM): threshold of the top visible one (its colour bar shows it)
        from PySide6.QtWidgets import QSlider

        self.threshold_label = QLabel("  Heatmap \u2265 0.00 ")
        self.threshold_slider = QSlider(Qt.Orientation.Horizontal)
        self.threshold_slider.setRange(0, 100)
        self.threshold_slider.setMaximumWidth(140)
        self.threshold_slider.setToolTip("values below this are not drawn (top visible heatmap)")
        self.threshold_slider.valueChanged.connect(self._on_threshold_slider)
        self._threshold_actions = [tb.addWidget(self.threshold_label), tb.addWidget(self.threshold_slider)]
        self.state.layers_changed.connect(self._update_threshold_slider)
        self._update_threshold_slider()

        mm = mb.addMenu("&Measure")
        a = mm.addAction("Delete selected", self.delete_selected_measurement)
        a.setShortcut(QKeySequence("Shift+Del"))
        mm.addAction("Delete all on current slices", self.delete_measurements_on_slices)
        mm.addAction("Delete all measurements", self.state.clear_measurements)

        self.view3d_action = QAction("&3D view", self, checkable=True)
        self.view3d_action.setShortcut(QKeySequence("F3"))
        self.view3d_action.toggled.connect(self.show_3d)
        vm.addAction(self.view3d_action)
        self.compare_menu = vm.addMenu("Compare &with")
        self.compare_menu.aboutToShow.connect(self._fill_compare_menu)
        vm.addAction("Close comparison", self.compare.close_comparison)
        self.protocol_menu = vm.addMenu("&Hanging protocol")
        self.protocol_menu.aboutToShow.connect(self._fill_protocol_menu)

        from medview.ui.campaign_menu import add_campaign_menu

        add_campaign_menu(self, mb)  # Run on all, ranked queue, readers, fine-tune (medview.ui.campaign_*)
        hm = mb.addMenu("&Help")
        hm.addAction("About MedView", lambda: QMessageBox.about(
            self, "MedView", "MedView review workstation.\nResearch use only, not for diagnosis."))

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

    # ---- hanging protocols / comparison ------------------------------------------------------------
    def protocols(self):
        from medview.viewing.hanging import load_protocols, protocol_dirs

        return load_protocols(protocol_dirs())

    def apply_protocol(self, index, protocol=None):
        """Choose (or take) the hanging protocol for ``index``'s latest study: set its layout and
        view, return the series to open; its prior (same patient) or second series opens beside
        once loaded."""
        from medview.viewing.hanging import choose

        studies = {}
        for s in index.series:
            studies.setdefault(s.study_uid, []).append(s)
        latest = max(studies.values(), key=lambda ss: (ss[0].study_date or "", len(ss)))
        who = latest[0].patient_id or latest[0].patient_name
        others = [s for s in index.series if s not in latest and (s.patient_id or s.patient_name) == who]
        protos = [protocol] if protocol is not None else self.protocols()
        picked = choose(protos, latest, others)
        if picked is None:
            self.protocol = None
            return index.largest()
        self.protocol, primary, compare = picked
        if self.protocol.active_view:
            self.state.set_active_view(self.protocol.active_view)
        if self.protocol.layout:
            self.state.set_layout(self.protocol.layout)
            self._layout_before_2d = None
        self._protocol_compare = compare
        return primary or index.largest()

    def _apply_protocol_window(self) -> None:
        p, vol = self.protocol, self.state.volume
        if p is None or not p.window or vol is None or vol.is_rgb:
            return
        w = p.window
        try:
            if "preset" in w and vol.modality == "CT":
                self.apply_preset(w["preset"])
            elif "relative" in w and vol.modality != "CT":
                self.apply_relative_preset(w["relative"])
            elif "width" in w and "level" in w:
                self.state.set_window(float(w["width"]), float(w["level"]))
        except KeyError:
            self.statusBar().showMessage(f"hanging protocol {p.name}: no window preset {w}", 8000)

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

    def _fill_protocol_menu(self) -> None:
        m = self.protocol_menu
        m.clear()
        for p in self.protocols():
            act = m.addAction(p.name, lambda p=p: self._switch_protocol(p))
            act.setCheckable(True)
            act.setChecked(self.protocol is not None and p.name == self.protocol.name)
        m.addSeparator()
        m.addAction("Save current layout as protocol...", self._ask_save_protocol)

    def _switch_protocol(self, p) -> None:
        if self.index is not None and self.index.series:
            self.open_series(self.apply_protocol(self.index, p))

    def current_protocol(self, name: str):
        """The layout, view, series and window now shown, as a protocol matching this modality
        and series description."""
        import re as _re

        from medview.viewing.hanging import Protocol

        vol = self.state.volume
        desc = str(vol.meta.get("SeriesDescription", "")) if vol is not None else ""
        mod = vol.modality if vol is not None else ""
        d = {"name": name, "priority": 50, "layout": self.state.layout, "active_view": self.state.active_view,
             "match": {"modality": f"^{_re.escape(mod)}$"} if mod else {},
             "primary": {"series_description": _re.escape(desc)} if desc else {},
             "window": {"width": self.state.window[0], "level": self.state.window[1]}}
        other = self.compare.state.volume if self.compare.isVisible() else None
        if other is not None:
            same_study = other.meta.get("StudyInstanceUID") == (vol.meta.get("StudyInstanceUID") if vol else None)
            d["compare"] = {"study": "same" if same_study else "prior",
                            "series_description": _re.escape(str(other.meta.get("SeriesDescription", "")))}
            d["link"] = self.compare.link_box.currentText() if self.compare.link_box.currentText() != "off" else "index"
        return Protocol.from_dict(d)

    def _ask_save_protocol(self) -> None:
        from PySide6.QtWidgets import QInputDialog

        from medview.config import user_config_dir
        from medview.viewing.hanging import save_protocol

        name, ok = QInputDialog.getText(self, "Save hanging protocol", "Name:")
        if ok and name.strip():
            path = save_protocol(self.current_protocol(name.strip()), user_config_dir() / "hanging_protocols")
            self.statusBar().showMessage(f"Hanging protocol saved: {path}", 8000)

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
