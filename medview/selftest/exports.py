"""Self-test of label export: NIfTI and DICOM SEG written through medview.annotation, read back by
independent readers and compared with the source geometry."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from medview.selftest.report import FAIL, PASS


def label_map(state: dict):
    """The label map to export: the 3D model's segmentation of a sample series, else a threshold
    mask of the smallest sample DICOM series (said so in the detail)."""
    if "label_map" in state:
        return state["label_map"]
    from medview.annotation.correction import edit_prediction
    from medview.annotation.labelmap import Label, LabelMap

    if "seg_prediction" in state:
        pkg, vol, pred = state["seg_prediction"]
        lm, _orig = edit_prediction(pred, vol)
        if lm.present_values():
            state["label_map"] = (lm, vol, f"{pkg.id} segmentation of {vol.meta.get('SeriesDescription', 'sample')}")
            return state["label_map"]
    vols = [v for v in state.get("sample_volumes") or [] if v.meta.get("source_files")]
    if not vols:
        raise RuntimeError("no sample DICOM series to draw a label map on")
    vol = min(vols, key=lambda v: int(np.prod(v.shape)))
    a = np.asarray(vol.array, dtype=np.float32)
    mask = (a > np.percentile(a, 90)).astype(np.uint8)
    mask[a > np.percentile(a, 98)] = 2
    lm = LabelMap.from_array(vol, mask, [Label(1, "bright", (255, 200, 0)), Label(2, "brightest", (0, 180, 255))])
    why = "no 3D segmentation result on the sample" if "seg_prediction" not in state else "the model found nothing"
    state["label_map"] = (lm, vol, f"threshold mask of {vol.meta.get('SeriesDescription', 'sample')} ({why})")
    return state["label_map"]


def _size(path: Path) -> str:
    n = path.stat().st_size
    return f"{n} bytes" if n < 10240 else f"{n // 1024} KiB"


def same_geometry_detail(a, b, tol: float = 1e-3) -> list[str]:
    errs = []
    if tuple(a.shape) != tuple(b.shape):
        errs.append(f"shape {a.shape} != {b.shape}")
    for name in ("spacing", "origin"):
        x, y = np.asarray(getattr(a, name), float), np.asarray(getattr(b, name), float)
        if x.shape != y.shape or not np.allclose(x, y, atol=tol):
            errs.append(f"{name} {np.round(x, 4).tolist()} != {np.round(y, 4).tolist()}")
    if not np.allclose(np.asarray(a.direction, float), np.asarray(b.direction, float), atol=1e-4):
        errs.append("direction differs")
    return errs


def check_nifti(out: Path, state: dict) -> tuple[str, str]:
    import nibabel as nib
    import SimpleITK as sitk

    from medview.annotation.nifti import load_nifti, save_nifti
    from medview.io.volume import Volume

    lm, vol, what = label_map(state)
    path = save_nifti(lm, out / "labels.nii.gz")
    errs = []
    # 1. independent reader (ITK): voxels and LPS geometry equal the source series
    back = Volume.from_sitk(sitk.ReadImage(str(path)))
    errs += [f"ITK: {e}" for e in same_geometry_detail(back, vol)]
    if not np.array_equal(back.array, lm.array):
        errs.append("ITK: voxels differ")
    # 2. nibabel: the RAS affine is the source's LPS affine flipped in x and y
    img = nib.load(str(path))
    ras = np.diag([-1.0, -1.0, 1.0, 1.0]) @ vol.affine
    if not np.allclose(img.affine, ras, atol=1e-3):
        errs.append("nibabel: affine differs from the source geometry")
    if not np.array_equal(np.asarray(img.dataobj).transpose(2, 1, 0), lm.array):
        errs.append("nibabel: voxels differ")
    # 3. MedView's own reader onto the source grid, with the label table
    lm2 = load_nifti(path, reference=vol)
    if lm2.volume.warnings:
        errs.append("medview: " + "; ".join(lm2.volume.warnings))
    if not np.array_equal(lm2.array, lm.array):
        errs.append("medview: voxels differ")
    if {v: lab.name for v, lab in lm2.labels.items()} != {v: lab.name for v, lab in lm.labels.items()}:
        errs.append("medview: label names differ")
    if errs:
        return FAIL, f"{path.name}: " + "; ".join(errs)
    n = int(np.count_nonzero(lm.array))
    return PASS, (f"{path.name} ({_size(path)}, {n} labelled voxels) from {what}: "
                  "ITK, nibabel, medview agree")


def check_seg(out: Path, state: dict) -> tuple[str, str]:
    import pydicom

    from medview.annotation.dicom_seg import export_dicom_seg, import_dicom_seg

    lm, vol, what = label_map(state)
    path = export_dicom_seg(lm, out / "labels_seg.dcm")
    errs = []
    ds = pydicom.dcmread(str(path))
    src = pydicom.dcmread(str(vol.meta["source_files"][0]), stop_before_pixels=True)
    if ds.Modality != "SEG":
        errs.append(f"Modality {ds.Modality}")
    ref_series = {str(r.SeriesInstanceUID) for r in ds.get("ReferencedSeriesSequence", [])}
    if str(src.SeriesInstanceUID) not in ref_series:
        errs.append("does not reference the source series")
    if str(ds.FrameOfReferenceUID) != str(src.FrameOfReferenceUID):
        errs.append("FrameOfReferenceUID differs from the source")
    shared = ds.SharedFunctionalGroupsSequence[0]
    pm = shared.PixelMeasuresSequence[0]
    if not np.allclose([float(x) for x in pm.PixelSpacing], [float(x) for x in src.PixelSpacing], atol=1e-4):
        errs.append(f"PixelSpacing {list(pm.PixelSpacing)} != {list(src.PixelSpacing)}")
    iop = shared.get("PlaneOrientationSequence")
    if iop and not np.allclose([float(x) for x in iop[0].ImageOrientationPatient],
                               [float(x) for x in src.ImageOrientationPatient], atol=1e-4):
        errs.append("ImageOrientationPatient differs from the source")
    lm2 = import_dicom_seg(path, vol)
    errs += [f"re-read: {e}" for e in same_geometry_detail(lm2.volume, vol)]
    if not np.array_equal(lm2.array, lm.array):
        errs.append(f"re-read voxels differ ({int(np.count_nonzero(lm2.array != lm.array))} voxels)")
    if errs:
        return FAIL, f"{path.name}: " + "; ".join(errs)
    return PASS, (f"{path.name} ({_size(path)}, {int(ds.NumberOfFrames)} frames, "
                  f"{len(ds.SegmentSequence)} segments) from {what}: references the source, voxels and geometry equal")
