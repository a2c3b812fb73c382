"""Is the ranking useful? Rank the labelled cases of a model's own held-out part (the split its
training recipe defines: BUSI and PH2 validation parts, ...) and count the model's errors in
the quarter ranked most uncertain against the quarter ranked least uncertain.

An error is a wrong top class (classifiers) or a Dice below ``DICE_ERROR`` against the
reference mask (segmenters; the mean Dice per quarter is reported too). The cases run through
the same Dask batch as any campaign, so this measures exactly what `medview rank` orders.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Callable

import numpy as np

DICE_ERROR = 0.85  # a segmentation this far from the reference needs a person's correction


class NoSplit(Exception):
    """The model has no training recipe (so no labelled held-out part) or its data is missing."""


def _split_samples(model_id: str, part: str):
    from medview.config import data_dir
    from medview.training.recipes import RECIPES

    if model_id not in RECIPES:
        raise NoSplit(f"model {model_id} has no training recipe, so no labelled held-out part "
                      f"(recipes: {', '.join(RECIPES)})")
    recipe = RECIPES[model_id]
    try:
        samples = getattr(recipe.split(), part)
    except (OSError, FileNotFoundError) as exc:
        raise NoSplit(f"data of {model_id} not found under {data_dir()} ({exc})") from exc
    if not samples:
        raise NoSplit(f"{model_id}: the {part} part is empty (data under {data_dir()}?)")
    return recipe, samples


def _dice(a: np.ndarray, b: np.ndarray) -> float:
    s = int(a.sum() + b.sum())
    return 1.0 if s == 0 else 2.0 * float((a & b).sum()) / s


def ranking_on_split(pkg, part: str = "val", out: Path | None = None, method: str = "entropy",
                     workers: int | None = None, scheduler: str | None = None,
                     on_record: Callable | None = None) -> dict[str, Any]:
    from medview import config
    from medview.campaign import batch, cases, rank
    from medview.training import datasets

    recipe, samples = _split_samples(pkg.id, part)
    found = cases.from_files([s.image for s in samples])
    out = out or config.user_data_dir() / "campaigns" / f"held-out-{pkg.id}-{part}"
    job = batch.make_job(pkg, out, tta=pkg.task == "segmentation", unverified_ok=True, resume=True,
                         rank_method=method, device="cpu")
    res = batch.run_batch(found, job, workers=workers, scheduler=scheduler, on_record=on_record)
    rank.write_worklist(Path(out), rank.worklist(res.records), job.model_record)  # the app's queue reads it
    by_name = {r["case"]: r for r in res.records}
    scores, errors, quality, rows, failed = [], [], [], [], []
    alt: list[float] = []
    for c, s in zip(found, samples, strict=True):
        r = by_name.get(c.name)
        if not r or r.get("status") not in ("ok", "skipped") or not r.get("uncertainty"):
            failed.append(c.path)
            continue
        u = r["uncertainty"]
        if recipe.kind == "classification":
            truth = recipe.manifest["output"]["classes"][int(s.target)]
            predicted = max(r["probabilities"].items(), key=lambda kv: kv[1])[0]
            wrong, q = predicted != truth, float(predicted == truth)
            alt.append(1.0 - u["margin"] if method == "entropy" else u["entropy"])
        else:
            from medview.io import load_volume

            seg = load_volume(Path(r["out"]) / "segmentation.nii.gz").array[0] > 0
            ref = datasets.read_mask(s.target) > 0
            q = _dice(seg, ref)
            wrong, truth, predicted = q < DICE_ERROR, "", f"Dice {q:.3f}"
        scores.append(float(u["score"]))
        errors.append(bool(wrong))
        quality.append(q)
        rows.append({"path": c.path, "truth": truth, "predicted": predicted, "score": float(u["score"]),
                     "error": bool(wrong)})
    rep = {"model": pkg.id, "sha256": pkg.sha256, "part": part, "split": recipe.split().description,
           "kind": recipe.kind, "method": method if recipe.kind == "classification" else "TTA disagreement",
           "failed": failed, "cases": sorted(rows, key=lambda x: -x["score"]), "out": str(out),
           "quarters": rank.quarter_errors(scores, errors, quality)}
    if alt:
        rep["quarters_other_method"] = {"method": "margin" if method == "entropy" else "entropy",
                                        **rank.quarter_errors(alt, errors, quality)}
    return rep


def report_lines(rep: dict[str, Any]) -> list[str]:
    q = rep["quarters"]
    what = "wrong top class" if rep["kind"] == "classification" else f"Dice < {DICE_ERROR}"
    quality = "accuracy" if rep["kind"] == "classification" else "mean Dice"
    lines = [f"{c['path']}\t{c['predicted']}{' (truth ' + c['truth'] + ')' if c['truth'] else ''}"
             f"{'  ERROR' if c['error'] else ''}\t{c['score']:.4f}" for c in rep["cases"]]
    lines.append(f"model {rep['model']} (sha256 {rep['sha256'][:12]}) on the held-out {rep['part']} part, "
                 f"ranked by {rep['method']}: n={q['n']}, errors ({what}) {q['errors_total']}")
    lines.append(f"most uncertain quarter ({q['quarter']} cases): {q['errors_most_uncertain']} errors, "
                 f"{quality} {q['quality_most_uncertain']:.3f}; least uncertain quarter ({q['quarter']} cases): "
                 f"{q['errors_least_uncertain']} errors, {quality} {q['quality_least_uncertain']:.3f}")
    if "quarters_other_method" in rep:
        o = rep["quarters_other_method"]
        lines.append(f"(by {o['method']}: {o['errors_most_uncertain']} vs {o['errors_least_uncertain']} errors)")
    if rep["failed"]:
        lines.append(f"{len(rep['failed'])} cases failed: {', '.join(rep['failed'][:5])}")
    return lines
