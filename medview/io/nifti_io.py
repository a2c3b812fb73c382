"""NIfTI with the full affine: what MedView writes is where the voxels are, shear included.

SimpleITK's NIfTI writer keeps only an orthonormal direction, so a gantry-tilted (sheared) CT
written through it lands 25-39 mm away from its slices. Here the LPS affine of the Volume is
converted to RAS and stored with nibabel as the sform (code 1, scanner). The qform can hold
only a rotation: it is written (code 1) when the affine has no shear and left unset (code 0)
when it has, so no reader can pick a qform that disagrees with the sform. Reading uses the
affine nibabel chooses (sform first), so a sheared file comes back sheared.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from medview.io.volume import Volume

LPS_TO_RAS = np.diag([-1.0, -1.0, 1.0, 1.0])


def is_sheared(affine: np.ndarray, tol: float = 1e-4) -> bool:
    """True when the voxel axes of ``affine`` are not mutually orthogonal."""
    cols = affine[:3, :3] / np.linalg.norm(affine[:3, :3], axis=0)
    gram = cols.T @ cols
    return bool(np.abs(gram - np.eye(3)).max() > tol)


def nifti_image(volume: Volume, array: np.ndarray | None = None):
    """A nibabel Nifti1Image of ``volume`` (or of ``array`` on its grid), RAS sform = its affine."""
    import nibabel as nib

    arr = volume.array if array is None else array
    if arr.dtype == np.bool_:
        arr = arr.astype(np.uint8)
    elif arr.dtype == np.int64 or arr.dtype == np.uint64:
        hi = int(arr.max()) if arr.size else 0
        lo = int(arr.min()) if arr.size else 0
        arr = arr.astype(np.uint8 if lo >= 0 and hi < 256 else np.uint16 if lo >= 0 and hi < 65536 else np.int32)
    data = np.ascontiguousarray(np.transpose(arr, (2, 1, 0)))  # (k, j, i) -> (i, j, k)
    affine = LPS_TO_RAS @ volume.affine
    img = nib.Nifti1Image(data, affine)
    img.set_sform(affine, code=1)
    if is_sheared(affine):
        img.set_qform(None, code=0)
    else:
        img.set_qform(affine, code=1)
    img.header.set_xyzt_units("mm", "sec")
    return img


def write_nifti(volume: Volume, path: str | Path, array: np.ndarray | None = None) -> Path:
    """Write ``volume`` (scalar) as NIfTI with its exact affine; atomic (temp file + rename)."""
    import nibabel as nib

    if (volume.array if array is None else array).ndim != 3:
        raise ValueError("write_nifti writes scalar 3D volumes (RGB goes through SimpleITK)")
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    suffix = ".nii.gz" if path.name.lower().endswith(".nii.gz") else ".nii"
    tmp = path.with_name(".tmp-" + path.name[: -len(suffix)] + suffix)
    nib.save(nifti_image(volume, array), str(tmp))
    tmp.replace(path)
    return path


def read_nifti(path: str | Path) -> Volume:
    """A scalar NIfTI as a Volume in LPS, the affine (sform, else qform) kept exactly."""
    import nibabel as nib

    img = nib.load(str(path))
    data = np.asanyarray(img.dataobj)
    if data.ndim == 2:
        data = data[:, :, np.newaxis]
    if data.ndim > 3:
        if any(s != 1 for s in data.shape[3:]):
            raise ValueError(f"expected a 3D image, got shape {data.shape}")
        data = data.reshape(data.shape[:3])
    lps = LPS_TO_RAS @ img.affine
    m = lps[:3, :3]
    spacing = np.linalg.norm(m, axis=0)
    if not np.all(np.isfinite(lps)) or np.any(spacing <= 0):
        raise ValueError(f"invalid affine {np.round(img.affine, 4).tolist()}")
    direction = m / spacing
    return Volume(np.ascontiguousarray(np.transpose(data, (2, 1, 0))), tuple(spacing), tuple(lps[:3, 3]), direction)


def voxel_centres_lps(path: str | Path, ijk: np.ndarray) -> np.ndarray:
    """World LPS positions of voxel indices (N, 3) of a NIfTI file, through its stored affine."""
    import nibabel as nib

    aff = LPS_TO_RAS @ nib.load(str(path)).affine
    p = np.asarray(ijk, dtype=np.float64)
    return p @ aff[:3, :3].T + aff[:3, 3]
