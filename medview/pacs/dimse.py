"""DIMSE source (C-ECHO, C-FIND, C-GET or C-MOVE, C-STORE) through pynetdicom."""

from __future__ import annotations

import logging
import socket
from pathlib import Path
from typing import Optional

from medview.pacs.cache import DicomCache
from medview.pacs.model import PacsError, SeriesResult, StudyQuery, StudyResult
from medview.pacs.source import InstanceSink, RemoteSource, SourceConfig
from medview.progress import Cancelled, CancelledFn, ProgressFn, no_progress

# storage classes we accept on C-GET / C-MOVE (a presentation context each; max 128 in all)
_STORAGE = ("MRImageStorage", "CTImageStorage", "EnhancedMRImageStorage", "EnhancedCTImageStorage",
            "SegmentationStorage", "BasicTextSRStorage", "EnhancedSRStorage", "ComprehensiveSRStorage",
            "Comprehensive3DSRStorage", "SecondaryCaptureImageStorage",
            "MultiFrameGrayscaleByteSecondaryCaptureImageStorage",
            "MultiFrameGrayscaleWordSecondaryCaptureImageStorage",
            "MultiFrameTrueColorSecondaryCaptureImageStorage", "DigitalXRayImageStorageForPresentation",
            "ComputedRadiographyImageStorage", "DigitalMammographyXRayImageStorageForPresentation",
            "UltrasoundImageStorage", "UltrasoundMultiFrameImageStorage", "PositronEmissionTomographyImageStorage",
            "NuclearMedicineImageStorage", "XRayAngiographicImageStorage", "VLPhotographicImageStorage",
            "RTStructureSetStorage", "EncapsulatedPDFStorage", "EnhancedMRColorImageStorage")

# transfer syntaxes we accept on C-GET: uncompressed and the common compressed ones pydicom decodes.
# Proposing all 45 of pynetdicom's for 25 storage classes makes the association request ~1000
# items and its set-up ~0.1 s on loopback; anything else stored on the peer is transcoded by it.
RETRIEVE_SYNTAXES = ("1.2.840.10008.1.2.1", "1.2.840.10008.1.2", "1.2.840.10008.1.2.1.99", "1.2.840.10008.1.2.2",
                     "1.2.840.10008.1.2.4.50", "1.2.840.10008.1.2.4.51", "1.2.840.10008.1.2.4.57",
                     "1.2.840.10008.1.2.4.70", "1.2.840.10008.1.2.4.80", "1.2.840.10008.1.2.4.81",
                     "1.2.840.10008.1.2.4.90", "1.2.840.10008.1.2.4.91", "1.2.840.10008.1.2.5")

logging.getLogger("pynetdicom").setLevel(logging.WARNING)


def _storage_uids() -> list[str]:
    from pynetdicom import sop_class

    return [getattr(sop_class, n) for n in _STORAGE if hasattr(sop_class, n)]


def _text(ds, keyword: str, default=""):
    value = getattr(ds, keyword, None)
    if value is None or value == "":
        return default
    return str(value)


