"""``medview train interactive-3d``: a promptable 3D U-Net trained with simulated clicks.

Objects: MSD Task04 hippocampus volumes of the TRAINING part of the bundled ``hippocampus``
model's split (the whole hippocampus, mask > 0, and each of its two labels); the checkpoint is
chosen on the validation part by the mean Dice after 3 and 5 simulated clicks, with the app's
own ``Segmenter3D.predict``; the test part is never read here (only ``evaluate`` and
benchmarks/bench_interactive.py see it). Each sample is the volume in the network's 48 x 64 x
48 grid (as ``model3d.choose_crop`` places it, jittered by a few voxels, mirrored left-right
half of the time, intensity jitter) with guidance made the DeepGrow / RITM way: a first click at
the object's inscribed centre (or a random interior point), sometimes a perturbed previous mask
with its corrective click, then 0-4 rounds in which the network's own prediction becomes the
previous mask and the simulated annotator adds a click at the centre of its largest error. The
loss can count the cross-entropy of voxels near a click more (CLICK_WEIGHT; off, see there).
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass
from typing import Any, Callable

import numpy as np
from scipy import ndimage

from medview.interactive import card as _card  # noqa: F401 - registers the card data of interactive-3d
from medview.interactive import guidance as g
from medview.interactive import model3d as m3
from medview.interactive import simulate
from medview.training import datasets

TARGETS = (("all", 0.5), (1, 0.25), (2, 0.25))
ITER_P = (0.25, 0.25, 0.2, 0.15, 0.15)  # rounds of the network's own prediction + a corrective click
# extra cross-entropy weight of voxels within CLICK_REACH cells of a click: off. Tried 2026-12-03
# (weight 2.0, i.e. 3x, with 0-6 rounds (0.2, 0.2, 0.15, 0.15, 0.1, 0.1, 0.1), a 40-min continuation):
# validation NoC@90 4.86 vs 4.77, Dice after 1 click 0.815 vs 0.862, so not adopted
CLICK_WEIGHT = 0.0
CLICK_REACH = 5
MODEL_ID = "interactive-3d"


@dataclass
class Case:
    name: str
    volume: np.ndarray  # (D, H, W) float32, raw
    norm: np.ndarray  # z-scored over the volume
    labels: np.ndarray  # (D, H, W) uint8


def load_cases(part: str = "train", log: Callable[[str], None] = print) -> list[Case]:
    """The hippocampus split's ``part`` ("train" | "val" | "test")."""
    if part not in ("train", "val", "test"):
        raise ValueError(part)
    from medview.training.recipes import RECIPES

    # the network's orientation (the MSD files are RAS already)
    code = RECIPES[MODEL_ID].manifest["input"].get("orientation")
    split = datasets.hippocampus()
    t0 = time.monotonic()
    out = []
    for s in getattr(split, part):
        vol = datasets.read_volume(s.image, code).astype(np.float32)
        lab = datasets.read_volume(s.target, code).astype(np.uint8)
        std = float(vol.std())
        out.append(Case(s.name, vol, (vol - float(vol.mean())) / (std if std > 1e-6 else 1.0), lab))
    log(f"{MODEL_ID} {part}: {len(out)} hippocampus volumes ({time.monotonic() - t0:.0f} s)")
    return out


def object_mask(case: Case, target) -> np.ndarray:
    return case.labels > 0 if target == "all" else case.labels == int(target)


def split_description() -> str:
    return ("the training part of the bundled hippocampus model's deterministic split of MSD Task04 (70% train; "
            "objects: the whole hippocampus and each of its two labels); validation (checkpoint choice) = that "
            "split's validation part (10%); its test part (20%) is never seen in training or checkpoint choice")


# ---------------------------------------------------------------------------------------------
# one training sample, in grid space
def _interior_point(m: np.ndarray, rng: np.random.Generator, centre_p: float = 0.5) -> tuple[float, ...] | None:
    if not m.any():
        return None
    if rng.random() < centre_p:
        return tuple(float(v) for v in g.inscribed_centre(m))
    d = ndimage.distance_transform_edt(np.pad(m, 1))[1:-1, 1:-1, 1:-1]
    cand = np.argwhere(d >= max(1.0, 0.4 * d.max()))
    return tuple(float(v) for v in cand[rng.integers(len(cand))])


