"""The content of the one-page report, shared by the PDF and the HTML writers."""

from __future__ import annotations

import datetime as _dt
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from medview.reporting.session import ReportInputs

DISCLAIMER = "Research use only, not for diagnosis."


@dataclass
class ReportContent:
    title: str
    header: list[tuple[str, str]]
    key_images: list[Any]  # PIL images
    key_captions: list[str]
    findings: list[tuple[str, str, str]]  # model, top class, probabilities text
    volumes: list[tuple[str, str]]  # structure, volume
    measurements: list[tuple[str, str, str]]  # kind/name, where, value
    provenance: list[tuple[str, str]]
    notes: list[str] = field(default_factory=list)
    disclaimer: str = DISCLAIMER


def _fmt_date(d: str) -> str:
    d = str(d or "")
    return f"{d[:4]}-{d[4:6]}-{d[6:8]}" if len(d) == 8 and d.isdigit() else d


def build_content(inputs: ReportInputs, screenshots: Sequence[str | Path] = (), author: str | None = None
                  ) -> ReportContent:
    """Header, key images (the user's screenshots, else rendered slices), findings, volumes,
    measurements and model provenance of ``inputs``."""
    from PIL import Image

    from medview import __version__
    from medview.annotation.labelmap import reviewer_name
    from medview.reporting.key_images import choose_slices, render_slice

    meta = inputs.image.meta if inputs.image is not None else {}
    pred_input = next((p.get("input") or {} for p in inputs.predictions), {})
    def pick(key: str, alt: str) -> str:
        return str(meta.get(key) or pred_input.get(alt) or "")
    header = [
        ("Patient", pick("PatientName", "patient_name").replace("^", " ").strip() or "(not given)"),
        ("Patient ID", pick("PatientID", "patient_id") or "(not given)"),
        ("Study date", _fmt_date(str(meta.get("StudyDate", ""))) or "(not given)"),
        ("Study", str(meta.get("StudyDescription", "")) or "(no description)"),
        ("Series", f"{pick('Modality', 'modality')} {pick('SeriesDescription', 'series_description')}".strip()),
        ("Study UID", pick("StudyInstanceUID", "study_uid") or "(not given)"),
        ("Report", f"{_dt.datetime.now().strftime('%Y-%m-%d %H:%M')} by {author or reviewer_name()}"),
    ]
    images, captions = [], []
    for s in screenshots:
        images.append(Image.open(s).convert("RGB"))
        captions.append(Path(s).stem)
    if not images and inputs.image is not None and not inputs.image.is_rgb:
        measured = inputs.measurements
        for k in choose_slices(inputs.image, inputs.labelmap, inputs.heatmap, measured):
            images.append(render_slice(inputs.image, k, inputs.labelmap, inputs.heatmap, measured))
            captions.append(f"axial slice {k + 1}/{inputs.image.shape[0]}")
    elif not images and inputs.image is not None:
        images.append(render_slice(inputs.image, 0, inputs.labelmap, inputs.heatmap))
        captions.append("image")

    findings = []
    for f in inputs.findings:
        probs = ", ".join(f"{c} {p:.3f}" for c, p in sorted(f.probabilities.items(), key=lambda kv: -kv[1]))
        findings.append((f.model_name or f.model_id, f.top_class or "", probs))
    volumes, measurements = [], []
    unit = inputs.image.length_unit if inputs.image is not None else "mm"
    for r in inputs.all_measurements():
        if r.kind == "volume":
            volumes.append((r.name or f"label {r.segment}", f"{r.values.get('volume_ml', float('nan')):.2f} mL"))
        else:
            where = f"{r.view} slice {r.slice_index + 1}"
            measurements.append((f"{r.kind} {r.name}".strip(), where, r.summary(unit)))
    provenance = []
    for p in inputs.predictions:
        m = p.get("model", {})
        provenance.append(("Model", f"{m.get('name') or m.get('id')} {m.get('version', '')} ({m.get('id', '')})"))
        provenance.append(("Weights sha256", str(m.get("sha256", ""))))
        if not p.get("input_verified", True):
            provenance.append(("Input", "not verified for this model"))
    if inputs.labelmap is not None:
        pv = inputs.labelmap.provenance
        if pv.model_id and not inputs.predictions:
            provenance.append(("Segmentation model", f"{pv.model_id} {pv.model_version or ''}"))
            if pv.model_sha256:
                provenance.append(("Weights sha256", pv.model_sha256))
        if pv.strokes or pv.reviewers:
            provenance.append(("Edited", f"{pv.strokes} stroke(s) by {', '.join(pv.reviewers) or pv.reviewer}"))
    provenance.append(("Software", f"MedView {__version__}"))
    return ReportContent("MedView report", header, images, captions, findings, volumes, measurements, provenance,
                         list(inputs.warnings))
