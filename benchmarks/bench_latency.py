"""Longest stall of the GUI event loop while a user opens a big volume and works with it.

    QT_QPA_PLATFORM=offscreen .venv/bin/python benchmarks/bench_latency.py [--size 512 --slices 300]

Writes a synthetic int16 volume (default 300 x 512 x 512) as NIfTI to a temporary folder, then
in the real MainWindow: opens it (scan + load run on workers), switches layouts, scrolls all
three views, drags window/level, adds a label layer and a heatmap, edits the label map and
draws measurements. A 5 ms QTimer records how late each tick comes; the report prints the
worst stall per phase (budget: 50 ms) and, last line, ``max_stall_ms=<x>``.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

import numpy as np  # noqa: E402


class Monitor:
    def __init__(self):
        from PySide6.QtCore import QTimer

        self.last = time.perf_counter()
        self.worst = 0.0
        self.timer = QTimer()
        self.timer.setInterval(5)
        self.timer.timeout.connect(self._tick)
        self.timer.start()

    def _tick(self):
        now = time.perf_counter()
        self.worst = max(self.worst, now - self.last - 0.005)
        self.last = now

    def take(self) -> float:
        w, self.worst = self.worst, 0.0
        self.last = time.perf_counter()
        return 1000 * max(w, 0.0)


def pump(app, seconds: float) -> None:
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        app.processEvents()
        time.sleep(0.001)


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--slices", type=int, default=300)
    ap.add_argument("--size", type=int, default=512)
    args = ap.parse_args()
    from PySide6.QtWidgets import QApplication

    from medview.io import save_volume
    from medview.io.volume import Volume

    app = QApplication.instance() or QApplication(sys.argv[:1])
    tmp = Path(tempfile.mkdtemp(prefix="medview-latency-"))
    rng = np.random.default_rng(0)
    arr = rng.integers(-1000, 1500, size=(args.slices, args.size, args.size), dtype=np.int16)
    path = tmp / "big.nii.gz"
    save_volume(Volume(arr, spacing=(0.7, 0.7, 1.0), meta={"Modality": "CT"}), str(path))
    del arr

    from medview.ui.main_window import MainWindow
    from medview.ui.viewer_state import HeatmapLayer, LabelLayer, Measurement

    win = MainWindow()
    win.quiet_errors = True
    win.resize(1400, 900)
    win.show()
    pump(app, 0.3)
    mon = Monitor()
    results: dict[str, float] = {}
    t0 = time.perf_counter()
    win.open_path(str(path))
    while win.state.volume is None and time.perf_counter() - t0 < 120:
        pump(app, 0.01)
    pump(app, 0.3)
    results["open (scan + load + first draw)"] = mon.take()
    print(f"opened in {time.perf_counter() - t0:.2f} s")
    st = win.state
    vol = st.volume
    for lay in ("1x1", "2x2", "1x3"):
        st.set_layout(lay)
        pump(app, 0.05)
    results["layouts"] = mon.take()
    for axis in range(3):
        for _ in range(60):
            st.move_cursor(axis, 1)
            pump(app, 0.002)
    results["scroll 3 x 60 slices"] = mon.take()
    for n in range(40):
        st.set_window(400 + 20 * n, 40 + 5 * n)
        pump(app, 0.002)
    results["window/level drag (40 steps)"] = mon.take()
    lab = np.zeros(vol.shape, np.uint8)  # (the layers' data is made by the benchmark, not timed)
    lab[100:200, 150:350, 150:350] = 1
    heat = np.zeros(vol.shape, np.float32)
    heat[:, :256] = 0.8
    pump(app, 0.02)
    mon.take()
    st.add_layer(LabelLayer("seg", vol.like(lab), outline=True))
    st.add_layer(HeatmapLayer("cam", vol.like(heat), threshold=0.5))
    pump(app, 0.05)
    results["add label + heatmap layers"] = mon.take()
    k = st.cursor[2]
    for n in range(20):
        lab[k, 10 + n, 10:40] = 2
        st.layer_changed.emit("seg", (slice(k, k + 1), slice(10 + n, 11 + n), slice(10, 40)))
        pump(app, 0.002)
    results["20 label edits"] = mon.take()
    i, j, k = st.cursor
    st.add_measurement(Measurement("ellipse", "axial", k, (i - 50, j - 50, k), (i + 50, j + 50, k)))
    st.add_measurement(Measurement("ruler", "coronal", j, (i - 50, j, k - 20), (i + 50, j, k + 20)))
    pump(app, 0.05)
    results["measurements"] = mon.take()
    for _ in range(30):
        st.move_cursor(2, -1)
        pump(app, 0.002)
    results["scroll with overlays"] = mon.take()
    win.info_tabs.setCurrentWidget(win.series_info)
    pump(app, 0.05)
    results["series info"] = mon.take()
    for name, ms in results.items():
        print(f"{name:36s} worst stall {ms:6.1f} ms")
    print(f"max_stall_ms={max(results.values()):.1f}")
    win.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
