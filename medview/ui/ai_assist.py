"""The "AI assist" annotation tool: left click adds, right click (or Ctrl+click) removes, a drag
draws a box (or, in scribble mode, a stroke; Shift: a removing stroke). Each interaction updates
the active label in the clicked slice through ``medview.interactive.session.AssistSession``,
then propagates through the neighbouring slices of a 3D series from a timer (so the window
stays live and "Stop" works). Every interaction is one undo step named after the model and its
version, counted in the label map's provenance.
"""

from __future__ import annotations

import time
from typing import Any

import numpy as np
from PySide6.QtCore import QObject, Qt, QTimer, Signal

from medview.ui.annotation_edit_tools import event_plane, event_point
from medview.ui.viewer_state import ToolEvent

MODEL_ID = "interactive-2d"


class AIAssistController(QObject):
    """Holds the interactive model and the object being segmented; drives the propagation."""

    status = Signal(str)
    running_changed = Signal(bool)

    def __init__(self, session, parent: QObject | None = None, model_id: str = MODEL_ID) -> None:
        super().__init__(parent)
        self.session = session  # AnnotationSession
        self.model_id = model_id
        self.segmenter: Any = None
        self.assist: Any = None
        self.propagate = True
        self.mode = "clicks"  # "clicks" (click / box) | "scribble"
        self.last_ms: float | None = None
        self._iter = None
        self._timer = QTimer(self)
        self._timer.setInterval(0)
        self._timer.timeout.connect(self._step)
        self._slices_done = 0

    # ---- model ---------------------------------------------------------------------------------
    def load(self) -> bool:
        if self.segmenter is not None:
            return True
        from medview.inference.package import PackageError, find_package
        from medview.interactive.model import Segmenter

        try:
            self.segmenter = Segmenter.from_package(find_package(self.model_id))
        except (PackageError, KeyError, LookupError, OSError, ValueError) as exc:
            self.status.emit(f"AI assist unavailable: {exc}")
            return False
        self.status.emit(f"AI assist: {self.segmenter.model_id} {self.segmenter.version}")
        return True

    def model_text(self) -> str:
        """The model's id and version (looked up once: the panel refreshes often); the 3D network
        when the current object's session uses one."""
        seg3d = self.assist.known_segmenter3d if self.assist is not None else None
        if seg3d is not None:
            return f"{seg3d.model_id} {seg3d.version} (3D)"
        if self.segmenter is not None:
            return f"{self.segmenter.model_id} {self.segmenter.version}"
        if getattr(self, "_model_text", None) is None:
            from medview.inference.package import find_package

            try:
                pkg = find_package(self.model_id)
                self._model_text = f"{pkg.id} {pkg.version}"
            except Exception as exc:  # noqa: BLE001 - shown, never raised into the panel
                self._model_text = f"no interactive model: {exc}"
        return self._model_text

    def _assist(self):
        """The AssistSession of the open label map and active label (a new one when they changed)."""
        s = self.session
        if not s.can_edit() or not self.load():
            return None
        from medview.interactive.session import AssistSession

        a = self.assist
        if a is None or a.lm is not s.labelmap or a.value != s.active_value:
            self.finish()
            vol = s.state.volume
            a = self.assist = AssistSession(self.segmenter, s.labelmap, vol.array, s.history, value=s.active_value,
                                            over="background" if s.paint_over == "background" else "all",
                                            on_change=s.redraw)
        a.propagate = self.propagate
        return a

    def new_object(self) -> None:
        self.finish()
        if self.assist is not None:
            self.assist.reset()
        self.status.emit("AI assist: new object (the next click starts it)")

    # ---- interactions --------------------------------------------------------------------------
    def _start(self, make) -> None:
        a = self._assist()
        if a is None:
            return
        self.finish()
        t0 = time.perf_counter()
        it = make(a)
        try:
            next(it)  # the prompted slice, now
        except StopIteration:
            pass
        self.last_ms = 1000 * (time.perf_counter() - t0)
        self._iter = it
        self._slices_done = 1
        self.status.emit(f"AI assist: {self.last_ms:.0f} ms")
        self._timer.start()
        self.running_changed.emit(True)

    def click(self, plane: int, index: int, row: float, col: float, positive: bool) -> None:
        self._start(lambda a: a.click(plane, index, row, col, positive))

    def box(self, plane: int, index: int, r0: float, c0: float, r1: float, c1: float) -> None:
        self._start(lambda a: a.box(plane, index, r0, c0, r1, c1))

    def scribble(self, plane: int, index: int, stroke: np.ndarray, positive: bool) -> None:
        self._start(lambda a: a.scribble(plane, index, stroke, positive))

    def _step(self) -> None:
        if self._iter is None:
            self._timer.stop()
            return
        try:
            next(self._iter)
            self._slices_done += 1
        except StopIteration:
            self.finish()
            extra = f", propagated to {self._slices_done - 1} slice(s)" if self._slices_done > 1 else ""
            self.status.emit(f"AI assist: {self.last_ms:.0f} ms{extra}")

    def stop(self) -> None:
        """Stop the propagation (slices done so far stay, as one undo step)."""
        if self.assist is not None and self._iter is not None:
            self.assist.stop()
            self.status.emit(f"AI assist: propagation stopped after {self._slices_done - 1} slice(s)")
        self.finish()

    def finish(self) -> None:
        self._timer.stop()
        was = self._iter is not None
        self._iter = None
        if self.assist is not None:
            self.assist.finish()
        if was:
            self.running_changed.emit(False)
            self.session.edited.emit()


