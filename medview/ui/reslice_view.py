"""Oblique / thick-slab reformat of the ViewerState's volume, resampled in patient space.

A plane through the crosshair (world LPS mm), starting axial, coronal or sagittal, that the user
tilts: shift+left-drag tilts it about the screen axes (left/right, up/down), ctrl+left-drag turns
it in its own plane. Left click/drag moves the crosshair to the world point under the mouse
(the other views follow), the wheel steps the plane along its normal, right-drag is
window/level. The image is resampled linearly (medview.viewing.Reslicer), label maps and
heatmaps nearest, slabs MIP/MinIP/mean of a thickness in mm. While a tilt drag is under way the
slab is projected along the nearest voxel axis (fast); the exact slab follows on release.
"""

from __future__ import annotations

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import QRectF, Qt
from PySide6.QtGui import QFont, QTransform
from PySide6.QtWidgets import (
    QComboBox,
    QDoubleSpinBox,
    QGraphicsView,
    QHBoxLayout,
    QLabel,
    QPushButton,
    QVBoxLayout,
    QWidget,
)

from medview.measure import window_to_levels
from medview.ui.fast_image import FastImageItem, rgba_to_premultiplied, window_table
from medview.ui.geometry import direction_letters
from medview.ui.overlay_render import heatmap_lut, label_lut, label_slice
from medview.ui.viewer_state import LabelLayer, ViewerState
from medview.viewing.plane import Plane, standard_plane

MAX_SIZE = 640  # pixels across: the plane covers the volume's diagonal at up to this size


def measurement_outline_world(m, vol, n: int = 48) -> np.ndarray:
    """(N, 3) LPS mm along a measurement: a ruler's two ends, a rectangle's corners (closed) or
    an ellipse's outline, from the 2D view it was drawn in."""
    from medview.ui.geometry import view_geometry

    if m.kind == "ruler":
        return vol.index_to_world(np.array([m.p0, m.p1], float))
    g = view_geometry(m.view, vol.shape, vol.spacing, vol.direction)
    (x0, y0), (x1, y1) = g.voxel_to_scene(m.p0), g.voxel_to_scene(m.p1)
    if m.kind == "rect":
        pts = [(x0, y0), (x1, y0), (x1, y1), (x0, y1), (x0, y0)]
    else:
        t = np.linspace(0, 2 * np.pi, n + 1)
        cx, cy, rx, ry = (x0 + x1) / 2, (y0 + y1) / 2, abs(x1 - x0) / 2, abs(y1 - y0) / 2
        pts = list(zip(cx + rx * np.cos(t), cy + ry * np.sin(t), strict=True))
    ijk = np.array([g.scene_to_voxel(x, y, m.slice_index) for x, y in pts])
    return vol.index_to_world(ijk)


class _ObliqueViewBox(pg.ViewBox):
    def __init__(self, owner: ResliceView) -> None:
        super().__init__(lockAspect=True, invertY=True, enableMenu=False, defaultPadding=0.0)
        self.owner = owner
        self._mode = None
        self._start = None

    def wheelEvent(self, ev, axis=None):
        if ev.modifiers() & Qt.KeyboardModifier.ControlModifier:
            super().wheelEvent(ev, axis)
        else:
            self.owner.step(int(np.sign(ev.delta())))
        ev.accept()

    def mouseClickEvent(self, ev):
        ev.accept()
        if ev.button() == Qt.MouseButton.LeftButton:
            self.owner.set_cursor_at(self.mapSceneToView(ev.scenePos()))

    def mouseDragEvent(self, ev, axis=None):
        o = self.owner
        if ev.button() == Qt.MouseButton.MiddleButton:
            pg.ViewBox.mouseDragEvent(self, ev, axis)
            return
        ev.accept()
        if ev.isStart():
            mods = ev.modifiers()
            if ev.button() == Qt.MouseButton.RightButton:
                self._mode, self._start = "wl", o.state.window
            elif mods & Qt.KeyboardModifier.ShiftModifier:
                self._mode, self._start = "tilt", o.rotation.copy()
            elif mods & Qt.KeyboardModifier.ControlModifier:
                self._mode, self._start = "spin", o.rotation.copy()
            else:
                self._mode = "navigate"
        d = ev.screenPos() - ev.buttonDownScreenPos()
        if self._mode == "wl":
            w0, l0 = self._start
            o.state.set_window(w0 * 2.0 ** (d.x() / 150.0), l0 + d.y() * w0 / 300.0)
        elif self._mode == "tilt":
            o.set_rotation(o.tilted(self._start, np.radians(d.x() * 0.4), np.radians(d.y() * 0.4)),
                           interactive=not ev.isFinish())
        elif self._mode == "spin":
            o.set_rotation(o.tilted(self._start, 0.0, 0.0, np.radians(d.x() * 0.5)),
                           interactive=not ev.isFinish())
        elif self._mode == "navigate":
            o.set_cursor_at(self.mapSceneToView(ev.scenePos()))
        if ev.isFinish():
            self._mode = None


