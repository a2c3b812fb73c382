"""Regression tests of the annotation defects users hit: the Restore banner / Edit labels /
Review open their tab AND bring it to the front; Edit labels arms no tool; after restore the
focus is not in the Reviewer field (the A shortcut must not overwrite the name); fill at
tolerance 0 on open background does not flood the slice; a new label's colour is distinct;
a restored session can still undo; shortcuts ([ ], Ctrl+Y, tool keys)."""

from __future__ import annotations

import json
import os
import socket

import numpy as np
import pytest
from PySide6.QtCore import Qt
from PySide6.QtWidgets import QApplication, QLabel

from tests.ui.conftest import click, voxel_to_widget

pytestmark = pytest.mark.gui


def _other_tab_in_front(win):
    other = win.add_side_panel("Other", QLabel("another panel"))
    tabs = win.side_tabs
    tabs.setCurrentIndex(tabs.count() - 1)
    assert tabs.currentWidget().widget() is other
    return tabs


def _front_panel(win):
    return win.side_tabs.currentWidget().widget()


def _crashed_session(vol, edits=3):
    from medview.annotation import LabelMap, paint
    from medview.annotation.undo_log import UndoLog
    from medview.annotation.workspace import Workspace, workspace_key, workspaces_dir

    lm = LabelMap.empty(vol)
    root = workspaces_dir() / workspace_key(lm.reference)
    ws = Workspace.create(root, lm, autosave_delay=100)
    ws.history.listeners.append(UndoLog(root))  # what the app's session attaches
    for n in range(edits):
        ws.history.push(paint(lm, (5, 100, 100 + 20 * n), radius_mm=5, value=1), f"stroke {n}")
    want = lm.array.copy()
    ws._stop.set()  # the crash: the owner is gone, the journal is left behind
    (root / "session.lock").write_text(json.dumps({"pid": 2**22 + 12345, "host": socket.gethostname()}))
    assert os.path.getsize(root / "journal.log") > 0
    return want


def test_restore_banner_comes_to_the_front_and_restore_keeps_focus_out_of_the_reviewer_field(loaded_window,
                                                                                              qtbot):
    from medview.app_logging import load_settings
    from medview.ui.annotation_panel import install

    win = loaded_window
    want = _crashed_session(win.state.volume)
    panel = install(win)
    _other_tab_in_front(win)
    qtbot.waitUntil(lambda: panel.recovery_box.isVisible(), timeout=5000)
    assert _front_panel(win) is panel  # the offer is visible, not behind another tab
    win.activateWindow()
    panel.restore_button.setFocus()
    name_before = panel.reviewer_edit.text()
    panel.restore_button.click()
    QApplication.processEvents()
    assert panel.session.active and np.array_equal(panel.session.labelmap.array, want)
    assert not panel.reviewer_edit.hasFocus()
    assert panel.reviewer_edit.focusPolicy() == Qt.FocusPolicy.ClickFocus
    assert win.state.tool == "navigate"  # restoring arms no tool
    qtbot.keyClick(QApplication.focusWidget() or win, Qt.Key.Key_A)  # auto window, not typing
    QApplication.processEvents()
    assert panel.reviewer_edit.text() == name_before
    assert load_settings().get("reviewer_name") in (None, name_before)
    # the restored session still has its undo history
    assert panel.history_list.count() == 3 and panel.undo_button.isEnabled()
    panel.undo_button.click()
    assert panel.session.labelmap.array[5, 100, 140] == 0 and panel.session.labelmap.array[5, 100, 100] == 1
    panel.shutdown()


