"""DICOM SR (TID 1500 Measurement Report) with highdicom: write the session's measurements and AI
findings, read them back as measurements on their series.

Content, one measurement group per finding:
- ruler: TID 1410 planar ROI, a 2-point POLYLINE, with its Length (mm);
- ellipse / rectangle ROI: TID 1410, ELLIPSE (4 axis end points) / closed POLYLINE, with Area,
  Mean and Standard Deviation;
  planar regions lying on one source image are 2D SCOORD on that image (SourceImageForRegion);
  others (drawn on a reformatted view) are SCOORD3D in the series' frame of reference;
- segment volume: TID 1411 volumetric ROI referencing the segment of the DICOM SEG, Volume (mL);
- AI finding: TID 1501 group whose algorithm identification (TID 4019) is the model id, version
  and weights sha256, with the top class as Finding and one Probability per class.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from medview.io.volume import Volume
from medview.reporting.measurements import MeasurementRecord, plane_axes

LOCAL_SCHEME = "99MEDVIEW"  # local coding scheme (PS3.16 8.2: private designators start with 99)
_ML = ("mL", "UCUM", "milliliter")
_ON_PLANE_MM = 0.05  # a point this close to an image plane lies on that image


class SRError(ValueError):
    """An SR cannot be written or read for the reason in the message."""


@dataclass
class Finding:
    """An AI result as it goes into (and comes back from) the SR."""

    model_id: str
    model_version: str
    model_sha256: str
    probabilities: dict[str, float] = field(default_factory=dict)
    top_class: str | None = None
    model_name: str = ""
    input: dict[str, Any] = field(default_factory=dict)  # prediction.json "input": path, series_uid ...

    @classmethod
    def from_prediction_json(cls, d: dict[str, Any]) -> Finding:
        m = d.get("model", {})
        probs = {str(k): float(v) for k, v in (d.get("probabilities") or {}).items()}
        top = d.get("top_class") or (max(probs, key=probs.get) if probs else None)  # type: ignore[arg-type]
        return cls(str(m.get("id", "")), str(m.get("version", "")), str(m.get("sha256", "")), probs, top,
                   str(m.get("name", "")), dict(d.get("input") or {}))

    def check_input(self, reference: Volume) -> None:
        """Refuse a finding made on another image than the series the SR references."""
        ran_on = str(self.input.get("series_uid") or "")
        series = str(reference.meta.get("SeriesInstanceUID") or "")
        if ran_on and series and ran_on != series:
            raise SRError(f"the {self.model_id} result was made on series {ran_on}, not on {series}")
        path = str(self.input.get("path") or "")
        if not ran_on and path and Path(path).resolve() != Path(str(reference.meta.get("source_path", ""))).resolve():
            raise SRError(f"the {self.model_id} result was made on {path}, not on this series")


@dataclass
class SRContent:
    measurements: list[MeasurementRecord]
    findings: list[Finding]
    series_uid: str
    seg_uid: str | None = None


# ---- geometry helpers -------------------------------------------------------------------------
def _outline_ijk(r: MeasurementRecord) -> tuple[str, np.ndarray]:
    """Graphic type and the points (voxel ijk) that describe a ruler / ROI."""
    p0, p1 = np.asarray(r.p0, float), np.asarray(r.p1, float)
    if r.kind == "ruler":
        return "POLYLINE", np.stack([p0, p1])
    rows, cols = plane_axes(r.normal_axis)
    def at(a_rows: float, a_cols: float) -> np.ndarray:
        p = p0.copy()
        p[rows], p[cols] = a_rows, a_cols
        return p
    if r.kind == "rect":
        pts = [at(p0[rows], p0[cols]), at(p0[rows], p1[cols]), at(p1[rows], p1[cols]), at(p1[rows], p0[cols])]
        return "POLYLINE", np.stack(pts + [pts[0]])
    # ellipse inscribed in the box: major-axis end points first (PS3.3 C.18.6.1.2), then minor
    cr, cc = (p0[rows] + p1[rows]) / 2, (p0[cols] + p1[cols]) / 2
    hr, hc = abs(p1[rows] - p0[rows]) / 2, abs(p1[cols] - p0[cols]) / 2
    along_rows = [at(cr - hr, cc), at(cr + hr, cc)]
    along_cols = [at(cr, cc - hc), at(cr, cc + hc)]
    return "ELLIPSE", np.stack(along_rows + along_cols if hr >= hc else along_cols + along_rows)


def _image_plane(ds) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    ipp = np.asarray(ds.ImagePositionPatient, float)
    iop = np.asarray(ds.ImageOrientationPatient, float)
    x, y = iop[:3], iop[3:]
    ps = np.asarray(ds.PixelSpacing, float)  # (between rows, between columns)
    return ipp, x, y, ps


def _world_to_scoord(ds, world: np.ndarray) -> np.ndarray | None:
    """(column, row) SCOORD pixel coordinates on image ``ds`` (0,0 = outer corner of the first
    pixel, PS3.3 C.18.6.1.1), or None when a point is off the image's plane."""
    ipp, x, y, ps = _image_plane(ds)
    n = np.cross(x, y)
    d = world - ipp
    if np.any(np.abs(d @ n) > _ON_PLANE_MM):
        return None
    return np.stack([d @ x / ps[1] + 0.5, d @ y / ps[0] + 0.5], axis=1)


