"""What a report is made of, gathered from a folder ``medview infer`` wrote, a saved review
session (workspace folder), a label map file or an SR: image, label map, measurements, findings."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from medview.annotation.labelmap import LabelMap
from medview.io.volume import Volume
from medview.reporting.measurements import MeasurementRecord, load_measurements, segment_volume_records
from medview.reporting.sr import Finding


class SessionError(ValueError):
    """The folder or file holds nothing a report can be made of."""


@dataclass
class ReportInputs:
    source: Path
    image: Volume | None = None
    labelmap: LabelMap | None = None
    measurements: list[MeasurementRecord] = field(default_factory=list)
    findings: list[Finding] = field(default_factory=list)
    predictions: list[dict[str, Any]] = field(default_factory=list)  # prediction.json contents
    heatmap: Volume | None = None
    warnings: list[str] = field(default_factory=list)

    def all_measurements(self) -> list[MeasurementRecord]:
        """Rulers/ROIs plus one volume per segment (computed from the label map when no record has them)."""
        out = list(self.measurements)
        if self.labelmap is not None and not any(r.kind == "volume" for r in out):
            out.extend(segment_volume_records(self.labelmap))
        return out


def _image_path_of(predictions: list[dict[str, Any]], workspace: dict[str, Any]) -> str | None:
    for p in predictions:
        path = (p.get("input") or {}).get("path")
        if path:
            return str(path)
    ref = workspace.get("reference") or {}
    return ref.get("source_path")


def gather(path: str | Path, reference: str | Path | Volume | None = None) -> ReportInputs:
    """Collect the report inputs at ``path``; ``reference`` is the image (path or Volume), by
    default the one prediction.json / workspace.json names."""
    from medview.annotation.nifti import load_nifti
    from medview.annotation.workspace import load_workspace
    from medview.io import LoadError, load_volume

    path = Path(path)
    if not path.exists():
        raise SessionError(f"{path}: no such file or folder")
    inputs = ReportInputs(path)
    folder = path if path.is_dir() else path.parent
    predictions = []
    for pj in ([folder / "prediction.json"] if (folder / "prediction.json").is_file() else []):
        predictions.append(json.loads(pj.read_text(encoding="utf-8")))
    workspace = {}
    if path.is_dir() and (path / "workspace.json").is_file():
        workspace = json.loads((path / "workspace.json").read_text(encoding="utf-8"))
    inputs.predictions = predictions
    inputs.findings = [Finding.from_prediction_json(p) for p in predictions if p.get("probabilities")]

    image = reference if isinstance(reference, Volume) else None
    ref_path = str(reference) if reference is not None and image is None else _image_path_of(predictions, workspace)
    if image is None and ref_path:
        try:
            image = load_volume(ref_path)
        except LoadError as exc:
            inputs.warnings.append(f"the image could not be opened ({exc}); no key images")
    inputs.image = image

    if workspace:
        lm, _ = load_workspace(path)
        inputs.labelmap = lm if lm.present_values() else None
        inputs.measurements = load_measurements(path)
    elif path.is_file() and path.name.lower().endswith((".nii", ".nii.gz", ".nrrd", ".mha")):
        inputs.labelmap = load_nifti(path, image) if image is not None else load_nifti(path)
    elif path.is_file() and path.name == "measurements.json":
        inputs.measurements = load_measurements(path)
    elif path.is_dir() and (path / "segmentation.nii.gz").is_file():
        seg = path / "segmentation.nii.gz"
        inputs.labelmap = load_nifti(seg, image) if image is not None else load_nifti(seg)
    if path.is_dir() and not workspace and (path / "measurements.json").is_file():
        inputs.measurements = load_measurements(path)
    if path.is_dir():
        for name in ("gradcam.nii.gz", "uncertainty.nii.gz"):
            if (path / name).is_file():
                try:
                    inputs.heatmap = load_volume(path / name)
                except LoadError as exc:
                    inputs.warnings.append(str(exc))
                break
    if not (inputs.labelmap is not None or inputs.measurements or inputs.findings or predictions):
        raise SessionError(f"{path}: holds no prediction.json, label map, workspace or measurements")
    return inputs
