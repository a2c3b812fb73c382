"""Annotation tools for the slice views: small classes with press / move / release that turn
view points into ``medview.annotation`` operations, plus the session object that ties a
LabelMap, its EditHistory and its autosaving Workspace to the ViewerState.

No algorithm lives here: every edit is an operation of ``medview.annotation.ops``; this module
only converts a ``ToolEvent`` (continuous voxel (i, j, k) + the view's normal axis) into the
operation's (k, j, i) point and plane axis, records it on the history and asks the views to
redraw just the changed region (``state.layer_changed(name, region)``).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
from PySide6.QtCore import QObject, Signal

from medview.annotation import EditHistory, Label, LabelMap, ops, region_tools
from medview.annotation.correction import edit_prediction, edit_summary
from medview.annotation.undo_log import UndoLog, restore_history
from medview.annotation.workspace import Workspace, workspace_key, workspaces_dir
from medview.ui.annotation_edit_tools import (  # noqa: F401  (event_* re-exported for other tools)
    BrushTool,
    FloodFillTool,
    LassoTool,
    LevelTraceTool,
    event_plane,
    event_point,
)
from medview.ui.viewer_state import LabelLayer, ViewerState

LAYER_NAME = "annotation"


class AnnotationSession(QObject):
    """The label map being edited in the viewer, its undo history and its workspace."""

    labels_changed = Signal()  # label table (names, colours, lock, visibility)
    history_changed = Signal()  # undo/redo stacks
    edited = Signal()  # voxels changed (summary, statistics)
    session_changed = Signal()  # a label map was opened or closed
    message = Signal(str)
    save_status = Signal(str)  # autosave failure message, "" once everything is written again

    def __init__(self, state: ViewerState, parent: QObject | None = None, use_workspace: bool = True,
                 workspace_base: Path | None = None) -> None:
        super().__init__(parent)
        self.state = state
        self.use_workspace = use_workspace
        self.workspace_base = workspace_base
        self.labelmap: LabelMap | None = None
        self.history: EditHistory | None = None
        self.workspace: Workspace | None = None
        self.original: np.ndarray | None = None  # the AI labels an edit started from
        self.active_value = 1
        self.radius_mm = 3.0
        self.sphere = False
        self.threshold: tuple[float, float] = (0.0, 1.0)
        self.fill_tolerance = 0.0  # 0: flood fill the clicked label region; > 0: intensity +- tolerance
        self.paint_over = "all"  # "all" | "background" | "label" (only over paint_over_label)
        self.paint_over_label: int | None = None
        self.outline = False
        self._grey: np.ndarray | None = None
        self.views: dict[str, Any] = {}  # view name -> SliceView, for tool feedback (lasso outline)
        self._cursor_items: dict[str, Any] = {}
        self.tools: dict[str, Any] = {
            "annotate.brush": BrushTool(self),
            "annotate.erase": BrushTool(self, erase=True),
            "annotate.threshold": BrushTool(self, threshold=True),
            "annotate.fill": FloodFillTool(self),
            "annotate.lasso": LassoTool(self),
            "annotate.level": LevelTraceTool(self),
        }
        from medview.ui.ai_assist import AIAssistController, AIAssistTool

        self.ai = AIAssistController(self, self)
        self.tools["annotate.ai"] = AIAssistTool(self.ai)
        for name, tool in self.tools.items():
            state.register_tool(name, tool)
        state.volume_changed.connect(self._on_volume_changed)

    # ---- opening / closing -------------------------------------------------------------------
    @property
    def active(self) -> bool:
        return self.labelmap is not None

    def _workspace_root(self, lm: LabelMap) -> Path:
        base = self.workspace_base or workspaces_dir()
        root = base / workspace_key(lm.reference)
        if (root / "snapshot.json").exists():
            # never overwrite an earlier session: keep it beside, with its time
            import time

            root.rename(root.with_name(root.name + time.strftime("-%Y%m%d-%H%M%S")))
        return root

    def start(self, lm: LabelMap, original: np.ndarray | None = None, workspace: Workspace | None = None) -> None:
        """Show ``lm`` as the editable layer (it must be on the viewer's image grid)."""
        vol = self.state.volume
        if vol is None:
            raise ValueError("open an image first")
        if lm.shape != vol.shape:
            raise ValueError(f"label map {lm.shape} does not match the image {vol.shape}")
        self.stop()
        self.labelmap = lm
        self.original = original
        if workspace is not None:
            self.workspace, self.history = workspace, workspace.history
        else:
            self.history = EditHistory(lm)
            if self.use_workspace:
                try:
                    self.workspace = Workspace.create(self._workspace_root(lm), lm, self.history, original=original)
                except OSError as exc:
                    self.workspace = None
                    self.message.emit(f"autosave is off: cannot write the workspace ({exc})")
        self.history.listeners.append(self._on_history)
        lm.table_listeners.append(self._on_table)
        if self.workspace is not None:  # called from the autosave thread too: the signal is queued
            self.workspace.status_listeners.append(self._on_save_status)
            # the undo history survives a crash: a restored session can still undo
            self.history.listeners.append(UndoLog(self.workspace.root))
        self.active_value = min(lm.labels) if lm.labels else 1
        self._grey = None
        self.state.add_layer(LabelLayer(LAYER_NAME, lm.volume, outline=self.outline))
        self.sync_layer()
        self.session_changed.emit()
        self.labels_changed.emit()
        self.history_changed.emit()

    def new_labelmap(self) -> LabelMap:
        if self.state.volume is None:
            raise ValueError("open an image first")
        lm = LabelMap.empty(self.state.volume)
        self.start(lm)
        return lm

    def edit_prediction(self, prediction: Any) -> LabelMap:
        """"Edit" on a segmentation result: the AI labels become the editable label map."""
        if self.state.volume is None:
            raise ValueError("open an image first")
        lm, original = edit_prediction(prediction, self.state.volume)
        self.start(lm, original=original)
        # the AI's own overlay would show through where the reviewer erased: hide it (the copy
        # being edited is drawn instead; the model panel's checkbox can show it again)
        ai = getattr(prediction, "labels", None)
        for layer in self.state.layers():
            if isinstance(layer, LabelLayer) and layer.name != LAYER_NAME and layer.volume is ai and layer.visible:
                self.state.update_layer(layer.name, visible=False)
        return lm

    def resume(self, root: Path) -> LabelMap:
        """Restore a crashed (or saved) session from its workspace folder onto the open image."""
        ws = Workspace.resume(root)
        assert ws.labelmap is not None
        vol = self.state.volume
        if vol is None or not vol.same_geometry(ws.labelmap.volume, tol=1e-3):
            ws.close()
            raise ValueError(f"{root}: the saved labels are on another image grid than the open image")
        restore_history(ws.history, root)
        self.start(ws.labelmap, original=ws.original(), workspace=ws)
        return ws.labelmap

    def _on_save_status(self, message: str | None) -> None:
        self.save_status.emit(message or "")

    def stop(self) -> None:
        """Close the session: last snapshot written, workspace lock released, layer removed."""
        if self.labelmap is None:
            return
        self.ai.finish()
        if self.history is not None and self.history.in_stroke:
            self.history.end()
        if self.workspace is not None:
            ws = self.workspace
            if self._on_save_status in ws.status_listeners:
                ws.status_listeners.remove(self._on_save_status)
            def closed(saved: bool, ws=ws) -> None:  # from the closing thread: the signal is queued
                if not saved:
                    self.message.emit(f"{ws.save_error or 'Autosave did not finish'}: the session in {ws.root} "
                                      "is kept and offered for restore at the next start")

            # the final snapshot is written on a closing thread: stopping never blocks the GUI
            ws.close(timeout=2.0 if ws.save_error else 30.0, wait=False, on_closed=closed)
            self.save_status.emit("")
        if self.history is not None and self._on_history in self.history.listeners:
            self.history.listeners.remove(self._on_history)
        if self._on_table in self.labelmap.table_listeners:
            self.labelmap.table_listeners.remove(self._on_table)
        self.labelmap = self.history = self.workspace = None
        self.original = None
        self.state.remove_layer(LAYER_NAME)
        self.session_changed.emit()
        self.labels_changed.emit()
        self.history_changed.emit()

    def _on_volume_changed(self, vol) -> None:
        if self.labelmap is not None and (vol is None or not vol.same_geometry(self.labelmap.volume)):
            self.stop()
        self._grey = None

    def set_active_value(self, value: int) -> None:
        """Choose the label to edit (the AI assist starts a new object for it)."""
        if int(value) != self.active_value:
            self.ai.finish()
        self.active_value = int(value)

    def set_outline(self, on: bool) -> None:
        self.outline = bool(on)
        if self.state.layer(LAYER_NAME) is not None:
            self.state.update_layer(LAYER_NAME, outline=self.outline)

    def limit(self, change: ops.Change | None, erasing: bool = False) -> ops.Change | None:
        """The paint-over limit applied to an edit just made (voxels it may not change put back)."""
        if change is None or self.paint_over == "all" or self.labelmap is None:
            return change
        return region_tools.limit_change(self.labelmap, change, self.paint_over, self.paint_over_label, erasing)

    # ---- redraw ------------------------------------------------------------------------------
    def sync_layer(self) -> None:
        """Copy the label table (colours, names, hidden) into the viewer layer and redraw it."""
        lm = self.labelmap
        layer = self.state.layer(LAYER_NAME)
        if lm is None or not isinstance(layer, LabelLayer):
            return
        layer.colors = {v: lab.color for v, lab in lm.labels.items()}
        layer.names = {v: lab.name for v, lab in lm.labels.items()}
        layer.hidden_labels = {v for v, lab in lm.labels.items() if not lab.visible}
        if layer.volume is not lm.volume:
            layer.volume = lm.volume
        self.state.layer_changed.emit(LAYER_NAME, None)

    def redraw(self, change: ops.Change | None) -> None:
        if change is not None:
            self.state.layer_changed.emit(LAYER_NAME, change.slices)

    def _on_history(self, kind: str, change: ops.Change) -> None:
        if kind in ("undo", "redo"):
            self.redraw(change)
        self.history_changed.emit()
        self.edited.emit()

    def _on_table(self, kind: str, label: Label | None) -> None:  # noqa: ARG002
        self.sync_layer()
        self.labels_changed.emit()

    # ---- brush outline under the mouse ------------------------------------------------------
    def show_brush_cursor(self, view_name: str, ijk) -> None:
        """Draw the brush's extent (a circle of radius_mm; scene units are mm) where the mouse is,
        in ``view_name``, while a brush tool is active; hide it elsewhere."""
        from PySide6.QtWidgets import QGraphicsEllipseItem

        brush = self.state.tool in ("annotate.brush", "annotate.erase", "annotate.threshold")
        for name, view in self.views.items():
            item = self._cursor_items.get(name)
            show = brush and self.labelmap is not None and name == view_name and ijk is not None
            if not show:
                if item is not None:
                    item.setVisible(False)
                continue
            if getattr(view, "geom", None) is None:
                continue
            if item is None:
                import pyqtgraph as pg

                item = QGraphicsEllipseItem()
                item.setPen(pg.mkPen((255, 255, 255, 200), width=1, cosmetic=True))
                item.setZValue(1001)
                view.vb.addItem(item, ignoreBounds=True)
                self._cursor_items[name] = item
            x, y = view.geom.voxel_to_scene(np.round(np.asarray(ijk, float)))
            r = float(self.radius_mm)
            item.setRect(x - r, y - r, 2 * r, 2 * r)
            item.setVisible(True)

    # ---- intensity for threshold paint -----------------------------------------------------
    def grey(self) -> np.ndarray | None:
        vol = self.state.volume
        if vol is None:
            return None
        if not vol.is_rgb:
            return vol.array
        if self._grey is None:
            self._grey = vol.array[..., :3].mean(axis=-1).astype(np.float32)
        return self._grey

    # ---- edits ----------------------------------------------------------------------------------
    def can_edit(self) -> bool:
        if self.labelmap is None or self.history is None:
            self.message.emit("no label map: press 'New label map' or 'Edit' on a segmentation result")
            return False
        return True

    def apply(self, change: ops.Change | None, name: str | None = None) -> ops.Change | None:
        """Record a one-shot operation on the history and redraw its region."""
        if change is None or self.history is None:
            return None
        self.history.push(change, name)
        self.redraw(change)
        return change

    def undo(self) -> ops.Change | None:
        return self.history.undo() if self.history is not None else None

    def redo(self) -> ops.Change | None:
        return self.history.redo() if self.history is not None else None

    def _view_plane(self, view: str | None) -> int:
        return ops.plane_axis_of(view or self.state.active_view)

    def _cursor_kji(self) -> tuple[int, int, int]:
        i, j, k = self.state.cursor
        return (k, j, i)

    def remove_islands(self, min_voxels: int) -> ops.Change | None:
        if not self.can_edit():
            return None
        assert self.labelmap is not None
        return self.apply(ops.remove_small_islands(self.labelmap, self.active_value, int(min_voxels)))

    def keep_largest(self) -> ops.Change | None:
        if not self.can_edit():
            return None
        assert self.labelmap is not None
        return self.apply(ops.keep_largest_component(self.labelmap, self.active_value))

    def interpolate(self, view: str | None = None) -> ops.Change | None:
        """Fill the slices between the edited slices of the active label (in the view's plane)."""
        if not self.can_edit():
            return None
        assert self.labelmap is not None
        try:
            ch = ops.interpolate_slices(self.labelmap, self.active_value, plane_axis=self._view_plane(view))
        except ValueError as exc:
            self.message.emit(str(exc))
            return None
        if ch is None:
            self.message.emit("interpolation needs two slices with the label and a gap between them")
        return self.apply(ch)

    def copy_previous_slice(self, view: str | None = None, step: int = -1,
                            all_labels: bool = False) -> ops.Change | None:
        """Copy the active label (or all) from the neighbouring slice into the current one."""
        if not self.can_edit():
            return None
        assert self.labelmap is not None
        a = self._view_plane(view)
        dst = self._cursor_kji()[a]
        return self.apply(ops.copy_slice(self.labelmap, src=dst + step, dst=dst, plane_axis=a,
                                         value=None if all_labels else self.active_value))

    def grow_from_seeds(self, view: str | None = None, three_d: bool = False) -> ops.Change | None:
        """Grow the painted strokes of all labels into the background until they meet at edges
        (in the current slice of the view's plane, or in 3D)."""
        if not self.can_edit():
            return None
        assert self.labelmap is not None
        a = self._view_plane(view)
        try:
            ch = region_tools.grow_from_seeds(self.labelmap, self.grey(), None if three_d else a,
                                              None if three_d else self._cursor_kji()[a])
        except ValueError as exc:
            self.message.emit(str(exc))
            return None
        return self.apply(ch)

    def smooth(self, method: str, size_mm: float) -> ops.Change | None:
        if not self.can_edit():
            return None
        assert self.labelmap is not None
        return self.apply(region_tools.smooth_label(self.labelmap, self.active_value, method, float(size_mm)))

    def margin(self, mm: float) -> ops.Change | None:
        """Dilate (mm > 0, over background only) or erode (mm < 0) the active label."""
        if not self.can_edit():
            return None
        assert self.labelmap is not None
        return self.apply(region_tools.margin_label(self.labelmap, self.active_value, float(mm)))

    def fill_holes(self, view: str | None = None, max_hole_mm: float | None = None) -> ops.Change | None:
        if not self.can_edit():
            return None
        assert self.labelmap is not None
        return self.apply(region_tools.fill_holes(self.labelmap, self.active_value, max_hole_mm,
                                                  plane_axis=self._view_plane(view)))

    def summary(self) -> dict[str, Any] | None:
        if self.labelmap is None or self.original is None:
            return None
        return edit_summary(self.labelmap, self.original)

    def label_value_at_cursor(self) -> int:
        if self.labelmap is None:
            return 0
        return int(self.labelmap.array[self._cursor_kji()])
