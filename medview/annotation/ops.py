"""Edit operations on a LabelMap. Each changes ``labelmap.array`` in place and returns the
changed region as a ``Change`` (bounding box + old and new values), or None when nothing
changed. Locked labels are never overwritten.

Coordinates are array indices ``(k, j, i)`` (floats allowed; they are rounded to the voxel they
fall in). Views are axial / coronal / sagittal, so 2D operations take ``plane_axis``: the
array axis that is constant in the view (0 = axial: k fixed, 1 = coronal: j fixed,
2 = sagittal: i fixed). Sizes are in millimetres and use the label map's spacing.
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from medview.annotation import patch
from medview.annotation.labelmap import LabelMap

AXIAL, CORONAL, SAGITTAL = 0, 1, 2
PLANE_NAMES = {"axial": AXIAL, "coronal": CORONAL, "sagittal": SAGITTAL}


@dataclass
class Change:
    """A changed box [lo, hi) of a label map with its values before and after. With ``pieces``
    (``medview.annotation.patch``) only those boxes inside [lo, hi) changed, and ``old`` / ``new``
    are their flat values one after the other."""

    lo: tuple[int, int, int]
    hi: tuple[int, int, int]
    old: np.ndarray
    new: np.ndarray
    name: str = ""
    pieces: tuple | None = None

    @property
    def shape(self) -> tuple[int, int, int]:
        """The bounding box's shape (``old.shape`` unless the change is in ``pieces``)."""
        return tuple(b - a for a, b in zip(self.lo, self.hi, strict=False))  # type: ignore[return-value]

    @property
    def slices(self) -> tuple[slice, slice, slice]:
        return tuple(slice(a, b) for a, b in zip(self.lo, self.hi, strict=False))  # type: ignore[return-value]

    @property
    def n_changed(self) -> int:
        return int(np.count_nonzero(self.old != self.new))


def plane_axis_of(plane: int | str) -> int:
    if isinstance(plane, str):
        return PLANE_NAMES[plane.lower()]
    if plane not in (0, 1, 2):
        raise ValueError(f"plane axis must be 0, 1 or 2; got {plane}")
    return int(plane)


def _spacing_zyx(lm: LabelMap) -> np.ndarray:
    return np.asarray(lm.spacing[::-1], dtype=np.float64)  # array-axis order (k, j, i)


def _round_point(lm: LabelMap, p: Sequence[float]) -> np.ndarray:
    q = np.floor(np.asarray(p, dtype=np.float64) + 0.5).astype(np.int64)
    return q


def _commit(lm: LabelMap, lo: Sequence[int], hi: Sequence[int], new_region: np.ndarray,
            name: str) -> Change | None:
    """Write ``new_region`` into box [lo, hi) except on locked voxels; shrink to what changed."""
    sl = tuple(slice(int(a), int(b)) for a, b in zip(lo, hi, strict=False))
    cur = lm.array[sl]
    writable = lm.writable_mask(cur)
    if writable is not None:
        new_region = np.where(writable, new_region, cur)
    diff = new_region != cur
    if not diff.any():
        return None
    # shrink the box to the voxels that really change (smaller undo entries and redraws)
    lo2, hi2 = [], []
    for ax in range(3):
        other = tuple(a for a in range(3) if a != ax)
        idx = np.flatnonzero(diff.any(axis=other))
        lo2.append(int(idx[0]))
        hi2.append(int(idx[-1]) + 1)
    inner = tuple(slice(a, b) for a, b in zip(lo2, hi2, strict=False))
    old = cur[inner].copy()
    new = np.ascontiguousarray(new_region[inner], dtype=lm.array.dtype)
    lm.array[sl][inner] = new
    glo = tuple(int(a) + b for a, b in zip(lo, lo2, strict=False))
    ghi = tuple(int(a) + b for a, b in zip(lo, hi2, strict=False))
    return Change(glo, ghi, old, new, name)  # type: ignore[arg-type]


