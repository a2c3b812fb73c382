"""A 300-slice 512x512 CT segmented end to end through ``run_model`` (whole volume), for a GPU.

    .venv/bin/python benchmarks/bench_ct_volume.py --device cuda [--slices 300] [--size 512] [--runs 5]
    .venv/bin/python benchmarks/bench_ct_volume.py --device cpu --slices 32 --size 128   # smoke test

No CT segmentation model is bundled, so the network is a MONAI 3D UNet of the hippocampus
recipe's size (16..256 channels, 4 stride-2 levels, 2 residual units, 2 classes) with seeded
random weights, written as a real package (safetensors + manifest, CT window normalisation):
the figures are speed only, never accuracy. The volume is a synthetic int16 CT (a body
ellipse with noise) with 0.7 x 0.7 x 1.0 mm voxels.

Times (medians of --runs after a first run, which is printed separately: weights to the device,
cuDNN autotuning): ``run_model`` end to end (CT window, padding, one whole-volume pass under
float16 autocast on CUDA, labels, mapping back, label statistics) and one bare forward of the
same network on the same padded tensor already on the device. Prints the passes used, the
peak GPU memory, and last line ``seconds=<median run_model>`` (goal < 0.5 s on an H100-class GPU).
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import numpy as np  # noqa: E402

NETWORK = {"architecture": "UNet", "args": {"spatial_dims": 3, "in_channels": 1, "out_channels": 2,
                                            "channels": [16, 32, 64, 128, 256], "strides": [2, 2, 2, 2],
                                            "num_res_units": 2}}


def make_package(root: Path):
    import torch

    from medview.inference import networks, package

    torch.manual_seed(0)
    net = networks.build_network(NETWORK["architecture"], NETWORK["args"])
    manifest = {"schema_version": 1, "id": "bench-ct-unet", "name": "bench CT UNet (random weights)",
                "version": "1.0.0", "task": "segmentation", "modality": ["CT"], "network": NETWORK,
                "input": {"dims": 3, "channels": "grey", "normalization": {"kind": "ct_window", "center": 40,
                                                                          "width": 400},
                          "roi_size": [96, 96, 96], "pad_to_multiple": 16},
                "output": {"labels": [{"value": 1, "name": "body"}], "activation": "softmax"}}
    return package.write_package(root / "bench-ct-unet", manifest, net.state_dict(), "# speed benchmark only\n")


def make_volume(slices: int, size: int):
    from medview.io.volume import Volume

    rng = np.random.default_rng(0)
    yy, xx = np.mgrid[:size, :size]
    body = ((yy - size / 2) / (0.40 * size)) ** 2 + ((xx - size / 2) / (0.45 * size)) ** 2 < 1
    sl = np.where(body, 40, -1000).astype(np.int16)
    arr = np.repeat(sl[None], slices, axis=0)
    arr += rng.integers(-20, 20, arr.shape, dtype=np.int16)
    return Volume(arr, spacing=(0.7, 0.7, 1.0), meta={"Modality": "CT", "SeriesInstanceUID": "bench-ct"})


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--device", default="cuda")
    ap.add_argument("--slices", type=int, default=300)
    ap.add_argument("--size", type=int, default=512)
    ap.add_argument("--runs", type=int, default=5)
    args = ap.parse_args()
    import torch

    from medview.inference import geometry, preprocess
    from medview.inference.device import choose_device, describe
    from medview.inference.forward import get_network
    from medview.inference.pipeline import _pad_multiple, run_model

    dev = choose_device(args.device)
    sync = torch.cuda.synchronize if dev.type == "cuda" else (lambda: None)
    with tempfile.TemporaryDirectory(prefix="medview-ct-") as tmp:
        pkg = make_package(Path(tmp))
        vol = make_volume(args.slices, args.size)
        print(f"torch {torch.__version__}, device {describe(dev)}; volume {'x'.join(map(str, vol.shape))} int16 "
              f"({vol.array.nbytes / 1e6:.0f} MB)", flush=True)
        if dev.type == "cuda":
            torch.cuda.reset_peak_memory_stats(dev)
        sync()
        t = time.perf_counter()
        pred = run_model(pkg, vol, device=str(dev))
        sync()
        first = time.perf_counter() - t
        runs = []
        for _ in range(args.runs):
            sync()
            t = time.perf_counter()
            pred = run_model(pkg, vol, device=str(dev))
            sync()
            runs.append(time.perf_counter() - t)
        net = get_network(pkg, dev)
        x_np, _ = geometry.to_model_grid(vol, pkg.input)
        x_np, _ = preprocess.pad_to_multiple(x_np, _pad_multiple(pkg))
        x = torch.from_numpy(np.ascontiguousarray(x_np[None])).to(dev)
        bare = []
        for _ in range(args.runs):
            sync()
            t = time.perf_counter()
            with torch.inference_mode(), (torch.autocast("cuda", dtype=torch.float16) if dev.type == "cuda"
                                          else torch.autocast("cpu", enabled=False)):
                net(x)
            sync()
            bare.append(time.perf_counter() - t)
        peak = torch.cuda.max_memory_allocated(dev) / 2**30 if dev.type == "cuda" else float("nan")
        med, mb = statistics.median(runs), statistics.median(bare)
        print(f"run_model: first {first:.3f} s, then median {med:.3f} s (fastest {min(runs):.3f} s) over {args.runs} "
              f"runs; {pred.passes}; timings {({k: round(v, 3) for k, v in pred.timings.items()})}")
        print(f"bare forward of the padded volume {'x'.join(map(str, x.shape[2:]))}: median {mb:.3f} s; "
              f"run_model / bare = {med / mb:.2f}; peak GPU memory {peak:.1f} GiB")
        print(f"labelled voxels: {int((pred.labels.array > 0).sum())} (random weights: speed only)")
        print(f"seconds={med:.3f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
