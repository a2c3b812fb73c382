"""The scan's own header parser (no pydicom for the common files) gives exactly what the pydicom
path gives, and hands every unusual file (big endian, no preamble, non-ASCII text, wanted
sequences, truncation, long headers) to pydicom."""

import importlib
from pathlib import Path

import numpy as np
import pytest

scan_mod = importlib.import_module("medview.io.scan")


def _both(path, monkeypatch):
    """read_header through the fast path (if it takes the file) and through pydicom only."""
    fast = scan_mod.read_header(str(path))
    with monkeypatch.context() as m:
        m.setattr(scan_mod, "_fast_header", lambda head, complete: None)
        slow = scan_mod.read_header(str(path))

    def plain(r):
        return r if isinstance(r, str) else [(ref.__dict__, facts) for ref, facts in r]

    return plain(fast), plain(slow)


def _takes_fast(path) -> bool:
    with open(path, "rb") as f:
        head = f.read(scan_mod._HEAD_BYTES)
    return scan_mod._fast_header(head, len(head) < scan_mod._HEAD_BYTES) is not None


def test_real_files_read_the_same_both_ways(shared_data, monkeypatch):
    roots = [shared_data / "dicom", Path(__file__).resolve().parents[2] / "resources" / "sample"]
    files = [p for r in roots if r.is_dir() for p in sorted(r.rglob("*")) if p.is_file()]
    files = [p for p in files if scan_mod.looks_like_dicom(p)]
    if not files:
        pytest.skip("no DICOM files in the shared data")
    by_folder: dict[Path, list[Path]] = {}
    for p in files:
        by_folder.setdefault(p.parent, []).append(p)
    picked = [p for fs in by_folder.values() for p in fs[:4]]  # every vendor / syntax, a few files each
    n_fast = 0
    for p in picked:
        fast, slow = _both(p, monkeypatch)
        assert fast == slow, p
        n_fast += _takes_fast(p)
    assert n_fast >= len(picked) // 2  # the fast path is really the common one


def _ct(tmp_path: Path, name: str, syntax=None, **extra):
    from pydicom.dataset import FileDataset, FileMetaDataset
    from pydicom.uid import ExplicitVRLittleEndian, generate_uid

    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID = "1.2.840.10008.5.1.4.1.1.2"
    meta.MediaStorageSOPInstanceUID = generate_uid()
    meta.TransferSyntaxUID = syntax or ExplicitVRLittleEndian
    ds = FileDataset(None, {}, file_meta=meta, preamble=b"\0" * 128)
    ds.SOPClassUID, ds.SOPInstanceUID = meta.MediaStorageSOPClassUID, meta.MediaStorageSOPInstanceUID
    ds.Modality, ds.PatientName, ds.PatientID = "CT", "Test^Fast", "FAST1"
    ds.StudyInstanceUID, ds.SeriesInstanceUID = generate_uid(), generate_uid()
    ds.SeriesNumber, ds.InstanceNumber = 3, 7
    ds.ImageOrientationPatient = [1, 0, 0, 0, 1, 0]
    ds.ImagePositionPatient = [-12.5, 3.25, 40.0]
    ds.PixelSpacing, ds.SliceThickness = [0.75, 0.8], 2.5
    ds.WindowCenter, ds.WindowWidth = [40, 400], [400, 1500]
    ds.Rows, ds.Columns = 8, 6
    ds.SamplesPerPixel, ds.PhotometricInterpretation = 1, "MONOCHROME2"
    ds.BitsAllocated, ds.BitsStored, ds.HighBit, ds.PixelRepresentation = 16, 12, 11, 1
    ds.RescaleIntercept, ds.RescaleSlope = -1024, 1.5
    for k, v in extra.items():
        setattr(ds, k, v)
    ds.PixelData = np.arange(48, dtype=np.int16).tobytes()
    path = tmp_path / name
    from pydicom import dcmwrite

    dcmwrite(path, ds, enforce_file_format=True)  # the encoding its transfer syntax names
    return path, ds


@pytest.mark.parametrize("syntax", ["1.2.840.10008.1.2", "1.2.840.10008.1.2.1"])
def test_plain_ct_takes_the_fast_path_with_the_same_values(tmp_path, monkeypatch, syntax):
    path, ds = _ct(tmp_path, "ct.dcm", syntax)
    assert _takes_fast(path)
    fast, slow = _both(path, monkeypatch)
    assert fast == slow
    ref, facts = fast[0]
    assert ref["position"] == (-12.5, 3.25, 40.0) and ref["pixel_spacing"] == (0.75, 0.8)
    assert ref["slope"] == 1.5 and ref["intercept"] == -1024 and ref["bits_stored"] == 12
    assert facts["window_center"] == 40 and facts["patient_name"] == "Test^Fast"
    with open(path, "rb") as f:
        f.seek(ref["pixel_offset"])
        assert f.read(4) == b"\xe0\x7f\x10\x00"


def test_undefined_length_sequences_are_skipped(tmp_path, monkeypatch):
    from pydicom.dataset import Dataset
    from pydicom.sequence import Sequence

    item = Dataset()
    item.ReferencedSOPClassUID = "1.2.840.10008.5.1.4.1.1.2"
    item.ReferencedSOPInstanceUID = "1.2.3.4"
    inner = Dataset()
    inner.CodeValue, inner.CodingSchemeDesignator, inner.CodeMeaning = "T-1", "SRT", "x"
    item.PurposeOfReferenceCodeSequence = Sequence([inner])
    for syntax in ("1.2.840.10008.1.2", "1.2.840.10008.1.2.1"):
        path, _ = _ct(tmp_path, f"seq-{syntax}.dcm", syntax, ReferencedImageSequence=Sequence([item, item]))
        import pydicom

        ds = pydicom.dcmread(path)  # written again with undefined lengths (sequence and items)
        ds["ReferencedImageSequence"].is_undefined_length = True
        for it in ds.ReferencedImageSequence:
            it.is_undefined_length_sequence_item = True
        ds.save_as(path, enforce_file_format=True)
        assert b"\xff\xff\xff\xff" in path.read_bytes()[:2000]
        assert _takes_fast(path)
        fast, slow = _both(path, monkeypatch)
        assert fast == slow and fast[0][0]["instance_number"] == 7


@pytest.mark.parametrize("case", ["big_endian", "non_ascii", "no_preamble", "truncated"])
def test_unusual_files_go_to_pydicom_with_the_same_result(tmp_path, monkeypatch, case):
    if case == "big_endian":
        path, _ = _ct(tmp_path, "be.dcm", "1.2.840.10008.1.2.2")
    elif case == "non_ascii":
        path, _ = _ct(tmp_path, "utf8.dcm", SpecificCharacterSet="ISO_IR 192", PatientName="Müller^Jörg")
    elif case == "no_preamble":
        from pydicom.dataset import FileMetaDataset

        path, ds = _ct(tmp_path, "np.dcm")
        ds.preamble, ds.file_meta = None, FileMetaDataset()  # a bare data set, as old files are
        ds.save_as(path, enforce_file_format=False, implicit_vr=True, little_endian=True)
        assert path.read_bytes()[:2] == b"\x08\x00"
    else:
        path, _ = _ct(tmp_path, "cut.dcm")
        data = path.read_bytes()
        path.write_bytes(data[:data.index(b"\x28\x00\x30\x00") + 9])  # cut inside PixelSpacing
    assert not _takes_fast(path)
    fast, slow = _both(path, monkeypatch)
    assert fast == slow
    if case == "non_ascii":
        assert fast[0][1]["patient_name"] == "Müller^Jörg"
