"""A restored session keeps its undo history (undo.log beside the journal)."""

from __future__ import annotations

import numpy as np

from medview.annotation import EditHistory, LabelMap, paint
from medview.annotation.undo_log import UndoLog, restore_history
from medview.io.volume import Volume


def _lm():
    return LabelMap.empty(Volume(np.zeros((3, 40, 40), np.int16)))


def test_history_replayed_from_the_log_undoes_and_redoes(tmp_path):
    lm = _lm()
    h = EditHistory(lm)
    h.listeners.append(UndoLog(tmp_path))
    h.push(paint(lm, (1, 10, 10), radius_mm=3, value=1), "A")
    h.push(paint(lm, (1, 30, 30), radius_mm=3, value=1), "B")
    h.push(paint(lm, (1, 20, 20), radius_mm=3, value=1), "C")
    h.undo()  # C undone: redoable
    after = lm.array.copy()

    restored = LabelMap(lm.volume.like(after.copy()), list(lm.labels.values()))
    h2 = EditHistory(restored)
    assert restore_history(h2, tmp_path) == 2
    assert h2.undo_names() == ["A", "B"] and h2.redo_names() == ["C"]
    h2.redo()
    assert restored.array[1, 20, 20] == 1
    h2.undo()
    h2.undo()
    assert restored.array[1, 30, 30] == 0 and restored.array[1, 10, 10] == 1


def test_a_log_that_does_not_match_the_labels_gives_no_history(tmp_path):
    lm = _lm()
    h = EditHistory(lm)
    h.listeners.append(UndoLog(tmp_path))
    h.push(paint(lm, (1, 10, 10), radius_mm=3, value=1), "A")
    other = LabelMap(lm.volume.like(np.zeros_like(lm.array)), list(lm.labels.values()))
    h2 = EditHistory(other)
    assert restore_history(h2, tmp_path) == 0 and not h2.can_undo()
    assert restore_history(EditHistory(_lm()), tmp_path / "missing") == 0
