"""A view plane in patient space (LPS mm) and the mapping between world and plane pixels.

Pixel (col, row) has its centre at ``center + (col - (w-1)/2)*sp*u + (row - (h-1)/2)*sp*v``;
``u`` is screen right, ``v`` screen down, ``normal = u x v`` (depth grows along it). Positions,
measurements and strokes are kept in world mm; a plane only maps them to pixels and back.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np

# screen right, screen down (radiological convention, LPS)
_STANDARD = {
    "axial": ((1.0, 0.0, 0.0), (0.0, 1.0, 0.0)),
    "coronal": ((1.0, 0.0, 0.0), (0.0, 0.0, -1.0)),
    "sagittal": ((0.0, 1.0, 0.0), (0.0, 0.0, -1.0)),
}


def _rotation(axis: np.ndarray, angle: float) -> np.ndarray:
    a = np.asarray(axis, float) / np.linalg.norm(axis)
    k = np.array([[0, -a[2], a[1]], [a[2], 0, -a[0]], [-a[1], a[0], 0]])
    return np.eye(3) + np.sin(angle) * k + (1 - np.cos(angle)) * (k @ k)


@dataclass(frozen=True)
class Plane:
    center: tuple[float, float, float]
    u: tuple[float, float, float]
    v: tuple[float, float, float]
    spacing: float
    width: int
    height: int

    @property
    def normal(self) -> np.ndarray:
        return np.cross(np.asarray(self.u), np.asarray(self.v))

    def _origin(self) -> np.ndarray:
        c, u, v = (np.asarray(x, float) for x in (self.center, self.u, self.v))
        return c - (self.width - 1) / 2 * self.spacing * u - (self.height - 1) / 2 * self.spacing * v

    def plane_to_world(self, col, row, depth=0.0) -> np.ndarray:
        """Pixel (col, row) + depth mm along the normal -> LPS mm."""
        u, v = np.asarray(self.u, float), np.asarray(self.v, float)
        return (self._origin() + float(col) * self.spacing * u + float(row) * self.spacing * v
                + float(depth) * self.normal)

    def world_to_plane(self, xyz) -> tuple[float, float, float]:
        """LPS mm -> (col, row, depth mm from the plane)."""
        d = np.asarray(xyz, float) - self._origin()
        return (float(d @ np.asarray(self.u)) / self.spacing,
                float(d @ np.asarray(self.v)) / self.spacing, float(d @ self.normal))

    def moved_to(self, center) -> "Plane":
        return replace(self, center=tuple(float(x) for x in center))

    def rotated(self, angle_rad: float, axis=None) -> "Plane":
        """Rotated about ``axis`` (default: the normal, i.e. in-plane) through the centre."""
        r = _rotation(self.normal if axis is None else axis, angle_rad)
        return replace(self, u=tuple(r @ np.asarray(self.u)), v=tuple(r @ np.asarray(self.v)))

    def grid_world(self) -> np.ndarray:
        """(3, h, w) LPS mm of every pixel centre."""
        rows, cols = np.mgrid[0:self.height, 0:self.width].astype(np.float64)
        u, v = np.asarray(self.u, float), np.asarray(self.v, float)
        o = self._origin()
        return (o[:, None, None] + self.spacing * (cols[None] * u[:, None, None]
                                                   + rows[None] * v[:, None, None]))


def standard_plane(view: str, volume, center=None, spacing: float | None = None,
                   size: tuple[int, int] | None = None) -> Plane:
    """Axial/coronal/sagittal plane through ``center`` (default: volume centre) covering the
    volume's extent, with square pixels of ``spacing`` mm (default: finest voxel spacing)."""
    u, v = _STANDARD[view]
    corners = np.array([[a, b, c] for a in (0, volume.shape[2] - 1) for b in (0, volume.shape[1] - 1)
                        for c in (0, volume.shape[0] - 1)], float)
    world = np.array([volume.index_to_world(p) for p in corners])
    if center is None:
        center = world.mean(axis=0)
    sp = float(spacing or min(volume.spacing))
    if size is None:
        ext_u = np.ptp(world @ np.asarray(u)) + sp
        ext_v = np.ptp(world @ np.asarray(v)) + sp
        size = (int(round(ext_u / sp)), int(round(ext_v / sp)))
    return Plane(tuple(float(x) for x in center), u, v, sp, int(size[0]), int(size[1]))
