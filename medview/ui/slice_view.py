"""One 2D slice view (axial, coronal or sagittal) of the ViewerState: image + overlays +
crosshair + measurements, drawn with a bare pyqtgraph GraphicsLayoutWidget/ViewBox/ImageItem.

Mouse: wheel scrolls slices, ctrl+wheel zooms, middle-drag pans, right-drag changes
window/level, left button does what the active tool says (navigate: move the crosshair;
"wl": window/level; "pan"; "ruler", "ellipse", "rect": measure; any tool registered with
``state.register_tool``). Keys: arrows / PageUp / PageDown / Home / End scroll, F fits, Delete
removes the selected measurement.
"""

from __future__ import annotations

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import QPointF, QRectF, Qt, Signal
from PySide6.QtGui import QColor, QFont, QPen, QTransform
from PySide6.QtWidgets import (
    QGraphicsEllipseItem,
    QGraphicsLineItem,
    QGraphicsRectItem,
    QGraphicsView,
    QLabel,
    QSizePolicy,
)

from medview.measure import window_to_levels
from medview.ui.corner_text import ColorBar, ScaleBar, corner_texts, elide_lines, make_overlay_label
from medview.ui.fast_image import FastImageItem, rgba_to_premultiplied, window_table
from medview.ui.geometry import ViewGeometry, take_slice, view_geometry
from medview.ui.overlay_render import bbox_2d, heatmap_lut, label_lut, label_lut_size, label_slice
from medview.ui.viewer_state import HeatmapLayer, LabelLayer, Measurement, ToolEvent, ViewerState
from medview.viewing.display import axis_slab, slab_half_width

pg.setConfigOptions(imageAxisOrder="row-major", antialias=False)

MEASURE_TOOLS = ("ruler", "ellipse", "rect")
VIEW_COLORS = {"axial": "#e0c040", "coronal": "#40c0e0", "sagittal": "#e060a0"}


def _cosmetic_pen(color: str, width: float = 1.5, style=Qt.PenStyle.SolidLine) -> QPen:
    pen = QPen(QColor(color))
    pen.setWidthF(width)
    pen.setCosmetic(True)
    pen.setStyle(style)
    return pen


class _SliceViewBox(pg.ViewBox):
    """ViewBox whose mouse gestures are a radiology viewer's, not a plot's."""

    def __init__(self, owner: SliceView) -> None:
        super().__init__(lockAspect=True, invertY=True, enableMenu=False, defaultPadding=0.0)
        self.owner = owner
        self._wl_start: tuple[float, float] | None = None
        self._drag_mode: str | None = None

    def wheelEvent(self, ev, axis=None):
        if ev.modifiers() & Qt.KeyboardModifier.ControlModifier:
            super().wheelEvent(ev, axis)
            return
        steps = int(np.sign(ev.delta())) or 0
        if steps:
            self.owner.scroll(steps)
        ev.accept()

    def mouseClickEvent(self, ev):
        o = self.owner
        if ev.button() == Qt.MouseButton.RightButton and o.geom is not None:
            handler = o.state.tool_handler(o.state.tool)
            if hasattr(handler, "right_click"):  # e.g. AI assist: right click removes
                ev.accept()
                handler.right_click(o.tool_event(self.mapSceneToView(ev.scenePos()), ev.modifiers()))
                return
        if ev.button() != Qt.MouseButton.LeftButton or o.geom is None:
            ev.accept()
            return
        ev.accept()
        pos = self.mapSceneToView(ev.scenePos())
        hit = o.measurement_at(pos)
        if hit is not None:
            o.select_measurement(hit)
            return
        o.select_measurement(None)
        tool = o.state.tool
        if tool in ("navigate", "wl", "pan", "rotate") or tool in MEASURE_TOOLS:
            o.set_cursor_at(pos)
        else:
            handler = o.state.tool_handler(tool)
            if handler is not None:
                te = o.tool_event(pos, ev.modifiers())
                handler.press(te)
                handler.release(te)

    def mouseDragEvent(self, ev, axis=None):
        o = self.owner
        if o.geom is None:
            ev.ignore()
            return
        btn = ev.button()
        if btn == Qt.MouseButton.MiddleButton:
            pg.ViewBox.mouseDragEvent(self, ev, axis)  # pan
            return
        ev.accept()
        if ev.isStart():
            tool = o.state.tool
            grab = None
            if btn == Qt.MouseButton.LeftButton and (tool == "navigate" or tool in MEASURE_TOOLS):
                grab = o.measurement_grab(self.mapSceneToView(ev.buttonDownScenePos()))
            if grab is not None:  # drag an end point / corner, or the whole measurement
                self._drag_mode = "move_measure"
                self._grab = grab
                o.select_measurement(grab[0])
            elif btn == Qt.MouseButton.RightButton or tool == "wl":
                self._drag_mode = "wl"
                self._wl_start = o.state.window
            elif tool == "pan":
                self._drag_mode = "pan"
            elif tool == "rotate":
                self._drag_mode = "rotate"
                self._last_angle = o.angle_about_cursor(self.mapSceneToView(ev.buttonDownScenePos()))
            elif tool in MEASURE_TOOLS:
                self._drag_mode = tool
            elif tool == "navigate":
                self._drag_mode = "navigate"
            else:
                self._drag_mode = "tool"
            self._drag_origin = self.mapSceneToView(ev.buttonDownScenePos())
            if self._drag_mode == "tool":
                h = o.state.tool_handler(o.state.tool)
                if h is not None:
                    h.press(o.tool_event(self._drag_origin, ev.modifiers()))
        mode = self._drag_mode
        pos = self.mapSceneToView(ev.scenePos())
        if mode == "wl" and self._wl_start is not None:
            d = ev.screenPos() - ev.buttonDownScreenPos()
            w0, l0 = self._wl_start
            o.state.set_window(w0 * 2.0 ** (d.x() / 150.0), l0 + d.y() * w0 / 300.0)
        elif mode == "pan":
            pg.ViewBox.mouseDragEvent(self, ev, axis)
        elif mode == "navigate":
            o.set_cursor_at(pos)
        elif mode == "rotate":
            a = o.angle_about_cursor(pos)
            if a is not None and self._last_angle is not None:
                d = (a - self._last_angle + np.pi) % (2 * np.pi) - np.pi
                o.state.rotate_oblique.emit(o.view, float(d), not ev.isFinish())
            self._last_angle = a
        elif mode == "move_measure":
            o.drag_measurement(self._grab, self._drag_origin, pos)
        elif mode in MEASURE_TOOLS:
            o.draw_rubber_band(mode, self._drag_origin, pos, finish=ev.isFinish())
        elif mode == "tool":
            h = o.state.tool_handler(o.state.tool)
            if h is not None:
                te = o.tool_event(pos, ev.modifiers())
                (h.release if ev.isFinish() else h.move)(te)
        if ev.isFinish():
            self._drag_mode = None
            self._wl_start = None


