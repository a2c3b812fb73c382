"""Real round trips against a local Orthanc: DICOMweb (dicomweb-client) and DIMSE (pynetdicom,
C-GET and C-MOVE) through the one StudySource interface."""

from __future__ import annotations

import pydicom
import pytest

from medview.config import sample_study_dir
from medview.io import scan
from medview.pacs import PacsError, StudyQuery, open_source
from medview.progress import Cancelled

SAMPLE_PATIENT = "PGBM-003"


def _sample_study_uid() -> str:
    f = next((sample_study_dir() / "study" / "T1post").glob("*.dcm"))
    return str(pydicom.dcmread(f, stop_before_pixels=True).StudyInstanceUID)


def test_echo(source_config, cache):
    open_source(source_config, cache).echo()


def test_find_with_filters(source_config, cache, orthanc):
    src = open_source(source_config, cache)
    everything = src.find_studies(StudyQuery())
    assert len(everything) == (2 if orthanc.has_tcia else 1)
    by_id = src.find_studies(StudyQuery(patient_id=SAMPLE_PATIENT))
    assert [s.study_uid for s in by_id] == [_sample_study_uid()]
    assert by_id[0].modalities == ["MR"] and by_id[0].n_series == 2
    assert by_id[0].study_date == "20200121"
    assert src.find_studies(StudyQuery(patient_name="albus*")) == by_id
    assert src.find_studies(StudyQuery(patient_id="NOBODY")) == []
    assert src.find_studies(StudyQuery(modality="CT")) == []
    assert len(src.find_studies(StudyQuery(modality="MR"))) == len(everything)
    assert src.find_studies(StudyQuery(date_from="20200121", date_to="20200121", patient_id=SAMPLE_PATIENT)) == by_id
    assert src.find_studies(StudyQuery(date_from="20300101", date_to="")) == []



def test_series_and_retrieve_into_cache(source_config, cache):
    src = open_source(source_config, cache)
    uid = _sample_study_uid()
    series = src.find_series(uid)
    assert sorted((s.description, s.n_instances) for s in series) == [("HippoCrop", 40), ("T1post", 22)]
    t1 = next(s for s in series if s.description == "T1post")
    stages = []
    folder = src.retrieve_series(uid, t1.series_uid, lambda f, s: stages.append((f, s)))
    assert 0 < stages[0][0] <= 1 and stages[-1] == (1.0, "Retrieved 22 instance(s)")
    assert any(s.startswith("First slice") for _, s in stages[:-1])
    index = scan(folder)
    assert [s.n_images for s in index.series] == [22]
    original = {str(pydicom.dcmread(f).SOPInstanceUID): pydicom.dcmread(f).pixel_array.sum()
                for f in (sample_study_dir() / "study" / "T1post").glob("*.dcm")}
    got = {str(pydicom.dcmread(f).SOPInstanceUID): pydicom.dcmread(f).pixel_array.sum() for f in folder.glob("*.dcm")}
    assert got == original
    # reopening comes from the cache without the network
    assert cache.is_complete(uid, t1.series_uid)
    stages.clear()
    assert src.retrieve_series(uid, t1.series_uid, lambda f, s: stages.append(s)) == folder
    assert stages == ["From the cache"]



def test_cancel_keeps_middle_slice_and_resumes(source_config, cache):
    src = open_source(source_config, cache)
    uid = _sample_study_uid()
    t1 = next(s for s in src.find_series(uid) if s.description == "T1post")
    stages = []
    with pytest.raises(Cancelled):  # the user cancels once the first slice is shown
        src.retrieve_series(uid, t1.series_uid, lambda f, s: stages.append(s),
                            cancelled=lambda: any(s.startswith("First slice") for s in stages))
    assert not cache.is_complete(uid, t1.series_uid)
    partial = {str(pydicom.dcmread(f, stop_before_pixels=True).InstanceNumber)
               for f in cache.instances(uid, t1.series_uid)}
    numbers = sorted(int(pydicom.dcmread(f, stop_before_pixels=True).InstanceNumber)
                     for f in (sample_study_dir() / "study" / "T1post").glob("*.dcm"))
    assert str(numbers[len(numbers) // 2]) in partial  # the middle slice is there, whatever else came
    folder = src.retrieve_series(uid, t1.series_uid)
    assert len(list(folder.glob("*.dcm"))) == 22 and cache.is_complete(uid, t1.series_uid)



def test_tcia_series_retrieve(source_config, cache, orthanc):
    if not orthanc.has_tcia:
        pytest.skip("shared data (TCIA series) not found")
    src = open_source(source_config, cache)
    other = [s for s in src.find_studies(StudyQuery()) if s.patient_id != SAMPLE_PATIENT]
    assert len(other) == 1
    study = src.retrieve_study(other[0].study_uid)
    assert [len(list(f.glob("*.dcm"))) for f in study] == [22]



def test_unreachable_server_is_one_clear_error(source_config, cache):
    from medview.pacs.orthanc import free_port

    cfg = source_config
    port = free_port()
    if cfg.kind == "dicomweb":
        cfg.url = f"http://127.0.0.1:{port}/dicom-web"
    else:
        cfg.port = port
    cfg.timeout = 3
    src = open_source(cfg, cache)
    with pytest.raises(PacsError) as err:
        src.echo()
    assert "cannot connect" in str(err.value) and str(port) in str(err.value)


def test_wrong_dicomweb_root_names_the_reason(orthanc, cache):
    src = open_source(f"{orthanc.http_url}/no-such-root", cache)
    with pytest.raises(PacsError, match="HTTP 404"):
        src.find_studies(StudyQuery())