def apply_values(lm: LabelMap, lo: Sequence[int], values: np.ndarray, pieces: tuple | None = None) -> None:
    """Write ``values`` at the box starting at ``lo``, or into each of ``pieces`` (undo/redo)."""
    patch.write(lm.array, lo, values, pieces)


# ---- brush / eraser / threshold paint -----------------------------------------------------
def paint(
    lm: LabelMap,
    p0: Sequence[float],
    p1: Sequence[float] | None = None,
    *,
    radius_mm: float,
    value: int,
    plane_axis: int | str = AXIAL,
    sphere: bool = False,
    intensity: np.ndarray | None = None,
    intensity_range: tuple[float, float] | None = None,
    erase_only: int | None = None,
    name: str | None = None,
) -> Change | None:
    """Brush (value > 0) or eraser (value == 0) from p0 to p1 (a capsule; one point = a disc).

    ``sphere=False`` paints a disc of ``radius_mm`` in the view plane (slice ``p0[plane_axis]``);
    ``sphere=True`` paints a 3D ball. With ``intensity`` (the image array on the same grid) and
    ``intensity_range`` (lo, hi) only voxels whose intensity is in [lo, hi] are painted
    (threshold paint). ``erase_only``: the eraser removes only that label.
    """
    a = plane_axis_of(plane_axis)
    value = int(value)
    if value:
        lm.ensure_capacity(value)
        if value in lm.labels and lm.labels[value].locked:
            return None
    sp = _spacing_zyx(lm)
    q0 = _round_point(lm, p0)
    q1 = q0 if p1 is None else _round_point(lm, p1)
    if not sphere:
        q1 = q1.copy()
        q1[a] = q0[a]
    r = max(float(radius_mm), 0.0)
    half = np.ceil(r / sp).astype(np.int64)
    if not sphere:
        half[a] = 0
    shape = np.asarray(lm.shape)
    lo = np.maximum(np.minimum(q0, q1) - half, 0)
    hi = np.minimum(np.maximum(q0, q1) + half + 1, shape)
    if np.any(hi <= lo):
        return None
    # distance (mm) of every voxel in the box to the segment q0-q1
    g = [(np.arange(lo[ax], hi[ax]) - q0[ax]) * sp[ax] for ax in range(3)]
    g = [g[0][:, None, None], g[1][None, :, None], g[2][None, None, :]]
    d = (q1 - q0) * sp
    L2 = float(d @ d)
    if L2 > 0:
        t = np.clip((g[0] * d[0] + g[1] * d[1] + g[2] * d[2]) / L2, 0.0, 1.0)
        dist2 = (g[0] - t * d[0]) ** 2 + (g[1] - t * d[1]) ** 2 + (g[2] - t * d[2]) ** 2
    else:
        dist2 = g[0] ** 2 + g[1] ** 2 + g[2] ** 2
    mask = dist2 <= r * r + 1e-9
    sl = tuple(slice(int(x), int(y)) for x, y in zip(lo, hi, strict=False))
    cur = lm.array[sl]
    if intensity is not None and intensity_range is not None:
        img = intensity[sl]
        lo_v, hi_v = intensity_range
        mask &= (img >= lo_v) & (img <= hi_v)
    if value == 0 and erase_only is not None:
        mask &= cur == erase_only
    new = np.where(mask, np.asarray(value, dtype=cur.dtype), cur)
    return _commit(lm, lo, hi, new, name or ("Brush" if value else "Erase"))


# ---- 2D flood fill --------------------------------------------------------------------------
def _plane(arr: np.ndarray, a: int, c: int) -> np.ndarray:
    return np.take(arr, c, axis=a)


