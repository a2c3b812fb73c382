"""What a scan found, without pixel data: Patient -> Study -> Series.

These types are the seam between "where studies come from" (a folder today, a PACS later) and
everything that shows or loads them. They hold plain values only, so they are cheap to keep for
thousands of files and safe to hand across threads.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Optional


@dataclass
class ImageRef:
    """One DICOM file's header facts needed to place its pixels in a Volume."""

    path: str
    frame: int = 0  # frame index inside a multi-frame file
    sop_uid: str = ""
    instance_number: int = 0
    position: Optional[tuple[float, float, float]] = None  # ImagePositionPatient (LPS mm)
    orientation: Optional[tuple[float, ...]] = None  # ImageOrientationPatient (6 cosines)
    pixel_spacing: Optional[tuple[float, float]] = None  # (row spacing = dy, column spacing = dx)
    slice_thickness: Optional[float] = None
    spacing_between_slices: Optional[float] = None
    rows: int = 0
    columns: int = 0
    n_frames: int = 1
    samples_per_pixel: int = 1
    bits_allocated: int = 16
    bits_stored: int = 16
    pixel_representation: int = 0
    photometric: str = "MONOCHROME2"
    transfer_syntax: str = ""
    pixel_offset: Optional[int] = None  # file offset of the native Pixel Data element header
    slope: float = 1.0
    intercept: float = 0.0
    acquisition_number: Optional[int] = None
    temporal_position: Optional[int] = None
    echo_number: Optional[int] = None
    enhanced: bool = False  # per-frame functional groups carry the geometry
    stack_key: tuple = ()  # multi-frame: (stack, temporal, other dimension indices) of this frame


@dataclass
class SeriesInfo:
    """One loadable series (or one non-DICOM volume/image file)."""

    uid: str  # unique key in this index (a split series gets a suffix)
    kind: str = "dicom"  # dicom | nifti | nrrd | mha | image
    series_uid: str = ""
    modality: str = ""
    description: str = ""
    series_number: Optional[int] = None
    patient_name: str = ""
    patient_id: str = ""
    study_uid: str = ""
    study_date: str = ""
    study_description: str = ""
    frame_of_reference_uid: str = ""
    rows: int = 0
    columns: int = 0
    n_images: int = 0  # slices (or frames of a multi-frame file)
    images: list[ImageRef] = field(default_factory=list)
    path: str = ""  # the file itself for non-DICOM kinds; the folder of the first file for DICOM
    window_center: Optional[float] = None
    window_width: Optional[float] = None
    warnings: list[str] = field(default_factory=list)

    @property
    def files(self) -> list[str]:
        if self.kind != "dicom":
            return [self.path]
        seen: dict[str, None] = {}
        for ref in self.images:
            seen.setdefault(ref.path, None)
        return list(seen)

    @property
    def pixel_spacing(self) -> Optional[tuple[float, float]]:
        return self.images[0].pixel_spacing if self.images else None


@dataclass
class StudyIndex:
    series: list[SeriesInfo] = field(default_factory=list)
    problems: list[tuple[str, str]] = field(default_factory=list)  # (path, reason)

    def studies(self) -> list[tuple[str, list[SeriesInfo]]]:
        by_study: dict[str, list[SeriesInfo]] = {}
        for s in self.series:
            by_study.setdefault(s.study_uid or f"file:{s.path}", []).append(s)
        return list(by_study.items())

    def patients(self) -> list[tuple[str, list[tuple[str, list[SeriesInfo]]]]]:
        """[(patient label, [(study_uid, [series...]), ...]), ...]"""
        out: dict[str, list[tuple[str, list[SeriesInfo]]]] = {}
        for study_uid, series in self.studies():
            first = series[0]
            who = first.patient_name or first.patient_id or "(no patient)"
            if first.patient_id and first.patient_name:
                who = f"{first.patient_name} [{first.patient_id}]"
            out.setdefault(who, []).append((study_uid, series))
        return list(out.items())

    def find(self, uid: str) -> SeriesInfo:
        for s in self.series:
            if s.uid == uid:
                return s
        raise KeyError(uid)

    def largest(self) -> SeriesInfo:
        if not self.series:
            raise ValueError("no series")
        return max(self.series, key=lambda s: (s.n_images * max(1, s.rows * s.columns)))

    @property
    def root(self) -> str:
        return str(Path(self.series[0].path).parent) if self.series else ""
