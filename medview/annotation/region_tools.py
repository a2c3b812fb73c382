"""Classical region tools on a LabelMap (no Qt): grow from seeds, level tracing, smoothing,
margins and hole filling in millimetres, "paint over" limits, per-label statistics, and the
enclosed-region check of the fill tool.

Every edit returns an ``ops.Change`` (already applied, locked labels untouched) for the undo
history, like the operations of ``medview.annotation.ops``. Array order is (k, j, i); voxel
sizes come from the label map's volume ((x, y, z) spacing, reversed here).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import numpy as np

from medview.annotation.labelmap import LabelMap
from medview.annotation.ops import Change, _commit, _plane_box, plane_axis_of


class _LazyNdimage:
    """scipy.ndimage on first use: importing it costs ~0.5 s, and the annotation panels import
    this module before the main window's first paint."""

    def __getattr__(self, name: str):
        from scipy import ndimage as real

        return getattr(real, name)


ndimage = _LazyNdimage()

PAINT_OVER = ("all", "background", "label")


def _kji_spacing(lm: LabelMap) -> np.ndarray:
    return np.asarray(lm.volume.spacing[::-1], dtype=np.float64)


def _bbox(mask: np.ndarray, margin: int = 0) -> tuple[slice, ...] | None:
    objs = ndimage.find_objects(mask.astype(np.uint8))
    if not objs or objs[0] is None:
        return None
    return tuple(slice(max(0, s.start - margin), min(n, s.stop + margin)) for s, n in zip(objs[0], mask.shape,
                                                                                            strict=False))


def replace_label(lm: LabelMap, value: int, new_mask: np.ndarray, name: str, over: str = "background") -> Change | None:
    """Make label ``value`` equal ``new_mask`` (full size, boolean): voxels leaving it become
    background, voxels joining it are taken from background only (``over="background"``) or
    from any unlocked label (``over="all"``)."""
    old_mask = lm.array == value
    box = _bbox(old_mask | new_mask)
    if box is None:
        return None
    cur = lm.array[box]
    add = new_mask[box] & ~old_mask[box]
    if over == "background":
        add &= cur == 0
    new = cur.copy()
    new[old_mask[box] & ~new_mask[box]] = 0
    new[add] = value
    return _commit(lm, [s.start for s in box], [s.stop for s in box], new, name)


# ---- paint-over limits --------------------------------------------------------------------
def limit_change(lm: LabelMap, change: Change | None, over: str, label: int | None = None,
                 erasing: bool = False) -> Change | None:
    """Undo the voxels of an applied ``change`` that its paint-over mode does not allow:
    ``background`` paints only where the voxel was 0, ``label`` only over ``label``; erasing
    with ``label`` removes only that label. Returns the change as it stands (None if nothing)."""
    if change is None or over == "all":
        return change
    if over not in PAINT_OVER:
        raise ValueError(f"paint over must be one of {PAINT_OVER}")
    if erasing:
        allowed = change.old == label if over == "label" else np.ones_like(change.old, bool)
    else:
        allowed = change.old == 0 if over == "background" else change.old == label
    new = np.where(allowed, change.new, change.old).astype(change.old.dtype)
    lm.array[change.slices] = new
    if not np.any(new != change.old):
        return None
    return Change(change.lo, change.hi, change.old, new, change.name)


# ---- fill -----------------------------------------------------------------------------------
def slice_region(lm: LabelMap, seed: Sequence[float], plane_axis: int | str) -> tuple[np.ndarray, int, int]:
    """The 4-connected region of the seed's label in its slice: (mask2d, plane axis, slice)."""
    a = plane_axis_of(plane_axis)
    q = np.floor(np.asarray(seed, float) + 0.5).astype(int)
    lab2d = np.take(lm.array, int(q[a]), axis=a)
    others = [ax for ax in range(3) if ax != a]
    su, sv = int(q[others[0]]), int(q[others[1]])
    comp, _ = ndimage.label(lab2d == lab2d[su, sv])
    return comp == comp[su, sv], a, int(q[a])


def touches_border(mask2d: np.ndarray) -> bool:
    return bool(mask2d[0].any() or mask2d[-1].any() or mask2d[:, 0].any() or mask2d[:, -1].any())


def background_fill_refusal(lm: LabelMap, seed: Sequence[float], plane_axis: int | str) -> str | None:
    """Why a tolerance-0 fill on background would flood the slice (its background region is not
    enclosed by labels: it reaches the image edge), or None when the fill is a real hole."""
    q = np.floor(np.asarray(seed, float) + 0.5).astype(int)
    if np.any(q < 0) or np.any(q >= np.asarray(lm.shape)) or int(lm.array[tuple(q)]) != 0:
        return None
    mask, _, _ = slice_region(lm, seed, plane_axis)
    if touches_border(mask):
        return ("fill: this background is not enclosed by a label (it reaches the image edge); "
                "click inside a closed outline, or set a fill tolerance to fill by intensity")
    return None


