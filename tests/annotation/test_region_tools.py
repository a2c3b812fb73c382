"""Classical region tools: fill refusal, grow from seeds, level tracing, smoothing, margins and
holes by mm, paint-over limits, per-label statistics (synthetic images with known answers)."""

from __future__ import annotations

import numpy as np
import pytest

from medview.annotation import EditHistory, LabelMap, paint
from medview.annotation import region_tools as rt
from medview.io.volume import Volume


def _lm(shape=(3, 80, 80), spacing=(1.0, 1.0, 1.0)) -> LabelMap:
    return LabelMap.empty(Volume(np.zeros(shape, np.int16), spacing=spacing))


def _disc_image(shape=(3, 80, 80), r=15, c=(40, 40)) -> np.ndarray:
    yy, xx = np.mgrid[: shape[1], : shape[2]]
    d = ((yy - c[0]) ** 2 + (xx - c[1]) ** 2) <= r * r
    return np.repeat((d * 100 + 20).astype(np.float32)[None], shape[0], axis=0)


def test_fill_on_open_background_is_refused_but_an_enclosed_hole_is_not():
    lm = _lm()
    assert rt.background_fill_refusal(lm, (1, 5, 5), 0) is not None  # empty slice: would flood it
    lm.array[1, 20:60, 20:60] = 1
    lm.array[1, 30:50, 30:50] = 0  # a hole inside label 1
    assert rt.background_fill_refusal(lm, (1, 40, 40), 0) is None
    assert "not enclosed" in rt.background_fill_refusal(lm, (1, 5, 5), 0)
    assert rt.background_fill_refusal(lm, (1, 25, 25), 0) is None  # on a label: an ordinary fill


def test_grow_from_seeds_stops_at_the_edge_between_labels():
    img = _disc_image()
    lm = _lm()
    lm.add_label("background")
    lm.array[1, 38:42, 38:42] = 1  # a stroke inside the disc
    lm.array[1, 5:8, 5:75] = 2  # a stroke outside
    lm.array[1, 72:75, 5:75] = 2
    ch = rt.grow_from_seeds(lm, img, plane_axis=0, slice_index=1, margin_mm=20)
    assert ch is not None and ch.name == "Grow from seeds"
    truth = img[1] > 50
    got = lm.array[1] == 1
    dice = 2 * (got & truth).sum() / (got.sum() + truth.sum())
    assert dice > 0.95
    assert lm.array[0].max() == 0 and lm.array[2].max() == 0  # only its slice
    with pytest.raises(ValueError, match="two or more labels"):
        lm2 = _lm()
        lm2.array[1, 40, 40] = 1
        rt.grow_from_seeds(lm2, img, plane_axis=0, slice_index=1)


def test_level_tracing_fills_the_iso_line_region_under_the_seed():
    img = _disc_image()
    lm = _lm()
    ch = rt.level_trace(lm, img, (1, 40, 40), value=1, plane_axis=0)
    assert ch is not None
    assert np.array_equal(lm.array[1] == 1, img[1] > 50)
    assert lm.array[0].max() == 0 and lm.array[2].max() == 0
    # a dark spot inside the disc: the region at most as dark as it is the enclosed one
    img[1, 36:40, 36:40] = 0
    m = rt.level_trace_mask(img[1], (37, 37))
    assert m.sum() == 16


def test_margin_in_mm_follows_anisotropic_spacing():
    lm = _lm(shape=(9, 60, 60), spacing=(0.5, 0.5, 2.0))  # x, y 0.5 mm; z 2 mm
    lm.array[4, 30, 30] = 1
    rt.margin_label(lm, 1, 2.0)
    m = lm.array == 1
    assert m[4, 30, 34] and not m[4, 30, 35]  # 4 voxels of 0.5 mm in plane
    assert m[5, 30, 30] and not m[6, 30, 30]  # 1 voxel of 2 mm through plane
    n = int(m.sum())
    rt.margin_label(lm, 1, -1.0)
    assert 0 < int((lm.array == 1).sum()) < n


