"""ViewerState: the one model every view draws and every panel or tool changes (no widgets).

Views listen to its signals; panels call its methods. Overlay layers live here too::

    from medview.ui.viewer_state import LabelLayer, HeatmapLayer
    layer = LabelLayer("segmentation", label_volume, colors={1: (255, 0, 0)}, names={1: "tumour"})
    state.add_layer(layer)
    label_volume.array[k0:k1, j0:j1, i0:i1] = 1          # edit in place ...
    state.layer_changed.emit("segmentation", (slice(k0, k1), slice(j0, j1), slice(i0, i1)))
    state.update_layer("segmentation", opacity=0.3, outline=True)   # style change -> redraw

Regions are tuples of three slices in array order (k, j, i); ``None`` means "everything".
Layers are drawn in the order they were added (later on top), all on the image grid.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass, field
from typing import Any, Protocol

import numpy as np
from PySide6.QtCore import QObject, Signal

from medview.io.volume import Volume

LAYOUTS = ("1x1", "1x3", "2x2", "mpr")  # mpr: patient-axes reformats + oblique
DEFAULT_LABEL_COLORS = [
    (230, 25, 75), (60, 180, 75), (255, 225, 25), (0, 130, 200), (245, 130, 48), (145, 30, 180),
    (70, 240, 240), (240, 50, 230), (210, 245, 60), (250, 190, 212), (0, 128, 128), (220, 190, 255),
]


def default_label_color(value: int) -> tuple[int, int, int]:
    return DEFAULT_LABEL_COLORS[(int(value) - 1) % len(DEFAULT_LABEL_COLORS)]


@dataclass
class LabelLayer:
    """Integer label map on the image grid (0 = background, never drawn)."""

    name: str
    volume: Volume
    colors: dict[int, tuple[int, int, int]] = field(default_factory=dict)
    names: dict[int, str] = field(default_factory=dict)
    opacity: float = 0.5
    outline: bool = False
    hidden_labels: set[int] = field(default_factory=set)
    visible: bool = True

    kind = "label"

    def color(self, value: int) -> tuple[int, int, int]:
        return tuple(self.colors.get(int(value), default_label_color(value)))  # type: ignore[return-value]

    def label_name(self, value: int) -> str:
        return self.names.get(int(value), f"label {int(value)}")

    def set_label_visible(self, value: int, visible: bool) -> None:
        (self.hidden_labels.discard if visible else self.hidden_labels.add)(int(value))


@dataclass
class HeatmapLayer:
    """Float map on the image grid (probability, Grad-CAM ...) drawn through a colormap.

    Values are mapped linearly from ``vmin`` (first colour) to ``vmax`` (last); values below
    ``threshold`` are transparent.
    """

    name: str
    volume: Volume
    colormap: str = "inferno"  # any pyqtgraph colormap name (inferno, viridis, turbo, plasma ...)
    opacity: float = 0.5
    threshold: float = 0.0
    vmin: float = 0.0
    vmax: float = 1.0
    visible: bool = True

    kind = "heatmap"


Layer = LabelLayer | HeatmapLayer


@dataclass
class Measurement:
    """A ruler or ROI drawn on one slice of one view; points are continuous voxel (i, j, k)."""

    kind: str  # "ruler" | "ellipse" | "rect"
    view: str  # "axial" | "coronal" | "sagittal"
    slice_index: int
    p0: tuple[float, float, float]
    p1: tuple[float, float, float]
    id: int = field(default_factory=lambda: next(_ids))


_ids = itertools.count(1)


def series_key(volume: Volume) -> str:
    """What names a series across re-opens: its SeriesInstanceUID, else its file or folder."""
    m = volume.meta
    return str(m.get("SeriesInstanceUID") or m.get("source_path") or id(volume))


class Tool(Protocol):
    """An interactive tool (annotation brush, ...): gets left-button events as ToolEvents."""

    def press(self, ev: ToolEvent) -> None: ...
    def move(self, ev: ToolEvent) -> None: ...
    def release(self, ev: ToolEvent) -> None: ...


@dataclass
class ToolEvent:
    view: str  # view name
    ijk: np.ndarray  # continuous voxel position (i, j, k) under the mouse
    voxel: tuple[int, int, int]  # nearest voxel (i, j, k), clipped to the grid
    normal_axis: int  # voxel axis through the view's plane (0=i, 1=j, 2=k)
    slice_index: int
    modifiers: Any  # Qt.KeyboardModifier flags
    state: ViewerState


class ViewerState(QObject):
    volume_changed = Signal(object)  # Volume or None
    cursor_changed = Signal(object)  # (i, j, k) ints
    window_changed = Signal(float, float)  # width, level
    invert_changed = Signal(bool)
    layout_changed = Signal(str)
    active_view_changed = Signal(str)
    tool_changed = Signal(str)
    layers_changed = Signal()  # a layer was added or removed
    layer_changed = Signal(str, object)  # name, region (k, j, i slices) or None: data or style
    measurements_changed = Signal()
    status_message = Signal(str)
    display_changed = Signal()  # slab thickness/mode, smooth display
    frame_changed = Signal(int)  # 4D: another volume of the series is shown (same grid)
    # oblique view: a 2D view asks it to turn about that view's normal (view, radians, dragging)
    rotate_oblique = Signal(str, float, bool)
    oblique_changed = Signal(object)  # the oblique Plane now shown (None: hidden)

    SLAB_MODES = ("mip", "minip", "mean")

    def __init__(self, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self.volume: Volume | None = None
        self.cursor: tuple[int, int, int] = (0, 0, 0)
        self.window: tuple[float, float] = (1.0, 0.5)  # width, level
        self.default_window: tuple[float, float] = (1.0, 0.5)
        self.invert = False
        self.layout = "1x3"
        self.active_view = "axial"
        self.tool = "navigate"
        self._layers: dict[str, Layer] = {}
        self._tools: dict[str, Tool] = {}
        self.measurements: list[Measurement] = []
        # measurements of the other series opened in this session (key -> (measurements,
        # CSV rows made while that series was shown)), restored when it is opened again
        self._kept_measurements: dict[str, tuple[list[Measurement], list[dict]]] = {}
        self.window_source = ""  # "dicom", "auto", "auto (stored window ... does not fit ...)"
        self.slab_mm = 0.0  # 0 = a plain slice
        self.slab_mode = "mip"
        self.smooth = True  # interpolated display (as every PACS viewer)
        self.frames: np.ndarray | None = None  # 4D series: (t, k, j, i); volume.array is one of them
        self.frame = 0

    # ---- volume / cursor ---------------------------------------------------------------------
    def set_volume(self, volume: Volume | None, window: tuple[float, float] | None = None) -> None:
        """Show a new volume: cursor to its centre, window as given (else auto), no layers."""
        self._keep_measurements()
        self.frames, self.frame = None, 0
        self.volume = volume
        self._layers.clear()
        self.measurements = []
        if volume is not None:
            kept = self._kept_measurements.pop(series_key(volume), None)
            if kept is not None:
                self.measurements = kept[0]
            if window is None:
                from medview.viewing.display import first_window

                window, self.window_source = first_window(volume.meta, volume.array)
            else:
                self.window_source = "given"
            self.default_window = (float(window[0]), float(window[1]))
            self.window = self.default_window
            z, y, x = volume.shape
            self.cursor = (x // 2, y // 2, z // 2)
        self.layers_changed.emit()
        self.measurements_changed.emit()
        self.volume_changed.emit(volume)
        if volume is not None:
            self.window_changed.emit(*self.window)
            self.cursor_changed.emit(self.cursor)

    def _keep_measurements(self) -> None:
        if self.volume is not None and self.measurements:
            self._kept_measurements[series_key(self.volume)] = (list(self.measurements),
                                                                self.measurement_rows(current_only=True))

    def measurement_rows(self, current_only: bool = False) -> list[dict]:
        """One row per measurement of every series opened in this session (for CSV export)."""
        rows = []
        if not current_only:
            for _key, (_ms, kept_rows) in self._kept_measurements.items():
                rows.extend(kept_rows)
        vol = self.volume
        if vol is not None:
            meta = vol.meta
            for m in self.measurements:
                res = self.measurement_result(m)
                rows.append({
                    "patient_id": meta.get("PatientID", ""), "study_date": meta.get("StudyDate", ""),
                    "series": meta.get("SeriesDescription", "") or str(meta.get("source_path", "")),
                    "series_uid": meta.get("SeriesInstanceUID", ""), "kind": m.kind, "view": m.view,
                    "slice": m.slice_index + 1,
                    "p0_lps_mm": " ".join(f"{x:.2f}" for x in vol.index_to_world(m.p0)),
                    "p1_lps_mm": " ".join(f"{x:.2f}" for x in vol.index_to_world(m.p1)),
                    **{k: (round(float(v), 3) if isinstance(v, (int, float, np.floating)) else v)
                       for k, v in res.items()},
                    "unit": vol.length_unit,
                })
        return rows

    def set_cursor(self, ijk) -> None:
        if self.volume is None:
            return
        z, y, x = self.volume.shape
        c = tuple(int(np.clip(round(float(v)), 0, n - 1)) for v, n in zip(ijk, (x, y, z), strict=True))
        if c != self.cursor:
            self.cursor = c  # type: ignore[assignment]
            self.cursor_changed.emit(self.cursor)

    def move_cursor(self, axis: int, delta: int) -> None:
        c = list(self.cursor)
        c[axis] += delta
        self.set_cursor(c)

    # ---- window / display --------------------------------------------------------------------
    def set_window(self, width: float, level: float) -> None:
        width = max(float(width), 1e-6)
        if (width, float(level)) != self.window:
            self.window = (width, float(level))
            self.window_changed.emit(*self.window)

    def reset_window(self) -> None:
        self.set_window(*self.default_window)

    def set_invert(self, on: bool) -> None:
        if bool(on) != self.invert:
            self.invert = bool(on)
            self.invert_changed.emit(self.invert)

    def set_frames(self, frames: np.ndarray) -> None:
        """All volumes of a 4D series (frame 0 must be the one shown)."""
        if self.volume is None or frames.shape[1:] != self.volume.array.shape:
            raise ValueError("4D frames must be volumes on the shown image's grid")
        self.frames, self.frame = frames, 0

    def set_frame(self, t: int) -> None:
        """Show volume ``t`` of a 4D series: same grid, cursor, layers and measurements."""
        if self.frames is None or self.volume is None:
            return
        t = int(np.clip(t, 0, len(self.frames) - 1))
        if t != self.frame:
            self.frame = t
            self.volume.array = self.frames[t]
            self.frame_changed.emit(t)

    def set_slab(self, slab_mm: float, mode: str | None = None) -> None:
        """Thick slab (mm, 0 = plain slice) and its mode (mip, minip, mean) in every view."""
        mode = mode or self.slab_mode
        if mode not in self.SLAB_MODES:
            raise ValueError(f"slab mode must be one of {self.SLAB_MODES}, not {mode!r}")
        if (float(slab_mm), mode) != (self.slab_mm, self.slab_mode):
            self.slab_mm, self.slab_mode = max(0.0, float(slab_mm)), mode
            self.display_changed.emit()

    def set_smooth(self, on: bool) -> None:
        if bool(on) != self.smooth:
            self.smooth = bool(on)
            self.display_changed.emit()

    def set_layout(self, layout: str) -> None:
        if layout not in LAYOUTS:
            raise ValueError(f"layout must be one of {LAYOUTS}, not {layout!r}")
        if layout != self.layout:
            self.layout = layout
            self.layout_changed.emit(layout)

    def set_active_view(self, view: str) -> None:
        if view != self.active_view:
            self.active_view = view
            self.active_view_changed.emit(view)

    # ---- tools -------------------------------------------------------------------------------
    def register_tool(self, name: str, tool: Tool) -> None:
        """Make ``tool`` (press/move/release taking a ToolEvent) selectable as ``name``."""
        self._tools[name] = tool

    def tool_handler(self, name: str) -> Tool | None:
        return self._tools.get(name)

    def set_tool(self, name: str) -> None:
        if name != self.tool:
            self.tool = name
            self.tool_changed.emit(name)

    # ---- layers ------------------------------------------------------------------------------
    def add_layer(self, layer: Layer) -> Layer:
        """Add (or replace, by name) an overlay; its volume must share the image grid."""
        if self.volume is None:
            raise ValueError("open an image before adding overlay layers")
        if tuple(layer.volume.shape) != tuple(self.volume.shape):
            raise ValueError(
                f"layer {layer.name!r} has shape {layer.volume.shape}, image has {self.volume.shape}")
        self._layers[layer.name] = layer
        self.layers_changed.emit()
        self.layer_changed.emit(layer.name, None)
        return layer

    def remove_layer(self, name: str) -> None:
        if self._layers.pop(name, None) is not None:
            self.layers_changed.emit()

    def layer(self, name: str) -> Layer | None:
        return self._layers.get(name)

    def layers(self) -> list[Layer]:
        return list(self._layers.values())

    def update_layer(self, name: str, **props: Any) -> None:
        """Change layer properties (opacity, outline, colormap, threshold, visible ...) and redraw."""
        layer = self._layers[name]
        for k, v in props.items():
            if not hasattr(layer, k):
                raise AttributeError(f"{type(layer).__name__} has no property {k!r}")
            setattr(layer, k, v)
        self.layer_changed.emit(name, None)

    # ---- measurements ------------------------------------------------------------------------
    def add_measurement(self, m: Measurement) -> Measurement:
        self.measurements.append(m)
        self.measurements_changed.emit()
        return m

    def move_measurement(self, mid: int, p0, p1) -> None:
        """New end points (continuous voxel i, j, k) for a measurement being dragged."""
        for m in self.measurements:
            if m.id == mid:
                m.p0 = tuple(float(v) for v in p0)
                m.p1 = tuple(float(v) for v in p1)
                self.measurements_changed.emit()
                return

    def remove_measurement(self, mid: int) -> None:
        n = len(self.measurements)
        self.measurements = [m for m in self.measurements if m.id != mid]
        if len(self.measurements) != n:
            self.measurements_changed.emit()

    def clear_measurements(self) -> None:
        if self.measurements:
            self.measurements.clear()
            self.measurements_changed.emit()

    def measurement_result(self, m: Measurement) -> dict[str, Any]:
        """Length (mm) of a ruler, or stats (mean, sd, min, max, area_mm2, n) of an ROI."""
        from medview import measure
        from medview.ui.geometry import slice_axes, take_slice, view_geometry

        vol = self.volume
        if vol is None:
            return {}
        if m.kind == "ruler":
            return {"length_mm": measure.distance_mm(m.p0, m.p1, vol.spacing)}
        g = view_geometry(m.view, vol.shape, vol.spacing, vol.direction)
        plane = take_slice(vol.array, g.normal_axis, int(m.slice_index))
        r0, c0 = g.slice_rc(np.asarray(m.p0) + 0.5)
        r1, c1 = g.slice_rc(np.asarray(m.p1) + 0.5)
        make = measure.ellipse_mask if m.kind == "ellipse" else measure.rect_mask
        mask = make(plane.shape[:2], r0, c0, r1, c1)
        rows_axis, cols_axis = slice_axes(g.normal_axis)
        return measure.roi_stats(plane, mask, vol.spacing[rows_axis] * vol.spacing[cols_axis])
