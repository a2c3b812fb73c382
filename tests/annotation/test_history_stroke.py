"""A long stroke of overlapping 3D dabs: undo gives back exactly the labels before the stroke,
redo exactly those after it (the per-dab boxes merged at stroke end)."""

import numpy as np

from medview.annotation import EditHistory, LabelMap, paint
from medview.io.volume import Volume


def test_long_3d_stroke_of_overlapping_dabs_undoes_and_redoes_exactly():
    rng = np.random.default_rng(3)
    img = Volume(np.zeros((30, 64, 64), np.int16), spacing=(1.0, 1.0, 1.5))
    lm = LabelMap.empty(img)
    lm.array[:] = rng.integers(0, 3, lm.shape).astype(lm.array.dtype)  # labels already there
    h = EditHistory(lm)
    before = lm.array.copy()
    h.begin("Brush")
    p = np.array([3.0, 5.0, 5.0])
    for t in range(60):  # diagonal, with back-and-forth dabs inside earlier ones
        q = p + (0.4, 0.9, 0.9) if t % 5 else p - (0.5, 1.0, 0.0)
        h.add(paint(lm, tuple(p), tuple(q), radius_mm=3, value=1 + t % 4, sphere=True))
        p = q
    ch = h.end()
    after = lm.array.copy()
    assert ch is not None and not np.array_equal(before, after)
    assert h.undo_names() == ["Brush"]
    h.undo()
    assert np.array_equal(lm.array, before)
    h.redo()
    assert np.array_equal(lm.array, after)
