"""Every series under dicom/conformance against dicom2nifti's ground truth (values + affine)."""

from pathlib import Path

import numpy as np
import pytest

from medview.config import data_dir
from medview.io import load_volume
from medview.io.reference import compare_with_nifti

CONFORMANCE = data_dir() / "dicom" / "conformance"
CASES = sorted(CONFORMANCE.rglob("*_ground_truth.nii.gz")) if CONFORMANCE.is_dir() else []


def _folder(gt: Path) -> Path:
    return gt.with_name(gt.name[: -len("_ground_truth.nii.gz")])


@pytest.mark.skipif(not CASES, reason=f"conformance data not found under {CONFORMANCE}")
@pytest.mark.parametrize("gt", CASES, ids=[str(_folder(p).relative_to(CONFORMANCE)) for p in CASES])
def test_series_matches_dicom2nifti(gt):
    folder = _folder(gt)
    if not folder.is_dir():
        pytest.skip(f"{folder.relative_to(CONFORMANCE)}: the data set ships only the ground truth, no DICOM")
    volume = load_volume(folder)
    result = compare_with_nifti(volume, str(gt))
    assert result.matches, result.reason
    assert result.max_affine_error_mm < 0.05


@pytest.mark.skipif(not CASES, reason=f"conformance data not found under {CONFORMANCE}")
def test_comparison_detects_a_flip_and_a_shift():
    """Negative control: the comparison must fail when the geometry is one voxel off or flipped."""
    gt = CONFORMANCE / "siemens" / "anatomical" / "001_ground_truth.nii.gz"
    volume = load_volume(_folder(gt))
    flipped = volume.like(np.ascontiguousarray(volume.array[:, ::-1]))
    assert not compare_with_nifti(flipped, str(gt)).matches
    shifted = volume.like(volume.array)
    shifted.origin = tuple(np.asarray(volume.origin) + volume.direction[:, 0] * volume.spacing[0])
    assert not compare_with_nifti(shifted, str(gt)).matches