def _plane_box(a: int, c: int, u: tuple[int, int], v: tuple[int, int]) -> tuple[list[int], list[int]]:
    """Box [lo, hi) for in-plane ranges u (first other axis) and v (second) on slice c."""
    others = [ax for ax in range(3) if ax != a]
    lo, hi = [0, 0, 0], [0, 0, 0]
    lo[a], hi[a] = c, c + 1
    lo[others[0]], hi[others[0]] = u
    lo[others[1]], hi[others[1]] = v
    return lo, hi


def flood_fill(
    lm: LabelMap,
    seed: Sequence[float],
    *,
    value: int,
    plane_axis: int | str = AXIAL,
    intensity: np.ndarray | None = None,
    tolerance: float | None = None,
    connectivity: int = 4,
) -> Change | None:
    """Fill the connected region around ``seed`` in its slice.

    Without ``intensity`` the region is the seed's current label (fill a hole, relabel a blob);
    with ``intensity`` and ``tolerance`` it is the pixels whose intensity is within
    ``tolerance`` of the seed's."""
    from scipy import ndimage

    a = plane_axis_of(plane_axis)
    q = _round_point(lm, seed)
    if np.any(q < 0) or np.any(q >= np.asarray(lm.shape)):
        return None
    if value:
        lm.ensure_capacity(value)
    c = int(q[a])
    lab2d = _plane(lm.array, a, c)
    others = [ax for ax in range(3) if ax != a]
    su, sv = int(q[others[0]]), int(q[others[1]])
    if intensity is not None and tolerance is not None:
        img2d = _plane(intensity, a, c).astype(np.float64)
        region = np.abs(img2d - img2d[su, sv]) <= tolerance
    else:
        region = lab2d == lab2d[su, sv]
    structure = ndimage.generate_binary_structure(2, 1 if connectivity == 4 else 2)
    comp, _ = ndimage.label(region, structure)
    mask = comp == comp[su, sv]
    objs = ndimage.find_objects(mask.astype(np.uint8))
    if not objs or objs[0] is None:
        return None
    bu, bv = objs[0]
    lo, hi = _plane_box(a, c, (bu.start, bu.stop), (bv.start, bv.stop))
    sl = tuple(slice(x, y) for x, y in zip(lo, hi, strict=False))
    cur = lm.array[sl]
    m = np.expand_dims(mask[bu, bv], a)
    new = np.where(m, np.asarray(value, dtype=cur.dtype), cur)
    return _commit(lm, lo, hi, new, "Flood fill")


# ---- polygon / lasso --------------------------------------------------------------------------
def fill_polygon(
    lm: LabelMap,
    points: Sequence[Sequence[float]],
    *,
    value: int,
    plane_axis: int | str = AXIAL,
    slice_index: int | None = None,
) -> Change | None:
    """Fill the polygon (lasso) through ``points`` (k, j, i) in the slice ``slice_index``
    (default: the first point's slice). value 0 erases inside the polygon."""
    from PIL import Image, ImageDraw

    a = plane_axis_of(plane_axis)
    pts = np.asarray(points, dtype=np.float64)
    if pts.ndim != 2 or len(pts) < 3:
        return None
    if value:
        lm.ensure_capacity(value)
    c = int(np.floor(pts[0, a] + 0.5)) if slice_index is None else int(slice_index)
    if not 0 <= c < lm.shape[a]:
        return None
    others = [ax for ax in range(3) if ax != a]
    nu, nv = lm.shape[others[0]], lm.shape[others[1]]
    uv = pts[:, others]
    u0 = int(max(np.floor(uv[:, 0].min()), 0))
    u1 = int(min(np.ceil(uv[:, 0].max()) + 1, nu))
    v0 = int(max(np.floor(uv[:, 1].min()), 0))
    v1 = int(min(np.ceil(uv[:, 1].max()) + 1, nv))
    if u1 <= u0 or v1 <= v0:
        return None
    img = Image.new("L", (v1 - v0, u1 - u0), 0)  # PIL: (width=v, height=u)
    ImageDraw.Draw(img).polygon([(float(p[1] - v0), float(p[0] - u0)) for p in uv], fill=1, outline=1)
    mask = np.asarray(img, dtype=bool)
    lo, hi = _plane_box(a, c, (u0, u1), (v0, v1))
    sl = tuple(slice(x, y) for x, y in zip(lo, hi, strict=False))
    cur = lm.array[sl]
    new = np.where(np.expand_dims(mask, a), np.asarray(value, dtype=cur.dtype), cur)
    return _commit(lm, lo, hi, new, "Polygon fill" if value else "Polygon erase")


