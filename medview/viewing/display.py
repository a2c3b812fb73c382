"""Display choices that need no Qt: the first window of a series, axis-aligned slabs, scale-bar
lengths, modality window presets."""

from __future__ import annotations

import numpy as np

from medview.measure import auto_window, dicom_window, window_to_levels

# the data's robust range must fill at least this share of a stored window, else it is ignored
MIN_WINDOW_FILL = 0.25


def window_fits(window: tuple[float, float], array: np.ndarray) -> bool:
    """True when the data's 0.5-99.5 percentile range fills at least MIN_WINDOW_FILL of the
    window and overlaps it: a stored W950/C470 on data ranging 2..154 does not (it shows black)."""
    lo, hi = window_to_levels(*window)
    dw, dl = auto_window(array)
    dlo, dhi = window_to_levels(dw, dl)
    overlap = min(hi, dhi) - max(lo, dlo)
    return overlap > 0 and overlap >= MIN_WINDOW_FILL * (hi - lo)


def first_window(meta: dict, array: np.ndarray, percentiles=(0.5, 99.5)) -> tuple[tuple[float, float], str]:
    """(window, source): the DICOM window when it fits the data, else the percentile window.
    ``source`` is "dicom", "auto" or "auto (stored window W../C.. does not fit the data)"."""
    stored = dicom_window(meta)
    if stored is not None and array.ndim == 3:
        if window_fits(stored, array):
            return stored, "dicom"
        auto = auto_window(array, *percentiles)
        return auto, f"auto (stored window W{stored[0]:g}/C{stored[1]:g} does not fit the data)"
    return auto_window(array, *percentiles), "auto"


def axis_slab(array: np.ndarray, normal_axis: int, index: int, half: int, mode: str = "mip") -> np.ndarray:
    """2D slab of a [k, j, i] array perpendicular to voxel axis ``normal_axis`` (0=i, 1=j, 2=k):
    ``mode`` (mip, minip, mean) over slices index-half .. index+half (cut at the ends)."""
    ax = 2 - normal_axis
    n = array.shape[ax]
    lo, hi = max(0, index - half), min(n, index + half + 1)
    block = array[(slice(None),) * ax + (slice(lo, hi),)]
    if mode == "mip":
        return block.max(axis=ax)
    if mode == "minip":
        return block.min(axis=ax)
    if mode == "mean":
        return block.mean(axis=ax, dtype=np.float32)
    raise ValueError(f"slab mode must be mip, minip or mean, not {mode!r}")


def slab_half_width(slab_mm: float, spacing_mm: float) -> int:
    """Slices either side of the centre slice covered by a slab of ``slab_mm``."""
    if slab_mm <= spacing_mm:
        return 0
    return int(round((slab_mm / spacing_mm - 1) / 2))


def nice_length(max_mm: float) -> float:
    """Longest 1/2/5 x 10^n length not above ``max_mm`` (for a scale bar)."""
    if max_mm <= 0:
        return 0.0
    e = 10 ** np.floor(np.log10(max_mm))
    for m in (5, 2, 1):
        if m * e <= max_mm:
            return float(m * e)
    return float(e)
