"""Plain records a study source returns, and the one error it raises."""

from __future__ import annotations

import fnmatch
from dataclasses import dataclass, field


class PacsError(Exception):
    """One clear line for the user: which server, and why (never a credential)."""

    def __init__(self, server: str, reason: str):
        super().__init__(f"{server}: {reason}")
        self.server = server
        self.reason = reason


@dataclass
class StudyQuery:
    patient_id: str = ""
    patient_name: str = ""  # DICOM wildcard glob: * and ?
    modality: str = ""
    date_from: str = ""  # YYYYMMDD
    date_to: str = ""
    accession: str = ""
    study_uid: str = ""

    def date_range(self) -> str:
        if not self.date_from and not self.date_to:
            return ""
        if self.date_from == self.date_to:
            return self.date_from
        return f"{self.date_from}-{self.date_to}"

    @staticmethod
    def parse_dates(text: str) -> tuple[str, str]:
        """'20200101-20201231', '20200101-', '-20201231' or one day."""
        text = (text or "").replace("/", "").strip()
        if not text:
            return "", ""
        if "-" in text:
            lo, hi = text.split("-", 1)
            return lo.strip(), hi.strip()
        return text, text

    def matches(self, study: StudyResult) -> bool:
        """The same filter applied locally (folder source, and servers that ignore a key)."""
        if self.study_uid and study.study_uid != self.study_uid:
            return False
        if self.patient_id and not fnmatch.fnmatchcase(study.patient_id, self.patient_id):
            return False
        if self.patient_name and not fnmatch.fnmatch(study.patient_name.lower(), self.patient_name.lower()):
            return False
        if self.accession and study.accession != self.accession:
            return False
        if self.modality and self.modality.upper() not in {m.upper() for m in study.modalities}:
            return False
        if self.date_from and (not study.study_date or study.study_date < self.date_from):
            return False
        if self.date_to and (not study.study_date or study.study_date > self.date_to):
            return False
        return True


@dataclass
class StudyResult:
    study_uid: str
    patient_id: str = ""
    patient_name: str = ""
    study_date: str = ""
    description: str = ""
    accession: str = ""
    modalities: list[str] = field(default_factory=list)
    n_series: int = 0
    n_instances: int = 0

    medview_results: bool | None = None  # None: not checked (see StudySource.medview_results)

    @property
    def may_have_results(self) -> bool:
        """Whether the study holds any segmentation / report (MedView's or anyone's): the cheap
        study-level test that decides whether its series are worth asking about."""
        return any(m in ("SEG", "SR") for m in self.modalities)

    def line(self) -> str:
        """The `medview pacs find` line: UID, patient ID, date, modalities, description."""
        mods = "/".join(self.modalities) or "-"
        return "\t".join([self.study_uid, self.patient_id or "-", self.study_date or "-", mods,
                          self.description or "-"])


@dataclass
class SeriesResult:
    series_uid: str
    study_uid: str
    modality: str = ""
    description: str = ""
    number: int | None = None
    n_instances: int = 0
    manufacturer: str = ""

    @property
    def is_medview_result(self) -> bool:
        """A series MedView wrote (DICOM SEG / SR export: Manufacturer "MedView", or a
        SeriesDescription starting with "MedView")."""
        return (self.manufacturer.strip().lower() == "medview"
                or self.description.strip().lower().startswith("medview"))
