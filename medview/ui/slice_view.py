"""One 2D slice view (axial, coronal or sagittal) of the ViewerState: image + overlays +
crosshair + measurements, drawn with a bare pyqtgraph GraphicsLayoutWidget/ViewBox/ImageItem.

Mouse: wheel scrolls slices, ctrl+wheel zooms, middle-drag pans, right-drag changes
window/level, left button does what the active tool says (navigate: move the crosshair;
"wl": window/level; "pan"; "ruler", "ellipse", "rect": measure; any tool registered with
``state.register_tool``). Keys: arrows / PageUp / PageDown / Home / End scroll, F fits, Delete
removes the selected measurement. The gestures live in slice_gestures, the measurement items
in slice_measurements.
"""

from __future__ import annotations

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import QPointF, QRectF, Qt, Signal
from PySide6.QtGui import QFont, QTransform
from PySide6.QtWidgets import QGraphicsView, QLabel, QSizePolicy

from medview.measure import window_to_levels
from medview.ui.corner_text import ColorBar, ScaleBar, corner_texts, elide_lines, make_overlay_label
from medview.ui.fast_image import FastImageItem, rgba_to_premultiplied, window_table
from medview.ui.geometry import ViewGeometry, take_slice, view_geometry
from medview.ui.overlay_render import bbox_2d, heatmap_lut, label_lut, label_lut_size, label_slice
from medview.ui.slice_gestures import SliceViewBox
from medview.ui.slice_measurements import SliceMeasurements
from medview.ui.viewer_state import HeatmapLayer, LabelLayer, ToolEvent, ViewerState
from medview.viewing.display import axis_slab, slab_half_width

pg.setConfigOptions(imageAxisOrder="row-major", antialias=False)

VIEW_COLORS = {"axial": "#e0c040", "coronal": "#40c0e0", "sagittal": "#e060a0"}


class SliceView(SliceMeasurements, pg.GraphicsLayoutWidget):
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
        self.vb = SliceViewBox(self)
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
