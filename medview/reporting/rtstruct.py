"""RT Structure Set export and import: label maps <-> closed planar contours per slice.

Export: for each label and each slice of the label map that is a source image, scikit-image's
marching squares (``find_contours`` at level 0.5) traces the outline of the label's pixels;
holes and islands come out as separate contours. Vertices lie half-way between an inside and an
outside pixel centre, in LPS millimetres (the slice's own position), each contour referencing the
image it lies on. Names and colours come from the label table.

Import: every contour is mapped back onto the reference grid, must lie on one of its slices, and
is filled with ``skimage.draw.polygon`` (pixel centres inside); the contours of one structure on
one slice combine even-odd, so holes stay holes. A voxel claimed by two structures keeps the later
one (a label map holds one value per voxel) and a warning says how many voxels that was.
"""

from __future__ import annotations

import datetime as _dt
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from medview.annotation.labelmap import Label, LabelMap, Provenance, default_color, reference_from_image
from medview.io.volume import Volume

RTSTRUCT_SOP_CLASS = "1.2.840.10008.5.1.4.1.1.481.3"
DETACHED_STUDY_SOP_CLASS = "1.2.840.10008.3.1.2.3.1"  # Study Component Management (RT Referenced Study)
_ON_SLICE = 0.05  # voxel fraction a contour may sit off its slice


CONTOUR_DATA = 0x30060050


def _raw_ds(values: np.ndarray):
    """ContourData as an already-encoded DS element: pydicom's per-value DS validation would take
    minutes for the ~10^6 numbers of a detailed structure set."""
    from pydicom.dataelem import RawDataElement

    text = "\\".join(f"{x:.4f}".rstrip("0").rstrip(".") for x in np.asarray(values, float).reshape(-1)).encode("ascii")
    if len(text) % 2:
        text += b" "  # DICOM values have even length
    return RawDataElement(CONTOUR_DATA, "DS", len(text), text, 0, True, True)


def _contour_points(item) -> np.ndarray:
    """ContourData as an (n, 3) array, parsed straight from the bytes when pydicom has not yet."""
    elem = item.get_item(CONTOUR_DATA)
    raw = elem.value
    if isinstance(raw, (bytes, bytearray)):
        values = np.array(raw.strip(b" \x00").split(b"\\"), dtype=np.float64)
    else:
        values = np.asarray(raw, dtype=np.float64)
    return values.reshape(-1, 3)


class RTStructError(ValueError):
    """An RTSTRUCT cannot be written or read for the reason in the message."""


def slice_contours(mask: np.ndarray) -> list[np.ndarray]:
    """Closed outlines (row, col) of a 2D boolean mask, holes included (marching squares)."""
    from skimage import measure

    padded = np.pad(mask.astype(np.uint8), 1)  # contours at the grid border close too
    out = []
    for c in measure.find_contours(padded, 0.5):
        # drop only vertices exactly on a straight run (tolerance 0: the outline is unchanged)
        c = measure.approximate_polygon(c - 1.0, tolerance=0)
        if len(c) >= 4 and np.allclose(c[0], c[-1]):
            c = c[:-1]  # DICOM closes CLOSED_PLANAR contours implicitly
        if len(c) >= 3:
            out.append(c)
    return out


