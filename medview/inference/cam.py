"""Grad-CAM / Grad-CAM++ maps of a classifier (MONAI's implementations). Torch, no Qt."""

from __future__ import annotations

import numpy as np

from medview.inference import device as devmod
from medview.inference import networks, ordinal
from medview.inference.forward import CAM_OBJECTS, cache_lock, get_network
from medview.inference.package import ModelPackage

CAM_KINDS = ("gradcam", "gradcam++")


class CamError(Exception):
    """The package cannot be explained (no or unknown Grad-CAM layer)."""


def _identity(x):
    return x


def cam_maps(package: ModelPackage, runner, batch: np.ndarray, kind: str, class_idx: int,
             cancelled, to_tensor) -> np.ndarray:
    """Raw (un-normalised, >= 0) Grad-CAM maps at the network input size: (B, *spatial)."""
    import torch
    from monai.visualize import GradCAM, GradCAMpp

    from medview.progress import check_cancelled

    layer = package.gradcam_layer
    if ordinal.is_ordinal(package.output):
        class_idx = 0  # one graded value: the map shows what raises the grade, whichever class is shown
    if not layer:
        raise CamError(f"model {package.id} names no Grad-CAM layer")
    dev = runner.device
    cls = GradCAMpp if kind == "gradcam++" else GradCAM

    ensemble = networks.members(package.manifest["network"]) > 1

    def make(device):
        net = get_network(package, device, purpose="cam")
        # a fold ensemble: each member's map for its own score (the ensemble's score is their mean,
        # so its gradient at a member's layer is that member's / K), averaged: K passes, not K^2
        nets = list(net.members) if ensemble else [net]
        try:
            return [cls(nn_module=n, target_layers=layer, postprocessing=_identity) for n in nets]
        except Exception as exc:  # noqa: BLE001
            raise CamError(f"Grad-CAM layer {layer!r} not found in {package.id}: {exc}") from exc

    ckey = (str(package.path), package.sha256, str(dev), kind)
    with cache_lock():
        camobj = CAM_OBJECTS.get(ckey)
    if camobj is None:
        camobj = make(dev)
        with cache_lock():
            CAM_OBJECTS[ckey] = camobj
            while len(CAM_OBJECTS) > 2:
                CAM_OBJECTS.popitem(last=False)
    out = []
    # MONAI's GradCAMpp broadcasts the per-sample score over the last spatial axis, which is only
    # right for one sample at a time: Grad-CAM++ always runs with batch size 1.
    bs = 1 if kind == "gradcam++" else max(1, runner.batch_size)
    i = 0
    while i < batch.shape[0]:
        check_cancelled(cancelled)
        x = to_tensor(batch[i:i + bs], dev)
        try:
            with torch.enable_grad():
                m = sum(c(x, class_idx=class_idx) for c in camobj) / len(camobj)
        except Exception as exc:  # noqa: BLE001
            if not devmod.is_out_of_memory(exc) or dev.type == "cpu":
                raise
            devmod.release_memory(dev)
            if bs > 1:
                bs //= 2
                runner.messages.append(f"{dev.type} out of memory in Grad-CAM: batch size reduced to {bs}")
                continue
            runner.messages.append(f"{dev.type} out of memory in Grad-CAM: computed on the CPU instead")
            dev = torch.device("cpu")
            camobj = make(dev)
            continue
        out.append(m.detach().float().cpu().numpy()[:, 0])
        i += x.shape[0]
    return np.concatenate(out, axis=0)
