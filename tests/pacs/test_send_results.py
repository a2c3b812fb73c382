"""Send back: an annotation and an AI segmentation as DICOM SEG, stored with STOW-RS and C-STORE on
a real Orthanc; the study then shows MedView results, and the SEG comes back with the study."""

from __future__ import annotations

import numpy as np
import pytest

from medview.annotation.dicom_seg import import_dicom_seg
from medview.annotation.labelmap import LabelMap
from medview.config import sample_study_dir
from medview.io import load_series, scan
from medview.pacs import StudyQuery, open_source
from medview.pacs.orthanc import LocalOrthanc, missing_reason
from medview.pacs.results import prediction_seg, send_labelmap
from medview.pacs.source import SourceConfig

T1 = sample_study_dir() / "study" / "T1post"


@pytest.fixture(scope="module")
def fresh_orthanc():
    reason = missing_reason()
    if reason:
        pytest.skip(reason)
    server = LocalOrthanc().start()
    try:
        server.upload([T1])
        yield server
    finally:
        server.stop()


@pytest.fixture(scope="module")
def t1_volume():
    return load_series(scan(T1).series[0])


def _config(server, kind: str) -> SourceConfig:
    if kind == "dicomweb":
        return SourceConfig(name="w", kind="dicomweb", url=server.dicomweb_url)
    return SourceConfig(name="d", kind="dimse", host="127.0.0.1", port=server.dicom_port, called_aet="ORTHANC")


def _blob(vol, value: int = 1) -> np.ndarray:
    arr = np.zeros(vol.shape, np.uint8)
    z, y, x = (s // 2 for s in vol.shape)
    arr[z - 2:z + 2, y - 10:y + 10, x - 8:x + 12] = value
    return arr


@pytest.mark.parametrize("kind", ["dicomweb", "dimse"])
def test_annotation_seg_is_stored_and_flagged(fresh_orthanc, t1_volume, kind, cache):
    src = open_source(_config(fresh_orthanc, kind), cache)
    study = src.find_studies(StudyQuery())[0]
    before = {s.series_uid for s in src.medview_results(study.study_uid)}
    lm = LabelMap.from_array(t1_volume, _blob(t1_volume))
    send_labelmap(src, lm)

    study = src.find_studies(StudyQuery(study_uid=study.study_uid))[0]
    assert "SEG" in study.modalities and study.may_have_results
    results = [s for s in src.medview_results(study.study_uid) if s.series_uid not in before]
    assert len(results) == 1 and results[0].modality == "SEG" and results[0].manufacturer == "MedView"
    assert results[0].description == "MedView annotation"

    # reopening the study brings the SEG along; it reads back as the same labels on the series
    folders = src.retrieve_study(study.study_uid)
    seg_dir = next(f for f in folders if f.name == results[0].series_uid)
    back = import_dicom_seg(next(seg_dir.glob("*.dcm")), t1_volume)
    assert np.array_equal(back.array > 0, lm.array > 0)


def test_ai_segmentation_is_sent_as_seg_naming_the_model(fresh_orthanc, t1_volume, cache, tmp_path):
    import highdicom as hd

    from medview.inference.prediction import Prediction

    pred = Prediction(model_id="brain-tumour", model_name="Brain tumour", model_version="1.2.0",
                      model_sha256="0" * 64, task="segmentation", device="cpu",
                      labels=t1_volume.like(_blob(t1_volume, 2)),
                      label_info=[{"value": 2, "name": "tumour", "color": [255, 0, 0]}])
    seg_file = prediction_seg(pred, t1_volume, tmp_path / "ai.dcm")
    seg = hd.seg.segread(str(seg_file))
    assert seg.get_segment_description(1).algorithm_identification[0].AlgorithmName == "brain-tumour"
    src = open_source(_config(fresh_orthanc, "dicomweb"), cache)
    assert src.store([seg_file]) == 1
    study_uid = str(seg.StudyInstanceUID)
    descriptions = {s.description for s in src.medview_results(study_uid)}
    assert "MedView AI brain-tumour" in descriptions
