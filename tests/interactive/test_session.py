"""AssistSession: one undo step per interaction, provenance, paint-over, 3D propagation that
stops at the object's end and at prompted slices, and stop()."""

from __future__ import annotations

import numpy as np

from medview.annotation import EditHistory, LabelMap
from medview.interactive.session import AssistSession, set_slice_mask
from medview.io.volume import Volume
from tests.interactive.fakes import BrightRegionSegmenter, ball_volume


def _setup(propagate=True, **kw):
    img, ball = ball_volume()
    lm = LabelMap.empty(Volume(np.zeros(img.shape, np.int16)))
    h = EditHistory(lm)
    seg = BrightRegionSegmenter()
    kw.setdefault("min_start_ratio", 0.0)  # stop only at the caps (the ratio rule has its own test)
    return AssistSession(seg, lm, img, h, value=1, propagate=propagate, **kw), lm, h, ball


def test_a_click_segments_its_slice_and_propagates_to_the_object_end_as_one_undo_step():
    s, lm, h, ball = _setup()
    done = s.run(s.click(0, 10, 24.0, 24.0, True))
    # the ball spans slices 3..17; its one-voxel caps are below the 4-pixel stop
    assert done[0] == 10 and set(done) == set(range(4, 17))
    assert np.array_equal(lm.array[4:17] == 1, ball[4:17]) and not lm.array[3].any()
    assert h.undo_names() == ["AI assist (fake-interactive 9.9.9)"]
    assert lm.provenance.ai_assisted == {"fake-interactive 9.9.9": 1}
    h.undo()
    assert lm.array.max() == 0


def test_negative_click_removes_and_a_box_replaces():
    s, lm, h, ball = _setup(propagate=False)
    s.run(s.click(0, 10, 24.0, 24.0, True))
    assert (lm.array[10] == 1).sum() == ball[10].sum() and lm.array[9].max() == 0
    s.run(s.click(0, 10, 24.0, 24.0, False))
    assert lm.array[10].max() == 0
    assert len(h.undo_names()) == 2
    s.reset()
    s.run(s.box(0, 10, 17, 17, 24, 31))
    got = lm.array[10] == 1
    assert got[20, 24] and not got[28, 24]  # only the part inside the box


def test_propagation_stops_at_a_prompted_slice_and_on_stop():
    s, lm, h, ball = _setup()
    s.run(s.click(0, 10, 24.0, 24.0, True))
    lm.array[:] = 0
    h.clear()
    s.slices.clear()
    s.slices[13] = type(s.slices.get(0) or s._slice(0, 13))()  # slice 13 was prompted by the user
    s.run(s.click(0, 10, 24.0, 24.0, True))
    assert lm.array[12].any() and not lm.array[13].any() and lm.array[4].any()
    lm.array[:] = 0
    s.slices.clear()
    it = s.click(0, 10, 24.0, 24.0, True)
    next(it)
    next(it)  # slice 10 and one neighbour
    s.stop()
    assert int(lm.array.any(axis=(1, 2)).sum()) == 2 and not h.in_stroke


def test_ai_results_do_not_paint_over_other_labels_by_default():
    s, lm, h, ball = _setup(propagate=False)
    lm.add_label("other")
    lm.array[10, 20:28, 20:24] = 2
    s.run(s.click(0, 10, 24.0, 26.0, True))
    assert (lm.array[10, 20:28, 20:24] == 2).all() and lm.array[10, 24, 26] == 1
    ch = set_slice_mask(lm, 0, 10, np.ones((48, 48), bool), 1, over="all")
    assert ch is not None and (lm.array[10] == 1).all()


def test_a_mask_tapering_below_a_fraction_of_the_prompted_one_ends_the_object():
    s, lm, h, ball = _setup(min_start_ratio=0.35)
    done = s.run(s.click(0, 10, 24.0, 24.0, True))
    # prompted slice: pi 7^2 = 154 px; slices 4 and 16 (about 40 px) are below 35% of it
    assert set(done) == set(range(5, 16))
