import itertools

import numpy as np
import pytest

from medview.annotation import (
    CORONAL,
    SAGITTAL,
    EditHistory,
    LabelMap,
    copy_slice,
    fill_polygon,
    flood_fill,
    interpolate_slices,
    keep_largest_component,
    labelled_slices,
    paint,
    remove_small_islands,
)
from medview.io.volume import Volume


def _lm(shape=(10, 64, 80), spacing=(0.5, 1.0, 2.0)):
    img = Volume(np.zeros(shape, np.int16), spacing=spacing)
    lm = LabelMap.empty(img)
    lm.add_label("second")
    return lm, img


def test_brush_disc_uses_mm_spacing_and_stays_in_plane():
    lm, _ = _lm(spacing=(0.5, 1.0, 2.0))  # x 0.5 mm, y 1 mm, z 2 mm
    ch = paint(lm, (4, 32, 40), radius_mm=4.0, value=1)
    assert ch is not None and ch.n_changed == lm.counts()[1]
    assert labelled_slices(lm, 1, 0) == [4]
    sl = lm.array[4]
    cols = np.flatnonzero(sl.any(axis=0))
    rows = np.flatnonzero(sl.any(axis=1))
    assert cols[-1] - cols[0] == 16  # 8 mm wide at 0.5 mm/px
    assert rows[-1] - rows[0] == 8  # 8 mm tall at 1 mm/px
    # the change holds the old values (zeros) and the new ones
    assert ch.old.max() == 0 and ch.new.max() == 1
    assert ch.lo[0] == 4 and ch.hi[0] == 5


def test_brush_sphere_and_other_planes():
    lm, _ = _lm(spacing=(1.0, 1.0, 1.0), shape=(30, 30, 30))
    paint(lm, (15, 15, 15), radius_mm=5, value=1, sphere=True)
    n = lm.counts()[1]
    assert abs(n - 4 / 3 * np.pi * 125) / n < 0.1
    lm2, _ = _lm(spacing=(1.0, 1.0, 1.0), shape=(30, 30, 30))
    paint(lm2, (15, 10, 15), radius_mm=3, value=1, plane_axis=CORONAL)
    assert labelled_slices(lm2, 1, CORONAL) == [10]
    paint(lm2, (15, 10, 7), radius_mm=3, value=2, plane_axis="sagittal")
    assert labelled_slices(lm2, 2, SAGITTAL) == [7]


def test_stroke_segment_fills_gaps_and_eraser_respects_lock():
    lm, _ = _lm(spacing=(1.0, 1.0, 1.0))
    paint(lm, (2, 10, 5), (2, 10, 70), radius_mm=2, value=1)
    assert lm.array[2, 10, 5:71].all()
    paint(lm, (2, 30, 5), (2, 30, 70), radius_mm=2, value=2)
    lm.set_locked(2, True)
    paint(lm, (2, 20, 0), (2, 20, 79), radius_mm=15, value=0)
    assert lm.array[2, 10].sum() == 0  # label 1 erased
    assert lm.array[2, 30, 5:71].all()  # label 2 locked: untouched
    # painting with a locked label does nothing
    assert paint(lm, (3, 30, 30), radius_mm=3, value=2) is None


def test_threshold_paint_only_inside_range():
    img = Volume(np.tile(np.arange(64, dtype=np.float32), (5, 64, 1)))
    lm = LabelMap.empty(img)
    paint(lm, (2, 32, 32), radius_mm=20, value=1, intensity=img.array, intensity_range=(30, 35))
    cols = np.flatnonzero(lm.array[2].any(axis=0))
    assert cols.min() == 30 and cols.max() == 35


def test_flood_fill_label_region_and_intensity():
    lm, _ = _lm(spacing=(1.0, 1.0, 1.0))
    # a closed ring: filling inside must not leak
    fill_polygon(lm, [(3, 10, 10), (3, 10, 50), (3, 50, 50), (3, 50, 10)], value=1)
    fill_polygon(lm, [(3, 15, 15), (3, 15, 45), (3, 45, 45), (3, 45, 15)], value=0)
    inside = int((lm.array[3] == 0)[11:50, 11:50].sum())
    ch = flood_fill(lm, (3, 30, 30), value=2)
    assert ch.n_changed == inside
    assert lm.array[2].max() == 0 and lm.array[4].max() == 0
    img = np.zeros(lm.shape, np.float32)
    img[:, :, 60:] = 100
    lm2, _ = _lm(spacing=(1.0, 1.0, 1.0))
    flood_fill(lm2, (1, 5, 70), value=1, intensity=img, tolerance=10)
    assert lm2.counts()[1] == 64 * 20


def test_polygon_fill_in_each_plane():
    lm, _ = _lm(shape=(40, 40, 40), spacing=(1, 1, 1))
    ch = fill_polygon(lm, [(10, 5, 5), (10, 5, 15), (10, 15, 15), (10, 15, 5)], value=1)
    assert ch.n_changed == 121 and labelled_slices(lm, 1, 0) == [10]
    fill_polygon(lm, [(5, 20, 5), (5, 20, 15), (15, 20, 10)], value=2, plane_axis=CORONAL)
    assert labelled_slices(lm, 2, CORONAL) == [20]


