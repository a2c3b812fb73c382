"""Does a label map belong to this image? Patient, study, series and frame of reference.

A label map names the image it was drawn on: the ``reference`` block of its JSON sidecar
(``labels.json`` beside ``labels.nii.gz``) or, for a DICOM SEG, the patient/study module and
the referenced series in its header. Before labels go onto an image (export-seg, import-seg,
export-training, the app's "Import labels...") the two are compared here:

- a named patient, study, series or frame of reference that differs: refused, with one message
  naming both patients (``IdentityError``);
- nothing named (no sidecar) and another voxel grid: refused unless the caller explicitly asked
  for resampling (``ResampleRefused``), because world-space resampling of a label map from
  an unknown image silently moves labels onto the wrong anatomy;
- nothing named, same grid: accepted with a warning that identity could not be verified.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Mapping

from medview.io.errors import LoadError

# compared in this order; the first that differs is named in the message
IDENTITY_KEYS = (
    ("PatientID", "patient"),
    ("StudyInstanceUID", "study"),
    ("SeriesInstanceUID", "series"),
    ("FrameOfReferenceUID", "frame of reference"),
)


class IdentityError(LoadError):
    """The label map names another patient / study / series / frame of reference."""


class ResampleRefused(LoadError):
    """The label map names no image and lies on another grid; resampling was not asked for."""


def _clean(v: Any) -> str:
    return str(v or "").strip()


def _who(ident: Mapping[str, Any]) -> str:
    name = _clean(ident.get("PatientName")).replace("^", " ").strip()
    pid = _clean(ident.get("PatientID"))
    if name and pid:
        return f"{name} ({pid})"
    return name or pid or "unknown"


def mismatches(claimed: Mapping[str, Any], image_meta: Mapping[str, Any]) -> list[str]:
    """Names of identity fields present in both and different (empty: nothing contradicts)."""
    out = []
    for key, what in IDENTITY_KEYS:
        a, b = _clean(claimed.get(key)), _clean(image_meta.get(key))
        if a and b and a != b:
            out.append(what)
    return out


def has_identity(claimed: Mapping[str, Any] | None) -> bool:
    return bool(claimed) and any(_clean(claimed.get(k)) for k, _ in IDENTITY_KEYS)  # type: ignore[union-attr]


def check_identity(labels_path: str | Path, claimed: Mapping[str, Any] | None, image_meta: Mapping[str, Any],
                   same_grid: bool, allow_resample: bool = False, reference_name: str = "the reference series",
                   grid_note: str = "") -> list[str]:
    """Refuse labels that belong elsewhere; return the warnings for labels that are accepted."""
    name = Path(labels_path).name
    if has_identity(claimed):
        diff = mismatches(claimed, image_meta)  # type: ignore[arg-type]
        if diff:
            raise IdentityError(labels_path, f"{name} belongs to patient {_who(claimed)}, "  # type: ignore[arg-type]
                                f"{reference_name} to patient {_who(image_meta)} "
                                f"(different {', '.join(diff)}): refused")
        return []
    if same_grid:
        return [f"{name}: no sidecar names the series it was drawn on; identity could not be verified "
                "(same voxel grid as the image)"]
    if not allow_resample:
        raise ResampleRefused(labels_path, f"{name} names no patient or series (no sidecar) and lies on another "
                              f"voxel grid than {reference_name}{grid_note}: refused; resample it explicitly "
                              "(--resample) to place it nearest-neighbour in world space on the image grid")
    return [f"{name}: no sidecar names its series; identity not verified; resampled nearest-neighbour "
            "onto the image grid as asked"]
