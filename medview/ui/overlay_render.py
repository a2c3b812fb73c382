"""Turning overlay layers into what an ImageItem draws: uint8 slices + RGBA lookup tables.

Label maps are drawn as their uint8 values through a 256-entry RGBA table (colour per label,
alpha = opacity, hidden labels and 0 transparent); heatmaps are drawn from float values with
levels (vmin, vmax) through a colormap table whose entries below the threshold are transparent.
Both keep the per-slice work to one cheap numpy pass, the rest is Qt's Indexed8 colour table.
"""

from __future__ import annotations

from functools import lru_cache

import numpy as np

from medview.ui.viewer_state import HeatmapLayer, LabelLayer

N_LUT = 256


def label_lut(layer: LabelLayer) -> np.ndarray:
    lut = np.zeros((N_LUT, 4), np.uint8)
    alpha = round(255 * float(np.clip(layer.opacity, 0, 1)))
    for v in range(1, N_LUT):
        if v in layer.hidden_labels:
            continue
        lut[v, :3] = layer.color(v)
        lut[v, 3] = alpha
    return lut


@lru_cache(maxsize=32)
def _colormap_table(name: str) -> np.ndarray:
    import pyqtgraph as pg

    try:
        cmap = pg.colormap.get(name)
    except Exception:  # noqa: BLE001 - unknown name: fall back to a built-in map
        cmap = pg.colormap.get("inferno")
    return np.asarray(cmap.getLookupTable(nPts=N_LUT, alpha=True), dtype=np.uint8)


def heatmap_lut(layer: HeatmapLayer) -> np.ndarray:
    lut = _colormap_table(layer.colormap).copy()
    lut[:, 3] = round(255 * float(np.clip(layer.opacity, 0, 1)))
    span = float(layer.vmax) - float(layer.vmin)
    if span > 0 and layer.threshold > layer.vmin:
        # entry e shows values in [vmin + e*span/N, vmin + (e+1)*span/N)
        first_shown = int(np.ceil((float(layer.threshold) - layer.vmin) / span * N_LUT - 1e-9))
        lut[: max(0, min(N_LUT, first_shown)), 3] = 0
    return lut


def label_slice(plane: np.ndarray, outline: bool) -> np.ndarray:
    """uint8 label slice to draw; with ``outline`` only the pixels on a label's border."""
    lab = plane if plane.dtype == np.uint8 else plane.astype(np.uint8)
    if not outline:
        return lab
    edge = np.zeros(lab.shape, bool)
    edge[1:, :] |= lab[1:, :] != lab[:-1, :]
    edge[:-1, :] |= lab[:-1, :] != lab[1:, :]
    edge[:, 1:] |= lab[:, 1:] != lab[:, :-1]
    edge[:, :-1] |= lab[:, :-1] != lab[:, 1:]
    # image border counts as edge too
    edge[0, :] = edge[-1, :] = True
    edge[:, 0] = edge[:, -1] = True
    return np.where(edge, lab, np.uint8(0))


def bbox_2d(mask: np.ndarray, margin: int = 0) -> tuple[int, int, int, int] | None:
    """(r0, r1, c0, c1) half-open bounds of the non-zero pixels (grown by ``margin``), or None."""
    rows = np.flatnonzero(mask.any(axis=1))
    if rows.size == 0:
        return None
    cols = np.flatnonzero(mask.any(axis=0))
    h, w = mask.shape
    return (max(0, int(rows[0]) - margin), min(h, int(rows[-1]) + 1 + margin),
            max(0, int(cols[0]) - margin), min(w, int(cols[-1]) + 1 + margin))
