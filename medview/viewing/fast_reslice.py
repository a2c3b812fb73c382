"""Interactive-speed reslicing: a Reslicer keeps one SimpleITK copy of the image and resamples
planes and thick slabs with ITK's multithreaded ResampleImageFilter (linear), then combines the
slab planes with numpy. Labels are sampled nearest by rounding the plane's index grid into the
live numpy array, so brush edits show without rebuilding anything.

Same geometry as :func:`medview.viewing.reslice.reslice` (the map_coordinates reference; tests
compare the two); about 10x faster for an oblique 10 mm MIP slab of a 300x512x512 volume.
"""

from __future__ import annotations

import numpy as np

from medview.viewing.plane import Plane
from medview.viewing.reslice import SLAB_MODES, slab_offsets


class Reslicer:
    """Reslices one Volume (its ``array`` must not be replaced; edits to *label* arrays passed
    to :meth:`labels` are always seen)."""

    def __init__(self, volume) -> None:
        import SimpleITK as sitk

        if volume.is_rgb:
            raise ValueError("Reslicer needs a grey volume (RGB images are shown unresliced)")
        self.volume = volume
        self._sitk = sitk
        self._image = volume.to_sitk()  # one copy; ITK reads it on all cores
        self._fill = float(volume.array.min()) if volume.array.size else 0.0
        self._filtered = None  # the image pre-filtered for projected slabs, and its key
        self._filtered_key: tuple | None = None
        self._pending_key: tuple | None = None
        self._label_images: dict = {}  # layer -> (key, ITK copy) for labels asked twice unchanged
        self._last_label_key: dict = {}
        self._to_index = np.linalg.inv(volume.direction @ np.diag(volume.spacing))

    def image(self, plane: Plane, slab_mm: float = 0.0, mode: str = "mip",
              step_mm: float | None = None, fill: float | None = None,
              exact: bool = True, cubic: bool = False) -> np.ndarray:
        """(h, w) float32 linear (``cubic``: cubic B-spline) resample of the image on ``plane`` (slab: ``mode`` over
        ``slab_mm`` centred on the plane, samples ``step_mm`` apart, default one voxel along the
        plane normal, as a ray caster steps).

        ``exact=False`` (for interaction): the same slab, but projected along the voxel axis
        nearest the normal from a volume pre-filtered along that axis (cached), so a frame costs
        one plane; a feature ``d`` mm off the plane then shows ``d * tan(tilt)`` mm aside. When
        the tilt changes the width the filter needs by more than 25 % or the nearest voxel axis,
        it is rebuilt on a background thread while frames keep using the old one."""
        if mode not in SLAB_MODES:
            raise ValueError(f"slab mode must be one of {SLAB_MODES}, got {mode!r}")
        if not exact and slab_mm > 0:
            return self._projected_slab(plane, slab_mm, mode, fill)
        return self._resample(self._image, plane, slab_mm, mode, step_mm, fill, cubic)

    def _projected_slab(self, plane: Plane, slab_mm: float, mode: str, fill) -> np.ndarray:
        normal = plane.normal / np.linalg.norm(plane.normal)
        cosines = np.abs(self.volume.direction.T @ normal)  # voxel axes (i, j, k) vs the normal
        axis = int(np.argmax(cosines))
        # the slab between the planes +-slab/2 meets a line along that axis over slab/cos mm
        width = max(1, int(round(slab_mm / (cosines[axis] * self.volume.spacing[axis]))) | 1)
        key = (axis, width, mode, float(slab_mm))
        old = self._filtered_key
        # a new thickness or mode: build it now (one pass over the volume, ~0.5 s)
        usable = old is not None and old[2:] == key[2:]
        if not usable:
            self._filtered, self._filtered_key = self._build_filtered(key), key
        elif old[0] != axis or abs(old[1] - width) > 0.25 * width:
            # the tilt moved the slab to another voxel axis or off the cached width: rebuild it
            # on another thread and keep drawing with the old one (a frame never waits; the
            # exact slab follows on release)
            self._rebuild_filtered_later(key)
        return self._resample(self._filtered, plane, 0.0, mode, None, fill)

    def _build_filtered(self, key):
        axis, width, mode, _slab = key
        return self.volume.like(sliding_window(self.volume.array, width, 2 - axis, mode)).to_sitk()

    def _rebuild_filtered_later(self, key) -> None:
        import threading

        if self._pending_key == key:
            return
        self._pending_key = key

        def work():
            img = self._build_filtered(key)
            if self._pending_key == key:  # not superseded meanwhile
                self._filtered, self._filtered_key = img, key  # one assignment each: atomic
                self._pending_key = None

        t = threading.Thread(target=work, name="slab-prefilter", daemon=True)
        t.start()
        self._pending_thread = t

    def wait_prefilter(self, timeout: float | None = None) -> None:
        """For tests and benchmarks: until a background slab pre-filter is done."""
        t = getattr(self, "_pending_thread", None)
        if t is not None:
            t.join(timeout)

    def _resample(self, image, plane: Plane, slab_mm: float, mode: str, step_mm, fill,
                  cubic: bool = False) -> np.ndarray:
        sitk = self._sitk
        step = float(step_mm or self.voxel_step_mm(plane.normal))
        offsets = slab_offsets(slab_mm, step)
        n = len(offsets)
        depth_step = float(offsets[1] - offsets[0]) if n > 1 else step
        u, v, w = (np.asarray(x, float) for x in (plane.u, plane.v, plane.normal))
        origin = plane.plane_to_world(0, 0, offsets[0])
        # output axes (u, depth, v): the slab samples of one row are made one after another,
        # so the voxels they read are still in cache (3-5x faster than plane after plane)
        f = sitk.ResampleImageFilter()
        f.SetSize((int(plane.width), n, int(plane.height)))
        f.SetOutputSpacing((float(plane.spacing), depth_step, float(plane.spacing)))
        f.SetOutputDirection(tuple(np.stack([u, w, v], axis=1).reshape(-1)))
        f.SetOutputOrigin(tuple(float(x) for x in origin))
        f.SetInterpolator(sitk.sitkBSpline if cubic else sitk.sitkLinear)
        f.SetOutputPixelType(sitk.sitkFloat32)
        f.SetDefaultPixelValue(self._fill if fill is None else float(fill))
        out = f.Execute(image)  # keep it alive: the array below is a view of its buffer
        stack = sitk.GetArrayViewFromImage(out)  # (h, n, w)
        if n == 1:
            return np.array(stack[:, 0])
        if mode == "mip":
            return stack.max(axis=1)
        if mode == "minip":
            return stack.min(axis=1)
        return stack.mean(axis=1, dtype=np.float32)

    def _nearest(self, image, plane: Plane, dtype) -> np.ndarray:
        sitk = self._sitk
        f = sitk.ResampleImageFilter()
        f.SetSize((int(plane.width), int(plane.height), 1))
        f.SetOutputSpacing((float(plane.spacing), float(plane.spacing), 1.0))
        u, v, w = (np.asarray(x, float) for x in (plane.u, plane.v, plane.normal))
        f.SetOutputDirection(tuple(np.stack([u, v, w], axis=1).reshape(-1)))
        f.SetOutputOrigin(tuple(float(x) for x in plane.plane_to_world(0, 0)))
        f.SetInterpolator(sitk.sitkNearestNeighbor)
        f.SetOutputPixelType(_sitk_pixel_type(sitk, dtype))
        f.SetDefaultPixelValue(0)
        out = f.Execute(image)
        return np.array(sitk.GetArrayViewFromImage(out)[0])

    def voxel_step_mm(self, direction) -> float:
        """Length (mm) of one voxel along ``direction`` (a unit LPS vector)."""
        return float(1.0 / max(np.linalg.norm(self._to_index @ np.asarray(direction, float)), 1e-9))

    def index_grid(self, plane: Plane) -> np.ndarray:
        """(3, h, w) continuous (k, j, i) array indices of the plane's pixel centres."""
        u, v = np.asarray(plane.u, float), np.asarray(plane.v, float)
        m = self._to_index
        o = m @ (plane._origin() - np.asarray(self.volume.origin))
        du, dv = m @ (u * plane.spacing), m @ (v * plane.spacing)
        cols = np.arange(plane.width, dtype=np.float32)
        rows = np.arange(plane.height, dtype=np.float32)
        ijk = (o.astype(np.float32)[:, None, None] + du.astype(np.float32)[:, None, None] * cols[None, None, :]
               + dv.astype(np.float32)[:, None, None] * rows[None, :, None])
        return ijk[::-1]

    def labels(self, array: np.ndarray, plane: Plane, key=None) -> np.ndarray:
        """(h, w) nearest sample of a [k, j, i] label (or heatmap) array on ``plane``; 0 outside.

        ``key`` names the array's content (e.g. layer name + edit count): asked twice with the
        same key, an ITK copy is kept and sampled (~5x faster); a new key (an edit) samples the
        live array with numpy until it repeats."""
        if array.shape[:3] != self.volume.shape:
            raise ValueError(f"array shape {array.shape} is not the image grid {self.volume.shape}")
        if key is not None and array.ndim == 3:
            cached = self._label_images.get(key[0] if isinstance(key, tuple) else key)
            if cached is not None and cached[0] == key:
                return self._nearest(cached[1], plane, array.dtype)
            if self._last_label_key.get(id(array)) == key:
                img = self.volume.like(array).to_sitk()
                self._label_images[key[0] if isinstance(key, tuple) else key] = (key, img)
                return self._nearest(img, plane, array.dtype)
            self._last_label_key[id(array)] = key
        g = self.index_grid(plane)
        g += 0.5  # floor(x + 0.5) = nearest; int32 math is half the memory traffic of int64
        flat = np.zeros(g.shape[1:], np.int64)
        inside = np.ones(g.shape[1:], bool)
        for ax, (n, stride) in enumerate(zip(array.shape[:3], (array.shape[1] * array.shape[2],
                                                               array.shape[2], 1), strict=True)):
            c = np.floor(g[ax]).astype(np.int32)
            inside &= (c >= 0) & (c < n)
            np.clip(c, 0, n - 1, out=c)
            flat += c.astype(np.int64) * stride
        out = np.take(array.reshape(-1, *array.shape[3:]), flat, axis=0)
        out[~inside] = 0
        return out


