"""Prompt encoding shared by training and the app: the network sees a view of the image
sampled on a fixed grid plus three guidance channels (positive clicks/scribbles, negative
clicks/scribbles, previous mask), the RITM / DeepEdit way (click discs / balls, not points).

2D: coordinates are (row, col) in image pixels; a ``View`` is a square box ``(r0, c0, side)``
resized to ``size`` x ``size``. N-D (the 3D model): a ``Crop`` is a box given by its origin and
per-axis step (image voxels per grid cell) sampled on a grid of any shape. Both may reach
outside the image (padded with zeros after normalisation). ``sample_view``, ``balls``,
``guidance_channels``, ``network_input``, ``paste_view`` and ``inscribed_centre`` work on either.
"""

from __future__ import annotations

from dataclasses import dataclass, field

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

    @property
    def pos(self) -> tuple[float, ...]:
        return (self.row, self.col)


@dataclass(frozen=True)
class Point:
    """A click in N-D (a 3D click is (z, y, x) in voxels)."""

    pos: tuple[float, ...]
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

    def as_crop(self, size: int = SIZE) -> Crop:
        return Crop((self.r0, self.c0), (self.side / size,) * 2)


@dataclass(frozen=True)
class Crop:
    """An N-D box of the image on a grid: grid cell ``i`` of axis ``a`` samples image coordinate
    ``origin[a] + (i + 0.5) * step[a] - 0.5`` (so step 1 and an integer origin copy voxels)."""

    origin: tuple[float, ...]
    step: tuple[float, ...]

    def coords(self, size: tuple[int, ...]) -> list[np.ndarray]:
        return [o + (np.arange(n) + 0.5) * s - 0.5 for o, s, n in zip(self.origin, self.step, size, strict=True)]

    def to_net(self, pos: tuple[float, ...]) -> tuple[float, ...]:
        return tuple((p - o + 0.5) / s - 0.5 for p, o, s in zip(pos, self.origin, self.step, strict=True))

    def to_image(self, pos: tuple[float, ...]) -> tuple[float, ...]:
        return tuple(o + (p + 0.5) * s - 0.5 for p, o, s in zip(pos, self.origin, self.step, strict=True))


def _grid(size, ndim: int) -> tuple[int, ...]:
    return tuple(int(v) for v in size) if isinstance(size, (tuple, list)) else (int(size),) * ndim


def _as_crop(view, size) -> tuple[Crop, tuple[int, ...]]:
    if isinstance(view, View):
        n = int(size if not isinstance(size, (tuple, list)) else size[0])
        return view.as_crop(n), (n, n)
    return view, _grid(size, len(view.origin))


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


def sample_view(arr: np.ndarray, view, size=SIZE, order: int = 1) -> np.ndarray:
    """``arr`` (C, *spatial) or (*spatial) sampled on the view's grid (zero outside): a 2D
    ``View`` on size x size, a ``Crop`` on ``size`` (a tuple, or one int for every axis). A
    ``Crop`` with unit steps and an integer origin is copied, not interpolated."""
    crop, grid_shape = _as_crop(view, size)
    nd = len(crop.origin)
    if arr.ndim == nd + 1:
        return np.stack([sample_view(c, crop, grid_shape, order) for c in arr])
    a = np.asarray(arr, dtype=np.float32)
    if all(s == 1 for s in crop.step) and all(float(o).is_integer() for o in crop.origin):
        out = np.zeros(grid_shape, np.float32)
        src, dst = [], []
        for o, n, m in zip(crop.origin, grid_shape, a.shape, strict=True):
            o = int(o)
            lo, hi = max(0, o), min(m, o + n)
            if hi <= lo:
                return out
            src.append(slice(lo, hi))
            dst.append(slice(lo - o, hi - o))
        out[tuple(dst)] = a[tuple(src)]
        return out
    grid = np.stack(np.meshgrid(*crop.coords(grid_shape), indexing="ij"))
    return ndimage.map_coordinates(a, grid, order=order, mode="constant", cval=0.0)


def paste_view(prob: np.ndarray, view, shape: tuple[int, ...]) -> tuple[np.ndarray, tuple[slice, ...]]:
    """Network-grid map ``prob`` resampled onto the image pixels the view covers; returns
    (values, slices) for those pixels. A 2D ``View``: bilinear (torch), the view's corner
    rounded to a whole pixel (at most half a pixel off). A ``Crop``: linear interpolation at
    each covered voxel's grid position (an exact copy for unit steps and an integer origin)."""
    if isinstance(view, Crop):
        return _paste_crop(prob, view, shape)
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


def _paste_crop(prob: np.ndarray, crop: Crop, shape: tuple[int, ...]) -> tuple[np.ndarray, tuple[slice, ...]]:
    lo, hi = [], []
    for o, s, n, m in zip(crop.origin, crop.step, prob.shape, shape, strict=True):
        first, last = o - 0.5, o + n * s - 0.5  # the grid's extent in voxel coordinates
        lo.append(max(0, int(np.ceil(first - 1e-9))))
        hi.append(min(m, int(np.ceil(last - 1e-9))))
    sl = tuple(slice(a, b) for a, b in zip(lo, hi, strict=True))
    if any(b <= a for a, b in zip(lo, hi, strict=True)):
        return np.zeros((0,) * len(shape), np.float32), tuple(slice(0, 0) for _ in shape)
    if all(s == 1 for s in crop.step) and all(float(o).is_integer() for o in crop.origin):
        src = tuple(slice(a - int(o), b - int(o)) for a, b, o in zip(lo, hi, crop.origin, strict=True))
        return np.ascontiguousarray(prob[src], dtype=np.float32), sl
    axes = [(np.arange(a, b) - o + 0.5) / s - 0.5 for a, b, o, s in zip(lo, hi, crop.origin, crop.step, strict=True)]
    grid = np.stack(np.meshgrid(*axes, indexing="ij"))
    vals = ndimage.map_coordinates(np.asarray(prob, np.float32), grid, order=1, mode="nearest")
    return vals.astype(np.float32), sl


