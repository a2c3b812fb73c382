"""Turning overlay layers into what an ImageItem draws: uint8 slices + RGBA lookup tables.

Label maps are drawn as their values through an RGBA table (colour per label, alpha = opacity,
hidden labels and 0 transparent): 256 entries for uint8 maps, 65536 for wider ones, so a label
value above 255 never wraps onto another label's colour; heatmaps are drawn from float values with
levels (vmin, vmax) through a colormap table whose entries below the threshold are transparent.
Both keep the per-slice work to one cheap numpy pass, the rest is Qt's Indexed8 colour table.
"""

from __future__ import annotations

from functools import lru_cache

import numpy as np

from medview.ui.viewer_state import DEFAULT_LABEL_COLORS, HeatmapLayer, LabelLayer

N_LUT = 256


N_WIDE_LUT = 65536  # label maps wider than uint8 (imported parcellations: values up to 2035 and more)


def label_lut_size(layer: LabelLayer) -> int:
    """256 entries for uint8 label maps, 65536 otherwise (drawn as uint16: no value wraps)."""
    return N_LUT if layer.volume.array.dtype == np.uint8 else N_WIDE_LUT


def label_lut(layer: LabelLayer) -> np.ndarray:
    n = label_lut_size(layer)
    values = np.arange(n)
    palette = np.asarray(DEFAULT_LABEL_COLORS, np.uint8)
    lut = np.zeros((n, 4), np.uint8)
    lut[1:, :3] = palette[(values[1:] - 1) % len(palette)]
    lut[1:, 3] = round(255 * float(np.clip(layer.opacity, 0, 1)))
    for v, c in layer.colors.items():
        if 0 < int(v) < n:
            lut[int(v), :3] = c[:3]
    for v in layer.hidden_labels:
        if 0 < int(v) < n:
            lut[int(v), 3] = 0
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
    """Label slice to draw (uint8, or uint16 for wider maps, matching ``label_lut_size``); with
    ``outline`` only the pixels on a label's border."""
    if plane.dtype in (np.uint8, np.uint16):
        lab = plane
    else:  # int16/int32/... label files: values outside 0..65535 are not labels a table can hold
        lab = np.clip(plane, 0, N_WIDE_LUT - 1).astype(np.uint16)
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
    return np.where(edge, lab, lab.dtype.type(0))


def bbox_2d(mask: np.ndarray, margin: int = 0) -> tuple[int, int, int, int] | None:
    """(r0, r1, c0, c1) half-open bounds of the non-zero pixels (grown by ``margin``), or None."""
    rows = np.flatnonzero(mask.any(axis=1))
    if rows.size == 0:
        return None
    cols = np.flatnonzero(mask.any(axis=0))
    h, w = mask.shape
    return (max(0, int(rows[0]) - margin), min(h, int(rows[-1]) + 1 + margin),
            max(0, int(cols[0]) - margin), min(w, int(cols[-1]) + 1 + margin))
