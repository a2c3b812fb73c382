"""4D files (NIfTI / NRRD / MHA with time points or diffusion directions): every volume, so the
viewer can browse them. medview.io loads the first volume; these are the others, read the same
way (SimpleITK Extract of volume t), and checked against the loaded one before they are shown.
DICOM 4D series are not covered (medview.io keeps their first volume and says so)."""

from __future__ import annotations

from pathlib import Path

import numpy as np

SUFFIXES = (".nii", ".nii.gz", ".nrrd", ".nhdr", ".mha", ".mhd")


def count_frames(path: str | Path) -> int:
    """Volumes in a 4D image file (1 for 3D, DICOM or unreadable headers)."""
    p = str(path)
    if not p.lower().endswith(SUFFIXES) or not Path(p).is_file():
        return 1
    import SimpleITK as sitk

    r = sitk.ImageFileReader()
    r.SetFileName(p)
    try:
        r.ReadImageInformation()
    except RuntimeError:
        return 1
    size = r.GetSize()
    return int(size[3]) if len(size) == 4 else 1


def read_frames(path: str | Path, first: np.ndarray, progress=None, cancelled=None) -> np.ndarray:
    """(t, k, j, i) array of every volume; ``first`` is the volume medview.io loaded, which
    frame 0 must equal (else the file is not what was loaded: ValueError)."""
    import SimpleITK as sitk

    img = sitk.ReadImage(str(path))
    if img.GetDimension() != 4:
        raise ValueError(f"{path}: not a 4D image")
    sx, sy, sz, st = img.GetSize()
    out = np.empty((st, *first.shape), first.dtype)
    for t in range(st):
        if cancelled is not None and cancelled():
            raise RuntimeError("cancelled")
        a = sitk.GetArrayFromImage(sitk.Extract(img, [sx, sy, sz, 0], [0, 0, 0, t]))
        if a.shape != first.shape:
            raise ValueError(f"{path}: volume {t} has shape {a.shape}, the loaded one {first.shape}")
        out[t] = a
        if progress is not None:
            progress((t + 1) / st, f"4D volume {t + 1}/{st}")
    if not np.array_equal(out[0], first):
        raise ValueError(f"{path}: its first volume differs from the one loaded; 4D browsing is off")
    return out
