"""DICOMweb source (QIDO-RS search, WADO-RS retrieve, STOW-RS store) through dicomweb-client."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

from medview.pacs.cache import DicomCache
from medview.pacs.model import PacsError, SeriesResult, StudyQuery, StudyResult
from medview.pacs.source import SourceConfig, StudySource
from medview.progress import Cancelled, CancelledFn, ProgressFn, check_cancelled, no_progress

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


class DicomWebSource(StudySource):
    def __init__(self, config: SourceConfig, cache: DicomCache):
        import requests
        from dicomweb_client.api import DICOMwebClient

        self.config = config
        self.cache = cache
        session = requests.Session()
        if config.auth == "basic":
            session.auth = (config.username, config.password)
        elif config.auth == "bearer":
            session.headers["Authorization"] = f"Bearer {config.token}"
        session.verify = config.ca_bundle or config.verify_tls
        # Orthanc's DICOMweb plugin (1.7) can stall a kept-alive connection after an empty answer
        session.headers["Connection"] = "close"
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

    def echo(self) -> None:
        self._call(self.client.search_for_studies, limit=1)

    def find_studies(self, query: StudyQuery) -> list[StudyResult]:
        # dicomweb-client percent-encodes '*' and '?', which Orthanc's plugin then matches
        # literally: wildcard keys are filtered here (query.matches) instead of on the server
        filters = {}
        if query.patient_id and not _wild(query.patient_id):
            filters["PatientID"] = query.patient_id
        if query.patient_name and not _wild(query.patient_name):
            filters["PatientName"] = query.patient_name
        # ModalitiesInStudy as a QIDO key makes Debian's Orthanc 1.10 + DICOMweb 1.7 drop the
        # connection: the modality is filtered here (query.matches) instead
        if query.date_range():  # closed range: the Orthanc plugin hangs on 'YYYYMMDD-'
            filters["StudyDate"] = f"{query.date_from or '19000101'}-{query.date_to or '99991231'}"
        if query.accession:
            filters["AccessionNumber"] = query.accession
        if query.study_uid:
            filters["StudyInstanceUID"] = query.study_uid
        items = self._call(self.client.search_for_studies, search_filters=filters, fields=_STUDY_FIELDS,
                           get_remaining=True, fuzzymatching=False)
        out = [StudyResult(study_uid=_value(i, "StudyInstanceUID"), patient_id=_value(i, "PatientID"),
                           patient_name=_value(i, "PatientName"), study_date=_value(i, "StudyDate"),
                           description=_value(i, "StudyDescription"), accession=_value(i, "AccessionNumber"),
                           modalities=sorted(_value(i, "ModalitiesInStudy", [])),
                           n_series=int(_value(i, "NumberOfStudyRelatedSeries", 0) or 0),
                           n_instances=int(_value(i, "NumberOfStudyRelatedInstances", 0) or 0))
               for i in items]
        return sorted((s for s in out if query.matches(s)), key=lambda s: (s.study_date, s.study_uid))

    def find_series(self, study_uid: str) -> list[SeriesResult]:
        items = self._call(self.client.search_for_series, study_instance_uid=study_uid,
                           fields=["SeriesDescription", "SeriesNumber", "Modality",
                                   "NumberOfSeriesRelatedInstances"], get_remaining=True)
        out = []
        for i in items:
            number = _value(i, "SeriesNumber", None)
            out.append(SeriesResult(series_uid=_value(i, "SeriesInstanceUID"), study_uid=study_uid,
                                    modality=_value(i, "Modality"), description=_value(i, "SeriesDescription"),
                                    number=int(number) if number not in (None, "") else None,
                                    n_instances=int(_value(i, "NumberOfSeriesRelatedInstances", 0) or 0)))
        return sorted(out, key=lambda s: (s.number is None, s.number or 0, s.series_uid))

    def _instances(self, study_uid: str, series_uid: str) -> list[str]:
        """SOP Instance UIDs of a series, in InstanceNumber order."""
        items = self._call(self.client.search_for_instances, study_instance_uid=study_uid,
                           series_instance_uid=series_uid, fields=["InstanceNumber"], get_remaining=True)
        rows = []
        for i in items:
            number = _value(i, "InstanceNumber", None)
            rows.append((int(number) if number not in (None, "") else 0, _value(i, "SOPInstanceUID")))
        return [uid for _, uid in sorted(rows)]

    def retrieve_series(self, study_uid: str, series_uid: str, progress: Optional[ProgressFn] = None,
                        cancelled: Optional[CancelledFn] = None) -> Path:
        progress = progress or no_progress
        if self.cache.is_complete(study_uid, series_uid):
            self.cache.touch(study_uid, series_uid)
            progress(1.0, "From the cache")
            return self.cache.series_dir(study_uid, series_uid)
        sops = self._instances(study_uid, series_uid)
        if not sops:
            raise PacsError(self.name, f"series {series_uid} has no instances")
        n = len(sops)
        middle = sops[n // 2]
        done = sum(self.cache.has(study_uid, series_uid, s) for s in sops)
        if not self.cache.has(study_uid, series_uid, middle):
            ds = self._call(self.client.retrieve_instance, study_uid, series_uid, middle)
            self.cache.write(study_uid, series_uid, middle, dataset=ds)
            done += 1
        progress(done / n, f"First slice: {done}/{n}")
        missing = [s for s in sops if not self.cache.has(study_uid, series_uid, s)]
        if missing and len(missing) < n // 2:
            for sop in missing:  # resuming: only what is missing
                check_cancelled(cancelled)
                ds = self._call(self.client.retrieve_instance, study_uid, series_uid, sop)
                self.cache.write(study_uid, series_uid, sop, dataset=ds)
                done += 1
                progress(done / n, f"Retrieved {done}/{n}")
        elif missing:
            stream = self._call(self.client.iter_series, study_uid, series_uid)
            try:
                while True:
                    check_cancelled(cancelled)
                    ds = self._call(next, stream, None)
                    if ds is None:
                        break
                    sop = str(ds.SOPInstanceUID)
                    if not self.cache.has(study_uid, series_uid, sop):
                        self.cache.write(study_uid, series_uid, sop, dataset=ds)
                        done += 1
                        progress(min(done, n) / n, f"Retrieved {min(done, n)}/{n}")
            except Cancelled:
                stream.close()
                raise
        self.cache.mark_complete(study_uid, series_uid, n)
        progress(1.0, f"Retrieved {n} instance(s)")
        return self.cache.series_dir(study_uid, series_uid)

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