def test_islands():
    lm, _ = _lm(shape=(20, 40, 40), spacing=(1, 1, 1))
    lm.array[2:10, 2:10, 2:10] = 1
    lm.array[15, 30, 30] = 1
    lm.array[15:17, 20:22, 30:32] = 1
    ch = remove_small_islands(lm, 1, min_voxels=5)
    assert ch.n_changed == 1 and lm.counts()[1] == 512 + 8
    keep_largest_component(lm, 1)
    assert lm.counts()[1] == 512
    assert keep_largest_component(lm, 1) is None


def test_interpolate_between_two_slices():
    lm, _ = _lm(shape=(11, 64, 64), spacing=(1, 1, 1))
    yy, xx = np.mgrid[:64, :64]
    lm.array[0][(yy - 32) ** 2 + (xx - 32) ** 2 <= 5**2] = 1
    lm.array[10][(yy - 32) ** 2 + (xx - 32) ** 2 <= 15**2] = 1
    ch = interpolate_slices(lm, 1, k0=0, k1=10)
    assert ch is not None
    areas = [int((lm.array[k] == 1).sum()) for k in range(11)]
    assert all(b > a for a, b in itertools.pairwise(areas))  # grows monotonically
    r_mid = np.sqrt(areas[5] / np.pi)
    assert abs(r_mid - 10) < 1.0
    # without explicit slices it finds the gaps itself; here none are left
    assert interpolate_slices(lm, 1) is None


def test_copy_from_previous_slice():
    lm, _ = _lm(spacing=(1, 1, 1))
    paint(lm, (3, 20, 20), radius_mm=5, value=1)
    paint(lm, (4, 40, 40), radius_mm=3, value=2)
    copy_slice(lm, src=3, dst=4, value=1)
    assert np.array_equal(lm.array[4] == 1, lm.array[3] == 1)
    assert (lm.array[4] == 2).any()  # kept
    copy_slice(lm, src=3, dst=4, replace=True)
    assert np.array_equal(lm.array[4], lm.array[3])


def test_undo_redo_named_and_bounded():
    lm, _ = _lm(shape=(4, 256, 256), spacing=(1, 1, 1))
    h = EditHistory(lm)
    h.begin("Brush")
    pts = [(1, 20 + 5 * t, 20 + 7 * t) for t in range(20)]
    for a, b in itertools.pairwise(pts):
        h.add(paint(lm, a, b, radius_mm=4, value=1))
    h.end()
    after_stroke = lm.array.copy()
    h.push(flood_fill(lm, (1, 200, 30), value=2))
    assert h.undo_names() == ["Brush", "Flood fill"]
    h.undo()
    assert np.array_equal(lm.array, after_stroke)
    h.undo()
    assert lm.array.max() == 0
    h.redo()
    assert np.array_equal(lm.array, after_stroke)
    assert h.redo_names() == ["Flood fill"]
    # a new edit clears redo
    h.push(paint(lm, (2, 10, 10), radius_mm=2, value=1))
    assert not h.can_redo()
    # stroke entry is far smaller than the slice (only the changed box, compressed)
    assert h.nbytes < 256 * 256 // 4
    # bounded: a tiny budget keeps only the newest entry
    small = EditHistory(lm, max_bytes=1)
    for k in range(4):
        small.push(paint(lm, (k, 100, 100), radius_mm=20, value=2))
    assert len(small.undo_names()) == 1
    p = lm.provenance
    assert p.strokes > 0 and p.undos == 2 and p.redos == 1 and p.voxels_painted > 0


def test_label_table_and_lut():
    lm, _ = _lm()
    lab = lm.add_label("tumour", (10, 20, 30))
    assert lab.value == 3
    lm.rename(3, "lesion")
    lm.recolor(3, (1, 2, 3))
    lm.set_visible(1, False)
    lut = lm.lut()
    assert tuple(lut[3, :3]) == (1, 2, 3) and lut[1, 3] == 0 and lut[0, 3] == 0
    with pytest.raises(ValueError):
        lm.add_label("dup", value=3)
    lm.add_label("big", value=300)
    assert lm.array.dtype == np.uint16


def test_interpolate_and_copy_in_coronal_and_sagittal_planes():
    lm, _ = _lm(shape=(20, 30, 40), spacing=(1.0, 2.0, 1.5))
    # coronal slices j=5 and j=15 hold a rectangle in (k, i); interpolation fills j=6..14
    lm.array[4:10, 5, 10:20] = 1
    lm.array[4:10, 15, 10:20] = 1
    interpolate_slices(lm, 1, plane_axis=CORONAL)
    assert labelled_slices(lm, 1, CORONAL) == list(range(5, 16))
    assert np.array_equal(lm.array[:, 10] == 1, lm.array[:, 5] == 1)
    assert labelled_slices(lm, 1, 0) == list(range(4, 10))  # nothing leaks to other axial slices
    # sagittal: copy slice i=12 to i=30
    copy_slice(lm, src=12, dst=30, plane_axis=SAGITTAL, value=1)
    assert np.array_equal(lm.array[:, :, 30] == 1, lm.array[:, :, 12] == 1)
