"""Overlay layers as drawn on screen, the generic worker, start-up without torch."""

from __future__ import annotations

import os
import subprocess
import sys
import time

import numpy as np
import pytest

from medview.io.volume import Volume
from medview.progress import check_cancelled
from medview.ui.viewer_state import HeatmapLayer, LabelLayer, ViewerState
from medview.ui.workers import Worker, start
from tests.ui.conftest import shown_pixel, voxel_to_widget

pytestmark = pytest.mark.gui


def _volume() -> Volume:
    a = np.full((20, 64, 80), 100, np.int16)  # uniform mid-grey under the window below
    return Volume(a, spacing=(1.0, 1.0, 2.0), meta={"Modality": "CT"})


@pytest.fixture
def view(qtbot):
    from medview.ui.slice_view import SliceView

    state = ViewerState()
    state.set_volume(_volume(), window=(200.0, 100.0))
    v = SliceView(state, "axial")
    v.resize(400, 400)
    qtbot.addWidget(v)
    v.show()
    qtbot.waitExposed(v)
    v.fit()
    v.set_crosshair_visible(False)
    return v


def test_label_layer_fill_outline_hide_and_partial_redraw(view, qtbot):
    state = view.state
    vol = state.volume
    lab = np.zeros(vol.shape, np.uint8)
    lab[:, 10:40, 10:30] = 1
    lab[:, 45:60, 50:70] = 2
    layer = state.add_layer(LabelLayer("seg", vol.like(lab), colors={1: (255, 0, 0), 2: (0, 0, 255)},
                                       opacity=1.0))
    k = view.slice_index
    inside1 = voxel_to_widget(view, (20, 25, k))
    inside2 = voxel_to_widget(view, (60, 52, k))
    outside = voxel_to_widget(view, (45, 5, k))
    assert shown_pixel(view, inside1) == (255, 0, 0)
    assert shown_pixel(view, inside2) == (0, 0, 255)
    grey = shown_pixel(view, outside)
    assert grey[0] == grey[1] == grey[2] and 120 < grey[0] < 135  # value 100 in window [0, 200]
    # half opacity blends with the grey image
    state.update_layer("seg", opacity=0.5)
    r, g, b = shown_pixel(view, inside1)
    assert 180 < r < 200 and 55 < g < 75
    # per-label visibility
    layer.set_label_visible(1, False)
    state.layer_changed.emit("seg", None)
    assert shown_pixel(view, inside1) == grey
    assert shown_pixel(view, inside2) != grey
    layer.set_label_visible(1, True)
    # outline mode: the centre of the box is not drawn, its border is
    state.update_layer("seg", outline=True, opacity=1.0)
    assert shown_pixel(view, inside1) == grey
    assert shown_pixel(view, voxel_to_widget(view, (10, 25, k))) == (255, 0, 0)
    state.update_layer("seg", outline=False)
    # an edit on this slice + its region redraws; an edit elsewhere does not touch this view
    lab[k, 5:8, 5:8] = 2
    state.layer_changed.emit("seg", (slice(k, k + 1), slice(5, 8), slice(5, 8)))
    assert shown_pixel(view, voxel_to_widget(view, (6, 6, k))) == (0, 0, 255)
    lab[k, 0:3, 70:73] = 1
    state.layer_changed.emit("seg", (slice(k + 2, k + 3), slice(0, 3), slice(70, 73)))
    assert shown_pixel(view, voxel_to_widget(view, (71, 1, k))) == grey  # not this slice's region
    state.remove_layer("seg")
    assert shown_pixel(view, inside2) == grey


