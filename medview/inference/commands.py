"""`medview infer` and `medview models` (list, import): headless inference and the model registry."""

from __future__ import annotations

import argparse
import json
import re
import sys
import time
from pathlib import Path

from medview.inference.outputs import NothingToRun, write_outputs
from medview.inference.outputs import one_line as _one_line


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("infer", help="run a model on a file, a series folder or a folder of studies")
    p.add_argument("path", help="image file, series folder, a folder of studies (batch), or pacs:SOURCE[?modality=MR"
                                "&date=YYYYMMDD-YYYYMMDD] (batch over a PACS source, see docs/CAMPAIGNS.md)")
    p.add_argument("--model", required=True, help="model id (see `medview models`) or a package folder")
    p.add_argument("--out", required=True, help="output folder (one sub-folder per series in a batch)")
    p.add_argument("--device", dest="infer_device", default=None, help="auto (default), cpu, cuda, cuda:N, mps")
    p.add_argument("--cam", nargs="?", const="gradcam", choices=["gradcam", "gradcam++"], default=None,
                   help="classifiers: also write a Grad-CAM heatmap (gradcam.nii.gz)")
    p.add_argument("--cam-class", default=None, help="class name or index for Grad-CAM (default: top class)")
    p.add_argument("--tta", action="store_true",
                   help="segmentation: test-time flips; writes uncertainty.nii.gz")
    p.add_argument("--tta-views", choices=["fast", "accurate"], default=None,
                   help="fast: one pass (the default of most packages); accurate: the mean over the model's "
                        "flipped/turned views (output.tta, 2-8x the time); the card gives both figures")
    p.add_argument("--whole-image", choices=["auto", "yes", "no"], default="auto",
                   help="one pass over the whole image when it fits memory (auto), always, or sliding windows")
    p.add_argument("--batch-size", type=int, default=None, help="slices per batch for 2D models")
    p.add_argument("--threads", type=int, default=None,
                   help="CPU threads for torch (default: torch's choice; 1 is faster on a busy machine)")
    p.add_argument("--unverified-ok", action="store_true",
                   help="run also on images that cannot be checked against what the model accepts (no "
                        "modality: NIfTI, PNG, JPEG); prediction.json then says 'input not verified'")
    from medview.campaign.commands import add_batch_options

    add_batch_options(p)  # a folder of cases runs as Dask tasks (medview/campaign/batch.py)
    p.set_defaults(func=run_infer)

    m = sub.add_parser("models", help="list model packages and their status; import MONAI bundles")
    m.add_argument("--json", action="store_true", help="machine-readable listing")
    msub = m.add_subparsers(dest="models_command")
    lst = msub.add_parser("list", help="list packages (the default)")
    lst.add_argument("--json", action="store_true", help="machine-readable listing")
    imp = msub.add_parser("import", help="turn a MONAI bundle (folder or zip) into a MedView package")
    imp.add_argument("path", help="MONAI bundle folder or .zip")
    imp.add_argument("--trust", action="store_true",
                     help="confirm the import: TorchScript weights (code) are deserialised to copy them out; "
                          "config expressions are never evaluated")
    imp.add_argument("--id", dest="model_id", default=None, help="package id (default: from the bundle name)")
    imp.add_argument("--dest", default=None, help="models folder to write into (default: the user's)")
    imp.add_argument("--overwrite", action="store_true", help="replace an existing package folder")
    m.set_defaults(func=run_models)


# ---------------------------------------------------------------------------------------------
# medview models
# ---------------------------------------------------------------------------------------------
def run_models(args: argparse.Namespace) -> int:
    if getattr(args, "models_command", None) == "import":
        return _run_import(args)
    from medview.inference.package import discover_packages, search_paths

    pkgs = discover_packages()
    if args.json:
        print(json.dumps([{"id": p.id, "name": p.name, "version": p.version, "task": p.task,
                           "status": p.status, "reason": p.reason, "source": p.source, "path": str(p.path),
                           "sha256": p.sha256} for p in pkgs], indent=2))
        return 0
    if not pkgs:
        print("no model packages found; searched:")
        for source, folder in search_paths():
            print(f"  {source}: {folder}")
        return 0
    header = ("id", "version", "task", "status", "source", "path")
    rows = [(p.id, p.version or "-", p.task or "-", p.status, p.source, str(p.path)) for p in pkgs]
    widths = [max(len(r[i]) for r in rows + [header]) for i in range(len(header))]
    print("  ".join(h.ljust(w) for h, w in zip(header, widths, strict=False)))
    for p, r in zip(pkgs, rows, strict=False):
        print("  ".join(v.ljust(w) for v, w in zip(r, widths, strict=False)).rstrip())
        if not p.ok:
            print(f"    -> unusable: {p.reason}")
    return 0


