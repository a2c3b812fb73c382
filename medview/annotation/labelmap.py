"""LabelMap: an integer label volume on an image's grid, its label table and its provenance.

No Qt here. The array is a ``Volume`` made with ``image.like`` so it can never drift from the
image it annotates. Edit operations (``medview.annotation.ops``) change ``labelmap.array`` in
place and return a ``Change`` (bounding box + old/new values) that ``EditHistory`` keeps.
"""

from __future__ import annotations

import colorsys
import datetime as _dt
import getpass
import os
from collections.abc import Iterable
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np

from medview.io.volume import Volume

# image metadata copied into a label map's reference (enough to find the series again)
_REFERENCE_KEYS = (
    "Modality",
    "SeriesInstanceUID",
    "StudyInstanceUID",
    "FrameOfReferenceUID",
    "PatientID",
    "PatientName",
    "StudyDate",
    "SeriesDescription",
    "source_path",
    "source_files",
)


def now_iso() -> str:
    return _dt.datetime.now(_dt.UTC).isoformat(timespec="seconds")


REVIEWER_SETTING = "reviewer_name"  # key in the user's settings.json (medview.app_logging)


def reviewer_name() -> str:
    """The reviewer recorded in provenance: $MEDVIEW_REVIEWER, else ``reviewer_name`` in the
    user's settings.json, else the login name."""
    env = os.environ.get("MEDVIEW_REVIEWER")
    if env:
        return env
    try:
        from medview.app_logging import load_settings

        data = load_settings()
    except ImportError:
        data = {}
    value = data.get(REVIEWER_SETTING)
    if isinstance(value, str) and value.strip():
        return value.strip()
    try:
        return getpass.getuser()
    except Exception:  # noqa: BLE001 - getuser raises various errors when no login is known
        return "unknown"


def default_color(value: int) -> tuple[int, int, int]:
    """A distinct, saturated colour for label ``value`` (golden-ratio hue steps)."""
    palette = [(255, 64, 64), (64, 200, 64), (64, 128, 255), (255, 200, 0), (200, 64, 255), (0, 220, 220)]
    if 1 <= value <= len(palette):
        return palette[value - 1]
    h = (value * 0.618033988749895) % 1.0
    r, g, b = colorsys.hsv_to_rgb(h, 0.8, 1.0)
    return (int(r * 255), int(g * 255), int(b * 255))


def _colour_distance(a, b) -> float:
    """'Redmean' RGB distance: a cheap approximation of perceived difference."""
    rm = (a[0] + b[0]) / 2.0
    dr, dg, db = a[0] - b[0], a[1] - b[1], a[2] - b[2]
    return float(((2 + rm / 256) * dr * dr + 4 * dg * dg + (2 + (255 - rm) / 256) * db * db) ** 0.5)


def distinct_color(value: int, existing: list[tuple[int, int, int]],
                   min_distance: float = 150.0) -> tuple[int, int, int]:
    """The default colour of a new label: ``default_color(value)`` unless it is close to a colour
    already in use (e.g. a model's label colours), else the candidate farthest from all of them."""
    first = default_color(value)
    if not existing:
        return first
    candidates = [first] + [default_color(v) for v in range(1, 49) if v != value]

    def gap(c):
        return min(_colour_distance(c, e) for e in existing)

    for c in candidates:
        if gap(c) >= min_distance:
            return c
    return max(candidates, key=gap)


@dataclass
class Label:
    value: int
    name: str
    color: tuple[int, int, int]
    visible: bool = True
    locked: bool = False
    # optional coded concepts for DICOM SEG: {"scheme": "SCT", "value": "...", "meaning": "..."}
    code: dict[str, str] | None = None
    category: dict[str, str] | None = None

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["color"] = list(self.color)
        return d

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Label:
        return cls(
            value=int(d["value"]),
            name=str(d.get("name", f"label {d['value']}")),
            color=tuple(int(c) for c in d.get("color", default_color(int(d["value"]))))[:3],  # type: ignore[arg-type]
            visible=bool(d.get("visible", True)),
            locked=bool(d.get("locked", False)),
            code=d.get("code"),
            category=d.get("category"),
        )


