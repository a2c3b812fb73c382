"""Bad input gives one clear LoadError naming the file and the reason; nothing crashes."""

import os

import nibabel as nib
import numpy as np
import pydicom
import pytest

from medview.io import LoadError, load_volume, scan

PYDICOM_FILES = os.path.join(os.path.dirname(pydicom.__file__), "data", "test_files")


@pytest.mark.parametrize("name, reason", [
    ("MR_truncated.dcm", "truncated"),
    ("rtplan_truncated.dcm", "without an image"),
    ("rtstruct.dcm", "without an image"),
    ("no_meta.dcm", "not a DICOM file"),
    ("image_dfl.dcm", "without pixel data"),
])
def test_pydicom_broken_files(name, reason):
    path = os.path.join(PYDICOM_FILES, name)
    with pytest.raises(LoadError) as err:
        load_volume(path)
    assert name in str(err.value)
    assert reason in str(err.value)


def test_bad_vr_file_still_loads():
    vol = load_volume(os.path.join(PYDICOM_FILES, "badVR.dcm"))
    assert vol.shape[1:] == (10, 10)


def test_scan_of_pydicom_test_files_lists_problems_and_never_raises():
    index = scan(PYDICOM_FILES)
    assert len(index.series) > 20
    reasons = dict(index.problems)
    assert any("MR_small.dcm" in s.files[0] for s in index.series if s.kind == "dicom")
    assert reasons[os.path.join(PYDICOM_FILES, "rtplan.dcm")].startswith("DICOM without an image")
    assert all(reason for _, reason in index.problems)


def test_zero_byte_dcm(tmp_path):
    p = tmp_path / "empty.dcm"
    p.write_bytes(b"")
    with pytest.raises(LoadError, match="empty.dcm: empty file"):
        load_volume(p)
    assert scan(tmp_path).problems == [(str(p), "empty file (0 bytes)")]


def test_text_file_named_dcm(tmp_path):
    p = tmp_path / "notes.dcm"
    p.write_text("this is not an image\n" * 20)
    with pytest.raises(LoadError, match="notes.dcm: not a DICOM file"):
        load_volume(p)


def test_empty_folder(tmp_path):
    with pytest.raises(LoadError, match="no files found"):
        load_volume(tmp_path)


def test_missing_path(tmp_path):
    with pytest.raises(LoadError, match="does not exist"):
        load_volume(tmp_path / "nope")


def _nifti(path, data, zooms=(1.0, 1.0, 1.0)):
    img = nib.Nifti1Image(data, np.diag(list(zooms[:3]) + [1.0]))
    img.header.set_zooms(zooms)
    nib.save(img, str(path))
    return path


def test_zero_spacing_nifti(tmp_path):
    p = _nifti(tmp_path / "zero.nii", np.zeros((4, 4, 4), np.int16))
    raw = bytearray(p.read_bytes())
    raw[76 + 4 * 2: 76 + 4 * 3] = np.float32(0.0).tobytes()  # pixdim[2] = 0: a broken header
    p.write_bytes(bytes(raw))
    with pytest.raises(LoadError, match=r"zero.nii: invalid voxel spacing"):
        load_volume(p)


def test_nan_nifti_loads_with_warning(tmp_path):
    data = np.arange(64, dtype=np.float32).reshape(4, 4, 4)
    data[1, 2, 3] = np.nan
    vol = load_volume(_nifti(tmp_path / "nan.nii.gz", data))
    assert np.isfinite(vol.array).all()
    assert any("1 NaN/infinite voxels" in w for w in vol.warnings)


def test_all_nan_nifti_is_an_error(tmp_path):
    p = _nifti(tmp_path / "allnan.nii.gz", np.full((3, 3, 3), np.nan, np.float32))
    with pytest.raises(LoadError, match="allnan.nii.gz: every voxel is NaN"):
        load_volume(p)


def test_4d_nifti_shows_first_volume(tmp_path):
    data = np.zeros((5, 6, 7, 3), np.int16)
    data[..., 1] = 1
    vol = load_volume(_nifti(tmp_path / "four.nii.gz", data, (1.0, 1.0, 1.0, 2.0)))
    assert vol.shape == (7, 6, 5)
    assert vol.array.max() == 0
    assert any("4D image with 3 volumes" in w for w in vol.warnings)


def test_corrupt_png(tmp_path):
    p = tmp_path / "broken.png"
    p.write_bytes(b"\x89PNG\r\n\x1a\n" + b"garbage" * 10)
    with pytest.raises(LoadError, match="broken.png"):
        load_volume(p)


def test_corrupt_nifti(tmp_path):
    p = tmp_path / "broken.nii"
    p.write_bytes(b"\x00" * 100)
    with pytest.raises(LoadError, match="broken.nii: cannot read NIFTI"):
        load_volume(p)
