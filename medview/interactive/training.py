"""``medview train interactive-2d``: a promptable 2D U-Net trained with simulated clicks.

Objects: Kvasir-SEG polyps, PH2 skin lesions and MSD hippocampus slices (all three axes, the
whole structure and each of its two labels), training parts of the bundled models' own splits
only, so every test image of those models stays unseen. Each sample is a square view of an
image (the whole image, or a jittered zoom around the object) resized to 128 px with guidance
channels made the RITM / DeepEdit way: clicks at inscribed centres or random interior points,
a corrective click at the largest error of a perturbed previous mask, scribbles, the mask of
the neighbouring slice for propagation through 3D (with empty targets past the object's end),
and one round of the network's own prediction as previous mask (iterative training).
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any, Callable

import numpy as np
from scipy import ndimage

from medview.interactive import guidance as g
from medview.interactive import simulate
from medview.training import datasets

MIX = {"polyp": 0.4, "skin": 0.25, "hippocampus": 0.35}


@dataclass
class Obj:
    image: np.ndarray  # (3, H, W) normalised
    mask: np.ndarray  # (H, W) bool
    source: str
    neighbours: list[np.ndarray] = field(default_factory=list)  # masks of the same object nearby (3D)
    name: str = ""


# ---------------------------------------------------------------------------------------------
# data
def _downscale(img: np.ndarray, mask: np.ndarray, max_side: int) -> tuple[np.ndarray, np.ndarray]:
    from PIL import Image

    h, w = mask.shape
    f = max_side / max(h, w)
    if f >= 1:
        return img, mask
    size = (max(1, round(w * f)), max(1, round(h * f)))
    img = np.asarray(Image.fromarray(img).resize(size, Image.BILINEAR))
    mask = np.asarray(Image.fromarray(mask.astype(np.uint8) * 255).resize(size, Image.BILINEAR)) > 127
    return img, mask


def photo_objects(samples: list[datasets.Sample], source: str, max_side: int = 384) -> list[Obj]:
    out = []
    for s in samples:
        img = datasets.read_image(s.image)
        mask = datasets.read_mask(s.target).astype(bool)
        img, mask = _downscale(img, mask, max_side)
        if mask.sum() >= 16:
            out.append(Obj(g.normalise_image(img), mask, source, name=s.name))
    return out


def hippocampus_objects(samples: list[datasets.Sample], step: int = 2, min_px: int = 8) -> list[Obj]:
    """2D objects from 3D volumes: slices along each axis (every ``step``-th), the whole
    structure and each label; neighbours are the same object's masks one and two slices away."""
    out = []
    for s in samples:
        vol = datasets.read_volume(s.image).astype(np.float32)
        lab = datasets.read_volume(s.target)
        for target in ("all", 1, 2):
            m3 = lab > 0 if target == "all" else lab == target
            for axis in range(3):
                n = m3.shape[axis]
                for z in range(0, n, step):
                    m = np.take(m3, z, axis=axis)
                    if m.sum() < min_px and not (0 < z < n - 1 and (np.take(m3, z - 1, axis).sum() >= min_px
                                                                    or np.take(m3, z + 1, axis).sum() >= min_px)):
                        continue
                    nb = [np.take(m3, k, axis=axis) for k in (z - 2, z - 1, z + 1, z + 2) if 0 <= k < n]
                    out.append(Obj(g.normalise_image(np.take(vol, z, axis=axis)), m, "hippocampus", nb,
                                   name=f"{s.name}:{target}:{axis}:{z}"))
    return out


def load_objects(part: str = "train", log: Callable[[str], None] = print) -> dict[str, list[Obj]]:
    kv = datasets.kvasir()
    ph = datasets.ph2(segmentation=True)
    hc = datasets.hippocampus()
    t0 = time.monotonic()
    objs = {
        "polyp": photo_objects(getattr(kv, part), "polyp"),
        "skin": photo_objects(getattr(ph, part), "skin"),
        "hippocampus": hippocampus_objects(getattr(hc, part), step=2 if part == "train" else 9),
    }
    log(f"interactive-2d {part} objects: " + ", ".join(f"{k} {len(v)}" for k, v in objs.items())
        + f" ({time.monotonic() - t0:.0f} s)")
    return objs


