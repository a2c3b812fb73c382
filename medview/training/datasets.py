"""Data sets of the bundled models: file lists, labels and deterministic splits (no Qt, no torch).

Every split is a pure function of the sorted file names and a fixed seed, so the same command
gives the same split on every machine; the split is written into each model card.

Images are read with Pillow (2D) or SimpleITK (3D) into numpy arrays shaped as MedView's
``Volume`` holds them: grey ``(H, W)``, RGB ``(H, W, 3)``, volumes ``(z, y, x)``.
"""

from __future__ import annotations

import csv
import random
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from medview.config import data_dir

SEED = 20261122


@dataclass
class Sample:
    """One training example: an image file plus a class index or a label file."""

    image: Path
    target: int | Path | None = None
    group: str = ""  # samples of one group are never split apart (near-duplicates, one patient)
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def name(self) -> str:
        return self.image.name


@dataclass
class Split:
    train: list[Sample]
    val: list[Sample]
    test: list[Sample]
    description: str

    def summary(self) -> dict[str, int]:
        return {"train": len(self.train), "val": len(self.val), "test": len(self.test)}


def pooled_split_record(base: Split, k: int) -> dict[str, Any]:
    """The split as a card states it for a K-fold ensemble over ``base``'s train + validation."""
    n = len(base.train) + len(base.val)
    return {"description": f"{k}-fold cross-validation over the train + validation parts "
                           f"(group-aware, class-stratified) of: {base.description}",
            "train": n, "val": n, "test": [s.name for s in base.test]}


# ---------------------------------------------------------------------------------------------
# readers
def read_image(path: Path) -> np.ndarray:
    """A 2D image as uint8 ``(H, W)`` (grey) or ``(H, W, 3)`` (colour); palette/alpha dropped."""
    from PIL import Image

    with Image.open(path) as im:
        if im.mode in ("L", "I", "I;16", "F"):
            return np.asarray(im)
        if im.mode == "P":
            im = im.convert("L") if _palette_is_grey(im) else im.convert("RGB")
            return np.asarray(im)
        return np.asarray(im.convert("RGB"))