def fill_contours(shape: tuple[int, int], contours: Sequence[np.ndarray]) -> np.ndarray:
    """Even-odd fill of (row, col) polygons: the pixels whose centre lies inside an odd number.

    A vectorised scanline fill (crossings of every edge with the pixel-centre rows, paired per
    row): ``skimage.draw.polygon`` tests every pixel of a polygon's bounding box against every
    vertex, minutes for a detailed structure set."""
    out = np.zeros(shape, dtype=bool)
    rows_all, xs_all = [], []
    for c in contours:
        c = np.asarray(c, dtype=np.float64)
        if len(c) < 3:
            continue
        y0, x0 = c[:, 0], c[:, 1]
        y1, x1 = np.roll(y0, -1), np.roll(x0, -1)
        r0 = np.ceil(np.minimum(y0, y1)).astype(np.int64)  # rows r with min <= r < max (half-open:
        r1 = np.ceil(np.maximum(y0, y1)).astype(np.int64)  # a vertex on a row counts once)
        n = r1 - r0
        keep = n > 0
        if not keep.any():
            continue
        edge = np.repeat(np.nonzero(keep)[0], n[keep])
        start = np.repeat(np.cumsum(n[keep]) - n[keep], n[keep])
        rows = r0[edge] + (np.arange(edge.size) - start)
        t = (rows - y0[edge]) / (y1[edge] - y0[edge])
        rows_all.append(rows)
        xs_all.append(x0[edge] + t * (x1[edge] - x0[edge]))
    if not rows_all:
        return out
    rows, xs = np.concatenate(rows_all), np.concatenate(xs_all)
    order = np.lexsort((xs, rows))
    rows, xs = rows[order], xs[order]
    a_row, b_row = rows[0::2], rows[1::2]
    if len(a_row) != len(b_row) or np.any(a_row != b_row):
        raise RTStructError("a contour is not closed (odd number of crossings on a row)")
    c_lo = np.floor(xs[0::2]).astype(np.int64) + 1  # centres strictly right of the entering edge
    c_hi = np.ceil(xs[1::2]).astype(np.int64)  # ... and strictly left of the leaving one (exclusive)
    ok = (a_row >= 0) & (a_row < shape[0])
    a_row, c_lo, c_hi = a_row[ok], np.clip(c_lo[ok], 0, shape[1]), np.clip(c_hi[ok], 0, shape[1])
    span = c_hi > c_lo
    diff = np.zeros((shape[0], shape[1] + 1), dtype=np.int32)
    np.add.at(diff, (a_row[span], c_lo[span]), 1)
    np.add.at(diff, (a_row[span], c_hi[span]), -1)
    out[:] = np.cumsum(diff, axis=1)[:, :-1] > 0
    return out


def _source_slices(lm: LabelMap, headers) -> dict[int, object]:
    """Slice index k of the label map -> the source image header lying on it."""
    from medview.annotation.dicom_seg import _frame_positions, _k_indices

    out = {}
    for ds in headers:
        if int(getattr(ds, "NumberOfFrames", 1) or 1) > 1:
            raise RTStructError("RTSTRUCT contours reference single-frame images; this series is multi-frame")
        k = _k_indices(lm.volume, _frame_positions(ds), "source series")[0]
        out[k] = ds
    return out


def _copy(dst, src, keywords) -> None:
    for kw in keywords:
        if kw in src:
            setattr(dst, kw, src.data_element(kw).value)