@pytest.mark.parametrize("dtype", [np.uint16, np.int32])
def test_label_values_above_255_keep_their_own_colour(view, dtype):
    """Imported parcellations use values like 1035 or 2035: none may wrap onto a small label's colour
    (300 % 256 == 44) or vanish (256 % 256 == 0)."""
    state = view.state
    vol = state.volume
    lab = np.zeros(vol.shape, dtype)
    lab[:, 10:30, 10:30] = 44
    lab[:, 10:30, 40:60] = 300
    lab[:, 35:55, 10:30] = 256
    colors = {44: (255, 0, 0), 300: (0, 255, 0), 256: (0, 0, 255)}
    state.add_layer(LabelLayer("parc", vol.like(lab), colors=colors, opacity=1.0))
    k = view.slice_index
    assert shown_pixel(view, voxel_to_widget(view, (20, 20, k))) == (255, 0, 0)
    assert shown_pixel(view, voxel_to_widget(view, (50, 20, k))) == (0, 255, 0)
    assert shown_pixel(view, voxel_to_widget(view, (20, 45, k))) == (0, 0, 255)
    # hiding the wide label hides only it
    state.layers()[0].set_label_visible(300, False)
    state.layer_changed.emit("parc", None)
    grey = shown_pixel(view, voxel_to_widget(view, (70, 60, k)))
    assert shown_pixel(view, voxel_to_widget(view, (50, 20, k))) == grey
    assert shown_pixel(view, voxel_to_widget(view, (20, 20, k))) == (255, 0, 0)
    state.remove_layer("parc")


def test_an_edit_that_widens_a_label_map_redraws_with_the_wide_table(view):
    state = view.state
    vol = state.volume
    layer = state.add_layer(LabelLayer("ann", vol.like(np.zeros(vol.shape, np.uint8)),
                                       colors={1: (255, 0, 0), 700: (0, 255, 0)}, opacity=1.0))
    k = view.slice_index
    wide = layer.volume.array.astype(np.uint16)  # what the annotation label map does for value 700
    wide[k, 10:20, 10:20] = 700
    wide[k, 30:40, 10:20] = 1
    layer.volume.array = wide
    state.layer_changed.emit("ann", None)
    assert shown_pixel(view, voxel_to_widget(view, (15, 15, k))) == (0, 255, 0)
    assert shown_pixel(view, voxel_to_widget(view, (15, 35, k))) == (255, 0, 0)
    state.remove_layer("ann")


def test_heatmap_threshold_colormap_and_all_views(view, qtbot):
    from medview.ui.slice_view import SliceView

    state = view.state
    vol = state.volume
    heat = np.zeros(vol.shape, np.float32)
    heat[:, :, :40] = 0.9
    heat[:, :, 40:] = 0.1
    state.add_layer(HeatmapLayer("cam", vol.like(heat), colormap="viridis", opacity=1.0, threshold=0.5))
    k = view.slice_index
    hot = shown_pixel(view, voxel_to_widget(view, (20, 30, k)))
    cold = shown_pixel(view, voxel_to_widget(view, (60, 30, k)))
    assert cold[0] == cold[1] == cold[2]  # below threshold: image only
    assert hot[1] > 150 and hot[2] < 100  # viridis at 0.9 is yellow-green
    state.update_layer("cam", threshold=0.0)
    cold2 = shown_pixel(view, voxel_to_widget(view, (60, 30, k)))
    assert cold2 != cold and cold2[2] > cold2[0]  # viridis at 0.1 is blue-purple
    # the same layer is drawn in the coronal view
    cor = SliceView(state, "coronal")
    cor.resize(300, 300)
    qtbot.addWidget(cor)
    cor.show()
    qtbot.waitExposed(cor)
    cor.fit()
    cor.set_crosshair_visible(False)
    p = shown_pixel(cor, voxel_to_widget(cor, (20, state.cursor[1], 10)))
    assert p == hot
    with pytest.raises(ValueError):
        state.add_layer(HeatmapLayer("bad", Volume(np.zeros((2, 2, 2), np.float32))))


def _job(n, progress=None, cancelled=None):
    for i in range(n):
        check_cancelled(cancelled)
        progress((i + 1) / n, f"step {i + 1}")
        time.sleep(0.002)
    return n * 2


def _boom(progress=None, cancelled=None):
    raise OSError("disk on fire: /tmp/x.dcm")


