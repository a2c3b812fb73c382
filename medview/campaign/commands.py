"""Campaign commands: the Dask batch behind `medview infer` on a folder, `medview rank`,
`medview finetune` and `medview readers` (agreement / adjudication). Heavy imports stay inside
the functions so `medview --help` stays fast."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path


def add_batch_options(p: argparse.ArgumentParser) -> None:
    """The batch options `medview infer` and `medview rank` share."""
    p.add_argument("--workers", type=int, default=None,
                   help="batch: local Dask worker processes (default: one per core; torch threads split between them)")
    p.add_argument("--scheduler", default=None,
                   help="batch: address of a running Dask scheduler (tcp://host:8786) whose workers run the cases")
    p.add_argument("--resume", action="store_true",
                   help="batch: skip cases whose outputs exist for the same model version, options and input hash")


def register(sub) -> None:
    r = sub.add_parser("rank", help="order cases by how unsure a model is (what to label next); writes the worklist")
    r.add_argument("source", nargs="?", help="a folder of studies / images (omit with --held-out)")
    r.add_argument("--model", required=True, help="model id, package folder, or FAMILY@active")
    r.add_argument("--out", default=None, help="campaign folder for outputs and worklist.json (default: under "
                   "the user data folder)")
    r.add_argument("--method", choices=["entropy", "margin"], default="entropy",
                   help="classifiers: normalised entropy (default) or one minus the top-two margin")
    r.add_argument("--device", dest="infer_device", default=None, help="auto (default), cpu, cuda, mps")
    r.add_argument("--unverified-ok", action="store_true",
                   help="run also on images that state no modality (NIfTI, PNG, JPEG)")
    r.add_argument("--held-out", choices=["val", "test"], default=None,
                   help="measure the ranking on a labelled part of the model's own training split instead: "
                        "errors in the most vs the least uncertain quarter")
    add_batch_options(r)
    r.set_defaults(func=run_rank)
    register_versions(sub)


def _resolve(model: str):
    from medview.campaign.versions import resolve
    from medview.inference.package import PackageError

    try:
        return resolve(model)  # an id, a package folder or FAMILY@active
    except PackageError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return None


def batch_infer(args, pkg, found, problems) -> int:
    """`medview infer --model ID FOLDER --out DIR [--workers N] [--scheduler A] [--resume]` on
    the cases ``medview.campaign.cases.discover`` found."""
    from medview.campaign import batch

    device = args.infer_device or getattr(args, "device", None)
    job = batch.make_job(pkg, args.out, device=device, tta=args.tta, cam=args.cam, cam_class=args.cam_class,
                         batch_size=args.batch_size, unverified_ok=args.unverified_ok, resume=args.resume,
                         threads=args.threads, run_options=_run_options(args))
    return _run_and_report(found, problems, job, args)


def _run_options(args) -> tuple:
    """run_model keywords of newer `infer` options (given ones only; the pipeline checks them)."""
    opts = []
    if getattr(args, "tta_views", None):
        opts.append(("tta_setting", args.tta_views))
    whole = getattr(args, "whole_image", "auto")
    if whole and whole != "auto":
        opts.append(("whole_image", whole == "yes"))
    return tuple(opts)


def _run_and_report(found, problems, job, args):
    from medview.campaign import batch

    res = batch.run_batch(found, job, problems=problems, workers=args.workers, scheduler=args.scheduler,
                          on_record=batch.TextProgress())
    c = res.counts
    out_root = Path(job.out_root)
    tail = f", {c.failed} failed (see {out_root / 'batch.json'})" if c.failed else ""
    skipped = f", {c.skipped} skipped (done before)" if c.skipped else ""
    print(f"{c.done + c.skipped}/{c.total} cases done{skipped}{tail} in {res.seconds:.1f} s "
          f"({c.total / max(res.seconds, 1e-9):.2f} cases/s, {res.where}) -> {out_root}")
    return 1 if c.failed else 0


def default_campaign_dir(source: str | Path, model_id: str) -> Path:
    import hashlib

    from medview import config
    from medview.campaign.cases import PACS_PREFIX, safe_name

    text = str(source)
    key = text if text.startswith(PACS_PREFIX) else str(Path(text).resolve())
    name = safe_name(text if text.startswith(PACS_PREFIX) else Path(text).name)
    tag = hashlib.sha1(key.encode()).hexdigest()[:8]
    return config.user_data_dir() / "campaigns" / f"{name}-{tag}" / model_id


def run_rank(args) -> int:
    from medview.campaign import batch, cases, rank

    pkg = _resolve(args.model)
    if pkg is None:
        return 2
    if args.held_out:
        return _held_out(args, pkg)
    if not args.source:
        print("error: give a SOURCE folder (or --held-out val|test)", file=sys.stderr)
        return 2
    source = args.source  # a folder, or pacs:SOURCE (kept a string: a URL's // must survive)
    try:
        found, problems = cases.discover(source)
    except cases.NoCases as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    out = Path(args.out) if args.out else default_campaign_dir(source, pkg.id)
    job = batch.make_job(pkg, out, device=args.infer_device, tta=pkg.task == "segmentation",
                         unverified_ok=args.unverified_ok, resume=args.resume, rank_method=args.method)
    res = batch.run_batch(found, job, problems=problems, workers=args.workers, scheduler=args.scheduler,
                          on_record=_quiet_progress())
    ranked = rank.worklist(res.records)
    for r in ranked:  # the path first, the score last: `| head -20 | cut -f1` gives the next cases
        print(f"{r['path']}\t{r.get('result', '')}\t{r['uncertainty']['score']:.4f}")
    js, _ = rank.write_worklist(out, ranked, job.model_record)
    failed = [r for r in res.records if r.get("status") == "failed"]
    for r in failed:
        print(f"error: {r.get('reason')}", file=sys.stderr)
    print(f"{len(ranked)} cases ranked (most uncertain first), {len(failed)} failed -> {js}", file=sys.stderr)
    return 1 if failed else 0


def _quiet_progress():
    """Counts on stderr only: stdout is the ranked list."""
    def show(rec, counts):
        if rec.get("status") == "failed" or counts.finished == counts.total or counts.finished % 10 == 0:
            sys.stderr.write(counts.text() + "\n")
            sys.stderr.flush()
    return show


def _held_out(args, pkg) -> int:
    from medview.campaign import evaluation

    out = Path(args.out) if args.out else None
    try:
        rep = evaluation.ranking_on_split(pkg, part=args.held_out, out=out, method=args.method,
                                          workers=args.workers, scheduler=args.scheduler,
                                          on_record=_quiet_progress())
    except evaluation.NoSplit as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    for line in evaluation.report_lines(rep):
        print(line)
    return 0


def finetune_command(args) -> int:
    """`medview train ID --data EXPORT [--init ID] [--minutes N] [--out MODELS_DIR]`: fine-tune on
    corrections with a held-out check; the new version becomes active only when better."""
    from medview.campaign import finetune
    from medview.inference.package import PackageError
    from medview.progress import Cancelled
    from medview.training.engine import ProgressBar

    try:
        res = finetune.finetune(args.model_id, args.data, init=args.init or None,
                                minutes=args.minutes if args.minutes is not None else 3.0,
                                max_epochs=args.max_epochs, dest_root=args.out,
                                progress=ProgressBar(f"fine-tune {args.model_id}"))
    except (finetune.FinetuneError, PackageError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except (Cancelled, KeyboardInterrupt):
        print("cancelled: nothing was written", file=sys.stderr)
        return 130
    print(f"wrote {res.folder} ({res.package_id} {res.version})")
    return 0


def register_versions(sub) -> None:
    v = sub.add_parser("model-versions", help="versions of a fine-tuned model family; choose the active one")
    v.add_argument("family", help="model family (the base package id, e.g. polyp)")
    v.add_argument("--activate", default=None, metavar="ID", help="make this version the active one")
    v.set_defaults(func=run_versions)


def run_versions(args) -> int:
    from medview.campaign import versions
    from medview.inference.package import PackageError, find_package

    if args.activate:
        try:
            pkg = find_package(args.activate)
        except PackageError as exc:
            print(f"error: {exc}", file=sys.stderr)
            return 2
        if versions.family_of(pkg) != args.family:
            print(f"error: {pkg.id} is not a version of {args.family}", file=sys.stderr)
            return 2
        versions.set_active(args.family, pkg.id, "chosen by hand")
    active = versions.active_id(args.family)
    for p in versions.versions(args.family):
        held = (p.manifest.get("lineage") or {}).get("held_out") or {}
        fig = f"held-out {held.get('metric', '')} {held.get('new')} (parent {held.get('parent')})" if held else ""
        print(f"{'*' if p.id == active else ' '} {p.id}\t{p.version}\t{p.sha256[:12]}\t{fig}".rstrip())
    return 0
