"""The bundled models: manifest, data, network and training settings of each, in one table.

A recipe is everything ``medview train ID`` needs; ``medview evaluate ID`` reuses its split.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass, field
from typing import Any, Callable

from medview.training import datasets

UNET2D = {"spatial_dims": 2, "channels": [16, 32, 64, 128, 256], "strides": [2, 2, 2, 2], "num_res_units": 2}


@dataclass
class Recipe:
    id: str
    kind: str  # classification | seg2d | seg3d
    manifest: dict[str, Any]
    split: Callable[..., datasets.Split]
    minutes: float
    batch_size: int
    lr: float
    patch: tuple[int, ...] | None = None
    max_epochs: int = 1000
    val_every: int = 1
    augment: dict[str, Any] = field(default_factory=dict)
    select: str = ""  # validation metric used to choose the checkpoint
    positive: str | None = None  # classifier's class of interest (melanoma)
    card: dict[str, Any] = field(default_factory=dict)
    init_from: str | None = None  # default initialisation (another bundled model id)
    calibrate: str | None = None  # "temperature" | "temperature+bias": fitted on validation, folded in
    # graded classifiers: loss = CE + ordinal_weight * (expected grade - grade)^2, so the softmax
    # learns the order of the grades (a near miss costs less than a far one) and the expected
    # grade sum_k k p_k is a regression output trained as such
    ordinal_weight: float = 0.0
    # > 1: a fold ensemble (medview.training.folds): that many members, each trained on the other
    # folds of train + validation and chosen on its own fold; the test part stays out of it
    folds: int = 1
    # where a fold ensemble fits its calibration / ordinal cut points / flag threshold: "pooled"
    # (every out-of-fold prediction) or "val" (those of the validation part's images only, where
    # that part alone keeps the population's class mix)
    cv_fit: str = "pooled"

    def new_manifest(self) -> dict[str, Any]:
        m = copy.deepcopy(self.manifest)
        if self.folds > 1:
            m["network"]["members"] = self.folds
        return m


def _manifest(id_, name, task, modality, body_part, arch, args, inp, out, gradcam=None) -> dict[str, Any]:
    m = {
        "schema_version": 1, "id": id_, "name": name, "version": "1.0.0", "task": task,
        "modality": modality, "body_part": body_part,
        "network": {"architecture": arch, "args": args},
        "input": inp, "output": out,
        "weights": {"file": "weights.safetensors", "sha256": "0" * 64},
    }
    if gradcam:
        m["gradcam_layer"] = gradcam
    return m


RECIPES: dict[str, Recipe] = {}


def _add(r: Recipe) -> None:
    RECIPES[r.id] = r


_add(Recipe(
    id="xray-view", kind="classification",
    manifest=_manifest(
        "xray-view", "Radiograph view: chest vs abdomen", "classification", ["CR", "DX", "DR", "RG", "OT", ""],
        "chest / abdomen", "resnet10",
        {"spatial_dims": 2, "n_input_channels": 1, "num_classes": 2, "conv1_t_stride": 2},
        {"dims": 2, "channels": "grey", "size": [224, 224], "spacing": None, "orientation": None,
         "normalization": {"kind": "zscore"}},
        {"classes": datasets.XRAY_CLASSES, "activation": "softmax"}, gradcam="layer4"),
    split=datasets.xray_view, minutes=4, batch_size=16, lr=1e-3, max_epochs=80,
    augment={"flip_h": True, "rotate_deg": 10, "scale": 0.1, "shift": 0.08, "invert": 0.5, "gain": 0.15},
    select="accuracy",
))

_add(Recipe(
    id="hippocampus", kind="seg3d",
    manifest=_manifest(
        "hippocampus", "Hippocampus anterior / posterior (MSD Task04)", "segmentation", ["MR", ""],
        "brain (hippocampus crop)", "UNet",
        {"spatial_dims": 3, "in_channels": 1, "out_channels": 3, "channels": [16, 32, 64, 128, 256],
         "strides": [2, 2, 2, 2], "num_res_units": 2},
        {"dims": 3, "channels": "grey", "size": None, "spacing": None, "orientation": "RAS",
         "normalization": {"kind": "zscore"}, "roi_size": [48, 64, 48], "pad_to_multiple": 16,
         "max_extent_mm": 90},
        {"labels": [{"value": 1, "name": "anterior hippocampus", "color": [255, 200, 0]},
                    {"value": 2, "name": "posterior hippocampus", "color": [0, 180, 255]}],
         "activation": "softmax"}),
    split=datasets.hippocampus, minutes=14, batch_size=4, lr=2e-3, patch=(48, 64, 48), val_every=2,
    augment={"gain": 0.1}, select="mean_dice",
))

_add(Recipe(
    id="retina-vessels", kind="seg2d",
    manifest=_manifest(
        "retina-vessels", "Retinal vessel segmentation (DRIVE)", "segmentation", ["OP", "OT", "XC", ""],
        "eye fundus", "UNet", {**UNET2D, "in_channels": 1, "out_channels": 2},
        {"dims": 2, "channels": "green", "size": None, "spacing": None, "orientation": None,
         "normalization": {"kind": "local_contrast", "sigma": 8}, "roi_size": [128, 128], "pad_to_multiple": 16},
        {"labels": [{"value": 1, "name": "vessel", "color": [255, 64, 64]}], "activation": "softmax",
         "threshold": 0.5, "tta": "dihedral", "fov_threshold": 0.08, "tta_default": "fast"}),
    split=datasets.drive, minutes=30, batch_size=16, lr=2e-3, patch=(96, 96), val_every=5,
    augment={"flip_h": True, "flip_v": True, "rot90": True, "gain": 0.15}, select="f1",
))

_add(Recipe(
    id="polyp", kind="seg2d",
    manifest=_manifest(
        "polyp", "Colonoscopy polyp segmentation (Kvasir-SEG)", "segmentation", ["ES", "OT", "XC", ""],
        "colon (endoscopy)", "UNet", {**UNET2D, "in_channels": 3, "out_channels": 2},
        {"dims": 2, "channels": "rgb", "size": [160, 160], "spacing": None, "orientation": None,
         "normalization": {"kind": "zscore"}, "roi_size": [160, 160], "pad_to_multiple": 16},
        {"labels": [{"value": 1, "name": "polyp", "color": [0, 255, 120]}], "activation": "softmax"}),
    split=datasets.kvasir, minutes=14, batch_size=16, lr=2e-3, patch=(160, 160), val_every=1,
    augment={"flip_h": True, "flip_v": True, "rot90": True, "rotate_deg": 15, "scale": 0.1, "gain": 0.15,
             "per_channel": True, "fill": "reflection"},
    select="dice",
))

_add(Recipe(
    id="breast-us", kind="classification",
    manifest=_manifest(
        "breast-us", "Breast ultrasound: normal / benign / malignant (BUSI)", "classification", ["US", "OT", ""],
        "breast", "resnet10", {"spatial_dims": 2, "n_input_channels": 1, "num_classes": 3, "conv1_t_stride": 2},
        {"dims": 2, "channels": "grey", "size": [128, 128], "spacing": None, "orientation": None,
         "normalization": {"kind": "zscore"}},
        {"classes": datasets.BUSI_CLASSES, "activation": "softmax"}, gradcam="layer4"),
    split=datasets.busi, minutes=11, batch_size=32, lr=1e-3, max_epochs=200,
    augment={"flip_h": True, "rotate_deg": 10, "scale": 0.1, "shift": 0.06, "gain": 0.15},
    select="macro_auc", calibrate="temperature+bias",
))

_add(Recipe(
    id="skin-lesion-seg", kind="seg2d",
    manifest=_manifest(
        "skin-lesion-seg", "Skin lesion segmentation (PH2 dermoscopy)", "segmentation", ["XC", "OT", ""],
        "skin", "UNet", {**UNET2D, "in_channels": 3, "out_channels": 2},
        {"dims": 2, "channels": "rgb", "size": [192, 192], "spacing": None, "orientation": None,
         "normalization": {"kind": "zscore"}, "roi_size": [192, 192], "pad_to_multiple": 16},
        {"labels": [{"value": 1, "name": "lesion", "color": [255, 160, 0]}], "activation": "softmax",
         "keep_largest": True}),
    split=lambda root=None: datasets.ph2(root, segmentation=True), minutes=9, batch_size=8, lr=2e-3,
    patch=(192, 192), val_every=2,
    augment={"flip_h": True, "flip_v": True, "rot90": True, "rotate_deg": 20, "scale": 0.1, "gain": 0.15,
             "per_channel": True, "fill": "reflection"},
    select="dice",
))

_add(Recipe(
    id="skin-lesion", kind="classification",
    manifest=_manifest(
        "skin-lesion", "Dermoscopy: common nevus / atypical nevus / melanoma (PH2)", "classification",
        ["XC", "OT", ""], "skin", "UNetEncoderClassifier",
        {**UNET2D, "in_channels": 3, "num_classes": 3, "dropout": 0.2},
        {"dims": 2, "channels": "rgb", "size": [192, 192], "spacing": None, "orientation": None,
         "normalization": {"kind": "zscore"}},
        {"classes": datasets.PH2_CLASSES, "activation": "softmax", "tta": "dihedral", "tta_default": "fast"},
        gradcam="model.0"),  # chosen on validation: Grad-CAM mass inside the PH2 lesion (docs in the card)
    split=datasets.ph2, minutes=6, batch_size=16, lr=1e-3, max_epochs=300, folds=5,
    augment={"flip_h": True, "flip_v": True, "rot90": True, "rotate_deg": 20, "scale": 0.1, "shift": 0.05,
             "gain": 0.15, "per_channel": True, "fill": "reflection"},
    select="melanoma_auc_plus_acc", positive="melanoma", calibrate="temperature",
    init_from="skin-lesion-seg",  # its encoder, trained on the same training images (`--scratch` to compare)
))

_add(Recipe(
    id="knee-oa", kind="classification",
    manifest=_manifest(
        "knee-oa", "Knee osteoarthritis: Kellgren-Lawrence grade KL0-KL4", "classification",
        ["CR", "DX", "DR", "RG", "OT", ""], "knee", "resnet10",
        {"spatial_dims": 2, "n_input_channels": 1, "num_classes": 1, "conv1_t_stride": 2, "widen_factor": 0.5},
        {"dims": 2, "channels": "grey", "size": [128, 128], "spacing": None, "orientation": None,
         "normalization": {"kind": "zscore"}},
        # an ordered-probit head: one regressed KL value, cut points and sigma fitted on validation;
        # run at "accurate" (the mirror mean) by default, the setting the head is fitted at (chosen on validation)
        {"classes": datasets.KL_CLASSES, "activation": "ordinal_probit", "tta": "hflip", "tta_default": "accurate",
         "ordinal": {"cut_points": [0.5, 1.5, 2.5, 3.5], "sigma": 0.5},
         "grading": {"scale": "KL", "words": ["none", "doubtful", "minimal", "moderate", "severe"],
                     "flag": {"name": "OA present", "min_grade": 2, "threshold": 0.5}}},
        gradcam="layer2"),  # chosen on validation: Grad-CAM mass on the joint space (docs in the card)
    split=datasets.knee_kl, minutes=15, batch_size=32, lr=1e-3, max_epochs=200,
    augment={"flip_h": True, "rotate_deg": 8, "scale": 0.08, "shift": 0.05, "gain": 0.15},
    select="qwk",
    cv_fit="val",  # a fold ensemble fits its head on the validation knees: train is capped per grade
))

_add(Recipe(
    id="dr-grade", kind="classification",
    manifest=_manifest(
        "dr-grade", "Diabetic retinopathy grade (ICDR 0-4) from a fundus photograph", "classification",
        ["OP", "OT", "XC", ""], "eye fundus", "resnet10",
        {"spatial_dims": 2, "n_input_channels": 3, "num_classes": 1, "conv1_t_stride": 2, "widen_factor": 0.5},
        {"dims": 2, "channels": "rgb", "size": [256, 256], "spacing": None, "orientation": None,
         "crop": {"kind": "field_of_view", "level": 0.1},
         "normalization": {"kind": "local_contrast", "sigma": 10}},
        # an ordered-probit head: one regressed grade, cut points and sigma fitted on validation;
        # run at "accurate" (the mirror mean) by default, the setting the head is fitted at (chosen on validation)
        {"classes": datasets.DR_CLASSES, "activation": "ordinal_probit", "tta": "hflip", "tta_default": "accurate",
         "ordinal": {"cut_points": [0.5, 1.5, 2.5, 3.5], "sigma": 0.5},
         "grading": {"scale": "DR", "words": ["no DR", "mild NPDR", "moderate NPDR", "severe NPDR",
                                              "proliferative DR"],
                     "flag": {"name": "referable DR", "min_grade": 2, "threshold": 0.5}}},
        gradcam="layer3"),  # chosen on validation: Grad-CAM mass on the retina (docs in the card)
    split=datasets.fundus_dr, minutes=15, batch_size=16, lr=1e-3, max_epochs=300,
    augment={"flip_h": True, "flip_v": True, "rot90": True, "rotate_deg": 20, "scale": 0.1, "shift": 0.05,
             "gain": 0.2, "per_channel": True},
    select="qwk_plus_flag_auc",
))


_add(Recipe(  # promptable: trained by medview.interactive.training with simulated clicks
    id="interactive-2d", kind="interactive2d",
    manifest=_manifest(
        "interactive-2d", "Interactive segmentation from clicks, boxes and scribbles (2D)",
        "interactive-segmentation", ["*"], "any (polyps, skin lesions, MR structures)", "UNet",
        {**UNET2D, "in_channels": 6, "out_channels": 2},
        {"dims": 2, "channels": "rgb", "size": [128, 128], "spacing": None, "orientation": None,
         "normalization": {"kind": "zscore"}},
        {"labels": [{"value": 1, "name": "object", "color": [255, 80, 200]}], "activation": "softmax",
         "threshold": 0.5, "guidance": ["positive", "negative", "previous_mask"]}),
    split=lambda root=None: datasets.kvasir(root), minutes=30, batch_size=16, lr=2e-3, val_every=5,
    select="mean_dice_3_5_clicks", init_from="polyp",
))
RECIPES["interactive-2d"].manifest["accepts"] = {"modality": ["*"], "channels": [1, 3]}

_add(Recipe(  # promptable 3D: trained by medview.interactive.training3d with simulated clicks
    id="interactive-3d", kind="interactive3d",
    manifest=_manifest(
        "interactive-3d", "Interactive segmentation from clicks (3D, MR)",
        "interactive-segmentation", ["MR", ""], "MR structures (trained on the hippocampus)", "UNet",
        {"spatial_dims": 3, "in_channels": 4, "out_channels": 2, "channels": [16, 32, 64, 128, 256],
         "strides": [2, 2, 2, 2], "num_res_units": 2},
        # "RAS": the MSD training volumes' orientation; other series are permuted/flipped into it
        {"dims": 3, "channels": "grey", "size": [48, 64, 48], "spacing": [1.0, 1.0, 1.0], "orientation": "RAS",
         "normalization": {"kind": "zscore"}},
        {"labels": [{"value": 1, "name": "object", "color": [255, 80, 200]}], "activation": "softmax",
         # threshold chosen on the validation volumes (training3d --val-settings --threshold)
         "threshold": 0.35, "guidance": ["positive", "negative", "previous_mask"], "ball_radius": 2.0}),
    split=lambda root=None: datasets.hippocampus(root), minutes=25, batch_size=4, lr=2e-3, val_every=3,
    select="mean_dice_3_5_clicks", init_from="hippocampus",
))
RECIPES["interactive-3d"].manifest["accepts"] = {"modality": ["MR"], "channels": [1]}


# what each model is made for (medview.inference.acceptance): a retrained package must keep it, or
# the wrong-modality check would silently stop guarding it
_ACCEPTS = {
    "xray-view": {"modality": ["CR", "DX", "DR", "RG"], "channels": [1, 3], "body_part": ["CHEST", "ABDOMEN"]},
    "hippocampus": {"modality": ["MR"], "channels": [1], "body_part": ["BRAIN", "HEAD"]},
    "retina-vessels": {"modality": ["OP"], "channels": [3], "body_part": ["EYE"]},
    "polyp": {"modality": ["ES"], "channels": [3], "body_part": ["COLON"]},
    "breast-us": {"modality": ["US"], "channels": [1, 3], "body_part": ["BREAST"]},
    "skin-lesion-seg": {"modality": ["XC"], "channels": [3], "body_part": ["SKIN"]},
    "skin-lesion": {"modality": ["XC"], "channels": [3], "body_part": ["SKIN"]},
    "knee-oa": {"modality": ["CR", "DX", "DR", "RG"], "channels": [1, 3], "body_part": ["KNEE"]},
    "dr-grade": {"modality": ["OP"], "channels": [3], "body_part": ["EYE"]},
}
for _id, _acc in _ACCEPTS.items():
    RECIPES[_id].manifest["accepts"] = _acc


def train_command(model_id: str, state: dict) -> str:
    """The `medview train` command that reproduces a run (its initialisation included)."""
    init = state.get("init")
    recipe_init = RECIPES[model_id].init_from
    pretrain = ""
    if init and str(init).endswith(".safetensors"):  # our own pretrained encoder: say how it was made
        import json
        from pathlib import Path

        info = Path(init).with_suffix(".json")
        name = Path(init).name
        if info.is_file():
            meta = json.loads(info.read_text())
            pretrain = f"medview pretrain {meta['model_id']} --minutes {meta['minutes']:g} --out {name} && "
        init = name
    if init:
        flag = "" if init == recipe_init else f" --init {init}"
    else:
        flag = " --scratch" if recipe_init else ""
    members = int(state.get("members") or 1)
    if state.get("ensemble") == "seeds":
        flag += f" --seeds {members}"
    elif members != RECIPES[model_id].folds:
        flag += f" --folds {members}"
    minutes = state.get("train_minutes")
    if minutes is not None and minutes != RECIPES[model_id].minutes:
        flag += f" --minutes {minutes:g}"
    if init == model_id:  # continued from this model's previous package: the command that made it first
        pretrain = f"{state.get('init_command') or f'medview train {model_id}'} && "
    return f"{pretrain}medview train {model_id}{flag}"
