"""Regression tests for the viewer defects seen in the real window (issue 14, item 5)."""

from __future__ import annotations

import csv

import numpy as np
import pytest
from PIL import Image
from PySide6.QtCore import QPoint, QRect
from PySide6.QtWidgets import QApplication, QGraphicsView

from medview.io.volume import Volume
from medview.ui.viewer_state import Measurement
from tests.ui.conftest import drag, voxel_to_widget

pytestmark = pytest.mark.gui


def _png(path, value=100):
    a = np.full((40, 60), value, np.uint8)
    a[10:20, 10:30] = 200
    Image.fromarray(a).save(path)
    return path


def _open(win, qtbot, path):
    with qtbot.waitSignal(win.volume_loaded, timeout=30000):
        win.open_path(str(path))
    QApplication.processEvents()


def _volume(uid="1.2.3", shape=(10, 32, 32), meta=None):
    a = np.arange(np.prod(shape), dtype=np.int16).reshape(shape) % 500
    return Volume(a, spacing=(1.0, 1.0, 2.0), meta={"Modality": "CT", "SeriesInstanceUID": uid,
                                                     "SeriesDescription": f"series {uid}", **(meta or {})})


def test_views_repaint_whole_viewport_so_crosshair_leaves_no_trail(main_window):
    # minimal updates left stale crosshair pixels in coronal/sagittal after a navigate drag
    for v in main_window.viewer.views.values():
        assert v.viewportUpdateMode() == QGraphicsView.ViewportUpdateMode.FullViewportUpdate


def test_layout_comes_back_after_a_2d_image(main_window, t1_dir, tmp_path, qtbot):
    win = main_window
    assert win.state.layout == "1x3"
    _open(win, qtbot, _png(tmp_path / "photo.png"))
    assert win.state.layout == "1x1"
    _open(win, qtbot, t1_dir)
    assert win.state.layout == "1x3"
    assert all(win.viewer.view(n).isVisible() for n in ("axial", "coronal", "sagittal"))


def test_status_readouts_cleared_when_another_series_opens(main_window, tmp_path, qtbot):
    win = main_window
    _open(win, qtbot, _png(tmp_path / "a.png"))
    win._on_hover("axial", np.array([5.0, 5.0, 0.0]))
    assert win.value_label.text() and win.voxel_label.text()
    _open(win, qtbot, _png(tmp_path / "b.png", 30))
    assert (win.value_label.text(), win.voxel_label.text(), win.world_label.text()) == ("", "", "")


def test_browser_selects_the_opened_series_and_shows_its_whole_name(loaded_window):
    win = loaded_window
    it = win.browser.currentItem()
    assert it is not None and it.isSelected()
    assert it.data(0, 0x0100) == win.current_series.uid
    assert win.current_series.description in it.text(0)  # full name, on its own line
    assert win.browser.visualItemRect(it).intersects(win.browser.viewport().rect())  # scrolled to


def test_folder_of_images_is_one_folder_node_with_file_names(main_window, tmp_path, qtbot):
    d = tmp_path / "photos"
    d.mkdir()
    for n in range(6):
        _png(d / f"img_{n:02d}.png", 20 * n)
    _open(main_window, qtbot, d)
    b = main_window.browser
    assert b.topLevelItemCount() == 1
    top = b.topLevelItem(0)
    assert top.text(0) == "photos"
    assert [top.child(i).text(0) for i in range(top.childCount())] == [f"img_{n:02d}.png" for n in range(6)]


def test_measurements_stay_with_their_series_and_export_as_csv(main_window, tmp_path):
    win = main_window
    st = win.state
    a, b = _volume("A"), _volume("B")
    st.set_volume(a)
    st.add_measurement(Measurement("ruler", "axial", 5, (1.0, 1.0, 5.0), (11.0, 1.0, 5.0)))
    st.set_volume(b)
    assert st.measurements == []
    st.add_measurement(Measurement("rect", "axial", 2, (2.0, 2.0, 2.0), (8.0, 8.0, 2.0)))
    st.set_volume(a)  # opened again: its ruler is back
    assert [m.kind for m in st.measurements] == ["ruler"]
    n = win.export_measurements(tmp_path / "m.csv")
    rows = list(csv.DictReader(open(tmp_path / "m.csv")))
    assert n == 2 and {r["series_uid"] for r in rows} == {"A", "B"}
    ruler = next(r for r in rows if r["kind"] == "ruler")
    assert float(ruler["length_mm"]) == pytest.approx(10.0)