def test_worker_reports_progress_result_errors_and_cancel(qtbot):
    w = Worker(_job, 5)
    seen = []
    w.signals.progress.connect(lambda f, s: seen.append((f, s)))
    with qtbot.waitSignal(w.signals.finished, timeout=5000) as res:
        start(w)
    assert res.args == [10]
    qtbot.waitUntil(lambda: len(seen) == 5)
    assert seen[-1] == (1.0, "step 5")

    bad = Worker(_boom)
    with qtbot.waitSignal(bad.signals.failed, timeout=5000) as err:
        start(bad)
    assert err.args == ["disk on fire: /tmp/x.dcm"]

    slow = Worker(_job, 2000)
    with qtbot.waitSignal(slow.signals.failed, timeout=5000) as c:
        start(slow)
        slow.cancel()
    assert c.args == ["cancelled"]


def test_middle_slice_preview_comes_before_the_volume(main_window, t1_dir, qtbot):
    order = []
    main_window.preview_shown.connect(lambda k: order.append(("preview", k)))
    main_window.volume_loaded.connect(lambda v: order.append(("volume", v.shape[0])))
    with qtbot.waitSignal(main_window.volume_loaded, timeout=30000):
        main_window.open_path(str(t1_dir))
    # the loader hands the middle slice over before it reads the rest; Qt delivers both in order
    assert order == [("preview", 11), ("volume", 22)]


def test_gui_modules_do_not_import_torch():
    # the window as run_app builds it, with every side panel installed
    code = ("import sys; from PySide6.QtWidgets import QApplication; app = QApplication([]); "
            "from medview.ui.app import _install_panels; from medview.ui.main_window import MainWindow; "
            "w = MainWindow(); _install_panels(w); "
            "assert 'torch' not in sys.modules and 'monai' not in sys.modules, 'torch imported'; print('ok')")
    env = {**os.environ, "QT_QPA_PLATFORM": "offscreen"}
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60, env=env)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "ok"


def test_roi_stats_in_coronal_and_sagittal_planes_match_numpy():
    from medview.ui.viewer_state import Measurement

    rng = np.random.default_rng(1)
    a = rng.integers(0, 1000, size=(12, 30, 40)).astype(np.int16)
    st = ViewerState()
    st.set_volume(Volume(a, spacing=(0.5, 0.8, 3.0), direction=np.diag([1.0, 1.0, -1.0])))
    # coronal plane j=7: box over i 5..15 (centres 5..14 -> 10 px) and k 2..6 (4 px)
    m = Measurement("rect", "coronal", 7, (4.5, 7, 1.5), (14.5, 7, 5.5))
    res = st.measurement_result(m)
    ref = a[2:6, 7, 5:15].astype(float)
    assert res["n"] == ref.size and res["mean"] == pytest.approx(ref.mean())
    assert res["area_mm2"] == pytest.approx(ref.size * 0.5 * 3.0)
    # sagittal plane i=20: box over j 10..20 and k 0..3
    m = Measurement("rect", "sagittal", 20, (20, 9.5, -0.5), (20, 19.5, 2.5))
    res = st.measurement_result(m)
    ref = a[0:3, 10:20, 20].astype(float)
    assert res["n"] == ref.size and res["max"] == ref.max() and res["min"] == ref.min()
    ruler = Measurement("ruler", "sagittal", 20, (20, 0, 0), (20, 10, 4))
    assert st.measurement_result(ruler)["length_mm"] == pytest.approx(np.hypot(10 * 0.8, 4 * 3.0))


def test_float_volume_is_windowed_like_integers(qtbot):
    from medview.ui.slice_view import SliceView

    a = np.zeros((3, 20, 20), np.float32)
    a[:, :, 10:] = 0.75
    st = ViewerState()
    st.set_volume(Volume(a), window=(1.0, 0.5))  # levels 0..1
    v = SliceView(st, "axial")
    v.resize(300, 300)
    qtbot.addWidget(v)
    v.show()
    qtbot.waitExposed(v)
    v.fit()
    v.set_crosshair_visible(False)
    left = shown_pixel(v, voxel_to_widget(v, (3, 5, 1)))
    right = shown_pixel(v, voxel_to_widget(v, (15, 5, 1)))
    assert left == (0, 0, 0)
    assert right[0] == right[1] == right[2] and abs(right[0] - 191) <= 2  # 0.75 of full scale
    st.set_invert(True)
    assert shown_pixel(v, voxel_to_widget(v, (3, 5, 1))) == (255, 255, 255)
