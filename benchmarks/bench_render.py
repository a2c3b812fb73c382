"""Scrolling speed of the slice view with a label overlay and a heatmap, against a bare ImageItem.

    QT_QPA_PLATFORM=offscreen .venv/bin/python benchmarks/bench_render.py [--slices 300] [--size 512]

Draws every slice of a synthetic int16 volume (300 x 512 x 512) in an 800x800 view, forcing a
synchronous repaint per slice, twice: (1) a bare pyqtgraph GraphicsLayoutWidget + ViewBox +
ImageItem with levels (the baseline) and (2) MedView's axial SliceView driven through the
ViewerState cursor, with a LabelLayer (uint8, 3 labels) and a HeatmapLayer (float32, threshold)
on top, crosshair and text overlays on. The two alternate in chunks of 25 slices so that both
see the same load on a shared machine; each full pass is one run, --repeats runs, the median run
(by ratio) is reported. Also prints the worst single-frame time of (2) (budget: 50 ms).
Last line: ``ratio=<fps of (2) / fps of (1)>`` of the median run.
"""

from __future__ import annotations

import argparse
import os
import sys
import time

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

import numpy as np  # noqa: E402


def make_data(n: int, size: int):
    rng = np.random.default_rng(0)
    k = np.arange(n, dtype=np.float32)[:, None, None]
    yy, xx = np.mgrid[0:size, 0:size].astype(np.float32)
    c = size / 2
    r2 = ((xx - c) ** 2 + (yy - c) ** 2)[None]
    img = np.empty((n, size, size), np.int16)
    lab = np.zeros((n, size, size), np.uint8)
    heat = np.empty((n, size, size), np.float32)
    for z in range(n):  # slice by slice keeps memory small
        rad = (0.35 + 0.1 * np.sin(z / 20.0)) * size
        body = r2[0] < rad**2
        img[z] = (body * 800 + rng.normal(0, 30, (size, size))).astype(np.int16)
        lab[z][r2[0] < (0.12 * size) ** 2] = 1
        lab[z][(xx - c * 1.3) ** 2 + (yy - c) ** 2 < (0.06 * size) ** 2] = 2
        lab[z][(xx - c * 0.7) ** 2 + (yy - c * 0.8) ** 2 < (0.05 * size) ** 2] = 3
        heat[z] = np.exp(-(((xx - c * 0.8) ** 2 + (yy - c * 1.1) ** 2) / (2 * (0.15 * size) ** 2))
                         - (float(k[z, 0, 0]) - n / 2) ** 2 / (2 * (n / 3) ** 2))
    return img, lab, heat


class Bare:
    """The baseline: bare GraphicsLayoutWidget + ViewBox + ImageItem with levels, no overlays."""

    def __init__(self, img, size_px: int, levels):
        import pyqtgraph as pg

        pg.setConfigOptions(imageAxisOrder="row-major")
        self.img, self.levels = img, levels
        self.w = pg.GraphicsLayoutWidget()
        self.w.resize(size_px, size_px)
        vb = self.w.addViewBox(lockAspect=True, invertY=True)
        self.item = pg.ImageItem(axisOrder="row-major")
        vb.addItem(self.item)
        self.item.setImage(img[0], autoLevels=False, levels=levels)
        self.w.show()
        vb.autoRange(padding=0)

    def frame(self, z: int) -> None:
        self.item.setImage(self.img[z], autoLevels=False, levels=self.levels)
        self.w.viewport().repaint()


class Ours:
    """MedView's axial SliceView driven through the ViewerState, label + heatmap layers on."""

    def __init__(self, vol, lab, heat, size_px: int, window):
        from medview.ui.slice_view import SliceView
        from medview.ui.viewer_state import HeatmapLayer, LabelLayer, ViewerState

        self.state = state = ViewerState()
        state.set_volume(vol, window=window)
        state.add_layer(LabelLayer("labels", vol.like(lab), names={1: "a", 2: "b", 3: "c"}, opacity=0.5))
        state.add_layer(HeatmapLayer("heat", vol.like(heat), colormap="inferno", opacity=0.4,
                                     threshold=0.2))
        self.view = SliceView(state, "axial")
        self.view.resize(size_px, size_px)
        self.view.show()
        self.view.fit()
        self.i, self.j, _ = state.cursor

    def frame(self, z: int) -> None:
        self.state.set_cursor((self.i, self.j, z))
        self.view.viewport().repaint()


def run_interleaved(app, bare: Bare, ours: Ours, n: int, chunk: int = 25):
    """Both draw the same slices, alternating in chunks, so both see the same machine load."""
    t_bare = t_ours = 0.0
    worst = 0.0
    for c0 in range(0, n, chunk):
        zs = range(c0, min(n, c0 + chunk))
        app.processEvents()
        t0 = time.perf_counter()
        for z in zs:
            bare.frame(z)
        t_bare += time.perf_counter() - t0
        app.processEvents()
        t0 = time.perf_counter()
        for z in zs:
            f0 = time.perf_counter()
            ours.frame(z)
            worst = max(worst, time.perf_counter() - f0)
        t_ours += time.perf_counter() - t0
    return n / t_bare, n / t_ours, worst


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--slices", type=int, default=300)
    ap.add_argument("--size", type=int, default=512)
    ap.add_argument("--window", type=int, default=800, help="view size in pixels")
    ap.add_argument("--repeats", type=int, default=3)
    args = ap.parse_args()

    from PySide6.QtWidgets import QApplication

    from medview.io.volume import Volume

    app = QApplication.instance() or QApplication(sys.argv[:1])
    img, lab, heat = make_data(args.slices, args.size)
    vol = Volume(img, spacing=(0.7, 0.7, 1.0), meta={"Modality": "CT"})
    window = (400.0, 400.0)
    levels = (window[1] - window[0] / 2, window[1] + window[0] / 2)
    print(f"volume {img.shape} int16, label uint8 (3 labels) + heatmap float32, view {args.window}px, "
          f"platform {app.platformName()}")
    bare_view = Bare(img, args.window, levels)
    ours_view = Ours(vol, lab, heat, args.window, window)
    run_interleaved(app, bare_view, ours_view, min(50, args.slices))  # warm up
    runs = [run_interleaved(app, bare_view, ours_view, args.slices) for _ in range(args.repeats)]
    best = max(runs, key=lambda r: r[1] / r[0])
    median = sorted(runs, key=lambda r: r[1] / r[0])[len(runs) // 2]
    for n, (b, o, w) in enumerate(runs):
        print(f"run {n + 1}: bare ImageItem {b:.1f} fps, SliceView + label + heatmap {o:.1f} fps, "
              f"ratio {o / b:.3f}, worst frame {1000 * w:.1f} ms")
    b, o, w = median
    print(f"median run: bare ImageItem {b:.1f} fps; SliceView + label + heatmap {o:.1f} fps; "
          f"worst frame {1000 * w:.1f} ms (best run's ratio {best[1] / best[0]:.3f})")
    print(f"ratio={o / b:.3f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