def _sitk_pixel_type(sitk, dtype):
    return {np.dtype(np.uint8): sitk.sitkUInt8, np.dtype(np.uint16): sitk.sitkUInt16,
            np.dtype(np.int16): sitk.sitkInt16, np.dtype(np.int32): sitk.sitkInt32,
            np.dtype(np.uint32): sitk.sitkUInt32, np.dtype(np.float32): sitk.sitkFloat32,
            np.dtype(np.float64): sitk.sitkFloat64}.get(np.dtype(dtype), sitk.sitkFloat32)


def sliding_window(array: np.ndarray, width: int, axis: int, mode: str) -> np.ndarray:
    """Max / min / mean over a centred window of ``width`` (odd) elements along ``axis``,
    windows cut at the ends. Max and min double their window per pass (log2(width) numpy
    passes over the whole array) instead of one pass per element."""
    n, half = array.shape[axis], width // 2
    if mode == "mean":  # (rare) one O(n) pass; windows repeat the end values
        from scipy import ndimage

        return ndimage.uniform_filter1d(array, width, axis=axis, mode="nearest", output=np.float32)

    def cut(lo, hi):  # array[lo:hi] along ``axis`` (no moveaxis: the copies stay in memory order)
        return (slice(None),) * axis + (slice(lo, hi),)

    op = np.maximum if mode == "mip" else np.minimum
    # edge values repeated ``half`` times at both ends (= windows cut at the ends for max/min)
    m = np.concatenate([np.repeat(array[cut(0, 1)], half, axis), array,
                        np.repeat(array[cut(n - 1, n)], half, axis)], axis=axis)
    # m[x] = op over the forward window [x, x + p), p doubling while p <= width
    p = 1
    while 2 * p <= width:
        op(m[cut(0, -p)], m[cut(p, None)], out=m[cut(0, -p)])
        p *= 2
    # centred window of x = forward windows from x and from x + width - p (they overlap)
    return op(m[cut(0, n)], m[cut(width - p, width - p + n)])
