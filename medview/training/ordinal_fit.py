"""Fitting an ordinal_probit head's cut points and noise scale on validation
(see :mod:`medview.inference.ordinal` for the model). No Qt."""

from __future__ import annotations

from typing import Any

import numpy as np

from medview.inference.ordinal import grades_from_cuts, probabilities_np
from medview.training.metrics import quadratic_weighted_kappa as qwk

MIN_GAP = 0.5  # grade units between neighbouring cut points: no class squeezed to a sliver


def fit(values: np.ndarray, grades: np.ndarray, n_classes: int) -> dict[str, Any]:
    """Cut points maximising quadratic weighted kappa of the grades they give (coordinate search
    from the half-way points, neighbouring cuts at least ``MIN_GAP`` apart), then sigma maximising
    the likelihood of the true grades, both on the data given (validation); sigma is then lowered
    until every grade is the most probable class for some value (the app shows the argmax: a
    narrow band with a wide sigma made KL3 / "severe" impossible to output). Returns the
    manifest's ``output.ordinal`` block."""
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


def every_grade_reachable(cut_points, sigma: float) -> bool:
    """Whether each class is the most probable one for some network value (checked on a fine grid)."""
    c = np.asarray(cut_points, dtype=np.float64)
    grid = np.linspace(c[0] - 3.0, c[-1] + 3.0, 2001)
    winners = np.unique(np.argmax(probabilities_np(grid, c, sigma), axis=1))
    return len(winners) == len(c) + 1
