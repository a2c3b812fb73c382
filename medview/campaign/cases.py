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


PACS_PREFIX = "pacs:"
NOT_IMAGES = ("SEG", "SR", "PR", "KO", "RTSTRUCT", "REG")


def discover(source: str | Path, cancelled=None) -> tuple[list[Case], list[tuple[str, str]]]:
    """(cases, problems) for a file, a series folder, a folder of studies, or a PACS source
    (``pacs:SOURCE[?filters]``, see ``discover_pacs``). ``problems`` are what could not be read
    or retrieved, ``(path, reason)``: a campaign lists them as failed cases."""
    from medview.io import scan

    if str(source).startswith(PACS_PREFIX):
        return discover_pacs(str(source), cancelled=cancelled)
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


def _query(filters: dict[str, str]):
    from medview.pacs.model import StudyQuery

    date = filters.pop("date", "")
    lo, _, hi = date.partition("-") if "-" in date else (date, "", date)
    known = {"patient_id", "patient_name", "modality", "accession", "study_uid"}
    unknown = set(filters) - known
    if unknown:
        raise NoCases(f"unknown PACS filter {', '.join(sorted(unknown))} (known: date, {', '.join(sorted(known))})")
    return StudyQuery(date_from=lo, date_to=hi, **filters)


def discover_pacs(spec: str, cancelled=None) -> tuple[list[Case], list[tuple[str, str]]]:
    """The image series of the studies a PACS source finds, retrieved into the DICOM cache
    (``medview.pacs``): ``pacs:NAME`` (a configured source, a DICOMweb URL, dicom://AET@HOST:PORT
    or a folder), optionally ``?modality=MR&date=20260101-20260630&patient_id=P*``. Series
    MedView wrote there (SEG, SR) and other non-image series are left out; a series that cannot
    be retrieved is a problem, the others go on. Retrieval runs here, one series after the other
    (the cache keeps finished series), before the cases go to the workers."""
    from urllib.parse import parse_qsl

    from medview.io import scan
    from medview.pacs.model import PacsError
    from medview.pacs.registry import open_source

    name, _, q = spec[len(PACS_PREFIX):].partition("?")
    filters = dict(parse_qsl(q))
    query = _query(dict(filters))
    try:
        src = open_source(name)
        studies = src.find_studies(query)
    except PacsError as exc:
        raise NoCases(f"{spec}: {exc}") from exc
    cases: list[Case] = []
    problems: list[tuple[str, str]] = []
    for st in studies:
        try:
            series = src.study_series(st.study_uid)
        except PacsError as exc:
            problems.append((f"{src.name} study {st.study_uid}", str(exc)))
            continue
        for se in series:
            if se.modality in NOT_IMAGES or se.is_medview_result:
                continue
            if query.modality and se.modality.upper() != query.modality.upper():
                continue
            where = f"{src.name} study {st.study_uid} series {se.series_uid}"
            try:
                folder = src.retrieve_series(st.study_uid, se.series_uid, cancelled=cancelled)
            except PacsError as exc:
                problems.append((where, str(exc)))
                continue
            found = [s for s in scan(folder).series if (s.series_uid or s.uid) == se.series_uid]
            if not found:
                problems.append((where, f"retrieved into {folder} but no readable image of it there"))
                continue
            uid_hash = hashlib.sha1(se.series_uid.encode()).hexdigest()[:8]
            label = " ".join(x for x in (st.patient_id, st.study_date, f"S{se.number}" if se.number else "",
                                         se.description) if x)
            cases.append(Case(name=safe_name(f"{st.patient_id or 'patient'}_{st.study_date or 'nodate'}_"
                                             f"S{se.number if se.number is not None else ''}_{uid_hash}"),
                              path=str(folder), series=found[0], label=label or se.series_uid))
    if not cases and not problems:
        raise NoCases(f"{spec}: no image series match")
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