def export_rtstruct(lm: LabelMap, out_path: str | Path, source_files: Sequence[str | Path] | None = None,
                    structure_set_label: str = "MedView") -> Path:
    """Write the label map's structures as an RTSTRUCT referencing its DICOM series."""
    import pydicom
    from pydicom.dataset import Dataset, FileMetaDataset
    from pydicom.sequence import Sequence as DicomSequence
    from pydicom.uid import ImplicitVRLittleEndian, generate_uid

    from medview import __version__
    from medview.annotation.dicom_seg import SegError, _read_headers, _unique

    files = _unique(source_files or lm.reference.get("source_files") or [])
    if not files:
        raise RTStructError("an RTSTRUCT needs the source DICOM series (this label map was not drawn on DICOM images)")
    try:
        headers = _read_headers(files)
        by_k = _source_slices(lm, headers)
    except SegError as exc:
        raise RTStructError(str(exc)) from exc
    first = headers[0]
    values = sorted(v for v in set(lm.present_values()) | set(lm.labels) if v > 0)
    if not values:
        raise RTStructError("the label map has no labels to export")
    frame_uid = str(first.get("FrameOfReferenceUID", ""))
    if not frame_uid:
        raise RTStructError("the source series has no FrameOfReferenceUID")

    ds = Dataset()
    now = _dt.datetime.now()
    ds.SpecificCharacterSet = "ISO_IR 192"
    ds.InstanceCreationDate, ds.InstanceCreationTime = now.strftime("%Y%m%d"), now.strftime("%H%M%S")
    ds.SOPClassUID, ds.SOPInstanceUID = RTSTRUCT_SOP_CLASS, generate_uid()
    _copy(ds, first, ("PatientName", "PatientID", "PatientBirthDate", "PatientSex", "StudyInstanceUID",
                      "StudyDate", "StudyTime", "ReferringPhysicianName", "StudyID", "AccessionNumber",
                      "PatientIdentityRemoved", "DeidentificationMethod"))
    for kw in ("PatientName", "PatientID", "PatientBirthDate", "PatientSex", "StudyDate", "StudyTime",
               "ReferringPhysicianName", "StudyID", "AccessionNumber"):
        if kw not in ds:
            setattr(ds, kw, "")
    ds.FrameOfReferenceUID = frame_uid
    ds.PositionReferenceIndicator = str(first.get("PositionReferenceIndicator", "") or "")
    ds.Modality = "RTSTRUCT"
    ds.SeriesInstanceUID, ds.SeriesNumber = generate_uid(), 902
    ds.SeriesDescription = f"{structure_set_label} structures"[:64]
    ds.OperatorsName = ""
    ds.Manufacturer, ds.ManufacturerModelName = "MedView", "MedView review workstation"
    ds.SoftwareVersions = __version__
    ds.InstanceNumber = 1
    ds.StructureSetLabel = structure_set_label[:16]
    ds.StructureSetName = structure_set_label[:64]
    ds.StructureSetDate, ds.StructureSetTime = ds.InstanceCreationDate, ds.InstanceCreationTime

    def image_ref(h) -> Dataset:
        r = Dataset()
        r.ReferencedSOPClassUID, r.ReferencedSOPInstanceUID = str(h.SOPClassUID), str(h.SOPInstanceUID)
        return r

    series_ref = Dataset()
    series_ref.SeriesInstanceUID = str(first.SeriesInstanceUID)
    series_ref.ContourImageSequence = DicomSequence([image_ref(by_k[k]) for k in sorted(by_k)])
    study_ref = Dataset()
    study_ref.ReferencedSOPClassUID, study_ref.ReferencedSOPInstanceUID = DETACHED_STUDY_SOP_CLASS, str(
        first.StudyInstanceUID)
    study_ref.RTReferencedSeriesSequence = DicomSequence([series_ref])
    for_ref = Dataset()
    for_ref.FrameOfReferenceUID = frame_uid
    for_ref.RTReferencedStudySequence = DicomSequence([study_ref])
    ds.ReferencedFrameOfReferenceSequence = DicomSequence([for_ref])

    from_model = lm.provenance.source == "model"
    rois, roi_contours, observations = [], [], []
    for number, v in enumerate(values, 1):
        lab = lm.labels.get(v) or Label(v, f"label {v}", default_color(v))
        roi = Dataset()
        roi.ROINumber, roi.ReferencedFrameOfReferenceUID = number, frame_uid
        roi.ROIName = (lab.name or f"label {v}")[:64]
        roi.ROIDescription = f"label {v}"
        roi.ROIGenerationAlgorithm = "SEMIAUTOMATIC" if from_model else "MANUAL"
        rois.append(roi)
        contours = []
        for k in sorted(by_k):
            for c in slice_contours(lm.array[k] == v):
                ijk = np.column_stack([c[:, 1], c[:, 0], np.full(len(c), float(k))])
                world = lm.volume.index_to_world(ijk)
                item = Dataset()
                item.ContourImageSequence = DicomSequence([image_ref(by_k[k])])
                item.ContourGeometricType = "CLOSED_PLANAR"
                item.NumberOfContourPoints = len(world)
                item.ContourNumber = len(contours) + 1
                item[CONTOUR_DATA] = _raw_ds(world)
                contours.append(item)
        rc = Dataset()
        rc.ReferencedROINumber = number
        rc.ROIDisplayColor = [int(x) for x in lab.color]
        if contours:
            rc.ContourSequence = DicomSequence(contours)
        roi_contours.append(rc)
        obs = Dataset()
        obs.ObservationNumber, obs.ReferencedROINumber = number, number
        obs.RTROIInterpretedType = "ORGAN"
        obs.ROIInterpreter = ""
        observations.append(obs)
    ds.StructureSetROISequence = DicomSequence(rois)
    ds.ROIContourSequence = DicomSequence(roi_contours)
    ds.RTROIObservationsSequence = DicomSequence(observations)

    for rc in roi_contours:  # the raw ContourData goes to the file as it is (no re-encoding)
        for item in rc.get("ContourSequence", []):
            item.set_original_encoding(True, True, item._character_set)
    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID, meta.MediaStorageSOPInstanceUID = ds.SOPClassUID, ds.SOPInstanceUID
    # implicit VR: a long contour's ContourData can pass the 64 KiB an explicit-VR DS may hold
    meta.TransferSyntaxUID = ImplicitVRLittleEndian
    ds.file_meta = meta
    out_path = Path(out_path)
    out_path.parent.mkdir(parents=True, exist_ok=True)
    tmp = out_path.with_name(".tmp-" + out_path.name)
    pydicom.dcmwrite(str(tmp), ds, enforce_file_format=True)
    tmp.replace(out_path)
    return out_path


