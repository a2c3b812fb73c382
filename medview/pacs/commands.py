"""`medview pacs echo|find|get|send|sources`: the PACS seam from the command line.

SOURCE is a configured name, ``http(s)://HOST:PORT/PATH`` (DICOMweb root) or
``dicom://AET@HOST:PORT`` (DIMSE). A failure is one line on stderr and exit code 2.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("pacs", help="query, retrieve and send studies on a PACS (DICOMweb or DIMSE)")
    p.add_argument("--aet", default=None, help="our AE title for DIMSE addresses (default MEDVIEW)")
    p.add_argument("--timeout", type=float, default=None, help="network timeout in seconds (default 20)")
    p.add_argument("--cache", default=None, help="retrieve cache folder (default: the user cache)")
    pacs = p.add_subparsers(dest="pacs_command", required=True)
    e = pacs.add_parser("echo", help="check that SOURCE answers (C-ECHO or a QIDO-RS search)")
    e.add_argument("source")
    f = pacs.add_parser("find", help="one line per study: StudyInstanceUID, patient ID, date, modalities, "
                                     "description")
    f.add_argument("source")
    f.add_argument("--patient-id", default="")
    f.add_argument("--patient-name", default="", help="glob, e.g. 'DOE*'")
    f.add_argument("--modality", default="")
    f.add_argument("--date", default="", help="YYYYMMDD, YYYYMMDD-YYYYMMDD, YYYYMMDD- or -YYYYMMDD")
    f.add_argument("--accession", default="")
    g = pacs.add_parser("get", help="retrieve a study (every series) into DIR")
    g.add_argument("source")
    g.add_argument("study_uid")
    g.add_argument("--out", required=True, help="folder to write the study to")
    s = pacs.add_parser("send", help="store DICOM files (SEG, SR, images) on SOURCE")
    s.add_argument("source")
    s.add_argument("files", nargs="+")
    pacs.add_parser("sources", help="list the configured sources (never their credentials)")
    v = pacs.add_parser("serve-local", help="demo: a throw-away Orthanc on loopback (DICOMweb + DIMSE) loaded "
                                            "with FOLDERs (default: the sample study and the shared TCIA series), "
                                            "registered as sources 'local-web' and 'local-dimse' until Ctrl-C")
    v.add_argument("folders", nargs="*")
    v.add_argument("--no-register", action="store_true", help="do not add the sources to the settings")
    p.set_defaults(func=run_pacs)


def _open(args: argparse.Namespace):
    from medview.pacs.cache import DicomCache
    from medview.pacs.registry import open_source
    from medview.pacs.source import parse_source

    cfg = parse_source(args.source)
    if args.aet:
        cfg.calling_aet = args.aet
    if args.timeout:
        cfg.timeout = args.timeout
    for warning in cfg.warnings():
        print(f"warning: {warning}", file=sys.stderr)
    cache = DicomCache(args.cache) if args.cache else None
    return open_source(cfg, cache)


def run_pacs(args: argparse.Namespace) -> int:
    from medview.pacs.model import PacsError
    from medview.progress import Cancelled

    try:
        return _COMMANDS[args.pacs_command](args)
    except PacsError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except (Cancelled, KeyboardInterrupt):
        print("cancelled", file=sys.stderr)
        return 130


def _echo(args) -> int:
    src = _open(args)
    src.echo()
    print(f"{src.name}: OK")
    return 0


def _find(args) -> int:
    from medview.pacs.model import StudyQuery

    lo, hi = StudyQuery.parse_dates(args.date)
    query = StudyQuery(patient_id=args.patient_id, patient_name=args.patient_name, modality=args.modality,
                       date_from=lo, date_to=hi, accession=args.accession)
    studies = _open(args).find_studies(query)
    for st in studies:
        print(st.line())
    print(f"{len(studies)} stud(ies)", file=sys.stderr)
    return 0


def _get(args) -> int:
    import shutil

    src = _open(args)
    out = Path(args.out)

    def progress(fraction: float, stage: str) -> None:
        print(f"\r{fraction * 100:5.1f}% {stage[:60]:<60}", end="", file=sys.stderr, flush=True)

    folders = src.retrieve_study(args.study_uid, progress)
    print(file=sys.stderr)
    n = 0
    for folder in folders:
        target = out / folder.name
        target.mkdir(parents=True, exist_ok=True)
        for f in sorted(Path(folder).glob("*.dcm")):
            shutil.copy2(f, target / f.name)
            n += 1
    if not folders:
        print(f"error: {src.name}: no series in study {args.study_uid}", file=sys.stderr)
        return 2
    print(f"{n} file(s) in {len(folders)} series -> {out}")
    return 0


def _send(args) -> int:
    files = [Path(f) for f in args.files]
    missing = [f for f in files if not f.is_file()]
    if missing:
        print(f"error: {missing[0]}: no such file", file=sys.stderr)
        return 2
    n = _open(args).store(files)
    print(f"stored {n} file(s) on {args.source}")
    return 0


def _sources(args) -> int:  # noqa: ARG001 - same signature as the others
    from medview.pacs.source import load_sources, sources_file

    sources = load_sources()
    if not sources:
        print(f"no sources configured ({sources_file()})")
    for cfg in sources.values():
        print(f"{cfg.name}\t{cfg.kind}\t{cfg.describe()}\tauth={cfg.auth}")
        for w in cfg.warnings():
            print(f"  warning: {w}")
    return 0


def _serve_local(args) -> int:
    from medview.pacs.orthanc import main

    return main([*args.folders, *(["--no-register"] if args.no_register else [])])


_COMMANDS = {"echo": _echo, "find": _find, "get": _get, "send": _send, "sources": _sources,
             "serve-local": _serve_local}
