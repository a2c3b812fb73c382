"""Measurements drawn on a slice view: rulers and ellipse / rectangle ROIs with their labels
(placed so they do not cover each other), the rubber band while one is drawn, and picking,
grabbing and dragging a shown one. A mixin of SliceView: it uses the view's ``vb``, ``geom``,
``state``, ``view``, ``slice_index`` and ``scene_to_voxel``."""

from __future__ import annotations

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import QPointF, QRectF, Qt
from PySide6.QtGui import QColor, QPen
from PySide6.QtWidgets import QGraphicsEllipseItem, QGraphicsLineItem, QGraphicsRectItem

from medview.ui.viewer_state import Measurement


def cosmetic_pen(color: str, width: float = 1.5, style=Qt.PenStyle.SolidLine) -> QPen:
    pen = QPen(QColor(color))
    pen.setWidthF(width)
    pen.setCosmetic(True)
    pen.setStyle(style)
    return pen


class SliceMeasurements:
    """Measurement items of one slice view (mixed into SliceView)."""

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
        pen = cosmetic_pen("#ff5050" if selected else "#50ff50", 2.0 if selected else 1.5)
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
        pen = cosmetic_pen("#50ff50", 1.5, Qt.PenStyle.DashLine)
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
