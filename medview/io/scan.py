"""Folder scan: find DICOM by content, read headers only, group into series.

A scan never fails on a bad file: unreadable and non-DICOM files are listed in
``StudyIndex.problems`` with the reason. Volume files (NIfTI, NRRD, MHA) and plain images
(PNG/JPEG/TIFF) show up as one-entry series of their own kind so the browser can list them.
"""

from __future__ import annotations

import io
import os
from pathlib import Path
from typing import Any, Callable, Iterable, Optional

import numpy as np

from medview.io.dicom_header import HEAD_BYTES as _HEAD_BYTES
from medview.io.dicom_header import HEADER_TAGS, header_values  # noqa: F401  (HEADER_TAGS: part of the API)
from medview.io.dicom_header import fast_header as _fast_header
from medview.io.dicom_header import first_value as _first
from medview.io.dicom_header import header_tags as _header_tags
from medview.io.dicom_header import meta_text as _meta_text
from medview.io.dicom_header import to_float as _float
from medview.io.dicom_header import to_int as _int
from medview.io.study_index import ImageRef, SeriesInfo, StudyIndex
from medview.progress import CancelledFn, ProgressFn, check_cancelled, no_progress

VOLUME_SUFFIXES = {".nii": "nifti", ".nii.gz": "nifti", ".nrrd": "nrrd", ".nhdr": "nrrd",
                   ".mha": "mha", ".mhd": "mha"}
_VOLUME_ENDINGS = tuple(VOLUME_SUFFIXES)
IMAGE_SUFFIXES = {".png", ".jpg", ".jpeg", ".tif", ".tiff", ".bmp", ".gif"}
# files that are never images; skipped silently rather than listed as problems
_IGNORED_SUFFIXES = {".json", ".txt", ".md", ".csv", ".bval", ".bvec", ".xml", ".py", ".zip", ".raw",
                     ".zraw", ".html", ".pdf", ".log"}
_NATIVE_SYNTAXES = {"1.2.840.10008.1.2", "1.2.840.10008.1.2.1", "1.2.840.10008.1.2.2"}
_ENHANCED_MARKER = "PerFrameFunctionalGroupsSequence"
_DICOMDIR_CLASS = "1.2.840.10008.1.3.10"
_PIXEL_TAGS = (b"\xe0\x7f\x10\x00", b"\x7f\xe0\x00\x10",  # PixelData, little / big endian
               b"\xe0\x7f\x08\x00", b"\xe0\x7f\x09\x00")  # FloatPixelData, DoubleFloatPixelData


def file_kind(path: str | Path) -> Optional[str]:
    """'nifti' | 'nrrd' | 'mha' | 'image' from the name, or None (maybe DICOM: look at content)."""
    name = str(path).lower()
    if name.endswith(_VOLUME_ENDINGS):
        for suffix, kind in VOLUME_SUFFIXES.items():
            if name.endswith(suffix):
                return kind
    if os.path.splitext(name)[1] in IMAGE_SUFFIXES:
        return "image"
    return None


def looks_like_dicom(path: str | Path) -> bool:
    """DICOM by content: the 'DICM' magic after the 128-byte preamble, or a raw data set that
    starts with a group 0002/0008 tag (old files without a preamble)."""
    try:
        with open(path, "rb") as f:
            head = f.read(132)
    except OSError:
        return False
    return dicom_head(head)


def dicom_head(head: bytes) -> bool:
    """``looks_like_dicom`` on the first 132 bytes of a file."""
    if len(head) >= 132 and head[128:132] == b"DICM":
        return True
    if len(head) < 8:
        return False
    little = head[:2] in (b"\x02\x00", b"\x08\x00") and head[3:4] == b"\x00"
    big = head[:2] in (b"\x00\x02", b"\x00\x08") and head[2:3] == b"\x00"
    return little or big


def _walk(paths: Iterable[str | Path]) -> list[str]:
    out: list[str] = []
    for p in paths:
        p = str(p)
        if os.path.isdir(p):
            for root, dirs, files in os.walk(p):
                dirs[:] = sorted(d for d in dirs if not d.startswith("."))
                out.extend(os.path.join(root, f) for f in sorted(files) if not f.startswith("."))
        else:
            out.append(p)
    return out


