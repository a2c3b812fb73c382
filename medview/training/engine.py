"""Training loops (classification, 2D / 3D segmentation) with a time budget, a fixed seed,
a progress bar, validation-based checkpoint choice and resumable checkpoints.

The learning rate follows a cosine over the *time* budget, so a run given N minutes anneals in
N minutes; a run cut off and restarted resumes from ``checkpoints/<id>/`` with its elapsed time.
"""

from __future__ import annotations

import math
import sys
import time
from dataclasses import dataclass, field
from typing import Any, Callable

import numpy as np

from medview.progress import ProgressFn, check_cancelled
from medview.training import checkpoint as ckpt


# ---------------------------------------------------------------------------------------------
class ProgressBar:
    """A one-line text progress bar on stderr (no dependency)."""

    def __init__(self, label: str, stream=None, width: int = 30) -> None:
        self.label, self.stream, self.width = label, stream or sys.stderr, width
        self._last = -1.0

    def __call__(self, fraction: float, stage: str) -> None:
        fraction = min(max(fraction, 0.0), 1.0)
        now = time.monotonic()
        if now - self._last < 0.5 and fraction < 1.0:
            return
        self._last = now
        n = int(self.width * fraction)
        bar = "#" * n + "-" * (self.width - n)
        end = "\n" if fraction >= 1.0 else ""
        tty = getattr(self.stream, "isatty", lambda: False)()
        if tty:
            self.stream.write(f"\r{self.label} [{bar}] {fraction * 100:5.1f}% {stage[:70]:<70}{end}")
        else:  # logs: one line per call is too much; print at most every 5%
            key = int(fraction * 20)
            if key == getattr(self, "_key", None) and fraction < 1.0:
                return
            self._key = key
            self.stream.write(f"{self.label} [{bar}] {fraction * 100:5.1f}% {stage}\n")
        self.stream.flush()


def say(text: str) -> None:
    print(text, flush=True)


def seed_everything(seed: int) -> None:
    import random

    import torch

    random.seed(seed)
    np.random.seed(seed % (2**32))
    torch.manual_seed(seed)


# ---------------------------------------------------------------------------------------------
@dataclass
class TrainConfig:
    model_id: str
    kind: str  # classification | seg2d | seg3d
    minutes: float
    max_epochs: int = 1000
    batch_size: int = 16
    lr: float = 1e-3
    weight_decay: float = 1e-4
    warmup_s: float = 20.0
    patch: tuple[int, ...] | None = None  # random crop size for segmentation
    patches_per_image: int = 1
    val_every: int = 1
    seed: int = 0
    class_weights: list[float] | None = None
    augment: dict[str, Any] = field(default_factory=dict)
    fresh: bool = False


def _lr_at(cfg: TrainConfig, elapsed: float) -> float:
    total = max(cfg.minutes * 60.0, 1.0)
    warm = min(1.0, (elapsed + 1.0) / max(cfg.warmup_s, 1.0))
    frac = min(elapsed / total, 1.0)
    return cfg.lr * warm * (0.02 + 0.98 * 0.5 * (1.0 + math.cos(math.pi * frac)))


