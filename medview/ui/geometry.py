"""How a Volume is laid out on screen in each view (pure numpy; no Qt, no drawing).

Views show the voxel grid without resampling. Each voxel axis (i, j, k) is assigned to the
patient axis (LPS x, y, z) it points closest to (oblique volumes: nearest axis); a view then
shows the two voxel axes of its plane, flipped so that the display follows the radiological
convention:

=========  ==================  ==================  ===============
view       screen right        screen down         through-plane
=========  ==================  ==================  ===============
axial      patient left  (+x)  posterior     (+y)  S/I (z)
coronal    patient left  (+x)  inferior      (-z)  A/P (y)
sagittal   posterior     (+y)  inferior      (-z)  L/R (x)
=========  ==================  ==================  ===============

"Scene" coordinates are millimetres along the screen axes, (0, 0) at the top-left corner of the
top-left voxel, y growing downwards.
"""

from __future__ import annotations

from dataclasses import dataclass
from itertools import permutations

import numpy as np

VIEWS = ("axial", "coronal", "sagittal")

# per view: (LPS axis shown horizontally, sign meaning "screen right", LPS axis vertical, sign
# meaning "screen down", LPS axis through the plane)
_VIEW_AXES = {
    "axial": (0, +1, 1, +1, 2),
    "coronal": (0, +1, 2, -1, 1),
    "sagittal": (1, +1, 2, -1, 0),
}
_LETTERS = (("L", "R"), ("P", "A"), ("S", "I"))  # positive / negative LPS direction


def voxel_to_patient_axes(direction: np.ndarray) -> tuple[int, int, int]:
    """For voxel axes (i, j, k): the LPS axis each one is closest to (a permutation)."""
    d = np.abs(np.asarray(direction, float).reshape(3, 3))
    best, best_score = (0, 1, 2), -1.0
    for perm in permutations(range(3)):  # perm[c] = patient axis of voxel axis c
        score = sum(d[perm[c], c] for c in range(3))
        if score > best_score + 1e-12:
            best, best_score = perm, score
    return best  # type: ignore[return-value]


def direction_letters(vec: np.ndarray, threshold: float = 0.3) -> str:
    """'L', 'A', 'S'... for an LPS vector; oblique vectors get a second letter (e.g. 'LA')."""
    v = np.asarray(vec, float)
    n = np.linalg.norm(v)
    if n == 0:
        return ""
    v = v / n
    order = np.argsort(-np.abs(v))
    out = ""
    for rank, ax in enumerate(order):
        if rank > 0 and abs(v[ax]) < threshold:
            break
        out += _LETTERS[ax][0] if v[ax] > 0 else _LETTERS[ax][1]
        if rank == 1:
            break
    return out


