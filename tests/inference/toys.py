"""Tiny models trained inside the tests (seconds on a CPU), written as real packages."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from medview.inference import networks, package, preprocess


def seed_all(seed: int = 0):
    import torch

    torch.manual_seed(seed)
    np.random.seed(seed)
    return np.random.default_rng(seed)


# --------------------------------------------------------------------------------------------
# segmentation: "bright object on noise" (the model learns an intensity rule, in 2D or 3D)
# --------------------------------------------------------------------------------------------
SEG_LABELS = [{"value": 1, "name": "object", "color": [255, 64, 64]}]


def _seg_sample(rng, shape):
    img = rng.normal(0.0, 0.3, size=shape).astype(np.float32)
    lab = np.zeros(shape, np.int64)
    for _ in range(rng.integers(1, 3)):
        lo = [int(rng.integers(0, s - s // 3)) for s in shape]
        ext = [int(rng.integers(max(2, s // 6), s // 3 + 1)) for s in shape]
        sl = tuple(slice(a, a + e) for a, e in zip(lo, ext, strict=False))
        lab[sl] = 1
    img[lab == 1] += 1.5
    return img, lab


def train_segmenter(folder: Path, dims: int, input_extra: dict | None = None, steps: int = 60,
                    model_id: str | None = None, modality=("MR", "CT", "")) -> package.ModelPackage:
    """A UNet that segments bright boxes; trained on z-scored patches, written as a package."""
    import torch

    rng = seed_all(1)
    args = {"spatial_dims": dims, "in_channels": 1, "out_channels": 2, "channels": [8, 16], "strides": [2],
            "num_res_units": 1}
    net = networks.build_network("UNet", args)
    opt = torch.optim.Adam(net.parameters(), lr=1e-2)
    shape = (24, 24, 24) if dims == 3 else (48, 48)
    norm = {"kind": "zscore"}
    for _ in range(steps):
        xs, ys = [], []
        for _ in range(4):
            img, lab = _seg_sample(rng, shape)
            xs.append(preprocess.normalize(img[None], norm))
            ys.append(lab)
        x = torch.from_numpy(np.stack(xs))
        y = torch.from_numpy(np.stack(ys))
        loss = torch.nn.functional.cross_entropy(net(x), y)
        opt.zero_grad()
        loss.backward()
        opt.step()
    net.eval()
    inp = {"dims": dims, "channels": "grey", "normalization": norm}
    inp.update(input_extra or {})
    manifest = {
        "schema_version": 1, "id": model_id or f"toy-seg-{dims}d", "name": f"Toy {dims}D segmenter",
        "version": "0.1.0", "task": "segmentation", "modality": list(modality), "body_part": "phantom",
        "network": {"architecture": "UNet", "args": args}, "input": inp,
        "output": {"labels": SEG_LABELS, "activation": "softmax"},
    }
    return package.write_package(folder, manifest, net.state_dict(), "# Toy segmenter\nTest only.\n")


# --------------------------------------------------------------------------------------------
# classification: class "spot" has a bright disc somewhere; class "plain" does not
# --------------------------------------------------------------------------------------------
DISC_RADIUS = 8


def cls_sample(rng, positive: bool, size: int = 64):
    img = rng.normal(0.0, 0.5, size=(size, size)).astype(np.float32)
    centre = None
    if positive:
        cy, cx = (int(v) for v in rng.integers(12, size - 12, size=2))
        yy, xx = np.mgrid[:size, :size]
        disc = (yy - cy) ** 2 + (xx - cx) ** 2 <= DISC_RADIUS**2
        img[disc] += 2.0
        centre = (cy, cx)
    return img, centre


def train_classifier(folder: Path, steps: int = 30, model_id: str = "toy-cls",
                     gradcam_layer: str = "layer2", seed: int = 2) -> package.ModelPackage:
    """resnet10 (a quarter wide) telling "spot" from "plain" images.

    A fixed intensity scaling (no per-image statistics), so the only evidence is the disc itself
    (a per-image z-score would spread evidence over the whole background).
    """
    import torch

    rng = seed_all(seed)
    args = {"spatial_dims": 2, "n_input_channels": 1, "num_classes": 2, "widen_factor": 0.25,
            "conv1_t_stride": 2}
    net = networks.build_network("resnet10", args)
    opt = torch.optim.Adam(net.parameters(), lr=1e-3)
    norm = {"kind": "none"}
    for _ in range(steps):
        xs, ys = [], []
        for i in range(16):
            pos = bool(i % 2)
            img, _ = cls_sample(rng, pos)
            xs.append(preprocess.normalize(img[None], norm))
            ys.append(int(pos))
        x = torch.from_numpy(np.stack(xs))
        y = torch.tensor(ys)
        net.train()
        loss = torch.nn.functional.cross_entropy(net(x), y)
        opt.zero_grad()
        loss.backward()
        opt.step()
    net.eval()
    manifest = {
        "schema_version": 1, "id": model_id, "name": "Toy spot classifier", "version": "0.1.0",
        "task": "classification", "modality": ["OT", ""], "body_part": "phantom",
        "network": {"architecture": "resnet10", "args": args},
        "input": {"dims": 2, "channels": "grey", "normalization": norm, "size": [64, 64]},
        "output": {"classes": ["plain", "spot"], "activation": "softmax"},
        "gradcam_layer": gradcam_layer,
    }
    return package.write_package(folder, manifest, net.state_dict(), "# Toy classifier\nTest only.\n")


def write_box_images(folder: Path, n: int, seed: int = 0) -> list[Path]:
    """``n`` grey PNGs with a bright box on noise (what the toy segmenter learned), in ``folder``."""
    from PIL import Image

    rng = np.random.default_rng(seed)
    folder.mkdir(parents=True, exist_ok=True)
    out = []
    for i in range(n):
        img = rng.normal(0.0, 0.3, (48, 48))
        y, x = (int(v) for v in rng.integers(4, 30, 2))
        img[y:y + 14, x:x + 14] += 1.5
        p = folder / f"case{i:03d}.png"
        Image.fromarray(np.clip(img * 60 + 90, 0, 255).astype(np.uint8)).save(p)
        out.append(p)
    return out
