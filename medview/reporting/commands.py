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
