"""Regression tests for viewer defects of issue 14 item 5 found when going through them in the
real window (Xvfb, benchmarks/reading_room_shots.py --defects): the annotation panel widened past
its dock once a label map was open (a long workspace path), so its buttons were cut off at
1600x1000; 'New label map' and AI assist messages never reached the status bar; the heatmap
colour bar cut its layer's name ("AI heatma"); the top class name of the probability bars is
drawn whole (bold, measured bold); the prior pane's title ran into its "link" label."""

from __future__ import annotations

import numpy as np
import pytest
from PySide6.QtCore import QRectF, Qt
from PySide6.QtGui import QColor, QFont, QImage, QPainter
from PySide6.QtWidgets import QApplication

from medview.io.volume import Volume
from medview.ui.viewer_state import HeatmapLayer

pytestmark = pytest.mark.gui


def _open(win, qtbot, path):
    with qtbot.waitSignal(win.volume_loaded, timeout=30000):
        win.open_path(str(path))
    QApplication.processEvents()


def test_annotation_panel_stays_as_narrow_as_its_dock_with_a_label_map_open(panels_window, t1_dir, qtbot):
    win = panels_window
    panel = win.side_panel("Annotation")
    fitted = panel.minimumSizeHint().width()  # what the dock was made wide enough for
    assert win.side_dock.minimumWidth() >= fitted
    _open(win, qtbot, t1_dir)
    panel.new_labelmap()
    QApplication.processEvents()
    assert panel.session.active and panel.session.workspace is not None
    # the long workspace folder (a series UID) wraps instead of widening the panel
    assert panel.minimumSizeHint().width() <= fitted, panel.status.text()
    assert str(panel.session.workspace.root) == panel.status.toolTip()


def test_new_label_map_and_ai_assist_messages_reach_the_status_bar(panels_window, t1_dir, qtbot):
    win = panels_window
    panel = win.side_panel("Annotation")
    _open(win, qtbot, t1_dir)
    panel.new_labelmap()
    QApplication.processEvents()
    msg = win.statusBar().currentMessage()
    assert msg.startswith("New label map") and str(panel.session.workspace.root) in msg
    ai = panel.ai_group
    assert ai.new_button.isEnabled()
    ai.new_button.click()  # AI assist: "new object"
    QApplication.processEvents()
    assert win.statusBar().currentMessage() == ai.status_label.text() != ""
    assert "AI assist" in win.statusBar().currentMessage()


def test_colour_bar_shows_the_whole_layer_name_inside_the_view(main_window):
    st = main_window.state
    a = np.zeros((6, 40, 40), np.int16)
    vol = Volume(a, meta={"Modality": "CT"})
    st.set_volume(vol)
    heat = np.linspace(0, 1, a.size, dtype=np.float32).reshape(a.shape)
    st.add_layer(HeatmapLayer("AI heatmap", vol.like(heat), threshold=0.2))
    QApplication.processEvents()
    view = main_window.viewer.view("axial")
    cb = view.color_bar
    assert cb.isVisible() and cb.title() == "AI heatmap"
    assert cb.x() + cb.width() <= view.width() and cb.x() >= 0
    st.remove_layer("AI heatmap")
    st.add_layer(HeatmapLayer("a probability map with a very long name", vol.like(heat)))
    QApplication.processEvents()
    assert cb.title().endswith("\N{HORIZONTAL ELLIPSIS}") and cb.width() <= cb.MAX_WIDTH
    assert cb.x() + cb.width() <= view.width()


def _ink_columns(img: QImage, y0: int, y1: int, x1: int) -> np.ndarray:
    a = np.array([[QColor(img.pixel(x, y)).lightness() for x in range(x1)] for y in range(y0, y1)])
    return np.flatnonzero((a < 100).any(axis=0))


@pytest.mark.parametrize("names", [("benign", "atypical_nevus_x", "melanoma"),
                                   ("KL0", "KL1_doubtful", "KL2", "KL3", "KL4_severe"),
                                   ("WWWWWWWWWW", "WWWWWWWWWWW")])
def test_probability_bars_draw_the_top_class_name_whole(qtbot, names):
    from medview.ui.models_panel import ProbabilityBars

    bars = ProbabilityBars()
    qtbot.addWidget(bars)
    top = len(names) - 1 if names[0].startswith("W") else 1
    values = {n: (0.7 if i == top else 0.3 / (len(names) - 1)) for i, n in enumerate(names)}
    bars.set_values(values)
    bars.resize(371, bars.height())  # as wide as in the 1600x1000 window
    img = bars.grab().toImage()
    y0 = 2 + 20 * top
    cols = _ink_columns(img, y0, y0 + 18, bars.width() - 52)  # the name, not the value at the right
    assert cols.size
    # the whole name in bold, right-aligned where the widget's text ends
    ref = QImage(img.size(), QImage.Format.Format_RGB32)
    ref.fill(QColor("white"))
    p = QPainter(ref)
    f = QFont(bars.font())
    f.setBold(True)
    p.setFont(f)
    p.setPen(QColor("black"))
    p.drawText(QRectF(0, y0, 300, 18), Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter, names[top])
    p.end()
    rcols = _ink_columns(ref, y0, y0 + 18, ref.width())
    shift = cols.max() - rcols.max()
    assert abs(cols.min() - (rcols.min() + shift)) <= 1, (names[top], cols.min(), rcols.min() + shift)


def test_prior_pane_title_keeps_clear_of_its_bar(main_window, qtbot):
    """The prior pane's bar had no spacing: its title ran into 'link' ("20190101 T1postlink")."""
    from PySide6.QtWidgets import QLabel

    win = main_window
    win.resize(1600, 1000)
    win.show()
    qtbot.waitExposed(win)
    a = np.zeros((6, 40, 40), np.int16)
    win.state.set_volume(Volume(a, meta={"Modality": "MR", "StudyDate": "20200119"}))
    pane = win.compare
    pane.show_volume(Volume(a, meta={"Modality": "MR", "StudyDate": "20190101", "SeriesDescription": "T1post"}))
    QApplication.processEvents()
    link = next(w for w in pane.findChildren(QLabel) if w.text() == "link")
    assert pane.isVisible() and pane.title.text() == "20190101 T1post"
    assert pane.title.fontMetrics().horizontalAdvance(pane.title.text()) <= pane.title.width()  # whole
    assert link.geometry().left() - pane.title.geometry().right() >= 4