# ---- grow from seeds ---------------------------------------------------------------------------
def grow_from_seeds(lm: LabelMap, intensity: np.ndarray, plane_axis: int | str | None = None,
                    slice_index: int | None = None, margin_mm: float = 10.0, smooth_sigma: float = 1.0,
                    ) -> Change | None:
    """Competitive region growing from the strokes already painted (two or more labels, or one
    label plus a background seed label): a marker watershed on the gradient magnitude, so each
    label grows until it meets another at an edge (GrowCut-like). In one slice when
    ``plane_axis``/``slice_index`` are given, else in 3D, inside the seeds' box plus
    ``margin_mm``. Only background voxels are filled; the seeds stay as they are."""
    from skimage.segmentation import watershed

    if plane_axis is not None:
        a = plane_axis_of(plane_axis)
        labels = np.take(lm.array, slice_index, axis=a)
        img = np.take(intensity, slice_index, axis=a).astype(np.float32)
        spacing = np.delete(_kji_spacing(lm), a)
    else:
        labels, img, spacing = lm.array, intensity.astype(np.float32), _kji_spacing(lm)
    values = [int(v) for v in np.unique(labels) if v]
    if len(values) < 2:
        raise ValueError("grow from seeds needs strokes of two or more labels (e.g. the object and a "
                         "'background' label around it)")
    margin = np.ceil(margin_mm / spacing).astype(int)
    box = _bbox(labels > 0)
    assert box is not None
    box = tuple(slice(max(0, s.start - m), min(n, s.stop + m)) for s, m, n in zip(box, margin, labels.shape,
                                                                                  strict=False))
    sub = ndimage.gaussian_filter(img[box], smooth_sigma / np.maximum(spacing, 1e-6))
    grad = ndimage.gaussian_gradient_magnitude(sub, 1.0)
    grown = watershed(grad, markers=labels[box].astype(np.int32))
    new = np.where(labels[box] == 0, grown, labels[box]).astype(lm.array.dtype)
    if plane_axis is not None:
        lo, hi = _plane_box(a, slice_index, (box[0].start, box[0].stop), (box[1].start, box[1].stop))
        return _commit(lm, lo, hi, np.expand_dims(new, a), "Grow from seeds")
    return _commit(lm, [s.start for s in box], [s.stop for s in box], new, "Grow from seeds")


# ---- level tracing -------------------------------------------------------------------------------
def level_trace_mask(image2d: np.ndarray, seed: tuple[int, int]) -> np.ndarray:
    """The region bounded by the iso-intensity line through ``seed``: the connected part,
    containing the seed, of pixels at least as bright as it (or at most as bright, when that
    part is the enclosed one), as Slicer's level tracing fills it."""
    img = np.asarray(image2d, dtype=np.float64)
    level = img[seed]
    best = None
    for region in (img >= level, img <= level):
        comp, _ = ndimage.label(region)
        m = comp == comp[seed]
        if best is None or (touches_border(best) and not touches_border(m)):
            best = m
    return ndimage.binary_fill_holes(best)


def level_trace(lm: LabelMap, intensity: np.ndarray, seed: Sequence[float], value: int,
                plane_axis: int | str) -> Change | None:
    a = plane_axis_of(plane_axis)
    q = np.floor(np.asarray(seed, float) + 0.5).astype(int)
    others = [ax for ax in range(3) if ax != a]
    img2d = np.take(intensity, int(q[a]), axis=a)
    m = level_trace_mask(img2d, (int(q[others[0]]), int(q[others[1]])))
    box = _bbox(m)
    lo, hi = _plane_box(a, int(q[a]), (box[0].start, box[0].stop), (box[1].start, box[1].stop))
    sl = tuple(slice(x, y) for x, y in zip(lo, hi, strict=False))
    cur = lm.array[sl]
    new = np.where(np.expand_dims(m[box], a), np.asarray(value, cur.dtype), cur)
    return _commit(lm, lo, hi, new, "Level tracing")


# ---- smoothing, margins, holes -----------------------------------------------------------------
SMOOTHING = ("median", "opening", "closing", "gaussian")


def _ball(radius_mm: float, spacing: np.ndarray) -> np.ndarray:
    r = np.maximum(np.floor(radius_mm / spacing), 0).astype(int)
    grids = np.ogrid[tuple(slice(-n, n + 1) for n in r)]
    d = sum((g * s / max(radius_mm, 1e-9)) ** 2 for g, s in zip(grids, spacing, strict=False))
    return d <= 1.0


