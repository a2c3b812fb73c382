"""Correcting AI output: turn a segmentation result into an editable LabelMap and summarise
what the reviewer changed (voxels added / removed per label, Dice of edited vs AI)."""

from __future__ import annotations

from typing import Any

import numpy as np

from medview.annotation.labelmap import Label, LabelMap, default_color
from medview.io.volume import Volume


def labels_from_info(label_info: list[dict[str, Any]]) -> list[Label]:
    out = []
    for d in label_info:
        v = int(d["value"])
        if v == 0:
            continue
        color = d.get("color") or default_color(v)
        out.append(Label(v, str(d.get("name", f"label {v}")), tuple(int(c) for c in color)[:3]))  # type: ignore[arg-type]
    return out


def edit_prediction(prediction: Any, image: Volume) -> tuple[LabelMap, np.ndarray]:
    """"Edit" on a segmentation ``Prediction``: an editable LabelMap holding the AI labels, with
    provenance source="model" (id, version, sha256), plus a frozen copy of the AI array for the
    summary. ``prediction`` is ``medview.inference.Prediction`` (labels Volume, label_info)."""
    labels_vol = getattr(prediction, "labels", None)
    if labels_vol is None:
        raise ValueError("this result has no segmentation to edit")
    arr = labels_vol.array if isinstance(labels_vol, Volume) else np.asarray(labels_vol)
    if tuple(arr.shape[:3]) != image.shape:
        raise ValueError(f"segmentation grid {arr.shape} does not match the image {image.shape}")
    lm = LabelMap.from_array(
        image,
        arr,
        labels_from_info(list(getattr(prediction, "label_info", []) or [])),
        source="model",
        model_id=getattr(prediction, "model_id", None),
        model_version=getattr(prediction, "model_version", None),
        model_sha256=getattr(prediction, "model_sha256", None),
    )
    return lm, lm.array.copy()


def dice(a: np.ndarray, b: np.ndarray) -> float:
    """Dice of two boolean masks; 1.0 when both are empty."""
    sa, sb = int(np.count_nonzero(a)), int(np.count_nonzero(b))
    if sa + sb == 0:
        return 1.0
    return 2.0 * int(np.count_nonzero(a & b)) / (sa + sb)


def edit_summary(edited: LabelMap, original: np.ndarray) -> dict[str, Any]:
    """What changed between the AI labels (``original``) and the edited map, per label.

    Returns {"labels": [{value, name, ai_voxels, edited_voxels, added, removed, dice,
    added_ml, removed_ml}], "voxels_changed", "dice_all" (foreground vs foreground)}."""
    cur = edited.array
    if cur.shape != original.shape:
        raise ValueError("edited and original label maps differ in shape")
    vox_ml = edited.volume.voxel_volume_mm3 / 1000.0
    values = sorted(set(edited.labels) | {int(v) for v in np.unique(original) if v} | set(edited.present_values()))
    rows = []
    for v in values:
        a, e = original == v, cur == v
        added = int(np.count_nonzero(e & ~a))
        removed = int(np.count_nonzero(a & ~e))
        lab = edited.labels.get(v)
        rows.append({
            "value": v,
            "name": lab.name if lab else f"label {v}",
            "ai_voxels": int(np.count_nonzero(a)),
            "edited_voxels": int(np.count_nonzero(e)),
            "added": added,
            "removed": removed,
            "added_ml": round(added * vox_ml, 4),
            "removed_ml": round(removed * vox_ml, 4),
            "dice": round(dice(a, e), 6),
        })
    return {
        "labels": rows,
        "voxels_changed": int(np.count_nonzero(cur != original)),
        "dice_all": round(dice(original != 0, cur != 0), 6),
        "provenance": edited.provenance.to_dict(),
    }


def format_summary(summary: dict[str, Any]) -> str:
    lines = [f"{summary['voxels_changed']} voxels changed; Dice edited vs AI (all labels) {summary['dice_all']:.3f}"]
    for r in summary["labels"]:
        lines.append(f"{r['name']}: +{r['added']} / -{r['removed']} voxels, Dice {r['dice']:.3f}")
    return "\n".join(lines)
