"""`medview infer` and `medview models` (list, import): headless inference and the model registry."""

from __future__ import annotations

import argparse
import json
import re
import sys
import time
from pathlib import Path


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("infer", help="run a model on a file, a series folder or a folder of studies")
    p.add_argument("path", help="image file, series folder, or a folder of studies (batch)")
    p.add_argument("--model", required=True, help="model id (see `medview models`) or a package folder")
    p.add_argument("--out", required=True, help="output folder (one sub-folder per series in a batch)")
    p.add_argument("--device", dest="infer_device", default=None, help="auto (default), cpu, cuda, cuda:N, mps")
    p.add_argument("--cam", nargs="?", const="gradcam", choices=["gradcam", "gradcam++"], default=None,
                   help="classifiers: also write a Grad-CAM heatmap (gradcam.nii.gz)")
    p.add_argument("--cam-class", default=None, help="class name or index for Grad-CAM (default: top class)")
    p.add_argument("--tta", action="store_true",
                   help="segmentation: test-time flips; writes uncertainty.nii.gz")
    p.add_argument("--batch-size", type=int, default=None, help="slices per batch for 2D models")
    p.add_argument("--threads", type=int, default=None,
                   help="CPU threads for torch (default: torch's choice; 1 is faster on a busy machine)")
    p.set_defaults(func=run_infer)

    m = sub.add_parser("models", help="list model packages and their status; import MONAI bundles")
    m.add_argument("--json", action="store_true", help="machine-readable listing")
    msub = m.add_subparsers(dest="models_command")
    lst = msub.add_parser("list", help="list packages (the default)")
    lst.add_argument("--json", action="store_true", help="machine-readable listing")
    imp = msub.add_parser("import", help="turn a MONAI bundle (folder or zip) into a MedView package")
    imp.add_argument("path", help="MONAI bundle folder or .zip")
    imp.add_argument("--trust", action="store_true",
                     help="confirm: the bundle's config expressions and TorchScript are code and will run")
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
    if not args.trust:
        print(
            "\nMONAI bundle configs may contain Python expressions ($...) and TorchScript weights are code;\n"
            "importing runs them. Nothing was imported. If you trust this bundle, run again with --trust.",
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
    """[(name, loader)] for a file, a series folder or a folder of studies."""
    from medview.io import load_series, load_volume, scan
    from medview.io.scan import file_kind

    if path.is_file() and file_kind(path) is not None:
        return [(path.name, lambda progress=None: load_volume(path, progress=progress))]
    index = scan(path)
    if not index.series:
        reason = index.problems[0][1] if index.problems else "no images found"
        raise RuntimeError(f"{path}: {reason}")
    out = []
    for s in index.series:
        label = " ".join(x for x in (s.patient_id, s.study_date, f"S{s.series_number}" if s.series_number else "",
                                      s.description) if x) or Path(s.path).name or s.uid
        out.append((label, lambda progress=None, s=s: load_series(s, progress=progress)))
    return out


def write_outputs(pred, out_dir: Path) -> list[str]:
    """prediction.json + segmentation/gradcam/uncertainty NIfTI on the input geometry."""
    from medview.io import save_volume

    out_dir.mkdir(parents=True, exist_ok=True)
    written = []
    if pred.labels is not None:
        save_volume(pred.labels, out_dir / "segmentation.nii.gz")
        written.append("segmentation.nii.gz")
    if pred.heatmap is not None:
        name = "uncertainty.nii.gz" if pred.heatmap_kind == "uncertainty" else "gradcam.nii.gz"
        save_volume(pred.heatmap, out_dir / name)
        written.append(name)
    js = pred.to_json()
    js["files"] = written
    (out_dir / "prediction.json").write_text(json.dumps(js, indent=2) + "\n", encoding="utf-8")
    return ["prediction.json", *written]


def run_infer(args: argparse.Namespace) -> int:
    from medview.inference.package import PackageError, find_package
    from medview.inference.pipeline import InferenceError, run_model
    from medview.io import LoadError

    device = args.infer_device or getattr(args, "device", None)
    try:
        pkg = find_package(args.model)
    except PackageError as exc:
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
    if not path.exists():
        print(f"error: {path}: does not exist", file=sys.stderr)
        return 2
    try:
        targets = _targets(path)
    except (LoadError, RuntimeError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    out_root = Path(args.out)
    batch = len(targets) > 1
    failures = 0
    summary = []
    t0 = time.perf_counter()
    used = set()
    for n, (label, load) in enumerate(targets, 1):
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
            ok, why = pkg.fits(vol)
            if not ok:
                raise InferenceError(f"model {pkg.id} does not fit: {why}")
            pred = run_model(pkg, vol, device=device, cam=args.cam, cam_class=args.cam_class, tta=args.tta,
                             batch_size=args.batch_size, progress=lambda f, s, bar=bar: bar(0.1 + 0.9 * f, s))
            files = write_outputs(pred, out_dir)
        except (LoadError, InferenceError, ValueError) as exc:
            failures += 1
            print(f"{prefix}error: {label}: {exc}", file=sys.stderr)
            summary.append({"series": label, "error": str(exc)})
            continue
        for msg in pred.messages:
            print(f"{prefix}note: {msg}", file=sys.stderr)
        from medview.inference.prediction import label_size_text

        result = pred.top_class or ", ".join(f"{i['name']} {label_size_text(i)}" for i in pred.label_info)
        print(f"{prefix}{label}: {result}  [{pred.device}, {pred.total_seconds:.2f} s] -> {out_dir}")
        summary.append({"series": label, "out": str(out_dir), "files": files, "result": result})
    if batch:
        out_root.mkdir(parents=True, exist_ok=True)
        (out_root / "batch.json").write_text(json.dumps({
            "model": {"id": pkg.id, "version": pkg.version, "sha256": pkg.sha256},
            "total_s": round(time.perf_counter() - t0, 3), "series": summary}, indent=2) + "\n")
        print(f"{len(targets) - failures}/{len(targets)} series done -> {out_root}")
    return 1 if failures else 0