def _scoord_to_world(ds, cr: np.ndarray) -> np.ndarray:
    ipp, x, y, ps = _image_plane(ds)
    cr = np.asarray(cr, float).reshape(-1, 2)
    return ipp + np.outer(cr[:, 0] - 0.5, x * ps[1]) + np.outer(cr[:, 1] - 0.5, y * ps[0])


# ---- writing ----------------------------------------------------------------------------------
def _codes():
    from highdicom.sr import CodedConcept
    from pydicom.sr.codedict import codes

    return CodedConcept, codes


def _unit_of_values(modality: str):
    CodedConcept, codes = _codes()
    return codes.UCUM.HounsfieldUnit if modality == "CT" else codes.UCUM.NoUnits


def _algorithm(model_id: str, version: str, sha256: str, name: str = ""):
    import highdicom as hd
    from pydicom.sr.codedict import codes

    params = [f"model_id={model_id}"] + ([f"weights_sha256={sha256}"] if sha256 else [])
    return hd.sr.AlgorithmIdentification(name=(name or model_id)[:64] or "unknown", version=(version or "unknown")[:64],
                                         parameters=params, family=codes.cid7162.ArtificialIntelligence)


def _roi_group(hd, r: MeasurementRecord, volume: Volume, headers, frame_uid: str, modality: str):
    CodedConcept, codes = _codes()
    graphic, ijk = _outline_ijk(r)
    world = volume.index_to_world(ijk)
    region = None
    for ds in headers:
        scoord = _world_to_scoord(ds, world)
        if scoord is not None:
            region = hd.sr.ImageRegion(graphic_type=graphic, graphic_data=scoord.astype(np.float32),
                                       source_image=hd.sr.SourceImageForRegion(str(ds.SOPClassUID),
                                                                               str(ds.SOPInstanceUID)))
            break
    if region is None:
        region = hd.sr.ImageRegion3D(graphic_type="POLYGON" if r.kind == "rect" else graphic,
                                     graphic_data=world, frame_of_reference_uid=frame_uid)
    v = r.values
    if r.kind == "ruler":
        ms = [hd.sr.Measurement(name=codes.SCT.Length, value=float(v["length_mm"]), unit=codes.UCUM.Millimeter)]
    else:
        unit = _unit_of_values(modality)
        ms = [hd.sr.Measurement(name=codes.SCT.Area, value=float(v["area_mm2"]), unit=codes.UCUM.SquareMillimeter)]
        if np.isfinite(v.get("mean", np.nan)):
            ms.append(hd.sr.Measurement(name=codes.SCT.Mean, value=float(v["mean"]), unit=unit))
            ms.append(hd.sr.Measurement(name=codes.SCT.StandardDeviation, value=float(v["sd"]), unit=unit))
    tid = hd.sr.TrackingIdentifier(uid=r.tracking_uid, identifier=(r.name or f"{r.kind}")[:64])
    return hd.sr.PlanarROIMeasurementsAndQualitativeEvaluations(
        tracking_identifier=tid, referenced_region=region, measurements=ms,
        finding_type=CodedConcept(r.kind, LOCAL_SCHEME, {"ruler": "Ruler", "ellipse": "Ellipse ROI",
                                                         "rect": "Rectangle ROI"}[r.kind]))


def _segment_numbers(seg) -> dict[int, int]:
    """label value -> SEG segment number (TrackingID "label <v>" when renumbered on export)."""
    import re

    out = {}
    for item in seg.SegmentSequence:
        m = re.match(r"^label (\d+)$", str(item.get("TrackingID", "")))
        out[int(m.group(1)) if m else int(item.SegmentNumber)] = int(item.SegmentNumber)
    return out


