"""The PACS worklist with a real local Orthanc: search, open (retrieved on a worker, middle slice
first, then opened like a folder), cancel, send an annotation back as SEG, see it flagged and as an
overlay on reopening, and a down server listing the cached studies."""

from __future__ import annotations

import numpy as np
import pytest
from PySide6.QtCore import QTimer

from medview.config import sample_study_dir
from medview.pacs.cache import DicomCache
from medview.pacs.orthanc import LocalOrthanc, free_port, missing_reason
from medview.pacs.source import SourceConfig

SAMPLE = sample_study_dir() / "study"


@pytest.fixture(scope="module")
def orthanc():
    reason = missing_reason()
    if reason:
        pytest.skip(reason)
    server = LocalOrthanc().start()
    try:
        server.upload([SAMPLE])
        yield server
    finally:
        server.stop()


@pytest.fixture
def worklist(main_window, orthanc, tmp_path):
    from medview.ui.worklist import show_worklist

    panel = show_worklist(main_window, DicomCache(tmp_path / "cache"))
    panel.add_source(SourceConfig(name="local-web", kind="dicomweb", url=orthanc.dicomweb_url))
    return panel


def _search(qtbot, panel, **fields) -> int:
    for name, value in fields.items():
        getattr(panel, name).setText(value)
    with qtbot.waitSignal(panel.searched, timeout=20000) as sig:
        panel.search_button.click()
    return sig.args[0]


def _cell(panel, row: int, column: str) -> str:
    from medview.ui.worklist import COLUMNS

    return panel.table.item(row, COLUMNS.index(column)).text()


def test_search_open_streams_middle_slice_then_the_study(qtbot, main_window, worklist):
    assert _search(qtbot, worklist, patient_name="nobody*") == 0
    assert _search(qtbot, worklist, patient_name="albus*", date_from="20200101", date_to="20201231") == 1
    assert (_cell(worklist, 0, "Patient"), _cell(worklist, 0, "Patient ID")) == ("Albus Dumbledore", "PGBM-003")
    assert (_cell(worklist, 0, "Date"), _cell(worklist, 0, "Modalities"), _cell(worklist, 0, "Series")) == \
        ("2020-01-21", "MR", "2")
    assert _cell(worklist, 0, "MedView results") == ""

    ticks = []  # the GUI thread keeps running while the study is retrieved
    timer = QTimer()
    timer.timeout.connect(lambda: ticks.append(1))
    timer.start(5)
    order = []
    worklist.first_slice_shown.connect(lambda: order.append(("first", main_window.state.volume is None)))
    main_window.volume_loaded.connect(lambda vol: order.append(("volume", vol.shape)))
    with qtbot.waitSignal(main_window.volume_loaded, timeout=60000):
        worklist.open_button.click()
    timer.stop()
    assert order[0] == ("first", True)  # the middle slice was on screen before any volume
    assert order[1][0] == "volume" and order[1][1][0] in (22, 40)
    assert len(ticks) > 5
    study_dir = worklist.cache.study_dir(worklist.studies[0].study_uid)
    assert len(list(study_dir.rglob("*.dcm"))) == 62
    assert main_window.browser.topLevelItemCount() >= 1  # the study browser lists the cached study


def test_cancel_stops_the_retrieve(qtbot, main_window, worklist):
    _search(qtbot, worklist, patient_id="PGBM-003")
    worklist.first_slice_shown.connect(worklist.cancel_button.click)  # cancel as soon as it shows
    with qtbot.waitSignal(worklist.first_slice_shown, timeout=30000):
        worklist.open_button.click()
    qtbot.waitUntil(lambda: not worklist.is_busy(), timeout=30000)
    assert worklist.status.text() == "Cancelled"
    uid = worklist.studies[0].study_uid
    folders = [d for d in worklist.cache.study_dir(uid).iterdir() if d.is_dir()]
    assert not all((d / ".complete").exists() for d in folders) or len(folders) < 2
    assert main_window.state.volume is None  # nothing was opened


