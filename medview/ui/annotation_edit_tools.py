"""The hand-editing tools of the slice views: brush / eraser / threshold paint, flood fill,
lasso and level tracing. Each turns a ``ToolEvent`` (continuous voxel (i, j, k) + the view's
normal axis) into an operation of ``medview.annotation.ops`` / ``region_tools`` on the session's
label map, applies the session's paint-over limit and records it on the undo history.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from PySide6.QtCore import Qt

from medview.annotation import ops, region_tools
from medview.ui.viewer_state import ToolEvent


def event_point(ev: ToolEvent) -> np.ndarray:
    """The event's position as an array index (k, j, i)."""
    return np.asarray(ev.ijk, dtype=np.float64)[::-1]


def event_plane(ev: ToolEvent) -> int:
    """The view plane as the array axis held constant (0 axial, 1 coronal, 2 sagittal)."""
    return 2 - int(ev.normal_axis)


class BrushTool:
    """Brush (or eraser) of ``session.radius_mm``: a disc in the view plane, or a 3D sphere.
    Shift while painting erases. ``threshold=True`` paints only where the image intensity is in
    ``session.threshold``."""

    def __init__(self, session, erase: bool = False, threshold: bool = False) -> None:
        self.session = session
        self.erase = erase
        self.threshold = threshold
        self._last: np.ndarray | None = None
        self._plane = 0
        self._value = 0

    def _paint(self, p0: np.ndarray, p1: np.ndarray | None) -> None:
        s = self.session
        assert s.labelmap is not None and s.history is not None
        kw: dict[str, Any] = {}
        if self.threshold:
            kw = {"intensity": s.grey(), "intensity_range": s.threshold}
        ch = ops.paint(s.labelmap, p0, p1, radius_mm=s.radius_mm, value=self._value, plane_axis=self._plane,
                       sphere=s.sphere, **kw)
        ch = s.limit(ch, erasing=self._value == 0)
        if ch is not None:
            s.history.add(ch)
            s.redraw(ch)

    def press(self, ev: ToolEvent) -> None:
        s = self.session
        if not s.can_edit():
            self._last = None
            return
        shift = bool(ev.modifiers & Qt.KeyboardModifier.ShiftModifier) if ev.modifiers is not None else False
        self._value = 0 if (self.erase or shift) else int(s.active_value)
        self._plane = event_plane(ev)
        assert s.history is not None
        s.history.begin(("Threshold paint" if self.threshold else "Brush") if self._value else "Erase")
        p = event_point(ev)
        self._paint(p, None)
        self._last = p

    def move(self, ev: ToolEvent) -> None:
        if self._last is None:
            return
        p = event_point(ev)
        self._paint(self._last, p)
        self._last = p

    def release(self, ev: ToolEvent) -> None:
        if self._last is None:
            return
        p = event_point(ev)
        if not np.allclose(p, self._last):
            self._paint(self._last, p)
        self._last = None
        assert self.session.history is not None
        self.session.history.end()


class FloodFillTool:
    """Click: fill the connected region under the mouse in this slice with the active label
    (the clicked label's region, or intensity within ``session.fill_tolerance`` when > 0).
    Shift-click fills with background (erases the region)."""

    def __init__(self, session) -> None:
        self.session = session

    def press(self, ev: ToolEvent) -> None:
        s = self.session
        if not s.can_edit():
            return
        assert s.labelmap is not None
        shift = bool(ev.modifiers & Qt.KeyboardModifier.ShiftModifier) if ev.modifiers is not None else False
        value = 0 if shift else int(s.active_value)
        kw: dict[str, Any] = {}
        if s.fill_tolerance > 0:
            kw = {"intensity": s.grey(), "tolerance": float(s.fill_tolerance)}
        else:  # the clicked label's region: on background only a hole enclosed by labels
            refusal = region_tools.background_fill_refusal(s.labelmap, event_point(ev), event_plane(ev))
            if refusal:
                s.message.emit(refusal)
                return
        ch = ops.flood_fill(s.labelmap, event_point(ev), value=value, plane_axis=event_plane(ev), **kw)
        s.apply(s.limit(ch, erasing=value == 0))

    def move(self, ev: ToolEvent) -> None:
        pass

    def release(self, ev: ToolEvent) -> None:
        pass


class LassoTool:
    """Drag a closed outline: on release the polygon is filled with the active label in this
    slice (Shift: erased). The outline is drawn on the view while dragging."""

    def __init__(self, session) -> None:
        self.session = session
        self.points: list[np.ndarray] = []
        self._plane = 0
        self._shift = False
        self._curve: Any = None
        self._view: Any = None

    def press(self, ev: ToolEvent) -> None:
        self.points = [event_point(ev)] if self.session.can_edit() else []
        self._plane = event_plane(ev)
        self._shift = bool(ev.modifiers & Qt.KeyboardModifier.ShiftModifier) if ev.modifiers is not None else False
        self._view = self.session.views.get(ev.view)
        self._draw()

    def move(self, ev: ToolEvent) -> None:
        if self.points:
            self.points.append(event_point(ev))
            self._draw()

    def _draw(self) -> None:
        view = self._view
        if view is None or getattr(view, "geom", None) is None or not self.points:
            return
        import pyqtgraph as pg

        xy = np.array([view.geom.voxel_to_scene(p[::-1]) for p in [*self.points, self.points[0]]])
        if self._curve is None:
            self._curve = pg.PlotCurveItem(pen=pg.mkPen((255, 255, 0), width=1.5, cosmetic=True))
            self._curve.setZValue(1000)
            view.vb.addItem(self._curve, ignoreBounds=True)
        self._curve.setData(xy[:, 0], xy[:, 1])

    def _clear(self) -> None:
        if self._curve is not None and self._view is not None:
            self._view.vb.removeItem(self._curve)
        self._curve = None
        self._view = None

    def release(self, ev: ToolEvent) -> None:
        s = self.session
        self._clear()
        if not self.points or s.labelmap is None:
            self.points = []
            return
        self.points.append(event_point(ev))
        pts, self.points = self.points, []
        value = 0 if self._shift else int(s.active_value)
        s.apply(s.limit(ops.fill_polygon(s.labelmap, pts, value=value, plane_axis=self._plane), erasing=value == 0))


class LevelTraceTool:
    """Click: fill (with the active label) the region inside the iso-intensity line through the
    clicked pixel, in this slice (Slicer's level tracing)."""

    def __init__(self, session) -> None:
        self.session = session

    def press(self, ev: ToolEvent) -> None:
        s = self.session
        if not s.can_edit():
            return
        assert s.labelmap is not None
        ch = region_tools.level_trace(s.labelmap, s.grey(), event_point(ev), int(s.active_value), event_plane(ev))
        s.apply(s.limit(ch))

    def move(self, ev: ToolEvent) -> None:
        pass

    def release(self, ev: ToolEvent) -> None:
        pass
