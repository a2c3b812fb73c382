"""NIfTI label maps on the source geometry, with a JSON sidecar (names, colours, provenance).

``labels.nii.gz`` + ``labels.json``. Geometry goes through SimpleITK, which converts LPS
(MedView, DICOM, ITK) to the RAS affine NIfTI stores, so the file lines up with the image in
any viewer (ITK-SNAP, 3D Slicer, nibabel).
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
    import SimpleITK as sitk

    from medview.annotation.workspace import atomic_write_bytes

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    img = Volume(np.ascontiguousarray(lm.array), lm.volume.spacing, lm.volume.origin, lm.volume.direction).to_sitk()
    tmp = path.with_name(".tmp-" + path.name)
    sitk.WriteImage(img, str(tmp), useCompression=True)
    tmp.replace(path)
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


def load_nifti(path: str | Path, reference: Volume | None = None, tol_mm: float = 1e-3) -> LabelMap:
    """Read a label NIfTI (+ sidecar if present). With ``reference`` (the image it belongs
    to) the labels land on the reference grid: taken as they are when the geometry agrees,
    else resampled nearest-neighbour in world space (with a warning in ``volume.warnings``)."""
    import SimpleITK as sitk

    from medview.io import LoadError

    path = Path(path)
    try:
        img = sitk.ReadImage(str(path))
    except RuntimeError as exc:
        raise LoadError(path, f"cannot read a label image ({str(exc).strip().splitlines()[-1]})") from exc
    if img.GetNumberOfComponentsPerPixel() != 1:
        raise LoadError(path, "a label map must have one value per voxel")
    vol = Volume.from_sitk(img)
    arr = vol.array
    if arr.dtype.kind == "f" and (not np.all(np.isfinite(arr)) or not np.all(arr == np.round(arr))):
        raise LoadError(path, "label values must be whole numbers")
    if arr.size and arr.min() < 0:
        raise LoadError(path, "label values must not be negative")
    arr = arr.astype(np.int64)
    warnings: list[str] = []
    if reference is not None:
        if vol.same_geometry(reference, tol=tol_mm):
            grid = reference
        else:
            same_space = reference.shape == vol.shape and np.allclose(reference.direction, vol.direction, atol=1e-3)
            warnings.append(
                f"{path.name}: geometry differs from the image"
                + ("" if same_space else " (different grid)") + "; labels were resampled onto the image grid")
            arr = resample_to(Volume(arr.astype(np.uint16), vol.spacing, vol.origin, vol.direction), reference)
            arr = arr.astype(np.int64)
            grid = reference
    else:
        grid = vol
    meta = read_sidecar(path) or {}
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
