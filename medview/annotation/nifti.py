"""NIfTI label maps on the source geometry, with a JSON sidecar (names, colours, provenance).

``labels.nii.gz`` + ``labels.json``. The file is written with nibabel with the image's full
affine as sform (medview.io.nifti_io), shear of a gantry-tilted stack included, so the voxels
lie where the source slices are in any viewer that reads the sform (nibabel, 3D Slicer).
The sidecar's ``reference`` names patient, study, series and frame of reference; importing onto
an image checks them (medview.annotation.identity).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np

from medview.annotation.labelmap import (
    Label,
    LabelMap,
    Provenance,
    default_color,
    now_iso,
    reference_from_image,
)
from medview.io.volume import Volume

SIDECAR_SCHEMA = "medview-labels/1"


def sidecar_path(path: str | Path) -> Path:
    p = Path(path)
    name = p.name
    for ext in (".nii.gz", ".nii", ".nrrd", ".mha", ".mhd"):
        if name.lower().endswith(ext):
            return p.with_name(name[: -len(ext)] + ".json")
    return p.with_suffix(".json")


def save_nifti(lm: LabelMap, path: str | Path, sidecar: bool = True) -> Path:
    """Write the label map (its own grid = the source image grid) and its JSON sidecar."""
    from medview.annotation.workspace import atomic_write_bytes
    from medview.io.nifti_io import write_nifti

    path = Path(path)
    write_nifti(lm.volume, path, np.ascontiguousarray(lm.array))
    if sidecar:
        h = lm.header()
        data = {
            "schema": SIDECAR_SCHEMA,
            "labels": h["labels"],
            "provenance": h["provenance"],
            "reference": h["reference"],
            "geometry": h["geometry"],
            "exported": now_iso(),
            "research_use_only": True,
        }
        atomic_write_bytes(sidecar_path(path), json.dumps(data, indent=2).encode("utf-8"))
    return path


def read_sidecar(path: str | Path) -> dict[str, Any] | None:
    sp = sidecar_path(path)
    if not sp.is_file():
        return None
    try:
        return json.loads(sp.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None


def resample_to(labels: Volume, reference: Volume) -> np.ndarray:
    """Nearest-neighbour resampling of a label volume onto ``reference``'s grid (world space)."""
    import SimpleITK as sitk

    src = labels.to_sitk()
    grid = Volume(np.zeros(reference.shape, np.uint8), reference.spacing, reference.origin, reference.direction)
    ref = grid.to_sitk()
    out = sitk.Resample(src, ref, sitk.Transform(), sitk.sitkNearestNeighbor, 0, src.GetPixelID())
    return sitk.GetArrayFromImage(out)


def load_nifti(path: str | Path, reference: Volume | None = None, tol_mm: float = 1e-3,
               allow_resample: bool = False) -> LabelMap:
    """Read a label NIfTI (+ sidecar if present). With ``reference`` (the image it belongs
    to) the identity the sidecar names is checked first (another patient, study, series or
    frame of reference: ``IdentityError``). Then the labels land on the reference grid: taken
    as they are when the geometry agrees, else resampled nearest-neighbour in world space (with
    a warning) when the sidecar vouches for the series or ``allow_resample`` is given;
    a sidecar-less map on another grid without ``allow_resample`` raises ``ResampleRefused``."""
    from medview.annotation.identity import check_identity
    from medview.io import LoadError
    from medview.io.nifti_io import read_nifti

    path = Path(path)
    try:
        vol = read_nifti(path)
    except Exception as exc:  # noqa: BLE001 - nibabel raises many types; one message for the user
        raise LoadError(path, f"cannot read a label image ({exc})") from exc
    arr = vol.array
    if arr.dtype.names or arr.ndim != 3:
        raise LoadError(path, "a label map must have one value per voxel")
    if arr.dtype.kind == "f" and (not np.all(np.isfinite(arr)) or not np.all(arr == np.round(arr))):
        raise LoadError(path, "label values must be whole numbers")
    if arr.size and arr.min() < 0:
        raise LoadError(path, "label values must not be negative")
    arr = arr.astype(np.int64)
    meta = read_sidecar(path) or {}
    warnings: list[str] = []
    if reference is not None:
        same = vol.same_geometry(reference, tol=tol_mm)
        note = "" if same else (f" (labels {_mm(vol.size_xyz)} voxels of {_mm(vol.spacing)} mm, "
                                f"image {_mm(reference.size_xyz)} of {_mm(reference.spacing)} mm)")
        warnings += check_identity(path, meta.get("reference"), reference.meta, same, allow_resample,
                                   grid_note=note)
        if not same:
            warnings.append(f"{path.name}: geometry differs from the image{note}; labels were resampled "
                            "nearest-neighbour onto the image grid")
            arr = resample_to(Volume(arr.astype(np.uint16), vol.spacing, vol.origin, vol.direction), reference)
            arr = arr.astype(np.int64)
        grid = reference
    else:
        grid = vol
    labels = [Label.from_dict(d) for d in meta.get("labels", [])]
    prov = Provenance.from_dict(meta.get("provenance", {})) if meta.get("provenance") else Provenance(
        source="import", imported_from=str(path))
    if reference is not None:
        lm = LabelMap.from_array(reference, arr, labels)
        lm.provenance = prov
    else:
        lm = LabelMap(grid.like(arr), labels, prov, meta.get("reference"))
        for v in lm.present_values():
            if v not in lm.labels:
                lm.labels[v] = Label(v, f"label {v}", default_color(v))
    lm.volume.warnings.extend(warnings)
    if reference is not None:
        lm.reference = reference_from_image(reference)
    return lm


def _mm(spacing) -> str:
    return "x".join(f"{s:.3g}" for s in spacing)
