"""The standard simulated annotator (RITM / DeepGrow protocol), for training and benchmarks.

First click: positive, at the centre of the object's largest inscribed region. Each next click:
at the centre of the largest error region (connected part of false negatives -> positive, of
false positives -> negative). Works on 2D images and 3D volumes (index tuples).
"""

from __future__ import annotations

import numpy as np
from scipy import ndimage

from medview.interactive.guidance import inscribed_centre


def dice(a: np.ndarray, b: np.ndarray) -> float:
    a, b = a > 0, b > 0
    s = int(a.sum()) + int(b.sum())
    return 1.0 if s == 0 else 2.0 * float((a & b).sum()) / s


def first_click(gt: np.ndarray, spacing=None) -> tuple[tuple[int, ...], bool] | None:
    c = inscribed_centre(gt > 0, spacing)
    return None if c is None else (c, True)


def next_click(pred: np.ndarray, gt: np.ndarray, spacing=None) -> tuple[tuple[int, ...], bool] | None:
    """(index, positive) at the centre of the largest error region; None when there is no error."""
    gt, pred = gt > 0, pred > 0
    best: tuple[int, np.ndarray, bool] | None = None
    for region, positive in ((gt & ~pred, True), (pred & ~gt, False)):
        if not region.any():
            continue
        lab, n = ndimage.label(region)
        sizes = ndimage.sum(region, lab, index=np.arange(1, n + 1))
        k = int(np.argmax(sizes))
        if best is None or sizes[k] > best[0]:
            best = (int(sizes[k]), lab == k + 1, positive)
    if best is None:
        return None
    return inscribed_centre(best[1], spacing), best[2]


def noc(dices: list[float], threshold: float, max_clicks: int = 20) -> int:
    """Clicks needed to reach ``threshold`` (max_clicks when never reached); dices[i] = after i+1."""
    for i, d in enumerate(dices):
        if d >= threshold:
            return i + 1
    return max_clicks
