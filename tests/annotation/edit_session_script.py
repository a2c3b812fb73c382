"""A deterministic editing session, run in a subprocess by test_workspace.py (and replayed
in-process to know what every stroke should have produced).

usage: python edit_session_script.py WORKSPACE_DIR N_STROKES
Prints "done <n>" after stroke n has been committed (and journalled)."""

from __future__ import annotations

import sys
import time

import numpy as np

from medview.annotation import EditHistory, LabelMap, fill_polygon, flood_fill, paint
from medview.io.volume import Volume

SHAPE = (12, 96, 128)


def make_labelmap() -> LabelMap:
    img = Volume(np.zeros(SHAPE, np.int16), spacing=(0.8, 0.8, 3.0), origin=(1.0, 2.0, 3.0),
                 meta={"SeriesInstanceUID": "1.2.3.4.5", "Modality": "MR"})
    lm = LabelMap.empty(img, reviewer="tester")
    lm.add_label("second")
    return lm


def stroke(lm: LabelMap, h: EditHistory, n: int, pause: float = 0.0) -> None:
    rng = np.random.default_rng(1000 + n)
    if n % 9 == 8 and h.can_undo():
        h.undo()
        return
    if n == 5:
        lm.add_label("third", (1, 2, 3))
    if n % 7 == 6:
        k = int(rng.integers(0, SHAPE[0]))
        h.push(fill_polygon(lm, [(k, 10, 10), (k, 10, 60), (k, 50, 35)], value=int(rng.integers(1, 4))))
        return
    if n % 11 == 10:
        h.push(flood_fill(lm, (int(rng.integers(0, SHAPE[0])), 80, 120), value=2))
        return
    k = int(rng.integers(0, SHAPE[0]))
    value = int(rng.integers(0, 4)) if n > 5 else int(rng.integers(0, 3))
    pts = np.cumsum(rng.integers(-6, 7, size=(12, 2)), axis=0) + rng.integers(20, 80, size=2)
    h.begin("Brush" if value else "Erase")
    prev = (k, *pts[0])
    for p in pts:
        h.add(paint(lm, prev, (k, *p), radius_mm=float(rng.uniform(1, 6)), value=value))
        prev = (k, *p)
        if pause:
            time.sleep(pause)
    h.end()


def expected_states(n_strokes: int) -> list[np.ndarray]:
    """states[n] = the label array after strokes 0..n-1 (states[0] = empty)."""
    lm = make_labelmap()
    h = EditHistory(lm)
    states = [lm.array.copy()]
    for n in range(n_strokes):
        stroke(lm, h, n)
        states.append(lm.array.copy())
    return states


def main() -> None:
    from medview.annotation.workspace import Workspace

    root, n_strokes = sys.argv[1], int(sys.argv[2])
    lm = make_labelmap()
    ws = Workspace.create(root, lm, autosave_delay=0.05, max_interval=0.25)
    print("ready", flush=True)
    for n in range(n_strokes):
        stroke(lm, ws.history, n, pause=0.002)
        print(f"done {n + 1}", flush=True)
    ws.close()
    print("closed", flush=True)


if __name__ == "__main__":
    main()
