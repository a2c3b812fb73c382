"""Prompt encoding shared by training and the app: the network sees a square view of the image
resized to ``size`` x ``size`` plus three guidance channels (positive clicks/scribbles,
negative clicks/scribbles, previous mask), the RITM / DeepEdit way (click discs, not points).

Coordinates are (row, col) in image pixels; a view is a square box ``(r0, c0, side)`` that may
reach outside the image (padded with zeros after normalisation).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import ndimage

SIZE = 128  # network input side
DISC_RADIUS = 3.0  # click disc radius in network pixels
N_GUIDANCE = 3


@dataclass(frozen=True)
class Click:
    row: float
    col: float
    positive: bool = True


@dataclass(frozen=True)
class View:
    """A square region of the image, (r0, c0) its top-left corner, ``side`` its edge in pixels."""

    r0: float
    c0: float
    side: float

    def to_net(self, row: float, col: float, size: int = SIZE) -> tuple[float, float]:
        s = size / self.side
        return (row - self.r0 + 0.5) * s - 0.5, (col - self.c0 + 0.5) * s - 0.5


def normalise_image(image: np.ndarray) -> np.ndarray:
    """(H, W) grey or (H, W, 3) colour -> (3, H, W) float32, z-scored over the whole image (grey
    is repeated into three channels, so one network serves photographs and scans)."""
    a = np.asarray(image, dtype=np.float32)
    if a.ndim == 3:
        a = np.moveaxis(a[..., :3], -1, 0)
    else:
        a = np.repeat(a[None], 3, axis=0)
    mean, std = float(a.mean()), float(a.std())
    return np.ascontiguousarray((a - mean) / (std if std > 1e-6 else 1.0), dtype=np.float32)


def whole_view(shape: tuple[int, int]) -> View:
    """The square that holds the whole image, centred."""
    h, w = shape
    side = float(max(h, w))
    return View((h - side) / 2.0, (w - side) / 2.0, side)


def focus_view(shape: tuple[int, int], points: np.ndarray, expand: float = 1.6, min_side: float = 24.0) -> View:
    """The square around ``points`` ((N, 2) rows/cols: mask pixels and clicks) enlarged by
    ``expand``, never larger than the whole-image square (RITM's zoom-in)."""
    lo, hi = points.min(0).astype(float), points.max(0).astype(float) + 1.0
    centre = (lo + hi) / 2.0
    side = max(float((hi - lo).max()) * expand, min_side)
    side = min(side, float(max(shape)) * 1.05)
    return View(centre[0] - side / 2.0, centre[1] - side / 2.0, side)


def sample_view(arr: np.ndarray, view: View, size: int = SIZE, order: int = 1) -> np.ndarray:
    """``arr`` (C, H, W) or (H, W) sampled on the view's size x size grid (zero outside)."""
    s = view.side / size
    coords = (np.arange(size) + 0.5) * s - 0.5
    rr = view.r0 + coords
    cc = view.c0 + coords
    grid = np.stack(np.meshgrid(rr, cc, indexing="ij"))
    if arr.ndim == 2:
        return ndimage.map_coordinates(arr.astype(np.float32), grid, order=order, mode="constant", cval=0.0)
    return np.stack([ndimage.map_coordinates(c, grid, order=order, mode="constant", cval=0.0) for c in arr])


def paste_view(prob: np.ndarray, view: View, shape: tuple[int, int]) -> tuple[np.ndarray, tuple[slice, slice]]:
    """Network-grid map ``prob`` (size x size) resampled (bilinear, torch) onto the image pixels
    the view covers, the view's corner rounded to a whole pixel (at most half a pixel off);
    returns (values, (row slice, col slice)) for those pixels."""
    import torch
    import torch.nn.functional as F

    h, w = shape
    n = max(1, int(round(view.side)))
    vr, vc = int(round(view.r0)), int(round(view.c0))
    r0, r1 = max(0, vr), min(h, vr + n)
    c0, c1 = max(0, vc), min(w, vc + n)
    if r1 <= r0 or c1 <= c0:
        return np.zeros((0, 0), np.float32), (slice(0, 0), slice(0, 0))
    t = torch.from_numpy(np.ascontiguousarray(prob, dtype=np.float32))[None, None]
    up = F.interpolate(t, size=(n, n), mode="bilinear", align_corners=False)[0, 0].numpy()
    return up[r0 - vr:r1 - vr, c0 - vc:c1 - vc], (slice(r0, r1), slice(c0, c1))


def discs(points: list[tuple[float, float]], size: int = SIZE, radius: float = DISC_RADIUS) -> np.ndarray:
    """A size x size map with a filled disc at each (row, col) network coordinate."""
    out = np.zeros((size, size), np.float32)
    if not points:
        return out
    yy, xx = np.ogrid[:size, :size]
    for r, c in points:
        out[(yy - r) ** 2 + (xx - c) ** 2 <= radius * radius] = 1.0
    return out


def guidance_channels(view: View, clicks: list[Click], prev_mask: np.ndarray | None,
                      pos_strokes: np.ndarray | None = None, neg_strokes: np.ndarray | None = None,
                      size: int = SIZE) -> np.ndarray:
    """(3, size, size): positive discs/scribbles, negative discs/scribbles, previous mask.

    ``pos_strokes`` / ``neg_strokes`` are image-sized boolean scribble masks (painted strokes)."""
    pos = discs([view.to_net(k.row, k.col, size) for k in clicks if k.positive], size)
    neg = discs([view.to_net(k.row, k.col, size) for k in clicks if not k.positive], size)
    if pos_strokes is not None and pos_strokes.any():
        pos = np.maximum(pos, sample_view(pos_strokes.astype(np.float32), view, size) > 0.25)
    if neg_strokes is not None and neg_strokes.any():
        neg = np.maximum(neg, sample_view(neg_strokes.astype(np.float32), view, size) > 0.25)
    prev = (sample_view(prev_mask.astype(np.float32), view, size) if prev_mask is not None
            else np.zeros((size, size), np.float32))
    return np.stack([pos, neg, prev]).astype(np.float32)


def network_input(image_norm: np.ndarray, view: View, clicks: list[Click], prev_mask: np.ndarray | None,
                  pos_strokes: np.ndarray | None = None, neg_strokes: np.ndarray | None = None,
                  size: int = SIZE) -> np.ndarray:
    """(6, size, size): the normalised image in the view plus the guidance channels."""
    img = sample_view(image_norm, view, size)
    return np.concatenate([img, guidance_channels(view, clicks, prev_mask, pos_strokes, neg_strokes, size)])


def inscribed_centre(region: np.ndarray, spacing=None) -> tuple[int, ...] | None:
    """The voxel farthest from the border of the region's largest connected part (centre of its
    largest inscribed disc / ball); None for an empty region. Works in 2D and 3D."""
    if not region.any():
        return None
    lab, n = ndimage.label(region)
    if n > 1:
        sizes = ndimage.sum(region, lab, index=np.arange(1, n + 1))
        region = lab == (int(np.argmax(sizes)) + 1)
    dist = ndimage.distance_transform_edt(np.pad(region, 1), sampling=spacing)
    dist = dist[tuple(slice(1, -1) for _ in range(region.ndim))]
    # the deepest voxels often form a ridge (an elongated object): take the one nearest its middle
    ridge = np.argwhere(dist >= dist.max() - 0.5)
    best = ridge[int(np.argmin(((ridge - ridge.mean(0)) ** 2).sum(1)))]
    return tuple(int(v) for v in best)