def test_margin_grows_only_over_background():
    lm = _lm()
    lm.add_label("other")
    lm.array[1, 30:50, 30:50] = 1
    lm.array[1, 30:50, 52:60] = 2
    rt.margin_label(lm, 1, 4.0)
    assert (lm.array[1, 30:50, 52:60] == 2).all()
    assert lm.array[1, 40, 51] == 1


def test_fill_holes_by_size():
    lm = _lm(shape=(1, 80, 80))
    lm.array[0, 10:70, 10:70] = 1
    lm.array[0, 20:22, 20:22] = 0  # small hole (2x2 px)
    lm.array[0, 40:60, 40:60] = 0  # big hole (20x20 px)
    rt.fill_holes(lm, 1, max_hole_mm=5.0, plane_axis=0)
    assert lm.array[0, 20, 20] == 1 and lm.array[0, 50, 50] == 0
    rt.fill_holes(lm, 1, plane_axis=0)
    assert lm.array[0, 50, 50] == 1


@pytest.mark.parametrize("method", ["median", "opening", "gaussian"])
def test_smoothing_removes_a_thin_spur_and_keeps_the_body(method):
    lm = _lm(shape=(5, 60, 60))
    lm.array[:, 20:40, 20:40] = 1
    lm.array[2, 29:30, 40:55] = 1  # a 1-voxel spur
    ch = rt.smooth_label(lm, 1, method, 2.0)
    assert ch is not None and method in ch.name
    assert lm.array[2, 29, 50] == 0
    assert lm.array[2, 30, 30] == 1


def test_closing_fills_a_notch():
    lm = _lm(shape=(5, 60, 60))
    lm.array[:, 20:40, 20:40] = 1
    lm.array[2, 20:30, 29:31] = 0  # a 2-voxel notch
    rt.smooth_label(lm, 1, "closing", 2.0)
    assert (lm.array[2, 21:30, 29:31] == 1).all()  # the mouth row stays open (a closing cannot cap it)
    with pytest.raises(ValueError):
        rt.smooth_label(lm, 1, "wobble", 2.0)


def test_paint_over_background_only_keeps_other_labels():
    lm = _lm()
    lm.add_label("other")
    lm.array[1, 30:50, 30:50] = 2
    ch = paint(lm, (1, 40, 25), radius_mm=8, value=1, plane_axis=0)
    ch = rt.limit_change(lm, ch, "background")
    assert (lm.array[1, 30:50, 30:50] == 2).all()
    assert lm.array[1, 40, 25] == 1
    # and onto one chosen label only
    ch = paint(lm, (1, 40, 40), radius_mm=30, value=1, plane_axis=0)
    rt.limit_change(lm, ch, "label", label=2)
    assert (lm.array[1, 30:50, 30:50] == 1).all() and lm.array[1, 5, 5] == 0
    h = EditHistory(lm)
    assert h.push(rt.limit_change(lm, paint(lm, (1, 5, 5), radius_mm=2, value=1, plane_axis=0), "label", 2)) is None


def test_label_statistics_match_numpy():
    lm = _lm(spacing=(0.5, 0.5, 2.0))
    img = _disc_image()
    lm.add_label("second")
    lm.array[1, 30:50, 30:50] = 1
    lm.array[0, 0:10, 0:5] = 2
    rows = {r.value: r for r in rt.label_statistics(lm, img)}
    assert rows[1].voxels == 400 and rows[1].volume_ml == pytest.approx(400 * 0.5 / 1000)
    sel = img[lm.array == 1]
    assert rows[1].mean == pytest.approx(sel.mean()) and rows[1].sd == pytest.approx(sel.std(ddof=1))
    assert rows[2].voxels == 50 and rows[2].name == "second"


def test_a_new_label_gets_a_colour_far_from_the_ones_in_use():
    from medview.annotation.labelmap import Label, _colour_distance

    lm = _lm()
    lm.labels[1] = Label(1, "polyp", (0, 255, 120))  # a model's green, close to the palette's 2nd colour
    for _ in range(6):
        lab = lm.add_label()
        others = [o.color for v, o in lm.labels.items() if v != lab.value]
        assert min(_colour_distance(lab.color, c) for c in others) >= 100, (lab.color, others)