# ---- islands --------------------------------------------------------------------------------
def _components(mask: np.ndarray, connectivity: int):
    from scipy import ndimage

    structure = ndimage.generate_binary_structure(mask.ndim, connectivity)
    comp, n = ndimage.label(mask, structure)
    sizes = np.bincount(comp.ravel())
    return comp, n, sizes


def _label_box(lm: LabelMap, value: int) -> tuple[list[int], list[int]] | None:
    from scipy import ndimage

    objs = ndimage.find_objects((lm.array == value).astype(np.uint8))
    if not objs or objs[0] is None:
        return None
    return [s.start for s in objs[0]], [s.stop for s in objs[0]]


def remove_small_islands(lm: LabelMap, value: int, min_voxels: int, *, connectivity: int = 1) -> Change | None:
    """Erase the connected pieces (3D, face-connected by default) of ``value`` smaller than
    ``min_voxels``."""
    box = _label_box(lm, value)
    if box is None:
        return None
    lo, hi = box
    sl = tuple(slice(x, y) for x, y in zip(lo, hi, strict=False))
    cur = lm.array[sl]
    comp, _, sizes = _components(cur == value, connectivity)
    small = sizes < int(min_voxels)
    small[0] = False
    new = np.where(small[comp], np.asarray(0, dtype=cur.dtype), cur)
    return _commit(lm, lo, hi, new, "Remove small islands")


def keep_largest_component(lm: LabelMap, value: int, *, connectivity: int = 1) -> Change | None:
    """Erase every connected piece of ``value`` but the largest."""
    box = _label_box(lm, value)
    if box is None:
        return None
    lo, hi = box
    sl = tuple(slice(x, y) for x, y in zip(lo, hi, strict=False))
    cur = lm.array[sl]
    comp, n, sizes = _components(cur == value, connectivity)
    if n <= 1:
        return None
    sizes[0] = 0
    keep = int(np.argmax(sizes))
    new = np.where((comp != keep) & (comp != 0), np.asarray(0, dtype=cur.dtype), cur)
    return _commit(lm, lo, hi, new, "Keep largest component")


# ---- slice interpolation / copy ----------------------------------------------------------------
def labelled_slices(lm: LabelMap, value: int, plane_axis: int | str = AXIAL) -> list[int]:
    """Indices of the slices (along ``plane_axis``) that contain ``value``."""
    a = plane_axis_of(plane_axis)
    other = tuple(ax for ax in range(3) if ax != a)
    return [int(i) for i in np.flatnonzero((lm.array == value).any(axis=other))]


def _signed_distance(mask: np.ndarray, sampling: Sequence[float]) -> np.ndarray:
    from scipy import ndimage

    inside = ndimage.distance_transform_edt(mask, sampling=sampling)
    outside = ndimage.distance_transform_edt(~mask, sampling=sampling)
    return outside - inside  # < 0 inside, > 0 outside


