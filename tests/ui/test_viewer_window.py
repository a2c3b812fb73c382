"""Drive the main window like a user on a real DICOM series and check what is shown."""

from __future__ import annotations

import numpy as np
import pytest
from PySide6.QtCore import QPoint, QPointF, Qt
from PySide6.QtWidgets import QApplication

from tests.ui.conftest import click, drag, voxel_to_widget, wheel

pytestmark = pytest.mark.gui


def test_open_dicom_series_shows_middle_slice_labels_and_info(loaded_window):
    win = loaded_window
    vol = win.state.volume
    assert vol.shape == (22, 512, 512) and vol.modality == "MR"
    axial = win.viewer.view("axial")
    assert axial.slice_index == 22 // 2
    assert axial.info_label.text() == "Axial  12/22"
    labels = {k: lab.text() for k, lab in axial.orientation_labels.items()}
    assert labels == {"left": "R", "right": "L", "top": "A", "bottom": "P"}
    cor = win.viewer.view("coronal")
    assert (cor.orientation_labels["top"].text(), cor.orientation_labels["bottom"].text()) == ("S", "I")
    sag = win.viewer.view("sagittal")
    assert (sag.orientation_labels["left"].text(), sag.orientation_labels["right"].text()) == ("A", "P")
    # aspect from spacing: 512 x 0.4297 mm wide, 22 x 6.5 mm high in the coronal view
    assert cor.geom.width_mm == pytest.approx(512 * vol.spacing[0])
    assert cor.geom.height_mm == pytest.approx(22 * vol.spacing[2])
    # DICOM window of the series is the first window
    assert win.state.window == pytest.approx((vol.meta["WindowWidth"], vol.meta["WindowCenter"]))
    assert "W " in axial.wl_label.text()
    # browser lists the series with its image count, series info shows the geometry
    assert win.browser.topLevelItemCount() == 1
    rows = dict(win.series_info.rows())
    assert rows["Size (i x j x k)"] == "512 x 512 x 22" and rows["Modality"] == "MR"