def test_edit_labels_and_review_bring_the_tab_to_the_front_and_arm_no_tool(loaded_window):
    from medview.inference.prediction import Prediction
    from medview.ui.annotation_panel import install

    win = loaded_window
    panel = install(win)
    vol = win.state.volume
    i, j, k = win.state.cursor
    ai = np.zeros(vol.shape, np.uint8)
    ai[k, j - 5:j + 5, i - 5:i + 5] = 1
    pred = Prediction("demo-seg", "Demo", "0.1", "aa" * 32, "segmentation", "cpu", labels=vol.like(ai),
                      label_info=[{"value": 1, "name": "lesion", "color": [64, 200, 64]}])
    _other_tab_in_front(win)
    panel.edit_prediction(pred)
    assert _front_panel(win) is panel
    assert win.state.tool == "navigate"
    view = win.viewer.views["axial"]
    QApplication.processEvents()
    click(view, voxel_to_widget(view, (i + 30, j + 30, k)))  # a click only moves the crosshair
    assert panel.session.labelmap.array[k, j + 30, i + 30] == 0
    # a new label's colour is far from the model's green
    from medview.annotation.labelmap import _colour_distance

    v = panel.add_label()
    assert _colour_distance(panel.session.labelmap.labels[v].color, (64, 200, 64)) >= 100
    clf = Prediction("busi", "BUSI", "1.0", "bb" * 32, "classification", "cpu", classes=["a", "b"],
                     probabilities={"a": 0.3, "b": 0.7})
    _other_tab_in_front(win)
    panel.set_classification(clf)
    assert _front_panel(win) is panel
    panel.shutdown()


def test_fill_at_tolerance_zero_on_open_background_does_not_flood(loaded_window):
    from medview.ui.annotation_panel import install

    win = loaded_window
    panel = install(win)
    panel.new_labelmap()
    lm = panel.session.labelmap
    i, j, k = win.state.cursor
    win.state.set_tool("annotate.fill")
    panel.tol_spin.setValue(0)
    view = win.viewer.views["axial"]
    QApplication.processEvents()
    click(view, voxel_to_widget(view, (i, j, k)))
    assert lm.array.max() == 0 and "not enclosed" in panel.status.text()
    lm.array[k, j - 10:j + 10, i - 10:i + 10] = 1
    lm.array[k, j - 5:j + 5, i - 5:i + 5] = 0
    click(view, voxel_to_widget(view, (i, j, k)))  # an enclosed hole: filled
    assert (lm.array[k, j - 5:j + 5, i - 5:i + 5] == 1).all()
    panel.shutdown()


def test_shortcuts_brush_size_redo_and_tool_keys(loaded_window, qtbot):
    from medview.ui.annotation_panel import install

    win = loaded_window
    panel = install(win)
    panel.new_labelmap()
    win.activateWindow()
    win.viewer.views["axial"].setFocus()
    r0 = panel.radius_spin.value()
    qtbot.keyClick(win, Qt.Key.Key_BracketRight)
    assert panel.radius_spin.value() > r0
    qtbot.keyClick(win, Qt.Key.Key_BracketLeft)
    qtbot.keyClick(win, Qt.Key.Key_BracketLeft)
    assert panel.radius_spin.value() < r0
    for key, tool in ((Qt.Key.Key_X, "annotate.erase"), (Qt.Key.Key_G, "annotate.fill"),
                      (Qt.Key.Key_V, "annotate.level"), (Qt.Key.Key_Q, "annotate.ai"),
                      (Qt.Key.Key_B, "annotate.brush")):
        qtbot.keyClick(win, key)
        assert win.state.tool == tool
    lm = panel.session.labelmap
    i, j, k = win.state.cursor
    view = win.viewer.views["axial"]
    QApplication.processEvents()
    click(view, voxel_to_widget(view, (i, j, k)))
    assert lm.array[k, j, i] == 1
    qtbot.keyClick(win, Qt.Key.Key_Z, Qt.KeyboardModifier.ControlModifier)
    assert lm.array[k, j, i] == 0
    qtbot.keyClick(win, Qt.Key.Key_Y, Qt.KeyboardModifier.ControlModifier)
    assert lm.array[k, j, i] == 1
    panel.shutdown()
