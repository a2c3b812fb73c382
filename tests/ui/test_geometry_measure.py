"""Pure display geometry and measurement math (no Qt)."""

from __future__ import annotations

import numpy as np
import pytest

from medview import measure
from medview.ui.geometry import direction_letters, take_slice, view_geometry


def test_lps_volume_gets_radiological_labels():
    shape = (10, 20, 30)  # k, j, i
    g = view_geometry("axial", shape, (0.5, 0.7, 3.0), np.eye(3))
    assert g.labels == {"left": "R", "right": "L", "top": "A", "bottom": "P"}
    assert (g.h_axis, g.v_axis, g.normal_axis) == (0, 1, 2)
    assert not g.h_flip and not g.v_flip
    assert g.width_mm == pytest.approx(15.0) and g.height_mm == pytest.approx(14.0)
    c = view_geometry("coronal", shape, (0.5, 0.7, 3.0), np.eye(3))
    assert c.labels == {"left": "R", "right": "L", "top": "S", "bottom": "I"}
    assert c.v_flip and c.normal_axis == 1 and c.height_mm == pytest.approx(30.0)
    s = view_geometry("sagittal", shape, (0.5, 0.7, 3.0), np.eye(3))
    assert s.labels == {"left": "A", "right": "P", "top": "S", "bottom": "I"}
    assert s.normal_axis == 0 and s.h_axis == 1


def test_ras_nifti_is_flipped_back_to_radiological():
    d = np.diag([-1.0, -1.0, 1.0])  # i -> R, j -> A (a typical NIfTI)
    g = view_geometry("axial", (5, 6, 7), (1, 1, 1), d)
    assert g.h_flip and g.v_flip
    assert g.labels["left"] == "R" and g.labels["top"] == "A"
    # i grows towards the patient's right, so column i=0 is the most patient-left one and is drawn
    # on the screen's right side
    x0, _ = g.voxel_to_scene((0, 0, 0))
    x6, _ = g.voxel_to_scene((6, 0, 0))
    assert x0 > x6


def test_oblique_direction_uses_nearest_axis_and_two_letter_labels():
    a = np.deg2rad(30)
    d = np.array([[np.cos(a), 0, np.sin(a)], [0, 1, 0], [-np.sin(a), 0, np.cos(a)]])
    g = view_geometry("axial", (4, 5, 6), (1, 1, 2), d)
    assert g.normal_axis == 2 and g.h_axis == 0
    assert g.labels["right"] == "LI"  # screen right points mostly left, partly inferior
    assert direction_letters([0, 0, -1]) == "I"


def test_scene_voxel_round_trip_and_slicing():
    d = np.diag([-1.0, 1.0, -1.0])
    arr = np.arange(4 * 5 * 6).reshape(4, 5, 6)
    for view in ("axial", "coronal", "sagittal"):
        g = view_geometry(view, arr.shape, (0.8, 1.2, 2.5), d)
        p = np.array([2.0, 3.0, 1.0])
        x, y = g.voxel_to_scene(p)
        back = g.scene_to_voxel(x, y, p[g.normal_axis])
        np.testing.assert_allclose(back, p)
    assert take_slice(arr, 2, 1).shape == (5, 6)
    assert take_slice(arr, 1, 1).shape == (4, 6)
    assert take_slice(arr, 0, 1).shape == (4, 5)


def test_item_transform_puts_each_pixel_where_voxel_to_scene_says():
    d = np.diag([1.0, 1.0, -1.0])
    shape = (4, 5, 6)
    for view in ("axial", "coronal", "sagittal"):
        g = view_geometry(view, shape, (0.8, 1.2, 2.5), d)
        m11, m12, m21, m22, dx, dy = g.item_transform()
        ijk = np.array([2.0, 3.0, 1.0])
        r, c = g.slice_rc(ijk)
        lx, ly = c + 0.5, r + 0.5  # pixel centre in the item's local coordinates
        sx, sy = m11 * lx + m21 * ly + dx, m12 * lx + m22 * ly + dy
        np.testing.assert_allclose((sx, sy), g.voxel_to_scene(ijk))


def test_distance_uses_spacing():
    assert measure.distance_mm((0, 0, 0), (10, 0, 0), (0.5, 2.0, 3.0)) == pytest.approx(5.0)
    assert measure.distance_mm((0, 0, 0), (3, 4, 0), (1.0, 1.0, 9.0)) == pytest.approx(5.0)


def test_roi_masks_and_stats():
    shape = (200, 200)
    m = measure.ellipse_mask(shape, 50, 40, 150, 160)  # half-axes 50 rows x 60 cols
    assert m.sum() == pytest.approx(np.pi * 50 * 60, rel=0.01)
    r = measure.rect_mask(shape, 10, 10, 20, 30)
    assert r.sum() == 10 * 20
    vals = np.arange(200 * 200, dtype=np.int16).reshape(shape) % 97
    st = measure.roi_stats(vals, r, pixel_area_mm2=0.25)
    sel = vals[10:20, 10:30].astype(float)
    assert st["n"] == 200 and st["area_mm2"] == pytest.approx(50.0)
    assert st["mean"] == pytest.approx(sel.mean()) and st["sd"] == pytest.approx(sel.std(ddof=1))
    assert (st["min"], st["max"]) == (sel.min(), sel.max())
    assert measure.roi_stats(vals, np.zeros(shape, bool), 1.0)["n"] == 0


def test_windows():
    a = np.linspace(0, 1000, 100_001)
    w, lvl = measure.auto_window(a, 1, 99)
    assert lvl == pytest.approx(500, abs=1) and w == pytest.approx(980, abs=2)
    assert measure.dicom_window({"WindowCenter": [40.0, 50.0], "WindowWidth": "400"}) == (400.0, 40.0)
    assert measure.dicom_window({"WindowCenter": None, "WindowWidth": 400}) is None
    assert measure.window_to_levels(400, 40) == (-160, 240)


def test_roi_text_says_pixels_on_a_photograph():
    from medview.ui.slice_measurements import format_roi_stats

    res = {"n": 4, "mean": 1.0, "sd": 0.0, "min": 1, "max": 1, "area_mm2": 4.0}
    assert format_roi_stats(res, {"Modality": "CT"}).endswith("area 4.0 mm\u00b2")
    assert format_roi_stats(res, {"pixel_size_known": False}).endswith("area 4.0 px\u00b2")
