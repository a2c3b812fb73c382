"""Reformats in the window: smooth display, axis-aligned slabs, the oblique/slab view, overlays."""

from __future__ import annotations

import numpy as np
import pytest
from PySide6.QtCore import QPointF
from PySide6.QtWidgets import QApplication

from medview.io.volume import Volume
from medview.ui.viewer_state import LabelLayer

pytestmark = pytest.mark.gui


def _marker_volume():
    a = np.zeros((30, 48, 40), np.int16)
    a[14:17, 22:26, 18:22] = 1000  # a small bright block
    return Volume(a, spacing=(1.0, 1.0, 2.0), meta={"Modality": "CT", "SeriesInstanceUID": "m"})


def test_slab_and_smooth_display(main_window):
    win = main_window
    st = win.state
    vol = _marker_volume()
    st.set_volume(vol, window=(2000.0, 500.0))
    axial = win.viewer.view("axial")
    st.set_cursor((20, 24, 20))  # 4 slices (8 mm) away from the block
    assert axial.img.image.max() == 0
    st.set_slab(20.0, "mip")  # +-10 mm: the block shows
    assert axial.img.image.max() == 1000
    assert "Slab MIP 20 mm" in axial.corner_labels["bottom_right"].text()
    st.set_slab(0.0)
    assert axial.img.image.max() == 0
    assert axial.img.smooth
    win.smooth_action.setChecked(False)
    assert not st.smooth and not axial.img.smooth


def test_oblique_view_reslices_in_patient_space_and_moves_the_crosshair(main_window):
    win = main_window
    st = win.state
    vol = _marker_volume()
    lab = np.zeros(vol.shape, np.uint8)
    lab[14:17, 22:26, 18:22] = 2
    st.set_volume(vol, window=(2000.0, 500.0))
    st.add_layer(LabelLayer("seg", vol.like(lab)))
    st.set_layout("2x2")
    QApplication.processEvents()
    ob = win.viewer.oblique
    assert ob.isVisible()
    st.set_cursor((20, 24, 15))  # through the block
    img = ob.last_image
    assert img is not None and img.max() > 900
    seg = ob._overlays["seg"].image
    assert set(np.unique(seg)) <= {0, 2} and (seg == 2).any()  # nearest: no blended values
    ob.render()  # same map again: sampled from the Reslicer's cached copy
    assert np.array_equal(ob._overlays["seg"].image, seg)
    layer = st.layer("seg")
    layer.volume.array[14:17, 22:26, 18:22] = 3  # an edit, announced as the annotation tools do
    st.layer_changed.emit("seg", (slice(14, 17), slice(22, 26), slice(18, 22)))
    assert set(np.unique(ob._overlays["seg"].image)) <= {0, 3} and (ob._overlays["seg"].image == 3).any()
    # tilt 30 degrees: the block is still on the plane through its centre
    ob.set_rotation(ob.tilted(np.eye(3), np.radians(30), 0.0))
    assert ob.last_image.max() > 900 and "tilt 30" in ob.text.text()
    # move off the block along the tilted normal: gone; a thick MIP slab brings it back
    ob.step(6)
    assert ob.last_image.max() < 500
    ob.slab_box.setValue(30.0)
    assert ob.last_image.max() > 900
    # a click moves the crosshair to the world point under the mouse
    p = ob.plane
    target = p.plane_to_world(p.width / 2 - 0.5, p.height / 2 - 0.5)
    ob.set_cursor_at(QPointF(p.width / 2 * p.spacing, p.height / 2 * p.spacing))
    assert np.allclose(vol.index_to_world(np.asarray(st.cursor, float)), target, atol=1.5)


def test_label_nifti_opens_as_overlay(loaded_window, tmp_path, qtbot):
    from medview.annotation.labelmap import Label, LabelMap
    from medview.annotation.nifti import save_nifti

    win = loaded_window
    vol = win.state.volume
    arr = np.zeros(vol.shape, np.uint8)
    arr[10:13, 200:260, 200:260] = 1
    lm = LabelMap(vol.like(arr), [Label(1, "lesion", (255, 0, 0))])
    path = save_nifti(lm, tmp_path / "labels.nii.gz")
    with qtbot.waitSignal(win.state.layers_changed, timeout=30000):
        win.open_overlay(path)
    layer = win.state.layer("overlay: labels.nii.gz")
    assert layer is not None and layer.names[1] == "lesion" and layer.colors[1] == (255, 0, 0)
    assert int(layer.volume.array.sum()) == int(arr.sum())
    assert str(path.resolve()) in win.recent_paths()


def test_dicom_seg_opens_as_overlay_on_its_series(loaded_window, tmp_path, qtbot):
    from medview.annotation.dicom_seg import export_dicom_seg
    from medview.annotation.labelmap import Label, LabelMap

    win = loaded_window
    vol = win.state.volume
    arr = np.zeros(vol.shape, np.uint8)
    arr[11, 100:180, 100:180] = 1
    lm = LabelMap(vol.like(arr), [Label(1, "tumour", (0, 255, 0))])
    seg = export_dicom_seg(lm, tmp_path / "seg.dcm", vol.meta["source_files"])
    with qtbot.waitSignal(win.state.layers_changed, timeout=60000):
        win.open_path(str(seg))  # a SEG file opened while its series is shown: an overlay
    assert win.state.volume is vol  # not a grey image of its own
    layer = win.state.layer("overlay: seg.dcm")
    assert layer is not None and int((layer.volume.array > 0).sum()) == 80 * 80
    axial = win.viewer.view("axial")
    win.state.set_cursor((140, 140, 11))
    assert axial._overlays["overlay: seg.dcm"].isVisible()


