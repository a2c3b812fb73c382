"""DICOM header decoding for the folder scan: the tags a scan keeps, their values decoded from the
raw bytes (as pydicom would convert them, without its per-element conversion cost), and a reader
for the common file layouts (preamble + DICM, implicit/explicit VR little endian) that parses a
file's first bytes from memory. Anything unusual returns None and the scan asks pydicom. No Qt.
"""

from __future__ import annotations

import struct
from typing import Any

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


_STRUCT = {"US": "H", "UL": "I", "SS": "h", "SL": "i", "FL": "f", "FD": "d"}
_TEXT_VRS = {"AE", "AS", "CS", "DA", "DT", "LO", "LT", "PN", "SH", "ST", "TM", "UC", "UI", "UT", "IS", "DS"}
_TAG_TABLE: dict[int, tuple[str, str]] | None = None  # tag -> (keyword, dictionary VR)
HEAD_BYTES = 64 * 1024
_TAGS: list | None = None


def header_tags() -> list:
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


def fast_header(head: bytes, complete: bool):
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


def meta_text(file_meta, tag: int) -> str:
    """A UID of the file meta group, decoded from its raw bytes (no pydicom conversion)."""
    if not file_meta or tag not in file_meta:
        return ""
    value = getattr(file_meta.get_item(tag), "value", None)
    if isinstance(value, (bytes, bytearray)):
        return value.decode("ascii", "replace").strip(" \0")
    return str(value or "")


def to_float(v, default=None):
    try:
        if v is None or v == "":
            return default
        return float(v)
    except (TypeError, ValueError):
        return default


def to_int(v, default=None):
    try:
        if v is None or v == "":
            return default
        return int(v)
    except (TypeError, ValueError):
        return default


def first_value(v):
    """First value of a possibly multi-valued element (WindowCenter may hold several)."""
    if v is None:
        return None
    try:
        if not isinstance(v, (str, bytes)) and len(v) > 0:  # type: ignore[arg-type]
            return v[0]
    except TypeError:
        pass
    return v
