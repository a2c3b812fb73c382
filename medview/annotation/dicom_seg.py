"""DICOM SEG export / import with highdicom, referencing the source DICOM series.

Export: one BINARY Segmentation instance; frame n of ``pixel_array`` is the label slice of
source image n (highdicom's convention for single-frame sources: ``pixel_array[i]`` <->
``source_images[i]``; for one multi-frame source, frame i+1). Each source image/frame is
placed on the label map's k axis by its ImagePositionPatient, so the order of the files does
not matter and a file from another grid is refused. Segment numbers are the label values when
they are 1..n; otherwise they are renumbered and the value is kept in the TrackingID
("label <value>") so import restores it.

Import: ``get_pixels_by_source_instance`` (single-frame sources) / ``get_pixels_by_source_frame``
(multi-frame) with ``combine_segments=True`` gives a label array aligned with the source
images, which is placed back on the series grid the same way.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from medview.annotation.labelmap import Label, LabelMap, Provenance, default_color, reference_from_image
from medview.io.volume import Volume

_TRACKING = re.compile(r"^label (\d+)$")


class SegError(ValueError):
    """A DICOM SEG cannot be written or read for the reason in the message."""


def _unique(files: Sequence[str | Path]) -> list[str]:
    """Files in first-seen order without repeats (a multi-frame series lists its file per slice)."""
    return list(dict.fromkeys(str(f) for f in files))


def _read_headers(files: Sequence[str | Path]):
    import pydicom

    out = []
    for f in files:
        try:
            out.append(pydicom.dcmread(str(f), stop_before_pixels=True))
        except Exception as exc:
            raise SegError(f"{f}: not a readable DICOM file ({exc})") from exc
    return out


# type-2 attributes highdicom copies from the source; some de-identified series lack them
_TYPE2 = {"PatientName": "PN", "PatientID": "LO", "PatientBirthDate": "DA", "PatientSex": "CS", "StudyDate": "DA",
          "StudyTime": "TM", "ReferringPhysicianName": "PN", "StudyID": "SH", "AccessionNumber": "SH"}


def _complete_type2(headers) -> None:
    """Give the in-memory source headers empty type-2 elements they lack (files are untouched).

    An enhanced multi-frame image without its (required) SharedFunctionalGroupsSequence gets one
    built from the first frame's pixel measures and orientation, which highdicom reads from
    there; positions stay per frame."""
    from pydicom.dataset import Dataset
    from pydicom.sequence import Sequence as DicomSequence

    for ds in headers:
        for kw, vr in _TYPE2.items():
            if kw not in ds:
                ds.add_new(kw, vr, "")
        if "PerFrameFunctionalGroupsSequence" in ds and "SharedFunctionalGroupsSequence" not in ds:
            first = ds.PerFrameFunctionalGroupsSequence[0]
            shared = Dataset()
            for kw in ("PixelMeasuresSequence", "PlaneOrientationSequence"):
                if kw in first:
                    setattr(shared, kw, first.get(kw))
            ds.SharedFunctionalGroupsSequence = DicomSequence([shared])


def _frame_positions(ds) -> list[np.ndarray]:
    """ImagePositionPatient of every frame of ``ds`` (one for single-frame images)."""
    n = int(getattr(ds, "NumberOfFrames", 1) or 1)
    if n > 1 or "PerFrameFunctionalGroupsSequence" in ds:
        out = []
        shared = ds.get("SharedFunctionalGroupsSequence", [None])[0]
        for i in range(n):
            item = ds.PerFrameFunctionalGroupsSequence[i]
            pp = item.get("PlanePositionSequence") or (shared.get("PlanePositionSequence") if shared else None)
            if not pp:
                raise SegError(f"{ds.filename}: frame {i + 1} has no PlanePositionSequence")
            out.append(np.asarray(pp[0].ImagePositionPatient, dtype=np.float64))
        return out
    if "ImagePositionPatient" not in ds:
        raise SegError(f"{getattr(ds, 'filename', '?')}: no ImagePositionPatient")
    return [np.asarray(ds.ImagePositionPatient, dtype=np.float64)]


def _k_indices(grid: Volume, positions: list[np.ndarray], what: str, tol: float = 0.05) -> list[int]:
    """Map image positions to slice indices k of ``grid``; refuse positions off the grid."""
    ks = []
    for p in positions:
        ijk = grid.world_to_index(p)
        k = round(float(ijk[2]))
        if abs(ijk[0]) > tol or abs(ijk[1]) > tol or abs(ijk[2] - k) > tol or not 0 <= k < grid.shape[0]:
            raise SegError(f"{what}: an image at {np.round(p, 3).tolist()} is not on the label map's grid "
                           f"(index {np.round(ijk, 3).tolist()})")
        ks.append(k)
    return ks


def _coded(d: dict[str, str] | None, default):
    from highdicom.sr import CodedConcept

    if not d:
        return default
    return CodedConcept(value=str(d["value"]), scheme_designator=str(d.get("scheme", "SCT")), meaning=str(d["meaning"]))


def _default_type(name: str):
    """A SNOMED code for well-known structure names (pydicom's code dictionary), else Tissue."""
    from pydicom.sr.codedict import codes

    camel = "".join(w[:1].upper() + w[1:] for w in re.split(r"[^A-Za-z0-9]+", name) if w)
    try:
        return getattr(codes.SCT, camel)
    except AttributeError:
        return codes.SCT.Tissue


def export_dicom_seg(
    lm: LabelMap,
    out_path: str | Path,
    source_files: Sequence[str | Path] | None = None,
    series_description: str = "MedView segmentation",
    series_number: int = 900,
) -> Path:
    """Write ``lm`` as a DICOM SEG referencing the DICOM series it was drawn on.

    ``source_files`` defaults to ``lm.reference["source_files"]`` (Volume.meta of a DICOM
    series). The label map must be on that series' grid."""
    import highdicom as hd
    from pydicom.sr.codedict import codes
    from pydicom.uid import ExplicitVRLittleEndian

    from medview import __version__

    files = _unique(source_files or lm.reference.get("source_files") or [])
    if not files:
        raise SegError("DICOM SEG needs the source DICOM series (this label map was not drawn on DICOM images)")
    headers = _read_headers(files)
    positions = [p for ds in headers for p in _frame_positions(ds)]
    rows, cols = int(headers[0].Rows), int(headers[0].Columns)
    if (rows, cols) != lm.shape[1:]:
        raise SegError(f"source images are {rows}x{cols} but the label map slices are {lm.shape[1]}x{lm.shape[2]}")
    if len(positions) > lm.shape[0]:
        raise SegError(f"the source series has {len(positions)} images but the label map {lm.shape[0]} slices")
    ks = _k_indices(lm.volume, positions, "source series")
    if len(set(ks)) != len(ks):
        raise SegError("two source images fall on one slice of the label map")
    # a series with missing / variably spaced slices sits on a finer regular grid: frames are written
    # only at the source images (their own positions); planes between them are not part of the SEG

    values = sorted(set(lm.labels) | set(lm.present_values()))
    values = [v for v in values if v > 0]
    if not values:
        raise SegError("the label map has no labels to export")
    contiguous = values == list(range(1, len(values) + 1))
    seg_of = {v: (v if contiguous else i + 1) for i, v in enumerate(values)}
    lut = np.zeros(int(max(values)) + 1, dtype=np.uint16 if len(values) > 255 else np.uint8)
    for v, s in seg_of.items():
        lut[v] = s
    pixel = lut[lm.array[ks]]  # frame n <-> source image / frame n

    prov = lm.provenance
    from_model = prov.source == "model" and prov.model_id
    algo = None
    if from_model:
        algo = hd.AlgorithmIdentificationSequence(
            name=str(prov.model_id)[:64], version=str(prov.model_version or "unknown")[:64],
            family=codes.cid7162.ArtificialIntelligence)
    descriptions = []
    for v in values:
        lab = lm.labels.get(v) or Label(v, f"label {v}", default_color(v))
        kwargs: dict[str, Any] = {}
        if not contiguous:
            kwargs["tracking_id"] = f"label {v}"
            kwargs["tracking_uid"] = hd.UID()
        descriptions.append(hd.seg.SegmentDescription(
            segment_number=seg_of[v],
            segment_label=lab.name[:64] or f"label {v}",
            segmented_property_category=_coded(lab.category, codes.SCT.Tissue),
            segmented_property_type=_coded(lab.code, _default_type(lab.name)),
            algorithm_type=(hd.seg.SegmentAlgorithmTypeValues.SEMIAUTOMATIC if from_model
                            else hd.seg.SegmentAlgorithmTypeValues.MANUAL),
            algorithm_identification=algo,
            display_color=hd.color.CIELabColor.from_rgb(*lab.color),
            **kwargs,
        ))
    empty = not pixel.any()
    _complete_type2(headers)
    try:
        seg = _build_segmentation(hd, headers, pixel, descriptions, series_number, series_description, prov,
                                  __version__, ExplicitVRLittleEndian, empty)
    except (ValueError, TypeError, AttributeError, KeyError) as exc:
        raise SegError(f"highdicom refused to build the SEG: {exc}") from exc
    out_path = Path(out_path)
    out_path.parent.mkdir(parents=True, exist_ok=True)
    tmp = out_path.with_name(".tmp-" + out_path.name)
    seg.save_as(str(tmp))
    tmp.replace(out_path)
    from medview.reporting.audit import record

    record("export", lm.reference, {"format": "DICOM SEG", "output": str(out_path)})
    return out_path


def _build_segmentation(hd, headers, pixel, descriptions, series_number, series_description, prov, version,
                        transfer_syntax, empty):
    return hd.seg.Segmentation(
        source_images=headers,
        pixel_array=pixel,
        segmentation_type=hd.seg.SegmentationTypeValues.BINARY,
        segment_descriptions=descriptions,
        series_instance_uid=hd.UID(),
        series_number=int(series_number),
        sop_instance_uid=hd.UID(),
        instance_number=1,
        manufacturer="MedView",
        manufacturer_model_name="MedView review workstation",
        software_versions=version,
        device_serial_number="0",
        content_description=series_description[:64],
        content_label="MEDVIEW_SEG",
        content_creator_name=_person_name(prov.reviewer),
        series_description=series_description[:64],
        transfer_syntax_uid=transfer_syntax,
        omit_empty_frames=not empty,
    )


def _person_name(name: str | None) -> str | None:
    if not name:
        return None
    clean = re.sub(r"[\\^=\r\n]", " ", str(name)).strip()[:63]
    if not clean:
        return None
    if " " in clean:  # "Given Family" -> "Family^Given"
        given, family = clean.rsplit(" ", 1)
        return f"{family}^{given}"
    return clean + "^"  # a single word: family name, with the caret that says so


def _label_from_segment(desc, value: int) -> Label:
    color = default_color(value)
    try:
        if "RecommendedDisplayCIELabValue" in desc:
            from highdicom.color import CIELabColor

            lab = desc.RecommendedDisplayCIELabValue
            # stored as DICOM-scaled integers (0..65535)
            c = CIELabColor.from_dicom_value(lab) if hasattr(CIELabColor, "from_dicom_value") else None
            if c is not None:
                color = tuple(int(x) for x in c.to_rgb(clip=True))  # type: ignore[assignment]
    except Exception:  # noqa: BLE001 - a bad colour is not worth failing the import
        color = default_color(value)
    code = None
    category = None
    try:
        t = desc.segmented_property_type
        code = {"scheme": t.scheme_designator, "value": t.value, "meaning": t.meaning}
        c = desc.segmented_property_category
        category = {"scheme": c.scheme_designator, "value": c.value, "meaning": c.meaning}
    except Exception:  # noqa: BLE001 - codes are optional for the label table
        code = category = None
    return Label(value, str(getattr(desc, "SegmentLabel", f"label {value}")), color, code=code, category=category)


def _check_seg_identity(path: Path, seg, reference: Volume) -> None:
    """Refuse a SEG whose patient / study / frame of reference is not the image's (series: checked after)."""
    from medview.annotation.identity import check_identity

    claimed = {k: str(getattr(seg, k, "") or "") for k in ("PatientID", "PatientName", "StudyInstanceUID",
                                                          "FrameOfReferenceUID")}
    check_identity(path, claimed, reference.meta, same_grid=True)


def import_dicom_seg(path: str | Path, reference: Volume) -> LabelMap:
    """Read a DICOM SEG onto the series it references (``reference``: that series loaded with
    medview.io, whose ``meta["source_files"]`` lists its files in k order)."""
    import highdicom as hd

    from medview.io import LoadError

    path = Path(path)
    try:
        seg = hd.seg.segread(str(path))
    except Exception as exc:
        raise LoadError(path, f"not a readable DICOM SEG ({exc})") from exc
    files = _unique(reference.meta.get("source_files") or [])
    if not files:
        raise LoadError(path, "the image it should go on is not a DICOM series")
    headers = _read_headers(files)
    series_uid = str(headers[0].SeriesInstanceUID)
    referenced = {str(uids[1]) for uids in seg.get_source_image_uids()}
    _check_seg_identity(path, seg, reference)
    if series_uid not in referenced:
        raise LoadError(path, f"this SEG references series {sorted(referenced)}, not {series_uid}")
    arr = np.zeros(reference.shape, dtype=np.uint16)
    positions: list[np.ndarray] = []
    if len(headers) == 1 and int(getattr(headers[0], "NumberOfFrames", 1) or 1) > 1:
        ds = headers[0]
        n = int(ds.NumberOfFrames)
        pix = seg.get_pixels_by_source_frame(
            source_sop_instance_uid=str(ds.SOPInstanceUID), source_frame_numbers=list(range(1, n + 1)),
            combine_segments=True, relabel=False, assert_missing_frames_are_empty=True)
        positions = _frame_positions(ds)
    else:
        uids = [str(ds.SOPInstanceUID) for ds in headers]
        pix = seg.get_pixels_by_source_instance(
            source_sop_instance_uids=uids, combine_segments=True, relabel=False,
            assert_missing_frames_are_empty=True)
        positions = [_frame_positions(ds)[0] for ds in headers]
    ks = _k_indices(reference, positions, str(path))
    arr[ks] = pix
    # segment numbers -> label values (TrackingID "label <v>" when they were renumbered)
    labels: list[Label] = []
    value_of: dict[int, int] = {}
    for s in seg.segment_numbers:
        desc = seg.get_segment_description(s)
        m = _TRACKING.match(str(getattr(desc, "tracking_id", None) or ""))
        value_of[s] = int(m.group(1)) if m else int(s)
        labels.append(_label_from_segment(desc, value_of[s]))
    if any(s != v for s, v in value_of.items()):
        lut = np.arange(max(max(value_of), int(arr.max())) + 1, dtype=np.int64)
        for s, v in value_of.items():
            lut[s] = v
        arr = lut[arr]
    lm = LabelMap.from_array(reference, arr, labels)
    creator = str(getattr(seg, "ContentCreatorName", "") or "").replace("^", " ").strip()
    lm.provenance = Provenance(source="import", imported_from=str(path))
    if creator:
        lm.provenance.reviewers = [creator]
    lm.reference = reference_from_image(reference)
    return lm
