"""Where the simulated annotator's clicks stop paying on 3D pairs: the error left after N clicks.

Runs the same annotator as bench_interactive.py (the app's AssistSession, first click at the
object's inscribed centre, then the centre of the largest error region) for all N clicks, with no
early stop, and prints per pair: the Dice after 3 and N clicks, NoC@90, the share of the error
voxels (false positives + false negatives) within one voxel of the true surface, and the median
change of the Dice per click after the third. Summary: the same for the pairs that never reach
0.90 and for all pairs.

    python benchmarks/interactive_errors.py --pairs held_out_hippocampus.csv [--clicks 20] [--model ID]

(write the pairs with ``python benchmarks/bench_interactive.py --write-pairs hippocampus FILE``).
"""

from __future__ import annotations

import argparse
import csv
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))


def surface_share(pred: np.ndarray, gt: np.ndarray) -> float:
    """Share of the error voxels lying within one voxel (26-neighbourhood) of the truth's surface."""
    from scipy import ndimage

    g = gt > 0
    err = (pred > 0) ^ g
    if not err.any():
        return 1.0
    surface = g ^ ndimage.binary_erosion(g)
    near = ndimage.binary_dilation(surface, structure=np.ones((3, 3, 3), bool))
    return float((err & near).sum()) / float(err.sum())


def run_pair(seg, vol: np.ndarray, gt: np.ndarray, clicks: int, spacing, direction) -> tuple[list[float], np.ndarray]:
    from medview.annotation import LabelMap
    from medview.interactive import simulate
    from medview.interactive.session import AssistSession
    from medview.io.volume import Volume

    lm = LabelMap.empty(Volume(np.zeros(vol.shape, np.int16), spacing=tuple(spacing[::-1]),
                               direction=np.eye(3) if direction is None else direction))
    sess = AssistSession(seg, lm, vol, history=None, value=1, over="all", segmenter3d=seg)
    dices: list[float] = []
    for i in range(clicks):
        pred = lm.array == 1
        nc = simulate.first_click(gt, spacing) if i == 0 else simulate.next_click(pred, gt, spacing)
        if nc is None:
            break
        (z, r, c), positive = nc
        sess.run(sess.click(0, z, r, c, positive))
        dices.append(simulate.dice(lm.array == 1, gt))
    dices += [dices[-1]] * (clicks - len(dices))
    return dices, lm.array == 1


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--pairs", type=Path, required=True, help="CSV with columns image,mask (3D pairs)")
    ap.add_argument("--model", default=None, help="3D interactive package id or folder (default: the bundled one)")
    ap.add_argument("--clicks", type=int, default=20)
    args = ap.parse_args(argv)
    import torch
    from bench_interactive import read_pair

    from medview.inference.package import find_package
    from medview.interactive.model import Segmenter
    from medview.interactive.model3d import find_3d_package
    from medview.interactive.simulate import noc

    torch.set_num_threads(1)
    pkg = find_package(args.model) if args.model else find_3d_package()
    if pkg is None:
        print("no 3D interactive model package found")
        return 1
    seg = Segmenter.from_package(pkg)
    with open(args.pairs, newline="") as f:
        rows = list(csv.DictReader(f))
    results = []
    for row in rows:
        vol, gt, spacing, direction = read_pair(row["image"], row["mask"], None)
        if gt.ndim != 3 or not gt.any():
            print(f"skip {row['image']}: not a 3D pair with an object")
            continue
        dices, pred = run_pair(seg, vol, gt, args.clicks, spacing, direction)
        share = surface_share(pred, gt)
        step = float(np.median(np.abs(np.diff(dices[2:])))) if args.clicks > 3 else 0.0
        results.append((dices, share, step))
        print(f"{Path(row['image']).name}: Dice after 3/{args.clicks} {dices[2]:.3f}/{dices[-1]:.3f} "
              f"NoC@90 {noc(dices, 0.90, args.clicks)} errors at the surface {share:.1%} "
              f"median |dDice| per click after the 3rd {step:.4f}", flush=True)
    if not results:
        print("no pairs")
        return 1

    def summary(label: str, rs: list) -> str:
        if not rs:
            return f"{label}: none"
        shares = [r[1] for r in rs]
        steps = [r[2] for r in rs]
        return (f"{label} (n={len(rs)}): errors at the surface {min(shares):.1%}-{max(shares):.1%} "
                f"(mean {np.mean(shares):.1%}); median |dDice| per click after the 3rd "
                f"{min(steps):.4f}-{max(steps):.4f}; "
                f"Dice after 3 clicks {min(r[0][2] for r in rs):.3f}-{max(r[0][2] for r in rs):.3f}, "
                f"after {args.clicks} {min(r[0][-1] for r in rs):.3f}-{max(r[0][-1] for r in rs):.3f}")

    print(f"model {pkg.id} {pkg.version} (sha256 {pkg.sha256[:12]}), {len(results)} pairs, {args.clicks} clicks")
    print(summary("never reach 0.90", [r for r in results if max(r[0]) < 0.90]))
    print(summary("all pairs", results))
    return 0


if __name__ == "__main__":
    sys.exit(main())
