"""Test-time augmentation: which views a model averages over, and how. Torch, no Qt.

Two separate things share the word:

* **views** (``output.tta`` in the manifest: "dihedral" or "hflip"): the model's own averaging
  over flipped / turned copies of a 2D input, which the network was trained to be invariant to.
  It is a *setting*: ``"fast"`` runs one pass (the network alone, the speed of one forward) and
  ``"accurate"`` averages over the views. ``output.tta_default`` names the package's default
  (``"fast"`` unless it says otherwise); each setting's validation figures are in the card.
* **uncertainty flips** (``run_model(tta=True)``, ``input.tta_flip_axes``): extra single-axis
  flipped passes whose disagreement gives an uncertainty heatmap; the labels never change.
"""

from __future__ import annotations

import math

from medview.inference import ordinal
from medview.inference.package import ModelPackage

TTA_MODES = ("dihedral", "hflip")
TTA_SETTINGS = ("fast", "accurate")


def resolve_setting(package: ModelPackage, requested: str | None) -> str:
    """``requested`` ("fast" | "accurate") or, when None, the package's ``output.tta_default``."""
    setting = requested or package.output.get("tta_default") or "fast"
    if setting not in TTA_SETTINGS:
        raise ValueError(f"unknown TTA setting {setting!r}; expected one of {', '.join(TTA_SETTINGS)}")
    return setting


def tta_mode(package: ModelPackage, spatial_dims: int, setting: str = "accurate") -> str | None:
    """The views to average over (``output.tta``) at ``setting``, or None for one plain pass.

    The default "accurate" keeps what training validation has always computed (it picks the
    checkpoint on the averaged outputs); the inference pipeline passes the resolved setting."""
    if setting == "fast":
        return None
    mode = package.output.get("tta")
    return mode if mode in TTA_MODES and spatial_dims == 2 else None


def view_count(package: ModelPackage, setting: str, square: bool = True, dense: bool = True) -> int:
    """How many forward passes one input costs at ``setting`` (for benchmarks and messages)."""
    mode = tta_mode(package, 2, setting) if package.dims == 2 else None
    if mode is None:
        return 1
    if mode == "hflip":
        return 2
    return 8 if dense or square else 4


def tta_mean(mode: str, predict, x, dense: bool):
    """Mean of ``predict`` over the views of a 2D batch ``x`` (B, C, H, W) that ``mode`` names:
    "dihedral" = the 8 flips / quarter turns (for images without a canonical orientation:
    dermoscopy, fundus), "hflip" = itself and its left-right mirror (ultrasound, radiographs: top
    stays top). ``dense``: the outputs are maps on the input grid, turned back before averaging
    (segmentation); otherwise per-image vectors (classification). A classifier skips quarter turns
    of a non-square input (its fixed input size); a dense model takes any shape."""
    if mode == "hflip":
        ks: tuple[int, ...] = (0,)
    else:
        ks = (0, 1, 2, 3) if dense or x.shape[-1] == x.shape[-2] else (0, 2)
    total, n = None, 0
    for flip in (False, True):
        xf = x.flip(-1) if flip else x
        for k in ks:
            out = predict(xf.rot90(k, dims=(-2, -1)) if k else xf)
            if dense:  # undo: turn back, then flip back
                out = out.rot90(-k, dims=(-2, -1)) if k else out
                out = out.flip(-1) if flip else out
            total = out if total is None else total + out
            n += 1
    return total / n


def activation(package: ModelPackage, logits):
    """The manifest's output activation (softmax by default; none for regression)."""
    import torch

    act = package.output.get("activation", "softmax")
    if package.task == "regression" or act == "none":
        return logits
    if act == ordinal.ACTIVATION:  # one graded value -> ordered class probabilities
        return ordinal.probabilities_torch(logits, package.output)
    if act == "sigmoid":
        return torch.sigmoid(logits)
    return torch.softmax(logits, dim=1)


def class_outputs(package: ModelPackage, forward, x, setting: str = "accurate"):
    """Classifier outputs for a batch ``x`` (B, C, H, W), averaged over the views of
    ``output.tta`` at ``setting`` (the network was trained on all of them, and averaging removes
    the orientation-dependent part of its error). Training validation calls this too."""
    mode = tta_mode(package, x.ndim - 2, setting)
    if mode is None:
        return activation(package, forward(x))
    return tta_mean(mode, lambda t: activation(package, forward(t)), x, dense=False)


def flip_dims(package: ModelPackage, ndim_spatial: int) -> list[tuple[int, ...]]:
    """Tensor dims to flip for the uncertainty passes (one single-axis flip each).

    ``input.tta_flip_axes`` lists spatial axes of the model input in array order (2D: 0 = rows,
    1 = columns; 3D: 0 = k, 1 = j, 2 = i of the model grid): the flips the model was trained to
    be invariant to. Default: the last axis only (a horizontal / left-right flip), because
    flipping e.g. anterior-posterior would swap what an anatomy-specific model calls its labels.
    """
    axes = package.input.get("tta_flip_axes")
    if axes is None:
        axes = [ndim_spatial - 1]
    return [(2 + int(a),) for a in axes if 0 <= int(a) < ndim_spatial]


def uncertainty(probs_list, n_classes: int):
    """(mean, normalised entropy 0..1) of test-time-augmented probabilities."""
    import torch

    mean = torch.stack(probs_list).mean(0)
    if mean.shape[1] == 1 or n_classes <= 1:  # single sigmoid channel: binary entropy
        p = mean[:, :1].clamp(1e-6, 1 - 1e-6)
        ent = -(p * p.log() + (1 - p) * (1 - p).log()) / math.log(2)
        return mean, ent[:, 0]
    ent = -(mean.clamp_min(1e-8) * mean.clamp_min(1e-8).log()).sum(1) / math.log(mean.shape[1])
    return mean, ent


def seg_probs(package: ModelPackage, forward, x, tta: bool, setting: str):
    """(probs-or-logits for the labels, uncertainty-or-None) for a padded batch tensor.

    Labels always come from the pass(es) of ``setting``, so switching the uncertainty map on never
    changes the segmentation. Without views or uncertainty and with softmax the logits are
    returned as they are: softmax is monotonic, so ``.max(1).indices`` gives the same labels
    without the extra pass over the output. With ``tta`` the uncertainty is the normalised
    entropy of the mean of the plain and flipped probabilities (flips undone before averaging).
    """
    mode = tta_mode(package, x.ndim - 2, setting)
    n_classes = len(package.labels) + 1
    if mode:  # the model's own averaging (its labels come from it)
        p0 = tta_mean(mode, lambda t: activation(package, forward(t)), x, dense=True)
        if not tta:
            return p0, None
        plist = [p0] + [activation(package, forward(x.flip(d))).flip(d) for d in flip_dims(package, 2)]
        return p0, uncertainty(plist, n_classes)[1]
    logits = forward(x)
    softmax = package.output.get("activation", "softmax") == "softmax"
    if not tta:
        return (logits if softmax else activation(package, logits)), None
    p0 = activation(package, logits)
    plist = [p0] + [activation(package, forward(x.flip(d))).flip(d) for d in flip_dims(package, x.ndim - 2)]
    return p0, uncertainty(plist, n_classes)[1]
