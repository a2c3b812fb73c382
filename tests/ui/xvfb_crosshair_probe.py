"""Run under Xvfb (not offscreen: a grab() repaints everything and hides stale pixels): open the
T1 series, drag the crosshair around the axial view three times, screenshot the real screen
and print how many columns of the coronal and sagittal viewports hold their crosshair colour.
``minimal`` as first argument restores Qt's default partial repaints (the old behaviour)."""

from __future__ import annotations

import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))


def main() -> None:
    from PIL import Image
    from PySide6.QtWidgets import QApplication, QGraphicsView

    from medview.ui.main_window import MainWindow
    from tests.ui.conftest import drag, voxel_to_widget

    series, mode = sys.argv[1], (sys.argv[2] if len(sys.argv) > 2 else "full")
    app = QApplication([])
    w = MainWindow()
    w.quiet_errors = True
    w.resize(1600, 1000)
    w.move(0, 0)
    w.show()

    def pump(s):
        end = time.monotonic() + s
        while time.monotonic() < end:
            app.processEvents()
            time.sleep(0.01)

    w.open_path(series)
    w.wait_idle(60)
    pump(1.0)
    if mode == "minimal":
        for v in w.viewer.views.values():
            v.setViewportUpdateMode(QGraphicsView.ViewportUpdateMode.MinimalViewportUpdate)
    ax = w.viewer.view("axial")
    k = w.state.cursor[2]
    for n in range(3):
        drag(ax, voxel_to_widget(ax, (100 + 80 * n, 120 + 60 * n, k)),
             voxel_to_widget(ax, (400 - 40 * n, 380 - 50 * n, k)), steps=20)
        pump(0.2)
    pump(0.5)
    shot = Path(tempfile.mkdtemp()) / "screen.png"
    subprocess.run(["import", "-window", "root", str(shot)], check=True)
    img = np.asarray(Image.open(shot).convert("RGB")).astype(int)
    for name, colour in (("coronal", (0x40, 0xC0, 0xE0)), ("sagittal", (0xE0, 0x60, 0xA0))):
        vp = w.viewer.view(name).viewport()
        g = vp.mapToGlobal(vp.rect().topLeft())
        a = img[g.y():g.y() + vp.height(), g.x():g.x() + vp.width()]
        m = np.abs(a - np.array(colour)).sum(-1) < 90
        print(f"{name} columns={int((m.sum(0) > vp.height() * 0.3).sum())} "
              f"rows={int((m.sum(1) > vp.width() * 0.3).sum())}")
    w.close()


if __name__ == "__main__":
    main()
