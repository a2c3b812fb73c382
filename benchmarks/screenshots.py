"""Screenshots of the viewer for each layout and view (for looking at, not for tests).

    xvfb-run -a -s "-screen 0 1600x1000x24" .venv/bin/python benchmarks/screenshots.py [PATH] [--out out/screenshots]

Without xvfb-run it falls back to Qt's offscreen platform. PATH defaults to the Study1 T1 series
of ../shared/data/dicom/mr-brain-tcia. Also draws a label overlay and a heatmap (synthetic
spheres on the image grid), a ruler and an ellipse ROI, so that every layer shows.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np
from window_shots import open_and_wait, shown_main_window
from window_shots import spin as _spin


def main() -> int:
    from medview.config import data_dir

    ap = argparse.ArgumentParser()
    ap.add_argument("path", nargs="?",
                    default=str(data_dir() / "dicom" / "mr-brain-tcia" / "Study1" / "34909-T1prereg-84610"))
    ap.add_argument("--out", default="out/screenshots")
    args = ap.parse_args()
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)

    app, win = shown_main_window()
    from medview.ui.viewer_state import HeatmapLayer, LabelLayer, Measurement

    if not open_and_wait(app, win, args.path):
        return 1
    vol = win.state.volume
    z, y, x = vol.shape
    kk, jj, ii = np.meshgrid(np.arange(z), np.arange(y), np.arange(x), indexing="ij")
    ci, cj, ck = x / 2, y / 2, z / 2
    r = np.sqrt(((ii - ci) * vol.spacing[0]) ** 2 + ((jj - cj) * vol.spacing[1]) ** 2
                + ((kk - ck) * vol.spacing[2]) ** 2)
    lab = np.zeros(vol.shape, np.uint8)
    lab[r < 30] = 1
    lab[(r < 15)] = 2
    win.state.add_layer(LabelLayer("segmentation", vol.like(lab), names={1: "outer", 2: "core"},
                                   opacity=0.5, outline=True))
    heat = np.exp(-(((ii - ci * 0.6) * vol.spacing[0]) ** 2 + ((jj - cj * 1.2) * vol.spacing[1]) ** 2)
                  / (2 * 25.0 ** 2)).astype(np.float32)
    win.state.add_layer(HeatmapLayer("grad-cam", vol.like(heat), opacity=0.45, threshold=0.3))
    i, j, k = win.state.cursor
    win.state.add_measurement(Measurement("ruler", "axial", k, (i - 40, j + 30, k), (i + 40, j + 30, k)))
    win.state.add_measurement(Measurement("ellipse", "axial", k, (i + 30, j - 50, k), (i + 60, j - 25, k)))
    # hover over a voxel so that the status bar shows value / voxel / world position
    from PySide6.QtCore import QPointF

    ax = win.viewer.view("axial")
    x, y = ax.geom.voxel_to_scene((i + 20, j + 15, k))
    ax.scene().sigMouseMoved.emit(ax.vb.mapViewToScene(QPointF(x, y)))
    for layout in ("1x3", "2x2"):
        win.state.set_layout(layout)
        _spin(app, 0.4)
        p = out / f"layout_{layout}.png"
        win.grab().save(str(p))
        print(p)
    for view in ("axial", "coronal", "sagittal"):
        win.state.set_active_view(view)
        win.state.set_layout("1x1")
        _spin(app, 0.4)
        p = out / f"view_{view}.png"
        win.grab().save(str(p))
        print(p)
    win.state.set_layout("1x3")
    win.info_tabs.setCurrentWidget(win.tag_browser)
    win.tag_browser.search.setText("spacing")
    _spin(app, 0.5)
    p = out / "dicom_tags.png"
    win.grab().save(str(p))
    print(p)
    win.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