def _volume_group(hd, r: MeasurementRecord, seg, algo):
    CodedConcept, codes = _codes()
    numbers = _segment_numbers(seg)
    if r.segment not in numbers:
        raise SRError(f"segment {r.segment} ({r.name}) is not in the SEG {seg.SOPInstanceUID}")
    ref = hd.sr.ReferencedSegment(
        sop_class_uid=str(seg.SOPClassUID), sop_instance_uid=str(seg.SOPInstanceUID),
        segment_number=numbers[r.segment],
        source_series=hd.sr.SourceSeriesForSegmentation(
            str(seg.ReferencedSeriesSequence[0].SeriesInstanceUID)))
    tid = hd.sr.TrackingIdentifier(uid=r.tracking_uid, identifier=(r.name or f"segment {r.segment}")[:64])
    m = hd.sr.Measurement(name=codes.SCT.Volume, value=float(r.values["volume_ml"]), unit=CodedConcept(*_ML))
    return hd.sr.VolumetricROIMeasurementsAndQualitativeEvaluations(
        tracking_identifier=tid, referenced_segment=ref, measurements=[m], algorithm_id=algo,
        finding_type=CodedConcept("segment", LOCAL_SCHEME, "Segmented structure"))


def _finding_group(hd, f: Finding, headers):
    CodedConcept, codes = _codes()
    algo = _algorithm(f.model_id, f.model_version, f.model_sha256, f.model_name)
    ms = [hd.sr.Measurement(name=CodedConcept("prob:" + c[:40], LOCAL_SCHEME, f"Probability of {c}"[:64]),
                            value=float(p), unit=_codes()[1].UCUM.NoUnits, algorithm_id=algo)
          for c, p in f.probabilities.items()]
    evals = []
    if f.top_class:
        evals.append(hd.sr.QualitativeEvaluation(
            name=codes.DCM.Finding, value=CodedConcept("class:" + f.top_class[:40], LOCAL_SCHEME, f.top_class[:64])))
    sources = [hd.sr.SourceImageForMeasurementGroup(str(ds.SOPClassUID), str(ds.SOPInstanceUID)) for ds in headers]
    tid = hd.sr.TrackingIdentifier(uid=hd.UID(), identifier=f"AI {f.model_id}"[:64])
    return hd.sr.MeasurementsAndQualitativeEvaluations(
        tracking_identifier=tid, algorithm_id=algo, measurements=ms or None, qualitative_evaluations=evals or None,
        finding_type=codes.DCM.Probability if ms else None, source_images=sources)


