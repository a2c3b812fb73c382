"""Fine-tune a segmenter on the site's corrections, locally, and keep it only if it is better.

``finetune(recipe_id, export_dir)``:

1. the cases of the annotation training-set export (``medview export-training``, the app's
   "export for training") are split by case, deterministically (sorted, seeded shuffle):
   ``holdout`` of them (at least one) are never trained on;
2. the training recipe's loop (``medview.training.runner.train_model``, the code behind
   `medview train ID --data DIR --init ID`) tunes the family's active version on the rest, for
   a few minutes, with progress and cancel;
3. the parent and the new weights run through the app's own ``run_model`` on the held-out
   cases; mean Dice against the corrected labels is the figure of each;
4. the new weights become a versioned package (``<family>-v<version>``, lineage in its
   manifest, both figures in its card) and the family's active version only when their figure
   is higher. The parent package is never touched and stays selectable.
"""

from __future__ import annotations

import contextlib
import json
import os
import random
import shutil
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

import numpy as np

from medview.progress import CancelledFn, ProgressFn, no_progress

# peak learning rate of a fine-tune, as a fraction of the recipe's: a few dozen corrected cases at
# the from-scratch rate pull a good model away from what it knew (polyp, 30 Kvasir test-part cases,
# 4 min: held-out Dice 0.776 at 1/2, 0.816 at 1/10, against 0.859 for the bundled parent)
LR_SCALE = 0.1


class FinetuneError(ValueError):
    """The export or model cannot be fine-tuned; the message says why."""


@dataclass
class FinetuneResult:
    family: str
    parent: dict[str, str]  # id, version, sha256
    package_id: str
    version: str
    folder: Path
    parent_score: float
    new_score: float
    metric: str
    activated: bool
    train_cases: list[str]
    held_out_cases: list[str]
    minutes: float

    def summary(self) -> str:
        verdict = (f"{self.package_id} is now active" if self.activated else
                   f"{self.parent['id']} stays active (the new version is kept, not used)")
        return (f"held-out {self.metric} on {len(self.held_out_cases)} corrected cases not trained on: "
                f"{self.parent['id']} {self.parent['version']} {self.parent_score:.4f}, "
                f"new {self.package_id} {self.new_score:.4f}; {verdict}")


def split_cases(pairs: list[tuple[Path, Path]], holdout: float, seed: int) -> tuple[list, list]:
    if len(pairs) < 3:
        raise FinetuneError(f"fine-tuning needs at least 3 corrected cases (2 to train, 1 to check); "
                            f"the export has {len(pairs)}")
    order = sorted(pairs, key=lambda p: p[0].name)
    random.Random(seed).shuffle(order)
    n_out = min(len(order) - 2, max(1, round(len(order) * holdout)))
    return order[n_out:], order[:n_out]


def _training_folder(pairs: list[tuple[Path, Path]], export_dir: Path, folder: Path) -> Path:
    """An export folder (dataset.json) that lists only the training cases (files stay where they are)."""
    info = json.loads((export_dir / "dataset.json").read_text()) if (export_dir / "dataset.json").is_file() else {}
    info["training"] = [{"image": str(i), "label": str(lab)} for i, lab in pairs]
    info["numTraining"] = len(pairs)
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "dataset.json").write_text(json.dumps(info, indent=2))
    return folder


def held_out_dice(pkg, pairs: list[tuple[Path, Path]], progress: ProgressFn = no_progress,
                  cancelled: CancelledFn | None = None) -> tuple[float, dict[str, float]]:
    """Mean Dice (over the package's labels, then cases) of ``pkg`` on (image, label) files."""
    from medview.annotation.nifti import load_nifti
    from medview.inference.pipeline import run_model
    from medview.io import load_volume
    from medview.progress import check_cancelled

    per_case = {}
    values = [int(lab["value"]) for lab in pkg.labels]
    for k, (img, lab) in enumerate(pairs):
        check_cancelled(cancelled)
        vol = load_volume(img)
        ref = load_nifti(lab, reference=vol).array
        pred = run_model(pkg, vol, device="cpu", unverified_ok=True).labels.array
        ds = []
        for v in values:
            a, b = pred == v, ref == v
            s = int(a.sum() + b.sum())
            ds.append(1.0 if s == 0 else 2.0 * int((a & b).sum()) / s)
        per_case[img.name.split(".")[0]] = float(np.mean(ds))
        progress((k + 1) / len(pairs), f"{pkg.id}: {img.name}")
    return float(np.mean(list(per_case.values()))), per_case


@contextlib.contextmanager
def _checkpoints_in(folder: Path):
    """The training loop's resumable checkpoints go to ``folder`` (not the source tree, which a
    frozen app cannot write), for this run only."""
    old = os.environ.get("MEDVIEW_CHECKPOINTS")
    os.environ["MEDVIEW_CHECKPOINTS"] = str(folder)
    try:
        yield
    finally:
        if old is None:
            os.environ.pop("MEDVIEW_CHECKPOINTS", None)
        else:
            os.environ["MEDVIEW_CHECKPOINTS"] = old


