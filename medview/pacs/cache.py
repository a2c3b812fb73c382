"""On-disk cache of retrieved series, with a size cap (least recently used series go first).

Layout: ``ROOT/<StudyInstanceUID>/<SeriesInstanceUID>/<SOPInstanceUID>.dcm`` (plus ``study.json``,
the worklist row and series list, so a study opened once is listed and reopened offline); a series folder
is complete when it holds ``.complete`` (written after the last instance arrived), so a
cancelled retrieve is resumed, never mistaken for the whole series. Opening a complete series
touches the marker: its mtime is the LRU clock.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import threading
from dataclasses import asdict
from pathlib import Path
from typing import Optional

DEFAULT_CAP_BYTES = 5 * 1024**3
_SAFE = re.compile(r"[^0-9A-Za-z.\-_]")
COMPLETE = ".complete"
STUDY_RECORD = "study.json"  # the study's worklist row and series list (no pixel data)


def _safe(uid: str) -> str:
    return _SAFE.sub("_", uid)[:128] or "_"


class DicomCache:
    def __init__(self, root: str | Path, cap_bytes: int = DEFAULT_CAP_BYTES):
        self.root = Path(root)
        self.cap_bytes = int(cap_bytes)
        self.root.mkdir(parents=True, exist_ok=True)

    @classmethod
    def default(cls) -> "DicomCache":
        from medview.config import user_data_dir

        cap = int(float(os.environ.get("MEDVIEW_PACS_CACHE_GB", "5")) * 1024**3)
        return cls(user_data_dir() / "pacs-cache", cap)

    def study_dir(self, study_uid: str) -> Path:
        return self.root / _safe(study_uid)

    def series_dir(self, study_uid: str, series_uid: str) -> Path:
        return self.root / _safe(study_uid) / _safe(series_uid)

    def instance_path(self, study_uid: str, series_uid: str, sop_uid: str) -> Path:
        return self.series_dir(study_uid, series_uid) / f"{_safe(sop_uid)}.dcm"

    def has(self, study_uid: str, series_uid: str, sop_uid: str) -> bool:
        return self.instance_path(study_uid, series_uid, sop_uid).exists()

    def write(self, study_uid: str, series_uid: str, sop_uid: str, data: bytes | None = None,
              dataset=None) -> Path:
        """Store one instance atomically (raw Part-10 bytes or a pydicom dataset)."""
        path = self.instance_path(study_uid, series_uid, sop_uid)
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(f".{threading.get_ident()}.part")  # two retrieving threads never share one
        if data is not None:
            tmp.write_bytes(data)
        else:
            dataset.save_as(tmp, enforce_file_format=True)
        os.replace(tmp, path)
        return path

    def is_complete(self, study_uid: str, series_uid: str) -> bool:
        return (self.series_dir(study_uid, series_uid) / COMPLETE).exists()

    def mark_complete(self, study_uid: str, series_uid: str, n_instances: int) -> Path:
        folder = self.series_dir(study_uid, series_uid)
        folder.mkdir(parents=True, exist_ok=True)
        (folder / COMPLETE).write_text(str(n_instances))
        self.evict(keep=folder)
        return folder

    def touch(self, study_uid: str, series_uid: str) -> None:
        marker = self.series_dir(study_uid, series_uid) / COMPLETE
        if marker.exists():
            os.utime(marker, None)

    def invalidate(self, study_uid: str, series_uid: Optional[str] = None) -> None:
        """Forget a series (or a whole study) so the next open asks the server again."""
        target = self.series_dir(study_uid, series_uid) if series_uid else self.root / _safe(study_uid)
        shutil.rmtree(target, ignore_errors=True)

    # -- what a study held, for opening it offline --------------------------------------------
    def save_series_list(self, study_uid: str, series) -> None:
        """Remember a study's series (SeriesResult list) beside their folders."""
        self._write_record(study_uid, "series", [asdict(s) for s in series])

    def remember_study(self, study) -> None:
        """Remember a StudyResult (the worklist row) so the study can be listed offline."""
        self._write_record(study.study_uid, "study", asdict(study))

    def cached_series(self, study_uid: str) -> list:
        """The remembered series of a study that are complete here (SeriesResult list)."""
        from medview.pacs.model import SeriesResult

        rows = self._read_record(study_uid).get("series") or []
        return [SeriesResult(**r) for r in rows if self.is_complete(study_uid, r["series_uid"])]

    def cached_studies(self) -> list:
        """StudyResults remembered for studies that still have a complete series here."""
        from medview.pacs.model import StudyResult

        out = []
        for folder in sorted(self.root.iterdir()) if self.root.exists() else []:
            record = self._read_record_at(folder / STUDY_RECORD)
            if record.get("study") and any((d / COMPLETE).exists() for d in folder.iterdir() if d.is_dir()):
                out.append(StudyResult(**record["study"]))
        return sorted(out, key=lambda s: (s.study_date, s.study_uid))

    def _write_record(self, study_uid: str, key: str, value) -> None:
        path = self.root / _safe(study_uid) / STUDY_RECORD
        record = self._read_record_at(path)
        record[key] = value
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(".part")
        tmp.write_text(json.dumps(record))
        os.replace(tmp, path)

    def _read_record(self, study_uid: str) -> dict:
        return self._read_record_at(self.root / _safe(study_uid) / STUDY_RECORD)

    @staticmethod
    def _read_record_at(path: Path) -> dict:
        try:
            return json.loads(path.read_text())
        except (OSError, ValueError):
            return {}

    def instance_uids(self, study_uid: str, series_uid: str) -> list[str]:
        """SOP Instance UIDs already here (file names are the UIDs: UIDs need no escaping)."""
        return [p.stem for p in self.instances(study_uid, series_uid)]

    def instances(self, study_uid: str, series_uid: str) -> list[Path]:
        folder = self.series_dir(study_uid, series_uid)
        return sorted(folder.glob("*.dcm")) if folder.exists() else []

    def _series_folders(self) -> list[tuple[float, int, Path]]:
        out = []
        for study in self.root.iterdir() if self.root.exists() else []:
            if not study.is_dir():
                continue
            for series in study.iterdir():
                if not series.is_dir():
                    continue
                size = sum(f.stat().st_size for f in series.iterdir() if f.is_file())
                marker = series / COMPLETE
                stamp = marker.stat().st_mtime if marker.exists() else series.stat().st_mtime
                out.append((stamp, size, series))
        return out

    def size_bytes(self) -> int:
        return sum(size for _, size, _ in self._series_folders())

    def evict(self, keep: Optional[Path] = None) -> list[Path]:
        """Remove least recently used series until the cache fits its cap."""
        folders = sorted(self._series_folders())
        total = sum(size for _, size, _ in folders)
        removed = []
        for _, size, folder in folders:
            if total <= self.cap_bytes:
                break
            if keep is not None and folder == keep:
                continue
            shutil.rmtree(folder, ignore_errors=True)
            total -= size
            removed.append(folder)
            if not any(d.is_dir() for d in folder.parent.iterdir()):  # the study's last series went
                shutil.rmtree(folder.parent, ignore_errors=True)
        return removed
