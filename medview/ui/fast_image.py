"""ImageItem that draws through a premultiplied-ARGB32 lookup table.

Qt blends a ``Format_ARGB32_Premultiplied`` QImage several times faster than the Grayscale8 or
Indexed8-with-alpha images pyqtgraph's ImageItem otherwise hands it (measured in
benchmarks/bench_render.py), and one ``np.take`` through a 256- or 65536-entry uint32 table
costs less than pyqtgraph's rescale. So each slice is turned into its final pixels in one pass:

- uint8 data: 256-entry table (labels, 8-bit images);
- int16 / uint16 data: 65536-entry table indexed by the raw 16 bits (CT, MR), window baked in;
- anything else (float, int32): rescaled from ``value_range`` to 0..255, then a 256-entry table.

With no table set (e.g. RGB data) it behaves exactly like pyqtgraph's ImageItem.
"""

from __future__ import annotations

from functools import lru_cache
from typing import Optional

import numpy as np
import pyqtgraph as pg
from pyqtgraph import functions as fn
from PySide6.QtGui import QImage, QPainter

_U16_AS_I16 = np.arange(65536, dtype=np.uint16).view(np.int16).astype(np.float32)
_U16 = np.arange(65536, dtype=np.float32)


def rgba_to_premultiplied(lut: np.ndarray) -> np.ndarray:
    """(N, 4) uint8 RGBA table -> (N,) uint32 premultiplied ARGB32 (Qt's native pixel)."""
    lut = np.asarray(lut, dtype=np.uint32)
    a = lut[:, 3]
    r = (lut[:, 0] * a + 127) // 255
    g = (lut[:, 1] * a + 127) // 255
    b = (lut[:, 2] * a + 127) // 255
    return ((a << 24) | (r << 16) | (g << 8) | b).astype(np.uint32)


def gray_table(values: np.ndarray, low: float, high: float, invert: bool) -> np.ndarray:
    """Opaque grey uint32 table for data ``values`` displayed with levels (low, high)."""
    span = max(high - low, 1e-12)
    g = np.clip((values - low) * (255.0 / span), 0, 255).astype(np.uint32)
    if invert:
        g = 255 - g
    return (0xFF000000 | (g << 16) | (g << 8) | g).astype(np.uint32)


def window_table(dtype: np.dtype, low: float, high: float, invert: bool) -> tuple[np.ndarray, Optional[tuple]]:
    """(table, value_range) for showing ``dtype`` data with levels (low, high).

    Cached: the three views share one table per window (treat it as read-only)."""
    return _window_table(np.dtype(dtype).str, float(low), float(high), bool(invert))


@lru_cache(maxsize=8)
def _window_table(dtype_str: str, low: float, high: float, invert: bool):
    dtype = np.dtype(dtype_str)
    if dtype == np.uint8:
        return gray_table(np.arange(256, dtype=np.float32), low, high, invert), None
    if dtype == np.int16:
        return gray_table(_U16_AS_I16, low, high, invert), None
    if dtype == np.uint16:
        return gray_table(_U16, low, high, invert), None
    # other types are rescaled from (low, high) to 0..255 first
    return gray_table(np.arange(256, dtype=np.float32), 0.0, 255.0, invert), (low, high)


class FastImageItem(pg.ImageItem):
    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.argb_lut: Optional[np.ndarray] = None
        self.value_range: Optional[tuple[float, float]] = None
        self._argb_buf: Optional[np.ndarray] = None
        self.smooth = False  # bilinear filtering when drawn magnified (anisotropic voxels too)

    def set_argb_lut(self, lut: Optional[np.ndarray], value_range: Optional[tuple[float, float]] = None,
                     update: bool = True) -> None:
        self.argb_lut = lut
        self.value_range = value_range
        self._renderRequired = True
        if update:
            self.update()

    def set_data(self, image: np.ndarray) -> None:
        """Replace the pixels (same meaning as setImage(image, autoLevels=False), minus its checks)."""
        if self.argb_lut is None:
            self.setImage(image, autoLevels=False)
            return
        shape_changed = self.image is None or self.image.shape != image.shape
        if shape_changed:
            self.prepareGeometryChange()
        self.image = image
        self._imageHasNans = False
        self._renderRequired = True
        if shape_changed:
            self.informViewBoundsChanged()
        self.update()

    def set_smooth(self, on: bool) -> None:
        if bool(on) != self.smooth:
            self.smooth = bool(on)
            self.update()

    def paint(self, painter, *args):
        painter.setRenderHint(QPainter.RenderHint.SmoothPixmapTransform, self.smooth)
        super().paint(painter, *args)

    def render(self) -> None:
        img, lut = self.image, self.argb_lut
        if img is None or lut is None or img.ndim != 2:
            super().render()
            return
        if self.value_range is not None:
            lo, hi = self.value_range
            scale = len(lut) / max(float(hi) - float(lo), 1e-12)
            with np.errstate(invalid="ignore"):  # NaN (e.g. outside a heatmap's support) -> entry 0
                idx = fn.rescaleData(img, scale, lo, dtype=np.uint8, clip=(0, len(lut) - 1))
        elif img.dtype == np.uint8:
            idx = img
        elif img.dtype in (np.int16, np.uint16) and len(lut) == 65536:
            idx = img.view(np.uint16)
        else:
            super().render()
            return
        h, w = img.shape
        buf = self._argb_buf
        if buf is None or buf.shape != (h, w):
            buf = self._argb_buf = np.empty((h, w), np.uint32)
        np.take(lut, idx, out=buf, mode="clip")
        self.qimage = fn.ndarray_to_qimage(buf, QImage.Format.Format_ARGB32_Premultiplied)
        self._renderRequired = False
        self._unrenderable = False