def split_description() -> str:
    return ("the training parts of the bundled models' own deterministic splits: Kvasir-SEG (polyp: 80% train), "
            "PH2 (skin-lesion-seg: 60% train), MSD hippocampus (hippocampus: 70% train, slices along all three "
            "axes); validation (checkpoint choice) = those splits' validation parts; their test parts are "
            "never seen")


# ---------------------------------------------------------------------------------------------
# one training sample, built in network space
def _random_view(obj: Obj, rng: np.random.Generator) -> g.View:
    shape = obj.mask.shape
    if rng.random() < 0.3 or not obj.mask.any():
        v = g.whole_view(shape)
        s = v.side * rng.uniform(0.95, 1.1)
        return g.View(v.r0 - (s - v.side) / 2, v.c0 - (s - v.side) / 2, s)
    pts = np.argwhere(obj.mask)
    v = g.focus_view(shape, pts, expand=float(rng.uniform(1.25, 2.4)))
    jr, jc = rng.uniform(-0.15, 0.15, 2) * v.side
    return g.View(v.r0 + jr, v.c0 + jc, v.side)


def _interior_point(m: np.ndarray, rng: np.random.Generator, centre_p: float = 0.4) -> tuple[float, float] | None:
    if not m.any():
        return None
    if rng.random() < centre_p:
        c = g.inscribed_centre(m)
        return float(c[0]), float(c[1])
    d = ndimage.distance_transform_edt(np.pad(m, 1))[1:-1, 1:-1]
    cand = np.argwhere(d >= max(1.0, 0.3 * d.max()))
    r, c = cand[rng.integers(len(cand))]
    return float(r), float(c)


