"""The mouse gestures of a slice view: a radiology viewer's, not a plot's (wheel scrolls slices,
ctrl+wheel zooms, middle-drag pans, right-drag sets window/level, the left button does what the
active tool says, a press on a shown measurement grabs it)."""

from __future__ import annotations

from typing import Any

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import Qt

MEASURE_TOOLS = ("ruler", "ellipse", "rect")


class SliceViewBox(pg.ViewBox):
    """ViewBox whose mouse gestures are a radiology viewer's, not a plot's."""

    def __init__(self, owner: Any) -> None:  # the SliceView (it imports this module)
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
