"""One entry point that opens anything MedView reads, and one that writes volumes."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Optional

import numpy as np

from medview.io.dicom_series import MiddleSliceFn
from medview.io.dicom_series import load_series as _load_dicom_series
from medview.io.errors import LoadError
from medview.io.files import read_image_file, read_volume_file
from medview.io.scan import file_kind, looks_like_dicom, scan
from medview.io.study_index import SeriesInfo
from medview.io.volume import Volume
from medview.progress import Cancelled, CancelledFn, ProgressFn


def load_series(info: SeriesInfo, progress: Optional[ProgressFn] = None,
                cancelled: Optional[CancelledFn] = None,
                on_middle_slice: Optional[MiddleSliceFn] = None) -> Volume:
    """Load one entry of a StudyIndex (DICOM series or a volume/image file).

    Every failure is a LoadError naming the file; a volume with impossible geometry (NaN or
    absurd spacing/position, no voxels) is refused rather than drawn at a wrong scale."""
    try:
        if info.kind == "dicom":
            volume = _load_dicom_series(info, progress, cancelled, on_middle_slice)
        elif info.kind == "image":
            volume = read_image_file(info.path)
        else:
            volume = read_volume_file(info.path, info.kind)
    except (LoadError, Cancelled, MemoryError):
        raise
    except Exception as exc:  # noqa: BLE001 - a corrupt file must be a message, never a traceback
        raise LoadError(_name(info), f"cannot load ({type(exc).__name__}: {exc})") from exc
    _check_geometry(volume, _name(info))
    return volume


def _name(info: SeriesInfo) -> str:
    """The file to name in a message: the image itself for a one-file series, else the folder."""
    images = getattr(info, "images", None) or []
    return str(images[0].path) if len(images) == 1 else str(info.path)


def scan_problem_warnings(index) -> list[str]:
    """One warning naming the files a scan could not read (they are left out of every series)."""
    if not index.problems:
        return []
    shown = "; ".join(f"{p}: {r}" for p, r in index.problems[:3])
    more = f" (and {len(index.problems) - 3} more)" if len(index.problems) > 3 else ""
    return [f"{len(index.problems)} file(s) could not be read and were left out: {shown}{more}"]


def _check_geometry(volume: Volume, path: str) -> None:
    from medview.io.files import MAX_SPACING_MM

    if volume.array.size == 0:
        raise LoadError(path, f"no voxels (size {volume.shape})")
    spacing = np.asarray(volume.spacing, dtype=np.float64)
    if not np.all(np.isfinite(spacing)) or np.any(spacing <= 0) or np.any(spacing > MAX_SPACING_MM):
        raise LoadError(path, f"impossible voxel spacing {tuple(float(s) for s in spacing)} mm")
    if not np.all(np.isfinite(np.asarray(volume.origin, dtype=np.float64))) or \
            not np.all(np.isfinite(np.asarray(volume.direction, dtype=np.float64))):
        raise LoadError(path, "image position or orientation holds NaN or infinite values")


def load_volume(path: str | Path, progress: Optional[ProgressFn] = None,
                cancelled: Optional[CancelledFn] = None,
                on_middle_slice: Optional[MiddleSliceFn] = None) -> Volume:
    """Open a file (DICOM, NIfTI, NRRD, MHA, PNG/JPEG/TIFF), a DICOMDIR, or a folder.

    A folder with several series opens the largest and says so in ``Volume.warnings``.
    """
    path = str(path)
    if not os.path.exists(path):
        raise LoadError(path, "does not exist")
    kind = file_kind(path) if os.path.isfile(path) else None
    if kind == "image":
        return read_image_file(path)
    if kind is not None:
        return read_volume_file(path, kind)
    if os.path.isfile(path) and os.path.getsize(path) == 0:
        raise LoadError(path, "empty file (0 bytes)")
    if os.path.isfile(path) and Path(path).name.upper() != "DICOMDIR" and not looks_like_dicom(path):
        raise LoadError(path, "not a DICOM file (no DICM marker) and not a known image format")
    index = scan(path, progress=_sub(progress, 0.0, 0.2), cancelled=cancelled)
    if not index.series:
        if index.problems:
            bad, reason = index.problems[0]
            more = f" (and {len(index.problems) - 1} more problem files)" if len(index.problems) > 1 else ""
            raise LoadError(bad, reason + more)
        raise LoadError(path, "no images found")
    chosen = index.largest()
    volume = load_series(chosen, _sub(progress, 0.2, 1.0), cancelled, on_middle_slice)
    volume.warnings.extend(scan_problem_warnings(index))
    if len(index.series) > 1:
        volume.warnings.append(f"{path} holds {len(index.series)} series; opened the largest "
                               f"({chosen.description or chosen.uid})")
    return volume


def save_volume(volume: Volume, path: str | Path) -> None:
    """Write a Volume in any format SimpleITK writes (.nii.gz, .nrrd, .mha), geometry kept."""
    import SimpleITK as sitk

    if str(path).lower().endswith((".nii", ".nii.gz")) and not volume.is_rgb:
        from medview.io.nifti_io import write_nifti  # full affine as sform: a sheared stack stays sheared

        try:
            write_nifti(volume, path)
        except (OSError, ValueError) as exc:
            raise LoadError(path, f"cannot write: {exc}") from exc
        return
    try:
        sitk.WriteImage(volume.to_sitk(), str(path), useCompression=True)
    except RuntimeError as exc:
        raise LoadError(path, f"cannot write: {str(exc).strip().splitlines()[-1]}") from exc


def _sub(progress: Optional[ProgressFn], start: float, end: float) -> Optional[ProgressFn]:
    if progress is None:
        return None
    return lambda f, stage: progress(start + (end - start) * f, stage)
