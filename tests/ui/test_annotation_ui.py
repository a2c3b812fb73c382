"""Annotation in the real window: paint with the mouse, undo/redo with the keyboard, label list,
AI-edit summary, classification review, crash recovery banner (offscreen Qt, real DICOM)."""

from __future__ import annotations

import json
import os
import socket

import numpy as np
import pytest
from PySide6.QtCore import Qt
from PySide6.QtWidgets import QApplication

from tests.ui.conftest import click, drag, shown_pixel, voxel_to_widget

pytestmark = pytest.mark.gui


@pytest.fixture
def panel(loaded_window):
    from medview.ui.annotation_panel import install

    p = install(loaded_window)
    QApplication.processEvents()
    yield p
    p.shutdown()


def _axial(win):
    return win.viewer.views["axial"]


def test_paint_with_mouse_then_undo_redo_with_shortcuts(loaded_window, panel, qtbot):
    win = loaded_window
    state = win.state
    panel.new_button.click()
    assert panel.session.active and state.tool == "annotate.brush"
    panel.radius_spin.setValue(4.0)
    view = _axial(win)
    i0, j0, k = state.cursor
    a = (i0 - 30, j0, k)
    b = (i0 + 30, j0 + 10, k)
    QApplication.processEvents()  # let the layout settle (the side panel appeared)
    mid = voxel_to_widget(view, (i0 + 8, j0 + 6, k))  # off the crosshair lines
    before = shown_pixel(view, mid)
    drag(view, voxel_to_widget(view, a), voxel_to_widget(view, b))
    lm = panel.session.labelmap
    # the brush outline followed the mouse, with the brush's size (scene units are mm)
    ring = panel.session._cursor_items["axial"]
    assert ring.isVisible() and abs(ring.rect().width() - 8.0) < 1e-6
    painted = lm.array[k]
    assert painted[j0 + 6, i0 + 8] == 1 and painted[j0, i0 - 30] == 1
    assert lm.array[k - 1].max() == 0 and lm.array[k + 1].max() == 0  # 2D brush stays in its slice
    n = int(painted.sum())
    assert n > 200
    after = shown_pixel(view, mid)
    assert after != before  # the overlay was redrawn where we painted
    assert panel.history_list.count() == 1 and panel.history_list.item(0).text() == "Brush"

    qtbot.keyClick(win, Qt.Key.Key_Z, Qt.KeyboardModifier.ControlModifier)
    assert lm.array.max() == 0
    assert shown_pixel(view, mid) == before
    qtbot.keyClick(win, Qt.Key.Key_Z, Qt.KeyboardModifier.ControlModifier | Qt.KeyboardModifier.ShiftModifier)
    assert int(lm.array[k].sum()) == n

    # eraser tool removes part of it; undo brings it back
    state.set_tool("annotate.erase")
    click(view, voxel_to_widget(view, (i0, j0 + 5, k)))
    assert lm.array[k, j0 + 5, i0] == 0
    panel.undo_button.click()
    assert lm.array[k, j0 + 5, i0] == 1
    # the edits reached the workspace journal (autosave)
    assert panel.session.workspace is not None and (panel.session.workspace.root / "journal.log").exists()
    want = lm.array.copy()
    # closing saves; the same image offers to reopen the saved labels
    panel.close_button.click()
    assert not panel.session.active and state.layer("annotation") is None
    assert panel.reopen_button.isEnabled()
    panel.reopen_button.click()
    assert np.array_equal(panel.session.labelmap.array, want)
    assert panel.session.labelmap.provenance.undos == 2


def test_label_list_add_rename_recolour_lock_hide(loaded_window, panel):
    from medview.app_logging import load_settings

    state = loaded_window.state
    panel.reviewer_edit.setText("Grace Hopper")
    panel.reviewer_edit.editingFinished.emit()
    assert load_settings()["reviewer_name"] == "Grace Hopper"
    panel.new_labelmap()
    lm = panel.session.labelmap
    assert lm.provenance.reviewer == "Grace Hopper"
    panel.add_label_button.click()
    assert sorted(lm.labels) == [1, 2] and panel.session.active_value == 2
    assert panel.label_table.rowCount() == 2
    panel.label_table.item(1, 1).setText("lesion")  # rename in the list
    assert lm.labels[2].name == "lesion"
    lm.recolor(2, (10, 200, 30))
    assert state.layer("annotation").colors[2] == (10, 200, 30)
    assert panel.label_table.item(1, 0).background().color().getRgb()[:3] == (10, 200, 30)
    # lock label 1: painting label 2 over it leaves it alone
    i, j, k = state.cursor
    panel.select_label(1)
    view = _axial(loaded_window)
    state.set_tool("annotate.brush")
    click(view, voxel_to_widget(view, (i, j, k)))
    assert lm.array[k, j, i] == 1
    panel.label_table.item(0, 3).setCheckState(Qt.CheckState.Checked)
    assert lm.labels[1].locked
    panel.select_label(2)
    click(view, voxel_to_widget(view, (i, j, k)))
    assert lm.array[k, j, i] == 1
    # hide label 1: the layer stops drawing it
    panel.label_table.item(0, 2).setCheckState(Qt.CheckState.Unchecked)
    assert 1 in state.layer("annotation").hidden_labels


