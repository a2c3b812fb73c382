"""`medview train MODEL_ID` and `medview evaluate MODEL_ID` (headless; torch imported lazily)."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path


def register(subparsers) -> None:
    from medview.training.recipes import RECIPES

    ids = ", ".join(RECIPES)
    t = subparsers.add_parser("train", help=f"train a bundled model from scratch ({ids})")
    t.add_argument("model_id", choices=list(RECIPES), metavar="MODEL_ID", help=ids)
    t.add_argument("--minutes", type=float, default=None, help="training time budget (default: the recipe's)")
    t.add_argument("--data", type=Path, default=None,
                   help="annotation training-set export (images/ + labels/ + dataset.json) to fine-tune on")
    t.add_argument("--init", default=None, help="model package id/folder (or .safetensors) to start from")
    t.add_argument("--scratch", action="store_true",
                   help="start from random weights even where the recipe starts from another bundled model")
    t.add_argument("--out", type=Path, default=None, help="package folder to write (default: models/MODEL_ID, "
                   "or the user model folder for --data)")
    t.add_argument("--fresh", action="store_true", help="ignore an unfinished checkpoint instead of resuming")
    t.add_argument("--folds", type=int, default=None,
                   help="train a K-member fold ensemble over train + validation (classifiers; default: the recipe's)")
    t.add_argument("--seeds", type=int, default=None,
                   help="train a K-member seed ensemble on the recipe's own split (classifiers)")
    t.add_argument("--max-epochs", type=int, default=None, help=argparse.SUPPRESS)
    t.add_argument("--no-package", action="store_true", help="train only; do not write the model package")
    t.add_argument("--checkpoint-name", default=None, help=argparse.SUPPRESS)
    t.set_defaults(func=_train)

    pre = subparsers.add_parser("pretrain", help="self-supervised (SimCLR) pretraining of a classifier's "
                                "encoder on unlabelled images of its kind; `train ID --init FILE` starts from it")
    pre.add_argument("model_id", choices=["dr-grade", "knee-oa", "xray-view", "breast-us", "skin-lesion"],
                     metavar="MODEL_ID")
    pre.add_argument("--minutes", type=float, default=10.0, help="time budget (default 10)")
    pre.add_argument("--out", type=Path, required=True, help="encoder weights to write (.safetensors; "
                     "a .json beside it says how they were made)")
    pre.add_argument("--batch-size", type=int, default=64)
    pre.add_argument("--max-images", type=int, default=None, help=argparse.SUPPRESS)
    pre.set_defaults(func=_pretrain)

    e = subparsers.add_parser("evaluate", help="held-out metrics of a bundled model")
    e.add_argument("model_id", choices=list(RECIPES), metavar="MODEL_ID", help=ids)
    e.add_argument("--package", type=Path, default=None, help="package folder (default: the one found by id)")
    e.add_argument("--part", choices=["test", "val"], default="test", help="which split to measure")
    e.add_argument("--tta-views", choices=["fast", "accurate"], default=None,
                   help="test-time views: fast (one pass) or accurate (output.tta); default: the package's")
    e.add_argument("--json", type=Path, default=None, help="also write the full report as JSON")
    e.add_argument("--threshold", type=float, default=None, help=argparse.SUPPRESS)
    e.add_argument("--card", action="store_true",
                   help="rewrite the package's MODEL_CARD.md with these numbers (and reliability.png)")
    e.add_argument("--cam-region", nargs="?", const="gradcam", default=None, metavar="METHOD",
                   help="measure the share of Grad-CAM mass inside the finding's mask (skin-lesion: PH2 lesion masks; "
                   "METHOD gradcam (default) or gradcam++) instead of the class metrics")
    e.add_argument("--card-extra", type=Path, default=None, help=argparse.SUPPRESS)
    e.add_argument("--checkpoint-name", default=None, help=argparse.SUPPRESS)
    e.set_defaults(func=_evaluate)


def _train(args) -> int:
    if args.data is not None and not args.no_package:  # corrections: held-out check, versioned package
        from medview.campaign.commands import finetune_command

        return finetune_command(args)
    from medview.training import folds, packaging, runner
    from medview.training.engine import ProgressBar
    from medview.training.recipes import RECIPES

    if args.seeds is not None and args.data is None:
        return _train_seeds(args)
    k = args.folds if args.folds is not None else RECIPES[args.model_id].folds
    if k > 1 and args.data is None:
        try:
            state = folds.train_folds(args.model_id, k, minutes=args.minutes, init="" if args.scratch else args.init,
                                      fresh=args.fresh, progress=ProgressBar(f"train {args.model_id}"),
                                      max_epochs=args.max_epochs)
        except folds.FoldError as exc:
            print(f"error: {exc}", file=sys.stderr)
            return 2
        cv = state.get("cv_fit") or state["cv"]  # the part the head was fitted and scored on
        print(f"{k} members; out-of-fold (cross-validated) {RECIPES[args.model_id].select} {state['best']:.4f}, "
              f"accuracy {cv['accuracy']:.4f} on {cv['n']} images, after {state['elapsed_s'] / 60:.1f} min")
        if not args.no_package:
            print(f"wrote {packaging.package_from_checkpoint(args.model_id, out=args.out)}")
        return 0
    state = runner.train_model(
        args.model_id, minutes=args.minutes, data=args.data, init="" if args.scratch else args.init,
        out=args.out, fresh=args.fresh,
        progress=ProgressBar(f"train {args.model_id}"), max_epochs=args.max_epochs,
        checkpoint_name=args.checkpoint_name,
    )
    print(f"best validation score {state['best']:.4f} at epoch {state['best_epoch']} "
          f"after {state['elapsed_s'] / 60:.1f} min")
    if args.data is None and not args.no_package:
        folder = packaging.package_from_checkpoint(args.model_id, out=args.out,
                                                   checkpoint_name=args.checkpoint_name)
        print(f"wrote {folder}")
    return 0


def _train_seeds(args) -> int:
    from medview.training import packaging, seeds
    from medview.training.engine import ProgressBar
    from medview.training.recipes import RECIPES

    if args.folds is not None and args.folds > 1:
        print("error: --seeds and --folds are two kinds of ensemble; give one", file=sys.stderr)
        return 2
    try:
        state = seeds.train_seeds(args.model_id, args.seeds, minutes=args.minutes,
                                  init="" if args.scratch else args.init, fresh=args.fresh,
                                  progress=ProgressBar(f"train {args.model_id}"), max_epochs=args.max_epochs)
    except seeds.SeedError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    print(f"{args.seeds} seed members; ensemble validation {RECIPES[args.model_id].select} {state['best']:.4f} "
          f"after {state['elapsed_s'] / 60:.1f} min")
    if not args.no_package:
        print(f"wrote {packaging.package_from_checkpoint(args.model_id, out=args.out)}")
    return 0


def _pretrain(args) -> int:
    from medview.training import pretrain
    from medview.training.engine import ProgressBar

    rec = pretrain.pretrain(args.model_id, args.out, minutes=args.minutes, batch_size=args.batch_size,
                            max_images=args.max_images, progress=ProgressBar(f"pretrain {args.model_id}"))
    print(f"{rec['epochs']} epochs, {rec['steps']} steps on {rec['images']} images, "
          f"final loss {rec['final_loss']}: {args.out}")
    return 0


def _is_fold_ensemble(args) -> bool:
    from medview.inference.networks import members
    from medview.inference.package import find_package

    pkg = find_package(str(args.package) if args.package else args.model_id)
    if not pkg.ok or members(pkg.manifest.get("network") or {}) < 2:
        return False
    return (pkg.manifest.get("training") or {}).get("ensemble", "folds") == "folds"  # seeds: val is fair


def _evaluate(args) -> int:
    from medview.training import evaluation, runner
    from medview.training.engine import ProgressBar

    if args.part == "val" and _is_fold_ensemble(args):
        print(f"error: {args.model_id}'s package is a fold ensemble: its members trained on the validation "
              "part (cross-validation over train + validation); its cross-validated figures are in the "
              "checkpoint state and the card. Measure the test part.", file=sys.stderr)
        return 2
    if args.cam_region:
        from medview.training import cam_metrics

        crep = cam_metrics.cam_in_region(args.model_id, package=args.package, part=args.part,
                                         method=args.cam_region)
        for line in cam_metrics.format_cam_report(crep):
            print(line)
        if args.json:
            runner.save_json(crep, args.json)
        return 0
    if args.card and not _training_record(args):
        return 2
    rep = evaluation.evaluate_model(args.model_id, package=args.package, part=args.part,
                                    progress=ProgressBar(f"evaluate {args.model_id}"), threshold=args.threshold,
                                    tta_setting=args.tta_views)
    lines = format_report(rep)
    for line in lines:
        print(line)
    if args.json:
        runner.save_json(rep, args.json)
    if args.card:
        return _write_card(args, rep, lines)
    return 0


def _training_record(args) -> dict | None:
    """The training facts for the card: the checkpoint state of the run that made the package, else
    (another machine, or a state left by a later run) the package's own training record; None (and
    one line) when neither exists: the card's data, split and training sections would come out empty."""
    from medview.inference.package import find_package
    from medview.training import cards, checkpoint

    pkg = find_package(str(args.package) if args.package else args.model_id)
    name = args.checkpoint_name or args.model_id
    state = checkpoint.read_state(name)
    record = pkg.manifest.get("training") or {}
    if state and state.get("best_epoch") == record.get("best_epoch", state.get("best_epoch")):
        return state
    rebuilt = cards.state_from_manifest(args.model_id, pkg.manifest)
    if rebuilt:
        why = "absent" if not state else "from another run"
        print(f"note: checkpoint state '{name}' {why}: training facts from the package's own record", file=sys.stderr)
        return rebuilt
    print(f"error: no training record for '{name}' (no checkpoint state in {checkpoint.checkpoint_dir(name).parent}, "
          "none in the package): MODEL_CARD.md left as it is (retrain with `medview train`)", file=sys.stderr)
    return None


