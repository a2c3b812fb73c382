"""Read an annotation training-set export for fine-tuning (``medview train ID --data DIR``).

Layout (written by the annotation export): ``DIR/images/<case>.nii.gz`` and
``DIR/labels/<case>.nii.gz`` on the same grid, plus ``DIR/dataset.json``. The pairing comes from
``dataset.json["training"]`` (MSD style: ``[{"image": ..., "label": ...}]``) when present, else
from equal file names in images/ and labels/. 3D recipes take each case as one volume; 2D
recipes take every slice that has any label as one image (RGB NIfTI vector images stay RGB).
The split is deterministic: sorted cases, seeded shuffle, 20% (at least one) for validation.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from medview.training import datasets


class ExportError(ValueError):
    """The folder is not a usable training-set export; the message says why."""


def _cases(folder: Path) -> list[tuple[Path, Path]]:
    meta = folder / "dataset.json"
    pairs: list[tuple[Path, Path]] = []
    if meta.is_file():
        info = json.loads(meta.read_text())
        for entry in info.get("training", []) or []:
            if isinstance(entry, dict) and "image" in entry and "label" in entry:
                pairs.append(((folder / entry["image"]).resolve(), (folder / entry["label"]).resolve()))
    if not pairs:
        img_dir, lab_dir = folder / "images", folder / "labels"
        if not img_dir.is_dir() or not lab_dir.is_dir():
            raise ExportError(f"{folder}: expected images/ and labels/ folders (and dataset.json)")
        for p in sorted(img_dir.iterdir()):
            if p.name.endswith((".nii.gz", ".nii")) and (lab_dir / p.name).is_file():
                pairs.append((p, lab_dir / p.name))
    if not pairs:
        raise ExportError(f"{folder}: no image/label pairs found")
    for img, lab in pairs:
        if not img.is_file() or not lab.is_file():
            raise ExportError(f"{folder}: missing file {img if not img.is_file() else lab}")
    return sorted(pairs, key=lambda t: t[0].name)


def _read(path: Path) -> tuple[np.ndarray, bool]:
    import SimpleITK as sitk

    img = sitk.ReadImage(str(path))
    arr = sitk.GetArrayFromImage(img)
    rgb = img.GetNumberOfComponentsPerPixel() in (3, 4)
    if img.GetDimension() == 2:
        arr = arr[np.newaxis]
    return arr, rgb


def export_split(folder: Path, recipe) -> datasets.Split:
    if recipe.kind == "classification":
        raise ExportError(f"{recipe.id} is a classifier; an annotation export holds label maps, "
                          "so only segmentation models can be fine-tuned with --data")
    samples: list[datasets.Sample] = []
    for img_path, lab_path in _cases(Path(folder)):
        image, rgb = _read(img_path)
        label, _ = _read(lab_path)
        if label.shape[:3] != image.shape[:3]:
            raise ExportError(f"{lab_path}: label grid {label.shape[:3]} differs from image {image.shape[:3]}")
        n_out = int(recipe.manifest["network"]["args"].get("out_channels", 2))
        if int(label.max()) >= n_out:
            raise ExportError(f"{lab_path}: label value {int(label.max())} but {recipe.id} knows only values "
                              f"0..{n_out - 1}")
        case = img_path.name.split(".")[0]
        if recipe.kind == "seg3d":
            samples.append(datasets.Sample(img_path, lab_path, group=case,
                                           extra={"array": image, "label_array": label, "rgb": False}))
            continue
        for k in range(image.shape[0]):
            if not label[k].any():
                continue
            samples.append(datasets.Sample(Path(f"{img_path}#{k:04d}"), lab_path, group=case,
                                           extra={"array": image[k], "label_array": label[k], "rgb": rgb}))
    if len(samples) < 2:
        raise ExportError(f"{folder}: needs at least two labelled images/slices to fine-tune (found {len(samples)})")
    train, val, _ = datasets.split_groups(samples, (0.8, 0.2, 0.0), stratify=False)
    if not val:
        val = [train.pop()]
    if not train:
        train = [val[0]]
    return datasets.Split(train, val, [], f"annotation export {folder}: {len(train)} train / {len(val)} validation "
                          f"(sorted cases, seeded shuffle, seed {datasets.SEED})")
