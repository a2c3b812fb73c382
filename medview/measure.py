"""Measurement and display-window math used by the viewer (pure numpy, no Qt).

Coordinates are voxel indices; lengths and areas come out in millimetres using the Volume's
spacing. 2D helpers work on one slice array indexed ``[row, col]``.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np


# ---- distances ------------------------------------------------------------------------------
def distance_mm(p0_ijk: Sequence[float], p1_ijk: Sequence[float], spacing: Sequence[float]) -> float:
    """Euclidean distance in mm between two continuous voxel positions (i, j, k)."""
    d = (np.asarray(p1_ijk, float) - np.asarray(p0_ijk, float)) * np.asarray(spacing, float)
    return float(np.sqrt((d * d).sum()))


# ---- ROI masks (slice coordinates: continuous [row, col], pixel r covers [r, r+1)) ------------
def _centres(shape: tuple[int, int]) -> tuple[np.ndarray, np.ndarray]:
    rows = np.arange(shape[0], dtype=np.float64)[:, None] + 0.5
    cols = np.arange(shape[1], dtype=np.float64)[None, :] + 0.5
    return rows, cols


def rect_mask(shape: tuple[int, int], r0: float, c0: float, r1: float, c1: float) -> np.ndarray:
    """Pixels whose centre lies inside the rectangle with corners (r0, c0) and (r1, c1)."""
    ra, rb = sorted((r0, r1))
    ca, cb = sorted((c0, c1))
    rows, cols = _centres(shape)
    return (rows >= ra) & (rows <= rb) & (cols >= ca) & (cols <= cb)


def ellipse_mask(shape: tuple[int, int], r0: float, c0: float, r1: float, c1: float) -> np.ndarray:
    """Pixels whose centre lies inside the ellipse inscribed in the box (r0, c0)-(r1, c1)."""
    ra, rb = sorted((r0, r1))
    ca, cb = sorted((c0, c1))
    cr, cc = (ra + rb) / 2, (ca + cb) / 2
    hr, hc = max((rb - ra) / 2, 1e-9), max((cb - ca) / 2, 1e-9)
    rows, cols = _centres(shape)
    return ((rows - cr) / hr) ** 2 + ((cols - cc) / hc) ** 2 <= 1.0


def roi_stats(values: np.ndarray, mask: np.ndarray, pixel_area_mm2: float) -> dict[str, Any]:
    """mean, sd, min, max, n (pixels) and area (mm^2) of ``values`` inside ``mask``.

    RGB slices (rows, cols, 3) are measured on their luminance (ITU-R BT.601 weights).
    """
    v = np.asarray(values)
    if v.ndim == 3:
        v = v[..., :3].astype(np.float64) @ np.array([0.299, 0.587, 0.114])
    sel = v[mask].astype(np.float64)
    n = int(sel.size)
    if n == 0:
        return {"n": 0, "area_mm2": 0.0, "mean": float("nan"), "sd": float("nan"),
                "min": float("nan"), "max": float("nan")}
    return {
        "n": n,
        "area_mm2": float(n * pixel_area_mm2),
        "mean": float(sel.mean()),
        "sd": float(sel.std(ddof=1)) if n > 1 else 0.0,
        "min": float(sel.min()),
        "max": float(sel.max()),
    }


# ---- display window -------------------------------------------------------------------------
def auto_window(array: np.ndarray, low_pct: float = 0.5, high_pct: float = 99.5,
                max_samples: int = 1_000_000) -> tuple[float, float]:
    """(width, level) covering the [low_pct, high_pct] percentiles of a (sub-sampled) volume.

    Sub-samples on a regular grid so the cost stays bounded (a few tens of ms) for any size.
    """
    a = np.asarray(array)
    if a.ndim == 4:  # RGB: window on all channels
        a = a[..., 0]
    step = max(1, int(np.ceil((a.size / max_samples) ** (1 / a.ndim))))
    sample = a[(slice(None, None, step),) * a.ndim].ravel()
    sample = sample[np.isfinite(sample)] if sample.dtype.kind == "f" else sample
    if sample.size == 0:
        return 1.0, 0.5
    lo, hi = np.percentile(sample, [low_pct, high_pct])
    lo, hi = float(lo), float(hi)
    if hi <= lo:
        lo, hi = float(sample.min()), float(sample.max())
    if hi <= lo:
        hi = lo + 1.0
    return hi - lo, (hi + lo) / 2


def _first_float(v: Any) -> float | None:
    if v is None:
        return None
    if isinstance(v, (list, tuple, np.ndarray)):
        if len(v) == 0:
            return None
        v = v[0]
    try:
        f = float(v)
    except (TypeError, ValueError):
        return None
    return f if np.isfinite(f) else None


def dicom_window(meta: dict[str, Any]) -> tuple[float, float] | None:
    """(width, level) from DICOM WindowWidth/WindowCenter in ``meta`` (first value), if usable."""
    w = _first_float(meta.get("WindowWidth"))
    c = _first_float(meta.get("WindowCenter"))
    if w is None or c is None or w <= 0:
        return None
    return w, c


def window_to_levels(width: float, level: float) -> tuple[float, float]:
    """(low, high) display levels of a window."""
    return level - width / 2.0, level + width / 2.0