def _perturb(m: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """A plausible wrong previous mask: grown, shrunk, shifted, cut, or with an extra blob."""
    out = m.copy()
    size = max(2.0, np.sqrt(m.sum()))
    for _ in range(int(rng.integers(1, 3))):
        op = rng.integers(5)
        r = int(max(1, rng.uniform(0.05, 0.3) * size))
        if op == 0:
            out = ndimage.binary_dilation(out, iterations=r)
        elif op == 1:
            out = ndimage.binary_erosion(out, iterations=r)
        elif op == 2:
            out = np.roll(out, tuple(int(v) for v in rng.integers(-r, r + 1, 2)), axis=(0, 1))
        elif op == 3 and out.any():  # cut by a random line through the object
            c = np.argwhere(out).mean(0)
            ang = rng.uniform(0, np.pi)
            yy, xx = np.mgrid[: out.shape[0], : out.shape[1]]
            side = (yy - c[0]) * np.cos(ang) + (xx - c[1]) * np.sin(ang) > rng.uniform(-0.3, 0.3) * size
            out = out & side
        else:  # a blob near the object
            yy, xx = np.mgrid[: out.shape[0], : out.shape[1]]
            cr, cc = rng.uniform(0, out.shape[0]), rng.uniform(0, out.shape[1])
            out = out | (((yy - cr) ** 2 + (xx - cc) ** 2) < (rng.uniform(0.1, 0.4) * size) ** 2)
    return out


def _scribble(m: np.ndarray, rng: np.random.Generator) -> np.ndarray | None:
    a, b = _interior_point(m, rng, 0.0), _interior_point(m, rng, 0.0)
    if a is None:
        return None
    t = np.linspace(0, 1, 64)[:, None]
    line = np.round(np.array(a) * (1 - t) + np.array(b) * t).astype(int)
    s = np.zeros_like(m)
    s[line[:, 0], line[:, 1]] = True
    return ndimage.binary_dilation(s, iterations=1) & m


def make_sample(obj: Obj, rng: np.random.Generator, size: int = g.SIZE) -> tuple[np.ndarray, np.ndarray]:
    """(6, S, S) input and (S, S) target of one simulated interaction."""
    view = _random_view(obj, rng)
    img = g.sample_view(obj.image, view, size)
    gt = g.sample_view(obj.mask.astype(np.float32), view, size) > 0.5
    pos_pts: list[tuple[float, float]] = []
    neg_pts: list[tuple[float, float]] = []
    prev = np.zeros((size, size), bool)
    pos_stroke = np.zeros((size, size), bool)
    neg_stroke = np.zeros((size, size), bool)
    mode = rng.random()
    if obj.neighbours and mode < 0.35:  # propagation: the neighbouring slice's mask, no clicks
        prev = g.sample_view(obj.neighbours[int(rng.integers(len(obj.neighbours)))].astype(np.float32),
                             view, size) > 0.5
        if not prev.any() or rng.random() < 0.3:
            p = _interior_point(gt, rng)
            if p is not None:
                pos_pts.append(p)
    elif gt.any():
        p = _interior_point(gt, rng, centre_p=0.5)
        if rng.random() < 0.15:
            s = _scribble(gt, rng)
            if s is not None:
                pos_stroke = s
        pos_pts.append(p)
        for _ in range(int(rng.choice([0, 0, 1, 2]))):
            q = _interior_point(gt, rng, 0.0)
            if q is not None:
                pos_pts.append(q)
        band = ndimage.binary_dilation(gt, iterations=max(2, size // 10)) & ~gt
        for _ in range(int(rng.choice([0, 0, 1, 2]))):
            cand = np.argwhere(band if rng.random() < 0.7 else ~gt)
            if len(cand):
                r, c = cand[rng.integers(len(cand))]
                neg_pts.append((float(r), float(c)))
        if rng.random() < 0.55:  # a previous mask with its corrective click
            prev = _perturb(gt, rng)
            nc = simulate.next_click(prev, gt)
            if nc is not None:
                (pos_pts if nc[1] else neg_pts).append((float(nc[0][0]), float(nc[0][1])))
                if rng.random() < 0.1:
                    nm = prev & ~gt
                    if not nc[1] and nm.any():
                        neg_stroke = _scribble(nm, rng) if _scribble(nm, rng) is not None else neg_stroke
    pos = np.maximum(g.discs(pos_pts, size), pos_stroke)
    neg = np.maximum(g.discs(neg_pts, size), neg_stroke)
    x = np.concatenate([img, pos[None], neg[None], prev[None].astype(np.float32)]).astype(np.float32)
    return x, gt.astype(np.int64)


def iterate_once(net, x, y) -> None:
    """RITM iterative training: the network's own prediction becomes the previous mask and the
    simulated annotator adds one corrective click (in place, no gradient)."""
    import torch

    with torch.no_grad():
        pred = net(x).argmax(1).numpy().astype(bool)
    for i in range(x.shape[0]):
        gt = y[i, 0].numpy().astype(bool)
        nc = simulate.next_click(pred[i], gt)
        x[i, 5] = torch.from_numpy(pred[i].astype(np.float32))
        if nc is not None:
            ch = 3 if nc[1] else 4
            x[i, ch] = torch.maximum(x[i, ch], torch.from_numpy(g.discs([nc[0]], x.shape[-1])))


def augment(x, y, rng: np.random.Generator):
    import torch

    if rng.random() < 0.5:
        x, y = x.flip(-1), y.flip(-1)
    if rng.random() < 0.5:
        x, y = x.flip(-2), y.flip(-2)
    k = int(rng.integers(4))
    x, y = torch.rot90(x, k, (-2, -1)), torch.rot90(y, k, (-2, -1))
    b = x.shape[0]
    gain = torch.from_numpy(rng.uniform(0.8, 1.2, (b, 3, 1, 1)).astype(np.float32))
    off = torch.from_numpy(rng.uniform(-0.2, 0.2, (b, 3, 1, 1)).astype(np.float32))
    x = x.clone()
    x[:, :3] = x[:, :3] * gain + off
    return x.contiguous(), y.contiguous()


# ---------------------------------------------------------------------------------------------
def validation_score(segmenter, objs: dict[str, list[Obj]], clicks: int = 5, per_source: int = 24) -> dict[str, float]:
    """Mean Dice after 1/3/5 simulated clicks on validation objects (the app's own predict)."""
    from medview.interactive.model import Prompts

    res: dict[str, list[list[float]]] = {}
    for src, lst in objs.items():
        step = max(1, len(lst) // per_source)
        for obj in lst[::step][:per_source]:
            if obj.mask.sum() < 16:
                continue
            res.setdefault(src, []).append(run_clicks(segmenter, obj.image, obj.mask, clicks, Prompts)[0])
    out = {}
    for src, rows in res.items():
        arr = np.array(rows)
        out[f"{src}_dice1"] = float(arr[:, 0].mean())
        out[f"{src}_dice3"] = float(arr[:, 2].mean())
        out[f"{src}_dice5"] = float(arr[:, 4].mean())
    out["score"] = float(np.mean([out[f"{s}_dice3"] + out[f"{s}_dice5"] for s in res]) / 2)
    return out


def run_clicks(segmenter, image_norm, gt, n_clicks, prompts_cls, stop_at: float | None = None):
    """The simulated annotator on one 2D object; returns (dices after each click, seconds per click)."""
    prompts = prompts_cls()
    mask = np.zeros(gt.shape, bool)
    dices, secs = [], []
    for i in range(n_clicks):
        nc = simulate.first_click(gt) if i == 0 else simulate.next_click(mask, gt)
        if nc is None:
            dices.append(dices[-1] if dices else 1.0)
            continue
        prompts.clicks.append(g.Click(float(nc[0][0]), float(nc[0][1]), nc[1]))
        t0 = time.perf_counter()
        mask = segmenter.predict(image_norm, prompts, mask if mask.any() else None)
        secs.append(time.perf_counter() - t0)
        dices.append(simulate.dice(mask, gt))
        if stop_at is not None and dices[-1] >= stop_at and len(dices) >= 5:
            break  # NoC is decided; later entries repeat the last Dice
    dices += [dices[-1]] * (n_clicks - len(dices))
    return dices, secs


def train(minutes: float, fresh: bool = False, init: str | None = "polyp", batch_size: int = 16,
          log: Callable[[str], None] = print, progress=None, max_epochs: int = 1000) -> dict[str, Any]:
    import torch
    from monai.losses import DiceCELoss

    from medview.inference.networks import build_network
    from medview.interactive.model import Segmenter
    from medview.training import engine
    from medview.training.recipes import RECIPES

    recipe = RECIPES["interactive-2d"]
    manifest = recipe.new_manifest()
    net = build_network(manifest["network"]["architecture"], manifest["network"]["args"])
    if init:
        load_widened(net, init, log)
    train_objs = load_objects("train", log)
    val_objs = load_objects("val", log)
    sources = [s for s in MIX if train_objs.get(s)]
    weights = np.array([MIX[s] for s in sources])
    weights /= weights.sum()
    steps_per_epoch = 60

    def make(data, rng):
        for _ in range(steps_per_epoch):
            xs, ys = [], []
            for _ in range(batch_size):
                src = sources[int(rng.choice(len(sources), p=weights))]
                lst = data[src]
                x, y = make_sample(lst[int(rng.integers(len(lst)))], rng)
                xs.append(x)
                ys.append(y)
            x = torch.from_numpy(np.stack(xs))
            y = torch.from_numpy(np.stack(ys))[:, None]
            if rng.random() < 0.35:
                net.eval()
                iterate_once(net, x, y)
                net.train()
            yield augment(x, y, rng)

    def validate(n):
        rep = validation_score(Segmenter(n), val_objs)
        return rep.pop("score"), rep

    cfg = engine.TrainConfig(model_id="interactive-2d", kind="interactive2d", minutes=minutes,
                             max_epochs=max_epochs, batch_size=batch_size,
                             lr=recipe.lr / 2 if init else recipe.lr, val_every=recipe.val_every,
                             seed=datasets.SEED, fresh=fresh, warmup_s=min(20.0, minutes * 6))
    state = engine.train(cfg, net, train_objs, validate, make, DiceCELoss(to_onehot_y=True, softmax=True),
                         progress=progress, log=log)
    state["train_minutes"] = minutes
    state["init"] = init
    state["split"] = {"description": split_description(),
                      **{f"train_{k}": len(v) for k, v in train_objs.items()},
                      **{f"val_{k}": len(v) for k, v in val_objs.items()}}
    from medview.training import checkpoint as ckpt

    ckpt.write_state("interactive-2d", state)
    return state


def _narrow(v, axis: int, n: int):
    """A tensor's ``axis`` cut from k label channels to ``n`` = 2 (background, object): the
    background channel and the mean of the label channels."""
    import torch

    parts = [v.narrow(axis, 0, 1), v.narrow(axis, 1, v.shape[axis] - 1).mean(axis, keepdim=True)]
    return torch.cat(parts, axis) if n == 2 else v.narrow(axis, 0, n).clone()


def load_widened(net, package_id: str, log: Callable[[str], None] = print) -> None:
    """Start from a bundled U-Net (2D or 3D): every tensor that fits is copied; the first
    convolutions get the image weights for the image channels and small random weights (half
    the image weights' SD) for the guidance channels, so the start is nearly the plain
    segmenter and the guidance is learnt on top. A multi-label source's output layers are cut
    to background / object (the object channel starts as the mean of the label channels)."""
    import torch

    from medview.inference.package import find_package, load_network

    src = load_network(find_package(package_id)).state_dict()
    own = net.state_dict()
    used = 0
    for k, v in src.items():
        if k not in own:
            continue
        o = own[k]
        if o.ndim == v.ndim and o.ndim >= 1 and o.shape != v.shape and o.ndim != 2:
            for axis in range(min(2, v.ndim)):  # output channels: dim 0 (conv, bias) or 1 (transposed conv)
                if o.shape[axis] < v.shape[axis] and o.shape[axis] == 2 \
                        and all(o.shape[a] == v.shape[a] for a in range(v.ndim) if a != axis and a >= 2):
                    v = _narrow(v, axis, 2)
        if o.shape == v.shape:
            own[k] = v.clone()
            used += 1
        elif v.ndim >= 4 and o.shape[0] == v.shape[0] and o.shape[2:] == v.shape[2:] and o.shape[1] > v.shape[1]:
            w = torch.zeros_like(o)
            w[:, : v.shape[1]] = v
            w[:, v.shape[1]:] = torch.randn_like(w[:, v.shape[1]:]) * float(v.std()) * 0.5
            own[k] = w
            used += 1
    net.load_state_dict(own)
    log(f"initialised {used} of {len(own)} tensors from {package_id}")


def evaluate(package=None, part: str = "test", progress=None, clicks: int = 5) -> dict[str, Any]:
    """``medview evaluate interactive-2d``: mean Dice after 1, 3 and 5 simulated clicks on the
    held-out part of each source (2D; hippocampus as slices of the held-out volumes). The full
    protocol (NoC@85/90, 3D propagation, brush baseline, latency) is benchmarks/bench_interactive.py."""
    from medview.inference.package import find_package
    from medview.interactive.model import Prompts, Segmenter

    pkg = find_package(str(package) if package else "interactive-2d")
    seg = Segmenter.from_package(pkg)
    objs = load_objects(part, log=lambda _t: None)
    rep: dict[str, Any] = {"per_image": {}}
    total = sum(len(v) for v in objs.values())
    done = 0
    for src, lst in objs.items():
        rows = []
        for obj in lst:
            d, _ = run_clicks(seg, obj.image, obj.mask, clicks, Prompts)
            rows.append(d)
            rep["per_image"][f"{src}:{obj.name}"] = d[2]
            done += 1
            if progress:
                progress(done / total, f"{src} {obj.name}")
        arr = np.array(rows)
        for n in (1, 3, 5):
            rep[f"dice_{src}_after_{n}_clicks"] = float(arr[:, n - 1].mean())
    rep["mean_dice"] = float(np.mean([v for k, v in rep.items() if k.endswith("_after_3_clicks")]))
    rep.update({"model": pkg.id, "sha256": pkg.sha256, "part": part, "split": split_description()})
    return rep
