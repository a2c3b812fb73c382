"""Fitting an ordinal_probit head's cut points and noise scale on validation
(see :mod:`medview.inference.ordinal` for the model). No Qt."""

from __future__ import annotations

from typing import Any

import numpy as np

from medview.inference.ordinal import grades_from_cuts, probabilities_np
from medview.training.metrics import quadratic_weighted_kappa as qwk


def fit(values: np.ndarray, grades: np.ndarray, n_classes: int) -> dict[str, Any]:
    """Cut points maximising quadratic weighted kappa of the grades they give (coordinate search
    from the half-way points), then sigma maximising the likelihood of the true grades, both on
    the data given (validation). Returns the manifest's ``output.ordinal`` block."""
    v = np.asarray(values, dtype=np.float64)
    y = np.asarray(grades, dtype=np.int64)
    cuts = np.arange(n_classes - 1, dtype=np.float64) + 0.5
    best = qwk(y, grades_from_cuts(v, cuts), n_classes)
    for _ in range(3):
        for k in range(n_classes - 1):
            lo = cuts[k - 1] + 0.05 if k > 0 else cuts[k] - 1.0
            hi = cuts[k + 1] - 0.05 if k < n_classes - 2 else cuts[k] + 1.0
            for t in np.linspace(lo, hi, 41):
                trial = cuts.copy()
                trial[k] = t
                q = qwk(y, grades_from_cuts(v, trial), n_classes)
                if q > best + 1e-12:
                    best, cuts = q, trial
    sigmas = np.geomspace(0.1, 2.0, 40)
    nll = [-np.log(np.clip(probabilities_np(v, cuts, s)[np.arange(len(y)), y], 1e-9, 1)).mean() for s in sigmas]
    return {"cut_points": [round(float(c), 4) for c in cuts], "sigma": round(float(sigmas[int(np.argmin(nll))]), 4),
            "fitted_qwk": round(float(best), 4)}
