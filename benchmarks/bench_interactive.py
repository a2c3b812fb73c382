"""Simulated annotator for interactive segmentation: clicks to reach Dice 0.85 / 0.90.

For each image/mask pair the standard protocol places clicks (first at the centre of the
object's largest inscribed region, each next one at the centre of the largest error region,
positive on a false negative, negative on a false positive), up to ``--clicks`` (20). Printed:
NoC@85 and NoC@90 (clicks to reach Dice 0.85 / 0.90; the maximum when never reached), the Dice
after 1, 3 and 5 clicks and the median latency per click, for the AI model and for the
brush-only baseline it replaces (one brush dab per click at the same error-region centres: the
largest disc that fits the error region there, up to a radius of 4% of the image's longest side,
e.g. 10 px on a 256 px photograph; a 3D pair gets 2D dabs in the click's slice).

2D pairs run ``medview.interactive.model.Segmenter`` on the image. 3D pairs (NIfTI volumes)
run the app's ``AssistSession``: with a 3D interactive model (the default for 3D pairs when one
is bundled: ``interactive-3d``) each click is a 3D click and one pass updates the whole object;
with a 2D model each click lands on its axial slice, whose mask then propagates through the
neighbouring slices until the object ends or a prompted slice. Latency is the whole
interaction.

    python benchmarks/bench_interactive.py --pairs pairs.csv [--model ID] [--compare ID ...]
    python benchmarks/bench_interactive.py --write-pairs polyp held_out_polyp.csv   # test split

``--model`` forces one model for every pair (default: ``interactive-2d`` for 2D pairs, the
bundled 3D interactive model for 3D pairs, else ``interactive-2d``); ``--compare`` runs further
models on the same pairs in the same run (their lines are printed first). The last line is
``noc90=<mean> ms_per_click=<median>`` of the default / ``--model`` one.
"""

from __future__ import annotations

import argparse
import csv
import sys
import time
from pathlib import Path

import numpy as np
from scipy import ndimage

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def read_pair(image: str, mask: str, max_side: int | None):
    from medview.training import datasets

    if image.endswith((".nii", ".nii.gz", ".mha", ".nrrd")):
        import SimpleITK as sitk

        im = sitk.ReadImage(image)
        vol = sitk.GetArrayFromImage(im).astype(np.float32)
        lab = sitk.GetArrayFromImage(sitk.ReadImage(mask)) > 0
        # spacing (z, y, x) and the direction: the 3D model sees the volume in its own orientation
        return vol, lab, tuple(im.GetSpacing()[::-1]), np.array(im.GetDirection()).reshape(3, 3)
    img = datasets.read_image(Path(image))
    m = datasets.read_image(Path(mask))
    if m.ndim == 3:
        m = m.max(-1)
    m = m > (127 if m.max() > 1 else 0)  # lossy JPEG masks: half way
    if max_side and max(m.shape) != max_side:
        from PIL import Image

        f = max_side / max(m.shape)
        size = (round(m.shape[1] * f), round(m.shape[0] * f))
        img = np.asarray(Image.fromarray(img).resize(size, Image.BILINEAR))
        m = np.asarray(Image.fromarray(m.astype(np.uint8) * 255).resize(size, Image.NEAREST)) > 0
    return img, m, None, None


def brush_baseline(gt: np.ndarray, n_clicks: int, spacing=None, brush_fraction: float = 0.04) -> list[float]:
    """One dab per click at the error-region centre: the largest disc that fits the error there,
    at most ``brush_fraction`` of the slice's longest side in radius (a big brush)."""
    from medview.interactive import simulate

    brush_px = max(2.0, brush_fraction * max(gt.shape[-2:]))
    mask = np.zeros(gt.shape, bool)
    out = []
    for i in range(n_clicks):
        nc = simulate.first_click(gt, spacing) if i == 0 else simulate.next_click(mask, gt, spacing)
        if nc is None:
            out.append(out[-1] if out else 1.0)
            continue
        (pt, positive) = nc
        region = gt & ~mask if positive else mask & ~gt
        lab, _ = ndimage.label(region)
        part = lab == lab[pt]
        fit = float(ndimage.distance_transform_edt(np.pad(part, 1))[tuple(p + 1 for p in pt)])
        r = max(1.0, min(fit, brush_px))
        grids = np.ogrid[tuple(slice(0, n) for n in gt.shape)]
        if gt.ndim == 3:  # a 2D brush dab in the click's slice
            disc = np.zeros(gt.shape, bool)
            yy, xx = grids[1], grids[2]
            disc[pt[0]] = ((yy - pt[1]) ** 2 + (xx - pt[2]) ** 2 <= r * r)[0]
        else:
            disc = sum((g - p) ** 2 for g, p in zip(grids, pt, strict=False)) <= r * r
        mask = mask | disc if positive else mask & ~disc
        out.append(simulate.dice(mask, gt))
    return out


