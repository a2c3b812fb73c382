"""The viewer area: three linked SliceViews (axial, coronal, sagittal) in a 1x1, 1x3 or 2x2 grid;
the 2x2 grid's fourth viewport is the oblique / thick-slab reformat (ResliceView)."""

from __future__ import annotations

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import QRectF, Qt, Signal
from PySide6.QtGui import QTransform
from PySide6.QtWidgets import QGridLayout, QLabel, QWidget

from medview.ui.geometry import VIEWS
from medview.ui.reslice_view import ResliceView
from medview.ui.slice_view import SliceView
from medview.ui.viewer_state import ViewerState


class ViewerArea(QWidget):
    hovered = Signal(str, object)

    def __init__(self, state: ViewerState, parent=None) -> None:
        super().__init__(parent)
        self.state = state
        self.views: dict[str, SliceView] = {}
        self.grid = QGridLayout(self)
        self.grid.setContentsMargins(0, 0, 0, 0)
        self.grid.setSpacing(2)
        self.setStyleSheet("ViewerArea { background: #202020; }")
        for name in VIEWS:
            v = SliceView(state, name, self)
            v.hovered.connect(self.hovered)
            v.activated.connect(self._on_view_activated)
            v.maximize_requested.connect(self._toggle_maximize)
            self.views[name] = v
        self.info = QLabel("", self)
        self.info.setAlignment(Qt.AlignmentFlag.AlignTop | Qt.AlignmentFlag.AlignLeft)
        self.info.setStyleSheet("background: black; color: #c0c0c0; padding: 8px; font-size: 11pt;")
        self.info.setWordWrap(True)
        self.oblique = ResliceView(state, self)
        # the MPR layout: axial, coronal and sagittal resampled on the patient axes (exact for
        # tilted acquisitions too) beside the oblique view
        self.mpr = {name: ResliceView(state, self, base=name, oblique=False) for name in VIEWS}
        self._previous_layout = "1x3"
        self._relayout = False
        state.layout_changed.connect(self._apply_layout)
        state.active_view_changed.connect(self._on_active)
        state.volume_changed.connect(self._update_info)
        state.cursor_changed.connect(self._update_info)
        self._apply_layout(state.layout)

    def view(self, name: str) -> SliceView:
        return self.views[name]

    def _on_view_activated(self, name: str) -> None:
        if not self._relayout and self.views[name].isVisible():
            self.state.set_active_view(name)

    def _apply_layout(self, layout: str) -> None:
        self._relayout = True
        try:
            self._do_layout(layout)
        finally:
            self._relayout = False

    def _do_layout(self, layout: str) -> None:
        for w in (*self.views.values(), self.info, self.oblique, *self.mpr.values()):
            self.grid.removeWidget(w)
            w.hide()
        for r in range(3):
            self.grid.setRowStretch(r, 0)
            self.grid.setColumnStretch(r, 0)
        if layout == "1x1":
            placed = [(self.views[self.state.active_view], 0, 0)]
        elif layout == "1x3":
            placed = [(self.views[n], 0, c) for c, n in enumerate(VIEWS)]
        elif layout == "mpr":  # patient axial | sagittal / coronal | oblique
            placed = [(self.mpr["axial"], 0, 0), (self.mpr["sagittal"], 0, 1),
                      (self.mpr["coronal"], 1, 0), (self.oblique, 1, 1)]
        else:  # 2x2: axial | sagittal / coronal | oblique
            placed = [(self.views["axial"], 0, 0), (self.views["sagittal"], 0, 1),
                      (self.views["coronal"], 1, 0), (self.oblique, 1, 1)]
        for w, r, c in placed:
            self.grid.addWidget(w, r, c)
            self.grid.setRowStretch(r, 1)
            self.grid.setColumnStretch(c, 1)
            w.show()
        for w, _r, _c in placed:
            if isinstance(w, SliceView):
                w.fit()

    def _on_active(self, name: str) -> None:
        if self.state.layout == "1x1" and not self.views[name].isVisible():
            self._apply_layout("1x1")

    def _toggle_maximize(self, name: str) -> None:
        self.state.set_active_view(name)
        if self.state.layout == "1x1":
            self.state.set_layout(self._previous_layout if self._previous_layout != "1x1" else "1x3")
        else:
            self._previous_layout = self.state.layout
            self.state.set_layout("1x1")

    def fit_all(self) -> None:
        for v in self.views.values():
            v.fit()

    def show_preview(self, image: np.ndarray, pixel_spacing=None) -> None:
        """Show one 2D slice (e.g. the middle slice while the series loads) in the first view."""
        if self.state.volume is not None:
            return
        v = self.views[self.state.active_view if self.state.layout == "1x1" else "axial"]
        dy, dx = pixel_spacing or (1.0, 1.0)
        v.img.setTransform(QTransform(dx, 0, 0, dy, 0, 0))
        lo, hi = np.percentile(image[::4, ::4], [0.5, 99.5]) if image.ndim == 2 else (0, 255)
        v.img.setImage(image, autoLevels=False, levels=None if image.ndim == 3 else (lo, max(hi, lo + 1)))
        v.vb.setRange(QRectF(0, 0, image.shape[1] * dx, image.shape[0] * dy), padding=0.02)
        v.info_label.setText("Loading...")
        v.info_label.adjustSize()

    def _update_info(self, *_):
        vol = self.state.volume
        if vol is None:
            self.info.setText("")
            return
        m = vol.meta
        i, j, k = self.state.cursor
        world = vol.index_to_world((i, j, k))
        lines = [
            f"<b>{m.get('PatientName', '') or ''}</b> {m.get('PatientID', '') or ''}",
            f"{m.get('StudyDate', '') or ''} {m.get('StudyDescription', '') or ''}",
            f"{vol.modality or '?'}  {m.get('SeriesDescription', '') or ''}",
            (f"{vol.shape[2]}x{vol.shape[1]}x{vol.shape[0]} voxels, "
             + (f"{' x '.join(f'{s:.3g}' for s in vol.spacing)} mm, {vol.orientation_code()}"
                if vol.pixel_size_known else "pixel size unknown")),
            f"cursor (i,j,k) = ({i}, {j}, {k})",
        ]
        if vol.pixel_size_known:
            lines.append(f"LPS = ({world[0]:.1f}, {world[1]:.1f}, {world[2]:.1f}) mm")
        self.info.setText("<br>".join(lines))


__all__ = ["ViewerArea", "pg"]