class ResliceView(QWidget):
    """The oblique/slab view (one per main window, the fourth viewport of the 2x2 layout)."""

    def __init__(self, state: ViewerState, parent=None, base: str = "axial", oblique: bool = True) -> None:
        super().__init__(parent)
        self.state = state
        self.base = base
        self.oblique = oblique  # False: a fixed patient-axes plane of the MPR layout (no tilt)
        self.rotation = np.eye(3)  # applied to the base plane's u, v about the centre
        self.center = None  # world mm of the plane centre (follows the crosshair)
        self.plane: Plane | None = None
        self._reslicer = None
        self._reslicer_for = None
        self.last_image: np.ndarray | None = None
        self.exact = True
        self._moving = False
        self._layer_edits: dict[str, int] = {}
        self._want_fit = True

        bar = QHBoxLayout()
        bar.setContentsMargins(2, 2, 2, 2)
        self.base_box = QComboBox()
        self.base_box.addItems(["axial", "coronal", "sagittal"])
        self.base_box.setCurrentText(base)
        self.base_box.currentTextChanged.connect(self.set_base)
        self.slab_box = QDoubleSpinBox()
        self.slab_box.setRange(0.0, 200.0)
        self.slab_box.setSingleStep(1.0)
        self.slab_box.setSuffix(" mm")
        self.slab_box.setToolTip("slab thickness (0 = thin slice)")
        self.mode_box = QComboBox()
        self.mode_box.addItems(["mip", "minip", "mean"])
        self.slab_box.valueChanged.connect(lambda _v: self.render())
        self.mode_box.currentTextChanged.connect(lambda _m: self.render())
        from PySide6.QtWidgets import QCheckBox

        self.cubic_box = QCheckBox("cubic")
        self.cubic_box.setToolTip("cubic B-spline interpolation (slower; linear while dragging)")
        self.cubic_box.toggled.connect(lambda _on: self.render())
        reset = QPushButton("Reset")
        reset.setToolTip("back to the plain plane (no tilt)")
        reset.clicked.connect(lambda: self.set_rotation(np.eye(3)))
        title = QLabel("Oblique" if oblique else "Patient")
        for w in (title, self.base_box, QLabel("slab"), self.slab_box, self.mode_box, self.cubic_box, reset):
            bar.addWidget(w)
        reset.setVisible(oblique)
        bar.addStretch(1)

        self.gw = pg.GraphicsLayoutWidget()
        self.gw.setBackground("k")
        self.gw.setViewportUpdateMode(QGraphicsView.ViewportUpdateMode.FullViewportUpdate)
        self.gw.ci.setContentsMargins(0, 0, 0, 0)
        self.vb = _ObliqueViewBox(self)
        self.gw.addItem(self.vb)
        self.img = FastImageItem(axisOrder="row-major")
        self.img.set_smooth(True)
        self.vb.addItem(self.img)
        self._overlays: dict[str, FastImageItem] = {}
        self.hline = pg.InfiniteLine(angle=0, movable=False, pen=pg.mkPen("#60e060", width=1))
        self.vline = pg.InfiniteLine(angle=90, movable=False, pen=pg.mkPen("#60e060", width=1))
        for ln in (self.hline, self.vline):
            ln.setZValue(50)
            self.vb.addItem(ln, ignoreBounds=True)
        font = QFont()
        font.setPointSize(9)
        self.text = QLabel("", self.gw)
        self.text.setFont(font)
        self.text.setStyleSheet("color: #60e060; background: transparent;")
        self.text.setAttribute(Qt.WidgetAttribute.WA_TransparentForMouseEvents)
        self.text.move(6, 4)
        self.letters: dict[str, QLabel] = {}
        for side in ("left", "right", "top", "bottom"):
            lab = QLabel("", self.gw)
            lab.setStyleSheet("color: #f0d060; background: rgba(0,0,0,140); font-weight: bold;")
            lab.setAttribute(Qt.WidgetAttribute.WA_TransparentForMouseEvents)
            self.letters[side] = lab

        lay = QVBoxLayout(self)
        lay.setContentsMargins(0, 0, 0, 0)
        lay.setSpacing(0)
        lay.addLayout(bar)
        lay.addWidget(self.gw, 1)

        for sig, slot in ((state.volume_changed, self._on_volume), (state.cursor_changed, self._on_cursor),
                          (state.window_changed, lambda *_: self._apply_window()),
                          (state.invert_changed, lambda *_: self._apply_window()),
                          (state.layers_changed, self.render), (state.layer_changed, self._on_layer_changed),
                          (state.measurements_changed, self.render),
                          (state.frame_changed, self._on_frame)):
            sig.connect(slot)
        if oblique:
            state.rotate_oblique.connect(self._on_rotate_request)

    # ---- geometry ----------------------------------------------------------------------------
    def reslicer(self):
        """The Reslicer of the shown volume (and 4D frame), shared by every reformat view of
        the state: one ITK copy of the image, not one per view."""
        vol = self.state.volume
        if vol is None or vol.is_rgb:
            return None
        key = (id(vol), self.state.frame)
        shared = getattr(self.state, "_shared_reslicer", None)
        if shared is None or shared[0] != key or shared[1] is not vol:
            from medview.viewing import Reslicer

            shared = (key, vol, Reslicer(vol))
            self.state._shared_reslicer = shared
        return shared[2]

    def _on_rotate_request(self, view: str, angle: float, dragging: bool) -> None:
        """A drag with the rotate tool in a 2D view turns the plane about that view's normal
        through the crosshair (as dragging the crosshair axes in Slicer / OHIF)."""
        from medview.viewing.plane import _rotation

        vol = self.state.volume
        parent = self.parent()
        views = getattr(parent, "views", {})
        if vol is None or view not in views:
            return
        axis = views[view].view_normal_world()
        if axis is None:
            return
        # screen angles grow clockwise (y down); a view looked at from its normal's side turns
        # the other way: the sign makes the cut line follow the mouse
        self.rotation = _rotation(axis, -angle) @ self.rotation
        self.exact = not dragging
        self.render()

    def hideEvent(self, ev):  # noqa: N802
        super().hideEvent(ev)
        if self.oblique:
            self.state.oblique_changed.emit(None)

    def _on_layer_changed(self, name: str, _region) -> None:
        self._layer_edits[name] = self._layer_edits.get(name, 0) + 1  # its cached copy is stale
        self.render()

    def _on_frame(self, _t: int) -> None:
        self.render()  # the shared Reslicer is keyed by frame: a new one for this volume

    def set_base(self, name: str) -> None:
        self.base = name
        if self.base_box.currentText() != name:
            self.base_box.setCurrentText(name)
        self.rotation = np.eye(3)
        self.render(fit=True)

    @staticmethod
    def tilted(r0: np.ndarray, about_v: float, about_u: float, spin: float = 0.0) -> np.ndarray:
        """``r0`` turned about the current screen axes (radians)."""
        from medview.viewing.plane import _rotation

        u, v = r0[:, 0], r0[:, 1]
        n = np.cross(u, v)
        r = _rotation(v, about_v) @ _rotation(u, -about_u) @ _rotation(n, spin)
        return r @ r0

    def set_rotation(self, r: np.ndarray, interactive: bool = False) -> None:
        self.rotation = np.asarray(r, float)
        self.exact = not interactive
        self.render()

    def current_plane(self) -> Plane | None:
        vol = self.state.volume
        if vol is None:
            return None
        if self.center is None:
            self.center = vol.index_to_world(np.asarray(self.state.cursor, float))
        base = standard_plane(self.base, vol, center=self.center)
        sp = base.spacing
        diag = float(np.linalg.norm(np.asarray(vol.size_xyz) * np.asarray(vol.spacing)))
        sp = max(sp, diag / MAX_SIZE)
        n = int(np.ceil(diag / sp))
        basis = self.rotation @ np.stack([np.asarray(base.u), np.asarray(base.v)], axis=1)
        return Plane(tuple(self.center), tuple(basis[:, 0]), tuple(basis[:, 1]), sp, n, n)

    # ---- state -> drawing ----------------------------------------------------------------------
    def _on_volume(self, vol) -> None:
        self.center = None
        self.rotation = np.eye(3)
        self._reslicer = self._reslicer_for = None
        if vol is None:
            self.img.clear()
            for it in self._overlays.values():
                it.clear()
            self.text.setText("")
            return
        self._apply_window()
        self.render(fit=True)

    def _on_cursor(self, cursor) -> None:
        vol = self.state.volume
        if vol is None:
            return
        if self._moving:
            return  # we moved it ourselves (to the voxel nearest our exact point)
        self.center = vol.index_to_world(np.asarray(cursor, float))
        self.render()

    def _apply_window(self) -> None:
        lut, value_range = window_table(np.dtype(np.float32), *window_to_levels(*self.state.window),
                                        self.state.invert)
        self.img.set_argb_lut(lut, value_range)

    def render(self, fit: bool = False) -> None:
        self._want_fit = self._want_fit or fit
        if not self.isVisible():
            return  # nothing to see (and no ITK copy made) until a layout shows us
        fit, self._want_fit = self._want_fit, False
        rs = self.reslicer()
        vol = self.state.volume
        if rs is None or vol is None:
            self.text.setText("Reformat: needs a grey-level volume" if vol is not None else "")
            return
        p = self.plane = self.current_plane()
        slab = float(self.slab_box.value())
        mode = self.mode_box.currentText()
        img = rs.image(p, slab_mm=slab, mode=mode, exact=self.exact,
                       cubic=self.exact and self.cubic_box.isChecked())
        self.last_image = img
        t = QTransform.fromScale(p.spacing, p.spacing)
        self.img.setTransform(t)
        self.img.set_data(img)
        names = [lay.name for lay in self.state.layers()]
        for name in list(self._overlays):
            if name not in names:
                self.vb.removeItem(self._overlays.pop(name))
        for z, layer in enumerate(self.state.layers()):
            item = self._overlays.get(layer.name)
            if item is None:
                item = self._overlays[layer.name] = FastImageItem(axisOrder="row-major")
                self.vb.addItem(item, ignoreBounds=True)
            item.setZValue(10 + z)
            item.setTransform(t)
            item.setVisible(layer.visible)
            if not layer.visible:
                continue
            # nearest: label values are never blended; the key lets an unedited map be sampled
            # from the Reslicer's ITK copy
            data = rs.labels(layer.volume.array, p, key=(layer.name, self._layer_edits.get(layer.name, 0),
                                                         id(layer.volume.array)))
            if isinstance(layer, LabelLayer):
                item.set_argb_lut(rgba_to_premultiplied(label_lut(layer)), update=False)
                item.set_data(label_slice(data, layer.outline))
            else:
                item.set_argb_lut(rgba_to_premultiplied(heatmap_lut(layer)),
                                  value_range=(layer.vmin, layer.vmax), update=False)
                item.set_data(data.astype(np.float32, copy=False))  # the table hides < threshold
        self._draw_measurements(p, rs)
        col, row, _ = p.world_to_plane(vol.index_to_world(np.asarray(self.state.cursor, float)))
        self.vline.setValue((col + 0.5) * p.spacing)
        self.hline.setValue((row + 0.5) * p.spacing)
        u, v = np.asarray(p.u), np.asarray(p.v)
        for side, vec in (("right", u), ("left", -u), ("bottom", v), ("top", -v)):
            self.letters[side].setText(direction_letters(vec))
            self.letters[side].adjustSize()
        tilt = np.degrees(np.arccos(np.clip(np.trace(self.rotation) / 2 - 0.5, -1, 1)))
        slab_txt = f"{mode.upper()} slab {slab:g} mm" if slab > 0 else f"thin, {p.spacing:.2g} mm px"
        name = f"Oblique ({self.base}, tilt {tilt:.0f}\N{DEGREE SIGN})" if self.oblique else f"Patient {self.base}"
        self.text.setText(f"{name}  {slab_txt}" + ("" if self.exact else "  (fast)"))
        self.text.adjustSize()
        self._place_letters()
        if fit:
            self.vb.setRange(QRectF(0, 0, p.width * p.spacing, p.height * p.spacing), padding=0.0)
        if self.oblique:
            self.state.oblique_changed.emit(p)

    def _draw_measurements(self, p: Plane, rs) -> None:
        """Rulers and ROIs (kept in voxel = world coordinates) that lie in this plane."""
        for it in getattr(self, "_measure_items", []):
            self.vb.removeItem(it)
        self._measure_items = []
        vol = self.state.volume
        normal = p.normal / np.linalg.norm(p.normal)
        tol = 0.5 * rs.voxel_step_mm(normal) + 1e-6
        for m in self.state.measurements:
            world = measurement_outline_world(m, vol)
            cpd = np.array([p.world_to_plane(w) for w in world])
            if np.abs(cpd[:, 2]).max() > tol:
                continue  # not in this plane
            xy = (cpd[:, :2] + 0.5) * p.spacing
            item = pg.PlotCurveItem(xy[:, 0], xy[:, 1], pen=pg.mkPen("#50ff50", width=1.5))
            item.setZValue(60)
            self.vb.addItem(item, ignoreBounds=True)
            self._measure_items.append(item)

    def _place_letters(self) -> None:
        w, h = self.gw.width(), self.gw.height()
        lt = self.letters
        lt["left"].move(4, h // 2)
        lt["right"].move(w - lt["right"].width() - 4, h // 2)
        lt["top"].move(w // 2, 2 + self.text.height())
        lt["bottom"].move(w // 2, h - lt["bottom"].height() - 2)

    def resizeEvent(self, ev):  # noqa: N802
        super().resizeEvent(ev)
        self._place_letters()

    def showEvent(self, ev):  # noqa: N802
        super().showEvent(ev)
        self.render(fit=True)

    # ---- navigation ----------------------------------------------------------------------------
    def world_at(self, pos) -> np.ndarray | None:
        p = self.plane
        if p is None:
            return None
        return p.plane_to_world(pos.x() / p.spacing - 0.5, pos.y() / p.spacing - 0.5)

    def set_cursor_at(self, pos) -> None:
        world = self.world_at(pos)
        vol = self.state.volume
        if world is None or vol is None:
            return
        self.center = world
        self._move_cursor(vol.world_to_index(world))
        self.render()

    def _move_cursor(self, ijk) -> None:
        self._moving = True
        try:
            self.state.set_cursor(ijk)
        finally:
            self._moving = False

    def step(self, n: int) -> None:
        """Move the plane ``n`` voxel steps along its normal (the crosshair follows)."""
        rs, p, vol = self.reslicer(), self.plane, self.state.volume
        if rs is None or p is None or vol is None:
            return
        normal = p.normal / np.linalg.norm(p.normal)
        self.center = np.asarray(self.center) + n * rs.voxel_step_mm(normal) * normal
        self._move_cursor(vol.world_to_index(self.center))
        self.render()
