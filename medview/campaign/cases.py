"""The cases of a campaign: one loadable series each, with a stable name and an input hash.

A case is plain data (it travels to Dask workers by pickling): the ``SeriesInfo`` the scan
found plus a name that depends only on the case's own path below the source folder (and its
series), so a second run over the same folder (``--resume``) finds the same output folders even
when files were added elsewhere.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from pathlib import Path

from medview.io.study_index import SeriesInfo


class NoCases(Exception):
    """The source holds nothing that can be run; the message names it and the reason."""


@dataclass(frozen=True)
class Case:
    name: str  # output folder name (unique in the campaign)
    path: str  # what a person recognises: the file, or the series folder
    series: SeriesInfo
    label: str = ""  # a readable description (patient, date, series) for the log

    @property
    def files(self) -> list[str]:
        return list(self.series.files)


def safe_name(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9._-]+", "_", text).strip("_")[:100] or "case"


def _relative(path: str, root: Path) -> str:
    try:
        return str(Path(path).resolve().relative_to(root.resolve()))
    except ValueError:
        return Path(path).name


def _case_name(s: SeriesInfo, root: Path) -> str:
    rel = _relative(s.path, root) if root.is_dir() else Path(s.path).name
    if s.kind != "dicom":
        stem = rel
        for ext in (".nii.gz", ".nii", ".nrrd", ".mha", ".mhd", ".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff"):
            if stem.lower().endswith(ext):
                stem = stem[: -len(ext)]
                break
        return safe_name(stem)
    # several DICOM series can share a folder: the series number and a short UID hash tell them apart
    tag = f"S{s.series_number}" if s.series_number is not None else "S"
    uid_hash = hashlib.sha1((s.series_uid or s.uid).encode()).hexdigest()[:6]
    return safe_name(f"{rel if rel != '.' else 'series'}_{tag}_{uid_hash}")


def _label(s: SeriesInfo) -> str:
    parts = (s.patient_id, s.study_date, f"S{s.series_number}" if s.series_number else "", s.description)
    return " ".join(x for x in parts if x) or Path(s.path).name or s.uid


def discover(source: str | Path) -> tuple[list[Case], list[tuple[str, str]]]:
    """(cases, problems) for a file, a series folder or a folder of studies. ``problems`` are the
    files the scan could not read, ``(path, reason)``: a campaign lists them as failed cases."""
    from medview.io import scan

    root = Path(source)
    if not root.exists():
        raise NoCases(f"{root}: does not exist")
    index = scan(root)
    problems = [(str(p), str(why)) for p, why in index.problems]
    if not index.series:
        raise NoCases(f"{root}: {problems[0][1] if problems else 'no images found'}")
    cases: list[Case] = []
    used: set[str] = set()
    for s in index.series:
        name = _case_name(s, root)
        base, k = name, 2
        while name in used:  # only on a real clash (same stem, other extension)
            name = f"{base}_{k}"
            k += 1
        used.add(name)
        cases.append(Case(name=name, path=str(s.path), series=s, label=_label(s)))
    return cases, problems


def from_files(paths: list[str | Path]) -> list[Case]:
    """Cases for a list of image/volume files (held-out parts of a training split, tests)."""
    from medview.io.scan import file_kind

    out: list[Case] = []
    used: set[str] = set()
    for p in paths:
        p = Path(p)
        kind = file_kind(p)
        if kind is None:
            raise NoCases(f"{p}: not an image or volume file MedView reads")
        s = SeriesInfo(uid=f"file:{p}", kind=kind, path=str(p), description=p.name, n_images=1)
        name = _case_name(s, p.parent)
        base, k = name, 2
        while name in used:
            name = f"{base}_{k}"
            k += 1
        used.add(name)
        out.append(Case(name=name, path=str(p), series=s, label=p.name))
    return out


def input_hash(case: Case) -> str:
    """sha256 over the case's files (sorted by path; names and contents): a changed, added or
    removed file gives another hash, so ``--resume`` runs the case again."""
    h = hashlib.sha256()
    for f in sorted(case.files):
        h.update(Path(f).name.encode() + b"\0")
        with open(f, "rb") as fh:
            for block in iter(lambda: fh.read(1 << 20), b""):
                h.update(block)
        h.update(b"\0")
    return h.hexdigest()