@dataclass(frozen=True)
class ViewGeometry:
    view: str
    normal_axis: int  # voxel axis (0=i, 1=j, 2=k) through the plane
    h_axis: int  # voxel axis shown horizontally
    v_axis: int  # voxel axis shown vertically
    h_flip: bool  # screen x grows as the voxel index decreases
    v_flip: bool
    h_size: int
    v_size: int
    n_slices: int
    h_spacing: float
    v_spacing: float
    labels: dict  # "left", "right", "top", "bottom" -> letters

    @property
    def transposed(self) -> bool:
        """True when the 2D slice array's rows run horizontally on screen."""
        rows_axis, _cols_axis = slice_axes(self.normal_axis)
        return rows_axis == self.h_axis

    @property
    def width_mm(self) -> float:
        return self.h_size * self.h_spacing

    @property
    def height_mm(self) -> float:
        return self.v_size * self.v_spacing

    # ---- voxel <-> scene ------------------------------------------------------------------
    def voxel_to_scene(self, ijk) -> tuple[float, float]:
        """Continuous voxel index (i, j, k; voxel centres at integers) -> scene mm."""
        p = np.asarray(ijk, float)
        return (self._to_scene(p[self.h_axis] + 0.5, self.h_size, self.h_flip, self.h_spacing),
                self._to_scene(p[self.v_axis] + 0.5, self.v_size, self.v_flip, self.v_spacing))

    def scene_to_voxel(self, x: float, y: float, slice_index: float) -> np.ndarray:
        """Scene mm (+ slice index along the normal) -> continuous voxel index (i, j, k)."""
        out = np.zeros(3)
        out[self.h_axis] = self._from_scene(x, self.h_size, self.h_flip, self.h_spacing) - 0.5
        out[self.v_axis] = self._from_scene(y, self.v_size, self.v_flip, self.v_spacing) - 0.5
        out[self.normal_axis] = slice_index
        return out

    @staticmethod
    def _to_scene(t: float, n: int, flip: bool, sp: float) -> float:
        return (n - t) * sp if flip else t * sp

    @staticmethod
    def _from_scene(s: float, n: int, flip: bool, sp: float) -> float:
        return n - s / sp if flip else s / sp

    def item_transform(self) -> tuple[float, float, float, float, float, float]:
        """(m11, m12, m21, m22, dx, dy) of the QTransform mapping a row-major 2D slice image
        (local x = column, y = row, pixel (r, c) covering [c, c+1] x [r, r+1]) to scene mm."""
        sh = -self.h_spacing if self.h_flip else self.h_spacing
        sv = -self.v_spacing if self.v_flip else self.v_spacing
        dx = self.h_size * self.h_spacing if self.h_flip else 0.0
        dy = self.v_size * self.v_spacing if self.v_flip else 0.0
        if not self.transposed:  # x' = sh*x, y' = sv*y
            return (sh, 0.0, 0.0, sv, dx, dy)
        return (0.0, sv, sh, 0.0, dx, dy)  # x' = sh*y, y' = sv*x

    def slice_rc(self, ijk) -> tuple[float, float]:
        """Continuous (row, col) in this view's 2D slice array of a voxel position."""
        rows_axis, cols_axis = slice_axes(self.normal_axis)
        p = np.asarray(ijk, float)
        return float(p[rows_axis]), float(p[cols_axis])


def slice_axes(normal_axis: int) -> tuple[int, int]:
    """(rows voxel axis, cols voxel axis) of the 2D array ``take_slice`` returns."""
    return {2: (1, 0), 1: (2, 0), 0: (2, 1)}[normal_axis]


def take_slice(array: np.ndarray, normal_axis: int, index: int) -> np.ndarray:
    """2D slice of a [k, j, i(, c)] array perpendicular to voxel axis ``normal_axis`` (a view)."""
    if normal_axis == 2:
        return array[index]
    if normal_axis == 1:
        return array[:, index]
    return array[:, :, index]


def view_geometry(view: str, shape_zyx: tuple[int, int, int], spacing, direction) -> ViewGeometry:
    """Geometry of ``view`` for a volume of array shape (k, j, i), spacing (x, y, z), direction."""
    h_pat, h_sign, v_pat, v_sign, n_pat = _VIEW_AXES[view]
    d = np.asarray(direction, float).reshape(3, 3)
    perm = voxel_to_patient_axes(d)  # voxel axis -> patient axis
    inv = {p: c for c, p in enumerate(perm)}  # patient axis -> voxel axis
    h_axis, v_axis, n_axis = inv[h_pat], inv[v_pat], inv[n_pat]
    h_flip = d[h_pat, h_axis] * h_sign < 0
    v_flip = d[v_pat, v_axis] * v_sign < 0
    size_ijk = (shape_zyx[2], shape_zyx[1], shape_zyx[0])
    right = d[:, h_axis] * (-1 if h_flip else 1)
    down = d[:, v_axis] * (-1 if v_flip else 1)
    labels = {
        "right": direction_letters(right),
        "left": direction_letters(-right),
        "bottom": direction_letters(down),
        "top": direction_letters(-down),
    }
    return ViewGeometry(
        view=view, normal_axis=n_axis, h_axis=h_axis, v_axis=v_axis, h_flip=bool(h_flip),
        v_flip=bool(v_flip), h_size=int(size_ijk[h_axis]), v_size=int(size_ijk[v_axis]),
        n_slices=int(size_ijk[n_axis]), h_spacing=float(spacing[h_axis]),
        v_spacing=float(spacing[v_axis]), labels=labels,
    )
