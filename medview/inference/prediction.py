"""``Prediction``: what running a model on a Volume produced (no torch, no Qt)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from medview.io.volume import Volume


@dataclass
class Prediction:
    model_id: str
    model_name: str
    model_version: str
    model_sha256: str
    task: str
    device: str
    timings: dict[str, float] = field(default_factory=dict)  # stage -> seconds
    # classification / regression
    classes: list[str] = field(default_factory=list)
    probabilities: dict[str, float] | None = None  # mean over slices for a 2D model on a stack
    values: dict[str, float] | None = None  # regression outputs
    grading: dict[str, Any] | None = None  # graded models: medview.inference.grading.grade_result
    slice_probabilities: np.ndarray | None = None  # (n_slices, n_classes) for 2D models
    # segmentation
    labels: Volume | None = None  # uint8 label map on the source grid
    label_info: list[dict[str, Any]] = field(default_factory=list)  # value, name, color, voxels, ml/mm2
    # explainability
    heatmap: Volume | None = None  # float32 0..1 on the source grid (Grad-CAM or TTA uncertainty)
    heatmap_kind: str = ""  # "gradcam" | "gradcam++" | "uncertainty"
    cam_class: str | None = None
    messages: list[str] = field(default_factory=list)  # e.g. "CUDA out of memory: retried on CPU"
    from_cache: bool = False
    # how the network ran: "whole image" / "sliding window", and the TTA setting ("fast" | "accurate")
    passes: str = ""
    # what it ran on: path, series UID, patient (medview.inference.acceptance.input_identity), and
    # whether the model's acceptance declaration was verified on it (InputCheck.to_json())
    input: dict[str, Any] = field(default_factory=dict)
    input_check: dict[str, Any] = field(default_factory=lambda: {"verified": True, "verdict": "ok"})

    @property
    def input_verified(self) -> bool:
        return bool(self.input_check.get("verified", True))

    @property
    def total_seconds(self) -> float:
        return float(self.timings.get("total", sum(self.timings.values())))

    @property
    def top_class(self) -> str | None:
        if not self.probabilities:
            return None
        return max(self.probabilities.items(), key=lambda kv: kv[1])[0]

    def to_json(self) -> dict[str, Any]:
        """The content of prediction.json (arrays are written separately as NIfTI)."""
        d: dict[str, Any] = {
            "model": {
                "id": self.model_id,
                "name": self.model_name,
                "version": self.model_version,
                "sha256": self.model_sha256,
            },
            "task": self.task,
            "input": dict(self.input),
            "input_verified": self.input_verified,
            "input_check": dict(self.input_check),
            "device": self.device,
            "timing_s": {k: round(float(v), 4) for k, v in self.timings.items()},
            "messages": list(self.messages),
            "research_use_only": True,
        }
        if self.passes:
            d["passes"] = self.passes
        if self.probabilities is not None:
            d["probabilities"] = {k: float(v) for k, v in self.probabilities.items()}
            d["top_class"] = self.top_class
        if self.slice_probabilities is not None and len(self.slice_probabilities) > 1:
            d["slice_probabilities"] = np.round(self.slice_probabilities, 6).tolist()
        if self.grading is not None:
            d["grading"] = dict(self.grading)
        if self.values is not None:
            d["values"] = {k: float(v) for k, v in self.values.items()}
        if self.labels is not None:
            d["labels"] = [dict(x) for x in self.label_info]
        if self.heatmap is not None:
            d["heatmap"] = {"kind": self.heatmap_kind, "class": self.cam_class}
        return d


def label_size_text(info: dict[str, Any]) -> str:
    """'1.912 mL', '345.2 mm2' or '12034 px' for one entry of ``label_statistics``."""
    if "volume_ml" in info:
        return f"{info['volume_ml']:.3f} mL"
    if "area_mm2" in info:
        return f"{info['area_mm2']:.1f} mm2"
    return f"{info.get('area_px', info.get('voxels', 0))} px"


def label_statistics(labels: Volume, label_defs: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Per-label voxel count and volume in mL (3D) or area in mm2 (a single 2D slice); a photograph
    without a pixel size gets ``area_px`` instead (its 1 "mm" spacing is a pixel)."""
    counts = np.bincount(labels.array.reshape(-1).astype(np.int64), minlength=256)
    two_d = labels.shape[0] == 1
    out = []
    for lab in label_defs:
        v = int(lab["value"])
        n = int(counts[v]) if v < len(counts) else 0
        item = {"value": v, "name": lab.get("name", str(v)), "color": list(lab.get("color", [255, 0, 0]))[:3],
                "voxels": n}
        if two_d and not labels.pixel_size_known:
            item["area_px"] = n
        elif two_d:
            item["area_mm2"] = round(n * labels.spacing[0] * labels.spacing[1], 3)
        else:
            item["volume_ml"] = round(n * labels.voxel_volume_mm3 / 1000.0, 4)
        out.append(item)
    return out
