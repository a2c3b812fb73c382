"""The AI assist tool in the real window: left click adds, right click removes, a drag draws a
box; each interaction is one undo step named after the model; on a 3D series the mask
propagates (from a timer) until the object ends; Stop. The network is replaced by a
deterministic stand-in (tests/interactive/fakes.py) so the test checks the tool, not training."""

from __future__ import annotations

import numpy as np
import pytest
from PySide6.QtCore import Qt
from PySide6.QtWidgets import QApplication

from tests.interactive.fakes import BrightRegionSegmenter, ball_volume
from tests.ui.conftest import click, drag, voxel_to_widget

pytestmark = pytest.mark.gui


@pytest.fixture
def ai_panel(main_window, qtbot):
    from medview.io.volume import Volume
    from medview.ui.annotation_panel import install

    img, ball = ball_volume(shape=(20, 64, 64), centre=(10, 32, 32), radius=8)
    main_window.state.set_volume(Volume(img.astype(np.int16), meta={"Modality": "MR", "SeriesInstanceUID": "1.2.9"}))
    QApplication.processEvents()
    panel = install(main_window)
    panel.session.ai.segmenter = BrightRegionSegmenter()
    panel.new_labelmap()
    main_window.state.set_tool("annotate.ai")
    main_window.state.set_cursor((32, 32, 10))
    QApplication.processEvents()
    yield panel, ball
    panel.shutdown()


def _wait_idle(panel, qtbot):
    qtbot.waitUntil(lambda: panel.session.ai._iter is None, timeout=10000)
    QApplication.processEvents()


def test_click_adds_and_propagates_as_one_undo_step_right_click_removes(main_window, ai_panel, qtbot):
    panel, ball = ai_panel
    view = main_window.viewer.views["axial"]
    lm = panel.session.labelmap
    click(view, voxel_to_widget(view, (32, 32, 10)))
    _wait_idle(panel, qtbot)
    assert np.array_equal(lm.array[10] == 1, ball[10])
    assert lm.array[6].any() and lm.array[14].any()  # propagated through the neighbouring slices
    assert not lm.array[0].any() and not lm.array[19].any()  # and stopped at the object's end
    assert [panel.history_list.item(n).text() for n in range(panel.history_list.count())] == [
        "AI assist (fake-interactive 9.9.9)"]
    assert lm.provenance.ai_assisted == {"fake-interactive 9.9.9": 1}
    assert "ms" in panel.ai_group.status_label.text()
    panel.ai_group.propagate_check.setChecked(False)
    click(view, voxel_to_widget(view, (32, 32, 10)), button=Qt.MouseButton.RightButton)
    _wait_idle(panel, qtbot)
    assert not lm.array[10].any() and lm.array[9].any()  # removed in this slice only
    assert panel.history_list.count() == 2
    panel.undo_button.click()
    assert np.array_equal(lm.array[10] == 1, ball[10])


def test_drag_draws_a_box_and_stop_ends_the_propagation(main_window, ai_panel, qtbot):
    panel, ball = ai_panel
    view = main_window.viewer.views["axial"]
    lm = panel.session.labelmap
    drag(view, voxel_to_widget(view, (24, 24, 10)), voxel_to_widget(view, (32, 40, 10)))
    panel.ai_group.stop_button.click()  # stops the propagation the drag started
    _wait_idle(panel, qtbot)
    got = lm.array[10] == 1
    assert got.any() and got[28, 28] and not got[36, 36]  # only inside the box
    done = int(lm.array.any(axis=(1, 2)).sum())
    assert done < 5 and not lm.array[6].any() and not lm.array[14].any()  # far from the ball's 13 slices
    assert panel.history_list.count() == 1 and not panel.ai_group.stop_button.isEnabled()


def test_the_model_line_names_the_3d_network_once_a_click_used_it(main_window, ai_panel, qtbot):
    from tests.interactive.test_3d import BrightRegion3D

    panel, ball = ai_panel
    view = main_window.viewer.views["axial"]
    group = panel.ai_group
    group.refresh_model()
    assert "interactive" in group.model_label.text() or "fake" in group.model_label.text()
    assist = panel.session.ai._assist()
    assist._seg3d, assist._seg3d_resolved = BrightRegion3D(), True  # a bundled 3D network fits this series
    click(view, voxel_to_widget(view, (32, 32, 10)))
    _wait_idle(panel, qtbot)
    assert group.model_label.text() == "Model: fake-3d 7.7.7 (3D) (research use only)"
    assert panel.session.labelmap.provenance.ai_assisted == {"fake-3d 7.7.7": 1}
