"""Headless reporting commands: deidentify, export-sr, import-sr, export-rtstruct, import-rtstruct,
measurements (CSV), report (PDF/HTML), audit."""

from __future__ import annotations

import argparse
import sys


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("deidentify", help="de-identify DICOM files (PS3.15 Basic Profile): one output file per input")
    p.add_argument("input", help="DICOM file or folder (a study with its SEG/SR keeps its references)")
    p.add_argument("--out", required=True, help="output folder (a file for a single input file ending in .dcm)")
    dates = p.add_mutually_exclusive_group()
    dates.add_argument("--keep-dates", action="store_true", help="keep dates and times (Retain Longitudinal option)")
    dates.add_argument("--shift-dates", type=int, metavar="DAYS", default=None,
                       help="shift every date back by DAYS days (default: a random shift per run)")
    p.add_argument("--seed", default=None,
                   help="replacement seed: the same seed maps the same UIDs/IDs to the same dummies across runs")
    p.set_defaults(func=run_deidentify)
    _register_more(sub)


def _register_more(sub: argparse._SubParsersAction) -> None:
    """The SR, RTSTRUCT, report and audit commands (in their own function to keep register short)."""
    p = sub.add_parser("export-sr", help="write a session's measurements, segment volumes and AI findings as DICOM SR")
    p.add_argument("session", help="review session (workspace folder), `medview infer` output folder, label map "
                                   "(.nii.gz + sidecar) or measurements.json")
    p.add_argument("--reference", required=True, help="the DICOM series folder the session belongs to")
    p.add_argument("--out", required=True, help="output SR file (.dcm)")
    p.add_argument("--seg", default=None, help="DICOM SEG the segment volumes reference (default: written beside "
                                               "the SR as <out>_seg.dcm from the session's label map)")
    p.add_argument("--prediction", action="append", default=[], help="extra prediction.json with AI findings")
    p.set_defaults(func=run_export_sr)

    p = sub.add_parser("import-sr", help="read a DICOM SR's measurements onto its series (JSON for the viewer, CSV)")
    p.add_argument("sr", help="DICOM SR file")
    p.add_argument("--reference", required=True, help="the DICOM series folder the SR references")
    p.add_argument("--out", required=True, help="measurements.json (or .csv)")
    p.set_defaults(func=run_import_sr)

    p = sub.add_parser("export-rtstruct", help="write a label map as an RT Structure Set referencing its series")
    p.add_argument("labels", help="label map (.nii.gz + sidecar), DICOM SEG, or a review session folder")
    p.add_argument("--reference", required=True, help="the DICOM series folder the labels belong to")
    p.add_argument("--out", required=True, help="output RTSTRUCT file (.dcm)")
    p.add_argument("--label", default="MedView", help="structure set label")
    p.set_defaults(func=run_export_rtstruct)

    p = sub.add_parser("import-rtstruct", help="read an RTSTRUCT onto its series as a label map (NIfTI + sidecar)")
    p.add_argument("rtstruct", help="RTSTRUCT file")
    p.add_argument("--reference", required=True, help="the DICOM series folder the structures were drawn on")
    p.add_argument("--out", required=True, help="output label map .nii.gz (+ .json sidecar)")
    p.set_defaults(func=run_import_rtstruct)

    p = sub.add_parser("measurements", help="export a session's (or SR's) measurements as CSV")
    p.add_argument("source", help="review session folder, measurements.json, `medview infer` folder or DICOM SR")
    p.add_argument("--reference", default=None, help="the image (needed for an SR and for LPS positions)")
    p.add_argument("--out", required=True, help="output .csv")
    p.set_defaults(func=run_measurements)

    p = sub.add_parser("report", help="one-page report (PDF or HTML) of a `medview infer` folder or a saved session")
    p.add_argument("result", help="folder written by `medview infer`, review session folder or label map")
    p.add_argument("--out", required=True, help="report.pdf or report.html")
    p.add_argument("--reference", default=None, help="the image (default: the one prediction.json/workspace names)")
    p.add_argument("--key-image", action="append", default=[], help="screenshot to show instead of rendered slices")
    p.set_defaults(func=run_report)

    p = sub.add_parser("audit", help="show the audit trail (who opened, ran, edited, exported which study)")
    p.add_argument("--json", action="store_true", help="raw JSON lines")
    p.add_argument("--verify", action="store_true", help="check that no entry was changed or removed")
    p.set_defaults(func=run_audit)


def _fail(msg: str) -> int:
    print(f"error: {msg}", file=sys.stderr)
    return 2


