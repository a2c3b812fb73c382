"""4D files (NIfTI / NRRD / MHA with time points or diffusion directions): every volume, so the
viewer can browse them. medview.io loads the first volume; these are the others, read the same
way (SimpleITK Extract of volume t), and checked against the loaded one before they are shown.
DICOM 4D series (several images per slice position, or several stacks in an enhanced object):
medview.io loads the first volume and lists the others' files in ``meta["frames_4d"]``; each is
read as a series of its own and must have the loaded volume's grid."""

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


def count_dicom_frames(meta: dict) -> int:
    return 1 + len(meta.get("frames_4d") or [])


def read_dicom_frames(first, progress=None, cancelled=None) -> np.ndarray:
    """(t, k, j, i) array of every volume of a DICOM 4D series; ``first`` is the loaded Volume.
    A volume whose grid (shape, spacing, origin, direction) differs from it: ValueError."""
    from medview.io.dicom_series import load_series
    from medview.io.errors import LoadError
    from medview.io.scan import read_header
    from medview.io.study_index import SeriesInfo

    entries = first.meta.get("frames_4d") or []
    out = np.empty((1 + len(entries), *first.array.shape), first.array.dtype)
    out[0] = first.array
    headers: dict[str, list] = {}
    for t, files in enumerate(entries, start=1):
        if cancelled is not None and cancelled():
            raise RuntimeError("cancelled")
        refs = []
        for path, frame in files:
            got = headers.setdefault(path, read_header(path))
            if isinstance(got, str):
                raise LoadError(path, got)
            refs.extend(r for r, _ in got if r.frame == frame)
        vol = load_series(SeriesInfo(uid=f"4d-{t}", images=refs, path=str(first.meta.get("source_path", ""))))
        same = (vol.array.shape == first.array.shape and np.allclose(vol.spacing, first.spacing, atol=1e-3)
                and np.allclose(vol.origin, first.origin, atol=1e-2)
                and np.allclose(vol.direction, first.direction, atol=1e-4))
        if not same:
            raise ValueError(f"volume {t + 1} of the 4D series lies on another grid than the first; 4D browsing is off")
        a = vol.array
        if a.dtype != out.dtype:
            cast = a.astype(out.dtype)
            if not np.array_equal(cast, a):
                raise ValueError(f"volume {t + 1} has other stored values (rescale) than the first; "
                                 "4D browsing is off")
            a = cast
        out[t] = a
        if progress is not None:
            progress((t + 1) / len(out), f"4D volume {t + 1}/{len(out)}")
    return out