def test_scroll_with_wheel_keys_and_pages(loaded_window, qtbot):
    win = loaded_window
    axial = win.viewer.view("axial")
    centre = QPoint(axial.width() // 2, axial.height() // 2)
    wheel(axial, centre, 3)
    assert axial.slice_index == 14 and axial.info_label.text() == "Axial  15/22"
    wheel(axial, centre, -1)
    assert axial.slice_index == 13
    axial.setFocus()
    qtbot.keyClick(axial, Qt.Key.Key_Down)
    assert axial.slice_index == 12
    qtbot.keyClick(axial, Qt.Key.Key_PageUp)
    assert axial.slice_index == 14  # a page is a tenth of the slices (2 here)
    qtbot.keyClick(axial, Qt.Key.Key_End)
    assert axial.slice_index == 21
    qtbot.keyClick(axial, Qt.Key.Key_Up)  # clamps at the last slice
    assert axial.slice_index == 21 and win.state.cursor[2] == 21
    # the other views follow: their crosshair line sits on the new slice
    cor = win.viewer.view("coronal")
    assert cor.hline.value() == pytest.approx(cor.geom.voxel_to_scene(win.state.cursor)[1])
    # ctrl+wheel zooms instead of scrolling
    before = axial.vb.viewRange()[0][1] - axial.vb.viewRange()[0][0]
    wheel(axial, centre, 2, Qt.KeyboardModifier.ControlModifier)
    after = axial.vb.viewRange()[0][1] - axial.vb.viewRange()[0][0]
    assert axial.slice_index == 21 and after < before * 0.95
    axial.fit()
    assert axial.vb.viewRange()[0][1] - axial.vb.viewRange()[0][0] == pytest.approx(before, rel=0.05)


def test_click_in_coronal_moves_axial_slice(loaded_window):
    win = loaded_window
    cor = win.viewer.view("coronal")
    target = (100, win.state.cursor[1], 5)  # i=100, k=5 on the current coronal plane
    click(cor, voxel_to_widget(cor, target))
    i, _j, k = win.state.cursor
    assert k == 5 and abs(i - 100) <= 1
    axial = win.viewer.view("axial")
    assert axial.slice_index == 5 and axial.info_label.text() == "Axial  6/22"
    x, _ = axial.geom.voxel_to_scene(win.state.cursor)
    assert axial.vline.value() == pytest.approx(x)


def test_right_drag_changes_window_and_what_is_drawn(loaded_window):
    win = loaded_window
    axial = win.viewer.view("axial")
    w0, l0 = win.state.window
    lut0 = axial.img.argb_lut.copy()
    c = QPoint(axial.width() // 2, axial.height() // 2)
    drag(axial, c, QPoint(c.x() + 150, c.y() + 60), Qt.MouseButton.RightButton)
    w1, l1 = win.state.window
    assert w1 == pytest.approx(2 * w0, rel=0.05)  # 150 px right doubles the width
    assert l1 > l0
    assert axial.wl_label.text().startswith(f"W {w1:.6g}")
    assert not np.array_equal(axial.img.argb_lut, lut0)  # the drawn grey table changed
    # presets, invert and reset
    win.apply_preset("Brain")
    assert win.state.window == (80.0, 40.0)
    win.invert_action.trigger()
    assert win.state.invert and axial.wl_label.text().endswith("inv")
    grey_at_low = int(axial.img.argb_lut[0] & 0xFF)  # value 0 is below the window: white when inverted
    assert grey_at_low == 255
    win.reset_view()
    assert win.state.window == pytest.approx((w0, l0)) and not win.state.invert


def test_ruler_and_rois_measure_in_mm_survive_scroll_and_delete(loaded_window, qtbot):
    win = loaded_window
    vol = win.state.volume
    axial = win.viewer.view("axial")
    win.tool_actions["ruler"].trigger()
    assert win.state.tool == "ruler"
    i, j, k = win.state.cursor
    p0, p1 = (i - 100, j, k), (i + 100, j, k)
    drag(axial, voxel_to_widget(axial, p0), voxel_to_widget(axial, p1))
    assert len(win.state.measurements) == 1
    m = win.state.measurements[0]
    length = win.state.measurement_result(m)["length_mm"]
    assert length == pytest.approx(200 * vol.spacing[0], rel=0.02)  # 200 voxels x 0.43 mm
    shown = axial._measure_items[m.id][1].textItem.toPlainText()
    assert shown == f"{length:.1f} mm"

    win.tool_actions["rect"].trigger()
    drag(axial, voxel_to_widget(axial, (i - 20, j - 10, k)), voxel_to_widget(axial, (i + 20, j + 10, k)))
    roi = win.state.measurements[-1]
    st = win.state.measurement_result(roi)
    ref = vol.array[k, j - 10:j + 10, i - 20:i + 20].astype(float)
    assert st["n"] == pytest.approx(ref.size, rel=0.1)
    assert st["mean"] == pytest.approx(ref.mean(), rel=0.05)
    assert st["area_mm2"] == pytest.approx(st["n"] * vol.spacing[0] * vol.spacing[1])

    win.tool_actions["ellipse"].trigger()
    drag(axial, voxel_to_widget(axial, (i - 30, j - 30, k)), voxel_to_widget(axial, (i + 30, j + 30, k)))
    ell = win.state.measurements[-1]
    assert win.state.measurement_result(ell)["n"] == pytest.approx(np.pi * 30 * 30, rel=0.1)
    assert len(axial._measure_items) == 3

    # scroll away: hidden; back: shown again
    axial.scroll(1)
    assert axial._measure_items == {}
    axial.scroll(-1)
    assert set(axial._measure_items) == {m.id, roi.id, ell.id}

    # drag the ruler's end point: it gets longer, the label follows; drag its middle: it moves whole
    win.tool_actions["navigate"].trigger()
    cursor_before = win.state.cursor
    drawn0 = np.array(m.p0)
    tol = 1.5  # voxels: one screen pixel covers more than one of the 512 columns here
    drag(axial, voxel_to_widget(axial, p1), voxel_to_widget(axial, (i + 140, j, k)))
    assert win.state.measurements[0] is m and m.p0 == pytest.approx(drawn0, abs=1e-9)  # the other end stays
    assert m.p1 == pytest.approx((i + 140, j, k), abs=tol)
    longer = win.state.measurement_result(m)["length_mm"]
    assert longer == pytest.approx(240 * vol.spacing[0], rel=0.02)
    assert axial._measure_items[m.id][1].textItem.toPlainText() == f"{longer:.1f} mm"
    drawn1 = np.array(m.p1)
    drag(axial, voxel_to_widget(axial, (i + 60, j, k)), voxel_to_widget(axial, (i + 60, j + 30, k)))  # off the ROIs
    shift = np.array(m.p0) - drawn0
    assert shift == pytest.approx((0, 30, 0), abs=tol) and np.array(m.p1) - drawn1 == pytest.approx(shift)
    assert win.state.measurement_result(m)["length_mm"] == pytest.approx(longer, rel=1e-6)
    assert win.state.cursor == cursor_before  # dragging a measurement does not move the crosshair
    drag(axial, voxel_to_widget(axial, (i + 60, j + 30, k)), voxel_to_widget(axial, (i + 60, j, k)))

    # click the ruler to select it, Delete removes it
    click(axial, voxel_to_widget(axial, (i + 50, j, k)))
    assert axial.selected_measurement == m.id
    axial.setFocus()
    qtbot.keyClick(axial, Qt.Key.Key_Delete)
    assert [x.id for x in win.state.measurements] == [roi.id, ell.id]
    win.state.clear_measurements()
    assert axial._measure_items == {}


def test_layouts_and_hover_status(loaded_window):
    win = loaded_window
    views = win.viewer.views
    views["axial"].setFocus()  # the 1x1 layout shows the view used last
    assert win.state.active_view == "axial"
    win.layout_actions["1x1"].trigger()
    assert win.state.layout == "1x1"
    assert views["axial"].isVisible() and not views["coronal"].isVisible()
    win.state.set_active_view("sagittal")
    assert views["sagittal"].isVisible() and not views["axial"].isVisible()
    win.layout_actions["2x2"].trigger()
    assert all(v.isVisible() for v in views.values()) and win.viewer.oblique.isVisible()
    win.layout_actions["1x3"].trigger()
    assert all(v.isVisible() for v in views.values()) and not win.viewer.oblique.isVisible()
    # status bar: value, voxel, world position under the mouse
    axial = views["axial"]
    vol = win.state.volume
    i, j, k = 200, 300, win.state.cursor[2]
    x, y = axial.geom.voxel_to_scene((i, j, k))
    axial.scene().sigMouseMoved.emit(axial.vb.mapViewToScene(QPointF(x, y)))  # mouse over voxel centre
    assert win.voxel_label.text() == f"voxel ({i}, {j}, {k})"
    assert win.value_label.text() == f"{float(vol.array[k, j, i]):.6g}"
    w = vol.index_to_world((i, j, k))
    assert win.world_label.text().startswith(f"LPS ({w[0]:.1f},")


def test_dicom_tag_browser_search(loaded_window, qtbot):
    win = loaded_window
    win.info_tabs.setCurrentWidget(win.tag_browser)
    QApplication.processEvents()
    tb = win.tag_browser
    qtbot.waitUntil(lambda: tb.path is not None, timeout=3000)
    k = win.state.cursor[2]
    assert tb.path == win.state.volume.meta["source_files"][k]
    tb.search.setText("pixel spacing")
    assert tb.visible_tags() == ["(0028,0030)"]
    tb.search.setText("")
    assert len(tb.visible_tags()) > 50
    win.viewer.view("axial").scroll(1)
    qtbot.waitUntil(lambda: tb.path == win.state.volume.meta["source_files"][k + 1], timeout=3000)


def test_bad_path_reports_and_keeps_running(main_window, tmp_path, qtbot):
    bad = tmp_path / "not-an-image.txt"
    bad.write_text("hello")
    with qtbot.waitSignal(main_window.load_failed, timeout=10000) as sig:
        main_window.open_path(str(bad))
    assert "not-an-image.txt" in sig.args[0] or str(tmp_path) in sig.args[0]
    assert main_window.state.volume is None


def test_browser_lists_study_thumbnails_and_double_click_opens(main_window, shared_data, qtbot):
    from PySide6.QtCore import QMimeData, QUrl
    from PySide6.QtGui import QDropEvent

    study = shared_data / "dicom" / "mr-brain-tcia" / "Study1"
    win = main_window
    with qtbot.waitSignal(win.volume_loaded, timeout=30000):
        win.open_path(str(study))
    br = win.browser
    assert br.topLevelItemCount() == 1  # one patient
    study_item = br.topLevelItem(0).child(0)
    n_series = study_item.childCount()
    assert n_series == len(win.index.series) >= 5
    texts = [study_item.child(i).text(0) for i in range(n_series)]
    assert any("T2" in t for t in texts) and any("FLAIR" in t for t in texts)
    qtbot.waitUntil(lambda: all(not study_item.child(i).icon(0).isNull() for i in range(n_series)),
                    timeout=20000)
    # double-click another series: it loads and becomes the current volume
    t2 = next(study_item.child(i) for i in range(n_series) if "T2" in study_item.child(i).text(0))
    br.scrollToItem(t2)
    rect = br.visualItemRect(t2)
    with qtbot.waitSignal(win.volume_loaded, timeout=30000) as loaded:
        qtbot.mouseClick(br.viewport(), Qt.MouseButton.LeftButton, pos=rect.center())  # as a hand does
        qtbot.mouseDClick(br.viewport(), Qt.MouseButton.LeftButton, pos=rect.center())
    assert "T2" in loaded.args[0].meta["SeriesDescription"]
    assert win.state.volume is loaded.args[0]
    # dropping a series folder onto the window opens it
    t1 = study / "34909-T1prereg-84610"
    mime = QMimeData()
    mime.setUrls([QUrl.fromLocalFile(str(t1))])
    drop = QDropEvent(QPointF(50, 50), Qt.DropAction.CopyAction, mime, Qt.MouseButton.LeftButton,
                      Qt.KeyboardModifier.NoModifier)
    with qtbot.waitSignal(win.volume_loaded, timeout=30000) as loaded:
        win.dropEvent(drop)
    assert loaded.args[0].meta["SeriesDescription"] == "T1pre_reg"


def test_rgb_photo_opens_in_one_colour_view(main_window, shared_data, qtbot):
    from tests.ui.conftest import shown_pixel

    photo = shared_data / "dermoscopy-ph2" / "images" / "IMD002.jpg"
    if not photo.is_file():
        pytest.skip(f"{photo} not found")
    win = main_window
    with qtbot.waitSignal(win.volume_loaded, timeout=30000) as loaded:
        win.open_path(str(photo))
    vol = loaded.args[0]
    assert vol.is_rgb and vol.shape[0] == 1
    assert win.state.layout == "1x1" and win.state.active_view == "axial"
    axial = win.viewer.view("axial")
    QApplication.processEvents()
    assert axial.wl_label.text() == "RGB"
    # the pixel drawn near the image centre is the photo's colour there (not grey)
    j, i = vol.shape[1] // 2 + 9, vol.shape[2] // 2 + 13  # off the crosshair lines
    r, g, b = shown_pixel(axial, voxel_to_widget(axial, (i, j, 0)))
    ref = vol.array[0, j - 1:j + 2, i - 1:i + 2].reshape(-1, 3).astype(int)
    assert any(np.abs(ref - (r, g, b)).max(axis=1) <= 8)
    assert len({r, g, b}) > 1
    # no invented patient axes or millimetres on a photograph
    assert all(lab.text() == "" for lab in axial.orientation_labels.values())
    assert axial.info_label.text().startswith("Image")
    from medview.ui.main_window import describe_position

    assert "mm" not in describe_position(vol, (10, 10, 0))["world"]


def test_ct_values_are_reported_in_hu_and_presets_apply(main_window):
    from medview.io.volume import Volume
    from medview.ui.main_window import describe_position

    a = np.full((5, 32, 32), -1000, np.int16)
    a[:, 10:20, 10:20] = 40
    ct = Volume(a, spacing=(0.5, 0.5, 2.0), meta={"Modality": "CT", "Units": "HU"})
    win = main_window
    win.state.set_volume(ct)
    d = describe_position(ct, (12, 12, 2))
    assert d["value"] == "40 HU" and d["voxel"] == "voxel (12, 12, 2)"
    assert describe_position(ct, (40, 1, 1))["voxel"] == "outside"
    for name, expected in (("Lung", (1500.0, -600.0)), ("Bone", (1800.0, 400.0)), ("Liver", (150.0, 30.0))):
        win.preset_actions[name].trigger()
        assert win.state.window == expected
        assert win.viewer.view("axial").wl_label.text() == f"W {expected[0]:.6g}  L {expected[1]:.6g}"
    assert set(win.preset_actions) == {"Brain", "Subdural", "Lung", "Mediastinum", "Abdomen", "Bone", "Liver"}


def test_middle_drag_pans_and_wl_tool_uses_left_drag(loaded_window):
    win = loaded_window
    axial = win.viewer.view("axial")
    (x0, x1), (y0, y1) = axial.vb.viewRange()
    c = QPoint(axial.width() // 2, axial.height() // 2)
    cursor = win.state.cursor
    drag(axial, c, QPoint(c.x() + 100, c.y()), Qt.MouseButton.MiddleButton)
    (nx0, nx1), (ny0, ny1) = axial.vb.viewRange()
    mm_per_px = (x1 - x0) / axial.vb.width()
    assert nx0 == pytest.approx(x0 - 100 * mm_per_px, rel=0.05)  # the image followed the mouse
    assert (ny0, ny1) == pytest.approx((y0, y1))
    assert win.state.cursor == cursor  # panning does not move the crosshair
    win.tool_actions["wl"].trigger()
    w0, l0 = win.state.window
    drag(axial, c, QPoint(c.x() - 150, c.y() - 30))
    w1, l1 = win.state.window
    assert w1 == pytest.approx(w0 / 2, rel=0.05) and l1 < l0
    assert win.state.cursor == cursor


def test_without_a_path_the_sample_study_opens(main_window, qtbot):
    from medview.config import sample_study_dir
    from medview.ui.app import default_path

    path = default_path()
    if path is None:
        pytest.skip(f"no sample study in {sample_study_dir()}")
    assert path == str(sample_study_dir())
    with qtbot.waitSignal(main_window.volume_loaded, timeout=30000) as loaded:
        main_window.open_path(path)
    vol = loaded.args[0]
    assert vol.meta["format"] == "dicom" and vol.shape[0] > 1
    assert main_window.browser.topLevelItemCount() == 1  # one patient, its series listed
    study = main_window.browser.topLevelItem(0).child(0)
    assert study.childCount() == len(main_window.index.series) >= 2