def train(
    cfg: TrainConfig,
    net,
    train_data: Any,
    validate: Callable[[Any], tuple[float, dict[str, float]]],
    make_batches: Callable[[Any, np.random.Generator], Any],
    loss_fn: Callable,
    progress: ProgressFn | None = None,
    cancelled=None,
    log: Callable[[str], None] | None = None,
    recalibrate: Callable[[Any], None] | None = None,
) -> dict[str, Any]:
    """Generic loop: ``make_batches(train_data, rng)`` yields (x, y) tensors per epoch;
    ``validate(net)`` returns (score to maximise, metrics). Returns the final state dict."""
    import torch

    progress = progress or ProgressBar(f"train {cfg.model_id}")
    log = log or say
    seed_everything(cfg.seed)
    opt = torch.optim.AdamW(net.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay)
    d = ckpt.checkpoint_dir(cfg.model_id)
    state = None if cfg.fresh else ckpt.read_state(cfg.model_id)
    if state and state.get("finished"):
        state = None
    if state and (d / "last.safetensors").exists():
        net.load_state_dict(ckpt.load_weights(d / "last.safetensors"))
        ckpt.load_optimizer(opt, d / "last_optim.safetensors", state["optimizer"])
        log(f"resuming {cfg.model_id} at epoch {state['epoch']} ({state['elapsed_s']:.0f} s done)")
    else:
        state = {"epoch": 0, "elapsed_s": 0.0, "best": -1e9, "best_epoch": -1, "history": [],
                 "minutes": cfg.minutes, "seed": cfg.seed}
    budget = cfg.minutes * 60.0
    start_elapsed = state["elapsed_s"]
    t0 = time.monotonic()

    def elapsed() -> float:
        return start_elapsed + time.monotonic() - t0

    while state["epoch"] < cfg.max_epochs and elapsed() < budget:
        check_cancelled(cancelled)
        epoch = state["epoch"]
        rng = np.random.default_rng(cfg.seed * 100003 + epoch)
        torch.manual_seed(cfg.seed * 100003 + epoch)
        net.train()
        losses = []
        for x, y in make_batches(train_data, rng):
            for g in opt.param_groups:
                g["lr"] = _lr_at(cfg, elapsed())
            opt.zero_grad(set_to_none=True)
            loss = loss_fn(net(x), y)
            loss.backward()
            opt.step()
            losses.append(float(loss.detach()))
            progress(min(elapsed() / budget, 0.999),
                     f"epoch {epoch + 1} loss {np.mean(losses):.4f} best {state['best']:.4f}")
            if elapsed() >= budget:
                break
        state["epoch"] = epoch + 1
        rec = {"epoch": epoch + 1, "loss": float(np.mean(losses)) if losses else None,
               "elapsed_s": round(elapsed(), 1), "lr": _lr_at(cfg, elapsed())}
        last_epoch = elapsed() >= budget or state["epoch"] >= cfg.max_epochs
        if state["epoch"] % cfg.val_every == 0 or last_epoch:
            if recalibrate is not None:
                recalibrate(net)
            net.eval()
            with torch.no_grad():
                score, metrics = validate(net)
            rec.update({"val_score": score, **{f"val_{k}": v for k, v in metrics.items()}})
            if score > state["best"]:
                state["best"], state["best_epoch"] = score, epoch + 1
                ckpt.save_weights(net.state_dict(), d / "best.safetensors")
        state["history"].append(rec)
        log(" ".join(f"{k}={v:.4g}" if isinstance(v, float) else f"{k}={v}" for k, v in rec.items()))
        state["elapsed_s"] = elapsed()
        ckpt.save_weights(net.state_dict(), d / "last.safetensors")
        state["optimizer"] = ckpt.save_optimizer(opt, d / "last_optim.safetensors")
        ckpt.write_state(cfg.model_id, state)
    state["finished"] = True
    state["elapsed_s"] = elapsed()
    ckpt.write_state(cfg.model_id, state)
    progress(1.0, f"done: best validation {state['best']:.4f} at epoch {state['best_epoch']}")
    return state


def recalibrate_batchnorm(net, batches) -> None:
    """Re-estimate BatchNorm running statistics as plain averages over un-augmented training
    batches ("precise BN"): with few images and a fast-moving network the exponential running
    averages lag behind the weights, and eval-mode outputs collapse."""
    import torch

    bns = [m for m in net.modules() if isinstance(m, torch.nn.modules.batchnorm._BatchNorm)]
    if not bns:
        return
    saved = [m.momentum for m in bns]
    for m in bns:
        m.reset_running_stats()
        m.momentum = None
    net.train()
    with torch.no_grad():
        for x in batches:
            net(x)
    for m, mom in zip(bns, saved, strict=False):
        m.momentum = mom