def test_send_annotation_flags_the_study_and_reopens_as_overlay(qtbot, main_window, worklist, tmp_path):
    from medview.annotation.labelmap import LabelMap
    from medview.pacs.results import annotation_seg

    _search(qtbot, worklist, patient_id="PGBM-003")
    with qtbot.waitSignal(main_window.volume_loaded, timeout=60000):
        worklist.open_button.click()
    vol = main_window.state.volume
    arr = np.zeros(vol.shape, np.uint8)
    z, y, x = (s // 2 for s in vol.shape)
    arr[z - 1:z + 2, y - 6:y + 6, x - 6:x + 6] = 1
    lm = LabelMap.from_array(vol, arr)
    with qtbot.waitSignal(worklist.searched, timeout=30000):  # sent, then searched again
        with qtbot.waitSignal(worklist.sent, timeout=30000):
            worklist.send(lambda path: annotation_seg(lm, path))
    assert _cell(worklist, 0, "MedView results") == "yes" and "SEG" in _cell(worklist, 0, "Modalities")

    # reopen from the server into a fresh cache: the SEG comes with the study, shown as an overlay
    worklist.cache = DicomCache(tmp_path / "cache2")
    main_window.state.set_volume(None)
    worklist.open_button.click()
    qtbot.waitUntil(lambda: any(la.name.startswith("overlay:") for la in main_window.state.layers()),
                    timeout=60000)
    shown = main_window.state.volume
    assert shown.meta.get("SeriesInstanceUID") == vol.meta.get("SeriesInstanceUID")
    layer = next(la for la in main_window.state.layers() if la.name.startswith("overlay:"))
    assert np.array_equal(np.asarray(layer.volume.array) > 0, arr > 0)


def test_down_server_is_one_line_and_lists_the_cached_studies(qtbot, main_window, worklist):
    _search(qtbot, worklist, patient_id="PGBM-003")
    with qtbot.waitSignal(main_window.volume_loaded, timeout=60000):
        worklist.open_button.click()
    worklist.add_source(SourceConfig(name="down", kind="dicomweb", url=f"http://127.0.0.1:{free_port()}/dicom-web",
                                     timeout=3))
    errors = []
    worklist.failed.connect(errors.append)
    assert _search(qtbot, worklist, patient_id="PGBM-003") == 1
    assert len(errors) == 1 and "cannot connect" in errors[0] and "\n" not in errors[0]
    assert "from the cache (offline)" in worklist.status.text()
    assert _cell(worklist, 0, "Patient ID") == "PGBM-003"


def test_send_report_stores_an_sr_of_the_measurements(qtbot, main_window, worklist, tmp_path):
    """Send report (SR): the session's ruler goes to the server as a TID 1500 SR that reads back."""
    import pydicom

    from medview.reporting.measurements import make_record
    from medview.reporting.sr import read_sr
    from medview.ui.report_actions import install
    from medview.ui.worklist import open_source

    install(main_window)
    _search(qtbot, worklist, patient_id="PGBM-003")
    with qtbot.waitSignal(main_window.volume_loaded, timeout=60000):
        worklist.open_button.click()
    vol = main_window.state.volume
    ruler = make_record(vol, "ruler", (10, 20, 3), (60, 80, 3), name="sent diameter")
    main_window.report_actions.add_records([ruler])
    with qtbot.waitSignal(worklist.searched, timeout=30000):
        with qtbot.waitSignal(worklist.sent, timeout=30000) as sent:
            worklist.send_sr_button.click()
    assert sent.args[0] >= 1
    assert "SR" in _cell(worklist, 0, "Modalities")
    # retrieved into a fresh cache, the SR is there and reads back as the ruler on its series
    fresh = DicomCache(tmp_path / "cache-sr")
    src = open_source(worklist.current_config(), fresh)
    study_uid = vol.meta["StudyInstanceUID"]
    src.retrieve_study(study_uid, None, None)
    srs = [p for p in fresh.study_dir(study_uid).rglob("*.dcm")
           if getattr(pydicom.dcmread(p, stop_before_pixels=True), "Modality", "") == "SR"]
    assert srs
    content = read_sr(srs[0], vol)
    assert any(abs(m.values.get("length_mm", 0) - ruler.values["length_mm"]) < 1e-3 for m in content.measurements)
