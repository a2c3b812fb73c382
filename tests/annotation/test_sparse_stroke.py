"""A long diagonal 3D stroke is stored as the blocks it touched, not its bounding box, and still
undoes, redoes, journals, autosaves and restores (undo.log) to exactly the right voxels."""

from __future__ import annotations

import numpy as np

from medview.annotation import EditHistory, LabelMap, paint, patch  # noqa: F401
from medview.annotation.undo_log import UndoLog, restore_history
from medview.annotation.workspace import Workspace, load_workspace
from medview.io.volume import Volume


def _labels(shape=(60, 160, 160)) -> LabelMap:
    lm = LabelMap.empty(Volume(np.zeros(shape, np.int16), spacing=(1.0, 1.0, 1.0)))
    rng = np.random.default_rng(5)
    lm.array[rng.random(shape) < 0.02] = 2  # labels already there, some under the stroke
    return lm


def _diagonal_stroke(h: EditHistory, lm: LabelMap, value: int = 1, back: bool = False) -> None:
    a, b = np.array([4.0, 8.0, 8.0]), np.array([55.0, 150.0, 140.0])
    if back:
        a, b = b - (0, 20, 0), a + (0, 0, 30)
    h.begin("Brush")
    pts = np.linspace(a, b, 80)
    for p, q in zip(pts[:-1], pts[1:], strict=False):
        h.add(paint(lm, tuple(p), tuple(q), radius_mm=3, value=value, sphere=True))
    # a dab back over the start: its old values are already stroke values, not pre-stroke ones
    h.add(paint(lm, tuple(pts[0]), radius_mm=4, value=value, sphere=True))
    h.end()


def test_diagonal_stroke_keeps_only_its_blocks_and_undoes_exactly():
    lm = _labels()
    h = EditHistory(lm)
    before = lm.array.copy()
    _diagonal_stroke(h, lm)
    after = lm.array.copy()
    e = h._undo[-1]
    assert e.pieces is not None
    box = int(np.prod(e.shape))
    assert e.voxels < 0.2 * box  # the tube, not the box
    changed = np.argwhere(before != after)
    assert changed.size
    inside = np.zeros(lm.shape, bool)
    for lo, shape in e.pieces:  # every changed voxel is in a piece
        inside[tuple(slice(a, a + n) for a, n in zip(lo, shape, strict=False))] = True
    assert inside[tuple(changed.T)].all()
    h.undo()
    assert np.array_equal(lm.array, before)
    h.redo()
    assert np.array_equal(lm.array, after)


def test_journal_snapshot_and_undo_log_restore_a_sparse_stroke(tmp_path):
    lm = _labels()
    ws = Workspace.create(tmp_path / "w", lm, autosave_delay=0.05, max_interval=0.2)
    h = ws.history
    h.listeners.append(UndoLog(ws.root))
    _diagonal_stroke(h, lm, 1)
    assert ws.flush(30)  # a snapshot with the first stroke
    _diagonal_stroke(h, lm, 3, back=True)  # then journal only
    h.undo()
    h.redo()
    assert h._undo[-1].pieces is not None
    lm2, _ = load_workspace(ws.root)
    assert np.array_equal(lm2.array, lm.array)
    h2 = EditHistory(lm2)
    assert restore_history(h2, ws.root) == 2
    h2.undo()
    h2.undo()
    h.undo()
    h.undo()
    assert np.array_equal(lm2.array, lm.array)
    ws.close()


def test_patch_read_write_round_trip():
    arr = np.zeros((10, 10, 10), np.uint8)
    pieces = (((0, 0, 0), (2, 2, 2)), ((5, 6, 7), (3, 2, 1)))
    vals = np.arange(8 + 6, dtype=np.uint8)
    patch.write(arr, (0, 0, 0), vals, pieces)
    assert np.array_equal(patch.read(arr, (0, 0, 0), (8, 8, 8), pieces), vals)
    assert arr[5:8, 6:8, 7].ravel().tolist() == list(range(8, 14))
    assert patch.z_spans((0, 0, 0), (8, 8, 8), pieces) == [(0, 2), (5, 3)]
