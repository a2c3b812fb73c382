"""PACS retrieve speed through medview.pacs vs the bare libraries, against a local Orthanc.

Starts a throw-away Orthanc (medview.pacs.orthanc.LocalOrthanc), loads the 22-slice TCIA series
(../shared/data/dicom/mr-brain-tcia/Study1/12-T1post-05670) and times, interleaved round by round:
  - web-medview:  DicomWebSource.retrieve_series into an empty cache (QIDO-RS instance list, the
                  middle instance, then the series as one WADO-RS multipart stream, written to disk)
  - web-bare:     dicomweb-client iter_series of the same series, each instance saved to disk
  - dimse-medview: DimseSource (C-FIND instance list, C-GET of the middle one, C-GET of the series)
  - dimse-bare:   pynetdicom C-GET of the series, each instance saved to disk
"first" is the time until the first slice is on disk and decoded (for medview: the middle slice
the viewer shows; for the bare clients: whichever instance comes first); "all" is the whole series.
Lines: per round, then medians; last line ratio=<max over protocols of medview all / bare all>
(goal <= 1.2); first-slice goal < 0.5 s.
"""

from __future__ import annotations

import statistics
import sys
import tempfile
import time
from pathlib import Path

SERIES = ("dicom", "mr-brain-tcia", "Study1", "12-T1post-05670")
ROUNDS = 7


def _decode(path: Path) -> None:
    import pydicom

    pydicom.dcmread(str(path)).pixel_array  # noqa: B018 - decoding is part of "first slice shown"


def medview_retrieve(cfg, study: str, series: str, workdir: Path) -> tuple[float, float]:
    from medview.pacs import open_source
    from medview.pacs.cache import DicomCache

    t0 = time.perf_counter()
    first: list[float] = []

    def on_first(path: Path) -> None:
        _decode(path)
        first.append(time.perf_counter() - t0)

    folder = open_source(cfg, DicomCache(workdir)).retrieve_series(study, series, on_first=on_first)
    total = time.perf_counter() - t0
    assert len(list(folder.glob("*.dcm"))) == 22
    return first[0], total


def web_bare(url: str, study: str, series: str, workdir: Path) -> tuple[float, float]:
    import requests
    from dicomweb_client.api import DICOMwebClient

    t0 = time.perf_counter()
    client = DICOMwebClient(url, session=requests.Session())
    first, n = None, 0
    for ds in client.iter_series(study, series):
        path = workdir / f"{ds.SOPInstanceUID}.dcm"
        ds.save_as(path, enforce_file_format=True)
        n += 1
        if first is None:
            _decode(path)
            first = time.perf_counter() - t0
    total = time.perf_counter() - t0
    assert n == 22
    return first, total


def dimse_bare(port: int, study: str, series: str, workdir: Path) -> tuple[float, float]:
    from pydicom.dataset import Dataset
    from pynetdicom import AE, build_role, evt
    from pynetdicom.sop_class import MRImageStorage
    from pynetdicom.sop_class import StudyRootQueryRetrieveInformationModelGet as GetModel

    t0 = time.perf_counter()
    first: list[float] = []
    got: list[Path] = []

    def on_store(event):
        path = workdir / f"{event.request.AffectedSOPInstanceUID}.dcm"
        path.write_bytes(event.encoded_dataset())
        got.append(path)
        if not first:
            _decode(path)
            first.append(time.perf_counter() - t0)
        return 0x0000

    ae = AE(ae_title="MEDVIEW")
    ae.add_requested_context(GetModel)
    ae.add_requested_context(MRImageStorage)
    assoc = ae.associate("127.0.0.1", port, ae_title="ORTHANC", ext_neg=[build_role(MRImageStorage, scp_role=True)],
                         evt_handlers=[(evt.EVT_C_STORE, on_store)])
    q = Dataset()
    q.QueryRetrieveLevel = "SERIES"
    q.StudyInstanceUID = study
    q.SeriesInstanceUID = series
    for _status, _ in assoc.send_c_get(q, GetModel):
        pass
    assoc.release()
    total = time.perf_counter() - t0
    assert len(got) == 22
    return first[0], total


def main() -> int:
    import pydicom

    from medview.config import data_dir
    from medview.pacs.orthanc import LocalOrthanc, missing_reason
    from medview.pacs.source import SourceConfig

    reason = missing_reason()
    folder = data_dir().joinpath(*SERIES)
    if reason or not folder.is_dir():
        print(f"skipped: {reason or f'{folder} not found'}")
        return 1
    ds = pydicom.dcmread(next(folder.glob("*.dcm")), stop_before_pixels=True)
    study, series = str(ds.StudyInstanceUID), str(ds.SeriesInstanceUID)
    with LocalOrthanc() as server, tempfile.TemporaryDirectory(prefix="medview-bench-pacs-") as tmp:
        n = server.upload([folder])
        print(f"Orthanc {server.http_url}: {n} instances of {folder.name}; {ROUNDS} interleaved rounds")
        web = SourceConfig(name="web", kind="dicomweb", url=server.dicomweb_url)
        dimse = SourceConfig(name="dimse", kind="dimse", host="127.0.0.1", port=server.dicom_port,
                             called_aet="ORTHANC", calling_aet=server.our_aet)
        runs = {
            "web-medview": lambda d: medview_retrieve(web, study, series, d),
            "web-bare": lambda d: web_bare(server.dicomweb_url, study, series, d),
            "dimse-medview": lambda d: medview_retrieve(dimse, study, series, d),
            "dimse-bare": lambda d: dimse_bare(server.dicom_port, study, series, d),
        }
        times: dict[str, list[tuple[float, float]]] = {k: [] for k in runs}
        for fn in runs.values():  # warm-up: imports, Orthanc's own caches
            fn(Path(tempfile.mkdtemp(dir=tmp)))
        for r in range(ROUNDS):
            for name, fn in runs.items():
                times[name].append(fn(Path(tempfile.mkdtemp(dir=tmp))))
            print(f"round {r + 1}: " + "  ".join(f"{k} first={v[-1][0]:.3f}s all={v[-1][1]:.3f}s"
                                                 for k, v in times.items()))
    med = {k: (statistics.median(f for f, _ in v), statistics.median(a for _, a in v)) for k, v in times.items()}
    for k, (f, a) in med.items():
        print(f"median {k}: first slice {f:.3f} s, whole series {a:.3f} s")
    ratios = {p: med[f"{p}-medview"][1] / med[f"{p}-bare"][1] for p in ("web", "dimse")}
    first = max(med["web-medview"][0], med["dimse-medview"][0])
    print(f"ratio_web={ratios['web']:.3f} ratio_dimse={ratios['dimse']:.3f} "
          "(medview / bare, whole series; goal <= 1.2)")
    print(f"first_slice={first:.3f}s (slowest protocol, medview; goal < 0.5 s)")
    print(f"ratio={max(ratios.values()):.3f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