class DimseSource(RemoteSource):
    def __init__(self, config: SourceConfig, cache: DicomCache):
        # imported here, once: two retrieve threads importing pynetdicom at the same moment
        # trip over its circular imports
        import pynetdicom.sop_class  # noqa: F401
        from pynetdicom import AE, evt  # noqa: F401

        self.config = config
        self.cache = cache

    # -- association -------------------------------------------------------------------------
    def _ae(self):
        from pynetdicom import AE

        ae = AE(ae_title=self.config.calling_aet)
        t = self.config.timeout
        ae.acse_timeout = ae.dimse_timeout = ae.network_timeout = t
        ae.connection_timeout = t
        return ae

    def _associate(self, ae, **kwargs):
        assoc = ae.associate(self.config.host, int(self.config.port), ae_title=self.config.called_aet, **kwargs)
        if assoc.is_established:
            return assoc
        if assoc.is_rejected:
            raise PacsError(self.name, f"association rejected (our AE title {self.config.calling_aet!r} "
                                       f"or called AE title {self.config.called_aet!r} not accepted)")
        if assoc.is_aborted and self._port_open():
            raise PacsError(self.name, "association aborted by the peer (not a DICOM server on that port, "
                                       "or it refuses our AE title)")
        raise PacsError(self.name, f"cannot connect (no DICOM peer at {self.config.host}:{self.config.port}, "
                                   f"or no answer within {self.config.timeout:g} s)")

    def _port_open(self) -> bool:
        """Whether anything listens at host:port (pynetdicom reports a refused TCP connection as
        an aborted association)."""
        try:
            with socket.create_connection((self.config.host, int(self.config.port)), timeout=self.config.timeout):
                return True
        except OSError:
            return False

    def echo(self) -> None:
        from pynetdicom.sop_class import Verification

        ae = self._ae()
        ae.add_requested_context(Verification)
        assoc = self._associate(ae)
        try:
            status = assoc.send_c_echo()
        finally:
            assoc.release()
        if not status or status.Status != 0:
            raise PacsError(self.name, "C-ECHO failed (no answer or an error status)")

    # -- query -------------------------------------------------------------------------------
    def _find(self, identifier) -> list:
        from pynetdicom.sop_class import StudyRootQueryRetrieveInformationModelFind as FindModel

        ae = self._ae()
        ae.add_requested_context(FindModel)
        assoc = self._associate(ae)
        out = []
        try:
            for status, answer in assoc.send_c_find(identifier, FindModel):
                if not status:
                    raise PacsError(self.name, "C-FIND: no answer (timeout or association lost)")
                code = status.Status
                if code in (0xFF00, 0xFF01) and answer is not None:
                    out.append(answer)
                elif code != 0:
                    raise PacsError(self.name, f"C-FIND refused (status 0x{code:04X})")
        finally:
            if assoc.is_established:
                assoc.release()
        return out

    def find_studies(self, query: StudyQuery) -> list[StudyResult]:
        from pydicom.dataset import Dataset

        q = Dataset()
        q.QueryRetrieveLevel = "STUDY"
        q.StudyInstanceUID = query.study_uid or ""
        q.PatientID = query.patient_id or ""
        q.PatientName = query.patient_name or ""
        q.StudyDate = query.date_range()
        q.ModalitiesInStudy = query.modality or ""
        q.AccessionNumber = query.accession or ""
        q.StudyDescription = ""
        q.NumberOfStudyRelatedSeries = ""
        q.NumberOfStudyRelatedInstances = ""
        out = []
        for a in self._find(q):
            mods = a.get("ModalitiesInStudy", [])
            mods = [str(m) for m in mods] if not isinstance(mods, str) else [m for m in mods.split("\\") if m]
            out.append(StudyResult(study_uid=_text(a, "StudyInstanceUID"), patient_id=_text(a, "PatientID"),
                                   patient_name=_text(a, "PatientName"), study_date=_text(a, "StudyDate"),
                                   description=_text(a, "StudyDescription"),
                                   accession=_text(a, "AccessionNumber"), modalities=sorted(mods),
                                   n_series=int(_text(a, "NumberOfStudyRelatedSeries", 0) or 0),
                                   n_instances=int(_text(a, "NumberOfStudyRelatedInstances", 0) or 0)))
        return sorted((s for s in out if query.matches(s)), key=lambda s: (s.study_date, s.study_uid))

    def find_series(self, study_uid: str) -> list[SeriesResult]:
        from pydicom.dataset import Dataset

        q = Dataset()
        q.QueryRetrieveLevel = "SERIES"
        q.StudyInstanceUID = study_uid
        q.SeriesInstanceUID = ""
        q.Modality = ""
        q.SeriesDescription = ""
        q.SeriesNumber = ""
        q.Manufacturer = ""
        q.NumberOfSeriesRelatedInstances = ""
        out = []
        for a in self._find(q):
            number = _text(a, "SeriesNumber", None)
            out.append(SeriesResult(series_uid=_text(a, "SeriesInstanceUID"), study_uid=study_uid,
                                    modality=_text(a, "Modality"), description=_text(a, "SeriesDescription"),
                                    number=int(float(number)) if number else None,
                                    n_instances=int(_text(a, "NumberOfSeriesRelatedInstances", 0) or 0),
                                    manufacturer=_text(a, "Manufacturer")))
        return sorted(out, key=lambda s: (s.number is None, s.number or 0, s.series_uid))

    def list_instances(self, study_uid: str, series_uid: str) -> list[str]:
        from pydicom.dataset import Dataset

        q = Dataset()
        q.QueryRetrieveLevel = "IMAGE"
        q.StudyInstanceUID = study_uid
        q.SeriesInstanceUID = series_uid
        q.SOPInstanceUID = ""
        q.InstanceNumber = ""
        rows = [(int(_text(a, "InstanceNumber", 0) or 0), _text(a, "SOPInstanceUID")) for a in self._find(q)]
        return [uid for _, uid in sorted(rows)]

    # -- retrieve ----------------------------------------------------------------------------
    def can_stream_beside(self) -> bool:
        return self.config.retrieve != "move"

    def fetch_instances(self, study_uid: str, series_uid: str, sop_uids: Optional[list[str]],
                        sink: InstanceSink, cancelled: Optional[CancelledFn] = None) -> None:
        from pydicom.dataset import Dataset
        from pynetdicom import evt

        def on_store(event):
            try:
                sink(str(event.request.AffectedSOPInstanceUID), data=event.encoded_dataset())
            except OSError:
                return 0xA700  # out of resources (our disk): the peer reports it as a failure
            return 0x0000

        handlers = [(evt.EVT_C_STORE, on_store)]
        for sop in sop_uids if sop_uids is not None else [None]:
            q = Dataset()
            q.QueryRetrieveLevel = "IMAGE" if sop else "SERIES"
            q.StudyInstanceUID = study_uid
            q.SeriesInstanceUID = series_uid
            if sop:
                q.SOPInstanceUID = sop
            if self.config.retrieve == "move":
                self._move(q, handlers, cancelled)
            else:
                self._get(q, handlers, cancelled)

    def _get(self, q, handlers, cancelled) -> None:
        from pynetdicom import build_role
        from pynetdicom.sop_class import StudyRootQueryRetrieveInformationModelGet as GetModel

        ae = self._ae()
        ae.add_requested_context(GetModel)
        roles = []
        for uid in _storage_uids():
            ae.add_requested_context(uid, list(RETRIEVE_SYNTAXES))
            roles.append(build_role(uid, scp_role=True))
        assoc = self._associate(ae, ext_neg=roles, evt_handlers=handlers)
        self._drain(assoc, assoc.send_c_get(q, GetModel), cancelled, "C-GET")

    def _move(self, q, handlers, cancelled) -> None:
        from pynetdicom import ALL_TRANSFER_SYNTAXES
        from pynetdicom.sop_class import StudyRootQueryRetrieveInformationModelMove as MoveModel

        scp = self._ae()
        for uid in _storage_uids():
            scp.add_supported_context(uid, ALL_TRANSFER_SYNTAXES[:])
        try:
            server = scp.start_server(("127.0.0.1" if _loopback(self.config.host) else "",
                                       int(self.config.move_port)), block=False, evt_handlers=handlers)
        except OSError as exc:
            raise PacsError(self.name, f"cannot listen for C-MOVE on port {self.config.move_port}: "
                                       f"{exc.strerror}") from None
        try:
            ae = self._ae()
            ae.add_requested_context(MoveModel)
            assoc = self._associate(ae)
            self._drain(assoc, assoc.send_c_move(q, self.config.calling_aet, MoveModel), cancelled, "C-MOVE")
        finally:
            server.shutdown()

    def _drain(self, assoc, responses, cancelled, what: str) -> None:
        try:
            for status, _ in responses:
                if cancelled is not None and cancelled():
                    assoc.abort()
                    raise Cancelled("cancelled by user")
                if not status:
                    raise PacsError(self.name, f"{what}: no answer (timeout or association lost)")
                code = status.Status
                if code in (0xFF00, 0x0000):
                    continue
                if code == 0xA801:
                    raise PacsError(self.name, f"{what} refused: the peer does not know our AE title "
                                               f"{self.config.calling_aet!r} as a move destination")
                if code == 0xB000:
                    raise PacsError(self.name, f"{what}: some instances failed (status 0xB000)")
                raise PacsError(self.name, f"{what} failed (status 0x{code:04X})")
        finally:
            if assoc.is_established:
                assoc.release()

    # -- store -------------------------------------------------------------------------------
    def store(self, files: list[Path], progress: Optional[ProgressFn] = None) -> int:
        import pydicom

        progress = progress or no_progress
        datasets = [pydicom.dcmread(str(f)) for f in files]
        ae = self._ae()
        for uid, ts in sorted({(str(d.SOPClassUID), str(d.file_meta.TransferSyntaxUID)) for d in datasets}):
            ae.add_requested_context(uid, [ts])
        assoc = self._associate(ae)
        stored = 0
        try:
            for i, (path, ds) in enumerate(zip(files, datasets, strict=True)):
                status = assoc.send_c_store(ds)
                if not status:
                    raise PacsError(self.name, f"C-STORE of {path}: no answer (timeout or association lost)")
                if status.Status not in (0x0000, 0xB000, 0xB007, 0xB006):
                    raise PacsError(self.name, f"C-STORE of {path} refused (status 0x{status.Status:04X})")
                stored += 1
                self.cache.invalidate(str(ds.StudyInstanceUID), str(ds.SeriesInstanceUID))
                progress((i + 1) / len(files), f"Stored {i + 1}/{len(files)}")
        finally:
            if assoc.is_established:
                assoc.release()
        return stored


def _loopback(host: str) -> bool:
    return host in ("127.0.0.1", "localhost", "::1")