def run_deidentify(args: argparse.Namespace) -> int:
    from pathlib import Path

    from medview.reporting import audit
    from medview.reporting.deidentify import DeidError, deidentify_path

    src, out = Path(args.input), Path(args.out)
    try:
        if src.is_file() and out.suffix.lower() == ".dcm":
            from medview.reporting.deidentify import Deidentifier

            deid = Deidentifier(seed=args.seed, keep_dates=args.keep_dates, shift_days=args.shift_dates)
            warning = deid.file(src, out)
            written, warnings, skipped = [out], [warning] if warning else [], []
        else:
            res = deidentify_path(src, out, seed=args.seed, keep_dates=args.keep_dates, shift_days=args.shift_dates)
            written, warnings, skipped = res.written, res.warnings, res.skipped
    except DeidError as exc:
        return _fail(str(exc))
    for w in warnings:
        print(f"warning: {w}", file=sys.stderr)
    for s in skipped:
        print(f"skipped: {s}", file=sys.stderr)
    audit.record("deidentify", detail={"input": str(src), "output": str(out), "files": len(written),
                                       "dates": "kept" if args.keep_dates else
                                       (f"shifted {args.shift_dates} days" if args.shift_dates is not None
                                        else "shifted (random)"),
                                       "burned_in_warnings": len(warnings)})
    print(f"wrote {len(written)} de-identified file(s) to {out}"
          + (f"; {len(warnings)} burned-in text warning(s)" if warnings else "")
          + (f"; {len(skipped)} skipped (not DICOM)" if skipped else ""))
    return 0 if written or not skipped else 2


def _reference(path: str):
    from medview.io import load_volume

    return load_volume(path)


def _labelmap_from(path: str, ref):
    """A label map from a NIfTI, a DICOM SEG, a review session or a `medview infer` folder."""
    from pathlib import Path

    from medview.annotation.commands import _load_labels
    from medview.reporting.session import gather

    p = Path(path)
    if p.is_dir():
        lm = gather(p, ref).labelmap
        if lm is None:
            raise ValueError(f"{path}: holds no label map")
        return lm
    return _load_labels(path, ref)


def run_export_sr(args: argparse.Namespace) -> int:
    import json
    from pathlib import Path

    from medview.annotation.dicom_seg import SegError, export_dicom_seg
    from medview.io import LoadError
    from medview.reporting import audit
    from medview.reporting.session import SessionError, gather
    from medview.reporting.sr import Finding, SRError, export_sr
    from medview.reporting.validate import dciodvfy, dciodvfy_path

    written_seg = None  # a SEG this command made for the SR: removed again if the SR is refused
    try:
        ref = _reference(args.reference)
        inputs = gather(args.session, ref)
        records = inputs.all_measurements()
        findings = list(inputs.findings)
        for pj in args.prediction:
            findings.append(Finding.from_prediction_json(json.loads(Path(pj).read_text(encoding="utf-8"))))
        seg = args.seg
        model = None
        if inputs.labelmap is not None:
            pv = inputs.labelmap.provenance
            if pv.model_id:
                model = (pv.model_id, pv.model_version or "", pv.model_sha256 or "")
        if seg is None and any(r.kind == "volume" for r in records):
            out = Path(args.out)
            seg = written_seg = export_dicom_seg(inputs.labelmap, out.with_name(out.stem + "_seg.dcm"),
                                                 ref.meta["source_files"])
        out = export_sr(args.out, ref, records, findings, seg_path=seg, segmentation_model=model)
        if written_seg is not None:
            print(f"wrote {written_seg} (the SEG the segment volumes reference)")
    except (LoadError, SegError, SRError, SessionError, ValueError, OSError) as exc:
        if written_seg is not None:
            Path(written_seg).unlink(missing_ok=True)
        return _fail(str(exc))
    kinds = {}
    for r in records:
        kinds[r.kind] = kinds.get(r.kind, 0) + 1
    audit.record("export", ref.meta, {"format": "DICOM SR", "output": str(out), "seg": str(seg or "")})
    line = (f"wrote {out}: " + ", ".join(f"{n} {k}" for k, n in sorted(kinds.items()))
            + f", {len(findings)} AI finding(s)")
    if dciodvfy_path():
        v = dciodvfy(out)
        line += f"; dciodvfy: {len(v.errors)} error(s), {len(v.warnings)} warning(s)"
    print(line)
    return 0


def run_import_sr(args: argparse.Namespace) -> int:
    from medview.io import LoadError
    from medview.reporting.measurements import save_measurements, write_csv
    from medview.reporting.sr import SRError, read_sr

    try:
        ref = _reference(args.reference)
        content = read_sr(args.sr, ref)
    except (LoadError, SRError) as exc:
        return _fail(str(exc))
    if args.out.lower().endswith(".csv"):
        out = write_csv(content.measurements, args.out, ref)
    else:
        from medview.annotation.labelmap import reference_from_image

        out = save_measurements(content.measurements, args.out, reference_from_image(ref))
    print(f"wrote {out}: {len(content.measurements)} measurement(s), {len(content.findings)} AI finding(s)")
    for f in content.findings:
        print(f"  {f.model_id} {f.model_version}: {f.top_class} "
              + ", ".join(f"{c}={p:.3f}" for c, p in f.probabilities.items()))
    return 0


