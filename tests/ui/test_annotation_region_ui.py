"""The label-operation and tool-setting widgets drive the region tools on the open label map:
smoothing, dilate / erode in mm, fill holes, grow from seeds, level tracing, paint-over limit,
statistics table and outline display (offscreen Qt, a synthetic image)."""

from __future__ import annotations

import numpy as np
import pytest
from PySide6.QtWidgets import QApplication

from tests.ui.conftest import click, voxel_to_widget

pytestmark = pytest.mark.gui


@pytest.fixture
def panel(main_window):
    from medview.io.volume import Volume
    from medview.ui.annotation_panel import install

    yy, xx = np.mgrid[:64, :64]
    disc = ((yy - 32) ** 2 + (xx - 32) ** 2) <= 12**2
    img = np.repeat((disc * 100 + 20).astype(np.int16)[None], 5, axis=0)
    main_window.state.set_volume(Volume(img, spacing=(0.5, 0.5, 2.0), meta={"Modality": "MR"}))
    QApplication.processEvents()
    p = install(main_window)
    p.new_labelmap()
    main_window.state.set_cursor((32, 32, 2))
    QApplication.processEvents()
    yield p
    p.shutdown()


def test_level_trace_then_margins_holes_smoothing_and_statistics(main_window, panel):
    lm = panel.session.labelmap
    view = main_window.viewer.views["axial"]
    main_window.state.set_tool("annotate.level")
    QApplication.processEvents()
    click(view, voxel_to_widget(view, (32, 32, 2)))
    disc = main_window.state.volume.array[2] > 50
    assert np.array_equal(lm.array[2] == 1, disc)
    n = int(disc.sum())
    panel.ops.margin_mm.setValue(1.0)  # 2 pixels of 0.5 mm
    panel.ops.grow_mm_button.click()
    assert int((lm.array[2] == 1).sum()) > n and lm.array[2, 32, 32 + 12 + 2] == 1
    panel.ops.shrink_mm_button.click()
    lm.array[2, 30:34, 30:34] = 0
    panel.ops.holes_button.click()
    assert (lm.array[2, 30:34, 30:34] == 1).all()
    panel.ops.smooth_combo.setCurrentText("opening")
    panel.ops.smooth_button.click()
    names = [panel.history_list.item(i).text() for i in range(panel.history_list.count())]
    assert names[:4] == ["Level tracing", "Grow 1 mm", "Shrink 1 mm", "Fill holes"]
    rows = panel.labels.refresh_statistics()
    assert panel.labels.stats_table.isVisible() and rows[0].voxels == int((lm.array == 1).sum())
    assert panel.labels.stats_table.item(0, 2).text().endswith("mL")
    panel.tools.outline_check.setChecked(True)
    assert main_window.state.layer("annotation").outline


def test_grow_from_seeds_and_paint_over_background_only(main_window, panel):
    lm = panel.session.labelmap
    lm.add_label("surroundings")
    lm.array[2, 31:34, 31:34] = 1
    lm.array[2, 2:4, 2:62] = 2
    lm.array[2, 60:62, 2:62] = 2
    panel.ops.grow_button.click()
    disc = main_window.state.volume.array[2] > 50
    got = lm.array[2] == 1
    assert 2 * (got & disc).sum() / (got.sum() + disc.sum()) > 0.95
    # paint over background only: a brush stroke of label 2 leaves label 1 alone
    panel.tools.over_combo.setCurrentIndex(panel.tools.over_combo.findData("background"))
    panel.select_label(2)
    panel.radius_spin.setValue(20.0)
    main_window.state.set_tool("annotate.brush")
    view = main_window.viewer.views["axial"]
    QApplication.processEvents()
    before = lm.array[2] == 1
    click(view, voxel_to_widget(view, (32, 32, 2)))
    assert np.array_equal(lm.array[2] == 1, before)
