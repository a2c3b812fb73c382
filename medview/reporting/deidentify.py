"""De-identification per DICOM PS3.15 Annex E, Basic Application Level Confidentiality Profile.

The maintained library ``dicognito`` does the replacement part of the profile: every UID is
replaced by a new one derived from the original and the run's seed (so a study, its SEG and SR
keep referencing each other when de-identified in one run or with the same seed), names, IDs,
addresses and equipment are replaced by dummies, dates/times are shifted. On top of that this
module applies the profile's remaining actions from Table E.1-1 that dicognito leaves (remove
descriptions/comments, empty type-2 attributes), removes every private tag (the profile's
default) and records what was done in PatientIdentityRemoved, DeidentificationMethod and
DeidentificationMethodCodeSequence (CID 7050: 113100 Basic Application Confidentiality Profile).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

import pydicom
from pydicom.dataset import Dataset

METHOD = "PS3.15 E.1 Basic Profile (MedView, dicognito)"

# Table E.1-1 actions the replacement part does not cover: X = remove, Z = zero-length.
# (keyword, basic-profile action); the test checks these and the replaced ones by tag.
PROFILE_ACTIONS: dict[str, str] = {
    "PatientAge": "X", "PatientSize": "X", "PatientWeight": "X", "PatientSex": "Z",
    "EthnicGroup": "X", "AdditionalPatientHistory": "X", "PatientComments": "X", "Allergies": "X",
    "MedicalAlerts": "X", "PregnancyStatus": "X", "SmokingStatus": "X", "PatientState": "X",
    "StudyDescription": "X", "SeriesDescription": "X", "ProtocolName": "X", "ImageComments": "X",
    "StudyComments": "X", "PerformedProcedureStepDescription": "X", "RequestedProcedureDescription": "X",
    "AdmittingDiagnosesDescription": "X", "DerivationDescription": "X", "AcquisitionComments": "X",
    "OperatorsName": "X", "PerformingPhysicianName": "X", "NameOfPhysiciansReadingStudy": "X",
    "PhysiciansOfRecord": "X", "RequestingPhysician": "X", "InstitutionalDepartmentName": "X",
    "InstitutionAddress": "X", "DeviceSerialNumber": "X", "PatientAddress": "X",
    "OtherPatientNames": "X", "OtherPatientIDsSequence": "X", "PatientBirthName": "X",
    "PatientMotherBirthName": "X", "PatientTelephoneNumbers": "X", "MilitaryRank": "X",
    "Occupation": "X", "CountryOfResidence": "X", "RegionOfResidence": "X",
    "ReferencedPatientSequence": "X", "ReferencedStudySequence": "X", "RequestAttributesSequence": "X",
    "ReferringPhysicianName": "Z", "StudyID": "Z", "AccessionNumber": "Z",
    "ContentCreatorName": "Z", "PatientBirthTime": "X", "ReasonForStudy": "X",
}

# X/Z/D attributes that are type 1 in the Enhanced General Equipment module of enhanced
# multi-frame images and SEG: those get the profile's dummy value instead of being removed
_TYPE1_IN_ENHANCED = {"DeviceSerialNumber": "0"}

# type 2C attributes that many sources send empty although their condition (a paired body part)
# does not hold; the de-identified copy leaves them out so it validates
_EMPTY_2C = ("Laterality",)

# burned-in text: flagged, or typical of the modality / SOP class
_SECONDARY_CAPTURE_PREFIX = "1.2.840.10008.5.1.4.1.1.7"
_US_MODALITIES = {"US", "IVUS"}


class DeidError(ValueError):
    """A file cannot be de-identified for the reason in the message."""


@dataclass
class DeidResult:
    written: list[Path] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)


def burned_in_warning(ds: Dataset, name: str) -> str | None:
    """A warning when the pixels may carry identifying text the header profile cannot remove."""
    if str(ds.get("BurnedInAnnotation", "")).upper() == "YES":
        return f"{name}: BurnedInAnnotation=YES: the pixels show text that may identify the patient"
    sop = str(ds.get("SOPClassUID", ""))
    if sop.startswith(_SECONDARY_CAPTURE_PREFIX):
        return f"{name}: secondary capture: may contain burned-in text; check the pixels"
    if str(ds.get("Modality", "")).upper() in _US_MODALITIES:
        return f"{name}: ultrasound image: may contain burned-in text; check the pixels"
    return None


class Deidentifier:
    """One de-identification run: the same seed gives the same replacement UIDs/IDs/dates.

    keep_dates: leave dates/times as they are (Retain Longitudinal Temporal Information option);
    shift_days: shift every date by this many days instead of dicognito's random offset.
    """

    def __init__(self, seed: str | None = None, keep_dates: bool = False, shift_days: int | None = None):
        from dicognito.anonymizer import Anonymizer
        from dicognito.datetimeanonymizer import DateTimeAnonymizer

        self.keep_dates = keep_dates
        self._anon = Anonymizer(seed=seed)
        handlers = self._anon._element_handlers  # the library's handler list (public add_element_handler only adds)
        dated = [h for h in handlers if isinstance(h, DateTimeAnonymizer)]
        for h in dated:
            handlers.remove(h)
        if not keep_dates:
            if shift_days is not None:
                handlers.append(DateTimeAnonymizer(-24 * int(shift_days)))
            else:
                handlers.extend(dated)

    def describe(self) -> str:
        return self._anon.describe_actions()

    def dataset(self, ds: Dataset) -> Dataset:
        """De-identify *ds* in place and return it."""
        ds.remove_private_tags()
        self._anon.anonymize(ds)
        enhanced = "PerFrameFunctionalGroupsSequence" in ds or "SharedFunctionalGroupsSequence" in ds
        for kw, action in PROFILE_ACTIONS.items():
            if kw in ds:
                if enhanced and kw in _TYPE1_IN_ENHANCED:  # X/Z/D: type 1 there, so a dummy (D)
                    ds.data_element(kw).value = _TYPE1_IN_ENHANCED[kw]
                elif action == "X":
                    delattr(ds, kw)
                else:
                    ds.data_element(kw).value = None
        for kw in _EMPTY_2C:  # present-but-empty where the condition fails is an error (dciodvfy)
            if kw in ds and ds.data_element(kw).value in (None, ""):
                delattr(ds, kw)
        ds.PatientIdentityRemoved = "YES"
        ds.DeidentificationMethod = METHOD
        code = Dataset()
        code.CodeValue, code.CodingSchemeDesignator = "113100", "DCM"
        code.CodeMeaning = "Basic Application Confidentiality Profile"
        codes = [code]
        if self.keep_dates:
            keep = Dataset()
            keep.CodeValue, keep.CodingSchemeDesignator = "113106", "DCM"
            keep.CodeMeaning = "Retain Longitudinal Temporal Information Full Dates Option"
            codes.append(keep)
        ds.DeidentificationMethodCodeSequence = codes
        ds.LongitudinalTemporalInformationModified = "UNMODIFIED" if self.keep_dates else "MODIFIED"
        if "SOPInstanceUID" in ds and getattr(ds, "file_meta", None) is not None:
            ds.file_meta.MediaStorageSOPInstanceUID = ds.SOPInstanceUID
        return ds

    def file(self, src: str | Path, dst: str | Path) -> str | None:
        """De-identify one file; returns a burned-in-text warning or None."""
        try:
            ds = pydicom.dcmread(str(src))
        except Exception as exc:
            raise DeidError(f"{src}: not a readable DICOM file ({exc})") from exc
        warning = burned_in_warning(ds, Path(src).name)
        self.dataset(ds)
        Path(dst).parent.mkdir(parents=True, exist_ok=True)
        ds.save_as(str(dst), enforce_file_format=True)
        return warning


def _inputs(src: Path) -> Iterable[Path]:
    if src.is_file():
        yield src
        return
    for p in sorted(src.rglob("*")):
        if p.is_file() and p.name != "DICOMDIR":
            yield p


def deidentify_path(src: str | Path, out: str | Path, seed: str | None = None, keep_dates: bool = False,
                    shift_days: int | None = None) -> DeidResult:
    """De-identify a file or a folder tree into *out* (one file per input DICOM file).

    All files share one run, so UIDs are replaced consistently across a study and its SEG/SR.
    Files that are not DICOM are listed in ``skipped``; nothing is written for them.
    """
    src, out = Path(src), Path(out)
    if not src.exists():
        raise DeidError(f"{src}: no such file or folder")
    if out.resolve() == src.resolve() or (src.is_dir() and src.resolve() in out.resolve().parents):
        raise DeidError(f"{out}: the output must not be the input or inside it")
    deid = Deidentifier(seed=seed, keep_dates=keep_dates, shift_days=shift_days)
    if src.is_dir() and (src / "dataset.json").is_file():  # a training set from `medview export-training`
        return deidentify_training_set(src, out, deid)
    result = DeidResult()
    for i, f in enumerate(_inputs(src), 1):
        # output names carry no identifiers from the input path: a counter and the suffix only
        dst = out / (f"{i:05d}.dcm" if src.is_dir() else (f.name if f.suffix else f.name + ".dcm"))
        try:
            warning = deid.file(f, dst)
        except DeidError as exc:
            result.skipped.append(str(exc))
            continue
        result.written.append(dst)
        if warning:
            result.warnings.append(warning)
    return result


# ---- training sets (NIfTI + JSON: the identifiers live in the JSON sidecars) ----------------------
_REFERENCE_DROP = ("source_path", "source_files", "PatientName", "StudyDate", "SeriesDescription")
_PROVENANCE_DROP = ("reviewer", "reviewers", "imported_from")


def _replace_reference(deid: Deidentifier, ref: dict) -> dict:
    """A sidecar's image reference with the same replacements the DICOM files of this run get."""
    from pydicom.dataset import FileMetaDataset

    ds = Dataset()
    ds.file_meta = FileMetaDataset()  # dicognito expects a file's dataset
    for kw in ("PatientID", "StudyInstanceUID", "SeriesInstanceUID", "FrameOfReferenceUID", "Modality"):
        if ref.get(kw):
            setattr(ds, kw, str(ref[kw]))
    deid._anon.anonymize(ds)
    out = {k: v for k, v in ref.items() if k not in _REFERENCE_DROP}
    for kw in ("PatientID", "StudyInstanceUID", "SeriesInstanceUID", "FrameOfReferenceUID"):
        if kw in ds:
            out[kw] = str(ds.data_element(kw).value)
    return out


