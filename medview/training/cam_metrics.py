"""Does Grad-CAM point at the finding? Share of the heatmap's mass inside a known region.

For the classifiers whose data sets outline the finding (PH2 lesion masks for skin-lesion; the
BUSI copy in MEDVIEW_DATA has no tumour masks, so breast-us cannot be measured), each held-out
image is run through the real inference pipeline (``run_model`` with ``cam``, as the app does)
and the heatmap (0..1 on the image grid)
is compared with the mask: ``inside = sum(heat * mask) / sum(heat)``. ``area`` (the mask's
share of the image) is what a heatmap spread evenly would score, so ``inside / area`` says how
many times better than chance the map concentrates on the finding.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from medview.training import datasets
from medview.training.recipes import RECIPES


def _mask_path(model_id: str, sample: datasets.Sample) -> Path | None:
    return sample.extra.get("mask") if model_id == "skin-lesion" else None


REGION_MODELS = ("skin-lesion",)
# which predictions count: the finding the map should explain
FINDING_CLASSES = {"skin-lesion": ["melanoma"]}


def cam_in_region(model_id: str, package: str | Path | None = None, part: str = "test",
                  method: str = "gradcam", limit: int | None = None) -> dict[str, Any]:
    """Per image and summarised: heatmap mass inside the finding's mask, for images predicted
    (top class) as one of the model's finding classes and whose mask is not empty."""
    from medview.inference.package import find_package
    from medview.inference.pipeline import run_model
    from medview.io.files import read_image_file

    if model_id not in REGION_MODELS:
        raise ValueError(f"no region masks for {model_id!r} in the data (only {', '.join(REGION_MODELS)})")
    pkg = find_package(str(package) if package else model_id)
    split = RECIPES[model_id].split()
    samples = split.test if part == "test" else split.val
    rows = []
    for s in samples[:limit] if limit else samples:
        mp = _mask_path(model_id, s)
        if mp is None:
            continue
        mask = datasets.read_mask(mp) > 0
        if not mask.any():
            continue
        vol = read_image_file(s.image)
        pred = run_model(pkg, vol, cam=method, unverified_ok=True)  # data-set PNGs carry no modality
        top = max(pred.probabilities, key=pred.probabilities.get)
        heat = np.asarray(pred.heatmap.array, np.float64)
        heat = heat.reshape(heat.shape[-2:]) if heat.ndim > 2 else heat
        if heat.shape != mask.shape:
            raise ValueError(f"{s.image.name}: heatmap {heat.shape} vs mask {mask.shape}")
        total = heat.sum()
        rows.append({"image": s.image.name, "true": RECIPES[model_id].manifest["output"]["classes"][int(s.target)],
                     "predicted": top, "inside": float((heat * mask).sum() / total) if total > 0 else 0.0,
                     "area": float(mask.mean())})
    finding = [r for r in rows if r["predicted"] in FINDING_CLASSES[model_id]]

    def summary(rs):
        if not rs:
            return {"n": 0}
        inside = np.array([r["inside"] for r in rs])
        area = np.array([r["area"] for r in rs])
        return {"n": len(rs), "inside_mean": round(float(inside.mean()), 4),
                "inside_median": round(float(np.median(inside)), 4),
                "area_mean": round(float(area.mean()), 4),
                "lift": round(float(inside.mean() / max(area.mean(), 1e-9)), 3)}
    return {"model": model_id, "package": str(pkg.path),
            "part": part, "method": method, "finding_classes": FINDING_CLASSES[model_id],
            "finding_predictions": summary(finding), "all_with_mask": summary(rows), "images": rows}


def format_cam_report(rep: dict[str, Any]) -> list[str]:
    f, a = rep["finding_predictions"], rep["all_with_mask"]
    out = [f"Grad-CAM mass inside the finding ({rep['method']}, {rep['part']} part, {rep['model']}):"]
    for name, s in ((f"predicted {'/'.join(rep['finding_classes'])}", f), ("all images with a mask", a)):
        if s["n"]:
            out.append(f"  {name}: n={s['n']} inside mean {s['inside_mean']:.3f} median "
                       f"{s['inside_median']:.3f}; mask area {s['area_mean']:.3f}; lift {s['lift']:.2f}x")
        else:
            out.append(f"  {name}: n=0")
    return out
