"""Every exported file puts each source slice where its own DICOM header puts it (<= 0.5 mm).

Synthetic tilted / gapped / variably spaced series are written as real DICOM files with pydicom.
Run with ``-s`` to print the maximum export-position error per series.
"""

import numpy as np
import pydicom
import pytest
from pydicom.dataset import FileDataset, FileMetaDataset
from pydicom.uid import ExplicitVRLittleEndian, generate_uid

from medview.annotation import LabelMap, paint
from medview.annotation.dicom_seg import export_dicom_seg
from medview.annotation.nifti import save_nifti
from medview.annotation.training_set import export_training_case
from medview.io import load_volume, save_volume
from medview.io.nifti_io import voxel_centres_lps

ROWS, COLS = 24, 20


def _write_series(folder, zs, tilt_deg=0.0, spacing=(0.8, 0.9)):
    folder.mkdir()
    series, study, frame = generate_uid(), generate_uid(), generate_uid()
    shear = np.tan(np.radians(tilt_deg))
    for n, z in enumerate(zs):
        meta = FileMetaDataset()
        meta.MediaStorageSOPClassUID = "1.2.840.10008.5.1.4.1.1.2"
        meta.MediaStorageSOPInstanceUID = generate_uid()
        meta.TransferSyntaxUID = ExplicitVRLittleEndian
        ds = FileDataset(str(folder / f"{n}.dcm"), {}, file_meta=meta, preamble=b"\0" * 128)
        ds.SOPClassUID, ds.SOPInstanceUID = meta.MediaStorageSOPClassUID, meta.MediaStorageSOPInstanceUID
        ds.Modality, ds.PatientID, ds.PatientName = "CT", "SYN-1", "Test^Geometry"
        ds.StudyInstanceUID, ds.SeriesInstanceUID, ds.FrameOfReferenceUID = study, series, frame
        ds.StudyDate, ds.StudyTime, ds.SeriesNumber, ds.InstanceNumber = "20260101", "120000", 1, n + 1
        ds.ImageOrientationPatient = [1, 0, 0, 0, 1, 0]
        ds.ImagePositionPatient = [-10.0, -12.0 + shear * z, float(z)]  # tilt: y shifts with z
        ds.PixelSpacing = list(spacing)
        ds.SliceThickness = 2.5
        ds.Rows, ds.Columns = ROWS, COLS
        ds.SamplesPerPixel, ds.PhotometricInterpretation = 1, "MONOCHROME2"
        ds.BitsAllocated, ds.BitsStored, ds.HighBit, ds.PixelRepresentation = 16, 16, 15, 1
        ds.RescaleSlope, ds.RescaleIntercept = 1, 0
        ds.PixelData = np.full((ROWS, COLS), n * 10, np.int16).tobytes()
        ds.save_as(str(folder / f"{n}.dcm"), enforce_file_format=True)
    return folder


def _source_lps(files, ijk_in_slice):
    """World LPS of pixel (i, j) of each source file, from its own header."""
    out = []
    for f in files:
        ds = pydicom.dcmread(str(f), stop_before_pixels=True)
        o = np.asarray(ds.ImageOrientationPatient, float)
        dy, dx = (float(v) for v in ds.PixelSpacing)
        i, j = ijk_in_slice
        out.append(np.asarray(ds.ImagePositionPatient, float) + o[:3] * dx * i + o[3:] * dy * j)
    return np.array(out)


def _nifti_error(path, vol):
    files = vol.meta["source_files"]
    planes = vol.meta.get("slice_planes") or list(range(len(files)))
    err = 0.0
    for i, j in ((0, 0), (COLS - 1, 0), (0, ROWS - 1), (COLS - 1, ROWS - 1)):
        want = _source_lps(files, (i, j))
        got = voxel_centres_lps(path, np.array([[i, j, k] for k in planes]))
        err = max(err, float(np.abs(got - want).max()))
    return err


def _seg_error(path, vol):
    seg = pydicom.dcmread(str(path))
    want = {tuple(np.round(p, 3)) for p in _source_lps(vol.meta["source_files"], (0, 0))}
    got = [np.asarray(f.PlanePositionSequence[0].ImagePositionPatient, float)
           for f in seg.PerFrameFunctionalGroupsSequence]
    return max(min(float(np.abs(g - np.array(w)).max()) for w in want) for g in got)


