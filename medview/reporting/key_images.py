"""Key images for the report: slices rendered with their label overlay, heatmap and measurements
(headless, numpy + Pillow; the app passes the user's own screenshots instead)."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from medview.io.volume import Volume
from medview.reporting.measurements import MeasurementRecord

MIN_SIDE = 320  # rendered images are scaled up to at least this many pixels on the short side


def choose_slices(image: Volume, labelmap=None, heatmap: Volume | None = None,
                  measurements: Sequence[MeasurementRecord] = (), limit: int = 3) -> list[int]:
    """Axial slices worth showing: most labelled voxels, hottest heatmap, measured; else the middle."""
    picks: list[int] = []
    if labelmap is not None and labelmap.array.any():
        picks.append(int(np.argmax((labelmap.array > 0).reshape(labelmap.shape[0], -1).sum(axis=1))))
    if heatmap is not None and heatmap.shape == image.shape and np.isfinite(heatmap.array).any():
        picks.append(int(np.argmax(np.nanmax(heatmap.array.reshape(heatmap.shape[0], -1), axis=1))))
    for r in measurements:
        if r.kind != "volume" and r.normal_axis == 2:
            picks.append(r.slice_index)
    if not picks:
        picks.append(image.shape[0] // 2)
    return list(dict.fromkeys(p for p in picks if 0 <= p < image.shape[0]))[:limit]


def _grey(plane: np.ndarray, window: tuple[float, float]) -> np.ndarray:
    if plane.ndim == 3:  # RGB photograph
        return plane[..., :3].astype(np.float64) / 255.0
    w, level = window
    g = np.clip((plane.astype(np.float64) - (level - w / 2)) / max(w, 1e-6), 0, 1)
    return np.repeat(g[..., None], 3, axis=2)


def render_slice(image: Volume, k: int, labelmap=None, heatmap: Volume | None = None,
                 measurements: Sequence[MeasurementRecord] = (), window: tuple[float, float] | None = None,
                 opacity: float = 0.4):
    """One axial slice as an RGB PIL image with overlays, scaled to square pixels in mm."""
    from PIL import Image, ImageDraw
    from scipy import ndimage

    from medview.measure import auto_window, dicom_window

    window = window or dicom_window(image.meta) or auto_window(image.array)
    rgb = _grey(image.array[k], window)
    if heatmap is not None and heatmap.shape == image.shape:
        h = np.nan_to_num(heatmap.array[k].astype(np.float64))
        hot = np.clip(h, 0, 1)[..., None]
        colour = np.stack([np.ones_like(h), np.clip(2 * h - 0.5, 0, 1), np.zeros_like(h)], axis=2)
        a = np.where(hot > 0.2, 0.45 * hot, 0)
        rgb = rgb * (1 - a) + colour * a
    if labelmap is not None:
        sl = labelmap.array[k]
        for v in np.unique(sl):
            if v == 0:
                continue
            lab = labelmap.labels.get(int(v))
            col = np.asarray(lab.color if lab is not None else (255, 0, 0), float) / 255.0
            m = sl == v
            rgb[m] = rgb[m] * (1 - opacity) + col * opacity
            edge = m & ~ndimage.binary_erosion(m)
            rgb[edge] = col
    img = Image.fromarray((rgb * 255).astype(np.uint8), "RGB")
    sx, sy = image.spacing[0], image.spacing[1]
    w, h = img.size
    scale = max(1.0, MIN_SIDE / min(w * sx / min(sx, sy), h * sy / min(sx, sy)))
    size = (max(1, round(w * sx / min(sx, sy) * scale)), max(1, round(h * sy / min(sx, sy) * scale)))
    fx, fy = size[0] / w, size[1] / h
    img = img.resize(size, Image.Resampling.BILINEAR)
    draw = ImageDraw.Draw(img)
    for r in measurements:
        if r.kind == "volume" or r.normal_axis != 2 or r.slice_index != k:
            continue
        (x0, y0), (x1, y1) = ((r.p0[0] + 0.5) * fx, (r.p0[1] + 0.5) * fy), ((r.p1[0] + 0.5) * fx, (r.p1[1] + 0.5) * fy)
        if r.kind == "ruler":
            draw.line([(x0, y0), (x1, y1)], fill=(255, 255, 0), width=2)
        else:
            box = [(min(x0, x1), min(y0, y1)), (max(x0, x1), max(y0, y1))]
            (draw.ellipse if r.kind == "ellipse" else draw.rectangle)(box, outline=(0, 255, 255), width=2)
    return img