def finetune(recipe_id: str, export_dir: str | Path, init: str | None = None, minutes: float = 3.0,
             holdout: float = 0.25, max_epochs: int | None = None, dest_root: Path | None = None,
             lr_scale: float = LR_SCALE,
             progress: ProgressFn | None = None, cancelled: CancelledFn | None = None,
             log: Callable[[str], None] = print) -> FinetuneResult:
    """See the module docstring. ``init``: the package to start from (default: the family's
    active version); ``dest_root``: the models folder for the new version (default: the user's);
    ``lr_scale``: peak learning rate as a fraction of the recipe's."""
    from medview import config
    from medview.campaign import versions
    from medview.inference.package import validate
    from medview.training import datasets, export_data
    from medview.training.recipes import RECIPES
    from medview.training.runner import train_model

    progress = progress or no_progress
    if recipe_id not in RECIPES:
        raise FinetuneError(f"no training recipe {recipe_id!r} (recipes: {', '.join(RECIPES)})")
    recipe = RECIPES[recipe_id]
    if recipe.kind == "classification":
        raise FinetuneError(f"{recipe_id} is a classifier; corrections are label maps, so only segmenters "
                            "can be fine-tuned from them")
    export_dir = Path(export_dir)
    try:
        pairs = export_data._cases(export_dir)  # the same pairing `medview train --data` reads
    except export_data.ExportError as exc:
        raise FinetuneError(str(exc)) from exc
    train_pairs, test_pairs = split_cases(pairs, holdout, datasets.SEED)
    parent = versions.resolve(init or f"{recipe_id}@active")
    family = versions.family_of(parent)
    log(f"{family}: fine-tuning {parent.id} {parent.version} on {len(train_pairs)} corrected cases; "
        f"{len(test_pairs)} held out: {', '.join(p[0].name for p in test_pairs)}")
    dest_root = Path(dest_root) if dest_root else config.user_data_dir() / "models"
    work = Path(tempfile.mkdtemp(prefix=f".finetune-{recipe_id}-", dir=_mkdir(dest_root)))
    try:
        progress(0.0, f"training on {len(train_pairs)} cases")
        with _checkpoints_in(work / "checkpoints"):
            train_model(recipe_id, minutes=minutes, data=_training_folder(train_pairs, export_dir, work / "train"),
                        init=str(parent.path), out=work / "candidate", fresh=True, max_epochs=max_epochs,
                        progress=lambda f, s: progress(0.8 * f, s), cancelled=cancelled, log=log,
                        checkpoint_name="finetune", lr=recipe.lr * lr_scale)
        progress(0.8, "held-out check: parent")
        old_score, old_cases = held_out_dice(parent, test_pairs, lambda f, s: progress(0.8 + 0.1 * f, s), cancelled)
        cand = validate(work / "candidate")
        progress(0.9, "held-out check: new version")
        new_score, new_cases = held_out_dice(cand, test_pairs, lambda f, s: progress(0.9 + 0.1 * f, s), cancelled)
        version = versions.next_version(family)
        new_id = versions.version_id(family, version)
        better = new_score > old_score
        figures = {"metric": "mean Dice", "cases": [p[0].name for p in test_pairs],
                   "parent": round(old_score, 4), "new": round(new_score, 4),
                   "per_case": {"parent": old_cases, "new": new_cases}}
        folder = _publish(work / "candidate", dest_root / new_id, new_id, version, family, parent, export_dir,
                          train_pairs, figures, minutes, better)
        if better:
            versions.set_active(family, new_id, f"held-out mean Dice {new_score:.4f} > {old_score:.4f} "
                                                f"({parent.id})")
        res = FinetuneResult(family, {"id": parent.id, "version": parent.version, "sha256": parent.sha256},
                             new_id, version, folder, old_score, new_score, "mean Dice", better,
                             [p[0].name for p in train_pairs], [p[0].name for p in test_pairs], minutes)
        progress(1.0, res.summary())
        log(res.summary())
        return res
    finally:
        shutil.rmtree(work, ignore_errors=True)


def _mkdir(p: Path) -> Path:
    p.mkdir(parents=True, exist_ok=True)
    return p


def _publish(candidate: Path, folder: Path, new_id: str, version: str, family: str, parent, export_dir: Path,
             train_pairs, figures: dict[str, Any], minutes: float, better: bool) -> Path:
    """The candidate package renamed to its version id, lineage + figures in manifest and card.
    Only the manifest changes (the weights and their sha256 stay as trained)."""
    from medview.inference.package import validate

    m = json.loads((candidate / "model.json").read_text())
    base_name = parent.name.split(" (fine-tuned")[0]
    m.update({"id": new_id, "version": version, "name": f"{base_name} (fine-tuned {version})"})
    m["lineage"] = {"family": family, "parent": {"id": parent.id, "version": parent.version,
                                                 "sha256": parent.sha256},
                    "data": str(export_dir), "train_cases": [p[0].name for p in train_pairs],
                    "held_out": figures, "minutes": minutes, "created": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
                    "activated": better}
    (candidate / "model.json").write_text(json.dumps(m, indent=2) + "\n")
    card = (candidate / "MODEL_CARD.md").read_text() if (candidate / "MODEL_CARD.md").is_file() else ""
    card += (f"\n## Version {version} of {family}\n\nFine-tuned from `{parent.id}` {parent.version} on "
             f"{len(train_pairs)} corrected cases of `{export_dir}` for {minutes} min. Held-out check on "
             f"{len(figures['cases'])} corrected cases it did not train on ({', '.join(figures['cases'])}): "
             f"mean Dice {figures['new']:.4f} against {figures['parent']:.4f} for `{parent.id}`; "
             f"{'made the active version' if better else 'not made active (not better)'}.\n")
    (candidate / "MODEL_CARD.md").write_text(card)
    if folder.exists():
        raise FinetuneError(f"{folder} exists already; not overwriting a version")
    shutil.move(str(candidate), str(folder))
    pkg = validate(folder)
    if not pkg.ok:
        raise FinetuneError(f"written package {folder} is unusable: {pkg.reason}")
    return folder