def run_2d(seg, img, gt, n_clicks):
    from medview.interactive import guidance as g
    from medview.interactive.model import Prompts
    from medview.interactive.training import run_clicks

    return run_clicks(seg, g.normalise_image(img), gt, n_clicks, Prompts, stop_at=0.90)


def run_3d(seg, vol, gt, n_clicks, spacing, direction=None):
    """The app's AssistSession on a volume: a 3D model (``seg.dims == 3``) gets 3D clicks, a 2D
    model the clicked axial slice plus propagation."""
    from medview.annotation import LabelMap
    from medview.interactive import simulate
    from medview.interactive.session import AssistSession
    from medview.io.volume import Volume

    lm = LabelMap.empty(Volume(np.zeros(vol.shape, np.int16), spacing=tuple(spacing[::-1]),
                               direction=np.eye(3) if direction is None else direction))
    sess = AssistSession(seg, lm, vol, history=None, value=1, over="all",
                         segmenter3d=seg if getattr(seg, "dims", 2) == 3 else None)
    dices, secs = [], []
    for i in range(n_clicks):
        pred = lm.array == 1
        nc = simulate.first_click(gt, spacing) if i == 0 else simulate.next_click(pred, gt, spacing)
        if nc is None:
            dices.append(dices[-1] if dices else 1.0)
            continue
        (z, r, c), positive = nc
        t0 = time.perf_counter()
        sess.run(sess.click(0, z, r, c, positive))
        secs.append(time.perf_counter() - t0)
        dices.append(simulate.dice(lm.array == 1, gt))
        if dices[-1] >= 0.90 and len(dices) >= 5:
            break  # NoC is decided; later entries repeat the last Dice
    dices += [dices[-1]] * (n_clicks - len(dices))
    return dices, secs