def test_3d_view_says_it_is_off_without_opengl_and_the_rest_works(main_window):
    from PySide6.QtGui import QGuiApplication

    from medview.ui.volume3d import transfer_function

    win = main_window
    win.state.set_volume(_marker_volume(), window=(2000.0, 500.0))
    win.view3d_action.setChecked(True)
    v3 = win.view3d
    if QGuiApplication.platformName() == "offscreen":
        assert not v3.available and "3D view is off" in v3.status.text()
    assert win.view3d_dock.isVisible()
    win.state.set_cursor((1, 2, 3))  # the 2D views still follow
    assert win.viewer.view("axial").slice_index == 3
    # transfer functions: bone opaque, air transparent; MIP bright = opaque
    hu = np.array([-1000.0, 0.0, 1500.0])
    bone = transfer_function(hu, "CT bone", "CT")
    assert bone[0, 3] == 0 and bone[2, 3] > 100
    soft = transfer_function(hu, "CT soft tissue", "CT")
    assert soft[0, 3] == 0 and soft[1, 3] > 0
    mip = transfer_function(np.array([0.0, 50.0, 100.0]), "MIP", "MR", window=(100.0, 50.0))
    assert list(mip[:, 3]) == [0, 127, 255]


def test_4d_nifti_is_browsable_volume_by_volume(main_window, tmp_path, qtbot):
    import nibabel as nib

    a = np.zeros((16, 12, 6, 3), np.int16)  # x, y, z, t
    for t in range(3):
        a[..., t] = 100 * (t + 1)
    path = tmp_path / "fmri.nii.gz"
    nib.save(nib.Nifti1Image(a, np.diag([2.0, 2.0, 3.0, 1.0])), path)
    win = main_window
    with qtbot.waitSignal(win.volume_loaded, timeout=30000):
        win.open_path(str(path))
    qtbot.waitUntil(lambda: win.state.frames is not None, timeout=30000)
    assert win.frame_box.maximum() == 3 and win.frame_box.value() == 1
    axial = win.viewer.view("axial")
    assert int(axial.img.image.max()) == 100
    cursor = win.state.cursor
    win.frame_box.setValue(3)  # the third volume, same place
    assert win.state.frame == 2 and win.state.cursor == cursor
    assert int(axial.img.image.max()) == 300
    assert "Volume 3/3" in axial.corner_labels["bottom_right"].text()


def test_rotate_tool_drag_in_axial_turns_the_oblique_plane_and_shows_its_cut(main_window):
    from tests.ui.conftest import drag, voxel_to_widget

    win = main_window
    st = win.state
    vol = _marker_volume()
    st.set_volume(vol, window=(2000.0, 500.0))
    st.set_cursor((20, 24, 15))
    ob = win.viewer.oblique
    ob.set_base("coronal")
    win.tool_actions["rotate"].trigger()
    assert st.layout == "2x2"
    QApplication.processEvents()
    axial = win.viewer.view("axial")
    line = axial.oblique_line
    assert line.isVisible() and abs(line.angle % 180) < 1  # coronal cuts axial left-right
    # drag a quarter turn around the crosshair: from right of it to below it
    drag(axial, voxel_to_widget(axial, (35, 24, 15)), voxel_to_widget(axial, (20, 39, 15)), steps=12)
    n = ob.plane.normal
    assert abs(n[2]) < 1e-6  # turned about the axial normal only
    assert abs(abs(n[0]) - 1) < 0.1  # the coronal plane (normal A-P) now faces L-R
    assert abs(abs(line.angle % 180) - 90) < 5
    assert ob.exact  # the exact slab once the drag ended


def test_heatmap_threshold_slider_and_colour_bar(main_window):
    from medview.ui.viewer_state import HeatmapLayer

    win = main_window
    st = win.state
    vol = _marker_volume()
    st.set_volume(vol, window=(2000.0, 500.0))
    assert not win._threshold_actions[1].isVisible()
    heat = np.linspace(0, 1, vol.array.size, dtype=np.float32).reshape(vol.shape)
    st.add_layer(HeatmapLayer("prob", vol.like(heat), threshold=0.2))
    assert win._threshold_actions[1].isVisible() and win.threshold_slider.value() == 20
    axial = win.viewer.view("axial")
    assert axial.color_bar.isVisible() and axial.color_bar.layer.name == "prob"
    win.threshold_slider.setValue(70)
    assert st.layer("prob").threshold == pytest.approx(0.7)
    assert "0.70" in win.threshold_label.text()
    st.remove_layer("prob")
    assert not win._threshold_actions[1].isVisible() and not axial.color_bar.isVisible()