@dataclass
class Provenance:
    """Where a label map came from and who changed it."""

    source: str = "manual"  # "manual" | "model" | "import"
    model_id: str | None = None
    model_version: str | None = None
    model_sha256: str | None = None
    imported_from: str | None = None
    reviewer: str = field(default_factory=reviewer_name)
    created: str = field(default_factory=now_iso)
    modified: str = field(default_factory=now_iso)
    # edit statistics, updated by EditHistory
    strokes: int = 0
    undos: int = 0
    redos: int = 0
    voxels_painted: int = 0  # voxels whose value changed to non-zero by an edit
    voxels_erased: int = 0  # voxels whose value changed to zero by an edit
    reviewers: list[str] = field(default_factory=list)  # everyone who edited, in order
    # AI-assisted strokes (interactive segmentation) per "model-id version"
    ai_assisted: dict[str, int] = field(default_factory=dict)

    def touch(self) -> None:
        self.modified = now_iso()
        if self.reviewer and self.reviewer not in self.reviewers:
            self.reviewers.append(self.reviewer)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Provenance:
        known = {f for f in cls.__dataclass_fields__}  # type: ignore[attr-defined]
        return cls(**{k: v for k, v in d.items() if k in known})


def _label_dtype(max_value: int) -> np.dtype:
    if max_value <= 255:
        return np.dtype(np.uint8)
    if max_value <= 65535:
        return np.dtype(np.uint16)
    raise ValueError(f"label value {max_value} is too large (at most 65535 labels)")


