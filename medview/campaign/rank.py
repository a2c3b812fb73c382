"""Which case to label next: how unsure the model is about each case, most unsure first.

Scores (0 = sure, 1 = as unsure as it gets), computed from one ``Prediction`` each:

- classifiers: the normalised entropy of the class probabilities (``entropy``) or one minus the
  margin between the two most likely classes (``margin``);
- segmenters (run with test-time augmentation): the mean TTA disagreement (normalised entropy of
  the mean of the flipped passes, ``Prediction.heatmap``) inside the predicted object, grown by
  one voxel so its border counts, and the volume of uncertain voxels (disagreement > 0.5). A
  segmenter that finds no object at all scores 1: someone has to look.

``worklist`` orders campaign records by score; ``quarter_errors`` is the usefulness check: on
labelled cases the most-uncertain quarter must hold clearly more model errors than the least.
"""

from __future__ import annotations

import csv
import json
import math
import os
from pathlib import Path
from typing import Any

import numpy as np

UNCERTAIN_LEVEL = 0.5  # disagreement above which a voxel counts as uncertain
METHODS = ("entropy", "margin")


def class_scores(probabilities: dict[str, float]) -> dict[str, float]:
    p = np.clip(np.asarray(list(probabilities.values()), dtype=np.float64), 1e-12, 1.0)
    p = p / p.sum()
    entropy = float(-(p * np.log(p)).sum() / math.log(len(p))) if len(p) > 1 else 0.0
    top = np.sort(p)[::-1]
    margin = float(top[0] - top[1]) if len(p) > 1 else 1.0
    return {"entropy": round(entropy, 6), "margin": round(margin, 6)}


def segmentation_scores(labels: np.ndarray, disagreement: np.ndarray, voxel_size: float = 1.0,
                        unit: str = "px") -> dict[str, Any]:
    """Mean disagreement inside the (one-voxel grown) predicted object and the uncertain volume."""
    from scipy import ndimage

    fg = np.asarray(labels) > 0
    d = np.asarray(disagreement, dtype=np.float32)
    uncertain = int((d > UNCERTAIN_LEVEL).sum())
    out: dict[str, Any] = {"object_voxels": int(fg.sum()), "uncertain_voxels": uncertain,
                           f"uncertain_{unit}": round(uncertain * voxel_size, 3)}
    if not fg.any():
        out["mean_disagreement"] = 1.0
        out["note"] = "no object found"
        return out
    # grow within each 2D slice or the whole 3D volume, never across the slices of a 2D stack
    structure = ndimage.generate_binary_structure(fg.ndim, 1)
    if fg.ndim == 3 and fg.shape[0] == 1:
        structure[0] = structure[2] = False
    region = ndimage.binary_dilation(fg, structure=structure)
    out["mean_disagreement"] = round(float(d[region].mean()), 6)
    return out


def score_prediction(pred, method: str = "entropy") -> dict[str, Any] | None:
    """The uncertainty record of one prediction (``score`` is what ranking sorts on); None when
    the prediction carries nothing to judge (a segmenter run without TTA)."""
    if method not in METHODS:
        raise ValueError(f"unknown ranking method {method!r}; expected one of {', '.join(METHODS)}")
    if pred.probabilities:
        s = class_scores(pred.probabilities)
        score = s["entropy"] if method == "entropy" else round(1.0 - s["margin"], 6)
        return {"kind": f"classification {method}", "score": score, **s}
    if pred.labels is not None and pred.heatmap is not None and pred.heatmap_kind == "uncertainty":
        lab = pred.labels
        if lab.shape[0] == 1 and not lab.pixel_size_known:
            size, unit = 1.0, "px"
        elif lab.shape[0] == 1:
            size, unit = float(lab.spacing[0] * lab.spacing[1]), "mm2"
        else:
            size, unit = lab.voxel_volume_mm3 / 1000.0, "ml"
        s = segmentation_scores(lab.array, pred.heatmap.array, size, unit)
        return {"kind": "segmentation TTA disagreement", "score": s["mean_disagreement"], **s}
    return None


# ---------------------------------------------------------------------------------------------
# worklist
# ---------------------------------------------------------------------------------------------
def worklist(records: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Scored cases, most uncertain first (ties: by name, so the order is reproducible)."""
    scored = [r for r in records if r.get("uncertainty") and r.get("status") in ("ok", "skipped")]
    return sorted(scored, key=lambda r: (-float(r["uncertainty"]["score"]), r["case"]))


def write_worklist(out_root: Path, ranked: list[dict[str, Any]], model: dict[str, Any]) -> tuple[Path, Path]:
    """worklist.json (what the app's queue reads) and worklist.csv, written atomically."""
    out_root.mkdir(parents=True, exist_ok=True)
    items = [{"rank": i + 1, "case": r["case"], "path": r["path"], "out": r.get("out", ""),
              "score": r["uncertainty"]["score"], "result": r.get("result", ""),
              "uncertainty": r["uncertainty"]} for i, r in enumerate(ranked)]
    js = out_root / "worklist.json"
    tmp = js.with_name(f".{js.name}.{os.getpid()}.tmp")
    tmp.write_text(json.dumps({"model": model, "order": "most uncertain first", "cases": items}, indent=2) + "\n")
    os.replace(tmp, js)
    cs = out_root / "worklist.csv"
    tmp = cs.with_name(f".{cs.name}.{os.getpid()}.tmp")
    with open(tmp, "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["rank", "case", "path", "result", "score"])
        for it in items:
            w.writerow([it["rank"], it["case"], it["path"], it["result"], f"{it['score']:.6f}"])
    os.replace(tmp, cs)
    return js, cs


def read_worklist(path: Path) -> list[dict[str, Any]]:
    p = Path(path)
    if p.is_dir():
        p = p / "worklist.json"
    return list(json.loads(p.read_text())["cases"])


# ---------------------------------------------------------------------------------------------
# usefulness on labelled cases
# ---------------------------------------------------------------------------------------------
def quarter_errors(scores: list[float], errors: list[bool], quality: list[float] | None = None) -> dict[str, Any]:
    """Model errors in the quarter ranked most uncertain vs the quarter ranked least uncertain.
    ``quality`` (e.g. Dice per case) adds its mean per quarter."""
    n = len(scores)
    if n < 4 or len(errors) != n:
        raise ValueError(f"need at least 4 scored cases with a truth each (got {n})")
    order = sorted(range(n), key=lambda i: -scores[i])
    q = n // 4
    top, bottom = order[:q], order[-q:]
    out: dict[str, Any] = {"n": n, "quarter": q, "errors_total": int(sum(errors)),
                           "errors_most_uncertain": int(sum(errors[i] for i in top)),
                           "errors_least_uncertain": int(sum(errors[i] for i in bottom))}
    if quality is not None:
        out["quality_most_uncertain"] = float(np.mean([quality[i] for i in top]))
        out["quality_least_uncertain"] = float(np.mean([quality[i] for i in bottom]))
    return out