def _palette_is_grey(im) -> bool:
    pal = im.getpalette() or []
    trip = np.asarray(pal[: (len(pal) // 3) * 3]).reshape(-1, 3)
    return bool(np.all(trip[:, 0] == trip[:, 1]) and np.all(trip[:, 1] == trip[:, 2]))


def read_mask(path: Path, threshold: int = 127) -> np.ndarray:
    """A binary mask ``(H, W)`` uint8 in {0, 1} (JPEG masks are lossy: > threshold)."""
    a = read_image(path)
    if a.ndim == 3:
        a = a.max(axis=-1)
    return (a > threshold).astype(np.uint8)


def read_volume(path: Path, orientation: str | None = None) -> np.ndarray:
    """A 3D NIfTI / MHA / NRRD as a ``(z, y, x)`` array (SimpleITK, the order MedView uses);
    with ``orientation`` (an ITK code such as "RAS") its axes permuted/flipped to point there."""
    import SimpleITK as sitk

    img = sitk.ReadImage(str(path))
    return sitk.GetArrayFromImage(sitk.DICOMOrient(img, orientation) if orientation else img)


# ---------------------------------------------------------------------------------------------
# split helpers
def split_groups(
    samples: list[Sample], fractions: tuple[float, float, float], seed: int = SEED, stratify: bool = True
) -> tuple[list[Sample], list[Sample], list[Sample]]:
    """Deterministic group-aware (and class-stratified) train/val/test split.

    Samples are sorted by name; groups (``Sample.group`` or the name) are shuffled with ``seed``
    inside each class and dealt to the three parts by the fractions.
    """
    samples = sorted(samples, key=lambda s: str(s.image))
    groups: dict[str, list[Sample]] = {}
    for s in samples:
        groups.setdefault(s.group or str(s.image), []).append(s)
    by_class: dict[Any, list[str]] = {}
    for g, members in sorted(groups.items()):
        key = members[0].target if (stratify and isinstance(members[0].target, int)) else 0
        by_class.setdefault(key, []).append(g)
    rng = random.Random(seed)
    parts: tuple[list[Sample], list[Sample], list[Sample]] = ([], [], [])
    for key in sorted(by_class, key=str):
        names = by_class[key]
        rng.shuffle(names)
        total = sum(len(groups[g]) for g in names)
        n_test = round(total * fractions[2])
        n_val = round(total * fractions[1])
        counts = [0, 0, 0]
        for g in names:
            size = len(groups[g])
            if counts[2] + size <= n_test and counts[2] < n_test:
                part = 2
            elif counts[1] + size <= n_val and counts[1] < n_val:
                part = 1
            else:
                part = 0
            counts[part] += size
            parts[part].extend(groups[g])
    return tuple(sorted(p, key=lambda s: str(s.image)) for p in parts)  # type: ignore[return-value]


# ---------------------------------------------------------------------------------------------
# the data sets
XRAY_CLASSES = ["chest", "abdomen"]


def xray_view(root: Path | None = None) -> Split:
    """Open-i chest vs abdomen: train = TRAIN minus a fixed 15% for checkpoint choice;
    test = VAL + TEST (never used for training or model selection)."""
    base = (root or data_dir()) / "xray-chest-abdomen"
    folders = {"openI_CXR": 0, "openI_abd_xray": 1}

    def listed(part: str) -> list[Sample]:
        out = []
        for folder, cls in folders.items():
            for p in sorted((base / part / folder).glob("*.png")):
                out.append(Sample(p, cls))
        return out

    train_all = listed("TRAIN")
    test = listed("VAL")
    for p in sorted((base / "TEST").glob("*.png")):
        test.append(Sample(p, 0 if p.name.lower().startswith("chest") else 1))
    train, val, _ = split_groups(train_all, (0.85, 0.15, 0.0))
    return Split(train, val, test, (
        "train: TRAIN minus validation; validation (checkpoint choice): 15% of TRAIN per class "
        f"(seeded shuffle of sorted names, seed {SEED}); test: VAL + TEST folders (12 images)"
    ))


def hippocampus(root: Path | None = None) -> Split:
    base = (root or data_dir()) / "mr-hippocampus"
    samples = [Sample(p, base / "labels" / p.name) for p in sorted((base / "images").glob("*.nii.gz"))]
    train, val, test = split_groups(samples, (0.7, 0.1, 0.2), stratify=False)
    return Split(train, val, test, (
        f"sorted case names, seeded shuffle (seed {SEED}): 70% train / 10% validation "
        "(checkpoint choice) / 20% test"
    ))


def drive(root: Path | None = None) -> Split:
    """DRIVE training images 21-40 (the only ones with labels): 14 train / 2 val / 4 test."""
    base = (root or data_dir()) / "fundus-drive" / "training"
    samples = []
    for p in sorted((base / "images").glob("*_training.tif")):
        n = p.name.split("_")[0]
        samples.append(Sample(p, base / "1st_manual" / f"{n}_manual1.gif",
                              extra={"fov": base / "mask" / f"{n}_training_mask.gif"}))
    train, val, test = split_groups(samples, (0.7, 0.1, 0.2), stratify=False)
    return Split(train, val, test, (
        f"DRIVE training images 21-40, sorted, seeded shuffle (seed {SEED}): 14 train / 2 validation "
        "(checkpoint choice) / 4 held-out test; metrics inside the field-of-view mask"
    ))


def kvasir(root: Path | None = None) -> Split:
    base = (root or data_dir()) / "endoscopy-kvasir-seg"
    samples = [Sample(p, base / "masks" / p.name) for p in sorted((base / "images").glob("*.jpg"))]
    train, val, test = split_groups(samples, (0.8, 0.05, 0.15), stratify=False)
    return Split(train, val, test, (
        f"sorted names, seeded shuffle (seed {SEED}): 80% train / 5% validation (checkpoint choice) / "
        "15% test; masks thresholded at 127 (lossy JPEG)"
    ))


BUSI_CLASSES = ["normal", "benign", "malignant"]


def busi_groups(paths: list[Path], size: int = 64, threshold: float = 0.99) -> dict[Path, str]:
    """Near-duplicate groups: images whose 64 px grey versions correlate > threshold (union-find)."""
    from PIL import Image

    vecs = []
    for p in paths:
        with Image.open(p) as im:
            a = np.asarray(im.convert("L").resize((size, size), Image.BILINEAR), dtype=np.float64).ravel()
        a = a - a.mean()
        vecs.append(a / (np.linalg.norm(a) + 1e-8))
    m = np.stack(vecs)
    corr = m @ m.T
    parent = list(range(len(paths)))

    def find(i: int) -> int:
        while parent[i] != i:
            parent[i] = parent[parent[i]]
            i = parent[i]
        return i

    ii, jj = np.nonzero(np.triu(corr > threshold, k=1))
    for i, j in zip(ii, jj, strict=False):
        ri, rj = find(int(i)), find(int(j))
        if ri != rj:
            parent[max(ri, rj)] = min(ri, rj)
    return {p: f"g{find(k):04d}" for k, p in enumerate(paths)}


def busi(root: Path | None = None) -> Split:
    base = (root or data_dir()) / "us-breast-busi"
    paths, labels = [], []
    for cls, name in enumerate(BUSI_CLASSES):
        for p in sorted((base / name).glob("*.png")):
            if "_mask" in p.name:
                continue
            paths.append(p)
            labels.append(cls)
    groups = busi_groups(paths)
    samples = [Sample(p, c, group=groups[p]) for p, c in zip(paths, labels, strict=False)]
    train, val, test = split_groups(samples, (0.7, 0.1, 0.2))
    n_groups = len(set(groups.values()))
    return Split(train, val, test, (
        f"near-duplicate groups (grey 64x64 correlation > 0.99, union-find; {n_groups} groups for "
        f"{len(paths)} images) never straddle parts; per class, seeded shuffle of sorted groups "
        f"(seed {SEED}): 70% train / 10% validation (checkpoint choice) / 20% test"
    ))


PH2_CLASSES = ["common_nevus", "atypical_nevus", "melanoma"]


def ph2_labels(root: Path | None = None) -> dict[str, int]:
    base = (root or data_dir()) / "dermoscopy-ph2"
    with open(base / "labels.csv", newline="") as f:
        return {row["image"]: PH2_CLASSES.index(row["class"]) for row in csv.DictReader(f)}


def ph2(root: Path | None = None, segmentation: bool = False) -> Split:
    """PH2: the SAME class-stratified split for the segmenter and the classifier, so the
    classifier initialised from the segmenter never saw a test image."""
    base = (root or data_dir()) / "dermoscopy-ph2"
    labels = ph2_labels(root)
    samples = []
    for name, cls in sorted(labels.items()):
        img = base / "images" / f"{name}.jpg"
        mask = base / "lesion_masks" / f"{name}_lesion.png"
        samples.append(Sample(img, cls, extra={"mask": mask}))
    train, val, test = split_groups(samples, (0.6, 0.15, 0.25))
    if segmentation:
        for part in (train, val, test):
            for s in part:
                s.extra["class"] = s.target
                s.target = s.extra["mask"]
    return Split(train, val, test, (
        f"class-stratified, sorted names, seeded shuffle (seed {SEED}): 60% train / 15% validation "
        "(checkpoint choice) / 25% test; the same split for skin-lesion and skin-lesion-seg"
    ))


DR_CLASSES = ["none", "mild", "moderate", "severe", "proliferative"]
KL_CLASSES = ["KL0", "KL1", "KL2", "KL3", "KL4"]


def fundus_dr(root: Path | None = None) -> Split:
    """fundus-dr: grouped BY PATIENT (both eyes always in the same part), stratified by the
    grade of the patient's first image: 65% train / 15% validation / 20% test."""
    base = (root or data_dir()) / "fundus-dr"
    samples = []
    with open(base / "labels.csv", newline="") as f:
        for row in csv.DictReader(f):
            samples.append(Sample(base / "images" / row["image"], int(row["dr_grade"]), group=row["patient"]))
    train, val, test = split_groups(samples, (0.65, 0.15, 0.2))
    n_pat = len({s.group for s in samples})
    return Split(train, val, test, (
        f"by patient ({n_pat} patients, {len(samples)} images; both eyes of a patient always in one part), "
        f"stratified by grade, seeded shuffle of sorted patients (seed {SEED}): 65% train / 15% validation "
        "(checkpoint choice, referable-DR threshold) / 20% held-out test"
    ))


def knee_kl(root: Path | None = None) -> Split:
    """xray-knee-kl: the source's train folder (capped at 500 per grade) trains; the source's val
    folder (other patients, natural grade mix) is split BY PATIENT (7-digit OAI id, both knees
    together) in halves: validation (checkpoint choice, OA-present threshold) and held-out test."""
    base = (root or data_dir()) / "xray-knee-kl"

    def read(part: str) -> list[Sample]:
        out = []
        for g in range(5):
            for p in sorted((base / part / str(g)).glob("*.png")) + sorted((base / part / str(g)).glob("*.jpg")):
                out.append(Sample(p, g, group=p.stem[:7]))
        return out

    train = read("train")
    rest, val, test = split_groups(read("val"), (0.0, 0.5, 0.5))
    val = sorted(val + rest, key=lambda s: str(s.image))  # rounding leftovers go to validation
    return Split(train, val, test, (
        "the source's train folder (first 500 per grade by name, grade 4 has 173) for training; the "
        "source's val folder (patients disjoint from train, natural grade mix) split by patient "
        f"(7-digit OAI id, both knees together), stratified by grade, seeded shuffle (seed {SEED}): "
        "half validation (checkpoint choice, OA-present threshold), half held-out test"
    ))