def _write_card(args, rep: dict, printed: list[str]) -> int:
    from medview.inference.package import find_package
    from medview.training import cards, metrics

    pkg = find_package(str(args.package) if args.package else args.model_id)
    state = _training_record(args)
    if not state:
        return 2
    extra = args.card_extra.read_text() if args.card_extra else ""
    cmd = f"medview evaluate {args.model_id}" + (f" --part {args.part}" if args.part != "test" else "") \
        + (f" --tta-views {args.tta_views}" if args.tta_views else "") \
        + (f" --package {args.package}" if args.package else "")
    text = cards.render(args.model_id, state, rep, printed=[f"$ {cmd}", *printed], extra=extra)
    if "positive_reliability" in rep:
        metrics.reliability_png(rep["positive_reliability"], pkg.path / "reliability.png",
                                f"{args.model_id}: p({rep['positive']}) on the test split")
    elif "reliability" in rep:
        metrics.reliability_png(rep["reliability"], pkg.path / "reliability.png",
                                f"{args.model_id}: top-class confidence vs accuracy")
    pkg.card_path.write_text(text, encoding="utf-8")
    print(f"wrote {pkg.card_path}")
    return 0


def format_report(rep: dict) -> list[str]:
    lines = [f"model {rep['model']} (sha256 {rep['sha256'][:12]}) on the held-out {rep['part']} split"
             + (f", TTA {rep['tta_setting']}" if rep.get("tta_setting") else "")]
    if "accuracy" in rep:
        lines.append(f"n={rep['n']} accuracy={rep['accuracy']:.4f} macro_ovr_auc={rep['macro_auc']:.4f} "
                     f"ece={rep['ece']:.4f}")
        lines.append("per-class AUC: " + ", ".join(f"{k}={v:.4f}" for k, v in rep["per_class_auc"].items()))
        lines.append(f"confusion (rows truth, cols predicted): {json.dumps(rep['confusion'])}")
        if "positive" in rep:
            p = rep["positive"]
            lines.append(f"{p}-vs-rest AUC={rep['positive_auc']:.4f}; at argmax: sensitivity="
                         f"{rep['sensitivity_argmax']:.4f} specificity={rep['specificity_argmax']:.4f}; at "
                         f"p({p}) >= {rep['threshold']:.2f}: sensitivity={rep['sensitivity_threshold']:.4f} "
                         f"specificity={rep['specificity_threshold']:.4f}; {p} ECE={rep['positive_ece']:.4f}")
        if "qwk" in rep:
            lines.append(f"quadratic weighted kappa={rep['qwk']:.4f} MAE (argmax grade)={rep['mae']:.4f} "
                         f"MAE (expected grade)={rep['mae_expected']:.4f}")
        if "flag_auc" in rep:
            lines.append(f"{rep['flag_name']} (n={rep['flag_n_positive']}): AUC={rep['flag_auc']:.4f}; at "
                         f"p >= {rep['flag_threshold']:.4f} (chosen on validation): sensitivity="
                         f"{rep['flag_sensitivity']:.4f} specificity={rep['flag_specificity']:.4f}")
        wrong = [f"{r['name']} (truth {r['truth']})" for r in rep["predictions"]
                 if rep_classes(rep)[max(range(len(r['probs'])), key=lambda i: r['probs'][i])] != r["truth"]]
        lines.append("misclassified: " + (", ".join(wrong) if wrong else "none"))
        close = sorted(rep["predictions"], key=lambda r: max(r["probs"]))[:3]
        lines.append("least confident: " + ", ".join(
            f"{r['name']} (truth {r['truth']}, p={max(r['probs']):.3f})" for r in close))
    else:
        keys = [k for k in rep if k.startswith(("dice", "mean_dice", "f1", "auc")) and isinstance(rep[k], float)]
        lines.append(" ".join(f"{k}={rep[k]:.4f}" for k in keys if k != "dice") + f" (n={len(rep['per_image'])})")
        if rep.get("volumes"):
            names = [k for k in rep["volumes"][0] if k != "name" and not k.endswith("(truth)")]
            for n in names:
                pv = [v[n] for v in rep["volumes"]]
                tv = [v[f"{n} (truth)"] for v in rep["volumes"]]
                lines.append(f"{n}: mean volume {sum(pv) / len(pv):.3f} mL predicted, {sum(tv) / len(tv):.3f} mL "
                             f"reference; mean absolute difference "
                             f"{sum(abs(a - b) for a, b in zip(pv, tv, strict=False)) / len(pv):.3f} mL")
        worst = sorted(rep["per_image"].items(), key=lambda kv: kv[1])[:3]
        lines.append("lowest per-image: " + ", ".join(f"{k}={v:.3f}" for k, v in worst))
    return lines


def rep_classes(rep: dict) -> list[str]:
    return list(rep["per_class_auc"].keys())


if __name__ == "__main__":  # pragma: no cover
    sys.exit(0)
