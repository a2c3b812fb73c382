"""Does a model belong on this image? The manifest's acceptance declaration checked against a Volume.

A model declares what it accepts (``accepts`` in model.json, docs/MODEL_PACKAGE.md): DICOM
modalities, image channels (1 = grey, 3 = colour), optionally DICOM body parts, plus the
dimensionality (``input.dims``) and extent limit (``input.max_extent_mm``) of its input recipe.

The answer has three values:

- ``ok``: everything the model asks about is known about the image and matches;
- ``unverified``: the image says nothing about some of it (a NIfTI, PNG or JPEG has no modality;
  DICOM "OT" = "other" says nothing either, unless the model lists it): the model may run only
  after the user chooses it explicitly, and its result carries "input not verified for this
  model" with the unknown fields;
- ``refused``: a known mismatch (a CT series for an ultrasound model, a grey image for a colour
  model, a 2D image for a 3D model, a whole head for a crop model), with the reason.

No torch, no Qt; works on any object with ``manifest``/``modalities``/``dims`` (a ModelPackage).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

UNINFORMATIVE = ("", "OT")  # modalities that say nothing about what an image shows
NOT_VERIFIED = "input not verified for this model"


@dataclass
class InputCheck:
    verdict: str  # "ok" | "unverified" | "refused"
    reason: str = ""  # refused: the mismatch; unverified: what is unknown
    unknown: list[str] = field(default_factory=list)  # unverified: the fields the image does not state

    @property
    def ok(self) -> bool:
        return self.verdict == "ok"

    @property
    def refused(self) -> bool:
        return self.verdict == "refused"

    @property
    def verified(self) -> bool:
        return self.verdict == "ok"

    def note(self) -> str:
        """The line shown in the panel and written to prediction.json for an unverified input."""
        return f"{NOT_VERIFIED}: {self.reason}" if self.verdict == "unverified" else ""

    def to_json(self) -> dict[str, Any]:
        d: dict[str, Any] = {"verified": self.verified, "verdict": self.verdict}
        if self.verdict == "unverified":
            d["note"] = self.note()
            d["unknown"] = list(self.unknown)
        elif self.reason:
            d["reason"] = self.reason
        return d


def _as_list(v: Any) -> list[str]:
    if v is None:
        return []
    return [str(x) for x in (v if isinstance(v, list) else [v])]


def acceptance_errors(acc: Any) -> list[str]:
    """Schema problems of an ``accepts`` block (empty = valid)."""
    if acc is None:
        return []
    if not isinstance(acc, dict):
        return ["accepts must be an object"]
    errs = []
    mods = acc.get("modality")
    if mods is not None and (not isinstance(mods, list) or not all(isinstance(m, str) and m for m in mods)
                             or not mods):
        errs.append("accepts.modality must be a non-empty list of DICOM modality codes (\"*\" = any)")
    ch = acc.get("channels")
    if ch is not None and (not isinstance(ch, list) or not ch or not all(c in (1, 3) for c in ch)):
        errs.append("accepts.channels must be a list of 1 (grey) and/or 3 (colour)")
    bp = acc.get("body_part")
    if bp is not None and (not isinstance(bp, list) or not all(isinstance(b, str) and b for b in bp)):
        errs.append("accepts.body_part must be a list of DICOM BodyPartExamined values")
    unknown_keys = set(acc) - {"modality", "channels", "body_part"}
    if unknown_keys:
        errs.append(f"accepts has unknown keys: {', '.join(sorted(unknown_keys))}")
    return errs


def _extent_reason(package, volume) -> str:
    max_mm = package.manifest.get("input", {}).get("max_extent_mm")
    if not max_mm or package.dims != 3:
        return ""
    # A model trained on crops (e.g. around the hippocampus) finds structures anywhere in a whole
    # head and reports volumes that mean nothing: refuse instead of misleading.
    extent = [n * s for n, s in zip(volume.shape[2::-1], volume.spacing, strict=False)]
    if max(extent) <= float(max_mm):
        return ""
    shown = " x ".join(f"{e:.0f}" for e in extent)
    part = package.manifest.get("body_part") or "a region"
    return (f"made for crops up to {float(max_mm):.0f} mm across ({part}); "
            f"this series spans {shown} mm: crop the region first")


def check_input(package, volume) -> InputCheck:
    """``package``'s acceptance declaration against ``volume``; see the module docstring."""
    if not package.ok:
        return InputCheck("refused", package.reason)
    acc = package.accepts
    unknown: list[str] = []
    # modality
    mods = _as_list(acc.get("modality")) or ["*"]
    vm = str(getattr(volume, "modality", "") or "").upper()
    if "*" not in mods:
        if vm in [m.upper() for m in mods]:
            pass
        elif vm in UNINFORMATIVE:
            unknown.append(f"modality ({'not stated' if not vm else 'DICOM OT, other'}; "
                           f"model made for {', '.join(mods)})")
        else:
            return InputCheck("refused", f"made for {', '.join(mods)} images, this series is {vm}")
    # dimensionality
    if package.dims == 3 and volume.shape[0] < 2:
        return InputCheck("refused", "3D model; this series is a single 2D image")
    if package.dims == 3 and volume.is_rgb:
        return InputCheck("refused", "3D model; this series is a colour image")
    # channels
    channels = acc.get("channels")
    if channels:
        n = 3 if volume.is_rgb else 1
        if n not in channels:
            want = " or ".join("grey" if c == 1 else "colour" for c in channels)
            have = "a colour" if n == 3 else "a grey"
            return InputCheck("refused", f"made for {want} images, this is {have} image")
    # body part (checked only when the image states one)
    parts = _as_list(acc.get("body_part"))
    vb = str(volume.meta.get("BodyPartExamined", "") or "").upper()
    if parts and vb and vb not in [p.upper() for p in parts]:
        return InputCheck("refused", f"made for {', '.join(parts)}, this series shows {vb}")
    why = _extent_reason(package, volume)
    if why:
        return InputCheck("refused", why)
    if unknown:
        return InputCheck("unverified", "unknown " + "; ".join(unknown), [u.split(" ", 1)[0] for u in unknown])
    return InputCheck("ok")


def input_identity(volume) -> dict[str, Any]:
    """What prediction.json says about its input: path, series UID, patient (when known)."""
    meta = volume.meta
    keys = (("path", "source_path"), ("series_uid", "SeriesInstanceUID"), ("study_uid", "StudyInstanceUID"),
            ("patient_id", "PatientID"), ("patient_name", "PatientName"), ("modality", "Modality"),
            ("series_description", "SeriesDescription"))
    out: dict[str, Any] = {}
    for name, key in keys:
        v = meta.get(key)
        if v not in (None, ""):
            out[name] = str(v)
    out["shape"] = list(volume.shape)
    out["rgb"] = bool(volume.is_rgb)
    return out
