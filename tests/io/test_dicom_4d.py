"""DICOM 4D series (several images per slice position told apart only by their acquisition, as
fMRI and diffusion series are; series with TemporalPositionIdentifier or echoes are split into
one series per time point / echo by the scan instead): the first volume loads, the others are
listed in meta["frames_4d"] and read by medview.viewing.frames on the same grid, each time point
with its own pixels at its own positions."""

from __future__ import annotations

import numpy as np
import pytest
from pydicom.dataset import FileDataset, FileMetaDataset
from pydicom.uid import ExplicitVRLittleEndian, generate_uid

from medview.io import scan
from medview.io.dicom_series import load_series
from medview.viewing.frames import count_dicom_frames, read_dicom_frames

ROWS, COLS, ZS, TIMES = 6, 5, (0.0, 3.0, 6.0, 9.0), 3


def _value(t: int, z_index: int) -> int:
    return 100 * (t + 1) + z_index


def _write_4d(folder, drop=None):
    """TIMES x len(ZS) MR images, shuffled file names, AcquisitionNumber 1..TIMES (one per volume)."""
    folder.mkdir()
    series, study, frame = generate_uid(), generate_uid(), generate_uid()
    rng = np.random.default_rng(0)
    names = rng.permutation(TIMES * len(ZS))
    n = 0
    for t in range(TIMES):
        for k, z in enumerate(ZS):
            if drop == (t, k):
                n += 1
                continue
            meta = FileMetaDataset()
            meta.MediaStorageSOPClassUID = "1.2.840.10008.5.1.4.1.1.4"
            meta.MediaStorageSOPInstanceUID = generate_uid()
            meta.TransferSyntaxUID = ExplicitVRLittleEndian
            path = folder / f"{names[n]:03d}.dcm"
            ds = FileDataset(str(path), {}, file_meta=meta, preamble=b"\0" * 128)
            ds.SOPClassUID, ds.SOPInstanceUID = meta.MediaStorageSOPClassUID, meta.MediaStorageSOPInstanceUID
            ds.Modality, ds.PatientID, ds.PatientName = "MR", "SYN-4D", "Test^Dynamic"
            ds.StudyInstanceUID, ds.SeriesInstanceUID, ds.FrameOfReferenceUID = study, series, frame
            ds.StudyDate, ds.SeriesNumber, ds.InstanceNumber = "20260101", 7, n + 1
            ds.AcquisitionNumber = t + 1
            ds.ImageOrientationPatient = [1, 0, 0, 0, 1, 0]
            ds.ImagePositionPatient = [-10.0, -12.0, z]
            ds.PixelSpacing, ds.SliceThickness = [0.8, 0.9], 3.0
            ds.Rows, ds.Columns = ROWS, COLS
            ds.SamplesPerPixel, ds.PhotometricInterpretation = 1, "MONOCHROME2"
            ds.BitsAllocated, ds.BitsStored, ds.HighBit, ds.PixelRepresentation = 16, 16, 15, 1
            ds.PixelData = np.full((ROWS, COLS), _value(t, k), np.int16).tobytes()
            ds.save_as(str(path), enforce_file_format=True)
            n += 1
    return folder


def _series(folder):
    index = scan(str(folder))
    assert len(index.series) == 1, [s.description for s in index.series]
    return index.series[0]


def test_every_time_point_is_browsable_on_the_first_volumes_grid(tmp_path):
    vol = load_series(_series(_write_4d(tmp_path / "dyn")))
    assert vol.array.shape == (len(ZS), ROWS, COLS)
    assert [int(vol.array[k, 0, 0]) for k in range(len(ZS))] == [_value(0, k) for k in range(len(ZS))]
    assert any("the Volume box browses the others" in w for w in vol.warnings)
    assert count_dicom_frames(vol.meta) == TIMES
    frames = read_dicom_frames(vol)
    assert frames.shape == (TIMES, len(ZS), ROWS, COLS)
    for t in range(TIMES):
        for k in range(len(ZS)):  # time point t, slice k: its own pixels, in slice order
            assert np.all(frames[t, k] == _value(t, k)), (t, k)


def test_an_incomplete_4d_series_shows_one_volume_and_says_why(tmp_path):
    vol = load_series(_series(_write_4d(tmp_path / "gap", drop=(2, 1))))
    assert count_dicom_frames(vol.meta) == 1
    assert any("incomplete 4D series" in w for w in vol.warnings)


def test_a_time_point_on_another_grid_turns_browsing_off(tmp_path):
    import pydicom

    folder = _write_4d(tmp_path / "moved")
    vol = load_series(_series(folder))
    path = vol.meta["frames_4d"][0][0][0]  # a file of the second volume, moved 2 mm
    ds = pydicom.dcmread(path)
    ds.ImagePositionPatient = [-10.0, -12.0, float(ds.ImagePositionPatient[2]) + 2.0]
    ds.save_as(path)
    with pytest.raises(ValueError, match="another grid"):
        read_dicom_frames(vol)
