"""Non-DICOM inputs: NIfTI / NRRD / MHA through SimpleITK, plain 2D images through Pillow.

All come out as the same Volume type (LPS, like ITK), so nothing downstream knows the format.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from medview.io.errors import LoadError
from medview.io.volume import Volume


def read_volume_file(path: str | Path, kind: str) -> Volume:
    """NIfTI (.nii/.nii.gz), NRRD or MetaImage (.mha/.mhd) -> Volume."""
    import SimpleITK as sitk

    path = str(path)
    if Path(path).stat().st_size == 0:
        raise LoadError(path, "empty file (0 bytes)")
    if kind == "nifti":
        _check_nifti_spacing(path)
    try:
        reader = sitk.ImageFileReader()
        reader.SetFileName(path)
        reader.ReadImageInformation()
        spacing = reader.GetSpacing()
        if any((not np.isfinite(s)) or s <= 0 for s in spacing):
            raise LoadError(path, f"invalid voxel spacing {tuple(spacing)} in the header (must be > 0)")
        img = reader.Execute()
    except LoadError:
        raise
    except RuntimeError as exc:
        first = str(exc).strip().splitlines()
        reason = next((line for line in first if "ERROR" in line or "Could not" in line or "Exception" in line),
                      first[-1] if first else "unknown error")
        raise LoadError(path, f"cannot read {kind.upper()} file: {reason.strip()}") from exc

    warnings: list[str] = []
    if img.GetDimension() == 4:
        size = img.GetSize()
        warnings.append(f"4D image with {size[3]} volumes; showing the first")
        img = sitk.Extract(img, [size[0], size[1], size[2], 0], [0, 0, 0, 0])
    elif img.GetDimension() > 4 or img.GetDimension() < 2:
        raise LoadError(path, f"{img.GetDimension()}D images are not supported")
    ncomp = img.GetNumberOfComponentsPerPixel()
    if ncomp not in (1, 3, 4):
        raise LoadError(path, f"{ncomp} components per voxel are not supported (1 or RGB)")
    volume = Volume.from_sitk(img, {"Modality": "", "format": kind, "source_path": path})
    if ncomp == 4:
        volume.array = np.ascontiguousarray(volume.array[..., :3])
    arr = volume.array
    if np.issubdtype(arr.dtype, np.floating):
        bad = _non_finite_mask(path, kind, arr)
        n_bad = int(bad.sum())
        if n_bad == arr.size:
            raise LoadError(path, "every voxel is NaN or infinite")
        if n_bad:
            fill = float(arr[~bad].min())
            arr[bad] = fill
            warnings.append(f"{n_bad} NaN/infinite voxels replaced by the minimum value {fill:g}")
    volume.warnings.extend(warnings)
    return volume


def _non_finite_mask(path: str, kind: str, arr: np.ndarray) -> np.ndarray:
    """Where the file holds NaN/inf. ITK's NIfTI reader silently turns NaN into 0, which would
    hide masked-out regions as real zeros, so NIfTI is checked with nibabel on the raw data."""
    if kind != "nifti":
        return ~np.isfinite(arr)
    import nibabel as nib

    raw = np.asanyarray(nib.load(path).dataobj)
    if raw.ndim == 4:
        raw = raw[..., 0]
    if raw.ndim == 2:
        raw = raw[..., np.newaxis]
    mask = ~np.isfinite(raw.T)  # nibabel (i, j, k) -> ours (k, j, i); ITK keeps the storage order
    return mask.reshape(arr.shape) if mask.size == arr.size else ~np.isfinite(arr)


def _check_nifti_spacing(path: str) -> None:
    """ITK silently turns a zero pixdim into 1 mm; a wrong scale is a clinical error, so refuse."""
    import gzip
    import struct

    opener = gzip.open if path.lower().endswith(".gz") else open
    try:
        with opener(path, "rb") as f:
            header = f.read(348)
    except (OSError, EOFError) as exc:
        raise LoadError(path, f"cannot read NIFTI header: {exc}") from exc
    if len(header) < 348:
        return  # SimpleITK reports the truncated file
    endian = "<" if struct.unpack("<i", header[:4])[0] in (348, 540) else ">"
    if struct.unpack(endian + "i", header[:4])[0] not in (348, 540):
        return
    ndim = struct.unpack(endian + "h", header[40:42])[0]
    pixdim = struct.unpack(endian + "8f", header[76:108])
    spatial = pixdim[1: 1 + max(1, min(ndim, 3))]
    if any((not np.isfinite(s)) or s <= 0 for s in spatial):
        raise LoadError(path, f"invalid voxel spacing {tuple(float(s) for s in spatial)} in the header "
                              "(must be > 0)")


def read_image_file(path: str | Path) -> Volume:
    """PNG / JPEG / TIFF / BMP -> one-slice Volume; RGB stays RGB (z, y, x, 3) uint8.

    Plain images carry no pixel size: spacing is 1 and ``meta['pixel_size_known']`` is False, so
    measurements are reported in pixels.
    """
    from PIL import Image, UnidentifiedImageError

    path = str(path)
    if Path(path).stat().st_size == 0:
        raise LoadError(path, "empty file (0 bytes)")
    try:
        with Image.open(path) as im:
            im.load()
            mode = im.mode
            if mode in ("P", "PA", "LA", "RGBA", "CMYK", "YCbCr"):
                has_colour = mode not in ("LA",) and not _palette_is_grey(im)
                im = im.convert("RGB" if has_colour else "L")
            elif mode == "1":
                im = im.convert("L")
            arr = np.asarray(im)
    except UnidentifiedImageError as exc:
        raise LoadError(path, "not a readable image (unknown or corrupt format)") from exc
    except OSError as exc:
        raise LoadError(path, f"cannot read image: {exc}") from exc
    if arr.ndim == 3 and arr.shape[2] == 3 and _is_grey_rgb(arr):
        arr = np.ascontiguousarray(arr[..., 0])  # grey stored as RGB: one channel is the truth
    if arr.ndim == 2:
        arr = arr[np.newaxis]
    elif arr.ndim == 3:
        arr = arr[np.newaxis]
    meta = {"Modality": "", "format": "image", "source_path": path, "pixel_size_known": False,
            "SeriesDescription": Path(path).name}
    return Volume(np.ascontiguousarray(arr), (1.0, 1.0, 1.0), (0.0, 0.0, 0.0), np.eye(3), meta)


def _palette_is_grey(im) -> bool:
    if im.mode != "P":
        return False
    pal = im.getpalette() or []
    rgb = np.asarray(pal[: len(pal) // 3 * 3]).reshape(-1, 3)
    return bool(np.all(rgb[:, 0] == rgb[:, 1]) and np.all(rgb[:, 1] == rgb[:, 2]))


def _is_grey_rgb(arr: np.ndarray) -> bool:
    sample = arr[::7, ::7]
    return bool(np.array_equal(sample[..., 0], sample[..., 1]) and np.array_equal(sample[..., 1], sample[..., 2])
                and np.array_equal(arr[..., 0], arr[..., 1]) and np.array_equal(arr[..., 1], arr[..., 2]))