def test_tools_fill_lasso_and_slice_operations(loaded_window, panel):
    state = loaded_window.state
    panel.new_labelmap()
    lm = panel.session.labelmap
    view = _axial(loaded_window)
    i, j, k = state.cursor
    state.set_tool("annotate.lasso")
    corners = [(i - 20, j - 20, k), (i + 20, j - 20, k), (i + 20, j + 20, k), (i - 20, j + 20, k), (i - 20, j - 20, k)]
    pts = [voxel_to_widget(view, c) for c in corners]
    vp = view.viewport()
    from PySide6.QtCore import QEvent

    from tests.ui.conftest import _send

    _send(vp, QEvent.Type.MouseMove, pts[0], Qt.MouseButton.NoButton, Qt.MouseButton.NoButton)
    _send(vp, QEvent.Type.MouseButtonPress, pts[0], Qt.MouseButton.LeftButton, Qt.MouseButton.LeftButton)
    import time

    for p in pts[1:]:
        time.sleep(0.012)
        _send(vp, QEvent.Type.MouseMove, p, Qt.MouseButton.NoButton, Qt.MouseButton.LeftButton)
    lasso = panel.session.tools["annotate.lasso"]
    assert lasso._curve is not None and lasso._curve.getData()[0].size == len(lasso.points) + 1  # outline shown
    _send(vp, QEvent.Type.MouseButtonRelease, pts[-1], Qt.MouseButton.LeftButton, Qt.MouseButton.NoButton)
    QApplication.processEvents()
    assert lasso._curve is None
    assert lm.array[k, j, i] == 1 and lm.array[k, j - 25, i] == 0
    assert abs(int(lm.array[k].sum()) - 41 * 41) < 200
    # flood fill a hole punched with the eraser
    lm.add_label("hole")
    state.set_tool("annotate.fill")
    panel.select_label(2)
    click(view, voxel_to_widget(view, (i, j, k)))
    assert lm.array[k, j, i] == 2 and lm.array[k, j - 25, i] == 0
    # copy the previous slice, then interpolate over a gap
    panel.select_label(2)
    state.set_cursor((i, j, k + 1))
    panel.copy_button.click()
    assert np.array_equal(lm.array[k + 1] == 2, lm.array[k] == 2)
    state.set_cursor((i, j, k + 4))
    panel.copy_button.click()  # copies slice k+3 (empty): nothing happens
    lm.array[k + 4] = lm.array[k + 1]
    panel.interp_button.click()
    assert (lm.array[k + 2] == 2).sum() > 0 and (lm.array[k + 3] == 2).sum() > 0
    names = [panel.history_list.item(n).text() for n in range(panel.history_list.count())]
    assert names == ["Polygon fill", "Flood fill", "Copy slice", "Interpolate slices"]


def test_edit_ai_result_shows_summary_and_classification_review(loaded_window, panel, tmp_path):
    from medview.inference.prediction import Prediction

    state = loaded_window.state
    vol = state.volume
    i, j, k = state.cursor
    ai = np.zeros(vol.shape, np.uint8)
    ai[k - 1:k + 2, j - 15:j + 15, i - 15:i + 15] = 1
    pred = Prediction("demo-seg", "Demo", "0.1", "aa" * 32, "segmentation", "cpu", labels=vol.like(ai),
                      label_info=[{"value": 1, "name": "lesion", "color": [255, 0, 0]}])
    from medview.ui.viewer_state import LabelLayer

    state.add_layer(LabelLayer("AI result", pred.labels))  # what the model panel shows
    panel.edit_prediction(pred)
    assert not state.layer("AI result").visible  # hidden so erased voxels do not show through
    lm = panel.session.labelmap
    assert lm.provenance.source == "model" and lm.labels[1].name == "lesion"
    panel.radius_spin.setValue(3.0)
    view = _axial(loaded_window)
    state.set_tool("annotate.erase")
    QApplication.processEvents()
    drag(view, voxel_to_widget(view, (i - 10, j, k)), voxel_to_widget(view, (i + 10, j, k)))
    panel._refresh_summary()
    text = panel.summary_label.text()
    removed = int(np.count_nonzero((ai == 1) & (lm.array == 0)))
    assert removed > 0 and f"-{removed}" in text and "Dice" in text

    clf = Prediction("busi", "BUSI", "1.0", "bb" * 32, "classification", "cpu",
                     classes=["benign", "malignant", "normal"],
                     probabilities={"benign": 0.2, "malignant": 0.7, "normal": 0.1})
    panel.set_classification(clf)
    assert "malignant" in panel.review_label.text()
    panel.accept_button.click()
    panel.comment_edit.setText("margins are smooth")
    panel.relabel_combo.setCurrentText("benign")
    panel.relabel_button.click()
    assert [r.decision for r in panel.reviews] == ["accept", "relabel"]
    assert panel.reviews[1].final_label == "benign" and panel.reviews[1].comment == "margins are smooth"
    j_path, c_path = panel.export_reviews(tmp_path / "reviews")
    data = json.loads(j_path.read_text())
    assert data["reviews"][1]["model_sha256"] == "bb" * 32
    assert c_path.read_text().count("\n") == 3


