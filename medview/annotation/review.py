"""Classification review: accept / reject / relabel an AI classification, with a comment and
provenance; export as JSON and CSV."""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Iterable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from medview.annotation.journal import atomic_write_bytes
from medview.annotation.labelmap import now_iso, reviewer_name

DECISIONS = ("accept", "reject", "relabel")


@dataclass
class ClassificationReview:
    model_id: str
    model_version: str
    model_sha256: str
    predicted: str | None
    decision: str  # accept | reject | relabel
    final_label: str | None = None  # the class the reviewer says is right (accept: = predicted)
    comment: str = ""
    probabilities: dict[str, float] = field(default_factory=dict)
    series_uid: str = ""
    study_uid: str = ""
    patient_id: str = ""
    source_path: str = ""
    reviewer: str = field(default_factory=reviewer_name)
    created: str = field(default_factory=now_iso)
    modified: str = field(default_factory=now_iso)

    def __post_init__(self) -> None:
        if self.decision not in DECISIONS:
            raise ValueError(f"decision must be one of {DECISIONS}; got {self.decision!r}")
        if self.decision == "accept" and self.final_label is None:
            self.final_label = self.predicted
        if self.decision == "relabel" and not self.final_label:
            raise ValueError("relabel needs the right class (final_label)")
        if self.decision == "reject" and self.final_label == self.predicted:
            self.final_label = None

    @classmethod
    def from_prediction(cls, prediction: Any, image_meta: dict[str, Any] | None, decision: str,
                        final_label: str | None = None, comment: str = "",
                        reviewer: str | None = None) -> ClassificationReview:
        meta = dict(image_meta or {})
        kw = {}
        if reviewer:
            kw["reviewer"] = reviewer
        return cls(
            model_id=str(getattr(prediction, "model_id", "")),
            model_version=str(getattr(prediction, "model_version", "")),
            model_sha256=str(getattr(prediction, "model_sha256", "")),
            predicted=getattr(prediction, "top_class", None),
            decision=decision,
            final_label=final_label,
            comment=comment,
            probabilities={k: float(v) for k, v in (getattr(prediction, "probabilities", None) or {}).items()},
            series_uid=str(meta.get("SeriesInstanceUID", "")),
            study_uid=str(meta.get("StudyInstanceUID", "")),
            patient_id=str(meta.get("PatientID", "")),
            source_path=str(meta.get("source_path", "")),
            **kw,
        )

    def update(self, decision: str | None = None, final_label: str | None = None, comment: str | None = None) -> None:
        if decision is not None:
            self.decision = decision
            self.final_label = final_label
        if comment is not None:
            self.comment = comment
        self.modified = now_iso()
        self.__post_init__()

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


CSV_FIELDS = ["series_uid", "study_uid", "patient_id", "source_path", "model_id", "model_version", "model_sha256",
              "predicted", "decision", "final_label", "comment", "probabilities", "reviewer", "created", "modified"]


def save_reviews_json(reviews: Iterable[ClassificationReview], path: str | Path) -> None:
    data = {"schema": "medview-classification-reviews/1", "reviews": [r.to_dict() for r in reviews]}
    atomic_write_bytes(Path(path), json.dumps(data, indent=2).encode("utf-8"))


def load_reviews_json(path: str | Path) -> list[ClassificationReview]:
    data = json.loads(Path(path).read_text(encoding="utf-8"))
    items = data["reviews"] if isinstance(data, dict) else data
    return [ClassificationReview(**r) for r in items]


def reviews_csv_text(reviews: Iterable[ClassificationReview]) -> str:
    buf = io.StringIO()
    w = csv.DictWriter(buf, fieldnames=CSV_FIELDS, lineterminator="\n")
    w.writeheader()
    for r in reviews:
        d = r.to_dict()
        d["probabilities"] = json.dumps(d["probabilities"], sort_keys=True)
        d["final_label"] = d["final_label"] or ""
        d["predicted"] = d["predicted"] or ""
        w.writerow({k: d[k] for k in CSV_FIELDS})
    return buf.getvalue()


def save_reviews_csv(reviews: Iterable[ClassificationReview], path: str | Path) -> None:
    atomic_write_bytes(Path(path), reviews_csv_text(reviews).encode("utf-8"))