def write_pairs(name: str, out: Path) -> None:
    from medview.training import datasets

    split = {"polyp": datasets.kvasir, "skin": lambda: datasets.ph2(segmentation=True),
             "hippocampus": datasets.hippocampus}[name]()
    with open(out, "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["image", "mask"])
        for s in split.test:
            w.writerow([str(s.image), str(s.target)])
    print(f"wrote {len(split.test)} held-out {name} pairs (the test split of the bundled model) to {out}")


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--pairs", type=Path, help="CSV with columns image,mask")
    ap.add_argument("--model", default=None, help="interactive model package id or folder for every pair "
                    "(default: interactive-2d for 2D pairs, the bundled 3D interactive model for 3D pairs)")
    ap.add_argument("--compare", action="append", default=[], metavar="ID",
                    help="also run this model on the same pairs (repeatable; printed before the default one)")
    ap.add_argument("--clicks", type=int, default=20)
    ap.add_argument("--limit", type=int, default=None, help="only the first N pairs")
    ap.add_argument("--max-side", type=int, default=None, help="resize 2D pairs to this longest side (e.g. 512)")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--write-pairs", nargs=2, metavar=("SET", "CSV"),
                    help="write the held-out test split of polyp | skin | hippocampus as a pairs CSV and exit")
    args = ap.parse_args(argv)
    if args.write_pairs:
        write_pairs(args.write_pairs[0], Path(args.write_pairs[1]))
        return 0
    if not args.pairs:
        ap.error("--pairs is required")
    import torch

    from medview.inference.package import find_package
    from medview.interactive.model import Segmenter
    from medview.interactive.model3d import find_3d_package
    from medview.interactive.simulate import noc

    torch.set_num_threads(args.threads)
    with open(args.pairs, newline="") as f:
        rows = list(csv.DictReader(f))[: args.limit]
    loaded: dict[str, object] = {}

    def segmenter(model_id: str):
        if model_id not in loaded:
            loaded[model_id] = Segmenter.from_package(find_package(model_id))
        return loaded[model_id]

    def default_for(ndim: int) -> str:
        if args.model:
            return args.model
        if ndim == 3:
            pkg = find_3d_package()
            if pkg is not None:
                return pkg.id
        return "interactive-2d"

    # per model: dices per pair and latencies; the primary model is the default / --model one
    res: dict[str, dict[str, list]] = {}
    brush = []
    primary: list[str] = []
    dims_seen: set[int] = set()
    for n, row in enumerate(rows):
        img, gt, spacing, direction = read_pair(row["image"], row["mask"], args.max_side)
        if not gt.any():
            print(f"skip {row['image']}: empty mask")
            continue
        dims_seen.add(gt.ndim)
        main_id = default_for(gt.ndim)
        if main_id not in primary:
            primary.append(main_id)
        parts = []
        for mid in [*args.compare, main_id]:
            seg = segmenter(mid)
            if gt.ndim == 3:
                d, s = run_3d(seg, img, gt, args.clicks, spacing, direction)
            else:
                d, s = run_2d(seg, img, gt, args.clicks)
            key = mid if mid != main_id or mid in args.compare else "*" + mid
            r = res.setdefault(key, {"dices": [], "lat": []})
            r["dices"].append(d)
            r["lat"] += s
            parts.append(f"{mid} dice@1/3/5 {d[0]:.3f}/{d[2]:.3f}/{d[4]:.3f} NoC90 {noc(d, 0.90, args.clicks)} "
                         f"{1000 * np.median(s):.0f} ms/click")
        b = brush_baseline(gt, args.clicks, spacing)
        brush.append(b)
        print(f"{n + 1}/{len(rows)} {Path(row['image']).name} {'x'.join(map(str, gt.shape))}: " + "; ".join(parts)
              + f"; brush NoC90 {noc(b, 0.90, args.clicks)}", flush=True)
    if not brush:
        print("no pairs")
        return 1

    def block(label: str, rows_: list) -> str:
        arr = np.array(rows_)
        n85 = np.mean([noc(r, 0.85, args.clicks) for r in rows_])
        n90 = np.mean([noc(r, 0.90, args.clicks) for r in rows_])
        return (f"{label:10s}: NoC@85 {n85:.2f}  NoC@90 {n90:.2f}  Dice after 1/3/5 clicks "
                f"{arr[:, 0].mean():.3f}/{arr[:, 2].mean():.3f}/{arr[:, 4].mean():.3f}  "
                f"reached 0.90: {np.mean([max(r) >= 0.9 for r in rows_]):.0%}")

    def latency(lat: list) -> str:
        return (f"latency: median {1000 * float(np.median(lat)):.0f} ms per click, 90th percentile "
                f"{1000 * np.percentile(lat, 90):.0f} ms ({args.threads} torch thread(s))")

    order = [k for k in res if not k.startswith("*")] + [k for k in res if k.startswith("*")]
    for key in order:
        seg = loaded[key.lstrip("*")]
        pkg = seg.package
        how = ("3D network, one pass per click" if getattr(seg, "dims", 2) == 3
               else "2D network" + (", slice + propagation on 3D pairs" if 3 in dims_seen else ""))
        print(f"model {pkg.id} {pkg.version} (sha256 {pkg.sha256[:12]}; {how}), {len(res[key]['dices'])} pairs, "
              f"up to {args.clicks} clicks")
        print(block("AI assist", res[key]["dices"]))
        print(latency(res[key]["lat"]))
    print(block("brush only", brush))
    main = [k for k in res if k.startswith("*")] or [order[-1]]
    ai = [d for k in main for d in res[k]["dices"]]
    lat = [t for k in main for t in res[k]["lat"]]
    noc90 = np.mean([noc(r, 0.90, args.clicks) for r in ai])
    print(f"noc90={noc90:.2f} ms_per_click={1000 * float(np.median(lat)):.0f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
