"""Held-out evaluation of a model package on its recipe's split (``medview evaluate``).

Every image goes through the app's own loading and inference pipeline, so the figures are what
a reader gets; metrics come from ``medview.training.metrics`` and the runner's helpers.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from medview.progress import ProgressFn
from medview.training import datasets, metrics
from medview.training.inputs import prepare
from medview.training.recipes import RECIPES, Recipe
from medview.training.runner import _read_input, _read_target, cls_metrics, predict_probs


def evaluate_model(model_id: str, package: str | Path | None = None, part: str = "test",
                   progress: ProgressFn | None = None, threshold: float | None = None,
                   tta_setting: str | None = None) -> dict[str, Any]:
    """Held-out metrics of the bundled package ``model_id`` (or a package folder) on its split.

    Every image is opened with ``medview.io.loading.load_volume`` and run through the app's own
    ``medview.inference.pipeline.run_model`` (classes, label maps, volumes in mL); only the
    vessel AUC, which needs the probability map, comes from the same pre-processing and sliding
    window re-run here. ``tta_setting``: "fast" | "accurate" (None: the package's default)."""
    from medview.inference.package import find_package, load_network
    from medview.inference.pipeline import run_model
    from medview.inference.tta import resolve_setting
    from medview.io.loading import load_volume

    recipe = RECIPES[model_id]
    if recipe.kind == "interactive2d":  # simulated clicks (medview.interactive.training.evaluate)
        from medview.interactive import training as interactive

        return interactive.evaluate(package, part, progress)
    if recipe.kind == "interactive3d":  # simulated 3D clicks (medview.interactive.training3d.evaluate)
        from medview.interactive import training3d

        return training3d.evaluate(package, part, progress)
    pkg = find_package(str(package) if package else model_id)
    manifest = pkg.manifest
    split = recipe.split()
    samples = getattr(split, part)
    thr = threshold if threshold is not None else manifest["output"].get("threshold")
    probs, items, volumes = [], [], []
    net = load_network(pkg) if recipe.id == "retina-vessels" else None
    setting = resolve_setting(pkg, tta_setting)
    for i, s in enumerate(samples):
        vol = load_volume(s.image)
        pred = run_model(pkg, vol, device="cpu", unverified_ok=True,  # the model's own held-out data
                         tta_setting=setting)
        item: dict[str, Any] = {"name": s.name}
        if recipe.kind == "classification":
            item["y"] = int(s.target)
            probs.append(np.array([pred.probabilities[c] for c in manifest["output"]["classes"]]))
        else:
            lab = pred.labels.array
            item["y_full"] = _read_target(recipe, s)
            item["pred"] = lab[0] if recipe.kind == "seg2d" else lab
            if "fov" in s.extra:
                item["fov"] = datasets.read_mask(s.extra["fov"])
            if net is not None:
                item["x"] = prepare(_read_input(recipe, s), manifest["input"])
                item["prob"] = predict_probs(recipe, net, item, manifest, setting=setting,
                                             whole=pred.passes.startswith("whole image"))
            if recipe.kind == "seg3d":
                vox_ml = vol.voxel_volume_mm3 / 1000.0
                volumes.append({"name": s.name, **{d["name"]: d["volume_ml"] for d in pred.label_info},
                                **{f"{d['name']} (truth)":
                                   round(float((item["y_full"] == d["value"]).sum()) * vox_ml, 4)
                                   for d in pred.label_info}})
        items.append(item)
        if progress:
            progress((i + 1) / len(samples), f"evaluating {s.name}")
    if recipe.kind == "classification":
        y = np.array([it["y"] for it in items])
        rep = cls_metrics(recipe, np.stack(probs), y, threshold=thr, grading=manifest["output"].get("grading"))
        rep["predictions"] = [{"name": it["name"], "truth": manifest["output"]["classes"][it["y"]],
                               "probs": [round(float(v), 4) for v in p]} for it, p in zip(items, probs, strict=False)]
    else:
        rep = label_metrics(recipe, items, threshold=thr if thr is not None else 0.5)
        rep["volumes"] = volumes
    rep["model"] = pkg.id
    rep["sha256"] = pkg.sha256
    rep["part"] = part
    rep["tta_setting"] = setting
    rep["split"] = split.description
    return rep


def label_metrics(recipe: Recipe, items: list[dict], threshold: float = 0.5) -> dict[str, Any]:
    """Dice per structure from the pipeline's label maps (F1 and AUC inside the FOV for vessels)."""
    labels = recipe.manifest["output"]["labels"]
    out: dict[str, Any] = {"per_image": {}}
    if recipe.id == "retina-vessels":
        preds, truth, scores = [], [], []
        for it in items:
            fov = it["fov"].astype(bool)
            p, t = it["pred"][fov] > 0, it["y_full"][fov] > 0
            preds.append(p)
            truth.append(t)
            scores.append(it["prob"][1][fov])
            out["per_image"][it["name"]] = metrics.dice(p, t)
        t = np.concatenate(truth)
        out["f1"] = metrics.dice(np.concatenate(preds), t)
        out["f1_mean_per_image"] = float(np.mean(list(out["per_image"].values())))
        out["auc"] = metrics.roc_auc_fast(t, np.concatenate(scores))
        return out
    per_label: dict[str, list[float]] = {lab["name"]: [] for lab in labels}
    for it in items:
        ds = []
        for lab in labels:
            d = metrics.dice(it["pred"] == lab["value"], it["y_full"] == lab["value"])
            per_label[lab["name"]].append(d)
            ds.append(d)
        out["per_image"][it["name"]] = float(np.mean(ds))
    for name, v in per_label.items():
        out[f"dice_{name.replace(' ', '_')}"] = float(np.mean(v))
    out["mean_dice"] = float(np.mean([np.mean(v) for v in per_label.values()]))
    return out