def test_measurement_labels_do_not_overlap(main_window):
    win = main_window
    st = win.state
    st.set_volume(_volume())
    for dy in (0.0, 0.5, 1.0):  # three rulers ending next to each other
        st.add_measurement(Measurement("ruler", "axial", 5, (2.0, 10.0 + dy, 5.0), (20.0, 10.0 + dy, 5.0)))
    QApplication.processEvents()
    view = win.viewer.view("axial")
    rects = [r for r in view._placed_labels]
    assert len(rects) == 3
    for i in range(3):
        for j in range(i + 1, 3):
            assert not rects[i].intersects(rects[j])


def test_corner_text_never_covers_the_orientation_letters(main_window):
    win = main_window
    win.state.set_volume(_volume(meta={"PatientName": "A_very^Long^Patient^Name^Indeed",
                                       "SeriesDescription": "an extremely long series description " * 3}))
    win.state.set_window(123456.789, -98765.4321)
    view = win.viewer.view("coronal")
    view.resize(230, 300)
    view._place_labels()
    QApplication.processEvents()

    def rect(w):
        return QRect(w.pos(), w.size())

    letters = [rect(x) for x in view.orientation_labels.values() if x.text()]
    texts = [rect(view.wl_label), rect(view.info_label)] + [rect(x) for x in view.corner_labels.values() if x.text()]
    assert letters and texts
    for t in texts:
        for letter in letters:
            assert not t.intersects(letter), (t, letter)


def test_stored_window_that_does_not_fit_the_data_falls_back_to_auto(main_window):
    a = np.random.default_rng(0).integers(2, 155, (6, 40, 40)).astype(np.int16)
    vol = Volume(a, meta={"Modality": "MR", "WindowWidth": 950, "WindowCenter": 470})
    main_window.state.set_volume(vol)
    w, level = main_window.state.window
    assert level < 160 and w < 200  # the data's range, not W950/C470 (black)
    assert main_window.state.window_source.startswith("auto (stored window W950/C470")


def test_status_messages_reach_the_status_bar(main_window):
    main_window.state.status_message.emit("brush: label 2 painted")
    assert main_window.statusBar().currentMessage() == "brush: label 2 painted"


def test_ruler_can_start_inside_an_roi(main_window):
    win = main_window
    st = win.state
    st.set_volume(_volume(shape=(4, 64, 64)))
    QApplication.processEvents()
    view = win.viewer.view("axial")
    k = view.slice_index
    roi = st.add_measurement(Measurement("rect", "axial", k, (5.0, 5.0, k), (55.0, 55.0, k)))
    st.set_tool("ruler")
    drag(view, voxel_to_widget(view, (20, 20, k)), voxel_to_widget(view, (40, 30, k)))
    assert [m.kind for m in st.measurements] == ["rect", "ruler"]
    assert st.measurements[0].p0 == roi.p0 and st.measurements[0].p1 == roi.p1  # ROI not moved
    # on its outline the ROI is still picked
    x, y = view.geom.voxel_to_scene((5.0, 30.0, k))
    from PySide6.QtCore import QPointF

    assert view.measurement_at(QPointF(x, y)) == roi.id


def test_failed_open_keeps_the_image_and_the_browser(loaded_window, tmp_path, qtbot):
    win = loaded_window
    vol = win.state.volume
    n_items = win.browser.topLevelItemCount()
    bad = tmp_path / "junk"
    bad.mkdir()
    (bad / "notes.txt").write_text("not an image")
    with qtbot.waitSignal(win.load_failed, timeout=30000):
        win.open_path(str(bad))
    assert win.state.volume is vol
    assert win.browser.topLevelItemCount() == n_items and n_items > 0


def test_side_panels_fit_the_default_window_without_sideways_scrolling(panels_window):
    win = panels_window
    QApplication.processEvents()
    from PySide6.QtWidgets import QScrollArea

    for i in range(win.side_tabs.count()):
        win.side_tabs.setCurrentIndex(i)
        QApplication.processEvents()
        area = win.side_tabs.widget(i)
        assert isinstance(area, QScrollArea)
        need = area.widget().minimumSizeHint().width()
        assert need <= area.viewport().width() + 1, (win.side_tabs.tabText(i), need, area.viewport().width())
    assert win.viewer.width() > 600  # the image keeps most of the window
    _ = QPoint


def test_narrow_view_keeps_the_slice_index_whole(main_window):
    """Seen in the real window at 1x3: "Coronal 161/32" (the title was cut at the orientation letter,
    reading as slice 161 of 32). The name shortens or goes; the index never loses a digit."""
    win = main_window
    win.state.set_volume(_volume())
    view = win.viewer.view("coronal")
    index = view._info_index
    assert index and "/" in index
    for width in (600, 230, 150, 90):
        view.resize(width, 300)
        view._place_labels()
        QApplication.processEvents()
        text = view.info_label.text()
        assert text.endswith(index), (width, text)
        if width == 600:
            assert text.startswith("Coronal")
    assert view.info_label.text() == index  # at 90 px only the index is left
