"""Folder source: today's scan of a folder / DICOMDIR behind the StudySource interface."""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Callable, Optional

from medview.pacs.cache import DicomCache
from medview.pacs.model import PacsError, SeriesResult, StudyQuery, StudyResult
from medview.pacs.source import SourceConfig, StudySource
from medview.progress import CancelledFn, ProgressFn, no_progress


class FolderSource(StudySource):
    """Series stay where they are: 'retrieve' returns the folder holding the series' files."""

    def __init__(self, config: SourceConfig, cache: Optional[DicomCache] = None):
        self.config = config
        self.cache = cache
        self._index = None

    def _scan(self):
        from medview.io import scan

        if self._index is None:
            self._index = scan(self.config.path)
        return self._index

    def echo(self) -> None:
        if not Path(self.config.path).is_dir():
            raise PacsError(self.name, "folder does not exist")

    def _dicom_series(self):
        return [s for s in self._scan().series if s.kind == "dicom" and s.study_uid]

    def find_studies(self, query: StudyQuery) -> list[StudyResult]:
        studies: dict[str, StudyResult] = {}
        for s in self._dicom_series():
            st = studies.setdefault(s.study_uid, StudyResult(
                study_uid=s.study_uid, patient_id=s.patient_id, patient_name=s.patient_name,
                study_date=s.study_date, description=s.study_description))
            if s.modality and s.modality not in st.modalities:
                st.modalities.append(s.modality)
            st.n_series += 1
            st.n_instances += s.n_images
        for st in studies.values():
            st.modalities.sort()
        return sorted((s for s in studies.values() if query.matches(s)), key=lambda s: (s.study_date, s.study_uid))

    def find_series(self, study_uid: str) -> list[SeriesResult]:
        return [SeriesResult(series_uid=s.series_uid or s.uid, study_uid=study_uid, modality=s.modality,
                             description=s.description, number=s.series_number, n_instances=s.n_images)
                for s in self._dicom_series() if s.study_uid == study_uid]

    def retrieve_series(self, study_uid: str, series_uid: str, progress: Optional[ProgressFn] = None,
                        cancelled: Optional[CancelledFn] = None,
                        on_first: Optional[Callable[[Path], None]] = None) -> Path:
        (progress or no_progress)(1.0, "Local folder")
        for s in self._dicom_series():
            if s.study_uid == study_uid and (s.series_uid or s.uid) == series_uid:
                files = s.files  # a property of SeriesInfo
                if on_first is not None and files:
                    on_first(Path(files[len(files) // 2]))
                return Path(files[0]).parent if files else Path(s.path)
        raise PacsError(self.name, f"no series {series_uid} in study {study_uid}")

    def store(self, files: list[Path], progress: Optional[ProgressFn] = None) -> int:
        target = Path(self.config.path) / "medview-results"
        target.mkdir(parents=True, exist_ok=True)
        for i, f in enumerate(files):
            shutil.copy2(f, target / Path(f).name)
            (progress or no_progress)((i + 1) / len(files), f"Copied {i + 1}/{len(files)}")
        self._index = None
        return len(files)