def _perturb(m: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """A plausible wrong previous mask: grown, shrunk, shifted, cut by a plane, or with a blob."""
    out = m.copy()
    for _ in range(int(rng.integers(1, 3))):
        op = int(rng.integers(5))
        if op == 0:
            out = ndimage.binary_dilation(out, iterations=int(rng.integers(1, 3)))
        elif op == 1:
            out = ndimage.binary_erosion(out, iterations=1)
        elif op == 2:
            out = np.roll(out, tuple(int(v) for v in rng.integers(-3, 4, 3)), axis=(0, 1, 2))
        elif op == 3 and out.any():
            c = np.argwhere(out).mean(0)
            n = rng.normal(size=3)
            n /= np.linalg.norm(n) + 1e-9
            zz, yy, xx = np.ogrid[: out.shape[0], : out.shape[1], : out.shape[2]]
            side = (zz - c[0]) * n[0] + (yy - c[1]) * n[1] + (xx - c[2]) * n[2] > rng.uniform(-4, 4)
            out = out & side
        elif out.any():  # a blob next to the object
            pts = np.argwhere(ndimage.binary_dilation(out, iterations=4) & ~out)
            if len(pts):
                c = pts[rng.integers(len(pts))]
                zz, yy, xx = np.ogrid[: out.shape[0], : out.shape[1], : out.shape[2]]
                out = out | ((zz - c[0]) ** 2 + (yy - c[1]) ** 2 + (xx - c[2]) ** 2 <= rng.uniform(2, 4) ** 2)
    return out


def make_sample(case: Case, target, rng: np.random.Generator, grid=m3.GRID, radius: float = m3.BALL_RADIUS):
    """(4, *grid) input, (*grid) target and the click lists (grid coordinates) of one sample."""
    mask = object_mask(case, target)
    crop = m3.choose_crop(case.volume.shape, np.argwhere(mask), grid)
    jitter = rng.integers(-3, 4, 3)
    crop = g.Crop(tuple(o + float(j) for o, j in zip(crop.origin, jitter, strict=True)), crop.step)
    img = g.sample_view(case.norm, crop, grid)
    gt = g.sample_view(mask.astype(np.float32), crop, grid) > 0.5
    gain, off = rng.uniform(0.85, 1.15), rng.uniform(-0.15, 0.15)
    img = img * gain + off * (img != 0)
    if rng.random() < 0.5:  # left-right mirror
        img, gt = img[..., ::-1], gt[..., ::-1]
    pos: list[tuple[float, ...]] = []
    neg: list[tuple[float, ...]] = []
    prev = np.zeros(grid, bool)
    if gt.any():
        p = _interior_point(gt, rng, centre_p=0.7)
        pos.append(p)
        if rng.random() < 0.15:
            q = _interior_point(gt, rng, 0.0)
            if q is not None:
                pos.append(q)
        if rng.random() < 0.3:  # a previous mask with its corrective click(s)
            prev = _perturb(gt, rng)
            for _ in range(int(rng.integers(1, 3))):
                nc = simulate.next_click(prev, gt)
                if nc is None:
                    break
                (pos if nc[1] else neg).append(tuple(float(v) for v in nc[0]))
                # the click's neighbourhood is then right (as the app honours clicks)
                ball = g.balls([nc[0]], grid, 2.0) > 0
                prev = np.where(ball, gt, prev)
    x = np.stack([img.astype(np.float32), g.balls(pos, grid, radius), g.balls(neg, grid, radius),
                  prev.astype(np.float32)])
    return np.ascontiguousarray(x), np.ascontiguousarray(gt.astype(np.int64))


def iterate(net, x, y, rounds: int, radius: float = m3.BALL_RADIUS) -> None:
    """RITM iterative training: ``rounds`` times, the network's own prediction becomes the
    previous mask and the simulated annotator adds a corrective click (in place, no gradient)."""
    import torch

    grid = tuple(x.shape[2:])
    for _ in range(rounds):
        with torch.no_grad():
            pred = net(x).argmax(1).numpy().astype(bool)
        for i in range(x.shape[0]):
            gt = y[i, 0].numpy().astype(bool)
            nc = simulate.next_click(pred[i], gt)
            x[i, 3] = torch.from_numpy(pred[i].astype(np.float32))
            if nc is not None:
                ch = 1 if nc[1] else 2
                x[i, ch] = torch.maximum(x[i, ch], torch.from_numpy(g.balls([nc[0]], grid, radius)))


def click_weights(x, weight: float = CLICK_WEIGHT, reach: int = CLICK_REACH):
    """(B, *grid) loss weights: 1, plus ``weight`` within a cube of half-side ``reach`` around
    the click balls of input channels 1 and 2."""
    import torch.nn.functional as F

    near = (x[:, 1:3].amax(1, keepdim=True) > 0).float()
    near = F.max_pool3d(near, 2 * reach + 1, stride=1, padding=reach)
    return 1.0 + weight * near[:, 0]


class ClickWeightedDiceCE:
    """Dice + cross-entropy with per-voxel weights; ``y`` is (B, 2, *grid): label, weight."""

    def __init__(self):
        from monai.losses import DiceLoss

        self.dice = DiceLoss(to_onehot_y=True, softmax=True)

    def __call__(self, logits, y):
        import torch.nn.functional as F

        label, w = y[:, :1], y[:, 1]
        ce = F.cross_entropy(logits, label[:, 0].long(), reduction="none")
        return self.dice(logits, label) + (ce * w).sum() / w.sum()


# ---------------------------------------------------------------------------------------------
def run_clicks(segmenter, volume: np.ndarray, gt: np.ndarray, n_clicks: int, spacing=None,
               stop_at: float | None = None) -> tuple[list[float], list[float]]:
    """The simulated annotator on one 3D object with ``Segmenter3D.predict``; returns (Dice
    after each click, seconds per click)."""
    clicks: list[g.Point] = []
    mask = np.zeros(gt.shape, bool)
    dices, secs = [], []
    for i in range(n_clicks):
        nc = simulate.first_click(gt, spacing) if i == 0 else simulate.next_click(mask, gt, spacing)
        if nc is None:
            dices.append(dices[-1] if dices else 1.0)
            continue
        clicks.append(g.Point(tuple(float(v) for v in nc[0]), nc[1]))
        t0 = time.perf_counter()
        mask = segmenter.predict(volume, clicks, mask if mask.any() else None, spacing=spacing, focus=clicks[-1])
        secs.append(time.perf_counter() - t0)
        dices.append(simulate.dice(mask, gt))
        if stop_at is not None and dices[-1] >= stop_at and len(dices) >= 5:
            break
    dices += [dices[-1]] * (n_clicks - len(dices))
    return dices, secs


def val_objects(cases: list[Case]) -> list[tuple[Case, Any]]:
    """One object per validation volume: the whole hippocampus in every second volume, label 1
    or label 2 in the others (one object each keeps validation within the CPU budget)."""
    return [(c, ("all", 1, "all", 2)[i % 4]) for i, c in enumerate(cases)]


def validation_score(segmenter, objs: list[tuple[Case, Any]], clicks: int = 5) -> dict[str, float]:
    rows: dict[str, list[list[float]]] = {"all": [], "label": []}
    for case, target in objs:
        gt = object_mask(case, target)
        if gt.sum() < 8:
            continue
        d, _ = run_clicks(segmenter, case.volume, gt, clicks)
        rows["all" if target == "all" else "label"].append(d)
    out: dict[str, float] = {}
    for k, r in rows.items():
        a = np.array(r)
        for n in (1, 3, 5):
            out[f"{k}_dice{n}"] = float(a[:, n - 1].mean())
    both = np.array(rows["all"] + rows["label"])
    out["score"] = float((both[:, 2].mean() + both[:, 4].mean()) / 2)
    return out


def train(minutes: float, fresh: bool = False, init: str | None = "hippocampus", batch_size: int = 4,
          log: Callable[[str], None] = print, progress=None, max_epochs: int = 1000,
          steps_per_epoch: int = 40) -> dict[str, Any]:
    import torch

    from medview.inference.networks import build_network
    from medview.interactive.training import load_widened
    from medview.training import checkpoint as ckpt
    from medview.training import engine
    from medview.training.recipes import RECIPES

    recipe = RECIPES[MODEL_ID]
    manifest = recipe.new_manifest()
    grid = tuple(manifest["input"]["size"])
    radius = float(manifest["output"].get("ball_radius", m3.BALL_RADIUS))
    net = build_network(manifest["network"]["architecture"], manifest["network"]["args"])
    init_command = None
    if init:
        from medview.inference.package import find_package

        # read before training: this run's package may replace the one it starts from
        init_command = (find_package(init).manifest.get("training") or {}).get("command")
        load_widened(net, init, log)
    train_cases = load_cases("train", log)
    val_cases = load_cases("val", log)
    vobjs = val_objects(val_cases)
    names = [t for t, _ in TARGETS]
    tp = np.array([p for _, p in TARGETS])

    def make(data, rng):
        for _ in range(steps_per_epoch):
            xs, ys = [], []
            for _ in range(batch_size):
                case = data[int(rng.integers(len(data)))]
                target = names[int(rng.choice(len(names), p=tp))]
                if not object_mask(case, target).any():
                    target = "all"
                x, y = make_sample(case, target, rng, grid, radius)
                xs.append(x)
                ys.append(y)
            x = torch.from_numpy(np.stack(xs))
            y = torch.from_numpy(np.stack(ys))[:, None]
            rounds = int(rng.choice(len(ITER_P), p=np.array(ITER_P) / sum(ITER_P)))
            if rounds:
                net.eval()
                iterate(net, x, y, rounds, radius)
                net.train()
            y = torch.cat([y.float(), click_weights(x)[:, None]], 1)
            yield x.contiguous(), y.contiguous()

    def validate(n):
        seg = m3.Segmenter3D(n, grid, radius=radius, target_mm=tuple(manifest["input"]["spacing"]))
        rep = validation_score(seg, vobjs)
        return rep.pop("score"), rep

    torch.set_num_threads(max(1, torch.get_num_threads()))
    cfg = engine.TrainConfig(model_id=MODEL_ID, kind="interactive3d", minutes=minutes, max_epochs=max_epochs,
                             batch_size=batch_size, lr=recipe.lr / 2 if init else recipe.lr,
                             val_every=recipe.val_every, seed=datasets.SEED, fresh=fresh,
                             warmup_s=min(30.0, minutes * 6))
    t0 = time.monotonic()
    state = engine.train(cfg, net, train_cases, validate, make, ClickWeightedDiceCE(),
                         progress=progress, log=log)
    state["train_minutes"] = minutes
    state["init"] = init
    state["init_command"] = init_command
    state["steps_per_epoch"] = steps_per_epoch
    state["iter_p"] = list(ITER_P)
    state["click_weight"] = [CLICK_WEIGHT, CLICK_REACH]
    state["niceness"] = os.nice(0)
    state["wall_s"] = time.monotonic() - t0
    state["split"] = {"description": split_description(), "train_volumes": len(train_cases),
                      "val_volumes": len(val_cases), "val_objects": len(vobjs)}
    ckpt.write_state(MODEL_ID, state)
    return state


def evaluate(package=None, part: str = "test", progress=None, clicks: int = 5) -> dict[str, Any]:
    """``medview evaluate interactive-3d``: mean Dice after 1, 3 and 5 simulated 3D clicks on
    the ``part`` volumes (whole hippocampus and each label). NoC, latency and the 2D
    comparison: benchmarks/bench_interactive.py."""
    from medview.inference.package import find_package

    pkg = find_package(str(package) if package else MODEL_ID)
    seg = m3.Segmenter3D.from_package(pkg)
    cases = load_cases(part, log=lambda _t: None)
    rep: dict[str, Any] = {"per_image": {}}
    rows: dict[str, list[list[float]]] = {}
    total = len(cases) * 3
    done = 0
    for case in cases:
        for target in ("all", 1, 2):
            gt = object_mask(case, target)
            done += 1
            if gt.sum() < 8:
                continue
            d, _ = run_clicks(seg, case.volume, gt, clicks)
            key = "whole" if target == "all" else f"label{target}"
            rows.setdefault(key, []).append(d)
            rep["per_image"][f"{case.name}:{key}"] = d[2]
            if progress:
                progress(done / total, f"{case.name} {key}")
    for key, r in rows.items():
        a = np.array(r)
        for n in (1, 3, 5):
            rep[f"dice_{key}_after_{n}_clicks"] = float(a[:, n - 1].mean())
    rep["mean_dice"] = float(np.mean([v for k, v in rep.items() if k.endswith("_after_3_clicks")]))
    rep.update({"model": pkg.id, "sha256": pkg.sha256, "part": part, "split": split_description()})
    return rep


def _noc_line(seg, cases: list[Case], clicks: int) -> str:
    """NoC and Dice of the simulated annotator on ``cases`` (whole hippocampus), one line."""
    rows, secs = [], []
    for c in cases:
        d, s = run_clicks(seg, c.volume, c.labels > 0, clicks, stop_at=0.9)
        rows.append(d)
        secs += s
    a = np.array(rows)
    return (f"{len(rows)} validation volumes, NoC@90 (max {clicks}) "
            f"{np.mean([simulate.noc(r, 0.9, clicks) for r in rows]):.2f} NoC@85 "
            f"{np.mean([simulate.noc(r, 0.85, clicks) for r in rows]):.2f} Dice after 1/3/5/{clicks} "
            f"{a[:, 0].mean():.3f}/{a[:, 2].mean():.3f}/{a[:, 4].mean():.3f}/{a[:, clicks - 1].mean():.3f} "
            f"reached 0.90 {np.mean(a.max(1) >= 0.9):.0%}, median {1000 * np.median(secs):.0f} ms per click")


def val_settings(clicks: int = 10, package: str = MODEL_ID, groups: tuple[str, ...] = ("local",),
                 thresholds: tuple[float, ...] = (0.35, 0.45, 0.55, 0.65)) -> None:
    """Inference settings compared on the VALIDATION volumes (whole hippocampus), each group
    against the plain setting: ``mirror`` (the left-right mirrored pass averaged in; a second pass
    from the first pass's mask), ``local`` (a corrective click's changes limited to the parts that
    reach it, radius in cells), ``local-after`` (the same from the 4th / 6th click on: the first
    clicks reshape the object, later ones fix its boundary), ``threshold`` (the foreground
    probability cut; ``--threshold 0.3,0.4`` names the values), ``honour`` (voxels within 2 or 3
    voxels of a click forced to its side; 1 by default).
    ``python -m medview.interactive.training3d --val-settings [PACKAGE] [--mirror] [--local]
    [--local-after] [--threshold [T,T...]] [--honour]``"""
    import torch

    from medview.inference.package import find_package

    torch.set_num_threads(1)
    seg = m3.Segmenter3D.from_package(find_package(package))
    cases = load_cases("val", log=lambda _t: None)
    plain = {"mirror_axes": (), "passes": 1, "local_radius": None, "local_after": 0, "threshold": seg.threshold,
             "honour_radius": seg.honour_radius}
    options = {"mirror": [{"mirror_axes": (2,)}, {"passes": 2}],
               "local": [{"local_radius": r} for r in (4.0, 8.0, 12.0)],
               "threshold": [{"threshold": t} for t in thresholds],
               "honour": [{"honour_radius": r} for r in (2.0, 3.0)],
               "local-after": [{"local_radius": r, "local_after": n} for n in (3, 5) for r in (6.0, 10.0)]}
    for change in [{}] + [c for grp in groups for c in options[grp]]:
        for k, v in {**plain, **change}.items():
            setattr(seg, k, v)
        words = ", ".join(f"{k} {v}" for k, v in change.items()) or f"plain (threshold {plain['threshold']:g})"
        print(f"{words}: {_noc_line(seg, cases, clicks)}", flush=True)


def val_compare(packages: list[str], clicks: int = 10) -> None:
    """Packages (ids or folders) compared on the VALIDATION volumes, the way a new training run is
    chosen over the shipped one (never on test).
    ``python -m medview.interactive.training3d --val-compare PACKAGE [PACKAGE ...]``"""
    import torch

    from medview.inference.package import find_package

    torch.set_num_threads(1)
    cases = load_cases("val", log=lambda _t: None)
    for p in packages:
        pkg = find_package(p)
        print(f"{p} (sha256 {pkg.sha256[:12]}): {_noc_line(m3.Segmenter3D.from_package(pkg), cases, clicks)}",
              flush=True)


if __name__ == "__main__":
    import sys

    if "--val-settings" in sys.argv:
        rest = sys.argv[sys.argv.index("--val-settings") + 1:]
        values = [a for a in rest if a[:1].isdigit()]
        pkgs = [a for a in rest if not a.startswith("--") and a not in values]
        groups = tuple(a[2:] for a in rest
                       if a in ("--mirror", "--local", "--local-after", "--threshold", "--honour")) or ("local",)
        thr = tuple(float(t) for v in values for t in v.split(",")) or (0.35, 0.45, 0.55, 0.65)
        val_settings(package=pkgs[0] if pkgs else MODEL_ID, groups=groups, thresholds=thr)
    elif "--val-compare" in sys.argv:
        val_compare(sys.argv[sys.argv.index("--val-compare") + 1:])
    else:
        print("usage: python -m medview.interactive.training3d --val-settings | --val-compare PACKAGE ...   "
              "(training: medview train interactive-3d)")