PreviewFn = Callable[[np.ndarray, Optional[tuple]], None]


def scan(paths: str | Path | Iterable[str | Path], progress: Optional[ProgressFn] = None,
         cancelled: Optional[CancelledFn] = None, on_preview: Optional[PreviewFn] = None) -> StudyIndex:
    """Scan a folder, a DICOMDIR, a file, or a list of those, reading headers only.

    ``on_preview(image, pixel_spacing)``: called once, before the other headers are read, with
    the decoded middle DICOM file (by name) of what was found, so a viewer can show a slice of
    a large series while its scan goes on. Its header is not read twice."""
    import pydicom

    progress = progress or no_progress
    if isinstance(paths, (str, Path)):
        paths = [paths]
    index = StudyIndex()
    files: list[str] = []
    for p in paths:
        if not os.path.exists(p):
            index.problems.append((str(p), "does not exist"))
            continue
        files.extend(_walk([p]))
    files = _expand_dicomdirs(files, index)
    if not files and not index.problems:
        index.problems.append((", ".join(str(p) for p in paths), "no files found (empty folder)"))

    refs: list[tuple[ImageRef, dict]] = []
    n = len(files)
    early: dict[str, Any] = _preview(files, on_preview, pydicom) if on_preview is not None else {}
    for i, path in enumerate(files):
        if i % 64 == 0:
            check_cancelled(cancelled)
            progress(i / max(n, 1), f"Scanning {i}/{n} files")
        kind = file_kind(path)
        if kind is not None:
            if os.path.getsize(path) == 0:
                index.problems.append((path, "empty file (0 bytes)"))
                continue
            index.series.append(SeriesInfo(uid=f"file:{path}", kind=kind, path=path,
                                           description=Path(path).name, n_images=1))
            continue
        if os.path.splitext(path)[1].lower() in _IGNORED_SUFFIXES:
            continue
        try:
            read = early.pop(path) if path in early else read_header(path, pydicom)
        except OSError as exc:
            index.problems.append((path, f"cannot read: {exc.strerror}"))
            continue
        except Exception as exc:  # noqa: BLE001 - any parse failure is reported, never fatal
            index.problems.append((path, f"unreadable DICOM header: {exc}"))
            continue
        if isinstance(read, str):
            index.problems.append((path, read))
            continue
        refs.extend(read)
    progress(1.0, f"Scanned {n} files")
    index.series.extend(group_series(refs))
    index.series.sort(key=_series_sort_key)
    return index