class LabelMap:
    """An integer label volume on an image grid + label table + provenance.

    ``volume`` is a ``Volume`` (geometry shared with the image); ``array`` is its [k, j, i]
    integer array, edited in place by the operations in ``medview.annotation.ops``.
    """

    def __init__(
        self,
        volume: Volume,
        labels: Iterable[Label] = (),
        provenance: Provenance | None = None,
        reference: dict[str, Any] | None = None,
    ) -> None:
        if volume.is_rgb:
            raise ValueError("a label map must be a scalar volume")
        arr = volume.array
        if arr.dtype not in (np.uint8, np.uint16):
            mx = int(arr.max()) if arr.size else 0
            if arr.size and int(arr.min()) < 0:
                raise ValueError("label values must be >= 0")
            arr = arr.astype(_label_dtype(mx))
        self.volume = Volume(arr, volume.spacing, volume.origin, volume.direction, dict(volume.meta))
        self.labels: dict[int, Label] = {}
        for lab in labels:
            self.labels[int(lab.value)] = lab
        self.provenance = provenance or Provenance()
        self.reference: dict[str, Any] = dict(reference or {})
        # listeners for label-table changes: fn(kind: str, label: Label | None)
        self.table_listeners: list = []

    # ---- construction --------------------------------------------------------------------
    @classmethod
    def empty(cls, image: Volume, labels: Iterable[Label] | None = None, **prov: Any) -> LabelMap:
        labels = list(labels) if labels is not None else [Label(1, "label 1", default_color(1))]
        mx = max([lab.value for lab in labels], default=1)
        arr = np.zeros(image.shape, dtype=_label_dtype(mx))
        return cls(image.like(arr), labels, Provenance(**prov), reference_from_image(image))

    @classmethod
    def from_array(
        cls, image: Volume, array: np.ndarray, labels: Iterable[Label] | None = None, **prov: Any
    ) -> LabelMap:
        """A label map holding a copy of ``array`` (e.g. an AI segmentation) on ``image``'s grid."""
        array = np.asarray(array)
        if array.ndim == 2:
            array = array[np.newaxis]
        mx = int(array.max()) if array.size else 0
        data = np.array(array, dtype=_label_dtype(max(mx, 1)), order="C", copy=True)
        lm = cls(image.like(data), (), Provenance(**prov), reference_from_image(image))
        for lab in labels or ():
            lm.labels[int(lab.value)] = lab
        for v in lm.present_values():
            if v not in lm.labels:
                lm.labels[v] = Label(v, f"label {v}", default_color(v))
        return lm

    # ---- data ----------------------------------------------------------------------------
    @property
    def array(self) -> np.ndarray:
        return self.volume.array

    @property
    def shape(self) -> tuple[int, int, int]:
        return self.volume.shape

    @property
    def spacing(self) -> tuple[float, float, float]:
        return self.volume.spacing  # type: ignore[return-value]

    def present_values(self) -> list[int]:
        return [int(v) for v in np.unique(self.array) if v != 0]

    def counts(self) -> dict[int, int]:
        """Voxel count per non-zero label value present."""
        c = np.bincount(self.array.ravel(), minlength=1)
        return {int(v): int(n) for v, n in enumerate(c) if v and n}

    def locked_values(self) -> list[int]:
        return [v for v, lab in self.labels.items() if lab.locked]

    def writable_mask(self, region: np.ndarray) -> np.ndarray | None:
        """Boolean mask of voxels in ``region`` (values) that an edit may change (not locked).

        None means everything is writable (fast path)."""
        locked = self.locked_values()
        if not locked:
            return None
        return ~np.isin(region, locked)

    def ensure_capacity(self, value: int) -> None:
        """Widen the array dtype if ``value`` does not fit (uint8 -> uint16)."""
        if value > np.iinfo(self.array.dtype).max:
            self.volume.array = self.array.astype(_label_dtype(value))

    # ---- label table ---------------------------------------------------------------------
    def _notify(self, kind: str, label: Label | None) -> None:
        for fn in list(self.table_listeners):
            fn(kind, label)

    def next_value(self) -> int:
        return max(self.labels, default=0) + 1

    def add_label(self, name: str | None = None, color: tuple[int, int, int] | None = None,
                  value: int | None = None) -> Label:
        value = self.next_value() if value is None else int(value)
        if value <= 0:
            raise ValueError("label values start at 1 (0 is background)")
        if value in self.labels:
            raise ValueError(f"label value {value} already exists ({self.labels[value].name!r})")
        self.ensure_capacity(value)
        if not color:  # never a colour close to one already shown
            color = distinct_color(value, [tuple(lab.color) for lab in self.labels.values()])
        lab = Label(value, name or f"label {value}", tuple(color))  # type: ignore[arg-type]
        self.labels[value] = lab
        self._notify("add", lab)
        return lab

    def rename(self, value: int, name: str) -> None:
        self.labels[value].name = str(name)
        self._notify("change", self.labels[value])

    def recolor(self, value: int, color: tuple[int, int, int]) -> None:
        self.labels[value].color = tuple(int(c) for c in color)[:3]  # type: ignore[assignment]
        self._notify("change", self.labels[value])

    def set_locked(self, value: int, locked: bool) -> None:
        self.labels[value].locked = bool(locked)
        self._notify("change", self.labels[value])

    def set_visible(self, value: int, visible: bool) -> None:
        self.labels[value].visible = bool(visible)
        self._notify("change", self.labels[value])

    def remove_label(self, value: int) -> None:
        """Drop a label from the table (voxels keep their value; erase them first if wanted)."""
        lab = self.labels.pop(value)
        self._notify("remove", lab)

    def set_labels(self, labels: Iterable[Label]) -> None:
        self.labels = {int(lab.value): lab for lab in labels}
        if self.labels:
            self.ensure_capacity(max(self.labels))
        self._notify("reset", None)

    def lut(self, alpha: int = 128) -> np.ndarray:
        """An RGBA lookup table (N x 4 uint8) for drawing: hidden labels and 0 are transparent."""
        top = max(self.labels, default=0) + 1
        n = max(256 if self.array.dtype == np.uint8 else top, top, 2)
        table = np.zeros((n, 4), dtype=np.uint8)
        for v, lab in self.labels.items():
            if 0 < v < n and lab.visible:
                table[v, :3] = lab.color
                table[v, 3] = alpha
        return table

    # ---- serialisation of everything but the voxels -------------------------------------
    def header(self) -> dict[str, Any]:
        return {
            "labels": [lab.to_dict() for lab in sorted(self.labels.values(), key=lambda x: x.value)],
            "provenance": self.provenance.to_dict(),
            "reference": {k: v for k, v in self.reference.items() if k != "source_files"},
            "geometry": geometry_dict(self.volume),
        }

    def __repr__(self) -> str:
        names = [lab.name for lab in self.labels.values()]
        return f"LabelMap(shape={self.shape}, labels={names}, source={self.provenance.source!r})"


def reference_from_image(image: Volume) -> dict[str, Any]:
    ref = {k: image.meta[k] for k in _REFERENCE_KEYS if k in image.meta}
    if "source_files" in ref:
        ref["source_files"] = [str(p) for p in ref["source_files"]]
    if "source_path" in ref:
        ref["source_path"] = str(ref["source_path"])
    return ref


def geometry_dict(vol: Volume) -> dict[str, Any]:
    return {
        "shape": list(vol.shape),
        "spacing": list(vol.spacing),
        "origin": list(vol.origin),
        "direction": np.asarray(vol.direction).reshape(-1).tolist(),
    }


def volume_from_geometry(geom: dict[str, Any], array: np.ndarray | None = None, dtype: Any = np.uint8) -> Volume:
    shape = tuple(int(s) for s in geom["shape"])
    if array is None:
        array = np.zeros(shape, dtype=dtype)
    return Volume(array.reshape(shape), tuple(geom["spacing"]), tuple(geom["origin"]),
                  np.asarray(geom["direction"], dtype=np.float64).reshape(3, 3))