SERIES = {
    "tilted 12 deg": (np.arange(10) * 2.5, 12.0),
    "gapped (3 missing)": (np.r_[np.arange(5) * 2.5, 20.0 + np.arange(4) * 2.5] - 40.0, 0.0),
    "variable spacing 3/4 mm": (np.cumsum([0, 3, 3, 4, 3, 4, 4, 3]), 0.0),
    "tilted and gapped": (np.r_[np.arange(4) * 2.0, 14.0 + np.arange(4) * 2.0], 15.0),
}


@pytest.mark.parametrize("name", list(SERIES))
def test_exports_keep_source_positions(tmp_path, name, capsys):
    zs, tilt = SERIES[name]
    vol = load_volume(_write_series(tmp_path / "dcm", zs, tilt))
    assert vol.warnings, "geometry problems must be announced"
    text = " ".join(vol.warnings)
    if tilt:
        assert f"gantry tilt {tilt:.1f} deg" in text
    if "gapped" in name:
        assert "3 slice(s) missing between z=" in text and len(vol.meta["missing_planes"]) == 3
    if "variable" in name:
        assert "non-uniform slice spacing" in text and vol.meta["interpolated_planes"]
    # pixel values of every source slice are on its plane
    for n, k in enumerate(vol.meta.get("slice_planes") or range(len(zs))):
        assert np.all(vol.array[k] == n * 10)
    lm = LabelMap.empty(vol)
    paint(lm, (vol.shape[0] // 2, ROWS // 2, COLS // 2), radius_mm=3, value=1, sphere=True)
    errors = {}
    errors["label NIfTI"] = _nifti_error(save_nifti(lm, tmp_path / "labels.nii.gz"), vol)
    save_volume(vol.like(lm.array), tmp_path / "segmentation.nii.gz")  # what `medview infer` writes
    errors["inference NIfTI"] = _nifti_error(tmp_path / "segmentation.nii.gz", vol)
    export_training_case(vol, lm, tmp_path / "train", case_id="c1")
    errors["training image"] = _nifti_error(tmp_path / "train/images/c1.nii.gz", vol)
    errors["training label"] = _nifti_error(tmp_path / "train/labels/c1.nii.gz", vol)
    errors["SEG frames"] = _seg_error(export_dicom_seg(lm, tmp_path / "seg.dcm"), vol)
    with capsys.disabled():
        print(f"\n{name}: max export-position error " + ", ".join(f"{k} {v:.4f} mm" for k, v in errors.items()))
    assert max(errors.values()) <= 0.5, errors


def test_real_series_exports_keep_positions(shared_data, tmp_path):
    from medview.io import scan
    from medview.io.dicom_series import load_series

    roots = [shared_data / "dicom" / "conformance", shared_data / "dicom" / "mr-brain-tcia"]
    worst, checked = 0.0, 0
    for root in roots:
        for info in scan(str(root)).series:
            try:
                vol = load_series(info)
            except Exception:  # noqa: BLE001 - unreadable series are the bad-input tests' business
                continue
            if vol.is_rgb or len(set(vol.meta["source_files"])) != len(vol.meta["source_files"]):
                continue  # multi-frame: positions per frame, checked by the SEG round trip tests
            path = tmp_path / f"{checked}.nii.gz"
            save_volume(vol.like(np.zeros(vol.shape, np.uint8)), path)
            worst = max(worst, _nifti_error_generic(path, vol))
            checked += 1
    print(f"\n{checked} real single-frame series: max NIfTI export-position error {worst:.4f} mm")
    assert checked > 5 and worst <= 0.5


def _nifti_error_generic(path, vol):
    files = vol.meta["source_files"]
    planes = vol.meta.get("slice_planes") or list(range(len(files)))
    cols, rows = vol.size_xyz[0], vol.size_xyz[1]
    err = 0.0
    for i, j in ((0, 0), (cols - 1, rows - 1)):
        want = _source_lps(files, (i, j))
        got = voxel_centres_lps(path, np.array([[i, j, k] for k in planes]))
        err = max(err, float(np.abs(got - want).max()))
    return err