def test_crash_recovery_banner_restores_the_labels(loaded_window, qtbot):
    from medview.annotation import LabelMap, paint
    from medview.annotation.workspace import Workspace, workspace_key, workspaces_dir
    from medview.ui.annotation_panel import install

    vol = loaded_window.state.volume
    lm = LabelMap.empty(vol)
    root = workspaces_dir() / workspace_key(lm.reference)
    ws = Workspace.create(root, lm, autosave_delay=100)
    ws.history.push(paint(lm, (5, 100, 100), radius_mm=5, value=1))
    want = lm.array.copy()
    # simulate the crash: the process that held the session is gone, the journal is left behind
    ws._stop.set()
    (root / "session.lock").write_text(json.dumps({"pid": 2**22 + 12345, "host": socket.gethostname()}))
    assert os.path.getsize(root / "journal.log") > 0
    panel = install(loaded_window)
    qtbot.waitUntil(lambda: panel.recovery_box.isVisible(), timeout=5000)
    assert "not closed properly" in panel.recovery_label.text()
    panel.restore_button.click()
    assert panel.session.active
    assert np.array_equal(panel.session.labelmap.array, want)
    assert not panel.recovery_box.isVisible()
    panel.shutdown()


def test_edit_and_review_buttons_of_the_models_panel_reach_the_annotation_panel(main_window, qtbot, tmp_path,
                                                                                monkeypatch):
    """Real tiny model packages run by the AI models panel; its "Edit labels" and "Review"
    buttons hand the result over to the annotation panel."""
    import torch

    from medview.annotation import paint
    from medview.inference import networks, package
    from medview.io.volume import Volume
    from medview.ui import annotation_panel, models_panel

    def pkg(folder, manifest):
        torch.manual_seed(0)
        net = networks.build_network(manifest["network"]["architecture"], manifest["network"]["args"])
        package.write_package(folder, manifest, net.state_dict(), "# test model\nresearch use only")

    d = tmp_path / "models"
    pkg(d / "seg", {
        "id": "toy-seg", "name": "Toy segmenter", "version": "2.0.0", "task": "segmentation",
        "modality": ["OT", ""],
        "network": {"architecture": "UNet", "args": {"spatial_dims": 2, "in_channels": 1, "out_channels": 2,
                                                     "channels": [4, 8], "strides": [2]}},
        "input": {"dims": 2, "channels": "grey", "normalization": {"kind": "zscore"}},
        "output": {"labels": [{"value": 1, "name": "lesion", "color": [255, 0, 0]}], "activation": "softmax"}})
    pkg(d / "cls", {
        "id": "toy-cls", "name": "Toy classifier", "version": "1.0.0", "task": "classification",
        "modality": ["OT", ""],
        "network": {"architecture": "resnet10", "args": {"spatial_dims": 2, "n_input_channels": 1,
                                                         "num_classes": 2, "widen_factor": 0.25}},
        "input": {"dims": 2, "channels": "grey", "size": [32, 32], "normalization": {"kind": "zscore"}},
        "output": {"classes": ["benign", "malignant"]}, "gradcam_layer": "layer2"})
    monkeypatch.setenv("MEDVIEW_MODELS", str(d))
    mp = models_panel.install(main_window)
    ap = annotation_panel.install(main_window)
    yy, xx = np.mgrid[:96, :128]
    img = ((np.hypot(yy - 48, xx - 64) < 20) * 200 + 20).astype(np.uint8)[np.newaxis]
    main_window.state.set_volume(Volume(img, meta={"Modality": "OT", "SeriesInstanceUID": "1.2.3.99"}))
    QApplication.processEvents()

    assert mp.select("toy-seg")
    with qtbot.waitSignal(mp.prediction_ready, timeout=60000) as blocker:
        mp.run_selected()
    seg = blocker.args[0]
    seg.labels.array[0, 40:56, 56:72] = 1  # make sure the untrained net's output has a region to edit
    mp.edit_button.click()
    lm = ap.session.labelmap
    assert lm is not None and lm.provenance.model_id == "toy-seg" and lm.provenance.model_version == "2.0.0"
    assert lm.labels[1].name == "lesion" and np.array_equal(lm.array, seg.labels.array)
    ap.session.apply(paint(lm, (0, 48, 64), radius_mm=3, value=0))  # the reviewer erases part of it
    ap._refresh_summary()
    assert "vs AI" in ap.summary_label.text() and "lesion: +0 / -" in ap.summary_label.text()

    assert mp.select("toy-cls")
    with qtbot.waitSignal(mp.prediction_ready, timeout=60000) as blocker:
        mp.run_selected()
    mp.review_button.click()
    assert ap.accept_button.isEnabled()
    ap.reject_button.click()
    assert ap.reviews[-1].decision == "reject" and ap.reviews[-1].model_id == "toy-cls"
    mp.wait_idle()
    ap.shutdown()