def balls(points, size=SIZE, radius: float = DISC_RADIUS, ndim: int = 2) -> np.ndarray:
    """A grid (``size``: one int per axis or a tuple) with a filled disc / ball of ``radius``
    grid cells at each network coordinate in ``points``."""
    shape = _grid(size, len(points[0]) if points else ndim)
    out = np.zeros(shape, np.float32)
    if not points:
        return out
    r = int(np.ceil(radius))
    for p in points:
        lo = [max(0, int(np.floor(c)) - r) for c in p]
        hi = [min(n, int(np.ceil(c)) + r + 1) for c, n in zip(p, shape, strict=True)]
        if any(b <= a for a, b in zip(lo, hi, strict=True)):
            continue
        grids = np.ogrid[tuple(slice(a, b) for a, b in zip(lo, hi, strict=True))]
        d2 = sum((gr - c) ** 2 for gr, c in zip(grids, p, strict=True))
        out[tuple(slice(a, b) for a, b in zip(lo, hi, strict=True))][d2 <= radius * radius] = 1.0
    return out


def discs(points: list[tuple[float, float]], size: int = SIZE, radius: float = DISC_RADIUS) -> np.ndarray:
    """A size x size map with a filled disc at each (row, col) network coordinate."""
    return balls(points, size, radius, ndim=2)


def _net_pos(view, pos: tuple[float, ...], size) -> tuple[float, ...]:
    if isinstance(view, View):
        return view.to_net(pos[0], pos[1], int(size if not isinstance(size, (tuple, list)) else size[0]))
    return view.to_net(pos)


def guidance_channels(view, clicks: list, prev_mask: np.ndarray | None,
                      pos_strokes: np.ndarray | None = None, neg_strokes: np.ndarray | None = None,
                      size=SIZE, radius: float = DISC_RADIUS) -> np.ndarray:
    """(3, *grid): positive discs/balls + scribbles, negative discs/balls + scribbles, previous
    mask. ``clicks``: ``Click`` (2D) or ``Point`` (N-D); ``pos_strokes`` / ``neg_strokes`` are
    image-sized boolean scribble masks (painted strokes); ``view`` a 2D ``View`` or a ``Crop``."""
    crop, grid_shape = _as_crop(view, size)
    pos = balls([_net_pos(view, k.pos, size) for k in clicks if k.positive], grid_shape, radius)
    neg = balls([_net_pos(view, k.pos, size) for k in clicks if not k.positive], grid_shape, radius)
    if pos_strokes is not None and pos_strokes.any():
        pos = np.maximum(pos, sample_view(pos_strokes.astype(np.float32), view, size) > 0.25)
    if neg_strokes is not None and neg_strokes.any():
        neg = np.maximum(neg, sample_view(neg_strokes.astype(np.float32), view, size) > 0.25)
    prev = (sample_view(prev_mask.astype(np.float32), view, size) if prev_mask is not None
            else np.zeros(grid_shape, np.float32))
    return np.stack([pos, neg, prev]).astype(np.float32)


def network_input(image_norm: np.ndarray, view, clicks: list, prev_mask: np.ndarray | None,
                  pos_strokes: np.ndarray | None = None, neg_strokes: np.ndarray | None = None,
                  size=SIZE, radius: float = DISC_RADIUS) -> np.ndarray:
    """(C + 3, *grid): the normalised image (C channels) in the view plus the guidance channels."""
    img = sample_view(image_norm, view, size)
    return np.concatenate([img, guidance_channels(view, clicks, prev_mask, pos_strokes, neg_strokes, size, radius)])


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


@dataclass
class Prompts:
    """Everything the annotator gave for one object on one image."""

    clicks: list[Click] = field(default_factory=list)
    box: tuple[float, float, float, float] | None = None  # r0, c0, r1, c1 (image pixels)
    pos_strokes: np.ndarray | None = None  # boolean image-sized scribble masks
    neg_strokes: np.ndarray | None = None

    def points(self) -> list[tuple[float, float]]:
        pts = [(k.row, k.col) for k in self.clicks]
        for s in (self.pos_strokes, self.neg_strokes):
            if s is not None and s.any():
                rr, cc = np.nonzero(s)
                pts += [(float(rr.min()), float(cc.min())), (float(rr.max()), float(cc.max()))]
        if self.box is not None:
            pts += [(self.box[0], self.box[1]), (self.box[2], self.box[3])]
        return pts

    def has_positive(self) -> bool:
        return (any(k.positive for k in self.clicks) or self.box is not None
                or (self.pos_strokes is not None and bool(self.pos_strokes.any())))


def keep_prompted(mask: np.ndarray, clicks: list[Point], pos_strokes: np.ndarray | None = None) -> np.ndarray:
    """Only the connected parts (any dimension) that a positive prompt touches; unchanged when
    no part is touched."""
    if not mask.any():
        return mask
    lab, n = ndimage.label(mask)
    if n <= 1:
        return mask
    keep = set()
    for k in clicks:
        if k.positive:
            idx = tuple(int(round(v)) for v in k.pos)
            if all(0 <= i < s for i, s in zip(idx, mask.shape, strict=True)) and lab[idx]:
                keep.add(int(lab[idx]))
    if pos_strokes is not None and pos_strokes.any():
        keep.update(int(v) for v in np.unique(lab[pos_strokes & mask]))
    keep.discard(0)
    return np.isin(lab, sorted(keep)) if keep else mask
