"""Resample a volume (or a label/heatmap on its grid) onto a Plane, optionally as a thick slab.

scipy.ndimage.map_coordinates on the cropped region of the volume that the plane (and slab)
touches; order 0 (nearest) for labels, 1 (linear) or 3 (cubic) for images and heatmaps. Slabs
sample parallel planes ``step_mm`` apart over ``slab_mm`` and combine them (mip/minip/mean).
"""

from __future__ import annotations

import numpy as np

from medview.viewing.plane import Plane

SLAB_MODES = ("mip", "minip", "mean")


def _index_grid(volume, plane: Plane) -> tuple[np.ndarray, np.ndarray]:
    """(3, h, w) continuous array indices (k, j, i) of the plane's pixels; the index step of
    one mm along the normal (k, j, i)."""
    world = plane.grid_world().reshape(3, -1).T
    ijk = volume.world_to_index(world)  # (N, 3) i, j, k
    grid = ijk[:, ::-1].T.reshape(3, plane.height, plane.width)
    m = np.linalg.inv(volume.direction @ np.diag(volume.spacing))
    return grid, (m @ plane.normal)[::-1]


def slab_offsets(slab_mm: float, step_mm: float) -> np.ndarray:
    """Depths (mm) of the planes sampled for a slab centred on the plane."""
    if slab_mm <= 0:
        return np.zeros(1)
    n = max(1, int(np.floor(slab_mm / step_mm + 1e-9)) + 1)
    return (np.arange(n) - (n - 1) / 2) * (slab_mm / max(n - 1, 1) if n > 1 else 0.0)


def reslice(volume, plane: Plane, array: np.ndarray | None = None, order: int = 1,
            slab_mm: float = 0.0, mode: str = "mip", step_mm: float | None = None,
            fill: float | None = None) -> np.ndarray:
    """(h, w) image of ``array`` (default ``volume.array``; any [k, j, i] array on the volume's
    grid, e.g. a label map with order=0) on ``plane``. Outside the volume: ``fill`` (default the
    array minimum; 0 for labels)."""
    from scipy import ndimage  # here, not at import: scipy.ndimage costs ~0.5 s before the first paint

    data = volume.array if array is None else array
    if data.ndim != 3:
        raise ValueError(f"reslice needs a 3D [k, j, i] array, got shape {data.shape}")
    if mode not in SLAB_MODES:
        raise ValueError(f"slab mode must be one of {SLAB_MODES}, got {mode!r}")
    grid, dn = _index_grid(volume, plane)
    step = float(step_mm or min(volume.spacing))
    offsets = slab_offsets(slab_mm, step) if order != 0 or slab_mm > 0 else np.zeros(1)
    if order == 0:
        offsets = np.zeros(1)  # labels: the centre plane, never blended
    if fill is None:
        fill = 0.0 if order == 0 else float(data.min()) if data.size else 0.0
    # crop to the region the slab touches (plus the interpolation support)
    ext = np.stack([grid.reshape(3, -1).min(1), grid.reshape(3, -1).max(1)])
    ext = np.concatenate([ext + dn * offsets[0], ext + dn * offsets[-1]])
    pad = 2 if order > 1 else 1
    lo = np.maximum(np.floor(ext.min(0)).astype(int) - pad, 0)
    hi = np.minimum(np.ceil(ext.max(0)).astype(int) + pad + 1, data.shape)
    out_dtype = data.dtype if order == 0 else np.float32
    if np.any(hi <= lo):
        return np.full((plane.height, plane.width), fill, out_dtype)
    sub = data[lo[0]:hi[0], lo[1]:hi[1], lo[2]:hi[2]]
    if order != 0 and sub.dtype != np.float32:
        sub = sub.astype(np.float32)
    base = (grid - lo[:, None, None]).astype(np.float32)
    acc = None
    for d in offsets:
        coords = base + (dn * d).astype(np.float32)[:, None, None] if d else base
        img = ndimage.map_coordinates(sub, coords, order=order, mode="constant", cval=fill,
                                      prefilter=order > 1, output=out_dtype)
        if acc is None:
            acc = img
        elif mode == "mip":
            np.maximum(acc, img, out=acc)
        elif mode == "minip":
            np.minimum(acc, img, out=acc)
        else:
            acc += img
    if mode == "mean" and len(offsets) > 1:
        acc /= len(offsets)
    return acc
