"""Label files shown as overlays on the series they belong to: label NIfTI/NRRD/MHA, DICOM SEG
and RTSTRUCT (through medview.reporting.read_rtstruct when that module provides it). The
identity and geometry checks are those of medview.annotation (right patient, same grid)."""

from __future__ import annotations

from pathlib import Path

LABEL_SUFFIXES = (".nii", ".nii.gz", ".nrrd", ".mha", ".mhd")


def dicom_kind(path: str | Path) -> str:
    """"SEG", "RTSTRUCT", another Modality, or "" for a file that is not DICOM."""
    p = Path(path)
    if not p.is_file() or str(p).lower().endswith(LABEL_SUFFIXES):
        return ""
    try:
        import pydicom

        ds = pydicom.dcmread(str(p), stop_before_pixels=True, specific_tags=["Modality", "SOPClassUID"])
    except Exception:  # noqa: BLE001 - not DICOM
        return ""
    return str(ds.get("Modality", "") or "")


def referenced_series_uid(path: str | Path) -> str:
    """The SeriesInstanceUID a SEG or RTSTRUCT was made on ("" when it does not say)."""
    import pydicom

    ds = pydicom.dcmread(str(path), stop_before_pixels=True)
    for item in ds.get("ReferencedSeriesSequence", []):
        if item.get("SeriesInstanceUID"):
            return str(item.SeriesInstanceUID)
    for fr in ds.get("ReferencedFrameOfReferenceSequence", []):  # RTSTRUCT
        for st in fr.get("RTReferencedStudySequence", []):
            for se in st.get("RTReferencedSeriesSequence", []):
                if se.get("SeriesInstanceUID"):
                    return str(se.SeriesInstanceUID)
    return ""


def load_overlay(path: str | Path, reference, allow_resample: bool = False):
    """A medview.annotation LabelMap on ``reference``'s grid from a label file. Raises LoadError
    (or IdentityError) naming the file when it belongs to another patient/series or grid."""
    from medview.io import LoadError

    path = str(path)
    if path.lower().endswith(LABEL_SUFFIXES):
        from medview.annotation.nifti import load_nifti

        return load_nifti(path, reference, allow_resample=allow_resample)
    kind = dicom_kind(path)
    if kind == "SEG":
        from medview.annotation.dicom_seg import import_dicom_seg

        return import_dicom_seg(path, reference)
    if kind == "RTSTRUCT":
        try:
            from medview.reporting import rtstruct
        except ImportError:
            rtstruct = None
        if rtstruct is None or not hasattr(rtstruct, "read_rtstruct"):
            raise LoadError(path, "RTSTRUCT overlays need medview.reporting.read_rtstruct (not installed)")
        return rtstruct.read_rtstruct(path, reference)
    raise LoadError(path, f"not a label map, DICOM SEG or RTSTRUCT (Modality {kind or 'none'})")


def overlay_layer_args(labelmap) -> dict:
    """Colours and names of a LabelMap's labels, as LabelLayer keyword arguments."""
    return {"colors": {v: tuple(lab.color) for v, lab in labelmap.labels.items()},
            "names": {v: lab.name for v, lab in labelmap.labels.items()},
            "hidden_labels": {v for v, lab in labelmap.labels.items() if not lab.visible}}
