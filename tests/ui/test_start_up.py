"""Start-up order: the study opens only after the main window has painted (the scan's imports
would otherwise delay the first paint), and the benchmark's first-paint hook really fires."""

import os
import subprocess
import sys

from PySide6.QtWidgets import QLabel, QMainWindow

from medview.ui.app import when_first_painted


def test_callback_runs_once_after_the_first_paint(qtbot):
    win = QMainWindow()
    win.setCentralWidget(QLabel("image"))
    qtbot.addWidget(win)
    calls = []
    when_first_painted(win, lambda: calls.append(win.isVisible()))
    qtbot.wait(50)
    assert calls == []  # not shown, not painted: nothing opened yet
    win.show()
    qtbot.waitUntil(lambda: bool(calls), timeout=5000)
    win.centralWidget().repaint()
    qtbot.wait(50)
    assert calls == [True]  # once, with the window on screen


def test_real_entry_point_reports_its_first_paint():
    env = {**os.environ, "QT_QPA_PLATFORM": "offscreen", "MEDVIEW_FIRST_PAINT_EXIT": "1"}
    out = subprocess.run([sys.executable, "-m", "medview"], capture_output=True, text=True, timeout=120, env=env)
    assert out.returncode == 0, out.stderr[-2000:]
    stamps = [line for line in out.stdout.splitlines() if line.startswith("first_paint ")]
    assert len(stamps) == 1 and float(stamps[0].split()[1]) > 0


def test_models_panel_lists_packages_from_a_worker_at_start_up(qtbot):
    from medview.ui import models_panel
    from medview.ui.main_window import MainWindow

    win = MainWindow()
    qtbot.addWidget(win)
    panel = models_panel.install(win, background=True)
    assert panel.packages == []  # nothing hashed on the GUI thread
    assert "Checking model packages" in panel.list.item(0).text()
    qtbot.waitUntil(lambda: bool(panel.packages), timeout=30000)
    ids = {p.id for p in panel.packages}
    assert {"hippocampus", "breast-us"} <= ids
    listed = [p for p in panel.packages if not (p.ok and p.task == "interactive-segmentation")]  # AI assist's
    assert panel.list.count() == len(listed)
