"""Side-by-side comparison: a second series (a prior study of the same patient, or another series)
in its own ViewerState and SliceView beside the main views, linked to the main crosshair by
world position (same frame of reference) or by slice index, with window/level and zoom sync."""

from __future__ import annotations

import numpy as np
from PySide6.QtCore import Signal
from PySide6.QtWidgets import QCheckBox, QComboBox, QHBoxLayout, QLabel, QPushButton, QVBoxLayout, QWidget

from medview.ui.slice_view import SliceView
from medview.ui.viewer_state import ViewerState
from medview.ui.workers import Worker, start

LINKS = ("world", "index", "off")


def linked_cursor(main_vol, cursor, other_vol, link: str, normal_axis: int = 2):
    """The other series' voxel (i, j, k) for the main cursor: the same LPS point ("world"), or
    the same slice number along the view's normal and the same relative in-plane place
    ("index"); None for "off"."""
    if link == "world":
        return other_vol.world_to_index(main_vol.index_to_world(np.asarray(cursor, float)))
    if link == "index":
        a, b = np.asarray(main_vol.size_xyz, float), np.asarray(other_vol.size_xyz, float)
        out = (np.asarray(cursor, float) + 0.5) / a * b - 0.5
        out[normal_axis] = cursor[normal_axis]
        return out
    return None


def load_compared(series, progress=None, cancelled=None):
    """Worker job: (volume, its first window) of the series to compare."""
    from medview.io import load_series
    from medview.viewing.display import first_window

    vol = load_series(series, progress=progress, cancelled=cancelled)
    return vol, first_window(vol.meta, vol.array)[0]


def same_frame(a, b) -> bool:
    fa, fb = a.meta.get("FrameOfReferenceUID"), b.meta.get("FrameOfReferenceUID")
    return bool(fa) and fa == fb


class ComparePane(QWidget):
    closed = Signal()
    loaded = Signal(object)  # the compared Volume

    def __init__(self, main_state: ViewerState, main_views: dict, parent=None) -> None:
        super().__init__(parent)
        self.main = main_state
        self.main_views = main_views
        self.state = ViewerState(self)
        self.state.layout = "1x1"
        self.view_name = "axial"
        self.view = SliceView(self.state, self.view_name, self)
        self.series = None
        self._worker: Worker | None = None
        self.title = QLabel("")
        self.title.setStyleSheet("color: #e0c040;")
        self.link_box = QComboBox()
        self.link_box.addItems(list(LINKS))
        self.link_box.setToolTip("link the crosshair by world position (same frame of reference) or slice index")
        self.link_box.currentTextChanged.connect(lambda _t: self.follow())
        self.sync_wl = QCheckBox("W/L")
        self.sync_wl.setChecked(True)
        self.sync_zoom = QCheckBox("zoom")
        self.sync_zoom.setChecked(True)
        close = QPushButton("Close")
        close.clicked.connect(self.close_comparison)
        bar = QHBoxLayout()
        bar.setContentsMargins(2, 2, 2, 2)
        bar.setSpacing(6)  # its own: the pane's layout has none, so the title ran into "link"
        for w in (self.title, QLabel("link"), self.link_box, self.sync_wl, self.sync_zoom, close):
            bar.addWidget(w)
        bar.insertStretch(1, 1)
        lay = QVBoxLayout(self)
        lay.setContentsMargins(0, 0, 0, 0)
        lay.setSpacing(0)
        lay.addLayout(bar)
        lay.addWidget(self.view, 1)
        self.note = ""
        main_state.cursor_changed.connect(lambda *_: self.follow())
        main_state.window_changed.connect(self._on_main_window)
        main_state.active_view_changed.connect(self._on_main_active)
        for v in main_views.values():
            v.vb.sigRangeChanged.connect(lambda *_a, v=v: self._on_main_range(v))
        self.hide()

    # ---- open / close -----------------------------------------------------------------------------
    def open_series(self, series, link: str | None = None) -> None:
        if self._worker is not None:
            self._worker.cancel()
        self.series = series
        self.title.setText(f"Loading {series.study_date} {series.description} ...")
        self.show()
        w = Worker(load_compared, series)
        w.signals.finished.connect(lambda res, w=w, ln=link: self._on_loaded(w, res, ln))
        w.signals.failed.connect(lambda msg, w=w: self._on_failed(w, msg))
        self._worker = start(w)

    def show_volume(self, vol, window=None, link: str | None = None) -> None:
        """Show ``vol`` beside the main views (also for scripts and tests)."""
        self.state.set_volume(vol, window=window)
        main = self.main.volume
        if link is None:
            link = "world" if main is not None and same_frame(main, vol) else "index"
        self.note = ""
        if link == "world" and main is not None and not same_frame(main, vol):
            self.note = "other frame of reference: linked by world position as stored"
        self.link_box.setCurrentText(link)
        m = vol.meta
        self.title.setText(" ".join(str(x) for x in (m.get("StudyDate", ""), m.get("SeriesDescription", ""))
                                    if x) + (f"  ({self.note})" if self.note else ""))
        self.show()
        if self.sync_wl.isChecked() and main is not None and not vol.is_rgb and not main.is_rgb:
            self.state.set_window(*self.main.window)
        self.follow()
        self.loaded.emit(vol)

    def _on_loaded(self, worker, result, link) -> None:
        if worker is not self._worker:
            return
        self._worker = None
        vol, window = result
        self.show_volume(vol, window, link)

    def _on_failed(self, worker, msg: str) -> None:
        if worker is self._worker:
            self._worker = None
            self.title.setText(f"could not open: {msg}")

    def close_comparison(self) -> None:
        if self._worker is not None:
            self._worker.cancel()
            self._worker = None
        self.state.set_volume(None)
        self.series = None
        self.hide()
        self.closed.emit()

    # ---- links ------------------------------------------------------------------------------------
    def follow(self) -> None:
        main, other = self.main.volume, self.state.volume
        if main is None or other is None or not self.isVisible():
            return
        normal = self.view.geom.normal_axis if self.view.geom is not None else 2
        ijk = linked_cursor(main, self.main.cursor, other, self.link_box.currentText(), normal)
        if ijk is not None:
            self.state.set_cursor(ijk)

    def _on_main_window(self, width: float, level: float) -> None:
        if self.sync_wl.isChecked() and self.state.volume is not None and not self.state.volume.is_rgb:
            self.state.set_window(width, level)

    def _on_main_active(self, name: str) -> None:
        if name != self.view_name and name in ("axial", "coronal", "sagittal"):
            self.set_view(name)

    def set_view(self, name: str) -> None:
        """Show the compared series in the same orientation as the main active view."""
        lay = self.layout()
        old = self.view
        old.detach()
        lay.removeWidget(old)
        old.setParent(None)
        old.deleteLater()
        self.view_name = name
        self.view = SliceView(self.state, name, self)
        lay.addWidget(self.view, 1)
        self.follow()

    def _on_main_range(self, v) -> None:
        if not self.sync_zoom.isChecked() or v.view != self.view_name or self.state.volume is None:
            return
        # the same magnification (mm per screen pixel) about the same centre: panes differ in size
        (x0, x1), (y0, y1) = v.vb.viewRange()
        mm_px = v.vb.viewPixelSize()[0]
        w, h = self.view.vb.width() or 1.0, self.view.vb.height() or 1.0
        cx, cy = (x0 + x1) / 2, (y0 + y1) / 2
        self.view.vb.setRange(xRange=(cx - w * mm_px / 2, cx + w * mm_px / 2),
                              yRange=(cy - h * mm_px / 2, cy + h * mm_px / 2), padding=0.0)
