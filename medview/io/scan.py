"""Folder scan: find DICOM by content, read headers only, group into series.

A scan never fails on a bad file: unreadable and non-DICOM files are listed in
``StudyIndex.problems`` with the reason. Volume files (NIfTI, NRRD, MHA) and plain images
(PNG/JPEG/TIFF) show up as one-entry series of their own kind so the browser can list them.
"""

from __future__ import annotations

import io
import os
import struct
from pathlib import Path
from typing import Any, Callable, Iterable, Optional

import numpy as np

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
# the only elements a scan keeps (pydicom seeks past the others): what read_header uses
HEADER_TAGS = [
    "SOPClassUID", "SOPInstanceUID", "SeriesInstanceUID", "StudyInstanceUID", "FrameOfReferenceUID",
    "Modality", "SeriesDescription", "ProtocolName", "SeriesNumber", "PatientName", "PatientID",
    "StudyDate", "StudyDescription", "WindowCenter", "WindowWidth", "InstanceNumber", "Rows", "Columns",
    "NumberOfFrames", "SamplesPerPixel", "BitsAllocated", "BitsStored", "PixelRepresentation",
    "PhotometricInterpretation", "AcquisitionNumber", "TemporalPositionIdentifier", "EchoNumbers",
    "SliceThickness", "SpacingBetweenSlices", "ImagePositionPatient", "ImageOrientationPatient",
    "PixelSpacing", "ImagerPixelSpacing", "RescaleSlope", "RescaleIntercept",
    "PerFrameFunctionalGroupsSequence", "SharedFunctionalGroupsSequence",
]
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


_STRUCT = {"US": "H", "UL": "I", "SS": "h", "SL": "i", "FL": "f", "FD": "d"}
_TEXT_VRS = {"AE", "AS", "CS", "DA", "DT", "LO", "LT", "PN", "SH", "ST", "TM", "UC", "UI", "UT", "IS", "DS"}
_TAG_TABLE: dict[int, tuple[str, str]] | None = None  # tag -> (keyword, dictionary VR)
_HEAD_BYTES = 64 * 1024
_TAGS: list | None = None


def _header_tags() -> list:
    """HEADER_TAGS as pydicom tags (keywords would be looked up again for every file)."""
    global _TAGS
    if _TAGS is None:
        from pydicom.tag import Tag

        _TAGS = [Tag(kw) for kw in HEADER_TAGS]
    return _TAGS


def _tag_table() -> dict[int, tuple[str, str]]:
    global _TAG_TABLE
    if _TAG_TABLE is None:
        from pydicom.datadict import dictionary_VR, tag_for_keyword

        table = {}
        for kw in HEADER_TAGS:
            tag = tag_for_keyword(kw)
            table[int(tag)] = (kw, dictionary_VR(tag))
        _TAG_TABLE = table
    return _TAG_TABLE


def header_values(ds) -> dict[str, Any]:
    """The ``HEADER_TAGS`` present in ``ds`` as plain Python values (str, int/float, lists of
    them), decoded straight from the raw bytes pydicom read: numbers with ``struct``, ASCII
    text as it is. Only what needs more (non-ASCII text in a character set, sequences) goes
    through pydicom's own conversion. About 35 pydicom conversions per file cost more than
    reading the header itself."""
    out: dict[str, Any] = {}
    table = _tag_table()
    elements = getattr(ds, "_dict", None)  # pydicom's tag -> raw element map (public API: slower)
    if elements is None:
        elements = {int(t): ds.get_item(t) for t in ds.keys()}
    for tag, elem in elements.items():
        entry = table.get(tag)
        if entry is None:
            continue
        kw, dict_vr = entry
        value = elem.value
        vr = elem.VR or dict_vr
        if not isinstance(value, bytes) or vr == "SQ":  # already converted, or a sequence
            out[kw] = ds[tag].value
            continue
        v = _decode_raw(vr, value, elem.is_little_endian)
        if v is _PYDICOM:  # non-ASCII text in the file's character set, or a VR we do not decode here
            v = ds[tag].value
            v = str(v) if vr == "PN" else v
        out[kw] = v
    return out


_PYDICOM = object()  # _decode_raw: "this one needs pydicom's conversion"
_STRUCT_CODES = {(vr, little): ("<" if little else ">", code, struct.calcsize(code))
                 for vr, code in _STRUCT.items() for little in (True, False)}


