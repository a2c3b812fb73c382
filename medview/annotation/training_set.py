"""Training-set export: the edited label maps as a folder the training code reads directly.

Layout (Medical Segmentation Decathlon style, so ``monai.data.load_decathlon_datalist(
"dataset.json", True, "training")`` reads it as is)::

    OUT/
      dataset.json
      images/<case>.nii.gz     the image on its source geometry (LPS -> RAS handled by SimpleITK);
                               <case> is given, else case_<hash of the series UID> (no patient
                               identifiers in file names)
      labels/<case>.nii.gz     the label map on the same grid (uint8/uint16), 0 = background
      labels/<case>.json       sidecar: label names, colours, provenance

dataset.json::

    {"name", "description", "tensorImageSize": "3D", "modality": {"0": "MR"},
     "labels": {"0": "background", "1": "...", ...},      # value -> name, same in every case
     "label_colors": {"1": [r, g, b], ...},
     "numTraining": N,
     "training": [{"image": "images/<case>.nii.gz", "label": "labels/<case>.nii.gz",
                   "case": "<case>", "series_uid", "source", "model_id", "model_version",
                   "reviewer", "modified", "voxels": {"1": n, ...}}],
     "medview": {"schema": "medview-training-set/1", "updated": "<ISO time>"},
     "research_use_only": true}

Exporting another case into the same folder adds (or replaces, same case id) its entry; a label
value whose name differs from the one already in dataset.json is refused.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np

from medview.annotation.labelmap import LabelMap, now_iso
from medview.annotation.nifti import save_nifti
from medview.io.volume import Volume

SCHEMA = "medview-training-set/1"


def case_id_for(image: Volume) -> str:
    """A stable case id that carries no patient identifier: a hash of the series UID (else of
    the source path), e.g. ``case_3f9a0c1d2e``."""
    import hashlib

    key = str(image.meta.get("SeriesInstanceUID") or image.meta.get("source_path") or "")
    if not key:
        key = hashlib.sha1(np.ascontiguousarray(image.array).tobytes()).hexdigest()
    return "case_" + hashlib.sha1(key.encode("utf-8")).hexdigest()[:10]


def export_training_case(image: Volume, lm: LabelMap, out_dir: str | Path, case_id: str | None = None,
                         name: str = "medview-annotations", description: str = "") -> dict[str, Any]:
    """Add one (image, labels) case to the training set in ``out_dir``; returns its entry."""
    from medview.annotation.identity import IdentityError, mismatches
    from medview.annotation.workspace import atomic_write_json
    from medview.io import save_volume

    if not image.same_geometry(lm.volume):
        raise ValueError("the label map is not on the image grid")
    diff = mismatches(lm.reference, image.meta)
    if diff:
        raise IdentityError(str(image.meta.get("source_path", "image")),
                            f"the label map was drawn on patient {lm.reference.get('PatientID', '?')}, the image "
                            f"is patient {image.meta.get('PatientID', '?')} (different {', '.join(diff)}): refused")
    out = Path(out_dir)
    (out / "images").mkdir(parents=True, exist_ok=True)
    (out / "labels").mkdir(parents=True, exist_ok=True)
    ds_path = out / "dataset.json"
    ds: dict[str, Any] = json.loads(ds_path.read_text(encoding="utf-8")) if ds_path.is_file() else {
        "name": name, "description": description or "Label maps reviewed in MedView",
        "tensorImageSize": "3D", "modality": {"0": image.modality or "unknown"},
        "labels": {"0": "background"}, "label_colors": {}, "numTraining": 0, "training": []}
    # label names must agree across cases
    for v, lab in sorted(lm.labels.items()):
        key = str(v)
        if key in ds["labels"] and ds["labels"][key] != lab.name:
            raise ValueError(f"label {v} is {lab.name!r} here but {ds['labels'][key]!r} in {ds_path}")
        ds["labels"][key] = lab.name
        ds["label_colors"][key] = list(lab.color)
    cid = case_id or case_id_for(image)
    if not cid or any(c in cid for c in "/\\") or cid.startswith("."):
        raise ValueError(f"case id {cid!r} cannot be a file name")
    img_rel, lab_rel = f"images/{cid}.nii.gz", f"labels/{cid}.nii.gz"
    save_volume(image, str(out / img_rel))
    save_nifti(lm, out / lab_rel)
    p = lm.provenance
    entry = {
        "image": img_rel, "label": lab_rel, "case": cid,
        "series_uid": str(image.meta.get("SeriesInstanceUID", "")),
        "source": p.source, "model_id": p.model_id, "model_version": p.model_version,
        "reviewer": p.reviewer, "modified": p.modified,
        "voxels": {str(k): v for k, v in lm.counts().items()},
    }
    ds["training"] = [e for e in ds["training"] if e.get("case") != cid] + [entry]
    ds["numTraining"] = len(ds["training"])
    ds["labels"] = dict(sorted(ds["labels"].items(), key=lambda kv: int(kv[0])))
    ds["medview"] = {"schema": SCHEMA, "updated": now_iso()}
    ds["research_use_only"] = True
    atomic_write_json(ds_path, ds)
    from medview.reporting.audit import record

    record("export", image.meta, {"format": "training set", "output": str(out), "case": cid})
    return entry
