"""Moving images between a Volume's grid and a model's grid, and back, in world coordinates.

3D models: ``to_model_grid`` reorients (axis permutation/flip only, no interpolation, like
ITK's DICOMOrient and MONAI's Orientation), resamples to the manifest spacing (linear) and
optionally resizes to a fixed size; it returns the model-grid Volume, whose geometry (origin,
spacing, direction) is exact. ``to_source_grid`` resamples any model-grid result back onto the
source Volume's grid through world coordinates (nearest for labels, linear for probabilities and
heatmaps), so overlays land on the same millimetres as the image they came from.

2D models run on the source slices as stored (k by k); their in-plane resize is the
pixel-centre mapping of :func:`medview.inference.preprocess.resize`, inverted the same way.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Mapping, Sequence

import numpy as np

from medview.inference import preprocess
from medview.io.volume import Volume


def _sitk():
    import SimpleITK as sitk

    return sitk


def _scalar_float(volume: Volume) -> Volume:
    arr = volume.array
    if volume.is_rgb:
        arr = preprocess.build_channels(arr, "grey", rgb=True)[0]
    return Volume(arr.astype(np.float32, copy=False), volume.spacing, volume.origin, volume.direction, {})


def reorient(volume: Volume, code: str) -> Volume:
    """Permute/flip the axes so they point to ``code`` (e.g. "RAS"); exact, no interpolation."""
    sitk = _sitk()
    img = sitk.DICOMOrient(volume.to_sitk(), code.upper())
    return Volume.from_sitk(img)


# the letter an index axis points TO in MedView's LPS world (ITK's orientation codes): x, y, z
_LETTERS = (("L", "R"), ("P", "A"), ("S", "I"))


def orientation_code(direction: np.ndarray) -> str:
    """ITK-style code ("LPS", "RAS", ...) of a direction matrix (columns = the i, j, k axes)."""
    d = np.asarray(direction, np.float64).reshape(3, 3)
    out = ""
    for i in range(3):
        w = int(np.argmax(np.abs(d[:, i])))
        out += _LETTERS[w][0 if d[w, i] > 0 else 1]
    return out


@dataclass(frozen=True)
class AxisMap:
    """Permute/flip a (z, y, x) array into another orientation, exactly, and back.

    New array axis ``a`` is source array axis ``perm[a]``, reversed where ``flip[a]``."""

    perm: tuple[int, int, int]
    flip: tuple[bool, bool, bool]

    @property
    def identity(self) -> bool:
        return self.perm == (0, 1, 2) and not any(self.flip)

    def forward(self, arr: np.ndarray) -> np.ndarray:
        out = np.transpose(arr, self.perm + tuple(range(3, arr.ndim)))
        return out[tuple(slice(None, None, -1) if f else slice(None) for f in self.flip)]

    def backward(self, arr: np.ndarray) -> np.ndarray:
        arr = arr[tuple(slice(None, None, -1) if f else slice(None) for f in self.flip)]
        inv = tuple(int(v) for v in np.argsort(self.perm))
        return np.transpose(arr, inv + tuple(range(3, arr.ndim)))

    def point(self, p, source_shape) -> tuple[float, float, float]:
        """A (z, y, x) voxel position of the source array in the new array."""
        q = [float(p[self.perm[a]]) for a in range(3)]
        return tuple((source_shape[self.perm[a]] - 1) - q[a] if self.flip[a] else q[a] for a in range(3))

    def spacing(self, spacing_zyx) -> tuple[float, float, float]:
        return tuple(float(spacing_zyx[self.perm[a]]) for a in range(3))


def axis_map(direction: np.ndarray, code: str) -> AxisMap:
    """The AxisMap that brings an array with ``direction`` to orientation ``code`` (as
    ``reorient`` / ITK's DICOMOrient do; axes that are not axis-aligned go to the nearest)."""
    d = np.asarray(direction, np.float64).reshape(3, 3)
    src = [(int(np.argmax(np.abs(d[:, i]))), bool(d[int(np.argmax(np.abs(d[:, i]))), i] > 0)) for i in range(3)]
    code = code.upper()
    perm, flip = [0, 0, 0], [False, False, False]
    for j, letter in enumerate(code):  # new index axis j (x, y, z) points to `letter`
        w = next(k for k, pair in enumerate(_LETTERS) if letter in pair)
        positive = letter == _LETTERS[w][0]
        i = next((i for i, (wi, _) in enumerate(src) if wi == w), None)
        if i is None:
            raise ValueError(f"direction {d.tolist()} has no axis along {letter}")
        a, b = 2 - j, 2 - i  # array axes are (z, y, x) = index axes (k, j, i)
        perm[a] = b
        flip[a] = src[i][1] != positive
    return AxisMap(tuple(perm), tuple(flip))


def resample(volume: Volume, spacing: Sequence[float], order: int = 1) -> Volume:
    """Resample to new (x, y, z) spacing along the same axes; voxel 0's centre stays put."""
    sitk = _sitk()
    spacing = tuple(float(s) for s in spacing)
    if np.allclose(spacing, volume.spacing, rtol=1e-6, atol=1e-9):
        return volume
    size = [max(1, int(round(n * o / s))) for n, o, s in zip(volume.size_xyz, volume.spacing, spacing, strict=False)]
    img = volume.to_sitk()
    interp = sitk.sitkLinear if order == 1 else sitk.sitkNearestNeighbor
    out = sitk.Resample(
        img, size, sitk.Transform(), interp, volume.origin, spacing, tuple(volume.direction.reshape(-1)), 0.0,
        img.GetPixelID(),
    )
    return Volume.from_sitk(out)


def resized_geometry(volume: Volume, size_zyx: Sequence[int]) -> tuple[tuple, tuple]:
    """(spacing, origin) of ``volume`` resized to ``size_zyx`` with pixel-centre mapping."""
    new_xyz = np.asarray(tuple(size_zyx)[::-1], dtype=np.float64)
    old_xyz = np.asarray(volume.size_xyz, dtype=np.float64)
    old_sp = np.asarray(volume.spacing)
    new_sp = old_sp * old_xyz / new_xyz
    # corner of voxel 0 stays put: origin' = origin + D @ ((new_sp - old_sp) / 2)
    origin = np.asarray(volume.origin) + volume.direction @ ((new_sp - old_sp) / 2.0)
    return tuple(new_sp), tuple(origin)


def to_model_grid(volume: Volume, input_spec: Mapping[str, Any]) -> tuple[np.ndarray, Volume]:
    """3D recipe: reorient -> resample -> channels -> normalise -> resize.

    Returns ``(x, grid)`` where ``x`` is the channel-first float32 array ``(C, D, H, W)`` the
    network sees and ``grid`` a Volume (zeros, same spatial shape) carrying the model grid's
    geometry. A training loader for a 3D model should call this too.
    """
    # 3D colour volumes do not occur in practice; they are reduced to grey (BT.601) first
    work = _scalar_float(volume)
    rgb = False
    ori = input_spec.get("orientation")
    if ori:
        work = reorient(work, str(ori))
    sp = input_spec.get("spacing")
    if sp:
        work = resample(work, list(sp)[:3] if len(sp) >= 3 else list(sp) + [work.spacing[2]])
    x = preprocess.build_channels(work.array, input_spec, rgb=rgb)
    x = preprocess.normalize(x, input_spec.get("normalization"))
    grid = work
    size = input_spec.get("size")
    if size:
        x = preprocess.resize(x, size, order=1)
        spacing, origin = resized_geometry(work, size)
        grid = Volume(np.zeros(tuple(size), np.uint8), spacing, origin, work.direction)
    else:
        grid = Volume(np.zeros(work.shape, np.uint8), work.spacing, work.origin, work.direction)
    return np.ascontiguousarray(x, dtype=np.float32), grid


def to_source_grid(array: np.ndarray, grid: Volume, source: Volume, order: int) -> np.ndarray:
    """Resample a model-grid array (D, H, W) onto ``source``'s grid through world coordinates.

    ``order`` 0 = nearest (labels), 1 = linear (probabilities, heatmaps). Outside the model
    grid the result is 0.
    """
    sitk = _sitk()
    if grid.same_geometry(source) and array.shape == source.shape:
        return array
    moving = Volume(np.ascontiguousarray(array), grid.spacing, grid.origin, grid.direction).to_sitk()
    interp = sitk.sitkNearestNeighbor if order == 0 else sitk.sitkLinear
    ref = sitk.Image(list(source.size_xyz), sitk.sitkUInt8)
    ref.SetSpacing(source.spacing)
    ref.SetOrigin(source.origin)
    ref.SetDirection(tuple(source.direction.reshape(-1)))
    out = sitk.Resample(moving, ref, sitk.Transform(), interp, 0.0, moving.GetPixelID())
    return sitk.GetArrayFromImage(out)


def slice_target_size(shape_hw: Sequence[int], spacing_xy: Sequence[float], input_spec: Mapping[str, Any]):
    """In-plane (H, W) a 2D model wants for a slice of ``shape_hw`` (None = keep)."""
    size = input_spec.get("size")
    if size:
        return (int(size[0]), int(size[1]))
    sp = input_spec.get("spacing")
    if sp:
        sx, sy = float(sp[0]), float(sp[1])
        h = max(1, int(round(shape_hw[0] * spacing_xy[1] / sy)))
        w = max(1, int(round(shape_hw[1] * spacing_xy[0] / sx)))
        if (h, w) != tuple(shape_hw):
            return (h, w)
    return None
