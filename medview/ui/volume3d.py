"""3D view: volume rendering with transfer-function presets and label maps as surfaces, in
patient (LPS) space, with the crosshair drawn where the 2D views meet.

Library: pyqtgraph.opengl (already used for the 2D views; needs only PyOpenGL, a 3 MB wheel)
rather than VTK (a 140 MB wheel, 590 MB installed); the reasoning and sizes are in
docs/VIEWER_API.md. Rendering is textured slices (GLVolumeItem) of the volume reduced to at most
MAX_EDGE voxels a side, surfaces are marching cubes (scikit-image) of each label.

Without OpenGL (offscreen Qt, a remote session without GL) the view shows one line saying
the 3D view is off; nothing else depends on it.
"""

from __future__ import annotations

import numpy as np
from PySide6.QtCore import Qt
from PySide6.QtGui import QGuiApplication
from PySide6.QtWidgets import QComboBox, QHBoxLayout, QLabel, QVBoxLayout, QWidget

MAX_EDGE = 160
PRESETS = ("CT bone", "CT soft tissue", "MR", "MIP")


def opengl_available() -> tuple[bool, str]:
    """(True, "") when an OpenGL context can be made here, else (False, why)."""
    platform = QGuiApplication.platformName()
    if platform in ("offscreen", "minimal", "vnc"):
        return False, f"no OpenGL on the '{platform}' Qt platform"
    try:
        import OpenGL  # noqa: F401
        from PySide6.QtGui import QOffscreenSurface, QOpenGLContext
    except ImportError as exc:
        return False, f"PyOpenGL is not installed ({exc})"
    ctx = QOpenGLContext()
    if not ctx.create():
        return False, "no OpenGL context could be created"
    surf = QOffscreenSurface()
    surf.create()
    ok = ctx.makeCurrent(surf)
    ctx.doneCurrent()
    return (True, "") if ok else (False, "the OpenGL context could not be made current")


def transfer_function(values: np.ndarray, preset: str, modality: str, window=None) -> np.ndarray:
    """RGBA uint8 (..., 4) for ``values`` under a preset (CT in HU; MR and MIP from the data's
    percentiles or the given display ``window`` (width, level))."""
    v = values.astype(np.float32)
    out = np.zeros(v.shape + (4,), np.uint8)

    def ramp(lo, hi):
        return np.clip((v - lo) / max(hi - lo, 1e-6), 0, 1)

    if preset == "CT bone":
        t = ramp(150, 1200)
        out[..., 0] = 255 * np.clip(0.9 + 0.1 * t, 0, 1)
        out[..., 1] = 255 * np.clip(0.8 + 0.2 * t, 0, 1)
        out[..., 2] = 255 * np.clip(0.65 + 0.35 * t, 0, 1)
        out[..., 3] = 120 * t
    elif preset == "CT soft tissue":
        soft = ramp(-150, 60) * (1 - ramp(250, 400))
        bone = ramp(300, 1000)
        out[..., 0] = 255 * np.clip(0.8 * soft + bone, 0, 1)
        out[..., 1] = 255 * np.clip(0.35 * soft + 0.9 * bone, 0, 1)
        out[..., 2] = 255 * np.clip(0.3 * soft + 0.85 * bone, 0, 1)
        out[..., 3] = np.clip(18 * soft + 80 * bone, 0, 255)
    else:  # MR / MIP: grey ramp over the display window (or 2..99.8 percentiles)
        if window is not None:
            lo, hi = window[1] - window[0] / 2, window[1] + window[0] / 2
        else:
            lo, hi = np.percentile(v[::2, ::2, ::2], [2, 99.8]) if v.size else (0, 1)
        t = ramp(lo, hi)
        g = (255 * t).astype(np.uint8)
        out[..., 0] = out[..., 1] = out[..., 2] = g
        out[..., 3] = (255 * t) if preset == "MIP" else (60 * t ** 1.5)
    return out


def reduced(array: np.ndarray, max_edge: int = MAX_EDGE) -> tuple[np.ndarray, tuple[int, int, int]]:
    """(array strided to at most ``max_edge`` a side, steps along i, j, k); an axis that is
    already short (a few thick slices) keeps all its samples."""
    steps = [max(1, int(np.ceil(n / max_edge))) for n in array.shape[:3]]  # k, j, i
    return array[::steps[0], ::steps[1], ::steps[2]], (steps[2], steps[1], steps[0])