def run_export_rtstruct(args: argparse.Namespace) -> int:
    from medview.annotation.dicom_seg import SegError
    from medview.io import LoadError
    from medview.reporting import audit
    from medview.reporting.rtstruct import RTStructError, export_rtstruct
    from medview.reporting.validate import dciodvfy, dciodvfy_path

    try:
        ref = _reference(args.reference)
        lm = _labelmap_from(args.labels, ref)
        out = export_rtstruct(lm, args.out, ref.meta.get("source_files"), structure_set_label=args.label)
    except (LoadError, SegError, RTStructError, ValueError) as exc:
        return _fail(str(exc))
    audit.record("export", ref.meta, {"format": "RTSTRUCT", "output": str(out)})
    line = f"wrote {out}: structures " + ", ".join(f"{lm.labels[v].name if v in lm.labels else v}"
                                                    for v in sorted(lm.counts()))
    if dciodvfy_path():
        v = dciodvfy(out)
        line += f"; dciodvfy: {len(v.errors)} error(s), {len(v.warnings)} warning(s)"
    print(line)
    return 0


def run_import_rtstruct(args: argparse.Namespace) -> int:
    from medview.annotation.nifti import save_nifti
    from medview.io import LoadError
    from medview.reporting.rtstruct import read_rtstruct

    try:
        ref = _reference(args.reference)
        lm = read_rtstruct(args.rtstruct, ref)
        out = save_nifti(lm, args.out)
    except (LoadError, ValueError) as exc:
        return _fail(str(exc))
    for w in lm.volume.warnings:
        print(f"warning: {w}", file=sys.stderr)
    print(f"wrote {out}: " + ", ".join(f"{lm.labels[v].name}={n}" for v, n in sorted(lm.counts().items())))
    return 0


def run_measurements(args: argparse.Namespace) -> int:
    from medview.io import LoadError
    from medview.reporting.measurements import write_csv
    from medview.reporting.session import SessionError, gather
    from medview.reporting.sr import SRError, read_sr

    try:
        ref = _reference(args.reference) if args.reference else None
        if args.source.lower().endswith(".dcm"):
            records = read_sr(args.source, ref).measurements
        else:
            inputs = gather(args.source, ref)
            records, ref = inputs.all_measurements(), inputs.image
    except (LoadError, SRError, SessionError) as exc:
        return _fail(str(exc))
    out = write_csv(records, args.out, ref)
    print(f"wrote {out}: {len(records)} measurement(s)")
    return 0


def run_report(args: argparse.Namespace) -> int:
    from medview.io import LoadError
    from medview.reporting import audit
    from medview.reporting.report_content import build_content
    from medview.reporting.session import SessionError, gather

    try:
        inputs = gather(args.result, args.reference)
        content = build_content(inputs, args.key_image)
    except (LoadError, SessionError, OSError) as exc:
        return _fail(str(exc))
    if args.out.lower().endswith((".html", ".htm")):
        from medview.reporting.report_html import write_html

        out = write_html(content, args.out)
    else:
        from medview.reporting.report_pdf import write_pdf

        out = write_pdf(content, args.out)
    audit.record("export", inputs.image.meta if inputs.image is not None else {},
                 {"format": "report", "output": str(out), "source": str(args.result)})
    for w in inputs.warnings:
        print(f"warning: {w}", file=sys.stderr)
    print(f"wrote {out}: {len(content.key_images)} key image(s), {len(content.findings)} finding(s), "
          f"{len(content.volumes)} volume(s), {len(content.measurements)} measurement(s)")
    return 0


def run_audit(args: argparse.Namespace) -> int:
    import json

    from medview.reporting.audit import audit_log_path, read_log, verify_chain

    entries = read_log()
    if args.verify:
        bad = verify_chain()
        print(f"{audit_log_path()}: {len(entries)} entries, " + ("chain intact" if bad is None
                                                                 else f"line {bad} does not follow the one before"))
        return 0 if bad is None else 1
    for e in entries:
        if args.json:
            print(json.dumps(e, sort_keys=True))
            continue
        study = e.get("study", {})
        what = study.get("StudyInstanceUID") or study.get("path") or ""
        detail = ", ".join(f"{k}={v}" for k, v in e.get("detail", {}).items())
        print(f"{e.get('time', '?')}  {e.get('user', '?'):<12} {e.get('action', '?'):<11} {what}  {detail}")
    return 0
