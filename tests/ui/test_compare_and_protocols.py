"""Prior comparison beside the current study, chosen by a hanging protocol, and its links."""

from __future__ import annotations

import shutil

import numpy as np
import pytest
from PySide6.QtWidgets import QApplication

from medview.io.volume import Volume
from medview.ui.compare_view import linked_cursor

pytestmark = pytest.mark.gui


@pytest.fixture
def study_with_prior(shared_data, tmp_path):
    """Two series of a real MR study and a 'prior' copy of its T1post (other study UID/date)."""
    import pydicom
    from pydicom.uid import generate_uid

    study = shared_data / "dicom" / "mr-brain-tcia" / "Study1"
    if not study.is_dir():
        pytest.skip(f"{study} not found")
    out = tmp_path / "patient"
    for name in ("12-T1post-05670", "37916-T2reg-88910"):
        shutil.copytree(study / name, out / "current" / name)
    prior = out / "prior" / "T1post"
    prior.mkdir(parents=True)
    study_uid, series_uid = generate_uid(), generate_uid()
    for f in sorted((study / "12-T1post-05670").iterdir()):
        ds = pydicom.dcmread(f)
        ds.StudyInstanceUID, ds.SeriesInstanceUID = study_uid, series_uid
        ds.SOPInstanceUID = generate_uid()
        ds.file_meta.MediaStorageSOPInstanceUID = ds.SOPInstanceUID
        ds.StudyDate = "20190101"
        ds.save_as(prior / f.name)
    return out


def test_protocol_opens_t1post_with_its_prior_beside_linked(main_window, study_with_prior, qtbot):
    win = main_window
    with qtbot.waitSignal(win.compare.loaded, timeout=90000):
        win.open_path(str(study_with_prior))
    assert win.protocol is not None and win.protocol.name.startswith("MR brain")
    main, prior = win.state.volume, win.compare.state.volume
    assert main.meta["SeriesDescription"] == "T1post" and main.meta["StudyDate"] != "20190101"
    assert prior.meta["StudyDate"] == "20190101"
    assert win.compare.isVisible() and win.compare.link_box.currentText() == "world"
    # crosshair: same world point
    win.state.set_cursor((100, 300, 7))
    assert win.compare.state.cursor == (100, 300, 7)
    # window/level and zoom follow
    win.state.set_window(321.0, 123.0)
    assert win.compare.state.window == (321.0, 123.0)
    ax = win.viewer.view("axial")
    ax.vb.setRange(xRange=(50, 120), yRange=(60, 130), padding=0)
    QApplication.processEvents()
    # the same magnification (mm per screen pixel) about the same centre
    assert win.compare.view.vb.viewPixelSize()[0] == pytest.approx(ax.vb.viewPixelSize()[0], rel=0.05)
    assert np.mean(win.compare.view.vb.viewRange()[0]) == pytest.approx(85.0, abs=1.0)
    win.compare.sync_wl.setChecked(False)
    win.state.set_window(500.0, 200.0)
    assert win.compare.state.window == (321.0, 123.0)
    # switching protocol / saving the current layout as one
    p = win.current_protocol("my reading")
    assert p.layout == win.state.layout and p.compare["study"] == "prior"
    win.compare.close_comparison()
    assert not win.compare.isVisible()


def test_link_by_slice_index_on_another_grid():
    a = Volume(np.zeros((20, 64, 64), np.int16), spacing=(1, 1, 2))
    b = Volume(np.zeros((40, 32, 32), np.int16), spacing=(2, 2, 1), origin=(5, 5, 5))
    ijk = linked_cursor(a, (31, 15, 10), b, "index", normal_axis=2)
    assert ijk[2] == 10 and ijk[0] == pytest.approx((31.5 / 64) * 32 - 0.5)
    w = linked_cursor(a, (31, 15, 10), b, "world")
    assert np.allclose(b.index_to_world(w), a.index_to_world((31, 15, 10)))
    assert linked_cursor(a, (1, 1, 1), b, "off") is None
