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


@needs_tcia
def test_cli_study_with_seg_and_sr_keeps_references_and_validates(tmp_path, tcia_volume, tcia_labels):
    """`medview deidentify` on a folder holding a series, its SEG and its SR: one output per input,
    UIDs replaced consistently so the SEG and SR still point at the (new) images; dciodvfy clean."""
    from medview.annotation.dicom_seg import export_dicom_seg
    from medview.cli import main
    from medview.reporting.audit import read_log
    from medview.reporting.measurements import make_record, segment_volume_records
    from medview.reporting.sr import export_sr

    from .conftest import copy_series, dciodvfy_or_skip

    validate = dciodvfy_or_skip()
    copy_series(tmp_path / "study" / "series")
    seg = export_dicom_seg(tcia_labels, tmp_path / "study" / "seg.dcm")
    export_sr(tmp_path / "study" / "sr.dcm", tcia_volume,
              [make_record(tcia_volume, "ruler", (10, 20, 5), (100, 120, 5))] + segment_volume_records(tcia_labels),
              seg_path=seg)
    n_in = len(list((tmp_path / "study").rglob("*.dcm")))
    assert main(["deidentify", str(tmp_path / "study"), "--out", str(tmp_path / "out"), "--shift-dates", "30"]) == 0
    outs = [pydicom.dcmread(p) for p in sorted((tmp_path / "out").glob("*.dcm"))]
    assert len(outs) == n_in == 24
    images = [d for d in outs if d.Modality == "MR"]
    (seg_out,) = [d for d in outs if d.Modality == "SEG"]
    (sr_out,) = [d for d in outs if d.Modality == "SR"]
    image_uids = {d.SOPInstanceUID for d in images}
    series_uid = images[0].SeriesInstanceUID
    assert series_uid != tcia_volume.meta["SeriesInstanceUID"]
    assert seg_out.ReferencedSeriesSequence[0].SeriesInstanceUID == series_uid
    assert {i.ReferencedSOPInstanceUID for i in seg_out.ReferencedSeriesSequence[0].ReferencedInstanceSequence} \
        <= image_uids
    evidence = {i.ReferencedSOPInstanceUID for s in sr_out.CurrentRequestedProcedureEvidenceSequence
                for se in s.ReferencedSeriesSequence for i in se.ReferencedSOPSequence}
    assert evidence == image_uids | {seg_out.SOPInstanceUID}
    assert len({d.StudyInstanceUID for d in outs}) == 1 and len({d.PatientID for d in outs}) == 1
    assert all(str(d.PatientName) != "Chrisjen^Avasarala" and d.PatientIdentityRemoved == "YES" for d in outs)
    errors = {}
    for p in sorted((tmp_path / "out").glob("*.dcm")):
        v = validate(p)
        errors[p.name] = v.errors
    print(f"dciodvfy on {len(errors)} de-identified files (22 MR, SEG, SR): "
          f"{sum(len(e) for e in errors.values())} error(s)")
    assert not any(errors.values()), errors
    (entry,) = [e for e in read_log() if e["action"] == "deidentify"]
    assert entry["detail"]["files"] == 24 and entry["detail"]["dates"] == "shifted 30 days"


def test_cli_keep_dates_and_single_file(tmp_path):
    from medview.cli import main

    src = pydicom.data.get_testdata_file("CT_small.dcm")
    assert main(["deidentify", src, "--out", str(tmp_path / "one.dcm"), "--keep-dates"]) == 0
    out, orig = pydicom.dcmread(tmp_path / "one.dcm"), pydicom.dcmread(src)
    assert out.StudyDate == orig.StudyDate and out.PatientName != orig.PatientName
    with pytest.raises(SystemExit):  # the two date options exclude each other
        main(["deidentify", src, "--out", str(tmp_path / "x.dcm"), "--keep-dates", "--shift-dates", "3"])


@needs_tcia
def test_training_set_sidecars_deidentified_consistently(tmp_path, tcia_volume, tcia_labels):
    """A training set de-identified with the seed of its DICOM series names the same new UIDs and
    patient ID, and keeps no name, reviewer or path."""
    import json

    from medview.annotation.training_set import export_training_case
    from medview.cli import main

    from .conftest import SERIES

    export_training_case(tcia_volume, tcia_labels, tmp_path / "train")
    assert main(["deidentify", str(tmp_path / "train"), "--out", str(tmp_path / "t-out"), "--seed", "k"]) == 0
    assert main(["deidentify", str(SERIES), "--out", str(tmp_path / "d-out"), "--seed", "k"]) == 0
    dicom = pydicom.dcmread(sorted((tmp_path / "d-out").glob("*.dcm"))[0])
    data = json.loads((tmp_path / "t-out" / "dataset.json").read_text())
    (entry,) = data["training"]
    assert entry["case"] == "case_0001" and entry["series_uid"] == dicom.SeriesInstanceUID
    side_text = (tmp_path / "t-out" / "labels" / "case_0001.json").read_text()
    side = json.loads(side_text)
    assert side["reference"]["PatientID"] == dicom.PatientID != tcia_volume.meta["PatientID"]
    assert side["reference"]["StudyInstanceUID"] == dicom.StudyInstanceUID
    for secret in ("Avasarala", "PGBM-002", str(SERIES), tcia_volume.meta["SeriesInstanceUID"]):
        assert secret not in side_text and secret not in json.dumps(data)
    assert (tmp_path / "t-out" / "images" / "case_0001.nii.gz").is_file()