def deidentify_training_set(src: str | Path, out: str | Path, deid: Deidentifier | None = None) -> DeidResult:
    """Copy a training set (``medview export-training``: dataset.json, images/, labels/) without
    identifiers: cases renamed case_0001..., reviewer names and source paths removed, patient
    and UIDs in the sidecars replaced as in the DICOM files of the same run. The NIfTI voxels
    and geometry are copied unchanged (NIfTI headers carry no patient fields)."""
    import json
    import shutil

    src, out = Path(src), Path(out)
    deid = deid or Deidentifier()
    data = json.loads((src / "dataset.json").read_text(encoding="utf-8"))
    result = DeidResult()
    (out / "images").mkdir(parents=True, exist_ok=True)
    (out / "labels").mkdir(parents=True, exist_ok=True)
    entries = []
    for n, entry in enumerate(data.get("training", []), 1):
        case = f"case_{n:04d}"
        new = {k: v for k, v in entry.items() if k not in ("reviewer", "source_path")}
        new.update({"case": case, "image": f"images/{case}.nii.gz", "label": f"labels/{case}.nii.gz"})
        if entry.get("series_uid"):
            replaced = _replace_reference(deid, {"SeriesInstanceUID": entry["series_uid"]})
            new["series_uid"] = replaced["SeriesInstanceUID"]
        for key in ("image", "label"):
            shutil.copyfile(src / entry[key], out / new[key])
            result.written.append(out / new[key])
        sidecar = (src / entry["label"]).with_name(Path(entry["label"]).name.split(".")[0] + ".json")
        if sidecar.is_file():
            side = json.loads(sidecar.read_text(encoding="utf-8"))
            if isinstance(side.get("reference"), dict):
                side["reference"] = _replace_reference(deid, side["reference"])
            if isinstance(side.get("provenance"), dict):
                side["provenance"] = {k: v for k, v in side["provenance"].items() if k not in _PROVENANCE_DROP}
            side["deidentification"] = {"method": METHOD, "patient_identity_removed": True}
            dst = out / "labels" / f"{case}.json"
            dst.write_text(json.dumps(side, indent=2), encoding="utf-8")
            result.written.append(dst)
        entries.append(new)
    data["training"], data["numTraining"] = entries, len(entries)
    data["deidentification"] = {"method": METHOD, "patient_identity_removed": True}
    (out / "dataset.json").write_text(json.dumps(data, indent=2), encoding="utf-8")
    result.written.append(out / "dataset.json")
    return result
