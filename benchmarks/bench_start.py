"""Cold start to the main window's first paint: the real `medview` entry point vs a bare window.

    QT_QPA_PLATFORM=offscreen .venv/bin/python benchmarks/bench_start.py [--runs 7]

Baseline ("bare"): a fresh Python process that imports PySide6 and pyqtgraph, shows a
QMainWindow holding a pyqtgraph GraphicsLayoutWidget with an ImageItem, and stops at its first
paint. MedView: a fresh `python -m medview` process (the real entry point: argument parsing,
logging, main window, panels, the bundled sample study opened) with MEDVIEW_FIRST_PAINT_EXIT=1,
which prints the wall-clock time of the main window's first paint and quits. Both are timed from
just before the process is spawned to that paint, run alternately (interleaved) so that machine
load hits both alike. Prints the median of each and, last line, ``ratio=<medview / bare>``.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

BARE = r"""
import sys, time
from PySide6.QtCore import QEvent, QObject, QTimer
from PySide6.QtWidgets import QApplication, QMainWindow, QWidget
import numpy as np
import pyqtgraph as pg

app = QApplication(sys.argv[:1])
win = QMainWindow()
glw = pg.GraphicsLayoutWidget()
vb = glw.addViewBox()
vb.addItem(pg.ImageItem(np.zeros((256, 256), np.int16)))
win.setCentralWidget(glw)
win.resize(1200, 800)

class FirstPaint(QObject):  # the same test as medview.ui.app.when_first_painted
    def eventFilter(self, obj, ev):
        if ev.type() == QEvent.Type.Paint and isinstance(obj, QWidget) and obj.window() is win:
            print(f"first_paint {time.time():.6f}", flush=True)
            app.removeEventFilter(self)
            QTimer.singleShot(0, app.quit)
        return False

f = FirstPaint()
app.installEventFilter(f)
win.show()
app.exec()
"""


def _one(cmd: list[str], env: dict[str, str]) -> float:
    t0 = time.time()
    out = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=120, cwd=str(ROOT))
    stamps = [line.split()[1] for line in out.stdout.splitlines() if line.startswith("first_paint ")]
    if out.returncode != 0 or not stamps:
        raise SystemExit(f"{cmd[1:3]} did not report a first paint (rc {out.returncode}):\n{out.stderr[-2000:]}")
    return float(stamps[0]) - t0


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--runs", type=int, default=7)
    args = ap.parse_args()
    env = dict(os.environ)
    env.setdefault("QT_QPA_PLATFORM", "offscreen")
    env["MEDVIEW_FIRST_PAINT_EXIT"] = "1"
    bare_cmd = [sys.executable, "-c", BARE]
    medview_cmd = [sys.executable, "-m", "medview"]
    _one(bare_cmd, env)  # warm the file cache for both; not counted
    _one(medview_cmd, env)
    bare, med = [], []
    for i in range(args.runs):
        bare.append(_one(bare_cmd, env))
        med.append(_one(medview_cmd, env))
        print(f"run {i + 1}: bare {bare[-1]:.3f} s, medview {med[-1]:.3f} s", flush=True)
    b, m = statistics.median(bare), statistics.median(med)
    print(f"bare PySide6 + pyqtgraph window: median {b:.3f} s to first paint")
    print(f"medview (python -m medview, sample study): median {m:.3f} s to first paint")
    print(f"ratio={m / b:.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