def _run_import(args: argparse.Namespace) -> int:
    from medview.inference.bundle import BundleError, import_bundle, inspect_bundle

    try:
        report = inspect_bundle(args.path)
    except BundleError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    print(report.summary())
    if report.refused:
        print(f"\nerror: {args.path}: network_def cannot be rebuilt without running bundle code; nothing was "
              "imported (MedView evaluates no config expression, with or without --trust)", file=sys.stderr)
        return 2
    if not args.trust:
        print(
            "\nNothing was imported. MedView evaluates none of the expressions listed above; with --trust it only\n"
            "reads network_def's literal arguments (an allow-listed network), loads the weights (TorchScript is\n"
            "code and is deserialised once to copy them out) and writes a plain package. If you trust this\n"
            "bundle, run again with --trust.",
        )
        return 3
    try:
        pkg = import_bundle(args.path, args.dest, trust_code=True, model_id=args.model_id, overwrite=args.overwrite)
    except BundleError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    print(f"\nimported as {pkg.id} v{pkg.version} ({pkg.task}) -> {pkg.path}")
    return 0


# ---------------------------------------------------------------------------------------------
# medview infer
# ---------------------------------------------------------------------------------------------
class _Bar:
    """A one-line text progress bar on stderr (a plain line per update when not a terminal)."""

    def __init__(self, prefix: str = "") -> None:
        self.prefix = prefix
        self.tty = sys.stderr.isatty()
        self.last = ""

    def __call__(self, fraction: float, stage: str) -> None:
        n = int(round(max(0.0, min(1.0, fraction)) * 30))
        line = f"{self.prefix}[{'#' * n}{'.' * (30 - n)}] {fraction * 100:5.1f}% {stage}"
        if self.tty:
            sys.stderr.write("\r" + line[:150].ljust(len(self.last)))
            if fraction >= 1.0:
                sys.stderr.write("\n")
        elif stage != self.last.split("% ", 1)[-1]:
            sys.stderr.write(line + "\n")
        sys.stderr.flush()
        self.last = line


def _safe(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9._-]+", "_", text).strip("_")[:80] or "series"


def _targets(path: Path):
    """([(name, path, loader)], [(path, reason)]) for a file, a series folder or a folder of studies:
    the series to run, and what the scan could not read (reported as failed cases)."""
    from medview.io import load_series, load_volume, scan
    from medview.io.scan import file_kind

    if path.is_file() and file_kind(path) is not None:
        return [(path.name, str(path), lambda progress=None: load_volume(path, progress=progress))], []
    index = scan(path)
    problems = [(str(p), str(why)) for p, why in index.problems]
    if not index.series:
        reason = problems[0][1] if problems else "no images found"
        raise NothingToRun(f"{path}: {reason}")
    out = []
    for s in index.series:
        label = " ".join(x for x in (s.patient_id, s.study_date, f"S{s.series_number}" if s.series_number else "",
                                      s.description) if x) or Path(s.path).name or s.uid
        out.append((label, str(s.path), lambda progress=None, s=s: load_series(s, progress=progress)))
    return out, problems


