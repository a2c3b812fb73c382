"""Screenshots of bundled models running in the real window (for looking at, not for tests).

    xvfb-run -a -s "-screen 0 1600x1000x24" .venv/bin/python benchmarks/screenshots_models.py \
        MODEL_ID PATH [PATH ...] [--out out/screenshots/models]

Opens each PATH in the main window, selects MODEL_ID in the Models panel (Grad-CAM on for
classifiers), presses Run, waits for the result and saves the window as
``<out>/<model>_<file stem>.png``; prints the top class or the label volumes for each. This is how the
"known failure modes (seen in the app)" of the model cards were looked at.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

from window_shots import open_and_wait, shown_main_window, spin


def _wait(app, flag: list, seconds: float) -> bool:
    end = time.monotonic() + seconds
    while not flag and time.monotonic() < end:
        app.processEvents()
        time.sleep(0.01)
    return bool(flag)


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("model")
    ap.add_argument("paths", nargs="+")
    ap.add_argument("--out", default="out/screenshots/models")
    args = ap.parse_args()
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)

    app, win = shown_main_window()
    from medview.inference.prediction import label_size_text
    from medview.ui.models_panel import install

    panel = install(win)
    results: list = []
    panel.prediction_ready.connect(results.append)
    for path in args.paths:
        if not open_and_wait(app, win, path):
            return 1
        if not panel.select(args.model) or not panel.is_enabled(args.model):
            print(f"{path}: {args.model} cannot run on it", file=sys.stderr)
            continue
        results.clear()
        panel.run_selected()
        if not _wait(app, results, 300):
            print(f"{path}: no result", file=sys.stderr)
            return 1
        spin(app, 0.6)
        pred = results[-1]
        if pred.probabilities:
            top = max(pred.probabilities, key=pred.probabilities.get)
            what = f"{top} {pred.probabilities[top]:.2f}"
        else:
            what = ", ".join(f"{d['name']} {label_size_text(d)}" for d in pred.label_info)
        p = out / f"{args.model}_{Path(path).stem}.png"
        win.grab().save(str(p))
        print(f"{p}: {what}")
    win.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
