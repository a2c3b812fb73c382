"""Compare a loaded Volume with a reference NIfTI (e.g. dicom2nifti's output).

Used by the conformance tests and by `medview info --compare`: the two must describe the same
voxels at the same world positions. NIfTI affines are RAS; ours are LPS, so x and y flip sign.
The reference may store the axes in another order or direction; the mapping between the grids
must then be a signed permutation with an integer shift, and values are compared through it.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from medview.io.volume import Volume

LPS_TO_RAS = np.diag([-1.0, -1.0, 1.0, 1.0])


@dataclass
class Comparison:
    matches: bool
    reason: str
    max_affine_error_mm: float
    max_value_error: float


def compare_with_nifti(volume: Volume, nifti_path: str, atol_mm: float = 0.05) -> Comparison:
    import nibabel as nib

    img = nib.load(nifti_path)
    data = np.asanyarray(img.dataobj)
    if data.dtype.names:  # RGB(A) NIfTI: structured dtype
        data = np.stack([data[n] for n in data.dtype.names[:3]], axis=-1)
        ref_rgb = True
    else:
        ref_rgb = False
        if data.ndim == 4:
            data = data[..., 0]  # a 4D reference: our loader shows the first volume
        else:
            data = img.get_fdata(dtype=np.float64) if data.dtype.kind == "f" or _is_scaled(img) else data
        if data.ndim == 4:
            data = data[..., 0]
    ref_affine = img.affine  # (i, j, k) of the reference -> RAS
    ours_ras = LPS_TO_RAS @ volume.affine
    # reference index -> our index
    m = np.linalg.inv(ours_ras) @ ref_affine
    rot = m[:3, :3]
    perm = np.round(rot)
    if not (np.allclose(np.abs(perm).sum(0), 1) and np.allclose(np.abs(perm).sum(1), 1)):
        return Comparison(False, f"grids are not aligned (index map {np.round(rot, 3).tolist()})", np.inf, np.inf)
    ref_shape = data.shape[:3]
    axes_map = np.argmax(np.abs(perm), axis=0)  # for each reference axis: our axis (0=i, 1=j, 2=k)
    our_shape_ijk = (volume.shape[2], volume.shape[1], volume.shape[0])
    # the voxel each reference corner must land on if the grids are the same (flips included)
    corners = np.array([[i, j, k] for i in (0, ref_shape[0] - 1) for j in (0, ref_shape[1] - 1)
                        for k in (0, ref_shape[2] - 1)], dtype=np.float64)
    expected = np.zeros_like(corners)
    for ref_axis in range(3):
        our_axis = axes_map[ref_axis]
        flip = perm[our_axis, ref_axis] < 0
        expected[:, our_axis] = (our_shape_ijk[our_axis] - 1 - corners[:, ref_axis]) if flip else corners[:, ref_axis]
    ref_world = (ref_affine @ np.c_[corners, np.ones(8)].T).T[:, :3]
    our_world = (ours_ras @ np.c_[expected, np.ones(8)].T).T[:, :3]
    max_err = float(np.abs(ref_world - our_world).max())
    # reorder the reference array (i, j, k) into our (i, j, k) through the signed permutation
    order = np.argsort(axes_map)
    arr = np.transpose(data, tuple(order) + ((3,) if data.ndim == 4 else ()))
    for our_axis in range(3):
        if perm[our_axis, order[our_axis]] < 0:
            arr = np.flip(arr, axis=our_axis)
    if arr.shape[:3] != our_shape_ijk:
        return Comparison(False, f"shape differs: reference {arr.shape[:3]} vs ours {our_shape_ijk} (i,j,k)",
                          max_err, np.inf)
    ours = np.transpose(volume.array, (2, 1, 0, 3) if volume.is_rgb else (2, 1, 0))
    if ref_rgb != volume.is_rgb:
        return Comparison(False, "one is RGB and the other is not", max_err, np.inf)
    diff = float(np.max(np.abs(ours.astype(np.float64) - arr.astype(np.float64)))) if ours.size else 0.0
    scale = float(np.max(np.abs(arr))) or 1.0
    value_ok = diff <= max(1e-3 * scale, 1e-6) if np.issubdtype(arr.dtype, np.floating) else diff == 0
    if max_err > atol_mm:
        return Comparison(False, f"voxel positions differ by up to {max_err:.3f} mm", max_err, diff)
    if not value_ok:
        return Comparison(False, f"pixel values differ by up to {diff:g}", max_err, diff)
    return Comparison(True, "match", max_err, diff)


def _is_scaled(img) -> bool:
    slope, inter = img.header.get_slope_inter()
    return slope not in (None, 1.0) or inter not in (None, 0.0)