def _preview(files: list[str], on_preview: PreviewFn, pydicom) -> dict[str, Any]:
    """Read and show the middle candidate DICOM file first; returns {path: its read_header result}."""
    candidates = [f for f in files if file_kind(f) is None and Path(f).suffix.lower() not in _IGNORED_SUFFIXES]
    if not candidates:
        return {}
    path = candidates[len(candidates) // 2]
    try:
        read = read_header(path, pydicom)
    except Exception:  # noqa: BLE001 - the main loop reads it again and reports the problem
        return {}
    if isinstance(read, list) and read:
        ref = read[len(read) // 2][0]  # the middle frame of a multi-frame file
        try:
            from medview.io.dicom_series import read_frame

            on_preview(read_frame(ref), ref.pixel_spacing)
        except Exception:  # noqa: BLE001 - a preview is a courtesy: the load reports real errors
            pass
    return {path: read}


def _series_sort_key(s: SeriesInfo):
    return (s.patient_name, s.patient_id, s.study_date, s.study_uid,
            s.series_number if s.series_number is not None else 1 << 30, s.description, s.uid)


def _expand_dicomdirs(files: list[str], index: StudyIndex) -> list[str]:
    """Replace a DICOMDIR by the files its records reference (and drop duplicates)."""
    out: list[str] = []
    for path in files:
        if Path(path).name.upper() != "DICOMDIR":
            out.append(path)
            continue
        try:
            import pydicom

            dicomdir = pydicom.dcmread(path)
            base = Path(path).parent
            for record in dicomdir.DirectoryRecordSequence:
                ref = record.get("ReferencedFileID")
                if ref is None:
                    continue
                parts = [ref] if isinstance(ref, str) else list(ref)
                out.append(str(base.joinpath(*parts)))
        except Exception as exc:  # noqa: BLE001
            index.problems.append((path, f"unreadable DICOMDIR: {exc}"))
    seen: dict[str, None] = {}
    for p in out:
        seen.setdefault(os.path.normpath(p), None)
    return list(seen)


def read_header(path: str, pydicom_module=None) -> list[tuple[ImageRef, dict]] | str:
    """Header of one DICOM file -> one (ImageRef, series facts) per frame; or a reason string
    when the file is not DICOM or holds no image we can show. One open per file: the magic,
    the elements of ``HEADER_TAGS`` (pydicom seeks past the rest) and the tag where the
    pixel data starts are all read through it."""
    pydicom = pydicom_module
    if pydicom is None:
        import pydicom
    ds = None
    with open(path, "rb") as f:
        head = f.read(_HEAD_BYTES)  # the header of nearly every file: parsed from memory
        if not head:
            return "empty file (0 bytes)"
        if not dicom_head(head):
            return "not a DICOM file (no DICM marker) and not a known image format"
        fast = _fast_header(head, complete=len(head) < _HEAD_BYTES)
        if fast is not None:  # the common case, decoded here (as header_values would)
            hv, meta, transfer_syntax, n_kept, pixel_offset, pixel_tag = fast
            meta_class = meta.get(0x00020002, b"").decode("ascii", "replace").strip(" \0")
        else:
            buf = io.BytesIO(head)
            ds = pydicom.dcmread(buf, stop_before_pixels=True, force=True, specific_tags=_header_tags())
            pixel_offset = buf.tell()
            pixel_tag = head[pixel_offset:pixel_offset + 4]
            if len(head) == _HEAD_BYTES and pixel_offset + 4 > len(head):  # a longer header: the same file again
                f.seek(0)
                ds = pydicom.dcmread(f, stop_before_pixels=True, force=True, specific_tags=_header_tags())
                pixel_offset = f.tell()
                pixel_tag = f.read(4)
    if ds is not None:
        hv = header_values(ds)
        file_meta = getattr(ds, "file_meta", None) or {}
        meta_class = _meta_text(file_meta, 0x00020002)
        n_kept = len(ds)
        transfer_syntax = _meta_text(file_meta, 0x00020010)
        if not transfer_syntax:
            # no meta header: pydicom guessed the encoding; record what it used
            transfer_syntax = "1.2.840.10008.1.2" if getattr(ds, "is_implicit_VR", True) else "1.2.840.10008.1.2.1"
    sop_class = str(hv.get("SOPClassUID") or "")
    if sop_class == _DICOMDIR_CLASS or meta_class == _DICOMDIR_CLASS:
        return "a DICOMDIR index, not an image (open its folder or the DICOMDIR itself)"
    if hv.get("Rows") in (None, "") or hv.get("Columns") in (None, ""):
        if n_kept == 0:
            return "not a DICOM file (no data elements could be parsed)"
        return f"DICOM without an image (SOP class {sop_class or 'unknown'}: no Rows/Columns)"
    series = {
        "series_uid": str(hv.get("SeriesInstanceUID") or ""),
        "modality": str(hv.get("Modality") or ""),
        "description": str(hv.get("SeriesDescription", "") or hv.get("ProtocolName", "") or ""),
        "series_number": _int(hv.get("SeriesNumber")),
        "patient_name": str(hv.get("PatientName", "") or ""),
        "patient_id": str(hv.get("PatientID", "") or ""),
        "study_uid": str(hv.get("StudyInstanceUID") or ""),
        "study_date": str(hv.get("StudyDate", "") or ""),
        "study_description": str(hv.get("StudyDescription", "") or ""),
        "frame_of_reference_uid": str(hv.get("FrameOfReferenceUID") or ""),
        "window_center": _float(_first(hv.get("WindowCenter"))),
        "window_width": _float(_first(hv.get("WindowWidth"))),
    }
    base = dict(
        path=path,
        sop_uid=str(hv.get("SOPInstanceUID") or ""),
        instance_number=_int(hv.get("InstanceNumber"), 0),
        rows=_int(hv.get("Rows"), 0),
        columns=_int(hv.get("Columns"), 0),
        n_frames=_int(hv.get("NumberOfFrames"), 1) or 1,
        samples_per_pixel=_int(hv.get("SamplesPerPixel"), 1),
        bits_allocated=_int(hv.get("BitsAllocated"), 16),
        bits_stored=_int(hv.get("BitsStored"), 16),
        pixel_representation=_int(hv.get("PixelRepresentation"), 0),
        photometric=str(hv.get("PhotometricInterpretation") or "MONOCHROME2"),
        transfer_syntax=transfer_syntax,
        acquisition_number=_int(hv.get("AcquisitionNumber")),
        temporal_position=_int(hv.get("TemporalPositionIdentifier")),
        echo_number=_int(_first(hv.get("EchoNumbers"))),
        slice_thickness=_float(hv.get("SliceThickness")),
        spacing_between_slices=_float(hv.get("SpacingBetweenSlices")),
    )
    if pixel_tag not in _PIXEL_TAGS:
        return "DICOM header without pixel data"
    # where the Pixel Data element starts: the loader reads native slices straight from it and
    # decodes compressed ones from the bytes of one read (no second parse of the header)
    base["pixel_offset"] = pixel_offset if pixel_tag == _PIXEL_TAGS[0] or pixel_tag == _PIXEL_TAGS[1] else None

    if hv.get(_ENHANCED_MARKER) is not None and base["n_frames"] >= 1:
        return [(ref, series) for ref in _enhanced_frames(ds, base)]

    position = hv.get("ImagePositionPatient")
    orientation = hv.get("ImageOrientationPatient")
    spacing = hv.get("PixelSpacing") or hv.get("ImagerPixelSpacing")
    ref = ImageRef(
        **base,
        position=tuple(float(v) for v in position) if position is not None and len(position) == 3 else None,
        orientation=tuple(float(v) for v in orientation) if orientation is not None and len(orientation) == 6
        else None,
        pixel_spacing=(float(spacing[0]), float(spacing[1])) if spacing is not None and len(spacing) == 2 else None,
        slope=_float(hv.get("RescaleSlope"), 1.0) or 1.0,
        intercept=_float(hv.get("RescaleIntercept"), 0.0),
    )
    if ref.n_frames > 1:  # classic multi-frame (US cine, NM, Hitachi...): frames share one header
        return [(ImageRef(**{**ref.__dict__, "frame": f}), series) for f in range(ref.n_frames)]
    return [(ref, series)]


def _enhanced_frames(ds, base: dict) -> list[ImageRef]:
    """One ImageRef per frame of an enhanced multi-frame object (per-frame functional groups)."""
    shared = ds.get("SharedFunctionalGroupsSequence")
    shared = shared[0] if shared else None
    per_frame = ds.PerFrameFunctionalGroupsSequence

    def lookup(frame_item, seq_name, attr):
        for item in (frame_item, shared):
            if item is None:
                continue
            seq = item.get(seq_name)
            if seq:
                v = seq[0].get(attr)
                if v is not None:
                    return v
        return None

    refs = []
    for f, item in enumerate(per_frame):
        pos = lookup(item, "PlanePositionSequence", "ImagePositionPatient")
        ori = lookup(item, "PlaneOrientationSequence", "ImageOrientationPatient")
        spacing = lookup(item, "PixelMeasuresSequence", "PixelSpacing")
        thickness = lookup(item, "PixelMeasuresSequence", "SliceThickness")
        between = lookup(item, "PixelMeasuresSequence", "SpacingBetweenSlices")
        slope = lookup(item, "PixelValueTransformationSequence", "RescaleSlope")
        intercept = lookup(item, "PixelValueTransformationSequence", "RescaleIntercept")
        content = item.get("FrameContentSequence")
        content = content[0] if content else None
        stack_key: tuple = ()
        temporal = None
        if content is not None:
            stack_key = (str(content.get("StackID", "")),)
            temporal = _int(content.get("TemporalPositionIndex"))
            dims = content.get("DimensionIndexValues")
            in_stack = content.get("InStackPositionNumber")
            if dims is not None:
                dims = [int(d) for d in (dims if hasattr(dims, "__iter__") else [dims])]  # UL or MultiValue
                # every dimension except the spatial one (in-stack position) tells volumes apart
                if in_stack is not None and int(in_stack) in dims and len(dims) > 1:
                    dims_wo = list(dims)
                    dims_wo.remove(int(in_stack))
                    stack_key = stack_key + tuple(dims_wo)
        refs.append(ImageRef(
            **{**base, "frame": f, "enhanced": True, "temporal_position": temporal},
            position=tuple(float(v) for v in pos) if pos is not None else None,
            orientation=tuple(float(v) for v in ori) if ori is not None else None,
            pixel_spacing=(float(spacing[0]), float(spacing[1])) if spacing is not None else None,
            slope=_float(slope, 1.0) or 1.0,
            intercept=_float(intercept, 0.0),
            stack_key=stack_key,
        ))
        if thickness is not None and refs[-1].slice_thickness is None:
            refs[-1].slice_thickness = _float(thickness)
        if between is not None:
            refs[-1].spacing_between_slices = _float(between)
    return refs


def group_series(refs: list[tuple[ImageRef, dict]]) -> list[SeriesInfo]:
    """Group image headers into loadable series: same SeriesInstanceUID, and also the same
    size, orientation, echo and temporal position (a series mixing those cannot be one grid)."""
    groups: dict[tuple, list[tuple[ImageRef, dict]]] = {}
    for ref, facts in refs:
        ori = tuple(np.round(ref.orientation, 3)) if ref.orientation is not None else None
        key = (facts["series_uid"] or f"nouid:{Path(ref.path).parent}", ref.rows, ref.columns, ori,
               ref.echo_number if not ref.enhanced else None,
               ref.temporal_position if not ref.enhanced else None,
               ref.samples_per_pixel)
        if ref.enhanced:  # each enhanced object is its own volume (its frames carry the geometry)
            key = key + (ref.sop_uid,)
        groups.setdefault(key, []).append((ref, facts))

    by_uid: dict[str, list[tuple]] = {}
    for key in groups:
        by_uid.setdefault(key[0], []).append(key)

    out: list[SeriesInfo] = []
    for uid, keys in by_uid.items():
        for n, key in enumerate(sorted(keys, key=lambda k: tuple(str(x) for x in k))):
            members = groups[key]
            ref0, facts = members[0]
            info = SeriesInfo(uid=uid if len(keys) == 1 else f"{uid}#{n + 1}", kind="dicom", **facts)
            info.images = [r for r, _ in members]
            info.rows, info.columns = ref0.rows, ref0.columns
            info.n_images = len(info.images)
            info.path = str(Path(ref0.path).parent)
            if len(keys) > 1:
                what = _split_reason(key, keys)
                info.description = f"{info.description} [{what}]".strip()
                info.warnings.append(f"series {uid} was split into {len(keys)} parts ({what})")
            out.append(info)
    return out


def _split_reason(key: tuple, keys: list[tuple]) -> str:
    names = ("", "rows", "columns", "orientation", "echo", "temporal position", "samples", "object")
    parts = []
    for i in range(1, len(key)):
        values = {k[i] for k in keys if len(k) > i}
        if len(values) > 1:
            v = key[i]
            if names[i] == "orientation":
                parts.append("orientation " + ",".join(f"{x:g}" for x in v) if v else "no orientation")
            elif names[i] == "object":
                parts.append("multi-frame object")
            else:
                parts.append(f"{names[i]} {v}")
    return "; ".join(parts) or "part"
