"""DICOMweb source (QIDO-RS search, WADO-RS retrieve, STOW-RS store) through dicomweb-client."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Optional

from medview.pacs.cache import DicomCache
from medview.pacs.model import PacsError, SeriesResult, StudyQuery, StudyResult
from medview.pacs.source import InstanceSink, RemoteSource, SourceConfig
from medview.progress import CancelledFn, ProgressFn, check_cancelled, no_progress

# dicomweb-client's retry wrapper logs each failed request with a traceback; we raise one PacsError
logging.getLogger("retrying").setLevel(logging.ERROR)

_STUDY_FIELDS = ["StudyDescription", "ModalitiesInStudy", "NumberOfStudyRelatedSeries",
                 "NumberOfStudyRelatedInstances", "AccessionNumber", "PatientName", "PatientID", "StudyDate"]


def _value(item: dict, keyword: str, default=""):
    """One attribute of a DICOM JSON object, as plain text/list."""
    from pydicom.datadict import tag_for_keyword

    tag = f"{tag_for_keyword(keyword):08X}"
    entry = item.get(tag) or {}
    values = entry.get("Value") or []
    if not values:
        return default
    if entry.get("vr") == "PN":
        values = [v.get("Alphabetic", "") if isinstance(v, dict) else str(v) for v in values]
    return values if isinstance(default, list) else values[0]


def _is_part10(data: bytes) -> bool:
    return len(data) > 132 and data[128:132] == b"DICM"


def _sop_uid(part10: bytes) -> str:
    """SOPInstanceUID of a Part-10 file in memory, from its file meta (read, nothing decoded)."""
    from io import BytesIO

    from pydicom.filereader import _read_file_meta_info, read_preamble

    fp = BytesIO(part10)
    read_preamble(fp, False)
    return str(_read_file_meta_info(fp).MediaStorageSOPInstanceUID)


def _wild(text: str) -> bool:
    return "*" in text or "?" in text


def http_error(server: str, exc: Exception, timeout: float) -> PacsError:
    """requests' many exceptions as one reason a person can act on."""
    import requests

    if isinstance(exc, requests.exceptions.SSLError):
        return PacsError(server, "TLS certificate verification failed (use https with a trusted "
                                 "certificate, or set ca_bundle)")
    if isinstance(exc, requests.exceptions.Timeout):
        return PacsError(server, f"no answer within {timeout:g} s (timeout)")
    if isinstance(exc, requests.exceptions.ConnectionError):
        return PacsError(server, "cannot connect (server down or address wrong)")
    if isinstance(exc, requests.exceptions.HTTPError) and exc.response is not None:
        code = exc.response.status_code
        if code in (401, 403):
            return PacsError(server, f"authentication failed (HTTP {code})")
        if code == 404:
            return PacsError(server, "not found (HTTP 404: wrong DICOMweb root, or no such study/series)")
        return PacsError(server, f"server error (HTTP {code} {exc.response.reason})")
    return PacsError(server, f"{type(exc).__name__}: {exc}")


def _session(config: SourceConfig):
    """A requests session whose TLS setting is the source's: requests lets $REQUESTS_CA_BUNDLE /
    $CURL_CA_BUNDLE override a session's ``verify`` (so a configured ca_bundle, or verification
    turned off, would silently not apply); a source's own choice wins here."""
    import requests

    class _Session(requests.Session):
        pinned_verify = config.ca_bundle or (None if config.verify_tls else False)

        def merge_environment_settings(self, url, proxies, stream, verify, cert):
            settings = super().merge_environment_settings(url, proxies, stream, verify, cert)
            if self.pinned_verify is not None:
                settings["verify"] = self.pinned_verify
            return settings

    return _Session()