def smooth_label(lm: LabelMap, value: int, method: str, size_mm: float) -> Change | None:
    """Smooth label ``value`` in 3D: median filter, morphological opening (removes spurs and
    bridges) or closing (fills notches) with a ball of ``size_mm`` radius, or Gaussian of
    sigma ``size_mm`` thresholded at 0.5."""
    if method not in SMOOTHING:
        raise ValueError(f"smoothing must be one of {SMOOTHING}")
    sp = _kji_spacing(lm)
    pad = int(np.ceil(size_mm / sp.min())) * 3 + 1
    m = lm.array == value
    box = _bbox(m, pad)
    if box is None:
        return None
    sub = m[box]
    ball = _ball(size_mm, sp)
    if method == "median":
        out = ndimage.median_filter(sub.astype(np.uint8), footprint=ball) > 0
    elif method == "opening":
        out = ndimage.binary_opening(sub, ball)
    elif method == "closing":
        out = ndimage.binary_closing(np.pad(sub, [(s, s) for s in ball.shape]), ball)
        out = out[tuple(slice(s, -s) for s in ball.shape)]
    else:
        out = ndimage.gaussian_filter(sub.astype(np.float32), size_mm / sp) >= 0.5
    new = np.zeros_like(m)
    new[box] = out
    return replace_label(lm, value, new, f"Smooth ({method} {size_mm:g} mm)")


def margin_label(lm: LabelMap, value: int, mm: float) -> Change | None:
    """Grow (``mm`` > 0, over background only) or shrink (``mm`` < 0) label ``value`` by a
    distance in millimetres (exact Euclidean distance with the voxel spacing)."""
    if mm == 0:
        return None
    sp = _kji_spacing(lm)
    m = lm.array == value
    pad = int(np.ceil(abs(mm) / sp.min())) + 1
    box = _bbox(m, pad)
    if box is None:
        return None
    sub = m[box]
    if mm > 0:
        out = ndimage.distance_transform_edt(~sub, sampling=sp) <= mm
    else:
        out = ndimage.distance_transform_edt(np.pad(sub, 1), sampling=sp)[tuple(slice(1, -1) for _ in sp)] > -mm
    new = np.zeros_like(m)
    new[box] = out
    return replace_label(lm, value, new, f"{'Grow' if mm > 0 else 'Shrink'} {abs(mm):g} mm")


def fill_holes(lm: LabelMap, value: int, max_hole_mm: float | None = None,
               plane_axis: int | str | None = None) -> Change | None:
    """Fill the holes of label ``value`` (background enclosed by it), slice by slice in
    ``plane_axis`` or in 3D when None; with ``max_hole_mm`` only holes whose equivalent
    diameter is at most that."""
    m = lm.array == value
    box = _bbox(m, 1)
    if box is None:
        return None
    sub = m[box]
    if plane_axis is None:
        filled = ndimage.binary_fill_holes(sub)
    else:
        a = plane_axis_of(plane_axis)
        filled = np.stack([ndimage.binary_fill_holes(np.take(sub, i, axis=a)) for i in range(sub.shape[a])], axis=a)
    holes = filled & ~sub
    if max_hole_mm is not None and holes.any():
        sp = _kji_spacing(lm)
        comp, n = ndimage.label(holes)
        vox = ndimage.sum(holes, comp, index=np.arange(1, n + 1))
        dims = 3 if plane_axis is None else 2
        unit = np.prod(sp) if dims == 3 else np.prod(np.delete(sp, plane_axis_of(plane_axis)))
        size = vox * unit
        diam = (6 * size / np.pi) ** (1 / 3) if dims == 3 else np.sqrt(4 * size / np.pi)
        keep = np.flatnonzero(diam <= max_hole_mm) + 1
        holes = np.isin(comp, keep)
    new = np.zeros_like(m)
    new[box] = sub | holes
    return replace_label(lm, value, new, "Fill holes")


# ---- statistics ----------------------------------------------------------------------------------
@dataclass
class LabelStats:
    value: int
    name: str
    voxels: int
    volume_ml: float
    mean: float
    sd: float


def label_statistics(lm: LabelMap, intensity: np.ndarray | None) -> list[LabelStats]:
    """Voxels, volume (mL; in pixel units squared on photographs) and intensity mean / SD of
    every label in the table."""
    vals = sorted(lm.labels)
    arr = lm.array
    counts = np.bincount(arr.ravel(), minlength=max(vals, default=0) + 1)
    ml = lm.volume.voxel_volume_mm3 / 1000.0
    out = []
    for v in vals:
        n = int(counts[v]) if v < len(counts) else 0
        mean = sd = float("nan")
        if intensity is not None and n:
            x = intensity[arr == v].astype(np.float64)
            mean, sd = float(x.mean()), float(x.std(ddof=1)) if n > 1 else 0.0
        out.append(LabelStats(v, lm.labels[v].name, n, n * ml, mean, sd))
    return out
