"""RTSTRUCT export/import on the TCIA series: contours per slice, names, colours, round trip."""

from __future__ import annotations

import numpy as np
import pydicom
import pytest
from scipy import ndimage

from medview.reporting.rtstruct import export_rtstruct, fill_contours, read_rtstruct, slice_contours

from .conftest import dciodvfy_or_skip, needs_series


def _outline(mask: np.ndarray) -> np.ndarray:
    """(k, j, i) of voxels on the in-plane outline of a structure."""
    inner = ndimage.binary_erosion(mask, structure=np.array([[[0, 0, 0], [0, 1, 0], [0, 0, 0]],
                                                             [[0, 1, 0], [1, 1, 1], [0, 1, 0]],
                                                             [[0, 0, 0], [0, 1, 0], [0, 0, 0]]], bool))
    return np.argwhere(mask & ~inner)


def _distance_to(points: np.ndarray, shape: tuple[int, int]) -> np.ndarray:
    """In-plane distance (voxels) of every pixel to the nearest of ``points`` (rows of (j, i))."""
    target = np.zeros(shape, bool)
    target[points[:, 0], points[:, 1]] = True
    return ndimage.distance_transform_edt(~target)


def max_outline_error_voxels(a: np.ndarray, b: np.ndarray) -> float:
    """Symmetric Hausdorff distance (in-plane voxels) between the outlines of two masks, slice by slice."""
    worst = 0.0
    for k in range(a.shape[0]):
        oa, ob = _outline(a[k:k + 1])[:, 1:], _outline(b[k:k + 1])[:, 1:]
        if len(oa) == 0 and len(ob) == 0:
            continue
        if len(oa) == 0 or len(ob) == 0:
            return float("inf")
        to_b, to_a = _distance_to(ob, a.shape[1:]), _distance_to(oa, a.shape[1:])
        worst = max(worst, float(to_b[oa[:, 0], oa[:, 1]].max()), float(to_a[ob[:, 0], ob[:, 1]].max()))
    return worst


def test_contours_fill_back_holes_and_islands():
    m = np.zeros((20, 20), bool)
    m[2:15, 2:15] = True
    m[5:9, 5:9] = False  # hole
    m[6:8, 6:8] = True  # island in the hole
    m[17, 17] = True  # one pixel
    cs = slice_contours(m)
    assert len(cs) == 4
    assert np.array_equal(fill_contours(m.shape, cs), m)


@needs_series
def test_round_trip_on_tcia_within_one_voxel(tmp_path, tcia_volume, tcia_labels):
    validate = dciodvfy_or_skip()
    out = export_rtstruct(tcia_labels, tmp_path / "rt.dcm")
    v = validate(out)
    print(f"dciodvfy RTSTRUCT: {len(v.errors)} error(s), {len(v.warnings)} warning(s)")
    assert v.errors == []
    ds = pydicom.dcmread(out)
    assert [r.ROIName for r in ds.StructureSetROISequence] == ["bright tissue", "dark region"]
    assert [list(rc.ROIDisplayColor) for rc in ds.ROIContourSequence] == [[255, 80, 0], [0, 120, 255]]
    n_contours = sum(len(rc.ContourSequence) for rc in ds.ROIContourSequence)
    src_uids = set(tcia_volume.meta["SOPInstanceUIDs"]) if isinstance(tcia_volume.meta.get("SOPInstanceUIDs"), list) \
        else {str(pydicom.dcmread(f, stop_before_pixels=True).SOPInstanceUID) for f in tcia_volume.meta["source_files"]}
    for rc in ds.ROIContourSequence:
        for c in rc.ContourSequence:
            assert c.ContourGeometricType == "CLOSED_PLANAR"
            assert c.ContourImageSequence[0].ReferencedSOPInstanceUID in src_uids

    back = read_rtstruct(out, tcia_volume)
    assert {lab.name: lab.color for lab in back.labels.values()} == {"bright tissue": (255, 80, 0),
                                                                      "dark region": (0, 120, 255)}
    spacing = min(tcia_volume.spacing[:2])
    for value in (1, 2):
        a, b = tcia_labels.array == value, back.array == value
        err = max_outline_error_voxels(a, b)
        differ = int(np.count_nonzero(a != b))
        print(f"label {value}: {n_contours} contours in file, {int(a.sum())} voxels, {differ} differ after the round"
              f" trip, max outline error {err:.2f} voxel(s) = {err * spacing:.3f} mm")
        assert err <= 1.0
        assert differ <= 0.001 * a.sum()


@needs_series
def test_rtstruct_of_another_frame_is_refused(tmp_path, tcia_volume, tcia_labels):
    from medview.io import LoadError

    out = export_rtstruct(tcia_labels, tmp_path / "rt.dcm")
    ds = pydicom.dcmread(out)
    ds.ReferencedFrameOfReferenceSequence[0].FrameOfReferenceUID = "1.2.3.4"
    ds.save_as(tmp_path / "other.dcm")
    with pytest.raises(LoadError, match="frame of reference"):
        read_rtstruct(tmp_path / "other.dcm", tcia_volume)
