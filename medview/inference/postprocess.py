"""From network outputs to label maps: label values, largest parts, field of view. No Qt."""

from __future__ import annotations

import numpy as np

from medview.inference.package import ModelPackage


def labels_from_probs(package: ModelPackage, probs):
    """(B, C, ...) probabilities (or softmax logits) -> (B, ...) uint8 label values."""
    import torch

    act = package.output.get("activation", "softmax")
    if act == "sigmoid":
        thr = float(package.output.get("threshold", 0.5))
        values = torch.tensor([int(lab["value"]) for lab in package.labels], device=probs.device)
        best = probs.max(1)
        lab = values[best.indices[:, None]].squeeze(1) if probs.shape[1] == len(values) else best.indices
        return torch.where(best.values > thr, lab, torch.zeros_like(lab)).to(torch.uint8)
    # .max(1).indices, not argmax(dim=1), which is ~40x slower on CPU torch
    return probs.max(1).indices.to(torch.uint8)


def largest_part(mask: np.ndarray) -> np.ndarray:
    """The largest connected part of a boolean mask (8-connected in 2D); empty stays empty.
    (The annotation tool's ``keep_largest_component`` does this on an undoable LabelMap.)"""
    from scipy import ndimage

    parts, n = ndimage.label(mask, structure=np.ones((3,) * mask.ndim))
    if n <= 1:
        return parts > 0
    return parts == 1 + int(np.argmax(np.bincount(parts.ravel())[1:]))


def keep_largest_parts(labels: np.ndarray) -> np.ndarray:
    """Each label value keeps only its largest connected part."""
    out = np.zeros_like(labels)
    for v in np.unique(labels):
        if v != 0:
            out[largest_part(labels == v)] = v
    return out


def field_of_view(image: np.ndarray, level: float) -> np.ndarray:
    """The lit part of a photograph with a black surround (fundus camera, endoscope): pixels whose
    brightest channel reaches ``level`` x the image's maximum, holes filled (dark vessels inside the
    field stay in it), the largest connected part kept."""
    from scipy import ndimage

    a = np.asarray(image)
    bright = a.max(axis=-1) if a.ndim == 3 else a
    top = float(bright.max()) if bright.size else 0.0
    if top <= 0:
        return np.zeros(bright.shape, bool)
    return largest_part(ndimage.binary_fill_holes(bright >= level * top))
