"""De-identification against PS3.15 Table E.1-1 on the TCIA series (real files, real dicognito)."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pydicom
import pytest
from pydicom.tag import Tag

from medview.reporting.deidentify import Deidentifier, burned_in_warning, deidentify_path

DATA = Path(os.environ.get("MEDVIEW_DATA", Path(__file__).resolve().parents[2] / ".." / "shared" / "data"))
TCIA = DATA / "dicom" / "mr-brain-tcia"
HIPPO = Path(__file__).resolve().parents[2] / "resources" / "sample" / "study" / "HippoCrop"
needs_tcia = pytest.mark.skipif(not TCIA.is_dir(), reason=f"TCIA series not found at {TCIA} (set MEDVIEW_DATA)")

# (tag, Table E.1-1 basic profile action) for attributes checked by tag. D/U = replaced by a
# dummy / a new UID, Z = empty (or replaced), X = removed.
TABLE_E1_1 = {
    Tag(0x0010, 0x0010): "Z",  # Patient's Name (Z: empty or dummy)
    Tag(0x0010, 0x0020): "Z",  # Patient ID
    Tag(0x0010, 0x0030): "Z",  # Patient's Birth Date
    Tag(0x0010, 0x0040): "Z",  # Patient's Sex
    Tag(0x0010, 0x1010): "X",  # Patient's Age
    Tag(0x0010, 0x1030): "X",  # Patient's Weight
    Tag(0x0008, 0x0050): "Z",  # Accession Number
    Tag(0x0008, 0x0090): "Z",  # Referring Physician's Name
    Tag(0x0008, 0x0080): "X",  # Institution Name (X/Z/D)
    Tag(0x0008, 0x1030): "X",  # Study Description
    Tag(0x0008, 0x103E): "X",  # Series Description
    Tag(0x0018, 0x1030): "X",  # Protocol Name
    Tag(0x0018, 0x1000): "X",  # Device Serial Number (X/Z/D)
    Tag(0x0008, 0x1070): "X",  # Operators' Name (X/Z/D)
    Tag(0x0020, 0x0010): "Z",  # Study ID
    Tag(0x0020, 0x000D): "U",  # Study Instance UID
    Tag(0x0020, 0x000E): "U",  # Series Instance UID
    Tag(0x0008, 0x0018): "U",  # SOP Instance UID
    Tag(0x0020, 0x0052): "U",  # Frame of Reference UID
}


def _check_profile(orig: pydicom.Dataset, out: pydicom.Dataset) -> None:
    for tag, action in TABLE_E1_1.items():
        if tag not in orig or orig[tag].value in (None, ""):
            continue
        name = orig[tag].keyword
        if action == "X":
            assert tag not in out or out[tag].value in (None, "") or out[tag].value != orig[tag].value, name
        elif action == "Z":
            assert tag not in out or out[tag].value in (None, "") or out[tag].value != orig[tag].value, name
        else:  # U
            assert out[tag].value != orig[tag].value, name
    assert not any(e.tag.is_private for e in out.iterall())
    assert out.PatientIdentityRemoved == "YES"
    assert out.DeidentificationMethod
    assert out.DeidentificationMethodCodeSequence[0].CodeValue == "113100"


@needs_tcia
def test_series_follows_table_e1_1_and_keeps_pixels(tmp_path):
    series = sorted((TCIA).rglob("*.dcm"))[:3]
    src = tmp_path / "in"
    src.mkdir()
    for f in series:
        (src / f.name).write_bytes(f.read_bytes())
    result = deidentify_path(src, tmp_path / "out", seed="t")
    assert len(result.written) == len(series) and not result.skipped
    by_pos = {}
    for f in series:
        ds = pydicom.dcmread(f)
        by_pos[tuple(ds.ImagePositionPatient)] = ds
    study_uids = set()
    for w in result.written:
        out = pydicom.dcmread(w)
        orig = by_pos[tuple(out.ImagePositionPatient)]
        _check_profile(orig, out)
        assert np.array_equal(out.pixel_array, orig.pixel_array)
        assert out.file_meta.MediaStorageSOPInstanceUID == out.SOPInstanceUID
        study_uids.add(out.StudyInstanceUID)
        assert str(orig.PatientName) not in str(out)
    assert len(study_uids) == 1  # one study stays one study


def test_private_tags_removed_and_dates_shift(tmp_path):
    src = Path(pydicom.data.get_testdata_file("CT_small.dcm"))
    orig = pydicom.dcmread(src)
    assert any(e.tag.is_private for e in orig.iterall())
    d = Deidentifier(seed="s", shift_days=10)
    d.file(src, tmp_path / "a.dcm")
    out = pydicom.dcmread(tmp_path / "a.dcm")
    _check_profile(orig, out)
    from datetime import date

    def as_date(v):
        return date(int(v[:4]), int(v[4:6]), int(v[6:8]))

    assert (as_date(orig.StudyDate) - as_date(out.StudyDate)).days == 10
    kept = Deidentifier(seed="s", keep_dates=True).dataset(pydicom.dcmread(src))
    assert kept.StudyDate == orig.StudyDate and kept.LongitudinalTemporalInformationModified == "UNMODIFIED"


def test_same_seed_same_uids_so_references_resolve():
    src = pydicom.data.get_testdata_file("CT_small.dcm")
    a = Deidentifier(seed="run").dataset(pydicom.dcmread(src))
    b = Deidentifier(seed="run").dataset(pydicom.dcmread(src))
    c = Deidentifier(seed="other").dataset(pydicom.dcmread(src))
    assert a.SOPInstanceUID == b.SOPInstanceUID != c.SOPInstanceUID


def test_burned_in_warnings():
    ds = pydicom.Dataset()
    ds.Modality = "MR"
    assert burned_in_warning(ds, "x") is None
    ds.BurnedInAnnotation = "YES"
    assert "BurnedInAnnotation" in burned_in_warning(ds, "x")
    ds2 = pydicom.Dataset()
    ds2.SOPClassUID = "1.2.840.10008.5.1.4.1.1.7"
    assert "secondary capture" in burned_in_warning(ds2, "x")
    us = pydicom.dcmread(pydicom.data.get_testdata_file("examples_palette.dcm"), stop_before_pixels=True)
    assert "ultrasound" in burned_in_warning(us, "x")


def test_not_dicom_is_skipped_with_name(tmp_path):
    (tmp_path / "in").mkdir()
    (tmp_path / "in" / "notes.txt").write_text("hello")
    r = deidentify_path(tmp_path / "in", tmp_path / "out")
    assert not r.written and "notes.txt" in r.skipped[0]
