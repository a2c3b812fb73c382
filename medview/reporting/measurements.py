"""Measurements that outlive the session: rulers, ROIs and segment volumes of one series.

A ``MeasurementRecord`` holds what the viewer drew (kind, end points as continuous voxel
positions (i, j, k) with voxel centres at integers, the plane's normal voxel axis) and the
values computed from the image (``compute_values``, the same math as the viewer). Records of a
series are kept in ``measurements.json`` in the series' workspace folder (beside the label-map
session, see ``medview.annotation.workspace``), export as CSV, go into the DICOM SR and come
back from it.
"""

from __future__ import annotations

import csv
import json
import uuid
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from medview import measure
from medview.io.volume import Volume

KINDS = ("ruler", "ellipse", "rect", "volume")
FILE_NAME = "measurements.json"
SCHEMA = "medview-measurements/1"
CSV_COLUMNS = ("series_uid", "kind", "name", "view", "slice", "length_mm", "area_mm2", "mean", "sd", "min",
               "max", "n", "volume_ml", "segment", "p0_ijk", "p1_ijk", "p0_lps_mm", "p1_lps_mm", "tracking_uid")


def _new_uid() -> str:
    return "2.25." + str(uuid.uuid4().int)  # a UUID-derived DICOM UID (PS3.5 B.2)


@dataclass
class MeasurementRecord:
    kind: str  # "ruler" | "ellipse" | "rect" | "volume" (a segment of a label map)
    p0: tuple[float, float, float] = (0.0, 0.0, 0.0)
    p1: tuple[float, float, float] = (0.0, 0.0, 0.0)
    normal_axis: int = 2  # voxel axis through the plane the ROI lies in (0=i, 1=j, 2=k)
    view: str = "axial"
    values: dict[str, float] = field(default_factory=dict)
    name: str = ""
    segment: int | None = None  # label value (kind "volume")
    tracking_uid: str = field(default_factory=_new_uid)

    @property
    def slice_index(self) -> int:
        return int(round(self.p0[self.normal_axis]))

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["p0"], d["p1"] = list(self.p0), list(self.p1)
        return d

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> MeasurementRecord:
        kind = str(d["kind"])
        if kind not in KINDS:
            raise ValueError(f"unknown measurement kind {kind!r}")
        return cls(kind=kind, p0=tuple(float(v) for v in d.get("p0", (0, 0, 0))),  # type: ignore[arg-type]
                   p1=tuple(float(v) for v in d.get("p1", (0, 0, 0))),  # type: ignore[arg-type]
                   normal_axis=int(d.get("normal_axis", 2)), view=str(d.get("view", "axial")),
                   values={k: float(v) for k, v in dict(d.get("values", {})).items()},
                   name=str(d.get("name", "")), segment=None if d.get("segment") is None else int(d["segment"]),
                   tracking_uid=str(d.get("tracking_uid") or _new_uid()))

    def summary(self, unit: str = "mm") -> str:
        v = self.values
        if self.kind == "ruler":
            return f"length {v.get('length_mm', float('nan')):.1f} {unit}"
        if self.kind == "volume":
            return f"volume {v.get('volume_ml', float('nan')):.2f} mL"
        return (f"area {v.get('area_mm2', float('nan')):.1f} {unit}2, mean {v.get('mean', float('nan')):.1f}, "
                f"SD {v.get('sd', float('nan')):.1f}")


def plane_axes(normal_axis: int) -> tuple[int, int]:
    """(rows, cols) voxel axes of a plane: the two axes other than the normal, larger first
    (array order [k, j, i] taken along the normal keeps them in that order)."""
    rest = [a for a in (2, 1, 0) if a != normal_axis]
    return rest[0], rest[1]


def roi_plane(volume: Volume, normal_axis: int, index: int) -> np.ndarray:
    return np.take(volume.array, int(index), axis=2 - int(normal_axis))


