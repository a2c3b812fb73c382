"""Inference pipeline overhead against a bare torch forward, and GUI timer lateness while it runs.

    .venv/bin/python benchmarks/bench_inference.py [--repeats 7] [--device auto] [--threads 1] [--no-gui]

Networks are built here with fixed seeds and written as real packages (safetensors + manifest)
to a temporary folder; nothing is downloaded. Cases:

  seg2d  MONAI UNet 2D (16..256, 2 res units: the DRIVE/Kvasir recipe size), 8-slice 512x512 stack
  cls2d  resnet10 2D (conv1 stride 2), one 512x512 image resized to 224 (the x-ray view recipe)
  seg3d  UNet 3D (16..128, 2 res units), one 48x64x48 volume (hippocampus-sized), whole volume

pipeline = ``run_model(package, volume)``: channels, normalisation, resize/pad, forward, labels
(``.max(1).indices``) or softmax probabilities, mapping back onto the source grid, per-label
statistics, Prediction. bare = the same network object's forward on the same pre-processed
tensors, already on the device, same batch size, same ``inference_mode``/autocast. The two
alternate run by run; medians of --repeats. overhead = median pipeline / median bare (the
ratio of the fastest runs is printed too). CPU torch runs with --threads threads for both (default
1: on a shared 2-core machine a 2-thread OpenMP pool measures the neighbours' load more than the
code; pass 0 for torch's default).

GUI: an offscreen QApplication runs a 10 ms PreciseTimer on the GUI thread while MedView's
``Worker`` runs the seg2d pipeline with ``gui_worker=True`` (torch.set_num_threads(1)); the
lateness of each tick (interval - 10 ms) gives p99 / max, also measured with nothing running.

Last line: ``overhead=<worst case>``.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import numpy as np  # noqa: E402

CASES = {
    "seg2d": {
        "network": {"architecture": "UNet", "args": {"spatial_dims": 2, "in_channels": 1, "out_channels": 2,
                                                     "channels": [16, 32, 64, 128, 256], "strides": [2, 2, 2, 2],
                                                     "num_res_units": 2}},
        "task": "segmentation", "input": {"dims": 2, "channels": "grey", "normalization": {"kind": "zscore"}},
        "output": {"labels": [{"value": 1, "name": "vessel", "color": [255, 0, 0]}]},
        "shape": (8, 512, 512), "spacing": (0.7, 0.7, 1.0),
    },
    "cls2d": {
        "network": {"architecture": "resnet10", "args": {"spatial_dims": 2, "n_input_channels": 1,
                                                         "num_classes": 2, "conv1_t_stride": 2}},
        "task": "classification",
        "input": {"dims": 2, "channels": "grey", "size": [224, 224], "normalization": {"kind": "zscore"}},
        "output": {"classes": ["chest", "abdomen"]},
        "shape": (1, 512, 512), "spacing": (0.3, 0.3, 1.0),
    },
    "seg3d": {
        "network": {"architecture": "UNet", "args": {"spatial_dims": 3, "in_channels": 1, "out_channels": 3,
                                                     "channels": [16, 32, 64, 128], "strides": [2, 2, 2],
                                                     "num_res_units": 2}},
        "task": "segmentation",
        "input": {"dims": 3, "channels": "grey", "normalization": {"kind": "zscore"}, "pad_to_multiple": 8},
        "output": {"labels": [{"value": 1, "name": "anterior"}, {"value": 2, "name": "posterior"}]},
        "shape": (48, 64, 48), "spacing": (1.0, 1.0, 1.0),
    },
}


def make_package(root: Path, name: str, case: dict):
    import torch

    from medview.inference import networks, package

    torch.manual_seed(0)
    net = networks.build_network(case["network"]["architecture"], case["network"]["args"])
    manifest = {"schema_version": 1, "id": f"bench-{name}", "name": f"bench {name}", "version": "1.0.0",
                "task": case["task"], "modality": ["*"], "network": case["network"], "input": case["input"],
                "output": case["output"]}
    return package.write_package(root / name, manifest, net.state_dict(), "# benchmark model\n")


def make_volume(case: dict, seed: int = 0):
    from medview.io.volume import Volume

    rng = np.random.default_rng(seed)
    arr = rng.normal(100, 20, size=case["shape"]).astype(np.float32)
    return Volume(arr, spacing=case["spacing"], meta={"Modality": "MR"})


def bare_inputs(pkg, vol, device, batch):
    """The exact tensors the pipeline feeds the network, batched the same way."""
    import torch

    from medview.inference import geometry, pipeline, preprocess

    if pkg.dims == 3:
        x, _grid = geometry.to_model_grid(vol, pkg.input)
        x, _ = preprocess.pad_to_multiple(x, pipeline._pad_multiple(pkg))
        return [torch.from_numpy(x[None]).to(device)]
    target = geometry.slice_target_size(vol.shape[1:], vol.spacing[:2], pkg.input)
    m = pipeline._pad_multiple(pkg)
    xs = [preprocess.pad_to_multiple(preprocess.prepare_image(vol.array[k], {**pkg.input, "size": target}), m)[0]
          for k in range(vol.shape[0])]
    return [torch.from_numpy(np.stack(xs[i:i + batch])).to(device) for i in range(0, len(xs), batch)]


def bare_forward(net, tensors, device) -> float:
    import torch

    sync = torch.cuda.synchronize if device.type == "cuda" else (lambda: None)
    sync()
    t = time.perf_counter()
    with torch.inference_mode():
        ctx = torch.autocast("cuda", dtype=torch.float16) if device.type == "cuda" else _Null()
        with ctx:
            for x in tensors:
                net(x)
    sync()
    return time.perf_counter() - t


class _Null:
    def __enter__(self):
        return None

    def __exit__(self, *a):
        return False


def pipeline_run(pkg, vol, device, batch) -> float:
    import torch

    from medview.inference.pipeline import run_model

    sync = torch.cuda.synchronize if device.type == "cuda" else (lambda: None)
    sync()
    t = time.perf_counter()
    run_model(pkg, vol, device=str(device), batch_size=batch)
    sync()
    return time.perf_counter() - t


def measure_overhead(root: Path, device, repeats: int) -> dict[str, tuple[float, float]]:
    from medview.inference.pipeline import _default_batch, get_network

    out = {}
    for name, case in CASES.items():
        pkg = make_package(root, name, case)
        vol = make_volume(case)
        batch = _default_batch(device)
        net = get_network(pkg, device)  # the very object the pipeline uses
        tensors = bare_inputs(pkg, vol, device, batch)
        pipeline_run(pkg, vol, device, batch)  # warm-up both
        bare_forward(net, tensors, device)
        p, b = [], []
        for _ in range(repeats):
            p.append(pipeline_run(pkg, vol, device, batch))
            b.append(bare_forward(net, tensors, device))
        out[name] = (statistics.median(p), statistics.median(b))
        mp, mb = out[name]
        print(f"{name:6s} {device.type}: pipeline {mp * 1000:8.1f} ms   bare forward {mb * 1000:8.1f} ms   "
              f"ratio {mp / mb:.3f} (fastest runs {min(p) / min(b):.3f})   "
              f"({vol.shape[0]} slice(s) {'x'.join(map(str, vol.shape[1:]))}, batch {batch})", flush=True)
    return out


def measure_gui(root: Path, runs: int = 4, interval_ms: int = 10) -> None:
    from PySide6.QtCore import QElapsedTimer, Qt, QTimer
    from PySide6.QtWidgets import QApplication

    from medview.inference.pipeline import run_model
    from medview.ui.workers import Worker, start

    app = QApplication.instance() or QApplication([])
    pkg = make_package(root, "seg2d", CASES["seg2d"])
    vol = make_volume(CASES["seg2d"], seed=1)

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
            w = Worker(run_model, pkg, vol, device="cpu", gui_worker=True, batch_size=1)
            w.signals.finished.connect(next_job)
            w.signals.failed.connect(lambda msg: print("worker failed:", msg))
            state["worker"] = start(w)

        next_job()
        return lambda: state["worker"] is None and state["left"] == 0

    idle = lateness(2.0, lambda: None)
    t = time.perf_counter()
    busy = lateness(0.0, run_jobs)
    wall = time.perf_counter() - t
    for label, d in (("idle", idle), ("inference running", busy)):
        print(f"GUI timer ({interval_ms} ms) lateness, {label}: p99 {np.percentile(d, 99):.2f} ms, "
              f"max {max(d):.2f} ms, ticks {len(d)}", flush=True)
    print(f"  ({runs} seg2d runs of {vol.shape[0]} slices in the worker took {wall:.2f} s)")


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--repeats", type=int, default=7)
    ap.add_argument("--device", default="auto", help="auto, cpu, cuda, mps")
    ap.add_argument("--threads", type=int, default=1, help="CPU torch threads (0 = torch's default)")
    ap.add_argument("--no-gui", action="store_true", help="skip the GUI lateness part")
    args = ap.parse_args()
    import torch

    if args.threads > 0:
        torch.set_num_threads(args.threads)

    from medview.inference.device import choose_device, describe

    print(f"torch {torch.__version__}, {os.cpu_count()} CPU(s), {torch.get_num_threads()} torch threads", flush=True)
    with tempfile.TemporaryDirectory(prefix="medview-bench-") as tmp:
        root = Path(tmp)
        results = {}
        devices = [choose_device(None if args.device == "auto" else args.device)]
        if devices[0].type != "cpu" and args.device == "auto":
            devices.append(torch.device("cpu"))
        for dev in devices:
            print(f"device: {describe(dev)}", flush=True)
            for name, (p, b) in measure_overhead(root, dev, args.repeats).items():
                results[(dev.type, name)] = p / b
        if not args.no_gui:
            measure_gui(root)  # last: it sets torch to one thread, as the GUI worker does
    worst = max(results.values())
    print(f"overhead={worst:.3f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