class AIAssistTool:
    """press / move / release from the slice views, plus ``right_click``."""

    def __init__(self, controller: AIAssistController) -> None:
        self.c = controller
        self._p0: np.ndarray | None = None
        self._path: list[np.ndarray] = []
        self._plane = 0
        self._negative = False

    @staticmethod
    def _rc(p: np.ndarray, plane: int) -> tuple[float, float]:
        others = [ax for ax in range(3) if ax != plane]
        return float(p[others[0]]), float(p[others[1]])

    def press(self, ev: ToolEvent) -> None:
        self._p0 = event_point(ev)
        self._path = [self._p0]
        self._plane = event_plane(ev)
        mods = ev.modifiers if ev.modifiers is not None else Qt.KeyboardModifier.NoModifier
        self._negative = bool(mods & (Qt.KeyboardModifier.ControlModifier | Qt.KeyboardModifier.ShiftModifier))

    def move(self, ev: ToolEvent) -> None:
        if self._p0 is not None:
            self._path.append(event_point(ev))

    def release(self, ev: ToolEvent) -> None:
        if self._p0 is None:
            return
        p1 = event_point(ev)
        self._path.append(p1)
        p0, self._p0 = self._p0, None
        a = self._plane
        index = int(round(p0[a]))
        r0, c0 = self._rc(p0, a)
        r1, c1 = self._rc(p1, a)
        if self._moved() < 2.0:  # a click, not a drag
            self.c.click(a, index, r0, c0, positive=not self._negative)
        elif self.c.mode == "scribble":
            self.c.scribble(a, index, self._stroke_mask(a, index), positive=not self._negative)
        else:
            self.c.box(a, index, r0, c0, r1, c1)

    def right_click(self, ev: ToolEvent) -> None:
        p = event_point(ev)
        a = event_plane(ev)
        r, c = self._rc(p, a)
        self.c.click(a, int(round(p[a])), r, c, positive=False)

    def _moved(self) -> float:
        pts = np.array(self._path)
        return float(np.abs(pts - pts[0]).max()) if len(pts) else 0.0

    def _stroke_mask(self, a: int, index: int) -> np.ndarray:
        shape = [n for ax, n in enumerate(self.c.session.labelmap.shape) if ax != a]
        m = np.zeros(shape, bool)
        pts = [self._rc(p, a) for p in self._path]
        for (ra, ca), (rb, cb) in zip(pts[:-1], pts[1:], strict=False):
            n = int(max(abs(rb - ra), abs(cb - ca))) + 2
            rr = np.clip(np.round(np.linspace(ra, rb, n)).astype(int), 0, shape[0] - 1)
            cc = np.clip(np.round(np.linspace(ca, cb, n)).astype(int), 0, shape[1] - 1)
            m[rr, cc] = True
        from scipy import ndimage

        return ndimage.binary_dilation(m, iterations=1)
