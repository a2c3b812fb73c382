"""Fitting an ordinal_probit head's cut points and noise scale on validation
(see :mod:`medview.inference.ordinal` for the model). No Qt."""

from __future__ import annotations

from typing import Any

import numpy as np

from medview.inference.ordinal import grades_from_cuts, probabilities_np
from medview.training.metrics import quadratic_weighted_kappa as qwk

MIN_GAP = 0.5  # grade units between neighbouring cut points: no class squeezed to a sliver
REACH_SHARE = 0.5  # each grade is the most probable class over at least this share of its own band


def fit(values: np.ndarray, grades: np.ndarray, n_classes: int) -> dict[str, Any]:
    """Cut points maximising quadratic weighted kappa of the grades they give (coordinate search
    from the half-way points, neighbouring cuts at least ``MIN_GAP`` apart), then sigma maximising
    the likelihood of the true grades, both on the data given (validation); sigma is then lowered
    until every grade is the most probable class over at least ``REACH_SHARE`` of its band (the
    app shows the argmax: a narrow band with a wide sigma made KL3 impossible to output, and at
    the edge of reachable, the most probable class for 1 of 54 KL3 knees). Returns the manifest's
    ``output.ordinal`` block."""
    v = np.asarray(values, dtype=np.float64)
    y = np.asarray(grades, dtype=np.int64)
    cuts = np.arange(n_classes - 1, dtype=np.float64) + 0.5
    best = qwk(y, grades_from_cuts(v, cuts), n_classes)
    for _ in range(3):
        for k in range(n_classes - 1):
            lo = cuts[k - 1] + MIN_GAP if k > 0 else cuts[k] - 1.0
            hi = cuts[k + 1] - MIN_GAP if k < n_classes - 2 else cuts[k] + 1.0
            for t in np.linspace(lo, hi, 41):
                trial = cuts.copy()
                trial[k] = t
                q = qwk(y, grades_from_cuts(v, trial), n_classes)
                if q > best + 1e-12:
                    best, cuts = q, trial
    sigmas = np.geomspace(0.1, 2.0, 40)
    nll = [-np.log(np.clip(probabilities_np(v, cuts, s)[np.arange(len(y)), y], 1e-9, 1)).mean() for s in sigmas]
    order = np.argsort(nll)  # most likely first; the first that keeps every grade reachable
    sigma = next((float(sigmas[i]) for i in order if every_grade_reachable(cuts, float(sigmas[i]))),
                 float(sigmas[0]))
    return {"cut_points": [round(float(c), 4) for c in cuts], "sigma": round(sigma, 4),
            "fitted_qwk": round(float(best), 4)}


def band_shares(cut_points, sigma: float) -> np.ndarray:
    """For each grade, the share of its own band of network values (one grade unit beyond the
    outer cuts) where it is the most probable class (checked on a fine grid)."""
    c = np.asarray(cut_points, dtype=np.float64)
    edges = np.concatenate([[c[0] - 1.0], c, [c[-1] + 1.0]])
    shares = []
    for k in range(len(c) + 1):
        grid = np.linspace(edges[k], edges[k + 1], 201)[1:-1]
        shares.append(float(np.mean(np.argmax(probabilities_np(grid, c, sigma), axis=1) == k)))
    return np.array(shares)


def every_grade_reachable(cut_points, sigma: float, share: float = REACH_SHARE) -> bool:
    """Whether each class is the most probable one over at least ``share`` of its band."""
    return bool(band_shares(cut_points, sigma).min() >= share)