def interpolate_slices(
    lm: LabelMap, value: int, *, plane_axis: int | str = AXIAL, k0: int | None = None, k1: int | None = None
) -> Change | None:
    """Shape-based interpolation of ``value`` between slices k0 and k1 (exclusive): linear
    blend of the signed distance maps of the two slices' masks. Without k0/k1, every gap
    between consecutive labelled slices is filled. Voxels of other labels are not overwritten;
    voxels of ``value`` outside the interpolated shape in between are cleared."""
    a = plane_axis_of(plane_axis)
    if k0 is None or k1 is None:
        ks = labelled_slices(lm, value, a)
        pairs = [(x, y) for x, y in itertools.pairwise(ks) if y - x > 1]
    else:
        k0, k1 = sorted((int(k0), int(k1)))
        pairs = [(k0, k1)] if k1 - k0 > 1 else []
    if not pairs:
        return None
    lo_all, hi_all = min(p[0] for p in pairs), max(p[1] for p in pairs) + 1
    others = [ax for ax in range(3) if ax != a]
    sp = _spacing_zyx(lm)[others]
    sub = np.moveaxis(lm.array, a, 0)  # view: [slice, u, v]
    block_new = np.moveaxis(lm.array, a, 0)[lo_all:hi_all].copy()
    for ka, kb in pairs:
        m0, m1 = sub[ka] == value, sub[kb] == value
        if not m0.any() or not m1.any():
            raise ValueError(f"slices {ka} and {kb} must both contain label {value}")
        both = m0 | m1
        uu = np.flatnonzero(both.any(axis=1))
        vv = np.flatnonzero(both.any(axis=0))
        u0, u1 = max(uu[0] - 1, 0), min(uu[-1] + 2, both.shape[0])
        v0, v1 = max(vv[0] - 1, 0), min(vv[-1] + 2, both.shape[1])
        s0 = _signed_distance(m0[u0:u1, v0:v1], sp)
        s1 = _signed_distance(m1[u0:u1, v0:v1], sp)
        for k in range(ka + 1, kb):
            t = (k - ka) / (kb - ka)
            m = (1 - t) * s0 + t * s1 < 0
            sl = block_new[k - lo_all]
            inner = sl[u0:u1, v0:v1]
            inner[(inner == value) & ~m] = 0
            inner[m & (inner == 0)] = value
            # clear value outside the crop (it lies outside both masks' box)
            outside = np.ones(sl.shape, bool)
            outside[u0:u1, v0:v1] = False
            sl[outside & (sl == value)] = 0
    lo = [0, 0, 0]
    hi = list(lm.shape)
    lo[a], hi[a] = lo_all, hi_all
    return _commit(lm, lo, hi, np.moveaxis(block_new, 0, a), "Interpolate slices")


def copy_slice(
    lm: LabelMap,
    *,
    src: int,
    dst: int,
    plane_axis: int | str = AXIAL,
    value: int | None = None,
    replace: bool = False,
) -> Change | None:
    """Copy labels from slice ``src`` into slice ``dst`` (e.g. the previous slice).

    ``value`` None copies every label, else only that one. Existing labels in ``dst`` are
    kept unless ``replace`` (then ``dst`` becomes ``src`` for the copied label(s))."""
    a = plane_axis_of(plane_axis)
    n = lm.shape[a]
    if not (0 <= src < n and 0 <= dst < n) or src == dst:
        return None
    s = _plane(lm.array, a, src)
    d = _plane(lm.array, a, dst)
    if value is None:
        new = s.copy() if replace else np.where(s != 0, s, d)
    else:
        sel = s == value
        new = d.copy()
        if replace:
            new[(d == value) & ~sel] = 0
        new[sel] = value
    lo, hi = _plane_box(a, dst, (0, s.shape[0]), (0, s.shape[1]))
    return _commit(lm, lo, hi, np.expand_dims(new, a), "Copy slice")


def set_region(lm: LabelMap, mask: np.ndarray, value: int, name: str = "Set region") -> Change | None:
    """Set every voxel of a full-size boolean ``mask`` to ``value`` (e.g. from a threshold)."""
    from scipy import ndimage

    objs = ndimage.find_objects(mask.astype(np.uint8))
    if not objs or objs[0] is None:
        return None
    sl = objs[0]
    cur = lm.array[sl]
    new = np.where(mask[sl], np.asarray(value, dtype=cur.dtype), cur)
    return _commit(lm, [s.start for s in sl], [s.stop for s in sl], new, name)
