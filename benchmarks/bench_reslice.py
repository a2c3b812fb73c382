"""Oblique thick-slab reslicing speed against an axis-aligned slice of the same volume.

    .venv/bin/python benchmarks/bench_reslice.py [--slices 300] [--size 512] [--frames 40]

A synthetic int16 volume (slices x size x size, 0.7 x 0.7 x 1.0 mm) with a uint8 label map.
Each frame of (1) resamples an oblique plane (tilted 25 degrees about two axes, turning a little
every frame as a crosshair drag would) into a 512x512 view as a 10 mm MIP slab with
medview.viewing.Reslicer, plus the label map resliced nearest on the same plane (unedited, so
from the Reslicer's cached ITK copy, as the view does between edits), the way the
view draws while the plane is being dragged (``exact=False``: the slab projected along the voxel
axis nearest its normal from a cached pre-filtered volume); each frame of
(2) is the axis-aligned slice the viewer shows (image + label, numpy views copied to contiguous
arrays as the view does). The two alternate frame by frame so both see the same machine load.
Also times the exact slab (rays along the normal, what the view shows once the drag stops).
Prints ``fps=<oblique slab fps while dragging>`` and, last,
``ratio=<oblique fps / axis-aligned fps>``. Goal: fps >= 30.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from medview.io.volume import Volume  # noqa: E402
from medview.viewing import Reslicer, standard_plane  # noqa: E402


def make_volume(n: int, size: int) -> tuple[Volume, np.ndarray]:
    rng = np.random.default_rng(0)
    yy, xx = np.mgrid[0:size, 0:size]
    r2 = (xx - size / 2) ** 2 + (yy - size / 2) ** 2
    img = np.empty((n, size, size), np.int16)
    lab = np.zeros((n, size, size), np.uint8)
    for z in range(n):  # slice by slice keeps the peak memory small
        body = r2 < ((0.35 + 0.1 * np.sin(z / 20)) * size) ** 2
        img[z] = (body * 900 - 1000 + rng.normal(0, 30, (size, size))).astype(np.int16)
        lab[z][r2 < (0.12 * size) ** 2] = 1 + (z // 50) % 3
    return Volume(img, spacing=(0.7, 0.7, 1.0), meta={"Modality": "CT"}), lab


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--slices", type=int, default=300)
    ap.add_argument("--size", type=int, default=512)
    ap.add_argument("--frames", type=int, default=40)
    ap.add_argument("--slab", type=float, default=10.0)
    args = ap.parse_args()
    vol, lab = make_volume(args.slices, args.size)
    t = time.perf_counter()
    rs = Reslicer(vol)
    print(f"reslicer set-up {1000 * (time.perf_counter() - t):.0f} ms (one copy of the image for ITK)")
    base = standard_plane("axial", vol, size=(512, 512)).rotated(np.radians(25), axis=(1, 0, 0))
    t = time.perf_counter()
    rs.image(base, slab_mm=args.slab, mode="mip", exact=False)
    print(f"slab pre-filter {1000 * (time.perf_counter() - t):.0f} ms (once per slab width and axis)")
    t_obl = t_ax = t_exact = 0.0
    n_exact = 0
    worst = 0.0
    checksum = 0.0
    for f in range(args.frames + 2):
        p = base.rotated(np.radians(25 + 0.5 * f), axis=(0, 1, 0))
        t0 = time.perf_counter()
        img = rs.image(p, slab_mm=args.slab, mode="mip", exact=False)
        lbl = rs.labels(lab, p, key=("labels", 0))  # unedited: the view passes the edit count
        t1 = time.perf_counter()
        k = (f * 7) % args.slices
        a_img = np.ascontiguousarray(vol.array[k])
        a_lbl = np.ascontiguousarray(lab[k])
        t2 = time.perf_counter()
        if f % 4 == 0:  # the exact slab is slower: every 4th frame keeps the run short
            rs.image(p, slab_mm=args.slab, mode="mip")
            t_exact += time.perf_counter() - t2
            n_exact += 1
        checksum += float(img[256, 256]) + float(lbl.sum()) + float(a_img[0, 0]) + float(a_lbl[0, 0])
        if f >= 2:  # first frames warm the caches and thread pool
            t_obl += t1 - t0
            t_ax += t2 - t1
            worst = max(worst, t1 - t0)
    n = args.frames
    fps_obl = n / t_obl
    fps_ax = n / max(t_ax, 1e-9)
    import os

    print(f"machine: {os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.1f} (others' jobs slow every figure)")
    print(f"volume {args.slices}x{args.size}x{args.size} int16, view 512x512, slab {args.slab} mm MIP "
          f"+ label overlay, {n} frames each (checksum {checksum:.0f})")
    print(f"oblique slab: {1000 * t_obl / n:.1f} ms/frame (worst {1000 * worst:.1f} ms)")
    print(f"exact slab (rays along the normal, shown when the drag stops): "
          f"{1000 * t_exact / n_exact:.1f} ms/frame, {n_exact / t_exact:.1f} fps")
    print(f"axis-aligned slice: {1000 * t_ax / n:.3f} ms/frame, fps={fps_ax:.0f} (axis-aligned)")
    # the drag-time slab uses the pre-filter that had landed by then (rebuilt in the background
    # when the tilt moves the width it needs by > 25 %): say which, beside what the last tilt needs
    want = rs._wanted_key[:2] if rs._wanted_key else None
    print(f"slab pre-filter in use at the last frame: voxel axis {rs._filtered_key[0]}, {rs._filtered_key[1]} "
          f"voxels wide" + (f" (building axis {want[0]}, {want[1]} wide)" if want else ""))
    print(f"fps={fps_obl:.1f}")
    print(f"ratio={fps_obl / fps_ax:.4f}")


if __name__ == "__main__":
    main()