class SliceView(pg.GraphicsLayoutWidget):
    hovered = Signal(str, object)  # view name, continuous (i, j, k) or None
    activated = Signal(str)  # clicked / focused
    maximize_requested = Signal(str)

    def __init__(self, state: ViewerState, view: str, parent=None) -> None:
        super().__init__(parent)
        self.state = state
        self.view = view
        self.geom: ViewGeometry | None = None
        self.slice_index = -1
        self.setBackground("k")
        # the whole viewport repaints on every change: a moved crosshair never leaves a trail
        # (minimal updates left stale line pixels in coronal/sagittal after a navigate drag)
        self.setViewportUpdateMode(QGraphicsView.ViewportUpdateMode.FullViewportUpdate)
        self.setFocusPolicy(Qt.FocusPolicy.StrongFocus)
        self.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Expanding)
        self.ci.setContentsMargins(0, 0, 0, 0)
        self.vb = _SliceViewBox(self)
        self.addItem(self.vb)
        self.img = FastImageItem(axisOrder="row-major")
        self.img.set_smooth(state.smooth)
        self.vb.addItem(self.img)
        self._overlays: dict[str, FastImageItem] = {}
        color = VIEW_COLORS.get(view, "#e0c040")
        self.hline = pg.InfiniteLine(angle=0, movable=False, pen=pg.mkPen(color, width=1))
        self.vline = pg.InfiniteLine(angle=90, movable=False, pen=pg.mkPen(color, width=1))
        for ln in (self.hline, self.vline):
            ln.setZValue(50)
            self.vb.addItem(ln, ignoreBounds=True)
        # where the oblique view's plane cuts this one (shown while the oblique view is)
        self.oblique_line = pg.InfiniteLine(angle=0, movable=False,
                                            pen=pg.mkPen("#60e060", width=1, style=Qt.PenStyle.DashLine))
        self.oblique_line.setZValue(51)
        self.oblique_line.setVisible(False)
        self.vb.addItem(self.oblique_line, ignoreBounds=True)
        self._measure_items: dict[int, list] = {}
        self._rubber: list = []
        self._placed_labels: list[QRectF] = []
        self.selected_measurement: int | None = None

        # text overlays (widgets on top of the view: they do not zoom or pan)
        font = QFont()
        font.setPointSize(10)
        bold = QFont(font)
        bold.setBold(True)
        bold.setPointSize(12)
        self.orientation_labels: dict[str, QLabel] = {}
        for side in ("left", "right", "top", "bottom"):
            lab = QLabel("", self)
            lab.setFont(bold)
            lab.setStyleSheet("color: #f0d060; background: rgba(0, 0, 0, 140); padding: 0px 2px;")
            lab.setAttribute(Qt.WidgetAttribute.WA_TransparentForMouseEvents)
            self.orientation_labels[side] = lab
        self.info_label = QLabel("", self)
        self.info_label.setFont(font)
        self.info_label.setStyleSheet(f"color: {color}; background: transparent;")
        self.info_label.setAttribute(Qt.WidgetAttribute.WA_TransparentForMouseEvents)
        self.wl_label = QLabel("", self)
        self.wl_label.setFont(font)
        self.wl_label.setStyleSheet("color: #c0c0c0; background: transparent;")
        self.wl_label.setAttribute(Qt.WidgetAttribute.WA_TransparentForMouseEvents)
        small = QFont(font)
        small.setPointSize(9)
        left, right = Qt.AlignmentFlag.AlignLeft, Qt.AlignmentFlag.AlignRight
        self.corner_labels = {
            "top_left": make_overlay_label(self, small, "#d0d0d0", left),
            "top_right": make_overlay_label(self, small, "#d0d0d0", right),
            "bottom_left": make_overlay_label(self, small, "#c0c0c0", left),
            "bottom_right": make_overlay_label(self, small, "#c0c0c0", right),
        }
        self.scale_bar = ScaleBar(self)
        self.color_bar = ColorBar(self)
        self.vb.sigRangeChanged.connect(self._on_range_changed)
        self.vb.sigResized.connect(self._on_range_changed)  # the scale changes with the box size too

        self.scene().sigMouseMoved.connect(self._on_mouse_moved)
        self._connections = [
            (state.volume_changed, self._on_volume),
            (state.cursor_changed, self._on_cursor),
            (state.window_changed, self._on_window),
            (state.invert_changed, self._on_invert),
            (state.layers_changed, self._on_layers),
            (state.layer_changed, self._on_layer_changed),
            (state.measurements_changed, self._refresh_measurements),
            (state.display_changed, self._on_display),
            (state.frame_changed, lambda _t: self._render_slice(force=True)),
            (state.oblique_changed, self._on_oblique),
        ]
        for sig, slot in self._connections:
            sig.connect(slot)
        if state.volume is not None:
            self._on_volume(state.volume)

    def detach(self) -> None:
        """Stop following the state (a closed view must not keep drawing)."""
        for sig, slot in self._connections:
            try:
                sig.disconnect(slot)
            except (RuntimeError, TypeError):
                pass
        self._connections = []

    def closeEvent(self, ev):  # noqa: N802
        self.detach()
        super().closeEvent(ev)

    def close(self):
        # pyqtgraph's close() clears the scene before closeEvent: stop listening first (a range
        # change of the dying ViewBox must not reach the scale bar)
        self.detach()
        for sig in (self.vb.sigRangeChanged, self.vb.sigResized):
            try:
                sig.disconnect(self._on_range_changed)
            except (RuntimeError, TypeError):
                pass
        self._closing = True
        return super().close()

    # ---- state -> drawing ----------------------------------------------------------------------
    def _on_volume(self, vol) -> None:
        self.slice_index = -1
        self._clear_measure_items()
        if vol is None:
            self.geom = None
            self.img.clear()
            for it in self._overlays.values():
                it.clear()
            self._update_text()
            return
        self.geom = g = view_geometry(self.view, vol.shape, vol.spacing, vol.direction)
        t = QTransform(*g.item_transform())
        self.img.setTransform(t)
        for it in self._overlays.values():
            it.setTransform(t)
        self._apply_window()
        self._on_layers()
        self._render_slice(force=True)
        self._place_crosshair()
        self.fit()
        self._update_text()

    def _current_index(self) -> int:
        assert self.geom is not None
        return int(self.state.cursor[self.geom.normal_axis])

    def _on_cursor(self, _cursor) -> None:
        if self.geom is None:
            return
        if self._current_index() != self.slice_index:
            self._render_slice()
        self._place_crosshair()

    def _render_slice(self, force: bool = False) -> None:
        vol = self.state.volume
        g = self.geom
        if vol is None or g is None:
            return
        idx = self._current_index()
        if idx == self.slice_index and not force:
            return
        self.slice_index = idx
        half = 0 if vol.is_rgb else slab_half_width(self.state.slab_mm, vol.spacing[g.normal_axis])
        if half:
            plane = axis_slab(vol.array, g.normal_axis, idx, half, self.state.slab_mode)
            if plane.dtype != vol.array.dtype:  # mean: back to the image's type for its table
                plane = plane.astype(vol.array.dtype)
        else:
            plane = take_slice(vol.array, g.normal_axis, idx)
        self.img.set_data(plane)
        for layer in self.state.layers():
            self._render_overlay(layer)
        self._refresh_measurements()
        self._update_text()

    def _render_overlay(self, layer, lut_changed: bool = False) -> None:
        item = self._overlays.get(layer.name)
        g = self.geom
        if item is None or g is None:
            return
        if not layer.visible:
            item.setVisible(False)
            return
        plane = take_slice(layer.volume.array, g.normal_axis, self.slice_index)
        # draw only the bounding box of what is visible on this slice (label maps and thresholded
        # heatmaps are mostly empty): less to look up and far less for Qt to blend
        if isinstance(layer, LabelLayer):
            box = bbox_2d(plane, margin=1)
        elif layer.threshold > layer.vmin:
            box = bbox_2d(plane >= layer.threshold)
        else:
            box = (0, plane.shape[0], 0, plane.shape[1])
        item.setVisible(box is not None)
        if box is None:
            return
        r0, r1, c0, c1 = box
        crop = plane[r0:r1, c0:c1]
        base = QTransform(*g.item_transform())
        item.setTransform(QTransform.fromTranslate(c0, r0) * base if (r0 or c0) else base)
        if isinstance(layer, LabelLayer):
            # the table's size follows the map's dtype (an edit can widen uint8 -> uint16)
            if lut_changed or item.argb_lut is None or len(item.argb_lut) != label_lut_size(layer):
                item.set_argb_lut(rgba_to_premultiplied(label_lut(layer)), update=False)
            item.set_data(label_slice(crop, layer.outline))
        else:
            if lut_changed or item.argb_lut is None:
                item.set_argb_lut(rgba_to_premultiplied(heatmap_lut(layer)),
                                  value_range=(layer.vmin, layer.vmax), update=False)
            item.set_data(crop)

    def _on_display(self) -> None:
        self.img.set_smooth(self.state.smooth)
        for layer in self.state.layers():  # heatmaps smooth too; labels stay crisp
            item = self._overlays.get(layer.name)
            if item is not None:
                item.set_smooth(self.state.smooth and isinstance(layer, HeatmapLayer))
        self._render_slice(force=True)

    def _on_range_changed(self, *_args) -> None:
        if getattr(self, "_closing", False):
            return
        self._update_scale()
        self._update_text()

    def zoom_factor(self) -> float:
        """Screen pixels per image pixel (finest in-plane spacing); 0 before anything is shown."""
        g = self.geom
        if g is None:
            return 0.0
        px = self.vb.viewPixelSize()[0]  # mm per screen pixel
        return float(min(g.h_spacing, g.v_spacing) / px) if px > 0 else 0.0

    def _update_scale(self) -> None:
        vol = self.state.volume
        if self.geom is None or vol is None or not vol.pixel_size_known:
            self.scale_bar.set_scale(0.0)
            return
        self.scale_bar.set_scale(float(self.vb.viewPixelSize()[0]), vol.length_unit)

    def _update_color_bar(self) -> None:
        heat = [lay for lay in self.state.layers() if isinstance(lay, HeatmapLayer) and lay.visible]
        cb = self.color_bar
        cb.set_layer(heat[-1] if heat and self.geom is not None else None)
        cb.move(self.width() - cb.width() - 4, cb.y())  # its width follows the layer's name

    def _on_layers(self) -> None:
        names = [lay.name for lay in self.state.layers()]
        for name in list(self._overlays):
            if name not in names:
                self.vb.removeItem(self._overlays.pop(name))
        for z, layer in enumerate(self.state.layers()):
            item = self._overlays.get(layer.name)
            if item is None:
                item = FastImageItem(axisOrder="row-major")
                self._overlays[layer.name] = item
                self.vb.addItem(item, ignoreBounds=True)
                if self.geom is not None:
                    item.setTransform(QTransform(*self.geom.item_transform()))
                item.set_smooth(self.state.smooth and isinstance(layer, HeatmapLayer))
                # drawn by the layer_changed(name, None) that add_layer sends next
            item.setZValue(10 + z)
        self._update_color_bar()

    def _on_layer_changed(self, name: str, region) -> None:
        layer = self.state.layer(name)
        if layer is None or self.geom is None or self.slice_index < 0:
            return
        if region is not None:
            # region is (k, j, i) slices; our slice index runs along voxel axis normal_axis
            sl = region[2 - self.geom.normal_axis]
            start, stop, _ = sl.indices(self.geom.n_slices)
            if not (start <= self.slice_index < stop):
                return
        self._render_overlay(layer, lut_changed=region is None)
        if region is None and isinstance(layer, HeatmapLayer):
            self._update_color_bar()
            self.color_bar.update()

    def _apply_window(self) -> None:
        vol = self.state.volume
        if vol is None:
            return
        if vol.is_rgb:
            self.img.set_argb_lut(None)
            self.img.setLevels(None)
            return
        lut, value_range = window_table(vol.array.dtype, *window_to_levels(*self.state.window),
                                        self.state.invert)
        self.img.set_argb_lut(lut, value_range)

    def _on_window(self, width: float, level: float) -> None:
        self._apply_window()
        self._update_text()

    def _on_invert(self, on: bool) -> None:
        self._apply_window()
        self._update_text()

    def _place_crosshair(self) -> None:
        g = self.geom
        if g is None:
            return
        x, y = g.voxel_to_scene(self.state.cursor)
        self.vline.setValue(x)
        self.hline.setValue(y)

    def angle_about_cursor(self, pos: QPointF) -> float | None:
        """Screen angle (radians) of ``pos`` seen from the crosshair centre."""
        g = self.geom
        if g is None:
            return None
        cx, cy = g.voxel_to_scene(self.state.cursor)
        if abs(pos.x() - cx) + abs(pos.y() - cy) < 1e-9:
            return None
        return float(np.arctan2(pos.y() - cy, pos.x() - cx))

    def view_normal_world(self) -> np.ndarray | None:
        """LPS direction through this view's plane (the voxel axis it slices)."""
        vol = self.state.volume
        if vol is None or self.geom is None:
            return None
        return vol.direction[:, self.geom.normal_axis].copy()

    def _on_oblique(self, plane) -> None:
        """Draw where ``plane`` (a medview.viewing Plane, or None) cuts this view."""
        vol, g = self.state.volume, self.geom
        if plane is None or vol is None or g is None:
            self.oblique_line.setVisible(False)
            return
        n_view = self.view_normal_world()
        d = np.cross(np.asarray(plane.normal, float), n_view)
        if np.linalg.norm(d) < 1e-6:  # parallel planes: no line
            self.oblique_line.setVisible(False)
            return
        c = np.asarray(plane.center, float)
        a = g.voxel_to_scene(vol.world_to_index(c))
        b = g.voxel_to_scene(vol.world_to_index(c + 10.0 * d / np.linalg.norm(d)))
        self.oblique_line.setPos(QPointF(*a))
        self.oblique_line.setAngle(float(np.degrees(np.arctan2(b[1] - a[1], b[0] - a[0]))))
        self.oblique_line.setVisible(True)

    def set_crosshair_visible(self, on: bool) -> None:
        self.vline.setVisible(on)
        self.hline.setVisible(on)

    # ---- text ------------------------------------------------------------------------------------
    def _update_text(self) -> None:
        g = self.geom
        texts = corner_texts(self.state, self) if g is not None else {c: "" for c in self.corner_labels}
        if g is None:
            for lab in self.orientation_labels.values():
                lab.setText("")
            self.info_label.setText(self.view.capitalize())
            self._info_index = ""
            self.wl_label.setText("")
        else:
            vol = self.state.volume
            # a photograph has no patient axes: A/P/R/L letters and "axial" would be invented
            photo = vol is not None and not vol.pixel_size_known
            for side, lab in self.orientation_labels.items():
                lab.setText("" if photo else g.labels[side])
                lab.adjustSize()
            title = "Image" if photo else self.view.capitalize()
            self.info_label.setText(f"{title}  {self.slice_index + 1}/{g.n_slices}")
            self._info_index = f"{self.slice_index + 1}/{g.n_slices}"
            if vol is not None and not vol.is_rgb:
                w, lvl = self.state.window
                self.wl_label.setText(f"W {w:.6g}  L {lvl:.6g}" + ("  inv" if self.state.invert else ""))
            else:
                self.wl_label.setText("RGB")
        self._corner_full = texts
        self._info_full = self.info_label.text()
        self._wl_full = self.wl_label.text()
        self.info_label.adjustSize()
        self.wl_label.adjustSize()
        self._place_labels()

    def _fitted_title(self, room: int) -> str:
        """The view name and slice index, shortened in a narrow view: the name goes first, never
        digits of the index ("Coronal 161/32" read as slice 161 of 32)."""
        from PySide6.QtGui import QFontMetrics

        full = getattr(self, "_info_full", self.info_label.text())
        index = getattr(self, "_info_index", "")
        fm = QFontMetrics(self.info_label.font())
        name = full[: -len(index)].strip() if index and full.endswith(index) else full
        for text in (full, f"{name[:3]}  {index}" if index else full, index):
            if text and fm.horizontalAdvance(text) <= room:
                return text
        return index or full

    def _place_labels(self) -> None:
        """Corner texts are cut (ellipsis) where they would reach the orientation letter of their
        edge, so the W/L line never covers the bottom letter in a narrow view."""
        w, h = self.width(), self.height()
        ol = self.orientation_labels
        for lab in ol.values():
            lab.adjustSize()
        ol["left"].move(4, (h - ol["left"].height()) // 2)
        ol["right"].move(w - ol["right"].width() - 4, (h - ol["right"].height()) // 2)
        ol["top"].move((w - ol["top"].width()) // 2, 2)
        ol["bottom"].move((w - ol["bottom"].width()) // 2, h - ol["bottom"].height() - 2)
        room_top = (w - max(ol["top"].width(), 1)) // 2 - 10
        room_bottom = (w - max(ol["bottom"].width(), 1)) // 2 - 10
        full = getattr(self, "_corner_full", {})
        self.wl_label.setText(elide_lines(getattr(self, "_wl_full", ""), self.wl_label.font(), room_bottom))
        self.info_label.setText(self._fitted_title(room_top))
        for lab, room in ((self.info_label, room_top), (self.wl_label, room_bottom)):
            lab.setMaximumWidth(max(room, 8))
            lab.adjustSize()
        cl = self.corner_labels
        for key, room in (("top_left", room_top), ("top_right", room_top),
                          ("bottom_left", room_bottom), ("bottom_right", room_bottom)):
            lab = cl[key]
            lab.setText(elide_lines(full.get(key, ""), lab.font(), room))
            lab.adjustSize()
        self.info_label.move(6, 4)
        cl["top_left"].move(6, 4 + self.info_label.height())
        cl["top_right"].move(w - cl["top_right"].width() - 6, 4)
        self.wl_label.move(6, h - self.wl_label.height() - 4)
        cl["bottom_left"].move(6, h - self.wl_label.height() - cl["bottom_left"].height() - 4)
        cl["bottom_right"].move(w - cl["bottom_right"].width() - 6, h - cl["bottom_right"].height() - 4)
        sb = self.scale_bar
        sb.move(w - sb.width() - 6, cl["bottom_right"].y() - sb.height() - 2)
        cb = self.color_bar
        cb.resize(cb.width(), min(180, max(60, h // 3)))
        cb.move(w - cb.width() - 4, cl["top_right"].y() + cl["top_right"].height() + 30)

    def resizeEvent(self, ev):
        super().resizeEvent(ev)
        if hasattr(self, "corner_labels") and not getattr(self, "_closing", False):
            self._update_scale()
            self._place_labels()

    # ---- navigation ------------------------------------------------------------------------------
    def scroll(self, steps: int) -> None:
        if self.geom is not None:
            self.state.move_cursor(self.geom.normal_axis, steps)

    def fit(self) -> None:
        g = self.geom
        if g is not None:
            self.vb.setRange(QRectF(0, 0, g.width_mm, g.height_mm), padding=0.02)

    def scene_to_voxel(self, pos: QPointF) -> np.ndarray | None:
        g = self.geom
        if g is None:
            return None
        return g.scene_to_voxel(pos.x(), pos.y(), self.slice_index)

    def set_cursor_at(self, pos: QPointF) -> None:
        ijk = self.scene_to_voxel(pos)
        if ijk is not None:
            self.state.set_cursor(ijk)

    def tool_event(self, pos: QPointF, modifiers) -> ToolEvent:
        ijk = self.scene_to_voxel(pos)
        assert ijk is not None and self.geom is not None
        vol = self.state.volume
        z, y, x = vol.shape
        vox = tuple(int(np.clip(round(v), 0, n - 1)) for v, n in zip(ijk, (x, y, z), strict=True))
        return ToolEvent(self.view, ijk, vox, self.geom.normal_axis, self.slice_index, modifiers,
                         self.state)

    def _on_mouse_moved(self, scene_pos) -> None:
        if self.geom is None:
            return
        if not self.vb.sceneBoundingRect().contains(scene_pos):
            self.hovered.emit(self.view, None)
            return
        self.hovered.emit(self.view, self.scene_to_voxel(self.vb.mapSceneToView(scene_pos)))

    def keyPressEvent(self, ev):
        k = ev.key()
        g = self.geom
        page = max(1, (g.n_slices // 10) if g else 1)
        if k in (Qt.Key.Key_Up, Qt.Key.Key_Right):
            self.scroll(1)
        elif k in (Qt.Key.Key_Down, Qt.Key.Key_Left):
            self.scroll(-1)
        elif k == Qt.Key.Key_PageUp:
            self.scroll(page)
        elif k == Qt.Key.Key_PageDown:
            self.scroll(-page)
        elif k == Qt.Key.Key_Home and g is not None:
            self.scroll(-g.n_slices)
        elif k == Qt.Key.Key_End and g is not None:
            self.scroll(g.n_slices)
        elif k == Qt.Key.Key_F:
            self.fit()
        elif k in (Qt.Key.Key_Delete, Qt.Key.Key_Backspace) and self.selected_measurement is not None:
            self.state.remove_measurement(self.selected_measurement)
            self.selected_measurement = None
        else:
            super().keyPressEvent(ev)
            return
        ev.accept()

    def focusInEvent(self, ev):
        super().focusInEvent(ev)
        self.activated.emit(self.view)

    def mouseDoubleClickEvent(self, ev):
        self.maximize_requested.emit(self.view)
        ev.accept()

    # ---- measurements ----------------------------------------------------------------------------
    def _clear_measure_items(self) -> None:
        for items in self._measure_items.values():
            for it in items:
                self.vb.removeItem(it)
        self._measure_items.clear()

    def _refresh_measurements(self) -> None:
        self._clear_measure_items()
        g = self.geom
        if g is None:
            return
        self._placed_labels: list[QRectF] = []
        for m in self.state.measurements:
            if m.view == self.view and m.slice_index == self.slice_index:
                self._measure_items[m.id] = self._make_measure_items(m, m.id == self.selected_measurement)

    def _free_label_pos(self, x: float, y: float, lines: int, chars: int) -> tuple[float, float]:
        """Scene position near (x, y) (label's bottom-left) where a label of ``lines`` x
        ``chars`` does not cover one already placed: moved up a label height at a time."""
        px = self.vb.viewPixelSize()
        w, h = chars * 7.0 * px[0], lines * 15.0 * px[1]
        (x_lo, x_hi), (y_lo, _y_hi) = self.vb.viewRange()
        x = max(x_lo, min(x, x_hi - w))  # inside the view: not cut at its right edge
        y = max(y, y_lo + h)
        for _ in range(12):
            r = QRectF(x, y - h, w, h)
            if not any(r.intersects(o) for o in self._placed_labels):
                self._placed_labels.append(r)
                return x, y
            y -= h + 2 * px[1]
        self._placed_labels.append(QRectF(x, y - h, w, h))
        return x, y

    def _make_measure_items(self, m: Measurement, selected: bool) -> list:
        g = self.geom
        assert g is not None
        x0, y0 = g.voxel_to_scene(m.p0)
        x1, y1 = g.voxel_to_scene(m.p1)
        pen = _cosmetic_pen("#ff5050" if selected else "#50ff50", 2.0 if selected else 1.5)
        res = self.state.measurement_result(m)
        if m.kind == "ruler":
            shape = QGraphicsLineItem(x0, y0, x1, y1)
            unit = self.state.volume.length_unit if self.state.volume is not None else "mm"
            text = f"{res['length_mm']:.1f} {unit}"
        else:
            rect = QRectF(QPointF(min(x0, x1), min(y0, y1)), QPointF(max(x0, x1), max(y0, y1)))
            shape = QGraphicsEllipseItem(rect) if m.kind == "ellipse" else QGraphicsRectItem(rect)
            text = format_roi_stats(res, self.state.volume.meta if self.state.volume else {})
        shape.setPen(pen)
        shape.setZValue(60)
        label = pg.TextItem(text, color="#50ff50" if not selected else "#ff5050", anchor=(0, 1))
        lines = text.split("\n")
        label.setPos(*self._free_label_pos(max(x0, x1), min(y0, y1), len(lines), max(map(len, lines))))
        label.setZValue(61)
        for it in (shape, label):
            self.vb.addItem(it, ignoreBounds=True)
        return [shape, label]

    def draw_rubber_band(self, kind: str, p0: QPointF, p1: QPointF, finish: bool) -> None:
        for it in self._rubber:
            self.vb.removeItem(it)
        self._rubber = []
        if finish:
            a, b = self.scene_to_voxel(p0), self.scene_to_voxel(p1)
            if a is not None and b is not None and np.abs(a - b).max() > 0.5:
                m = Measurement(kind, self.view, self.slice_index, tuple(a), tuple(b))
                self.state.add_measurement(m)
                self.select_measurement(m.id)
            return
        pen = _cosmetic_pen("#50ff50", 1.5, Qt.PenStyle.DashLine)
        if kind == "ruler":
            it = QGraphicsLineItem(p0.x(), p0.y(), p1.x(), p1.y())
        else:
            r = QRectF(p0, p1).normalized()
            it = QGraphicsEllipseItem(r) if kind == "ellipse" else QGraphicsRectItem(r)
        it.setPen(pen)
        it.setZValue(60)
        self.vb.addItem(it, ignoreBounds=True)
        self._rubber = [it]

    def measurement_at(self, pos: QPointF, tol_px: float = 6.0) -> int | None:
        """The id of a measurement shown on this slice near ``pos`` (view coordinates)."""
        g = self.geom
        if g is None:
            return None
        px = self.vb.viewPixelSize()  # mm per screen pixel (x, y)
        tol = tol_px * max(px[0], px[1])
        p = np.array([pos.x(), pos.y()])
        for m in reversed(self.state.measurements):
            if m.view != self.view or m.slice_index != self.slice_index:
                continue
            a = np.array(g.voxel_to_scene(m.p0))
            b = np.array(g.voxel_to_scene(m.p1))
            if m.kind == "ruler":
                ab = b - a
                t = float(np.clip(np.dot(p - a, ab) / max(np.dot(ab, ab), 1e-12), 0, 1))
                if np.linalg.norm(a + t * ab - p) <= tol:
                    return m.id
            elif _outline_distance(m.kind, a, b, p) <= tol:
                # the outline, not the box: a ruler can start inside an ROI
                return m.id
        return None

    def measurement_grab(self, pos: QPointF, tol_px: float = 6.0):
        """(id, part, p0, p1) for a press on a shown measurement: part "p0"/"p1" near an end point
        (a ruler's end, a box's corner), "body" elsewhere on it; None when nothing is hit."""
        mid = self.measurement_at(pos, tol_px)
        if mid is None or self.geom is None:
            return None
        m = next(x for x in self.state.measurements if x.id == mid)
        px = self.vb.viewPixelSize()
        tol = tol_px * max(px[0], px[1])
        p = np.array([pos.x(), pos.y()])
        for part, q in (("p1", m.p1), ("p0", m.p0)):
            if np.linalg.norm(np.array(self.geom.voxel_to_scene(q)) - p) <= tol:
                return mid, part, m.p0, m.p1
        return mid, "body", m.p0, m.p1

    def drag_measurement(self, grab, origin: QPointF, pos: QPointF) -> None:
        """Move the grabbed end point, or the whole measurement, by the drag from ``origin``."""
        mid, part, p0, p1 = grab
        a, b = self.scene_to_voxel(origin), self.scene_to_voxel(pos)
        if a is None or b is None:
            return
        d = np.asarray(b, float) - np.asarray(a, float)
        q0, q1 = np.asarray(p0, float), np.asarray(p1, float)
        if part in ("p0", "body"):
            q0 = q0 + d
        if part in ("p1", "body"):
            q1 = q1 + d
        self.state.move_measurement(mid, q0, q1)

    def select_measurement(self, mid: int | None) -> None:
        if mid != self.selected_measurement:
            self.selected_measurement = mid
            self._refresh_measurements()


def _outline_distance(kind: str, a: np.ndarray, b: np.ndarray, p: np.ndarray) -> float:
    """Distance (scene mm) from ``p`` to the outline of the rectangle / ellipse spanned by a, b."""
    lo, hi = np.minimum(a, b), np.maximum(a, b)
    if kind == "rect":
        inside = np.all(p >= lo) and np.all(p <= hi)
        if inside:
            return float(min(p[0] - lo[0], hi[0] - p[0], p[1] - lo[1], hi[1] - p[1]))
        return float(np.linalg.norm(np.maximum(np.maximum(lo - p, p - hi), 0)))
    c, r = (lo + hi) / 2, np.maximum((hi - lo) / 2, 1e-9)
    q = (p - c) / r
    n = float(np.linalg.norm(q))
    if n < 1e-12:
        return float(r.min())
    on = c + r * q / n  # the outline point along the same ray: close enough for picking
    return float(np.linalg.norm(p - on))


def format_roi_stats(res: dict, meta: dict) -> str:
    if not res or res.get("n", 0) == 0:
        return "empty ROI"
    unit = " HU" if str(meta.get("Modality", "")) == "CT" else ""
    # a photograph without a pixel size: its spacing of 1 is a pixel, not a millimetre
    area_unit = "mm\u00b2" if meta.get("pixel_size_known", True) else "px\u00b2"
    return (f"mean {res['mean']:.1f}{unit}  SD {res['sd']:.1f}\n"
            f"min {res['min']:.6g}  max {res['max']:.6g}\n"
            f"area {res['area_mm2']:.1f} {area_unit}")
