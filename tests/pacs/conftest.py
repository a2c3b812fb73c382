"""One real Orthanc for the PACS tests (session scope), loaded with the sample study and a
22-slice TCIA series; skipped with the reason where Orthanc is not installed."""

from __future__ import annotations

import pytest

from medview.config import data_dir, sample_study_dir
from medview.pacs.orthanc import LocalOrthanc, missing_reason
from medview.pacs.source import SourceConfig

TCIA_T1 = "dicom/mr-brain-tcia/Study1/12-T1post-05670"


@pytest.fixture(scope="session")
def orthanc():
    reason = missing_reason()
    if reason:
        pytest.skip(reason)
    server = LocalOrthanc().start()
    try:
        folders = [sample_study_dir()]
        tcia = data_dir() / TCIA_T1
        if tcia.is_dir():
            folders.append(tcia)
        server.n_uploaded = server.upload(folders)
        server.has_tcia = tcia.is_dir()
        yield server
    finally:
        server.stop()


@pytest.fixture(params=["dicomweb", "dimse-get", "dimse-move"])
def source_config(request, orthanc) -> SourceConfig:
    if request.param == "dicomweb":
        return SourceConfig(name="test-web", kind="dicomweb", url=orthanc.dicomweb_url)
    return SourceConfig(name="test-dimse", kind="dimse", host="127.0.0.1", port=orthanc.dicom_port,
                        called_aet="ORTHANC", calling_aet=orthanc.our_aet,
                        retrieve=request.param.split("-")[1], move_port=orthanc.move_port)


@pytest.fixture
def cache(tmp_path):
    from medview.pacs.cache import DicomCache

    return DicomCache(tmp_path / "cache")
