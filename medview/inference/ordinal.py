"""Ordinal regression output: one network value -> graded class probabilities (ordered probit).

A package with ``output.activation`` ``"ordinal_probit"`` has a network with ONE output ``v``
(trained as a regression on the grade, in grade units) and ``output.ordinal``::

    "ordinal": {"cut_points": [c1, ..., c_{K-1}], "sigma": s}

(increasing cut points and the noise scale, both chosen on the validation part by training).
The class probabilities are those of a cumulative link model with a probit link:

    P(grade <= k) = Phi((c_{k+1} - v) / s),   P(grade = k) = P(grade <= k) - P(grade <= k - 1)

so they are ordered, sum to 1, and P(grade >= m) rises monotonically with ``v`` (the flag's
AUC is that of ``v``). Everything downstream (grade = argmax, expected grade, flag, Grad-CAM of
the value) treats it as any graded classifier. No Qt.
"""

from __future__ import annotations

import math
from typing import Any, Mapping, Sequence

import numpy as np

ACTIVATION = "ordinal_probit"


def is_ordinal(output: Mapping[str, Any]) -> bool:
    return output.get("activation") == ACTIVATION


def validate(output: Mapping[str, Any], n_classes: int) -> list[str]:
    """Manifest errors of ``output.ordinal`` for an ordinal_probit package."""
    spec = output.get("ordinal")
    if not isinstance(spec, Mapping):
        return ["output.ordinal {cut_points, sigma} is required with activation ordinal_probit"]
    cuts, sigma = spec.get("cut_points"), spec.get("sigma")
    errs = []
    if (not isinstance(cuts, list) or len(cuts) != n_classes - 1
            or not all(isinstance(c, (int, float)) and not isinstance(c, bool) for c in cuts)
            or any(b <= a for a, b in zip(cuts, cuts[1:], strict=False))):
        errs.append(f"output.ordinal.cut_points must be {n_classes - 1} increasing numbers (one per grade boundary)")
    if isinstance(sigma, bool) or not isinstance(sigma, (int, float)) or not sigma > 0:
        errs.append("output.ordinal.sigma must be a positive number")
    return errs


def probabilities_np(values: np.ndarray, cut_points: Sequence[float], sigma: float) -> np.ndarray:
    """(N,) values -> (N, K) class probabilities (numpy; training's cut-point search uses it)."""
    from scipy.special import ndtr

    v = np.asarray(values, dtype=np.float64).reshape(-1, 1)
    cdf = ndtr((np.asarray(cut_points, dtype=np.float64)[None] - v) / float(sigma))
    n = v.shape[0]
    return np.diff(np.concatenate([np.zeros((n, 1)), cdf, np.ones((n, 1))], axis=1), axis=1)


def probabilities_torch(logits, output: Mapping[str, Any]):
    """(B, 1) network values -> (B, K) class probabilities (torch, differentiable)."""
    import torch

    spec = output["ordinal"]
    cuts = torch.tensor(spec["cut_points"], dtype=logits.dtype, device=logits.device)
    z = (cuts[None] - logits[:, :1]) / float(spec["sigma"])
    cdf = 0.5 * (1.0 + torch.erf(z / math.sqrt(2.0)))
    zeros = torch.zeros_like(cdf[:, :1])
    return torch.diff(torch.cat([zeros, cdf, zeros + 1.0], dim=1), dim=1)


def grades_from_cuts(values: np.ndarray, cut_points: Sequence[float]) -> np.ndarray:
    return np.searchsorted(np.asarray(cut_points, dtype=np.float64), np.asarray(values, dtype=np.float64))