def _decode_raw(vr: str, value: bytes, little: bool = True):
    """One element's raw bytes as a plain value (as ``header_values`` documents), or _PYDICOM."""
    if not value:  # empty (type 2) element: what pydicom gives for empty text
        return ""
    sc = _STRUCT_CODES.get((vr, little))
    if sc is not None:
        order, code, size = sc
        n = len(value) // size
        if n == 1:
            return struct.unpack_from(order + code, value)[0]
        return list(struct.unpack(order + code * n, value[:n * size]))
    if vr in _TEXT_VRS and value.isascii() and b"\x1b" not in value:  # ESC: ISO 2022 code extensions
        text = value.decode("ascii").strip(" \0")
        parts = text.split("\\") if vr not in ("LT", "ST", "UT") else [text]
        return parts[0] if len(parts) == 1 else [p.strip() for p in parts]
    return _PYDICOM


# explicit VR: these have 2 reserved bytes and a 4-byte length; every other VR a 2-byte length
_LONG_VRS = frozenset((b"OB", b"OD", b"OF", b"OL", b"OV", b"OW", b"SQ", b"SV", b"UC", b"UN", b"UR", b"UT", b"UV"))
_SHORT_VRS = frozenset((b"AE", b"AS", b"AT", b"CS", b"DA", b"DS", b"DT", b"FD", b"FL", b"IS", b"LO", b"LT",
                        b"PN", b"SH", b"SL", b"SS", b"ST", b"TM", b"UI", b"UL", b"US"))
_ALL_VRS = _LONG_VRS | _SHORT_VRS
_PIXEL_TAG_INTS = frozenset((0x7FE00010, 0x7FE00008, 0x7FE00009))
_IMPLICIT_LE = "1.2.840.10008.1.2"
_CHARSET_TAG = 0x00080005
_UNDEFINED = 0xFFFFFFFF
_ITEM, _ITEM_END, _SEQ_END = 0xFFFEE000, 0xFFFEE00D, 0xFFFEE0DD
_U16, _U32, _TAG = struct.Struct("<H"), struct.Struct("<I"), struct.Struct("<HH")


def _explicit_le(transfer_syntax: str) -> bool:
    """Explicit VR little endian data sets: the native syntax and the encapsulated (compressed)
    ones pydicom knows as such. Big endian, deflated (1.2.1.99, JPIP referenced deflate 4.95)
    and unknown syntaxes are left to pydicom."""
    if transfer_syntax == "1.2.840.10008.1.2.4.95":
        return False
    return (transfer_syntax == "1.2.840.10008.1.2.1" or transfer_syntax == "1.2.840.10008.1.2.5"
            or transfer_syntax.startswith(("1.2.840.10008.1.2.4.", "1.2.840.10008.1.2.8.")))


def _skip_undefined(head: bytes, pos: int, implicit: bool, depth: int = 0) -> int | None:
    """Past an undefined-length value (a sequence's items, or encapsulated fragments) that starts
    at ``pos``; the position after its Sequence Delimitation Item, or None (malformed, too deep,
    or past the bytes read)."""
    end = len(head)
    while pos + 8 <= end:
        tag = (_U16.unpack_from(head, pos)[0] << 16) | _U16.unpack_from(head, pos + 2)[0]
        length = _U32.unpack_from(head, pos + 4)[0]
        pos += 8
        if tag == _SEQ_END:
            return pos
        if tag != _ITEM:
            return None
        if length != _UNDEFINED:
            pos += length
            continue
        if depth > 8:
            return None
        while True:  # an item of undefined length: elements up to its Item Delimitation Item
            if pos + 8 > end:
                return None
            g, e = _TAG.unpack_from(head, pos)
            if (g << 16 | e) == _ITEM_END:
                pos += 8
                break
            step = _element(head, pos, implicit, depth + 1)
            if step is None:
                return None
            pos = step[0]
    return None


