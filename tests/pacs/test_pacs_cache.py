"""The retrieve cache: size cap with least-recently-used eviction, and a study opened once
reopens with the server stopped."""

from __future__ import annotations

import os
import time

import pydicom
import pytest

from medview.config import sample_study_dir
from medview.io import load_series, scan
from medview.pacs import PacsError, StudyQuery, open_source
from medview.pacs.cache import DicomCache
from medview.pacs.orthanc import LocalOrthanc, missing_reason
from medview.pacs.source import SourceConfig

T1 = sample_study_dir() / "study" / "T1post"


def _fill(cache: DicomCache, study: str, series: str, n: int = 3) -> int:
    files = sorted(T1.glob("*.dcm"))[:n]
    for f in files:
        cache.write(study, series, f.stem, data=f.read_bytes())
    cache.mark_complete(study, series, n)
    return sum(f.stat().st_size for f in files)


def test_lru_eviction_keeps_the_cap_and_the_recent_series(tmp_path):
    one = sum(f.stat().st_size for f in sorted(T1.glob("*.dcm"))[:3])
    cache = DicomCache(tmp_path / "c", cap_bytes=int(2.5 * one))
    _fill(cache, "1.2.3", "1.2.3.1")
    old = time.time() - 100
    os.utime(cache.series_dir("1.2.3", "1.2.3.1") / ".complete", (old, old))
    _fill(cache, "1.2.4", "1.2.4.1")
    os.utime(cache.series_dir("1.2.4", "1.2.4.1") / ".complete", (old + 10, old + 10))
    cache.touch("1.2.3", "1.2.3.1")  # opened again: now the most recent
    _fill(cache, "1.2.5", "1.2.5.1")  # over the cap: the least recently used series goes
    assert cache.size_bytes() <= cache.cap_bytes
    assert cache.is_complete("1.2.3", "1.2.3.1") and cache.is_complete("1.2.5", "1.2.5.1")
    assert not cache.is_complete("1.2.4", "1.2.4.1") and not (cache.root / "1.2.4").exists()


def test_partial_series_is_never_complete(tmp_path):
    cache = DicomCache(tmp_path / "c")
    f = sorted(T1.glob("*.dcm"))[0]
    cache.write("1.2", "1.2.1", f.stem, data=f.read_bytes())
    assert cache.has("1.2", "1.2.1", f.stem) and not cache.is_complete("1.2", "1.2.1")
    assert not list(cache.series_dir("1.2", "1.2.1").glob("*.part"))


@pytest.mark.parametrize("kind", ["dicomweb", "dimse"])
def test_reopen_offline_from_the_cache(kind, tmp_path):
    reason = missing_reason()
    if reason:
        pytest.skip(reason)
    cache = DicomCache(tmp_path / "cache")
    server = LocalOrthanc().start()
    try:
        server.upload([T1])
        cfg = (SourceConfig(name="o", kind="dicomweb", url=server.dicomweb_url, timeout=3) if kind == "dicomweb"
               else SourceConfig(name="o", kind="dimse", host="127.0.0.1", port=server.dicom_port,
                                 called_aet="ORTHANC", timeout=3))
        src = open_source(cfg, cache)
        study = src.find_studies(StudyQuery())[0]
        cache.remember_study(study)
        first = src.retrieve_study(study.study_uid)
    finally:
        server.stop()
    # the server is gone: searching fails with one clear line, the study still opens from disk
    with pytest.raises(PacsError, match="cannot connect"):
        src.find_studies(StudyQuery())
    stages = []
    again = src.retrieve_study(study.study_uid, lambda f, s: stages.append(s))
    assert again == first and any("From the cache" in s for s in stages)
    assert [s.study_uid for s in cache.cached_studies()] == [study.study_uid]
    vol = load_series(scan(again[0]).series[0])
    assert vol.shape[0] == 22
    uids = {str(pydicom.dcmread(f, stop_before_pixels=True).SOPInstanceUID) for f in again[0].glob("*.dcm")}
    assert uids == {str(pydicom.dcmread(f, stop_before_pixels=True).SOPInstanceUID) for f in T1.glob("*.dcm")}
