"""Cold start to the main window's first paint: the real `medview` entry point vs a bare window.

    QT_QPA_PLATFORM=offscreen .venv/bin/python benchmarks/bench_start.py [--runs 11]

Baseline ("bare"): a fresh Python process that imports PySide6 and pyqtgraph, shows a
QMainWindow holding a pyqtgraph GraphicsLayoutWidget with an ImageItem (sized as MedView's main
window is: 95% x 92% of the available screen, at most 1600 x 1000), and stops at its first
paint. MedView: a fresh `python -m medview` process (the real entry point: argument parsing,
logging, main window, panels, the bundled sample study opened) with MEDVIEW_FIRST_PAINT_EXIT=1,
which prints the wall-clock time of the main window's first paint and quits. Both are timed from
just before the process is spawned to that paint, run alternately (interleaved) so that machine
load hits both alike. Prints the median of each and, last line, ``ratio=<medview / bare>``.

Both run from compiled bytecode, as an installed or frozen MedView does (pip compiles it at
install time; pyqtgraph and PySide6 come with theirs): PYTHONDONTWRITEBYTECODE is dropped and
both write and read their .pyc under a temporary PYTHONPYCACHEPREFIX (nothing written into the
tree), filled by the uncounted warm-up run. ``--no-bytecode`` keeps a PYTHONDONTWRITEBYTECODE=1
environment as it is (then MedView's own modules, but not the libraries', are compiled from
source on every start). ``--ready`` also prints, for information, the median time until the
side panels are in and the sample study's first series is loaded (after the first paint).
MedView holds Python's cyclic GC from its start to its first paint (medview.ui.app
.pause_gc_until_first_paint); ``--gc-default`` runs it with the GC as Python has it by default.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
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
avail = app.primaryScreen().availableGeometry()  # sized as medview.ui.main_window.MainWindow is
win.resize(min(1600, int(avail.width() * 0.95)), min(1000, int(avail.height() * 0.92)))

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


def _one(cmd: list[str], env: dict[str, str], ready: list[float] | None = None) -> float:
    t0 = time.time()
    out = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=120, cwd=str(ROOT))
    stamps = [line.split()[1] for line in out.stdout.splitlines() if line.startswith("first_paint ")]
    if out.returncode != 0 or not stamps:
        raise SystemExit(f"{cmd[1:3]} did not report a first paint (rc {out.returncode}):\n{out.stderr[-2000:]}")
    if ready is not None:
        done = [line.split()[1] for line in out.stdout.splitlines() if line.startswith("ready ")]
        if not done:
            raise SystemExit(f"{cmd[1:3]} did not report the study shown:\n{out.stderr[-2000:]}")
        ready.append(float(done[0]) - t0)
    return float(stamps[0]) - t0


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--runs", type=int, default=11)
    ap.add_argument("--no-bytecode", action="store_true",
                    help="keep PYTHONDONTWRITEBYTECODE as the environment has it (no .pyc cache)")
    ap.add_argument("--gc-default", action="store_true",
                    help="MEDVIEW_STARTUP_GC=default: MedView keeps Python's cyclic GC running during start-up")
    ap.add_argument("--ready", action="store_true",
                    help="also time (for information) until the panels are in and the study is loaded")
    args = ap.parse_args()
    env = dict(os.environ)
    env.setdefault("QT_QPA_PLATFORM", "offscreen")
    env["MEDVIEW_FIRST_PAINT_EXIT"] = "ready" if args.ready else "1"
    if args.gc_default:
        env["MEDVIEW_STARTUP_GC"] = "default"
    with tempfile.TemporaryDirectory(prefix="bench_start_pyc_") as pyc:
        if not args.no_bytecode:
            env.pop("PYTHONDONTWRITEBYTECODE", None)
            env["PYTHONPYCACHEPREFIX"] = pyc
        print(f"bytecode: {'as the environment has it' if args.no_bytecode else 'cached (both), ' + pyc}")
        bare_cmd = [sys.executable, "-c", BARE]
        medview_cmd = [sys.executable, "-m", "medview"]
        _one(bare_cmd, env)  # warm the file cache (and the .pyc cache) for both; not counted
        _one(medview_cmd, env, [] if args.ready else None)
        bare, med, ready = [], [], []
        for i in range(args.runs):
            bare.append(_one(bare_cmd, env))
            med.append(_one(medview_cmd, env, ready if args.ready else None))
            extra = f", study loaded {ready[-1]:.3f} s" if args.ready else ""
            print(f"run {i + 1}: bare {bare[-1]:.3f} s, medview {med[-1]:.3f} s{extra}", flush=True)
    b, m = statistics.median(bare), statistics.median(med)
    print(f"bare PySide6 + pyqtgraph window: median {b:.3f} s to first paint")
    if args.ready:
        print(f"medview: median {statistics.median(ready):.3f} s until the panels are in and the sample study "
              "is loaded")
    print(f"medview (python -m medview, sample study): median {m:.3f} s to first paint")
    print(f"ratio={m / b:.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
