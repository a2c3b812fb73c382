"""The Report menu in the real window (offscreen): measurements persist per series, SR / CSV /
report / RTSTRUCT / de-identified exports, the audit trail and its dialog."""

from __future__ import annotations

import pydicom
import pytest

from .conftest import SERIES, needs_series

pytestmark = [pytest.mark.gui, needs_series]


def _open_window(qtbot):
    from PySide6.QtWidgets import QApplication

    from medview.ui.app import _install_panels
    from medview.ui.main_window import MainWindow

    win = MainWindow()
    win.quiet_errors = True
    win.resize(1300, 850)
    qtbot.addWidget(win)
    _install_panels(win)
    win.show()
    qtbot.waitExposed(win)
    with qtbot.waitSignal(win.volume_loaded, timeout=60000):
        win.open_path(str(SERIES))
    QApplication.processEvents()
    return win


def _close(win) -> None:
    panel = win.side_panel("Annotation")
    if panel is not None:
        panel.shutdown()
    win.close()


@pytest.fixture
def window(qtbot):
    win = _open_window(qtbot)
    yield win
    _close(win)


def test_menu_exports_and_measurements_persist(window, qtbot, tmp_path):
    from PySide6.QtWidgets import QApplication

    from medview.reporting.audit import read_log
    from medview.reporting.sr import read_sr
    from medview.ui.viewer_state import Measurement

    ra = window.report_actions
    titles = [a.text() for a in ra.menu.actions() if a.text()]
    for t in ("Export report (DICOM SR)...", "Export de-identified...", "Audit trail...",
              "Export one-page report (PDF/HTML)...", "Export label map as RTSTRUCT..."):
        assert t in titles
    state = window.state
    state.add_measurement(Measurement("ruler", "axial", 5, (10.0, 20.0, 5.0), (100.0, 120.0, 5.0)))
    state.add_measurement(Measurement("ellipse", "axial", 8, (60.0, 60.0, 8.0), (120.0, 100.0, 8.0)))
    qtbot.waitUntil(lambda: ra.measurements_path() is not None and ra.measurements_path().is_file(), timeout=5000)
    length = ra.records()[0].values["length_mm"]

    assert ra.add_key_image() is not None
    ra.export_sr(tmp_path / "sr.dcm")
    ra.export_report(tmp_path / "report.pdf")
    ra.export_csv(tmp_path / "m.csv")
    ra.export_deidentified(tmp_path / "deid")
    assert ra.wait_idle(120)
    content = read_sr(tmp_path / "sr.dcm", state.volume)
    assert sorted(r.kind for r in content.measurements) == ["ellipse", "ruler"]
    from pypdf import PdfReader

    text = PdfReader(str(tmp_path / "report.pdf")).pages[0].extract_text()
    assert f"length {length:.1f} mm" in text and "axial slice 6" in text  # the key image's caption
    assert len(list((tmp_path / "deid").glob("*.dcm"))) == 22
    assert all(pydicom.dcmread(p).PatientIdentityRemoved == "YES" for p in (tmp_path / "deid").glob("*.dcm"))

    # measurements come back when the series is opened in the next session; SR ones open on it too
    _close(window)
    again = _open_window(qtbot)
    try:
        state, ra = again.state, again.report_actions
        QApplication.processEvents()
        assert sorted(m.kind for m in state.measurements) == ["ellipse", "ruler"]
        assert ra.records()[0].values["length_mm"] == pytest.approx(length)
        state.clear_measurements()
        assert ra.import_sr(tmp_path / "sr.dcm") == 2
        assert sorted(m.kind for m in state.measurements) == ["ellipse", "ruler"]
        actions = [e["action"] for e in read_log()]
        assert actions.count("open") == 2 and "deidentify" in actions
        assert sorted(e["detail"].get("format") for e in read_log() if e["action"] == "export") == \
            ["CSV", "DICOM SR", "report"]
        dlg = ra.show_audit()
        assert dlg.table.rowCount() == len(read_log()) and "no entry was changed" in dlg.status_label.text()
        dlg.close()
    finally:
        _close(again)


def test_rtstruct_export_and_import_as_layer(window, qtbot, tmp_path, tcia_labels):
    from medview.reporting.rtstruct import export_rtstruct

    ra = window.report_actions
    rt = export_rtstruct(tcia_labels, tmp_path / "rt.dcm")
    ra.import_rtstruct(rt)
    assert ra.wait_idle(60)
    layer = window.state.layer("RTSTRUCT rt")
    assert layer is not None and layer.names == {1: "bright tissue", 2: "dark region"}
    assert (layer.volume.array == tcia_labels.array).all()