def read_rtstruct(path: str | Path, reference: Volume) -> LabelMap:
    """The structures of an RTSTRUCT as a label map on ``reference`` (the series it was drawn on):
    label value = position in the StructureSetROISequence (1, 2, ...), name and colour from the
    file. ``warnings`` of the result's volume say what could not be placed."""
    import pydicom

    from medview.annotation.identity import check_identity
    from medview.io import LoadError

    path = Path(path)
    try:
        ds = pydicom.dcmread(str(path))
    except Exception as exc:  # noqa: BLE001
        raise LoadError(path, f"not a readable DICOM file ({exc})") from exc
    if str(ds.get("SOPClassUID", "")) != RTSTRUCT_SOP_CLASS:
        raise LoadError(path, f"not an RT Structure Set (SOP class {ds.get('SOPClassUID', '?')})")
    claimed = {k: str(ds.get(k, "") or "") for k in ("PatientID", "PatientName", "StudyInstanceUID")}
    frames = {str(r.FrameOfReferenceUID) for r in ds.get("ReferencedFrameOfReferenceSequence", [])}
    ref_frame = str(reference.meta.get("FrameOfReferenceUID", "") or "")
    if ref_frame and frames and ref_frame not in frames:
        raise LoadError(path, f"its structures are in frame of reference {sorted(frames)}, the image in {ref_frame}")
    check_identity(path, claimed, reference.meta, same_grid=True)

    shape = reference.shape
    arr = np.zeros(shape, dtype=np.uint16 if len(ds.get("StructureSetROISequence", [])) > 255 else np.uint8)
    colours = {int(rc.ReferencedROINumber): tuple(int(c) for c in rc.get("ROIDisplayColor", [])[:3])
               for rc in ds.get("ROIContourSequence", [])}
    contours_of = {int(rc.ReferencedROINumber): rc.get("ContourSequence", [])
                   for rc in ds.get("ROIContourSequence", [])}
    labels, warnings, overlap = [], [], 0
    for value, roi in enumerate(ds.get("StructureSetROISequence", []), 1):
        number = int(roi.ROINumber)
        colour = colours.get(number) or default_color(value)
        labels.append(Label(value, str(roi.get("ROIName", f"ROI {number}")), colour if len(colour) == 3
                            else default_color(value)))
        per_slice: dict[int, list[np.ndarray]] = {}
        off = 0
        for item in contours_of.get(number, []):
            if str(item.get("ContourGeometricType", "")) not in ("CLOSED_PLANAR", ""):
                off += 1
                continue
            world = _contour_points(item)
            ijk = reference.world_to_index(world)
            k = int(round(float(np.mean(ijk[:, 2]))))
            if np.max(np.abs(ijk[:, 2] - k)) > _ON_SLICE or not 0 <= k < shape[0]:
                off += 1
                continue
            per_slice.setdefault(k, []).append(np.column_stack([ijk[:, 1], ijk[:, 0]]))
        for k, cs in per_slice.items():
            mask = fill_contours(shape[1:], cs)
            overlap += int(np.count_nonzero(mask & (arr[k] != 0)))
            arr[k][mask] = value
        if off:
            warnings.append(f"{roi.get('ROIName', number)}: {off} contour(s) not on a slice of the image were left out")
    if overlap:
        warnings.append(f"{overlap} voxel(s) lie in two structures; each keeps the later structure")
    lm = LabelMap.from_array(reference, arr, labels)
    lm.provenance = Provenance(source="import", imported_from=str(path))
    lm.reference = reference_from_image(reference)
    lm.volume.warnings.extend(warnings)
    return lm
