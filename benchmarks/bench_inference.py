"""Every bundled model through ``run_model`` on a real input vs one bare forward of the same
network on the same whole input, interleaved; first-run cost; GUI timer lateness while it runs.

    .venv/bin/python benchmarks/bench_inference.py [--rounds 7] [--device auto|cpu|cuda] [--threads 1]
                                                   [--models id,id] [--no-gui] [--no-first-run]

Inputs (from ``$MEDVIEW_DATA``, see medview/config.py; one real image per model, each model's own
kind of data): DRIVE test fundus 565x584 (retina-vessels), a DR-grading fundus photo (dr-grade),
a Kvasir-SEG frame (polyp), a PH2 dermoscopy image (skin-lesion, skin-lesion-seg), a BUSI
ultrasound (breast-us), an Open-i radiograph (xray-view), a knee radiograph (knee-oa), and the
TCIA hippocampus crop DICOM series (hippocampus, 3D), all opened with ``load_volume``.

run_model = ``run_model(package, volume, device=...)`` at the package's default settings (TTA
"fast" unless the manifest says otherwise; whole image when it fits memory): pre-processing,
forward(s), labels / probabilities, mapping back, post-processing, Prediction. bare = one forward
of the very network object the pipeline uses, on the exact tensor the pipeline builds for the
whole input (batch 1, same ``inference_mode`` / autocast), no TTA, no windows. The two alternate
round by round (order swapped every round); medians of --rounds; ``ratio`` = median run_model /
median bare. For packages with test-time views, the "accurate" setting is timed too (its ratio is
printed but not part of ``worst``). First run: a fresh interpreter per model times ``import torch``
+ MedView's inference modules, then the first ``run_model`` (weights read, sha256-checked,
network built, first forward), against the warm call that follows.

CPU torch runs with --threads threads (default 1: on a shared 2-core machine a 2-thread OpenMP
pool measures the neighbours' load more than the code; 0 = torch's default).

Last line: ``worst=<largest default-setting ratio>`` (goal <= 1.5).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import numpy as np  # noqa: E402

# model id -> input under $MEDVIEW_DATA (a real image of the kind the model is made for)
INPUTS = {
    "retina-vessels": "fundus-drive/test/images/01_test.tif",
    "dr-grade": "fundus-dr/images/Patient001_L.jpg",
    "polyp": "endoscopy-kvasir-seg/images/cju0qkwl35piu0993l0dewei2.jpg",
    "skin-lesion-seg": "dermoscopy-ph2/images/IMD002.jpg",
    "skin-lesion": "dermoscopy-ph2/images/IMD002.jpg",
    "breast-us": "us-breast-busi/benign/benign (1).png",
    "xray-view": "xray-chest-abdomen/TEST/chest2.png",
    "knee-oa": "xray-knee-kl/val/2/9015402R.jpg",
    "hippocampus": "dicom/mr-brain-tcia/Study1/13_HCropVolume",
}


def data_root() -> Path:
    from medview import config

    return Path(config.data_dir())


def bare_input(pkg, vol, device):
    """The exact tensor the pipeline feeds the network for the whole input (batch 1)."""
    import torch

    from medview.inference import geometry, pipeline, preprocess

    m = pipeline._pad_multiple(pkg)
    if pkg.dims == 3:
        x, _grid = geometry.to_model_grid(vol, pkg.input)
    else:
        target = geometry.slice_target_size(vol.shape[1:], vol.spacing[:2], pkg.input)
        x = preprocess.prepare_image(vol.array[0], {**pkg.input, "size": target}, rgb=vol.is_rgb)
    x, _ = preprocess.pad_to_multiple(x, m)
    return torch.from_numpy(np.ascontiguousarray(x[None])).to(device)


class _Null:
    def __enter__(self):
        return None

    def __exit__(self, *a):
        return False


def _sync(device):
    import torch

    if device.type == "cuda":
        torch.cuda.synchronize()


def bare_forward(net, x, device) -> float:
    import torch

    _sync(device)
    t = time.perf_counter()
    with torch.inference_mode():
        with torch.autocast("cuda", dtype=torch.float16) if device.type == "cuda" else _Null():
            net(x)
    _sync(device)
    return time.perf_counter() - t


def pipeline_run(pkg, vol, device, setting=None):
    from medview.inference.pipeline import run_model

    _sync(device)
    t = time.perf_counter()
    pred = run_model(pkg, vol, device=str(device), tta_setting=setting, unverified_ok=True)
    _sync(device)
    return time.perf_counter() - t, pred


FIRST_RUN = r"""
import sys, time, json
t0 = time.perf_counter()
import torch
torch.set_num_threads(int(sys.argv[4]) or torch.get_num_threads())
from medview.inference.package import find_package
from medview.inference.pipeline import run_model
from medview.io.loading import load_volume
t1 = time.perf_counter()
vol = load_volume(sys.argv[2])
pkg = find_package(sys.argv[1])
t2 = time.perf_counter()
run_model(pkg, vol, device=sys.argv[3], unverified_ok=True)
t3 = time.perf_counter()
run_model(pkg, vol, device=sys.argv[3], unverified_ok=True)
t4 = time.perf_counter()
print(json.dumps({"import": t1 - t0, "first": t3 - t2, "warm": t4 - t3}))
"""


def first_run(model_id: str, path: Path, device: str, threads: int) -> dict:
    out = subprocess.run([sys.executable, "-c", FIRST_RUN, model_id, str(path), device, str(threads)],
                         capture_output=True, text=True, cwd=str(ROOT), timeout=600)
    if out.returncode != 0:
        return {"error": out.stderr.strip().splitlines()[-1] if out.stderr.strip() else "failed"}
    return json.loads(out.stdout.strip().splitlines()[-1])


def measure(models: list[str], device, rounds: int, threads: int, with_first_run: bool) -> dict[str, float]:
    from medview.inference.forward import get_network
    from medview.inference.package import find_package
    from medview.inference.tta import view_count
    from medview.io.loading import load_volume

    root = data_root()
    cases = []
    for mid in models:
        if mid not in INPUTS:  # e.g. interactive-2d: it needs the reviewer's clicks, not run_model
            task = find_package(mid).task
            print(f"{mid:16s} skipped: its task ({task}) needs prompts, not one run_model input", flush=True)
            continue
        path = root / INPUTS[mid]
        if not path.exists():
            print(f"{mid:16s} skipped: {path} not found (set MEDVIEW_DATA)", flush=True)
            continue
        pkg = find_package(mid)
        vol = load_volume(str(path))
        net = get_network(pkg, device)  # the very object the pipeline uses
        x = bare_input(pkg, vol, device)
        _, pred = pipeline_run(pkg, vol, device)  # warm-up (and what it ran)
        bare_forward(net, x, device)
        accurate = view_count(pkg, "accurate") > 1 and (pkg.output.get("tta_default") or "fast") == "fast"
        cases.append({"id": mid, "pkg": pkg, "vol": vol, "net": net, "x": x, "passes": pred.passes,
                      "run": [], "bare": [], "acc": [] if accurate else None})
    for r in range(rounds):  # interleaved: every model once per round, run_model / bare order alternating
        for c in cases:
            if r % 2 == 0:
                c["run"].append(pipeline_run(c["pkg"], c["vol"], device)[0])
                c["bare"].append(bare_forward(c["net"], c["x"], device))
            else:
                c["bare"].append(bare_forward(c["net"], c["x"], device))
                c["run"].append(pipeline_run(c["pkg"], c["vol"], device)[0])
            if c["acc"] is not None and r < max(2, rounds // 2):
                c["acc"].append(pipeline_run(c["pkg"], c["vol"], device, "accurate")[0])
    ratios = {}
    for c in cases:
        mr, mb = statistics.median(c["run"]), statistics.median(c["bare"])
        ratios[c["id"]] = mr / mb
        shape_in = "x".join(map(str, c["vol"].shape))
        shape_net = "x".join(map(str, c["x"].shape[2:]))
        extra = ""
        if c["acc"]:
            ma = statistics.median(c["acc"])
            extra = f"; accurate ({view_count(c['pkg'], 'accurate')} views) {ma * 1000:.1f} ms = {ma / mb:.2f}x"
        first = ""
        if with_first_run:
            f = first_run(c["id"], root / INPUTS[c["id"]], device.type, threads)
            first = (f"; first run: import {f['import']:.2f} s + first call {f['first']:.2f} s (warm {f['warm']:.2f} s)"
                     if "error" not in f else f"; first run failed: {f['error']}")
        print(f"{c['id']:16s} {device.type}: input {shape_in} -> net {shape_net}, {c['passes'] or '?'}: "
              f"run_model {mr * 1000:.1f} ms, bare forward {mb * 1000:.1f} ms, ratio {mr / mb:.2f} "
              f"(fastest {min(c['run']) / min(c['bare']):.2f}){extra}{first}", flush=True)
    return ratios


def measure_gui(device, interval_ms: int = 10, runs: int = 3) -> None:
    """GUI-thread timer lateness while MedView's Worker runs retina-vessels (gui_worker=True)."""
    from PySide6.QtCore import QElapsedTimer, Qt, QTimer
    from PySide6.QtWidgets import QApplication

    from medview.inference.package import find_package
    from medview.inference.pipeline import run_model
    from medview.io.loading import load_volume
    from medview.ui.workers import Worker, start

    path = data_root() / INPUTS["retina-vessels"]
    if not path.exists():
        return
    app = QApplication.instance() or QApplication([])
    pkg = find_package("retina-vessels")
    vol = load_volume(str(path))

    def lateness(seconds: float, job) -> list[float]:
        clock = QElapsedTimer()
        ticks: list[int] = []
        timer = QTimer()
        timer.setTimerType(Qt.TimerType.PreciseTimer)
        timer.setInterval(interval_ms)
        timer.timeout.connect(lambda: ticks.append(clock.nsecsElapsed()))
        clock.start()
        timer.start()
        done = job()
        end = time.monotonic() + seconds
        while time.monotonic() < end or (done is not None and not done()):
            app.processEvents()
            time.sleep(0.0005)
        timer.stop()
        d = np.diff(np.asarray(ticks, dtype=np.float64)) / 1e6 - interval_ms
        return [max(0.0, float(v)) for v in d]

    def run_jobs():
        state = {"left": runs, "worker": None}

        def next_job(*_):
            if state["left"] == 0:
                state["worker"] = None
                return
            state["left"] -= 1
            w = Worker(run_model, pkg, vol, device=str(device), gui_worker=True, unverified_ok=True)
            w.signals.finished.connect(next_job)
            w.signals.failed.connect(lambda msg: print("worker failed:", msg))
            state["worker"] = start(w)

        next_job()
        return lambda: state["worker"] is None and state["left"] == 0

    idle = lateness(2.0, lambda: None)
    busy = lateness(0.0, run_jobs)
    for label, d in (("idle", idle), ("retina-vessels running in the worker", busy)):
        print(f"GUI timer ({interval_ms} ms) lateness, {label}: p99 {np.percentile(d, 99):.2f} ms, "
              f"max {max(d):.2f} ms, ticks {len(d)}", flush=True)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--rounds", type=int, default=7)
    ap.add_argument("--device", default="auto", help="auto, cpu, cuda, mps")
    ap.add_argument("--threads", type=int, default=1, help="CPU torch threads (0 = torch's default)")
    bundled = sorted(p.parent.name for p in (ROOT / "models").glob("*/model.json"))
    ap.add_argument("--models", default=",".join(bundled or INPUTS), help="comma-separated model ids")
    ap.add_argument("--no-gui", action="store_true", help="skip the GUI lateness part")
    ap.add_argument("--no-first-run", action="store_true", help="skip the fresh-interpreter first-run timing")
    args = ap.parse_args()
    import torch

    if args.threads > 0:
        torch.set_num_threads(args.threads)
    from medview.inference.device import choose_device, describe

    dev = choose_device(None if args.device == "auto" else args.device)
    print(f"torch {torch.__version__}, {os.cpu_count()} CPU(s), {torch.get_num_threads()} torch threads, "
          f"device {describe(dev)}, {args.rounds} interleaved rounds", flush=True)
    ratios = measure([m for m in args.models.split(",") if m], dev, args.rounds, args.threads,
                     not args.no_first_run)
    if not args.no_gui:
        measure_gui(dev)  # last: it sets torch to one thread, as the GUI worker does
    if not ratios:
        print("worst=nan (no model input found)")
        return 1
    worst = max(ratios, key=ratios.get)
    print(f"largest ratio: {worst}")
    print(f"worst={ratios[worst]:.3f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
