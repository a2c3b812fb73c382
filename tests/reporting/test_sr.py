"""DICOM SR TID 1500 on the TCIA series: rulers, ROIs, segment volumes (SEG), AI findings; read back."""

from __future__ import annotations

import numpy as np
import pydicom
import pytest

from medview.reporting.measurements import make_record, segment_volume_records
from medview.reporting.sr import Finding, SRError, export_sr, read_sr

from .conftest import dciodvfy_or_skip, needs_series

SHA = "492a7006e1c84872f8860e49c1eaca355262cd8e88fc2bb04f74eb4e1053f610"


@pytest.fixture(scope="module")
def written(tmp_path_factory, tcia_volume, tcia_labels):
    from medview.annotation.dicom_seg import export_dicom_seg

    tmp = tmp_path_factory.mktemp("sr")
    vol = tcia_volume
    records = [make_record(vol, "ruler", (10, 20, 5), (100, 120, 5), name="lesion diameter"),
               make_record(vol, "ellipse", (60, 60, 8), (120, 100, 8)),
               make_record(vol, "rect", (200, 210, 9), (260, 300, 9)),
               make_record(vol, "rect", (60, 100, 4), (120, 100, 15), normal_axis=1, view="coronal")]
    seg = export_dicom_seg(tcia_labels, tmp / "seg.dcm")
    records += segment_volume_records(tcia_labels)
    finding = Finding("tumour-cls", "2.1.0", SHA, {"tumour": 0.83, "normal": 0.17}, "tumour", "Tumour classifier")
    out = export_sr(tmp / "sr.dcm", vol, records, [finding], seg_path=seg, observer="Ada Reader",
                    segmentation_model=("seg-model", "1.0", SHA))
    return out, seg, records


@needs_series
def test_sr_validates_and_references_images_and_seg(written, tcia_volume):
    validate = dciodvfy_or_skip()
    out, seg, _ = written
    v = validate(out)
    print(f"dciodvfy SR: {len(v.errors)} error(s), {len(v.warnings)} warning(s)")
    assert v.errors == []
    ds = pydicom.dcmread(out)
    assert ds.SOPClassUID == "1.2.840.10008.5.1.4.1.1.88.34"  # Comprehensive 3D SR
    assert ds.ContentTemplateSequence[0].TemplateIdentifier == "1500"
    assert ds.PatientID == tcia_volume.meta["PatientID"]
    evidence = {i.ReferencedSOPInstanceUID for s in ds.CurrentRequestedProcedureEvidenceSequence
                for se in s.ReferencedSeriesSequence for i in se.ReferencedSOPSequence}
    src = {str(pydicom.dcmread(f, stop_before_pixels=True).SOPInstanceUID) for f in tcia_volume.meta["source_files"]}
    seg_uid = pydicom.dcmread(seg, stop_before_pixels=True).SOPInstanceUID
    assert src | {seg_uid} <= evidence


@needs_series
def test_sr_reads_back_as_measurements(written, tcia_volume):
    out, _, records = written
    content = read_sr(out, tcia_volume)
    assert content.series_uid == tcia_volume.meta["SeriesInstanceUID"]
    by_uid = {r.tracking_uid: r for r in content.measurements}
    assert len(by_uid) == len(records)
    for r in records:
        back = by_uid[r.tracking_uid]
        assert back.kind == r.kind
        for k, v in r.values.items():
            if k in ("length_mm", "area_mm2", "mean", "sd", "volume_ml"):
                assert back.values[k] == pytest.approx(v, rel=1e-6), (r.kind, k)
        if r.kind == "volume":
            assert back.segment == r.segment and back.name == r.name
        else:  # the outline comes back on the same voxels (2D on its image or 3D in the frame)
            assert np.allclose(back.p0, np.minimum(r.p0, r.p1), atol=1e-3)
            assert np.allclose(back.p1, np.maximum(r.p0, r.p1), atol=1e-3)
            assert back.normal_axis == r.normal_axis or r.kind == "ruler"
    (f,) = content.findings
    assert (f.model_id, f.model_version, f.model_sha256, f.top_class) == ("tumour-cls", "2.1.0", SHA, "tumour")
    assert f.probabilities == pytest.approx({"tumour": 0.83, "normal": 0.17})


@needs_series
def test_sr_regions_are_2d_on_their_image_when_they_can_be(written):
    ds = pydicom.dcmread(written[0])

    def walk(items):
        for it in items:
            yield it
            yield from walk(it.get("ContentSequence", []))
    kinds = [it.ValueType for it in walk(ds.ContentSequence) if it.ValueType in ("SCOORD", "SCOORD3D")]
    assert kinds.count("SCOORD") == 3 and kinds.count("SCOORD3D") == 1  # the coronal ROI spans images


@needs_series
def test_sr_of_another_series_is_refused(written, tmp_path):
    from medview.io import load_volume

    from .conftest import SERIES

    other = SERIES.parent.parent / "Study3"
    series = sorted(p for p in other.iterdir() if p.is_dir())[0] if other.is_dir() else None
    if series is None:
        pytest.skip("second TCIA study not found")
    with pytest.raises(SRError, match="references series"):
        read_sr(written[0], load_volume(series))


@needs_series
def test_volumes_need_a_seg(tcia_volume, tcia_labels, tmp_path):
    with pytest.raises(SRError, match="SEG"):
        export_sr(tmp_path / "x.dcm", tcia_volume, segment_volume_records(tcia_labels))


@needs_series
def test_finding_of_another_image_is_refused(tcia_volume, tmp_path):
    f = Finding("m", "1", SHA, {"a": 1.0}, "a", input={"series_uid": "1.2.3.999", "path": "/elsewhere"})
    with pytest.raises(SRError, match="made on series 1.2.3.999"):
        export_sr(tmp_path / "x.dcm", tcia_volume, [], [f])
    png = Finding("m", "1", SHA, {"a": 1.0}, "a", input={"path": "/data/photo.png"})
    with pytest.raises(SRError, match="photo.png"):
        export_sr(tmp_path / "x.dcm", tcia_volume, [], [png])