def export_sr(out_path: str | Path, reference: Volume, records: Sequence[MeasurementRecord],
              findings: Sequence[Finding] = (), seg_path: str | Path | None = None,
              observer: str | None = None, series_description: str = "MedView measurements",
              segmentation_model: tuple[str, str, str] | None = None) -> Path:
    """Write a Comprehensive 3D SR holding ``records`` (rulers, ROIs, segment volumes) and the AI
    ``findings`` of the DICOM series ``reference`` (loaded with medview.io). Segment volumes
    reference their segment in the SEG at ``seg_path``; ``segmentation_model`` (id, version,
    sha256) names the model that made those labels."""
    import highdicom as hd
    import pydicom
    from pydicom.dataset import Dataset

    from medview import __version__
    from medview.annotation.dicom_seg import _complete_type2, _read_headers, _unique
    from medview.annotation.labelmap import reviewer_name

    files = _unique(reference.meta.get("source_files") or [])
    if not files:
        raise SRError("a DICOM SR needs the source DICOM series (this image was not loaded from DICOM)")
    headers = _read_headers(files)
    _complete_type2(headers)
    frame_uid = str(headers[0].get("FrameOfReferenceUID", "") or reference.meta.get("FrameOfReferenceUID", ""))
    modality = str(headers[0].get("Modality", ""))
    seg = pydicom.dcmread(str(seg_path)) if seg_path else None
    if any(r.kind == "volume" for r in records) and seg is None:
        raise SRError("segment volumes reference a DICOM SEG: give the SEG the label map was exported to")
    algo = None
    if seg is not None:
        _complete_type2([seg])
        model = next((s.SegmentAlgorithmName for s in seg.SegmentSequence if "SegmentAlgorithmName" in s), None)
        if model:
            item = next(s for s in seg.SegmentSequence if "SegmentAlgorithmName" in s)
            seq = item.get("SegmentationAlgorithmIdentificationSequence")
            version = next((str(c.get("TextValue", "")) for c in _walk(seq or [])
                            if "ConceptNameCodeSequence" in c and c.ConceptNameCodeSequence[0].CodeValue == "111003"),
                           "")
            algo = _algorithm(str(model), version, "")
    if segmentation_model is not None:  # (id, version, sha256) of the model that made the labels
        algo = _algorithm(*segmentation_model)
    groups = []
    for r in records:
        if r.kind == "volume":
            groups.append(_volume_group(hd, r, seg, algo))
        else:
            groups.append(_roi_group(hd, r, reference, headers, frame_uid, modality))
    for f in findings:
        f.check_input(reference)
        groups.append(_finding_group(hd, f, headers))
    if not groups:
        raise SRError("nothing to report: no measurements, segment volumes or AI findings")

    person = hd.sr.ObserverContext(
        observer_type=_codes()[1].DCM.Person,
        observer_identifying_attributes=hd.sr.PersonObserverIdentifyingAttributes(
            name=_person_name(observer or reviewer_name())))
    report = hd.sr.MeasurementReport(
        observation_context=hd.sr.ObservationContext(observer_person_context=person),
        procedure_reported=_codes()[1].SCT.ImagingProcedure, imaging_measurements=groups,
        referenced_images=headers)
    evidence = list(headers) + ([seg] if seg is not None else [])
    try:
        sr = hd.sr.Comprehensive3DSR(
            evidence=evidence, content=report, series_instance_uid=hd.UID(), series_number=901,
            sop_instance_uid=hd.UID(), instance_number=1, manufacturer="MedView", is_complete=True,
            series_description=series_description[:64])
    except (ValueError, TypeError, AttributeError) as exc:
        raise SRError(f"highdicom refused to build the SR: {exc}") from exc
    sr.SoftwareVersions = __version__
    local = Dataset()
    local.CodingSchemeDesignator, local.CodingSchemeName = LOCAL_SCHEME, "MedView local codes"
    local.CodingSchemeResponsibleOrganization = "MedView"
    sr.CodingSchemeIdentificationSequence = [local]
    out_path = Path(out_path)
    out_path.parent.mkdir(parents=True, exist_ok=True)
    tmp = out_path.with_name(".tmp-" + out_path.name)
    sr.save_as(str(tmp), enforce_file_format=True)
    tmp.replace(out_path)
    return out_path


def _person_name(name: str) -> str:
    from medview.annotation.dicom_seg import _person_name as seg_person_name

    return seg_person_name(name) or "MedView^User"


# ---- reading ----------------------------------------------------------------------------------
_KIND_OF_GRAPHIC = {"ELLIPSE": "ellipse"}


def _record_from_outline(kind: str, ijk: np.ndarray) -> tuple[tuple, tuple, int]:
    """(p0, p1, normal axis) of a viewer measurement from the outline points (voxel ijk)."""
    if kind == "ruler":
        return tuple(float(v) for v in ijk[0]), tuple(float(v) for v in ijk[1]), 2
    spread = ijk.max(axis=0) - ijk.min(axis=0)
    normal = int(np.argmin(spread))
    lo, hi = ijk.min(axis=0), ijk.max(axis=0)
    lo[normal] = hi[normal] = float(np.mean(ijk[:, normal]))
    return tuple(float(v) for v in lo), tuple(float(v) for v in hi), normal


def _values_of(group) -> dict[str, float]:
    keys = {"410668003": "length_mm", "42798000": "area_mm2", "373098007": "mean", "386136009": "sd",
            "118565006": "volume_ml"}
    out = {}
    for m in group.get_measurements():
        k = keys.get(str(m.name.value))
        if k:
            out[k] = float(m.value)
    return out


