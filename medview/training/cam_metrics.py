"""Does Grad-CAM point at the finding? Share of the heatmap's mass inside a known region.

Regions: the PH2 lesion masks for skin-lesion; for knee-oa the joint space, derived from each
joint crop (``knee_joint_band``: the band around the dark gap between femur and tibia, where
Kellgren-Lawrence grading looks: narrowing, osteophytes at the margins); for dr-grade the
retina itself (``fundus_retina``: the camera's lit field of view without its rim), since the
fundus sets outline no lesions: mass outside it lies on the black surround or the field's edge,
where no retinopathy is. The BUSI copy in MEDVIEW_DATA has no tumour masks, so breast-us
cannot be measured. Each image is run through the real inference pipeline
(``run_model`` with ``cam``, as the app does) and the heatmap (0..1 on the image grid)
is compared with the region: ``inside = sum(heat * mask) / sum(heat)``. ``area`` (the mask's
share of the image) is what a heatmap spread evenly would score, so ``inside / area`` says how
many times better than chance the map concentrates on the finding.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
from scipy import ndimage

from medview.training import datasets
from medview.training.recipes import RECIPES

# the band's half height and its columns, as shares of the crop (the crops hold about 1.5x the
# joint's width, centred on it)
JOINT_HALF_HEIGHT = 0.10
JOINT_COLUMNS = (0.08, 0.92)


def knee_joint_band(image: np.ndarray) -> np.ndarray:
    """The joint-space band of a knee joint crop: the row where the image is darkest between
    the bones (median over the central columns of each column's darkest row, searched in the
    crop's 30-80% rows), +-JOINT_HALF_HEIGHT of the height, across JOINT_COLUMNS."""
    a = np.asarray(image, np.float64)
    a = a.mean(axis=-1) if a.ndim == 3 else a
    h, w = a.shape
    prof = ndimage.uniform_filter(a[:, int(0.2 * w):int(0.8 * w)], size=9)
    lo, hi = int(0.3 * h), int(0.8 * h)
    r0 = lo + int(np.median(np.argmin(prof[lo:hi], axis=0)))
    half = int(round(JOINT_HALF_HEIGHT * h))
    mask = np.zeros((h, w), bool)
    mask[max(0, r0 - half):r0 + half + 1, int(JOINT_COLUMNS[0] * w):int(JOINT_COLUMNS[1] * w)] = True
    return mask


RIM_SHARE = 0.08  # the field of view's rim left out of the retina region: this share of its radius


def fundus_retina(image: np.ndarray, level: float = 0.1) -> np.ndarray:
    """The retina of a fundus photograph: the lit field of view (as the dr-grade crop finds it)
    eroded by RIM_SHARE of its equivalent radius."""
    from medview.inference.postprocess import field_of_view

    fov = field_of_view(image, level)
    radius = float(np.sqrt(fov.sum() / np.pi))
    return ndimage.binary_erosion(fov, iterations=max(1, int(RIM_SHARE * radius)))


def _region(model_id: str, sample: datasets.Sample, image: np.ndarray) -> np.ndarray | None:
    if model_id == "skin-lesion":
        mp: Path | None = sample.extra.get("mask")
        return datasets.read_mask(mp) > 0 if mp is not None else None
    if model_id == "knee-oa":
        return knee_joint_band(image)
    if model_id == "dr-grade":
        return fundus_retina(image)
    return None


REGION_MODELS = ("skin-lesion", "knee-oa", "dr-grade")
# which predictions count: the finding the map should explain
FINDING_CLASSES = {"skin-lesion": ["melanoma"], "knee-oa": ["KL2", "KL3", "KL4"],
                   "dr-grade": ["moderate", "severe", "proliferative"]}


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
        vol = read_image_file(s.image)
        mask = _region(model_id, s, vol.array[0])
        if mask is None or not mask.any():
            continue
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