class DicomWebSource(RemoteSource):
    def __init__(self, config: SourceConfig, cache: DicomCache):
        from dicomweb_client.api import DICOMwebClient

        self.config = config
        self.cache = cache
        session = _session(config)
        if config.auth == "basic":
            session.auth = (config.username, config.password)
        elif config.auth == "bearer":
            session.headers["Authorization"] = f"Bearer {config.token}"
        session.verify = config.ca_bundle or config.verify_tls
        self.client = DICOMwebClient(config.url, session=session, timeout=config.timeout)
        self.client.set_http_retry_params(retry=False)  # a down server is one quick, clear error

    def _call(self, fn, *args, **kwargs):
        import requests

        try:
            return fn(*args, **kwargs)
        except requests.exceptions.RequestException as exc:
            raise http_error(self.name, exc, self.config.timeout) from None
        except ValueError as exc:  # an answer that is not DICOM JSON / multipart
            raise PacsError(self.name, f"unexpected answer: {exc}") from None

    def _search(self, fn, key: str, page: int = 500, **kwargs) -> list[dict]:
        """All QIDO-RS matches, page by page. Paged by hand because dicomweb-client's
        get_remaining loops until an empty page, and Orthanc's plugin 1.7 ignores ``offset``
        when ModalitiesInStudy is a key: a page that brings nothing new ends the search."""
        out, seen, offset = [], set(), 0
        while True:
            items = self._call(fn, limit=page, offset=offset, **kwargs)
            fresh = [i for i in items if _value(i, key) not in seen]
            seen.update(_value(i, key) for i in fresh)
            out.extend(fresh)
            if len(items) < page or not fresh:
                return out
            offset += len(items)

    def echo(self) -> None:
        self._call(self.client.search_for_studies, limit=1)

    def find_studies(self, query: StudyQuery) -> list[StudyResult]:
        # dicomweb-client percent-encodes '*' and '?' (%2A, %3F), which Orthanc's plugin 1.7 then
        # matches literally: wildcard keys are filtered here (query.matches) instead
        filters = {}
        if query.patient_id and not _wild(query.patient_id):
            filters["PatientID"] = query.patient_id
        if query.patient_name and not _wild(query.patient_name):
            filters["PatientName"] = query.patient_name
        if query.modality:
            filters["ModalitiesInStudy"] = query.modality
        if query.date_range():
            filters["StudyDate"] = f"{query.date_from}-{query.date_to}" if query.date_from != query.date_to \
                else query.date_from
        if query.accession:
            filters["AccessionNumber"] = query.accession
        if query.study_uid:
            filters["StudyInstanceUID"] = query.study_uid
        items = self._search(self.client.search_for_studies, "StudyInstanceUID", search_filters=filters,
                             fields=_STUDY_FIELDS, fuzzymatching=False)
        out = [StudyResult(study_uid=_value(i, "StudyInstanceUID"), patient_id=_value(i, "PatientID"),
                           patient_name=_value(i, "PatientName"), study_date=_value(i, "StudyDate"),
                           description=_value(i, "StudyDescription"), accession=_value(i, "AccessionNumber"),
                           modalities=sorted(_value(i, "ModalitiesInStudy", [])),
                           n_series=int(_value(i, "NumberOfStudyRelatedSeries", 0) or 0),
                           n_instances=int(_value(i, "NumberOfStudyRelatedInstances", 0) or 0))
               for i in items]
        return sorted((s for s in out if query.matches(s)), key=lambda s: (s.study_date, s.study_uid))

    def find_series(self, study_uid: str) -> list[SeriesResult]:
        items = self._search(self.client.search_for_series, "SeriesInstanceUID", study_instance_uid=study_uid,
                             fields=["SeriesDescription", "SeriesNumber", "Modality", "Manufacturer",
                                   "NumberOfSeriesRelatedInstances"])
        out = []
        for i in items:
            number = _value(i, "SeriesNumber", None)
            out.append(SeriesResult(series_uid=_value(i, "SeriesInstanceUID"), study_uid=study_uid,
                                    modality=_value(i, "Modality"), description=_value(i, "SeriesDescription"),
                                    number=int(number) if number not in (None, "") else None,
                                    n_instances=int(_value(i, "NumberOfSeriesRelatedInstances", 0) or 0),
                                    manufacturer=_value(i, "Manufacturer")))
        return sorted(out, key=lambda s: (s.number is None, s.number or 0, s.series_uid))

    def list_instances(self, study_uid: str, series_uid: str) -> list[str]:
        items = self._search(self.client.search_for_instances, "SOPInstanceUID", study_instance_uid=study_uid,
                             series_instance_uid=series_uid, fields=["InstanceNumber"])
        rows = []
        for i in items:
            number = _value(i, "InstanceNumber", None)
            rows.append((int(number) if number not in (None, "") else 0, _value(i, "SOPInstanceUID")))
        return [uid for _, uid in sorted(rows)]

    def fetch_instances(self, study_uid: str, series_uid: str, sop_uids: Optional[list[str]],
                        sink: InstanceSink, cancelled: Optional[CancelledFn] = None) -> None:
        if sop_uids is not None:
            for sop in sop_uids:
                check_cancelled(cancelled)
                sink(sop, dataset=self._call(self.client.retrieve_instance, study_uid, series_uid, sop))
            return
        # one multipart WADO-RS answer, split as it streams in: each part (a Part-10 file) is
        # written as it came, without decoding and re-encoding the pixel data
        parts = self._call(self._series_parts, study_uid, series_uid)
        try:
            while True:
                check_cancelled(cancelled)
                part = self._call(next, parts, None)
                if part is None:
                    break
                if _is_part10(part):
                    sink(_sop_uid(part), data=part)
                else:  # a bare dataset without file meta: parse it and write a proper file
                    self._sink_dataset(part, sink)
        finally:
            parts.close()

    def _series_parts(self, study_uid: str, series_uid: str):
        """The raw parts of a WADO-RS series answer, through dicomweb-client's own session and
        multipart decoder (its public iter_series would parse every instance into a dataset)."""
        url = f"{self.config.url}/studies/{study_uid}/series/{series_uid}"
        response = self.client._http_get(url, headers={"Accept": 'multipart/related; type="application/dicom"'},
                                         stream=True)
        return self.client._decode_multipart_message(response, stream=True)

    @staticmethod
    def _sink_dataset(part: bytes, sink: InstanceSink) -> None:
        from io import BytesIO

        import pydicom

        ds = pydicom.dcmread(BytesIO(part), force=True)
        sink(str(ds.SOPInstanceUID), dataset=ds)

    def store(self, files: list[Path], progress: Optional[ProgressFn] = None) -> int:
        import pydicom

        progress = progress or no_progress
        datasets = [pydicom.dcmread(str(f)) for f in files]
        stored = 0
        for i, ds in enumerate(datasets):
            answer = self._call(self.client.store_instances, [ds])
            failed = getattr(answer, "FailedSOPSequence", None)
            if failed:
                reason = getattr(failed[0], "FailureReason", "?")
                raise PacsError(self.name, f"refused {files[i]} (STOW-RS failure reason {reason})")
            stored += 1
            self.cache.invalidate(str(ds.StudyInstanceUID), str(ds.SeriesInstanceUID))
            progress((i + 1) / len(datasets), f"Stored {i + 1}/{len(datasets)}")
        return stored
