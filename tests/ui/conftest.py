"""Helpers for driving the viewer like a user (offscreen Qt, real data, real pyqtgraph)."""

from __future__ import annotations

import time

import numpy as np
import pytest
from PySide6.QtCore import QEvent, QPoint, QPointF, Qt
from PySide6.QtGui import QMouseEvent, QWheelEvent
from PySide6.QtWidgets import QApplication

T1_SERIES = ("dicom", "mr-brain-tcia", "Study1", "34909-T1prereg-84610")


@pytest.fixture
def t1_dir(shared_data):
    d = shared_data.joinpath(*T1_SERIES)
    if not d.is_dir():
        pytest.skip(f"{d} not found")
    return d


@pytest.fixture
def main_window(qtbot):
    from medview.ui.main_window import MainWindow

    win = MainWindow()
    win.quiet_errors = True
    win.resize(1400, 900)
    qtbot.addWidget(win)
    win.show()
    qtbot.waitExposed(win)
    return win


@pytest.fixture
def panels_window(qtbot):
    """The main window at the default 1600x1000 with every side panel installed, as the app starts."""
    from medview.ui.app import _install_panels
    from medview.ui.main_window import MainWindow

    win = MainWindow()
    win.quiet_errors = True
    qtbot.addWidget(win)
    _install_panels(win)
    win.resize(1600, 1000)
    win.show()
    qtbot.waitExposed(win)
    return win


@pytest.fixture
def loaded_window(main_window, t1_dir, qtbot):
    with qtbot.waitSignal(main_window.volume_loaded, timeout=30000):
        main_window.open_path(str(t1_dir))
    QApplication.processEvents()
    return main_window


def voxel_to_widget(view, ijk) -> QPoint:
    """Viewport pixel of a voxel position in a SliceView."""
    x, y = view.geom.voxel_to_scene(ijk)
    scene = view.vb.mapViewToScene(QPointF(x, y))
    p = view.mapFromScene(scene)
    return QPoint(int(round(p.x())), int(round(p.y())))


def _send(widget, etype, pos: QPoint, button, buttons, modifiers=Qt.KeyboardModifier.NoModifier):
    gpos = QPointF(widget.mapToGlobal(pos))
    ev = QMouseEvent(etype, QPointF(pos), gpos, button, buttons, modifiers)
    QApplication.sendEvent(widget, ev)


def click(view, pos: QPoint, button=Qt.MouseButton.LeftButton) -> None:
    vp = view.viewport()
    _send(vp, QEvent.Type.MouseMove, pos, Qt.MouseButton.NoButton, Qt.MouseButton.NoButton)
    _send(vp, QEvent.Type.MouseButtonPress, pos, button, button)
    _send(vp, QEvent.Type.MouseButtonRelease, pos, button, Qt.MouseButton.NoButton)
    QApplication.processEvents()


def drag(view, p0: QPoint, p1: QPoint, button=Qt.MouseButton.LeftButton, steps: int = 8) -> None:
    vp = view.viewport()
    _send(vp, QEvent.Type.MouseMove, p0, Qt.MouseButton.NoButton, Qt.MouseButton.NoButton)
    _send(vp, QEvent.Type.MouseButtonPress, p0, button, button)
    for t in np.linspace(0, 1, steps + 1)[1:]:
        time.sleep(0.012)  # pyqtgraph drops mouse moves faster than its rate limit (100/s), as a hand would
        p = QPoint(int(round(p0.x() + t * (p1.x() - p0.x()))), int(round(p0.y() + t * (p1.y() - p0.y()))))
        _send(vp, QEvent.Type.MouseMove, p, Qt.MouseButton.NoButton, button)
    _send(vp, QEvent.Type.MouseButtonRelease, p1, button, Qt.MouseButton.NoButton)
    QApplication.processEvents()


def wheel(view, pos: QPoint, notches: int, modifiers=Qt.KeyboardModifier.NoModifier) -> None:
    vp = view.viewport()
    for _ in range(abs(notches)):
        ev = QWheelEvent(QPointF(pos), QPointF(vp.mapToGlobal(pos)), QPoint(0, 0),
                         QPoint(0, 120 if notches > 0 else -120), Qt.MouseButton.NoButton, modifiers,
                         Qt.ScrollPhase.NoScrollPhase, False)
        QApplication.sendEvent(vp, ev)
    QApplication.processEvents()


def shown_pixel(view, pos: QPoint):
    """(r, g, b) actually painted at a viewport pixel."""
    img = view.viewport().grab().toImage()
    c = img.pixelColor(pos)
    return c.red(), c.green(), c.blue()
