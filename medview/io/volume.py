"""Volume: an image array plus its place in the patient (LPS world, millimetres).

Conventions (the same as DICOM and ITK, so nothing is flipped on the way in or out):
- ``array`` is indexed ``[k, j, i]`` (slice, row, column), i.e. (z, y, x); RGB images add a last
  axis of 3 channels: ``[k, j, i, c]``.
- ``spacing`` and ``origin`` are in (x, y, z) = (i, j, k) order, millimetres.
- ``direction`` is a 3x3 matrix whose *columns* are the LPS unit vectors of the i, j and k
  axes (ITK's GetDirection reshaped row-major gives exactly this matrix).
- world = origin + direction @ (spacing * [i, j, k]).

Every label map, heatmap or prediction made from a Volume shares its geometry through
``like()``, so overlays can never drift from the image they were computed on.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np


@dataclass
class Volume:
    array: np.ndarray
    spacing: tuple[float, float, float] = (1.0, 1.0, 1.0)
    origin: tuple[float, float, float] = (0.0, 0.0, 0.0)
    direction: np.ndarray = field(default_factory=lambda: np.eye(3))
    meta: dict[str, Any] = field(default_factory=dict)
    warnings: list[str] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.spacing = tuple(float(s) for s in self.spacing)  # type: ignore[assignment]
        self.origin = tuple(float(o) for o in self.origin)  # type: ignore[assignment]
        self.direction = np.asarray(self.direction, dtype=np.float64).reshape(3, 3)
        if self.array.ndim == 2:
            self.array = self.array[np.newaxis]
        if self.array.ndim not in (3, 4):
            raise ValueError(f"Volume array must be 3D (z,y,x) or 4D RGB (z,y,x,3); got shape {self.array.shape}")
        if self.array.ndim == 4 and self.array.shape[-1] not in (3, 4):
            raise ValueError(f"4D Volume arrays must have 3 (RGB) or 4 (RGBA) channels last; got {self.array.shape}")
        if any(not np.isfinite(s) or s <= 0 for s in self.spacing):
            raise ValueError(f"spacing must be positive and finite; got {self.spacing}")

    # ---- shape -------------------------------------------------------------------------
    @property
    def is_rgb(self) -> bool:
        return self.array.ndim == 4

    @property
    def shape(self) -> tuple[int, int, int]:
        """(z, y, x) = (k, j, i) voxel counts, without the colour axis."""
        return tuple(self.array.shape[:3])  # type: ignore[return-value]

    @property
    def size_xyz(self) -> tuple[int, int, int]:
        z, y, x = self.shape
        return (x, y, z)

    @property
    def pixel_size_known(self) -> bool:
        """False for plain photographs (PNG/JPEG): spacing 1 then means pixels, not millimetres."""
        return bool(self.meta.get("pixel_size_known", True))

    @property
    def length_unit(self) -> str:
        return "mm" if self.pixel_size_known else "px"

    @property
    def voxel_volume_mm3(self) -> float:
        return float(np.prod(self.spacing))

    @property
    def modality(self) -> str:
        return str(self.meta.get("Modality", ""))

    # ---- geometry ----------------------------------------------------------------------
    @property
    def affine(self) -> np.ndarray:
        """4x4 matrix mapping homogeneous (i, j, k, 1) voxel indices to LPS world (mm)."""
        a = np.eye(4)
        a[:3, :3] = self.direction @ np.diag(self.spacing)
        a[:3, 3] = self.origin
        return a

    def index_to_world(self, ijk: np.ndarray | list | tuple) -> np.ndarray:
        """(i, j, k) -> LPS (x, y, z) mm; accepts one point or an (N, 3) array."""
        p = np.asarray(ijk, dtype=np.float64)
        return p @ (self.direction @ np.diag(self.spacing)).T + np.asarray(self.origin)

    def world_to_index(self, xyz: np.ndarray | list | tuple) -> np.ndarray:
        """LPS (x, y, z) mm -> continuous (i, j, k); accepts one point or an (N, 3) array."""
        p = np.asarray(xyz, dtype=np.float64) - np.asarray(self.origin)
        m = np.linalg.inv(self.direction @ np.diag(self.spacing))
        return p @ m.T

    def same_geometry(self, other: "Volume", tol: float = 1e-4) -> bool:
        return (
            self.shape == other.shape
            and np.allclose(self.spacing, other.spacing, atol=tol)
            and np.allclose(self.origin, other.origin, atol=tol)
            and np.allclose(self.direction, other.direction, atol=tol)
        )

    def like(self, array: np.ndarray, **meta: Any) -> "Volume":
        """A new Volume on this grid (label map, heatmap...) with the given array."""
        if tuple(array.shape[:3]) != self.shape:
            raise ValueError(f"array shape {array.shape} does not match volume grid {self.shape}")
        m = {k: v for k, v in self.meta.items() if k in _GEOMETRY_META_KEYS}
        m.update(meta)
        return Volume(array, self.spacing, self.origin, self.direction.copy(), m)

    def orientation_code(self) -> str:
        """Three letters naming where each of i, j, k points to (e.g. 'LPS'), ITK style."""
        letters = (("L", "R"), ("P", "A"), ("S", "I"))
        code = ""
        for col in range(3):
            v = self.direction[:, col]
            ax = int(np.argmax(np.abs(v)))
            code += letters[ax][0] if v[ax] > 0 else letters[ax][1]
        return code

    # ---- conversions -------------------------------------------------------------------
    def to_sitk(self):  # -> SimpleITK.Image
        import SimpleITK as sitk

        img = sitk.GetImageFromArray(self.array, isVector=self.is_rgb)
        img.SetSpacing(self.spacing)
        img.SetOrigin(self.origin)
        img.SetDirection(tuple(self.direction.reshape(-1)))
        return img

    @classmethod
    def from_sitk(cls, img, meta: dict[str, Any] | None = None) -> "Volume":
        import SimpleITK as sitk

        dim = img.GetDimension()
        arr = sitk.GetArrayFromImage(img)
        if dim == 2:
            spacing = tuple(img.GetSpacing()) + (1.0,)
            origin = tuple(img.GetOrigin()) + (0.0,)
            d2 = np.asarray(img.GetDirection()).reshape(2, 2)
            direction = np.eye(3)
            direction[:2, :2] = d2
            arr = arr[np.newaxis]
        elif dim == 3:
            spacing = img.GetSpacing()
            origin = img.GetOrigin()
            direction = np.asarray(img.GetDirection()).reshape(3, 3)
        else:
            raise ValueError(f"{dim}D images are not supported (only 2D and 3D)")
        return cls(arr, spacing, origin, direction, dict(meta or {}))

    def __repr__(self) -> str:
        return (
            f"Volume(shape={self.shape}{' RGB' if self.is_rgb else ''}, dtype={self.array.dtype}, "
            f"spacing={tuple(round(s, 4) for s in self.spacing)}, orientation={self.orientation_code()}, "
            f"modality={self.modality!r})"
        )


# Metadata that describes where a derived volume came from (kept by ``like``).
_GEOMETRY_META_KEYS = {
    "Modality",
    "SeriesInstanceUID",
    "StudyInstanceUID",
    "FrameOfReferenceUID",
    "PatientID",
    "source_path",
    "pixel_size_known",
}
