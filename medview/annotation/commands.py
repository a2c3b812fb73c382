"""Headless annotation commands: export-seg, import-seg, export-training."""

from __future__ import annotations

import argparse
import sys


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("export-seg", help="write a NIfTI label map as DICOM SEG referencing its DICOM series")
    p.add_argument("labels", help="label map (.nii/.nii.gz; a .json sidecar beside it gives names and colours)")
    p.add_argument("--reference", required=True, help="folder (or file) of the DICOM series the labels belong to")
    p.add_argument("--out", required=True, help="output DICOM SEG file")
    p.add_argument("--description", default="MedView segmentation", help="series description of the SEG")
    _resample_flag(p)
    p.set_defaults(func=run_export_seg)

    p = sub.add_parser("import-seg", help="read a DICOM SEG (or label NIfTI) onto its series and write NIfTI")
    p.add_argument("seg", help="DICOM SEG file or label .nii/.nii.gz")
    p.add_argument("--reference", required=True, help="the image series/file the labels belong to")
    p.add_argument("--out", required=True, help="output label map .nii.gz (+ .json sidecar)")
    _resample_flag(p)
    p.set_defaults(func=run_import_seg)

    p = sub.add_parser("export-training", help="add an image + label map to a training-set folder")
    p.add_argument("labels", help="label map .nii/.nii.gz or DICOM SEG")
    p.add_argument("--reference", required=True, help="the image (series folder or file)")
    p.add_argument("--out", required=True, help="training-set folder (images/, labels/, dataset.json)")
    p.add_argument("--case", default=None, help="case id (default: case_<hash of the series UID>)")
    _resample_flag(p)
    p.set_defaults(func=run_export_training)


def _resample_flag(p: argparse.ArgumentParser) -> None:
    p.add_argument("--resample", action="store_true",
                   help="accept a label NIfTI without a sidecar on another voxel grid: resample it "
                        "nearest-neighbour in world space onto the reference grid (identity not verified)")


def _load_reference(path: str):
    from medview.io import load_volume

    return load_volume(path)


def _load_labels(path: str, reference, allow_resample: bool = False):
    from medview.annotation.dicom_seg import import_dicom_seg
    from medview.annotation.nifti import load_nifti

    low = path.lower()
    if low.endswith((".nii", ".nii.gz", ".nrrd", ".mha", ".mhd")):
        return load_nifti(path, reference, allow_resample=allow_resample)
    return import_dicom_seg(path, reference)


def _print_warnings(lm) -> None:
    for w in lm.volume.warnings:
        print(f"warning: {w}", file=sys.stderr)


def _fail(msg: str) -> int:
    print(f"error: {msg}", file=sys.stderr)
    return 2


def run_export_seg(args: argparse.Namespace) -> int:
    from medview.annotation.dicom_seg import SegError, export_dicom_seg
    from medview.annotation.nifti import load_nifti
    from medview.io import LoadError

    try:
        ref = _load_reference(args.reference)
        if not ref.meta.get("source_files"):
            return _fail(f"{args.reference}: not a DICOM series (DICOM SEG needs DICOM source images)")
        lm = load_nifti(args.labels, ref, allow_resample=args.resample)
        _print_warnings(lm)
        out = export_dicom_seg(lm, args.out, ref.meta["source_files"], series_description=args.description)
    except (LoadError, SegError) as exc:
        return _fail(str(exc))
    counts = lm.counts()
    print(f"wrote {out}: {len(counts)} segment(s) with voxels "
          + ", ".join(f"{lm.labels[v].name}={n}" for v, n in sorted(counts.items()) if v in lm.labels)
          + f"; references {len(ref.meta['source_files'])} image(s) of series {ref.meta.get('SeriesInstanceUID', '?')}")
    return 0


def run_import_seg(args: argparse.Namespace) -> int:
    from medview.annotation.dicom_seg import SegError
    from medview.annotation.nifti import save_nifti
    from medview.io import LoadError

    try:
        ref = _load_reference(args.reference)
        lm = _load_labels(args.seg, ref, args.resample)
        _print_warnings(lm)
        out = save_nifti(lm, args.out)
    except (LoadError, SegError) as exc:
        return _fail(str(exc))
    print(f"wrote {out}: labels {lm.counts()}")
    return 0


def run_export_training(args: argparse.Namespace) -> int:
    from medview.annotation.dicom_seg import SegError
    from medview.annotation.training_set import export_training_case
    from medview.io import LoadError

    try:
        ref = _load_reference(args.reference)
        lm = _load_labels(args.labels, ref, args.resample)
        _print_warnings(lm)
        entry = export_training_case(ref, lm, args.out, case_id=args.case)
    except (LoadError, SegError, ValueError) as exc:
        return _fail(str(exc))
    print(f"added case {entry['case']} to {args.out}: {entry['image']} + {entry['label']}")
    return 0
