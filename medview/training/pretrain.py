"""Self-supervised pretraining (SimCLR) of a classifier's encoder on unlabelled images of its kind.

No weights can be downloaded, so transfer learning starts from our own encoders:
``medview pretrain MODEL_ID`` builds the recipe's network, prepares every image of the same
kind the way the recipe does (size, channels, normalisation, crop), and trains the encoder so
two random augmentations of one image map close together and away from the other images of
the batch (NT-Xent, Chen et al. 2020). Labels are never read. Images of any recipe's held-out
test part are left out, so a pretrained model is still measured on images it never saw.
``medview train MODEL_ID --init ENCODER.safetensors`` starts from the result.
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any, Callable

import numpy as np

from medview.config import data_dir
from medview.training import datasets, engine
from medview.training.recipes import RECIPES

# image kinds: the recipes whose train + validation images (never test) feed a kind's pool,
# plus unlabelled extra folders (pattern relative to MEDVIEW_DATA)
KINDS: dict[str, dict[str, Any]] = {
    "fundus": {"recipes": ["dr-grade"], "extra": ["fundus-drive/training/images/*.tif",
                                                  "fundus-drive/test/images/*.tif"]},
    "radiograph": {"recipes": ["knee-oa", "xray-view"], "extra": []},
    "ultrasound": {"recipes": ["breast-us"], "extra": []},
    "dermoscopy": {"recipes": ["skin-lesion"], "extra": []},
}
MODEL_KIND = {rid: kind for kind, spec in KINDS.items() for rid in spec["recipes"]}

# strong views: what SimCLR needs to learn more than image identity
VIEW_AUGMENT = {"flip_h": True, "flip_v": True, "rotate_deg": 25, "scale": 0.3, "shift": 0.12,
                "gain": 0.35, "per_channel": True, "noise": 0.15, "fill": "zeros"}


def image_pool(model_id: str) -> tuple[list[Path], str]:
    """Unlabelled images for ``model_id``'s kind and a one-line description of the pool."""
    kind = MODEL_KIND[model_id]
    spec = KINDS[kind]
    paths: list[Path] = []
    held_out: set[Path] = set()
    for rid in spec["recipes"]:
        split = RECIPES[rid].split()
        paths += [s.image for s in split.train + split.val]
        held_out |= {s.image for s in split.test}
    for pattern in spec["extra"]:
        paths += sorted(data_dir().glob(pattern))
    paths = sorted({p for p in paths if p not in held_out})
    return paths, (f"{kind}: {len(paths)} images (train + validation parts of "
                   f"{', '.join(spec['recipes'])}{', ' + ', '.join(spec['extra']) if spec['extra'] else ''}; "
                   "held-out test images excluded; labels unused)")


def nt_xent(z1, z2, temperature: float):
    """SimCLR's normalised-temperature cross-entropy over the 2B views of a batch."""
    import torch
    import torch.nn.functional as F

    z = F.normalize(torch.cat([z1, z2]), dim=1)
    sim = z @ z.t() / temperature
    n = z1.shape[0]
    sim.fill_diagonal_(float("-inf"))
    target = torch.cat([torch.arange(n, 2 * n), torch.arange(0, n)])
    return F.cross_entropy(sim, target)


def pretrain(model_id: str, out: Path, minutes: float = 10.0, batch_size: int = 64,
             temperature: float = 0.2, lr: float = 1e-3, max_images: int | None = None,
             progress: Callable[[float, str], None] | None = None,
             log: Callable[[str], None] = engine.say) -> dict[str, Any]:
    """Train the encoder of ``model_id``'s network for ``minutes``; write ``out`` (safetensors)
    and ``out`` with ``.json``: what it was trained on and how. Returns that record."""
    import torch
    import torch.nn as nn

    from medview.inference.networks import build_network
    from medview.training import checkpoint as ckpt
    from medview.training.inputs import prepare

    if model_id not in MODEL_KIND:
        raise ValueError(f"no image kind for {model_id!r}; pretraining covers {', '.join(MODEL_KIND)}")
    recipe = RECIPES[model_id]
    manifest = recipe.new_manifest()
    paths, description = image_pool(model_id)
    if max_images:
        paths = paths[:max_images]
    log(f"pretrain {model_id}: {description}")
    t0 = time.monotonic()
    # rgb=None: colour or grey decided per file, as the training loader does
    X = np.stack([prepare(datasets.read_image(p), manifest["input"], rgb=None) for p in paths]).astype(np.float32)
    log(f"pretrain {model_id}: {len(X)} images prepared in {time.monotonic() - t0:.1f} s")

    engine.seed_everything(datasets.SEED)
    net = build_network(manifest["network"]["architecture"], manifest["network"]["args"])
    width = net.fc.in_features
    net.fc = nn.Identity()  # the encoder; the classifier head is trained later, per task
    head = nn.Sequential(nn.Linear(width, 256), nn.ReLU(inplace=True), nn.Linear(256, 128))
    params = list(net.parameters()) + list(head.parameters())
    opt = torch.optim.AdamW(params, lr=lr, weight_decay=1e-4)
    rng = np.random.default_rng(datasets.SEED)
    budget = minutes * 60.0
    start = time.monotonic()
    steps, epoch, losses = 0, 0, []
    history = []
    bs = min(batch_size, len(X))
    while time.monotonic() - start < budget:
        order = rng.permutation(len(X))
        ep_losses = []
        for i in range(0, len(order) - bs + 1, bs):
            frac = min(1.0, (time.monotonic() - start) / budget)
            for g in opt.param_groups:  # cosine schedule over the time budget
                g["lr"] = lr * 0.5 * (1 + np.cos(np.pi * frac))
            x = torch.from_numpy(X[order[i : i + bs]])
            v1, _ = engine.augment_2d(x.clone(), None, rng, VIEW_AUGMENT)
            v2, _ = engine.augment_2d(x.clone(), None, rng, VIEW_AUGMENT)
            loss = nt_xent(head(net(v1)), head(net(v2)), temperature)
            opt.zero_grad()
            loss.backward()
            opt.step()
            steps += 1
            ep_losses.append(float(loss.detach()))
            if progress:
                progress(frac, f"epoch {epoch + 1} loss {np.mean(ep_losses):.3f}")
            if time.monotonic() - start >= budget:
                break
        epoch += 1
        history.append(round(float(np.mean(ep_losses)), 4) if ep_losses else None)
        losses = ep_losses
    out = Path(out)
    ckpt.save_weights(net.state_dict(), out)  # makes the folder; the head is not saved
    record = {
        "model_id": model_id, "method": "SimCLR (NT-Xent)", "temperature": temperature,
        "batch_size": bs, "lr": lr, "minutes": minutes, "epochs": epoch, "steps": steps,
        "images": len(X), "pool": description, "view_augment": VIEW_AUGMENT,
        "loss_per_epoch": history, "final_loss": round(float(np.mean(losses)), 4) if losses else None,
        "elapsed_s": round(time.monotonic() - start, 1),
        "command": f"medview pretrain {model_id} --minutes {minutes:g} --out {out.name}",
    }
    out.with_suffix(".json").write_text(json.dumps(record, indent=2) + "\n")
    log(f"pretrain {model_id}: {epoch} epochs, {steps} steps, loss {record['final_loss']}; wrote {out}")
    return record