class Volume3DView(QWidget):
    def __init__(self, state, parent=None) -> None:
        super().__init__(parent)
        self.state = state
        self.available, self.reason = opengl_available()
        self.preset = "MR"
        self.gl = None
        self._volume_item = None
        self._meshes: list = []
        self._cross = None
        self.status = QLabel("")
        self.status.setWordWrap(True)
        lay = QVBoxLayout(self)
        lay.setContentsMargins(0, 0, 0, 0)
        bar = QHBoxLayout()
        self.preset_box = QComboBox()
        self.preset_box.addItems(PRESETS)
        self.preset_box.setCurrentText(self.preset)
        self.preset_box.currentTextChanged.connect(self.set_preset)
        bar.addWidget(QLabel("3D"))
        bar.addWidget(self.preset_box)
        bar.addWidget(self.status, 1)
        lay.addLayout(bar)
        if not self.available:
            self.status.setText(f"3D view is off: {self.reason}. The 2D views work as usual.")
            self.preset_box.setEnabled(False)
            off = QLabel("3D view is off (no OpenGL)")
            off.setAlignment(Qt.AlignmentFlag.AlignCenter)
            lay.addWidget(off, 1)
            return
        import pyqtgraph.opengl as gl

        self.gl = gl.GLViewWidget()
        self.gl.setBackgroundColor("k")
        lay.addWidget(self.gl, 1)
        self._dirty = True
        state.volume_changed.connect(self.rebuild)
        state.layers_changed.connect(lambda: self.rebuild() if not self.isVisible() else self._rebuild_surfaces())
        state.cursor_changed.connect(self._place_crosshair)
        if state.volume is not None:
            self.rebuild(state.volume)

    def showEvent(self, ev):  # noqa: N802
        super().showEvent(ev)
        if self.available and getattr(self, "_dirty", False):
            self.rebuild()

    # ---- building -----------------------------------------------------------------------------
    def set_preset(self, name: str) -> None:
        self.preset = name
        if self.available and self.state.volume is not None:
            self._rebuild_volume()

    def rebuild(self, vol=None) -> None:
        if not self.available:
            return
        if not self.isVisible():  # a hidden 3D view costs nothing: built when shown
            self._dirty = True
            return
        self._dirty = False
        self._rebuild_volume()
        self._rebuild_surfaces()
        self._place_crosshair()

    def _transform(self, step):
        """QMatrix4x4 from reduced voxel (i, j, k) to LPS mm (the Volume's affine)."""
        from PySide6.QtGui import QMatrix4x4

        vol = self.state.volume
        a = vol.affine.copy()
        a[:3, :3] = a[:3, :3] * np.asarray(step, float)[None, :]
        return QMatrix4x4(*a.reshape(-1).tolist())

    def _rebuild_volume(self) -> None:
        import pyqtgraph.opengl as gl

        if self._volume_item is not None:
            self.gl.removeItem(self._volume_item)
            self._volume_item = None
        vol = self.state.volume
        if vol is None or vol.is_rgb:
            self.status.setText("" if vol is None else "3D: grey-level volumes only")
            return
        if vol.shape[0] < 2:
            self.status.setText("3D: a 2D image has no volume to render")
            return
        small, step = reduced(vol.array)
        window = self.state.window if vol.modality != "CT" else None
        rgba = transfer_function(small, self.preset, vol.modality, window)
        data = np.ascontiguousarray(np.transpose(rgba, (2, 1, 0, 3)))  # (i, j, k, 4) as GL wants
        item = gl.GLVolumeItem(data, smooth=True, glOptions="additive" if self.preset == "MIP" else "translucent")
        item.setTransform(self._transform(step))
        self.gl.addItem(item)
        self._volume_item = item
        centre = vol.index_to_world((np.asarray(vol.size_xyz) - 1) / 2)
        from PySide6.QtGui import QVector3D

        diag = float(np.linalg.norm(np.asarray(vol.size_xyz) * np.asarray(vol.spacing)))
        # pyqtgraph's fov (60 deg) is horizontal: at 0.65 x the diagonal a head fills ~85% of the width
        self.gl.setCameraPosition(pos=QVector3D(*centre), distance=0.65 * diag, elevation=15, azimuth=-90)
        self.status.setText(f"{self.preset}, {small.shape[2]}x{small.shape[1]}x{small.shape[0]} voxels "
                            f"(steps {step[0]},{step[1]},{step[2]}); drag to turn, wheel to zoom")

    def _rebuild_surfaces(self) -> None:
        if not self.available:
            return
        import pyqtgraph.opengl as gl
        from skimage.measure import marching_cubes

        from medview.ui.viewer_state import LabelLayer

        for m in self._meshes:
            self.gl.removeItem(m)
        self._meshes = []
        vol = self.state.volume
        if vol is None or vol.shape[0] < 2:
            return
        for layer in self.state.layers():
            if not isinstance(layer, LabelLayer) or not layer.visible:
                continue
            small, step = reduced(layer.volume.array)
            for value in np.unique(small):
                if value == 0 or int(value) in layer.hidden_labels:
                    continue
                mask = np.pad(small == value, 1).astype(np.float32)
                if mask.sum() < 4:
                    continue
                verts, faces, _n, _v = marching_cubes(mask, 0.5)
                verts = (verts - 1)[:, ::-1]  # (k, j, i) -> (i, j, k), undo the pad
                r, g, b = layer.color(int(value))
                mesh = gl.GLMeshItem(vertexes=verts, faces=faces, color=(r / 255, g / 255, b / 255, 0.8),
                                     smooth=True, shader="shaded", glOptions="opaque")
                mesh.setTransform(self._transform(step))
                # drawn before the volume's translucent slices (they write depth: a surface drawn
                # after them would be hidden even where they are transparent)
                mesh.setDepthValue(-10)
                self.gl.addItem(mesh)
                self._meshes.append(mesh)

    def _place_crosshair(self, *_args) -> None:
        if not self.available:
            return
        import pyqtgraph.opengl as gl

        vol = self.state.volume
        if self._cross is not None:
            self.gl.removeItem(self._cross)
            self._cross = None
        if not self.isVisible():
            return
        if vol is None or vol.shape[0] < 2:
            return
        c = np.asarray(self.state.cursor, float)
        n = np.asarray(vol.size_xyz, float) - 1
        pts = []
        for ax in range(3):
            a, b = c.copy(), c.copy()
            a[ax], b[ax] = 0, n[ax]
            pts += [vol.index_to_world(a), vol.index_to_world(b)]
        self._cross = gl.GLLinePlotItem(pos=np.array(pts), color=(0.4, 1.0, 0.4, 1.0), width=1.5, mode="lines")
        self.gl.addItem(self._cross)
