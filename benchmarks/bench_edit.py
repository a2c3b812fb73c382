"""Brush speed and undo memory, measured in the real viewer (offscreen Qt, pyqtgraph).

One brush event = the BrushTool's move() on a 512x512 slice (paint the capsule from the last
point, record it on the undo history, emit layer_changed for the changed region) + a
synchronous repaint of every visible slice view whose slice the region touches (the overlay is
redrawn). Goal: <= 16 ms per event (60 Hz). Also prints the stroke-end cost (merge + compress
the undo entry + append the workspace journal) and the undo memory per stroke.

    QT_QPA_PLATFORM=offscreen python benchmarks/bench_edit.py [--events 400] [--layout 1x3]

Uses the 512x512 T1 post-contrast series from ../shared/data when present (else a synthetic
512x512x24 volume) for the 2D brush, and a 300x512x512 label map (synthetic CT-sized image) for
the 3D sphere brush with long diagonal strokes (through slices), autosave on. The GUI-thread
stall is measured with a 1 ms ticker on the GUI thread while the autosave thread snapshots,
plus the session start (new label map) and stop (close) times on the GUI thread.
Last lines: ``worst_stall_ms=<largest GUI-thread stall while editing: autosave, start or stop, and the
stroke end (undo entry + journal record, run on the GUI thread), 3D run>`` and
``ms_per_event=<p95 per event, 3D sphere run, 1x3 layout>``.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import numpy as np  # noqa: E402


def _volume():
    from medview.config import data_dir
    from medview.io import load_volume
    from medview.io.volume import Volume

    d = data_dir() / "dicom" / "mr-brain-tcia" / "Study1" / "12-T1post-05670"
    if d.is_dir():
        return load_volume(d), str(d)
    rng = np.random.default_rng(0)
    return Volume(rng.integers(0, 1000, (24, 512, 512)).astype(np.int16), spacing=(0.43, 0.43, 6.5)), "synthetic"


def _big_volume():
    from medview.io.volume import Volume

    img = np.zeros((300, 512, 512), np.int16)
    img[:, 100:400, 100:400] = 300
    return Volume(img, spacing=(0.7, 0.7, 1.0)), "synthetic 300x512x512"


def _ticker_worst_gap(app, seconds: float) -> float:
    """Worst extra delay of a 1 ms sleep on the GUI thread (the GIL held by someone else)."""
    worst = 0.0
    end = time.perf_counter() + seconds
    while time.perf_counter() < end:
        t0 = time.perf_counter()
        time.sleep(0.001)
        app.processEvents()
        worst = max(worst, time.perf_counter() - t0 - 0.001)
    return worst


def run(layout: str, n_events: int, radius_mm: float, workspace: bool, big: bool = False) -> dict:
    from PySide6.QtWidgets import QApplication

    from medview.ui.annotation_tools import AnnotationSession
    from medview.ui.viewer import ViewerArea
    from medview.ui.viewer_state import ToolEvent, ViewerState

    app = QApplication.instance() or QApplication([])
    from medview.app_logging import setup_logging

    setup_logging()  # as the app's start-up does (settings and folders known before any session)
    vol, src = _big_volume() if big else _volume()
    state = ViewerState()
    area = ViewerArea(state)
    area.resize(1500 if layout == "1x3" else 800, 600 if layout == "1x3" else 800)
    area.show()
    state.set_layout(layout)
    state.set_volume(vol)
    app.processEvents()
    tmp = tempfile.TemporaryDirectory()
    session = AnnotationSession(state, use_workspace=workspace, workspace_base=Path(tmp.name))
    t0 = time.perf_counter()
    session.new_labelmap()
    start_ms = 1000 * (time.perf_counter() - t0)
    if session.workspace is not None:
        session.workspace.autosave_delay = 0.3  # snapshots during the run (default 2 s)
    session.radius_mm = radius_mm
    session.sphere = big
    tool = session.tools["annotate.brush"]
    views = [v for v in area.views.values() if v.isVisible()]
    app.processEvents()
    z, y, x = vol.shape
    k = z // 2
    rng = np.random.default_rng(1)
    per_stroke = 120 if big else 40
    ev_times, end_times, stalls = [], [], []
    n_strokes = 0
    done = 0
    while done < n_events:
        if big:  # long diagonal stroke through slices: x, y and z all advance
            a = rng.uniform([40, 40, 20], [x // 3, y // 3, z // 3])
            b = a + rng.uniform([200, 200, 120], [300, 300, 200])
            steps = np.clip(np.linspace(a, b, per_stroke), 5, [x - 6, y - 6, z - 6])
        else:
            start = rng.uniform([60, 60], [x - 60, y - 60])
            steps = np.cumsum(rng.normal(0, 3.0, size=(per_stroke, 2)), axis=0) + start
            steps = np.clip(steps, 5, [x - 6, y - 6])

        def ev(p):
            kk = int(round(p[2])) if len(p) > 2 else k
            ijk = np.array([p[0], p[1], kk], float)
            return ToolEvent("axial", ijk, tuple(int(round(v)) for v in ijk), 2, kk, None, state)

        tool.press(ev(steps[0]))
        for p in steps[1:]:
            t0 = time.perf_counter()
            tool.move(ev(p))
            for v in views:
                v.viewport().repaint()
            ev_times.append(time.perf_counter() - t0)
            done += 1
        t0 = time.perf_counter()
        tool.release(ev(steps[-1]))
        end_times.append(time.perf_counter() - t0)
        n_strokes += 1
        app.processEvents()
        if big and workspace:  # the autosave thread snapshots now: how long is the GUI thread held?
            stalls.append(_ticker_worst_gap(app, 0.8))
    h = session.history
    out = {
        "source": src,
        "layout": layout,
        "views_redrawn": len(views),
        "events": len(ev_times),
        "strokes": n_strokes,
        "ms_mean": 1000 * float(np.mean(ev_times)),
        "ms_p95": 1000 * float(np.percentile(ev_times, 95)),
        "ms_max": 1000 * float(np.max(ev_times)),
        "stroke_end_ms_mean": 1000 * float(np.mean(end_times)),
        "stroke_end_ms_max": 1000 * float(np.max(end_times)),
        "undo_bytes_per_stroke": h.nbytes / max(len(h.undo_names()), 1),
        "raw_box_bytes_per_stroke": float(np.mean([2 * e.voxels * np.dtype(e.dtype).itemsize
                                                   for e in h._undo])) if h._undo else 0.0,
        "bbox_bytes_per_stroke": float(np.mean([2 * int(np.prod(e.shape)) * np.dtype(e.dtype).itemsize
                                                for e in h._undo])) if h._undo else 0.0,
        "slice_bytes": y * x * session.labelmap.array.itemsize,
        "volume_bytes": session.labelmap.array.nbytes,
        "painted_voxels": int(np.count_nonzero(session.labelmap.array)),
    }
    t0 = time.perf_counter()
    session.stop()
    out["stop_ms"] = 1000 * (time.perf_counter() - t0)
    from medview.annotation.workspace import wait_closed

    wait_closed()  # the final snapshot is written off the GUI thread: done before the folder goes
    out["closed_ms"] = 1000 * (time.perf_counter() - t0)
    out["start_ms"] = start_ms
    out["autosave_stall_ms"] = 1000 * max(stalls) if stalls else 0.0
    area.close()
    tmp.cleanup()
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--events", type=int, default=400)
    ap.add_argument("--radius", type=float, default=5.0, help="brush radius in mm")
    ap.add_argument("--no-workspace", action="store_true", help="without the autosave journal")
    args = ap.parse_args()
    results = {}
    for layout, big in (("1x1", False), ("1x3", False), ("1x3", True)):
        r = run(layout, args.events, args.radius, not args.no_workspace, big=big)
        results[(layout, big)] = r
        tag = " 3D sphere" if big else ""
        print(f"[{layout}{tag}] {r['source']}: {r['events']} brush events in {r['strokes']} strokes, "
              f"radius {args.radius} mm, {r['views_redrawn']} view(s) repainted per event")
        print(f"  per event: mean {r['ms_mean']:.2f} ms, p95 {r['ms_p95']:.2f} ms, max {r['ms_max']:.2f} ms "
              f"(goal <= 16 ms)")
        print(f"  stroke end (merge + compress undo entry + journal append): mean {r['stroke_end_ms_mean']:.2f} ms")
        print(f"  undo memory: {r['undo_bytes_per_stroke'] / 1024:.1f} KiB per stroke compressed "
              f"(old+new values stored, uncompressed: {r['raw_box_bytes_per_stroke'] / 1024:.1f} KiB; of the stroke's "
              f"bounding box: {r['bbox_bytes_per_stroke'] / 1024:.1f} KiB) "
              f"(one 512x512 label slice: {r['slice_bytes'] / 1024:.0f} KiB; whole label volume: "
              f"{r['volume_bytes'] / 1024:.0f} KiB)")
        print(f"  GUI thread: session start {r['start_ms']:.0f} ms, stop {r['stop_ms']:.0f} ms (final snapshot "
              f"written off it by {r['closed_ms']:.0f} ms), "
              f"worst stall while autosave snapshots {r['autosave_stall_ms']:.1f} ms")
    r = results[("1x3", True)]
    background = max(r["start_ms"], r["stop_ms"], r["autosave_stall_ms"])
    worst = max(background, r["stroke_end_ms_max"])  # the mouse release waits for it too
    print(f"stroke end on the GUI thread (3D sphere, long diagonal strokes): mean {r['stroke_end_ms_mean']:.1f} ms, "
          f"max {r['stroke_end_ms_max']:.1f} ms (undo entry + journal record); autosave/start/stop worst "
          f"{background:.1f} ms")
    print(f"worst_stall_ms={worst:.1f}")
    print(f"ms_per_event={r['ms_p95']:.2f}")


if __name__ == "__main__":
    main()
