"""Several readers per case: their readings, how much they agree, and the adjudicated label.

Layout in a case folder (a campaign output folder, or any folder for one case)::

    readers/<reader>.nii.gz (+ .json sidecar)   one reader's label map (reader = settings name)
    readers/<reader>.class.json                 one reader's classification {"class": ...}
    adjudicated.nii.gz (+ .json sidecar)        the decided label map; its sidecar's
                                                "adjudication" says who decided what, per region

Agreement: Dice per label between two readers' label maps, Cohen's kappa between two readers'
classifications over the cases both read. Adjudication works on *regions*: the connected parts
of the voxels any reader labelled. Each region takes one reader's labels, or the union (a voxel
any reader labelled; where readers gave different labels the first reader in the list wins and
the conflict is counted), the intersection (kept only where every reader gave the same label)
or the majority (the value most readers gave, background included; a tie is background).
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

READERS = "readers"
ADJUDICATED = "adjudicated.nii.gz"
COMBINED = ("union", "intersection", "majority")


def _reader_file_name(reader: str) -> str:
    name = re.sub(r"[^A-Za-z0-9._@-]+", "_", reader).strip("_")
    if not name:
        raise ValueError("a reading needs a reader name (settings: reviewer_name)")
    return name


# ---------------------------------------------------------------------------------------------
# readings
# ---------------------------------------------------------------------------------------------
def save_reading(case_dir: str | Path, labelmap, reader: str | None = None) -> Path:
    """Store ``labelmap`` as ``reader``'s reading of the case (default: the settings' reader)."""
    from medview.annotation.labelmap import reviewer_name
    from medview.annotation.nifti import save_nifti

    reader = reader or reviewer_name()
    labelmap.provenance.reviewer = reader
    labelmap.provenance.touch()
    return save_nifti(labelmap, Path(case_dir) / READERS / f"{_reader_file_name(reader)}.nii.gz")


def save_classification(case_dir: str | Path, value: str, reader: str | None = None) -> Path:
    from medview.annotation.journal import atomic_write_bytes
    from medview.annotation.labelmap import now_iso, reviewer_name

    reader = reader or reviewer_name()
    path = Path(case_dir) / READERS / f"{_reader_file_name(reader)}.class.json"
    atomic_write_bytes(path, json.dumps({"reader": reader, "class": value, "time": now_iso()}, indent=2).encode())
    return path


def label_readings(case_dir: str | Path) -> dict[str, Path]:
    """reader -> label file, in reader-name order."""
    d = Path(case_dir) / READERS
    if not d.is_dir():
        return {}
    return {p.name[: -len(".nii.gz")]: p for p in sorted(d.glob("*.nii.gz"))}


def class_readings(case_dir: str | Path) -> dict[str, str]:
    d = Path(case_dir) / READERS
    out: dict[str, str] = {}
    for p in sorted(d.glob("*.class.json")) if d.is_dir() else []:
        js = json.loads(p.read_text())
        out[str(js.get("reader", p.name[: -len(".class.json")]))] = str(js["class"])
    return out


def load_readings(case_dir: str | Path, reference=None) -> dict[str, Any]:
    """reader -> LabelMap (on ``reference``'s grid when given, checked like any label import)."""
    from medview.annotation.nifti import load_nifti

    return {r: load_nifti(p, reference=reference) for r, p in label_readings(case_dir).items()}


# ---------------------------------------------------------------------------------------------
# agreement
# ---------------------------------------------------------------------------------------------
def dice_per_label(a: np.ndarray, b: np.ndarray, values: list[int] | None = None) -> dict[int, float | None]:
    """Dice of each label value between two label arrays; None where neither has the label."""
    a, b = np.asarray(a), np.asarray(b)
    if a.shape != b.shape:
        raise ValueError(f"readings on different grids: {a.shape} vs {b.shape}")
    values = values if values is not None else sorted((set(np.unique(a)) | set(np.unique(b))) - {0})
    out: dict[int, float | None] = {}
    for v in values:
        x, y = a == v, b == v
        s = int(x.sum()) + int(y.sum())
        out[int(v)] = None if s == 0 else 2.0 * int((x & y).sum()) / s
    return out


def cohen_kappa(a: list[str], b: list[str]) -> float:
    """Cohen's kappa of two readers' classes for the same cases (1 = full agreement, 0 = chance)."""
    if len(a) != len(b) or not a:
        raise ValueError("kappa needs the same, non-empty list of cases from both readers")
    cats = sorted(set(a) | set(b))
    idx = {c: i for i, c in enumerate(cats)}
    m = np.zeros((len(cats), len(cats)))
    for x, y in zip(a, b, strict=True):
        m[idx[x], idx[y]] += 1
    n = m.sum()
    observed = np.trace(m) / n
    expected = float((m.sum(0) * m.sum(1)).sum()) / (n * n)
    if expected >= 1.0:  # both readers used one and the same class throughout
        return 1.0
    return float((observed - expected) / (1.0 - expected))


def case_agreement(case_dir: str | Path) -> dict[str, Any]:
    """Pairwise Dice per label (label maps) for one case: {"A vs B": {label name: dice}}."""
    from medview.annotation.nifti import load_nifti

    maps = {r: load_nifti(p) for r, p in label_readings(case_dir).items()}
    names: dict[int, str] = {}
    for lm in maps.values():
        names.update({v: lab.name for v, lab in lm.labels.items()})
    readers = list(maps)
    pairs: dict[str, dict[str, float | None]] = {}
    for i, ra in enumerate(readers):
        for rb in readers[i + 1:]:
            d = dice_per_label(maps[ra].array, maps[rb].array)
            pairs[f"{ra} vs {rb}"] = {names.get(v, f"label {v}"): x for v, x in d.items()}
    return {"readers": readers, "dice": pairs}


def campaign_kappa(case_dirs: list[Path]) -> dict[str, dict[str, Any]]:
    """Pairwise Cohen's kappa over the cases both readers classified."""
    per_case = [class_readings(d) for d in case_dirs]
    readers = sorted({r for c in per_case for r in c})
    out: dict[str, dict[str, Any]] = {}
    for i, ra in enumerate(readers):
        for rb in readers[i + 1:]:
            both = [(c[ra], c[rb]) for c in per_case if ra in c and rb in c]
            if both:
                a, b = zip(*both, strict=True)
                out[f"{ra} vs {rb}"] = {"kappa": cohen_kappa(list(a), list(b)), "cases": len(both),
                                        "agree": sum(x == y for x, y in both)}
    return out


# ---------------------------------------------------------------------------------------------
# adjudication
# ---------------------------------------------------------------------------------------------
@dataclass
class Region:
    id: int
    voxels: int
    bbox: tuple[tuple[int, int], ...]  # (start, stop) per axis (k, j, i)
    agree: bool  # every reader gave every voxel of it the same value
    dice: float  # agreement inside it (readers' foreground, first two readers)


def regions(arrays: list[np.ndarray]) -> tuple[np.ndarray, list[Region]]:
    """Connected parts (26-/8-connected) of the voxels any reader labelled, numbered 1.. by size."""
    from scipy import ndimage

    stack = np.stack([np.asarray(a) for a in arrays])
    fg = (stack > 0).any(0)
    lab, n = ndimage.label(fg, structure=np.ones((3,) * fg.ndim))
    if n == 0:
        return lab, []
    sizes = np.bincount(lab.ravel())[1:]
    order = np.argsort(-sizes, kind="stable")
    remap = np.zeros(n + 1, np.int32)
    remap[order + 1] = np.arange(1, n + 1)
    lab = remap[lab]
    out = []
    for rid, sl in enumerate(ndimage.find_objects(lab), start=1):
        inside = lab[sl] == rid
        vals = stack[(slice(None),) + sl][:, inside]
        agree = bool((vals == vals[0]).all())
        a, b = vals[0] > 0, vals[min(1, len(vals) - 1)] > 0
        dice = 2.0 * float((a & b).sum()) / max(int(a.sum() + b.sum()), 1)
        out.append(Region(rid, int(inside.sum()), tuple((s.start, s.stop) for s in sl), agree, round(dice, 4)))
    return lab, out


def combine(values: np.ndarray, how: str) -> tuple[np.ndarray, int]:
    """(readers, n) voxel values -> (n,) decided values and the number of conflicting voxels."""
    if how == "union":
        out = np.zeros(values.shape[1], values.dtype)
        for row in values[::-1]:  # the first reader written last: it wins a conflict
            out = np.where(row > 0, row, out)
        nz = values > 0
        conflicts = int(((values != out) & nz).any(0).sum())
        return out, conflicts
    if how == "intersection":
        same = (values == values[0]).all(0)
        return np.where(same, values[0], 0).astype(values.dtype), int((~same).sum())
    if how == "majority":
        top = values.max() + 1
        counts = np.stack([(values == v).sum(0) for v in range(int(top))])
        best = counts.argmax(0)
        tie = (counts == counts.max(0)).sum(0) > 1
        return np.where(tie, 0, best).astype(values.dtype), int(tie.sum())
    raise ValueError(f"unknown combination {how!r}; expected a reader name or one of {', '.join(COMBINED)}")


def adjudicate(readings: dict[str, Any], choices: dict[int, str] | None = None, default: str = "union",
               adjudicator: str | None = None):
    """The decided LabelMap from readers' LabelMaps (same grid) and the record of the decision.

    ``choices`` maps region id (see ``regions``) to a reader name or "union" / "intersection" /
    "majority"; regions not named take ``default``. The record lists every region with its
    choice and who decided it (``adjudicator``: default the settings' reader)."""
    from medview.annotation.labelmap import LabelMap, Provenance, now_iso, reviewer_name

    if len(readings) < 2:
        raise ValueError("adjudication needs at least two readings")
    names = list(readings)
    first = readings[names[0]]
    for r in names[1:]:
        if readings[r].array.shape != first.array.shape:
            raise ValueError(f"readings of {names[0]} and {r} are on different grids")
    adjudicator = adjudicator or reviewer_name()
    choices = dict(choices or {})
    stack = np.stack([readings[r].array for r in names])
    lab, regs = regions(list(stack))
    out = np.zeros(first.array.shape, first.array.dtype)
    record = []
    for reg in regs:
        how = choices.get(reg.id, default)
        inside = lab == reg.id
        vals = stack[:, inside]
        if how in names:
            decided, conflicts = vals[names.index(how)], 0
        else:
            decided, conflicts = combine(vals, how)
        out[inside] = decided
        record.append({"region": reg.id, "voxels": reg.voxels, "bbox": [list(b) for b in reg.bbox],
                       "readers_agree": reg.agree, "dice": reg.dice, "choice": how,
                       "taken_from": how if how in names else f"{how} of {', '.join(names)}",
                       "conflicting_voxels": conflicts, "decided_by": adjudicator,
                       "explicit": reg.id in choices})
    labels = {}
    for r in names:
        for v, la in readings[r].labels.items():
            labels.setdefault(v, la)
    lm = LabelMap(first.volume.like(out), labels.values(),
                  Provenance(source="manual", reviewer=adjudicator, reviewers=[adjudicator]), first.reference)
    info = {"adjudicator": adjudicator, "time": now_iso(), "readers": names, "default": default,
            "regions": record}
    return lm, info


def save_adjudicated(case_dir: str | Path, labelmap, info: dict[str, Any]) -> Path:
    """adjudicated.nii.gz with the decision record inside its sidecar ("adjudication")."""
    from medview.annotation.journal import atomic_write_bytes
    from medview.annotation.nifti import read_sidecar, save_nifti, sidecar_path

    path = save_nifti(labelmap, Path(case_dir) / ADJUDICATED)
    side = read_sidecar(path) or {}
    side["adjudication"] = info
    atomic_write_bytes(sidecar_path(path), json.dumps(side, indent=2).encode("utf-8"))
    return path