def compute_values(volume: Volume, kind: str, p0, p1, normal_axis: int = 2) -> dict[str, float]:
    """length_mm of a ruler; area_mm2, mean, sd, min, max, n of an ellipse/rectangle ROI."""
    if kind == "ruler":
        return {"length_mm": measure.distance_mm(p0, p1, volume.spacing)}
    rows_axis, cols_axis = plane_axes(normal_axis)
    plane = roi_plane(volume, normal_axis, int(round(p0[normal_axis])))
    r0, c0 = p0[rows_axis] + 0.5, p0[cols_axis] + 0.5
    r1, c1 = p1[rows_axis] + 0.5, p1[cols_axis] + 0.5
    make = measure.ellipse_mask if kind == "ellipse" else measure.rect_mask
    mask = make(plane.shape[:2], r0, c0, r1, c1)
    stats = measure.roi_stats(plane, mask, volume.spacing[rows_axis] * volume.spacing[cols_axis])
    return {k: float(v) for k, v in stats.items()}


def make_record(volume: Volume, kind: str, p0, p1, normal_axis: int = 2, view: str = "axial",
                name: str = "") -> MeasurementRecord:
    p0 = tuple(float(v) for v in p0)
    p1 = tuple(float(v) for v in p1)
    return MeasurementRecord(kind, p0, p1, int(normal_axis), view, compute_values(volume, kind, p0, p1, normal_axis),
                             name=name)


def segment_volume_records(labelmap) -> list[MeasurementRecord]:
    """One "volume" record per label present in a LabelMap (mL on its grid)."""
    counts = labelmap.counts()
    out = []
    for value in sorted(counts):
        lab = labelmap.labels.get(value)
        out.append(MeasurementRecord("volume", values={
            "volume_ml": counts[value] * labelmap.volume.voxel_volume_mm3 / 1000.0, "n": float(counts[value])},
            name=lab.name if lab is not None else f"label {value}", segment=int(value)))
    return out


# ---- persistence ----------------------------------------------------------------------------------
def measurements_file(reference: dict[str, Any], base: Path | None = None) -> Path:
    """measurements.json in the workspace folder of the series ``reference`` names."""
    from medview.annotation.workspace import workspace_key, workspaces_dir

    return (base or workspaces_dir()) / workspace_key(reference) / FILE_NAME


def save_measurements(records: list[MeasurementRecord], path: str | Path,
                      reference: dict[str, Any] | None = None) -> Path:
    """Write the records atomically (temporary file + fsync + rename)."""
    from medview.annotation.journal import atomic_write_json

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    ref = {k: v for k, v in (reference or {}).items() if k != "source_files" and isinstance(v, (str, int, float))}
    atomic_write_json(path, {"schema": SCHEMA, "reference": ref, "measurements": [r.to_dict() for r in records]})
    return path


def load_measurements(path: str | Path) -> list[MeasurementRecord]:
    """Records of a measurements.json, a workspace folder holding one, or [] when there is none."""
    path = Path(path)
    if path.is_dir():
        path = path / FILE_NAME
    if not path.is_file():
        return []
    data = json.loads(path.read_text(encoding="utf-8"))
    return [MeasurementRecord.from_dict(d) for d in data.get("measurements", [])]


def write_csv(records: list[MeasurementRecord], path: str | Path, volume: Volume | None = None) -> Path:
    """One row per measurement; world positions (LPS mm) when the image is given."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    series = str((volume.meta.get("SeriesInstanceUID") if volume is not None else "") or "")
    with path.open("w", newline="", encoding="utf-8") as f:
        w = csv.DictWriter(f, fieldnames=CSV_COLUMNS)
        w.writeheader()
        for r in records:
            row: dict[str, Any] = {"series_uid": series, "kind": r.kind, "name": r.name, "view": r.view,
                                   "tracking_uid": r.tracking_uid,
                                   "segment": "" if r.segment is None else r.segment}
            if r.kind != "volume":
                row["slice"] = r.slice_index
                row["p0_ijk"] = " ".join(f"{v:.3f}" for v in r.p0)
                row["p1_ijk"] = " ".join(f"{v:.3f}" for v in r.p1)
                if volume is not None:
                    row["p0_lps_mm"] = " ".join(f"{v:.3f}" for v in volume.index_to_world(r.p0))
                    row["p1_lps_mm"] = " ".join(f"{v:.3f}" for v in volume.index_to_world(r.p1))
            for k in ("length_mm", "area_mm2", "mean", "sd", "min", "max", "n", "volume_ml"):
                if k in r.values:
                    row[k] = f"{r.values[k]:.9g}"
            w.writerow(row)
    return path