def test_mpr_layout_reslices_a_tilted_acquisition_on_the_patient_axes(main_window):
    win = main_window
    st = win.state
    t = np.radians(20)  # acquired tilted 20 degrees about L-R
    rot = np.array([[1, 0, 0], [0, np.cos(t), -np.sin(t)], [0, np.sin(t), np.cos(t)]])
    a = np.zeros((30, 48, 40), np.int16)
    a[14:17, 22:26, 18:22] = 1000
    vol = Volume(a, spacing=(1.0, 1.0, 2.0), direction=rot, meta={"Modality": "CT"})
    st.set_volume(vol, window=(2000.0, 500.0))
    st.set_layout("mpr")
    QApplication.processEvents()
    mpr = win.viewer.mpr
    assert all(v.isVisible() for v in mpr.values()) and win.viewer.oblique.isVisible()
    assert not win.viewer.view("axial").isVisible()
    st.set_cursor((20, 24, 15))
    for name, normal in (("axial", (0, 0, 1)), ("coronal", (0, 1, 0)), ("sagittal", (1, 0, 0))):
        p = mpr[name].plane
        assert np.allclose(np.abs(p.normal), normal, atol=1e-9), name  # patient axes, not voxel axes
        assert mpr[name].last_image.max() > 900  # the block through the crosshair
        assert f"Patient {name}" in mpr[name].text.text()
    # one shared Reslicer for the four reformat views
    assert mpr["axial"].reslicer() is mpr["coronal"].reslicer() is win.viewer.oblique.reslicer()


def test_measurements_show_in_the_reformat_views_whose_plane_holds_them(main_window):
    from medview.ui.reslice_view import measurement_outline_world
    from medview.ui.viewer_state import Measurement

    win = main_window
    st = win.state
    vol = _marker_volume()
    st.set_volume(vol, window=(2000.0, 500.0))
    st.set_layout("mpr")
    st.set_cursor((20, 24, 15))
    QApplication.processEvents()
    ruler = st.add_measurement(Measurement("ruler", "axial", 15, (5.0, 10.0, 15.0), (30.0, 10.0, 15.0)))
    roi = st.add_measurement(Measurement("ellipse", "axial", 15, (5.0, 5.0, 15.0), (25.0, 35.0, 15.0)))
    mpr = win.viewer.mpr
    assert len(mpr["axial"]._measure_items) == 2  # both lie in the axial plane through k=15
    assert len(mpr["coronal"]._measure_items) == 0
    pts = measurement_outline_world(roi, vol)
    assert np.allclose(pts[:, 2], vol.index_to_world((0, 0, 15))[2])  # the ROI stays on its slice
    assert np.allclose(measurement_outline_world(ruler, vol), vol.index_to_world(np.array([ruler.p0, ruler.p1])))
    st.set_cursor((20, 24, 16))  # another axial plane: not shown there
    assert len(mpr["axial"]._measure_items) == 0


def test_rtstruct_opens_as_overlay_on_its_series(loaded_window, tmp_path, qtbot):
    rt = pytest.importorskip("medview.reporting.rtstruct")
    if not hasattr(rt, "export_rtstruct"):
        pytest.skip("medview.reporting has no RTSTRUCT writer to make a test file")
    from medview.annotation.labelmap import Label, LabelMap

    win = loaded_window
    vol = win.state.volume
    arr = np.zeros(vol.shape, np.uint8)
    arr[10:12, 150:220, 160:240] = 1
    lm = LabelMap(vol.like(arr), [Label(1, "GTV", (255, 128, 0))])
    path = rt.export_rtstruct(lm, tmp_path / "rt.dcm", vol.meta["source_files"])
    with qtbot.waitSignal(win.state.layers_changed, timeout=60000):
        win.open_path(str(path))  # an RTSTRUCT opened while its series is shown: an overlay
    assert win.state.volume is vol
    layer = win.state.layer("overlay: rt.dcm")
    assert layer is not None and layer.names[1] == "GTV"
    filled = int((layer.volume.array > 0).sum())
    assert abs(filled - int(arr.sum())) < 0.1 * arr.sum()  # contours refilled: close to the mask


def test_4d_dicom_series_is_browsable_volume_by_volume(main_window, tmp_path, qtbot):
    """An fMRI/diffusion-style DICOM series (volumes told apart by AcquisitionNumber): the Volume
    box steps through its time points, each at the same place."""
    from tests.io.test_dicom_4d import TIMES, _value, _write_4d

    win = main_window
    with qtbot.waitSignal(win.volume_loaded, timeout=30000):
        win.open_path(str(_write_4d(tmp_path / "dyn")))
    qtbot.waitUntil(lambda: win.state.frames is not None, timeout=30000)
    assert win.frame_box.maximum() == TIMES and win.frame_box.value() == 1
    axial = win.viewer.view("axial")
    k = win.state.cursor[2]
    assert int(axial.img.image.max()) == _value(0, k)
    win.frame_box.setValue(TIMES)
    assert int(axial.img.image.max()) == _value(TIMES - 1, k)
    assert f"Volume {TIMES}/{TIMES}" in axial.corner_labels["bottom_right"].text()
