"""`medview info PATH`: what a folder holds, as a table (headers only, no pixels)."""

from __future__ import annotations

import argparse
import sys


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("info", help="list the patients, studies and series under PATH")
    p.add_argument("path", nargs="+", help="folder(s), DICOMDIR or files")
    p.add_argument("--problems", action="store_true", help="also list every unreadable file")
    p.set_defaults(func=run_info)


def run_info(args: argparse.Namespace) -> int:
    from medview.io import scan
    from medview.io.dicom_series import series_geometry
    from medview.io.errors import LoadError

    index = scan(args.path)
    rows = []
    for s in index.series:
        warnings = list(s.warnings)
        if s.kind == "dicom":
            try:
                size, spacing, geo_warnings = series_geometry(s)
                warnings += geo_warnings
                size_txt = "x".join(str(v) for v in size)
                spacing_txt = "x".join(f"{v:.3g}" for v in spacing)
            except LoadError as exc:
                size_txt, spacing_txt = f"{s.columns}x{s.rows}x{s.n_images}", "?"
                warnings.append(exc.reason)
        else:
            size_txt, spacing_txt = _file_geometry(str(s.path), warnings)
        rows.append((s.patient_name or s.patient_id or "-", _date(s.study_date), s.modality or s.kind,
                     s.description or "-", size_txt, spacing_txt, str(s.path), "; ".join(warnings)))
    studies = index.studies()
    patients = index.patients()
    print(f"{len(patients)} patient(s), {len(studies)} stud(ies), {len(index.series)} series, "
          f"{len(index.problems)} problem file(s)")
    header = ("patient", "study date", "modality", "description", "size", "spacing mm", "path", "warnings")
    widths = [max(len(str(r[i])) for r in rows + [header]) for i in range(len(header))]
    widths[-1] = len(header[-1])
    line = "  ".join(h.ljust(w) for h, w in zip(header, widths, strict=False))
    print(line)
    print("-" * len(line))
    for r in rows:
        print("  ".join(str(v).ljust(w) for v, w in zip(r, widths, strict=False)).rstrip())
    if index.problems:
        shown = index.problems if args.problems else index.problems[:5]
        print(f"\nproblems ({len(index.problems)}):", file=sys.stdout)
        for path, reason in shown:
            print(f"  {path}: {reason}")
        if len(shown) < len(index.problems):
            print(f"  ... {len(index.problems) - len(shown)} more (--problems lists all)")
    return 0 if index.series else 1


def _file_geometry(path: str, warnings: list[str]) -> tuple[str, str]:
    """Size and spacing of a NIfTI/NRRD/MHA/image file from its header (no voxels read)."""
    import SimpleITK as sitk

    try:
        reader = sitk.ImageFileReader()
        reader.SetFileName(path)
        reader.ReadImageInformation()
    except RuntimeError:
        warnings.append("header unreadable")
        return "?", "?"
    size = "x".join(str(v) for v in reader.GetSize())
    spacing = "x".join(f"{v:.3g}" for v in reader.GetSpacing())
    return size, spacing


def _date(d: str) -> str:
    return f"{d[:4]}-{d[4:6]}-{d[6:8]}" if len(d) == 8 and d.isdigit() else (d or "-")
