"""What `medview infer` and the campaign batch write for one prediction, and how a failed case
is said in one line. (Kept apart from the commands so the campaign batch can use them without
importing the command-line module.)"""

from __future__ import annotations

import json
from pathlib import Path


class NothingToRun(Exception):
    """The path holds no series that can be run; the message names it and the reason."""


def _save_nifti(volume, path: Path) -> None:
    """The one place `medview infer` writes a NIfTI output (heatmaps) on the input geometry."""
    from medview.io import save_volume

    save_volume(volume, path)


def _save_segmentation(pred, image, path: Path) -> None:
    """segmentation.nii.gz + segmentation.json: the label sidecar (names, colours, provenance,
    reference) that medview.annotation.nifti reads, so `export-seg` names the segments."""
    from medview.annotation.correction import edit_prediction
    from medview.annotation.nifti import save_nifti

    lm, _ = edit_prediction(pred, image)
    save_nifti(lm, path)


def write_outputs(pred, out_dir: Path, image=None) -> list[str]:
    """prediction.json + segmentation (with its label sidecar) / gradcam / uncertainty NIfTI on the
    input geometry. ``image`` (the Volume it ran on) gives the sidecar's reference."""
    out_dir.mkdir(parents=True, exist_ok=True)
    written = []
    if pred.labels is not None:
        _save_segmentation(pred, image if image is not None else pred.labels, out_dir / "segmentation.nii.gz")
        written += ["segmentation.nii.gz", "segmentation.json"]
    if pred.heatmap is not None:
        name = "uncertainty.nii.gz" if pred.heatmap_kind == "uncertainty" else "gradcam.nii.gz"
        _save_nifti(pred.heatmap, out_dir / name)
        written.append(name)
    js = pred.to_json()
    js["files"] = written
    (out_dir / "prediction.json").write_text(json.dumps(js, indent=2) + "\n", encoding="utf-8")
    return ["prediction.json", *written]


def one_line(exc: BaseException) -> str:
    """A failure as one line: LoadError / InferenceError messages as they are (they name the file
    and the reason), anything else with its type so the cause stays findable."""
    from medview.inference.package import PackageError
    from medview.inference.pipeline import InferenceError
    from medview.io import LoadError

    text = " ".join(str(exc).split()) or type(exc).__name__
    if isinstance(exc, (LoadError, InferenceError, PackageError, NothingToRun)):
        return text
    kind = type(exc).__name__ if type(exc).__module__ == "builtins" else f"{type(exc).__module__}.{type(exc).__name__}"
    return f"cannot read or process it ({kind}: {text})"