def read_sr(path: str | Path, reference: Volume | None = None) -> SRContent:
    """Measurements and AI findings of an SR written by ``export_sr`` (or any TID 1500 report
    with planar ROIs, segment volumes and image-level probabilities). With ``reference`` (the
    series the SR references, loaded with medview.io) ROI outlines come back as voxel positions
    on it; the SR must reference that series."""
    import highdicom as hd
    import pydicom

    path = Path(path)
    try:
        sr = hd.sr.srread(str(path))
        report = hd.sr.MeasurementReport.from_sequence(sr.content)
    except Exception as exc:  # noqa: BLE001 - any unreadable SR is one message naming the file
        raise SRError(f"{path}: not a readable TID 1500 measurement report ({exc})") from exc
    evidence = {str(s[1]) for s in sr.get_evidence()}  # series UIDs of the referenced instances
    series_uid = next(iter(sorted(evidence)), "")
    headers_by_uid: dict[str, Any] = {}
    if reference is not None:
        ref_series = str(reference.meta.get("SeriesInstanceUID", ""))
        if ref_series and ref_series not in evidence:
            raise SRError(f"{path}: this SR references series {sorted(evidence)}, not {ref_series}")
        series_uid = ref_series or series_uid
        for f in dict.fromkeys(reference.meta.get("source_files") or []):
            ds = pydicom.dcmread(str(f), stop_before_pixels=True)
            headers_by_uid[str(ds.SOPInstanceUID)] = ds
    records: list[MeasurementRecord] = []
    for g in report.get_planar_roi_measurement_groups():
        roi = g.roi
        ftype = g.finding_type
        kind = str(ftype.value) if ftype is not None and ftype.scheme_designator == LOCAL_SCHEME else ""
        graphic = str(roi.graphic_type.value) if roi is not None else ""
        if kind not in ("ruler", "ellipse", "rect"):
            kind = _KIND_OF_GRAPHIC.get(graphic, "ruler" if len(roi.value) == 2 else "rect")
        values = _values_of(g)
        name = str(g.tracking_identifier or "") if hasattr(g, "tracking_identifier") else ""
        rec = MeasurementRecord(kind, values=values, name=name, tracking_uid=str(g.tracking_uid or ""))
        if reference is not None and roi is not None:
            if isinstance(roi, hd.sr.ImageRegion3D):
                world = np.asarray(roi.value, float)
            else:
                uid = str(roi.ContentSequence[0].ReferencedSOPSequence[0].ReferencedSOPInstanceUID)
                if uid not in headers_by_uid:
                    raise SRError(f"{path}: a region lies on image {uid}, which is not in the reference series")
                world = _scoord_to_world(headers_by_uid[uid], np.asarray(roi.value, float))
            ijk = reference.world_to_index(world)
            pts = ijk[:2] if kind == "ruler" else (ijk[:-1] if kind == "rect" and len(ijk) == 5 else ijk)
            rec.p0, rec.p1, rec.normal_axis = _record_from_outline(kind, pts)
        records.append(rec)
    for g in report.get_volumetric_roi_measurement_groups():
        seg_ref = g.referenced_segment
        number = None
        try:
            number = int(seg_ref[0].ReferencedSOPSequence[0].ReferencedSegmentNumber)
        except (AttributeError, IndexError, TypeError):
            pass
        name = str(g.tracking_identifier or "") if hasattr(g, "tracking_identifier") else ""
        records.append(MeasurementRecord("volume", values=_values_of(g), name=name, segment=number,
                                         tracking_uid=str(g.tracking_uid or "")))
    findings = [_finding_from(g) for g in report.get_image_measurement_groups()]
    return SRContent(records, [f for f in findings if f is not None], series_uid)


def _walk(items):
    for item in items:
        yield item
        yield from _walk(item.get("ContentSequence", []))


def _finding_from(group) -> Finding | None:
    """A Finding from a TID 1501 group: TID 4019 text items anywhere below it give the model."""
    model_id = version = sha = name = ""
    probs, top = {}, None
    for item in _walk(group[0].get("ContentSequence", [])):
        concept = item.ConceptNameCodeSequence[0] if "ConceptNameCodeSequence" in item else None
        if concept is None:
            continue
        code, text = str(concept.CodeValue), str(item.get("TextValue", ""))
        if code == "111001":
            name = text
        elif code == "111003":
            version = text
        elif code == "111002" and text.startswith("model_id="):
            model_id = text.split("=", 1)[1]
        elif code == "111002" and text.startswith("weights_sha256="):
            sha = text.split("=", 1)[1]
        elif code.startswith("prob:") and "MeasuredValueSequence" in item:
            meaning = str(concept.CodeMeaning).removeprefix("Probability of ")
            probs[meaning] = float(item.MeasuredValueSequence[0].NumericValue)
        elif code == "121071" and "ConceptCodeSequence" in item:  # Finding
            top = str(item.ConceptCodeSequence[0].CodeMeaning)
    if not (probs or top):
        return None
    return Finding(model_id or name, version, sha, probs, top, name)


def read_sr_measurements(path: str | Path, reference: Volume | None = None) -> list[MeasurementRecord]:
    """The measurements of an SR (for the viewer: rulers/ROIs on ``reference``, segment volumes)."""
    return read_sr(path, reference).measurements
