"""AxisMap: the exact permute/flip that brings a (z, y, x) array into a model's orientation, the
same as SimpleITK's DICOMOrient (which ``geometry.reorient`` uses), and back."""

from __future__ import annotations

import itertools

import numpy as np
import pytest

from medview.inference.geometry import axis_map, orientation_code, reorient
from medview.io.volume import Volume


def _signed_permutations():
    for perm in itertools.permutations(range(3)):
        for signs in itertools.product((1.0, -1.0), repeat=3):
            d = np.zeros((3, 3))
            for i, (w, s) in enumerate(zip(perm, signs, strict=True)):
                d[w, i] = s
            yield d


@pytest.mark.parametrize("code", ["RAS", "LPS", "LAS", "PIR"])
def test_axis_map_equals_dicom_orient_for_every_axis_aligned_direction(code):
    rng = np.random.default_rng(1)
    arr = rng.normal(size=(4, 5, 6)).astype(np.float32)
    for d in _signed_permutations():
        m = axis_map(d, code)
        ref = reorient(Volume(arr, (1.0, 2.0, 3.0), (0.0, 0.0, 0.0), d), code)
        out = m.forward(arr)
        assert np.array_equal(out, ref.array)
        assert orientation_code(ref.direction) == code
        assert np.array_equal(m.backward(out), arr)
        # a voxel keeps its value where AxisMap.point sends it; spacing follows the axes
        p = (3, 1, 4)
        q = tuple(int(v) for v in m.point(p, arr.shape))
        assert out[q] == arr[p]
        assert m.spacing((3.0, 2.0, 1.0)) == tuple(ref.spacing[::-1])


def test_orientation_code_of_identity_and_of_a_nifti_like_direction():
    assert orientation_code(np.eye(3)) == "LPS"
    assert orientation_code(np.diag([-1.0, -1.0, 1.0])) == "RAS"
    assert axis_map(np.eye(3), "LPS").identity
    # slightly oblique axes go to the nearest letter
    t = np.deg2rad(10)
    oblique = np.array([[np.cos(t), -np.sin(t), 0], [np.sin(t), np.cos(t), 0], [0, 0, 1]])
    assert orientation_code(oblique) == "LPS"