def run_infer(args: argparse.Namespace) -> int:
    from medview.inference.package import PackageError, find_package
    from medview.inference.pipeline import InferenceError, run_model, validate_cam_class

    device = args.infer_device or getattr(args, "device", None)
    try:
        pkg = find_package(args.model)
    except PackageError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    cam_class = args.cam_class
    try:  # before any work: no model or image is loaded for a class the model does not have
        validate_cam_class(pkg, cam_class)
        if args.cam and pkg.task != "classification":
            raise InferenceError(f"--cam needs a classifier; {pkg.id} is a {pkg.task} model")
    except InferenceError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    if device not in (None, "", "auto"):
        from medview.inference.device import choose_device

        try:
            choose_device(device)
        except ValueError as exc:
            print(f"error: {exc}", file=sys.stderr)
            return 2
    if args.threads:
        import torch

        torch.set_num_threads(max(1, args.threads))
    path = Path(args.path)
    pacs = str(args.path).startswith("pacs:")  # pacs:SOURCE[?filters]: the campaign batch retrieves the studies
    if not pacs and not path.exists():
        print(f"error: {path}: does not exist", file=sys.stderr)
        return 2
    if pacs or path.is_dir() or args.resume or args.workers or args.scheduler:
        from medview.campaign.cases import NoCases, discover

        try:  # several cases (or batch options): the campaign batch, one Dask task per case
            found, found_problems = discover(args.path if pacs else path)
        except (NoCases, OSError) as exc:
            print(f"error: {exc}", file=sys.stderr)
            return 2
        if pacs or len(found) + len(found_problems) > 1 or args.resume or args.workers or args.scheduler:
            from medview.campaign.commands import batch_infer

            return batch_infer(args, pkg, found, found_problems)
    try:
        targets, problems = _targets(path)
    except Exception as exc:  # noqa: BLE001 - a path that cannot be scanned: one line, no traceback
        text = _one_line(exc)
        print(f"error: {text}" if str(path) in text else f"error: {path}: {text}", file=sys.stderr)
        return 2
    out_root = Path(args.out)
    batch = len(targets) + len(problems) > 1
    summary: list[dict] = []
    t0 = time.perf_counter()
    used = set()
    for p, why in problems:  # files the scan could not read: failed cases, the rest goes on
        print(f"error: {p}: {why}", file=sys.stderr)
        summary.append({"case": p, "path": p, "status": "failed", "reason": why})
    for n, (label, src, load) in enumerate(targets, 1):
        prefix = f"[{n}/{len(targets)}] " if batch else ""
        bar = _Bar(prefix)
        out_dir = out_root
        if batch:
            name = _safe(label)
            while name in used:
                name += "_"
            used.add(name)
            out_dir = out_root / name
        try:
            vol = load(progress=lambda f, s, bar=bar, label=label: bar(0.1 * f, f"loading {label}"))
            check = pkg.check_input(vol)
            if check.refused:
                raise InferenceError(f"model {pkg.id} does not fit: {check.reason}")
            if check.verdict == "unverified" and not args.unverified_ok:
                raise InferenceError(f"model {pkg.id}: {check.note()}; refused: run with --unverified-ok "
                                     "if you know this image is what the model is made for")
            pred = run_model(pkg, vol, device=device, cam=args.cam, cam_class=cam_class, tta=args.tta,
                             tta_setting=args.tta_views,
                             whole_image={"auto": None, "yes": True, "no": False}[args.whole_image],
                             batch_size=args.batch_size, unverified_ok=args.unverified_ok,
                             progress=lambda f, s, bar=bar: bar(0.1 + 0.9 * f, s))
            files = write_outputs(pred, out_dir, vol)
        except KeyboardInterrupt:
            raise
        except Exception as exc:  # noqa: BLE001 - one case failing never aborts the others
            reason = _one_line(exc)
            where = src if src.endswith(label) else f"{label} ({src})"
            print(f"{prefix}error: {reason}" if reason.startswith(src) else f"{prefix}error: {where}: {reason}",
                  file=sys.stderr)
            summary.append({"case": label, "path": src, "status": "failed", "reason": reason})
            continue
        for msg in pred.messages:
            print(f"{prefix}note: {msg}", file=sys.stderr)
        from medview.inference.prediction import label_size_text

        result = pred.top_class or ", ".join(f"{i['name']} {label_size_text(i)}" for i in pred.label_info)
        if pred.grading:  # a grade on its scale: "KL 2.5: moderate (KL3, p 0.45); OA present: yes (...)"
            from medview.inference.grading import grade_text

            result = grade_text(pred.grading)
        if not pred.input_verified:
            result += "  (input not verified)"
        print(f"{prefix}{label}: {result}  [{pred.device}, {pred.total_seconds:.2f} s] -> {out_dir}")
        summary.append({"case": label, "path": src, "status": "ok", "out": str(out_dir), "files": files,
                        "result": result, "input_verified": pred.input_verified, "input": pred.input})
    failures = sum(1 for s in summary if s["status"] == "failed")
    if batch:
        out_root.mkdir(parents=True, exist_ok=True)
        (out_root / "batch.json").write_text(json.dumps({
            "model": {"id": pkg.id, "version": pkg.version, "sha256": pkg.sha256},
            "total_s": round(time.perf_counter() - t0, 3), "ok": len(summary) - failures, "failed": failures,
            "cases": summary}, indent=2) + "\n")
        tail = f", {failures} failed (see {out_root / 'batch.json'})" if failures else ""
        print(f"{len(summary) - failures}/{len(summary)} cases done{tail} -> {out_root}")
    return 1 if failures else 0