# ---------------------------------------------------------------------------------------------
# augmentation on batches of channel-first tensors
def augment_2d(x, y, rng: np.random.Generator, opts: dict[str, Any]):
    """Flips / 90-degree turns / small affine / intensity jitter / inversion, batch-wise in torch.

    ``y`` is a label batch ``(B, H, W)`` for segmentation or ``None``.
    """
    import torch
    import torch.nn.functional as F

    b = x.shape[0]
    if opts.get("flip_h", True):
        m = torch.from_numpy(rng.random(b) < 0.5)
        x[m] = x[m].flip(-1)
        if y is not None:
            y[m] = y[m].flip(-1)
    if opts.get("flip_v", False):
        m = torch.from_numpy(rng.random(b) < 0.5)
        x[m] = x[m].flip(-2)
        if y is not None:
            y[m] = y[m].flip(-2)
    if opts.get("rot90", False) and x.shape[-1] == x.shape[-2]:
        k = int(rng.integers(0, 4))
        x = torch.rot90(x, k, dims=(-2, -1))
        if y is not None:
            y = torch.rot90(y, k, dims=(-2, -1))
    rot = opts.get("rotate_deg", 0.0)
    scale = opts.get("scale", 0.0)
    shift = opts.get("shift", 0.0)
    if rot or scale or shift:
        ang = np.deg2rad(rng.uniform(-rot, rot, b))
        sc = 1.0 + rng.uniform(-scale, scale, b)
        tx, ty = rng.uniform(-shift, shift, b), rng.uniform(-shift, shift, b)
        theta = np.zeros((b, 2, 3), dtype=np.float32)
        theta[:, 0, 0] = np.cos(ang) / sc
        theta[:, 0, 1] = -np.sin(ang) / sc
        theta[:, 1, 0] = np.sin(ang) / sc
        theta[:, 1, 1] = np.cos(ang) / sc
        theta[:, 0, 2], theta[:, 1, 2] = tx, ty
        grid = F.affine_grid(torch.from_numpy(theta), list(x.shape), align_corners=False)
        fill = opts.get("fill", "border")
        x = F.grid_sample(x, grid, mode="bilinear", padding_mode=fill, align_corners=False)
        if y is not None:
            y = F.grid_sample(y[:, None].float(), grid, mode="nearest", padding_mode="zeros",
                              align_corners=False)[:, 0].long()
    if opts.get("invert", 0.0):
        m = torch.from_numpy(rng.random(b) < opts["invert"])
        x[m] = -x[m]
    gain = opts.get("gain", 0.0)
    if gain:
        c = x.shape[1] if opts.get("per_channel", False) else 1
        a = torch.from_numpy(rng.uniform(1 - gain, 1 + gain, (b, c, 1, 1)).astype(np.float32))
        o = torch.from_numpy(rng.uniform(-gain, gain, (b, c, 1, 1)).astype(np.float32))
        x = x * a + o * opts.get("offset_scale", 1.0)
    gamma = opts.get("gamma", 0.0)
    if gamma:  # gamma on [0,1] inputs only
        g = torch.from_numpy(np.exp(rng.uniform(-gamma, gamma, (b, 1, 1, 1))).astype(np.float32))
        x = x.clamp(0, 1) ** g
    noise = opts.get("noise", 0.0)
    if noise:
        x = x + noise * torch.randn_like(x) * float(rng.random())
    return x, y


def random_crops(images: list[np.ndarray], labels: list[np.ndarray], patch: tuple[int, ...],
                 rng: np.random.Generator, fg_fraction: float = 0.5):
    """One random crop per image; half centred on foreground. An image smaller than the patch is
    zero-padded at a random offset (the pipeline pads at the end; a U-Net with 4 poolings is not
    shift-invariant, so training sees every placement)."""
    xs, ys = [], []
    for img, lab in zip(images, labels, strict=False):
        spatial = img.shape[1:]
        pad = [max(0, p - s) for p, s in zip(patch, spatial, strict=False)]
        if any(pad):
            offs = [int(rng.integers(0, q + 1)) for q in pad]
            img = np.pad(img, [(0, 0)] + [(o, q - o) for o, q in zip(offs, pad, strict=False)])
            lab = np.pad(lab, [(o, q - o) for o, q in zip(offs, pad, strict=False)])
            spatial = img.shape[1:]
        if rng.random() < fg_fraction and lab.any():
            fg = np.argwhere(lab > 0)
            c = fg[rng.integers(len(fg))]
            start = [int(np.clip(ci - p // 2, 0, s - p)) for ci, p, s in zip(c, patch, spatial, strict=False)]
        else:
            start = [int(rng.integers(0, s - p + 1)) for p, s in zip(patch, spatial, strict=False)]
        sl = tuple(slice(a, a + p) for a, p in zip(start, patch, strict=False))
        xs.append(img[(slice(None),) + sl])
        ys.append(lab[sl])
    return np.stack(xs), np.stack(ys)


def pad_to_multiple(x: np.ndarray, k: int, spatial_axes: int) -> tuple[np.ndarray, tuple[slice, ...]]:
    """Zero-pad the last ``spatial_axes`` axes (at the end) to a multiple of k; returns the crop back."""
    pads, crop = [], []
    for s in x.shape[-spatial_axes:]:
        t = int(math.ceil(s / k) * k)
        pads.append((0, t - s))
        crop.append(slice(0, s))
    full = [(0, 0)] * (x.ndim - spatial_axes) + pads
    return np.pad(x, full), tuple(crop)