def _element(head: bytes, pos: int, implicit: bool, depth: int = 0):
    """The element at ``pos``: (position after it, tag, VR bytes or None, value start, length),
    an undefined length already skipped (its length then None); None when it cannot be parsed
    from these bytes alone."""
    end = len(head)
    if pos + 8 > end:
        return None
    g, e = _TAG.unpack_from(head, pos)
    tag = (g << 16) | e
    if implicit:
        vr = None
        if head[pos + 4:pos + 6] in _ALL_VRS and g != 0xFFFE:
            return None  # explicit VR data in an implicit VR file: pydicom sorts that out
        length = _U32.unpack_from(head, pos + 4)[0]
        start = pos + 8
    else:
        vr = head[pos + 4:pos + 6]
        if vr in _SHORT_VRS:
            length = _U16.unpack_from(head, pos + 6)[0]
            start = pos + 8
        elif vr in _LONG_VRS:
            if pos + 12 > end:
                return None
            length = _U32.unpack_from(head, pos + 8)[0]
            start = pos + 12
        else:
            return None
    if length == _UNDEFINED:
        after = _skip_undefined(head, start, implicit or vr == b"UN", depth)
        return None if after is None else (after, tag, vr, start, None)
    if start + length > end:
        return None
    return start + length, tag, vr, start, length


def _fast_header(head: bytes, complete: bool):
    """``read_header``'s common case without pydicom: a file with the 128-byte preamble and
    'DICM', its data set in implicit or explicit VR little endian, the elements of
    ``HEADER_TAGS`` (every other element, sequences of undefined length included, skipped by its
    length) decoded by ``_decode_raw`` exactly as ``header_values`` decodes pydicom's raw
    elements, up to the Pixel Data tag. ``complete``: ``head`` is the whole file.

    Returns (values, {file meta tag: raw bytes} of the media SOP class and transfer syntax UIDs,
    transfer syntax, elements kept, pixel offset, the 4 bytes there), or None whenever anything
    is unusual (no preamble, big endian or deflated syntax, non-ASCII text, a wanted sequence, a
    VR we do not decode, a header longer than ``head``, truncation): pydicom then reads the
    file, as before."""
    if len(head) < 144 or head[128:132] != b"DICM":
        return None
    table = _tag_table()
    end = len(head)
    pos = 132
    meta: dict[int, bytes] = {}
    while pos + 8 <= end and head[pos:pos + 2] == b"\x02\x00":  # file meta: explicit VR LE
        step = _element(head, pos, False)
        if step is None or step[4] is None:
            return None
        pos, tag, _vr, start, length = step
        if tag in (0x00020002, 0x00020010):
            meta[tag] = head[start:start + length]
    ts = meta.get(0x00020010, b"").decode("ascii", "replace").strip(" \0")
    if ts == _IMPLICIT_LE:
        implicit = True
    elif _explicit_le(ts):
        implicit = False
    else:
        return None
    values: dict[str, Any] = {}
    kept = 0
    while True:
        if pos + 8 > end:
            if complete and pos == end:  # the whole file read, no pixel data
                return values, meta, ts, kept, pos, b""
            return None
        g, e = _TAG.unpack_from(head, pos)
        tag = (g << 16) | e
        if tag in _PIXEL_TAG_INTS:
            return values, meta, ts, kept, pos, head[pos:pos + 4]
        step = _element(head, pos, implicit)
        if step is None:
            return None
        pos, tag, vr_bytes, start, length = step
        entry = table.get(tag)
        if entry is None:
            if tag == _CHARSET_TAG:
                kept += 1  # pydicom keeps it beside the specific tags
            continue
        kw, dict_vr = entry
        vr = vr_bytes.decode("ascii") if vr_bytes is not None else dict_vr
        if length is None or vr == "SQ":
            return None  # a wanted sequence (enhanced multi-frame): pydicom's data sets
        v = _decode_raw(vr, head[start:start + length])
        if v is _PYDICOM:
            return None
        values[kw] = v
        kept += 1


def _meta_text(file_meta, tag: int) -> str:
    """A UID of the file meta group, decoded from its raw bytes (no pydicom conversion)."""
    if not file_meta or tag not in file_meta:
        return ""
    value = getattr(file_meta.get_item(tag), "value", None)
    if isinstance(value, (bytes, bytearray)):
        return value.decode("ascii", "replace").strip(" \0")
    return str(value or "")


def _float(v, default=None):
    try:
        if v is None or v == "":
            return default
        return float(v)
    except (TypeError, ValueError):
        return default


def _int(v, default=None):
    try:
        if v is None or v == "":
            return default
        return int(v)
    except (TypeError, ValueError):
        return default


def _first(v):
    """First value of a possibly multi-valued element (WindowCenter may hold several)."""
    if v is None:
        return None
    try:
        if not isinstance(v, (str, bytes)) and len(v) > 0:  # type: ignore[arg-type]
            return v[0]
    except TypeError:
        pass
    return v


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
