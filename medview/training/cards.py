"""MODEL_CARD.md for each bundled model, rendered from the training state and the evaluation
report (the numbers are the ones ``medview evaluate`` printed, quoted with the command)."""

from __future__ import annotations

import json
from typing import Any

from medview.training.datasets import pooled_split_record
from medview.training.recipes import RECIPES, train_command

DATA: dict[str, dict[str, str]] = {
    "xray-view": {
        "short": "Open-i chest / abdomen radiographs (Lakhani et al. 2018)",
        "citation": "P. Lakhani, D. L. Gray, C. R. Pett, P. Nagy, G. Shih. *Hello World Deep Learning in "
                    "Medical Imaging.* J Digit Imaging 31:283-289, 2018. Images from the NLM Open-i service.",
        "licence": "Published for research and education (Open-i images; see the source articles' "
                   "licences). The weights are MedView's own.",
    },
    "hippocampus": {
        "short": "Medical Segmentation Decathlon Task04 Hippocampus",
        "citation": "A. L. Simpson et al. *A large annotated medical image dataset for the development and "
                    "evaluation of segmentation algorithms.* arXiv:1902.09063, 2019; M. Antonelli et al. *The "
                    "Medical Segmentation Decathlon.* Nat Commun 13:4128, 2022.",
        "licence": "CC-BY-SA 4.0.",
    },
    "retina-vessels": {
        "short": "DRIVE (Staal et al. 2004)",
        "citation": "J. Staal, M. D. Abramoff, M. Niemeijer, M. A. Viergever, B. van Ginneken. *Ridge-based "
                    "vessel segmentation in color images of the retina.* IEEE TMI 23(4):501-509, 2004.",
        "licence": "Published for research and education by the DRIVE organisers (registration terms).",
    },
    "polyp": {
        "short": "Kvasir-SEG (Jha et al. 2020)",
        "citation": "D. Jha, P. H. Smedsrud, M. A. Riegler, P. Halvorsen, T. de Lange, D. Johansen, "
                    "H. D. Johansen. *Kvasir-SEG: A Segmented Polyp Dataset.* MMM 2020, LNCS 11962.",
        "licence": "Research and educational use (Kvasir-SEG terms; cite the paper).",
    },
    "breast-us": {
        "short": "BUSI breast ultrasound (Al-Dhabyani et al. 2020)",
        "citation": "W. Al-Dhabyani, M. Gomaa, H. Khaled, A. Fahmy. *Dataset of breast ultrasound images.* "
                    "Data in Brief 28:104863, 2020.",
        "licence": "CC0 / public research data set (Data in Brief); cite the paper.",
    },
    "skin-lesion-seg": {
        "short": "PH2 dermoscopy (Mendonca et al. 2013)",
        "citation": "T. Mendonca, P. M. Ferreira, J. S. Marques, A. R. S. Marcal, J. Rozeira. *PH2 - A "
                    "dermoscopic image database for research and benchmarking.* IEEE EMBC 2013, 5437-5440.",
        "licence": "Research and education use (PH2 terms; cite the paper).",
    },
}
DATA["skin-lesion"] = DATA["skin-lesion-seg"]
DATA["interactive-2d"] = {
    "short": "Kvasir-SEG, PH2 and MSD Task04 Hippocampus (training parts of the bundled models' splits)",
    "citation": DATA["polyp"]["citation"] + " " + DATA["skin-lesion-seg"]["citation"] + " "
                + DATA["hippocampus"]["citation"],
    "licence": "As for each source set (research and education use; MSD CC-BY-SA 4.0). The weights are MedView's own.",
}
DATA["dr-grade"] = {
    "short": "Retinal Fundus Image Dataset for Diabetic Retinopathy Detection (Rahim 2025), 450 images of 225 "
             "patients re-encoded to 512 px",
    "citation": "S. S. Rahim. *Retinal Fundus Image Dataset for Diabetic Retinopathy Detection*, 2025 "
                "(International Clinical DR scale grades by ophthalmologists; the source's 'advanced diabetic "
                "eye disease' class counted as grade 4).",
    "licence": "Academic use with attribution (source terms). The weights are MedView's own.",
}
DATA["knee-oa"] = {
    "short": "Knee Osteoarthritis Severity Grading Dataset (Chen 2018, from the Osteoarthritis Initiative), "
             "192 px grey joint crops",
    "citation": "P. Chen. *Knee Osteoarthritis Severity Grading Dataset.* Mendeley Data, 2018; P. Chen, L. Gao, "
                "X. Shi, K. Allen, L. Yang. *Fully automatic knee osteoarthritis severity grading using deep "
                "neural networks with a novel ordinal loss.* Comput Med Imaging Graph 75:84-92, 2019.",
    "licence": "CC BY 4.0 (Mendeley Data); OAI data use terms. The weights are MedView's own.",
}

FAILURE_MODES: dict[str, list[str]] = {
    "dr-grade": [
        "Trained on 296 photographs of one data set (one camera); the grade boundaries (mild vs moderate, "
        "severe vs proliferative) are where most errors sit, and severe/proliferative have only 14 and 13 "
        "training images.",
        "Not measured on another camera's photographs here (the issue's EyePACS-style set is held back); expect a "
        "drop. The field-of-view crop (the lit disc's bounding square) and local-contrast normalisation "
        "(Gaussian sigma 10 px) are meant to survive a camera change, but only one camera was seen in training.",
    ],
    "knee-oa": [
        "KL1 (doubtful) vs KL0/KL2 is the hard boundary, also between human readers.",
        "Expects a joint crop like the training data (about 1.5 x the joint space, 192 px); a whole leg "
        "radiograph or a lateral view is outside what it was trained on.",
        "Training took the source's train folder capped at 500 per grade (not the natural grade mix); the "
        "probabilities over-weight the high grades relative to a clinic population; the OA-present threshold "
        "was chosen on the validation half (natural mix) to correct for that.",
    ],
    "xray-view": [
        "Only two classes: any other radiograph (limb, skull, lateral spine, babygram) is still called "
        "chest or abdomen, often with high confidence.",
        "Trained on 55 images; inverted (negative) films are covered by augmentation, strongly rotated or "
        "cropped films are not.",
        "Seen in the app (`benchmarks/screenshots_models.py xray-view .../TEST/abd2.png`): abdomen "
        "0.997, the Grad-CAM covers the bowel gas and spine, not the film's lead marker; the map is "
        "coarse (7 x 7 cells for a 224 px input).",
    ],
    "hippocampus": [
        "Expects a small T1 crop around one hippocampus (about 35 x 50 x 35 voxels at 1 mm, the MSD "
        "layout); run on a whole-brain series it marks spurious structures.",
        "Input is reoriented to RAS (all MSD training crops are stored RAS) but not resampled: the crop must "
        "already be ~1 mm. The *_HCropVolume DICOM series are stored LPS; without the RAS reorientation the "
        "network saw them mirrored in x and y and found about half the posterior volume (checked by running "
        "all flips: the RAS one gives the largest, most confident and balanced segmentation).",
        "The anterior/posterior border is a convention of the annotators; most errors sit there.",
        "Seen in the app on the sample HippoCrop DICOM series: anterior 1.912 mL / posterior 1.796 mL, "
        "the two labels follow the head-to-tail axis in the sagittal view. A whole-brain series is "
        "refused before running (`input.max_extent_mm` 90; e.g. \"this series spans 192 x 220 x 143 mm: "
        "crop the region first\") because the network would mark structures anywhere in the head.",
    ],
    "retina-vessels": [
        "Thin capillaries near the optic disc and at the field-of-view border are missed or broken.",
        "The optic-disc rim and bright lesions (exudates) can give false vessels.",
        "Trained on 14 DRIVE images (565 x 584, 45 degree field); other cameras/resolutions shift the "
        "vessel calibre the network expects.",
        "Seen in the app (`benchmarks/screenshots_models.py retina-vessels "
        ".../test/images/01_test.tif`): short false vessels appeared along the bottom edge of the image, "
        "in the black surround next to the padding. Labels are now cleared outside the lit field of view "
        "(`output.fov_threshold` 0.08, chosen on the training and validation images: mean field IoU "
        "0.998 (lowest 0.991) against DRIVE's masks, no vessel pixel lost; "
        "test_retina_field_of_view_matches_drive_masks); the metrics, measured inside the field of view, "
        "are unchanged.",
    ],
    "polyp": [
        "Flat or very small polyps and polyps at the image border are under-segmented.",
        "Specular highlights, stool and instrument tips give false positives.",
        "Kvasir-SEG comes from one centre; MEASURED.md reports a drop to ~0.60 Dice on another centre's images.",
        "Seen in the app on the worst test image (cju40w3hbkwpn08015rbs3wko.jpg, Dice 0.002): the polyp "
        "at the upper right edge, partly out of view and covered with highlights, is missed and the "
        "mucosal fold below it is segmented instead.",
    ],
    "breast-us": [
        "BUSI comes from one hospital and machine; other scanners, presets and annotated/callipered images "
        "behave differently.",
        "Benign vs malignant is the hard pair; normal images with shadowing can look like lesions.",
        "Seen in the app with Grad-CAM: `normal (10).png` (test) is called malignant (0.67) with the map "
        "on the dark deep region at the bottom of the image; `malignant (17).png` is called benign "
        "(0.90) with the map on the deep tissue below the round hypoechoic mass, not on it. The network "
        "often attends to the deep, shadowed part of the image: check the map before trusting a call.",
    ],
    "skin-lesion-seg": [
        "Lesions touching the image border or hidden by hair, ruler marks or dark vignetting corners.",
        "Very light, low-contrast nevi are under-segmented.",
        "Seen in the app (`benchmarks/screenshots_models.py skin-lesion-seg .../IMD002.jpg`): the lesion outline "
        "follows the pigment well; a separate dark skin spot above it was marked as a second lesion until "
        "`output.keep_largest` was switched on. With it, a second real lesion in the same image would be dropped.",
    ],
    "skin-lesion": [
        "PH2 has 160 images from one clinic and one dermoscope; the held-out split has only 40 images "
        "(8 melanomas), so the figures have wide confidence intervals.",
        "Common vs atypical nevus is the hard pair (also for dermatologists): on the test split the fold ensemble "
        "called 4 of 17 atypical nevi common and 2 of 15 common nevi atypical (the single model before it: 8 of 17). "
        "Seen in the app (`benchmarks/screenshots_models.py skin-lesion IMD013.jpg`): a faint, light-brown atypical "
        "nevus is called common nevus with p = 0.73.",
        "Small melanomas can be missed: IMD405.jpg (a small melanoma in a large field of skin) is called "
        "atypical nevus (0.56, melanoma 0.14); its Grad-CAM lies on the lesion's rim.",
        "Grad-CAM comes from the encoder's first block (`model.0`, full 192 px resolution), chosen on the validation "
        "part because it put the most Grad-CAM mass inside the PH2 lesion masks (see the card's Grad-CAM section). "
        "With the fold ensemble it is the mean of the five members' maps. Seen in the app: on a small or "
        "mid-sized lesion (IMD013, IMD405) the map lies on the lesion, with some weight in the dark corners of the "
        "dermoscope's field; on a very large melanoma (IMD058, called melanoma 0.98) plain Grad-CAM lights bands "
        "of skin outside the lesion and its pale regression area more than the lesion itself. Read it as a pointer "
        "to what drove the call, not a lesion outline.",
        "Not validated on other skin types, devices or non-dermoscopic photographs.",
    ],
}


def _fmt(v: Any) -> str:
    return json.dumps(v) if not isinstance(v, float) else f"{v:.4f}"


def _network_words(arch: str) -> str:
    if arch == "UNetEncoderClassifier":
        return ("`UNetEncoderClassifier` (medview/inference/unet_classifier.py: the encoder half of MONAI's "
                "`UNet`, every level average-pooled and concatenated, one linear layer)")
    return f"MONAI `{arch}`"


def _cam_layer_words(arch: str, layer: str) -> str:
    if arch == "UNetEncoderClassifier":
        return "the encoder's first block, full resolution" if layer == "model.0" else "the encoder's bottom block"
    stages = {"layer4": "last residual stage", "layer3": "third residual stage, twice layer4's resolution",
              "layer2": "second residual stage, four times layer4's resolution",
              "layer1": "first residual stage, eight times layer4's resolution"}
    return stages.get(layer, "residual stage")


def _graded_section(m: dict[str, Any], state: dict[str, Any] | None) -> list[str]:
    """How a graded model's result reads (app, CLI, prediction.json), from its grading block."""
    g = m["output"].get("grading")
    if not g:
        return []
    classes = m["output"]["classes"]
    words = g.get("words") or classes
    flag = g.get("flag") or {}
    thr = (state or {}).get("grading_threshold", flag.get("threshold"))
    scale = g.get("scale", "grade")
    lines = ["## Graded output", "",
             f"- Scale {scale} 0-{len(classes) - 1}: "
             + ", ".join(f"{c} = {w}" for c, w in zip(classes, words, strict=False)) + ".",
             "- The grade is the most probable class (so the grade and the probabilities never disagree); the "
             "continuous value is the expected grade sum_k k p_k, marked on the scale in the app's models panel "
             "beside the class probabilities."]
    if flag:
        lines.append(f"- Flag \"{flag['name']}\": P(grade >= {flag['min_grade']}) = the sum of the upper classes' "
                     f"probabilities, positive at >= {float(thr):.4f} (threshold maximising Youden's J on "
                     f"{_fitted_on(state)}, written into the manifest by training).")
    lines += ["- `medview infer` prints one line per image, e.g. `" + f"{scale} 2.4: {words[min(2, len(words) - 1)]} "
              f"({classes[min(2, len(classes) - 1)]}, p 0.61)" + (f"; {flag['name']}: yes (p 0.83 >= 0.50)`" if flag
                                                                   else "`") + " (an example of the format);",
              "  prediction.json carries `probabilities` under the class names and `grading` {scale, grade, "
              "grade_name, grade_word, value, flag {name, min_grade, probability, threshold, positive}}.", ""]
    return lines


def _fitted_on(state: dict[str, Any] | None) -> str:
    """Where training fitted the head and flag threshold: a fold ensemble names its out-of-fold
    predictions (ordinal head or calibration), a single network its validation part."""
    for key in ("ordinal", "calibration"):
        where = ((state or {}).get(key) or {}).get("fitted_on")
        if where:
            return where
    return "the validation part"


def _grader_modes(m: dict[str, Any]) -> list[str]:
    """What a graded output's construction means for its reader (ordinal head or softmax)."""
    if not m["output"].get("grading"):
        return []
    if m["output"].get("activation") == "ordinal_probit":
        return ["The network gives ONE value regressed on the grade; the five probabilities come from an "
                "ordered-probit link whose cut points and noise scale were fitted on the validation part, so the "
                "grade boundaries carry that small sample's uncertainty. The grade shown is the most probable "
                "class; the continuous value is the expected grade under those probabilities. Grad-CAM shows what "
                "raises the value (the same map whichever class is selected)."]
    return ["The grade shown is the most probable class; the continuous value is the expected grade under the "
            "class probabilities (a 5-way softmax trained with an ordinal term), not a separate regression head."]


def ensemble_kind(state: dict[str, Any] | None) -> str | None:
    """None (one network), "folds" (medview.training.folds) or "seeds" (medview.training.seeds)."""
    if int((state or {}).get("members") or 1) < 2:
        return None
    return (state or {}).get("ensemble") or "folds"


def _time_line(model_id: str, state: dict[str, Any]) -> str:
    select = RECIPES[model_id].select
    if ensemble_kind(state) == "seeds":
        return (f"- Time: {state['elapsed_s'] / 60:.1f} min for the {state['members']} members on 2 shared CPU cores "
                f"(torch CPU; {state.get('train_minutes')} min each), epochs {state.get('epoch')}, best epochs "
                f"{state.get('best_epoch')}; the ensemble's validation {select} {state['best']:.4f}."
                if state.get("elapsed_s") is not None else
                f"- Time: {state.get('train_minutes')} min for each of the {state['members']} members, epochs "
                f"{state.get('epoch')}, best epochs {state.get('best_epoch')}.")
    if ensemble_kind(state) == "folds":
        return (f"- Time: {state['elapsed_s'] / 60:.1f} min for the {state['members']} members on 2 shared CPU cores "
                f"(torch CPU; {state.get('train_minutes')} min each), epochs {state.get('epoch')}, best epochs "
                f"{state.get('best_epoch')}; out-of-fold {select} {state['best']:.4f}.")
    if state.get("elapsed_s") is not None and state.get("best") is not None:
        return (f"- Time: {state['elapsed_s'] / 60:.1f} min on 2 shared CPU cores (torch CPU), {state.get('epoch')} "
                f"epochs; best validation {select} {state['best']:.4f} at epoch {state.get('best_epoch')}.")
    # rebuilt from the package's training record (the run's checkpoint state is on another machine)
    return (f"- Time: a {state.get('train_minutes')} min budget on 2 shared CPU cores (torch CPU), "
            f"{state.get('epoch')} epochs; checkpoint of epoch {state.get('best_epoch')} chosen on validation by "
            f"{select} (the run's score was not kept in the package: `medview evaluate {model_id} --part val` "
            "re-measures it).")


def _cv_section(model_id: str, state: dict[str, Any]) -> list[str]:
    """A fold ensemble's cross-validation: each member's fold, and the out-of-fold figures."""
    if ensemble_kind(state) == "seeds":
        return _seeds_section(model_id, state)
    if ensemble_kind(state) != "folds":
        return []
    r = RECIPES[model_id]
    cv = state.get("cv") or {}
    lines = ["### Cross-validation (the model choice)", "",
             f"Train + validation pooled ({cv.get('n')} images) and dealt into {state['members']} folds "
             "(`medview.training.folds`: whole groups, class-stratified); member i trained on the other folds and "
             f"its checkpoint was chosen on fold i by {r.select}. Each pooled image was then predicted by the one "
             "member that never trained on it (out-of-fold); those predictions fitted the calibration (a graded "
             "head's cut points and flag threshold) and give the figures below. They are an estimate for one "
             "member, chosen on the same folds (slightly optimistic); the test part was never used.", "",
             "| member | trained on | chosen on | best epoch | best fold score |", "|---|---|---|---|---|"]
    for f in state.get("folds", []):
        lines.append(f"| {f['fold']} | {f['train']} | {f['val']} | {f['best_epoch']} | {f['best']:.4f} |")
    lines += ["", f"Out-of-fold on {cv.get('n')} images: " + _cv_figures(r, cv) + "."]
    fit = state.get("cv_fit")
    if fit:  # the head was fitted (and the ensemble scored) on part of the pool
        lines.append(f"On the {fit['fitted_on']} (where the head was fitted, so optimistic there): "
                     + _cv_figures(r, fit) + ".")
    cal = state.get("calibration")
    if cal:
        lines.append(f"Calibration fitted on them and folded into every member: temperature {cal['temperature']:.3f}, "
                     f"NLL {cal['val_nll_before']:.3f} -> {cal['val_nll_after']:.3f}.")
    return lines + [""]


def _seeds_section(model_id: str, state: dict[str, Any]) -> list[str]:
    r = RECIPES[model_id]
    lines = ["### Seed ensemble", "",
             f"{state['members']} runs of the recipe on the same split, differing only in their seed "
             "(`medview.training.seeds`: head initialisation, batch order, augmentation); each member's checkpoint "
             f"was chosen on the validation part by {r.select}, and what one run fits there (a graded head's cut "
             "points and flag threshold, the temperature) was fitted again for the members' mean.", "",
             "| member | seed | best epoch | its own best validation score |", "|---|---|---|---|"]
    for m in state.get("seeds", []):
        lines.append(f"| {m['member']} | {m['seed']} | {m['best_epoch']} | {m['best']:.4f} |")
    return lines + [""]


def _cv_figures(r, cv: dict[str, Any]) -> str:
    figs = [f"QWK {cv['qwk']:.4f}"] if "qwk" in cv else []
    figs += [f"accuracy {cv['accuracy']:.4f}"] if "accuracy" in cv else []
    if "mae" in cv:
        figs.append(f"MAE {cv['mae']:.4f}")
    if "flag_auc" in cv:
        flag = (r.manifest["output"].get("grading") or {}).get("flag") or {}
        figs.append(f"{flag.get('name', 'flag')} AUC {cv['flag_auc']:.4f}")
    elif "macro_auc" in cv:
        figs.append(f"macro one-vs-rest AUC {cv['macro_auc']:.4f}")
    if r.positive and f"{r.positive}_auc" in cv:
        figs.append(f"{r.positive} AUC {cv[f'{r.positive}_auc']:.4f}")
    return ", ".join(figs)


def state_from_manifest(model_id: str, manifest: dict[str, Any], data_root=None) -> dict[str, Any] | None:
    """A card's training facts from a package's own ``training`` record (written by packaging),
    for a machine without the run's checkpoint state; the split is rebuilt from the recipe
    (deterministic). None when the package has no such record."""
    t = manifest.get("training")
    if not t or t.get("best_epoch") is None:
        return None
    split = RECIPES[model_id].split(data_root) if data_root is not None else RECIPES[model_id].split()
    flag = (manifest["output"].get("grading") or {}).get("flag") or {}
    return {"seed": t.get("seed"), "epoch": t.get("epochs"), "best_epoch": t.get("best_epoch"),
            "init": t.get("init"), "train_minutes": t.get("minutes"), "elapsed_s": t.get("elapsed_s"),
            "best": t.get("best_score"), "ordinal": manifest["output"].get("ordinal"),
            "grading_threshold": flag.get("threshold"), "members": manifest["network"].get("members"),
            "cv": t.get("cross_validation"), "folds": t.get("folds", []),
            "ensemble": t.get("ensemble"), "seeds": t.get("seeds", []),
            "split": (pooled_split_record(split, int(manifest["network"]["members"]))
                      if int(manifest["network"].get("members") or 1) > 1 and t.get("ensemble") != "seeds" else
                      {"description": split.description, **split.summary(), "test": [x.name for x in split.test]})}


def render(model_id: str, state: dict[str, Any], report: dict[str, Any] | None, printed: list[str] | None = None,
           extra: str = "") -> str:
    r = RECIPES[model_id]
    m = r.manifest
    d = DATA[model_id]
    inp = m["input"]
    split = (state or {}).get("split", {})
    lines = [
        f"# {m['name']} (`{model_id}`)", "",
        "**Intended use: research use only, not for diagnosis.** A second-opinion aid inside MedView for "
        "reviewing images; it has not been cleared by any regulator and must not drive clinical decisions.", "",
        "## Data", "",
        f"- Data set: {d['short']}. {d['citation']}",
        f"- Licence / terms: {d['licence']}",
        f"- Split (deterministic): {split.get('description', '')}. Sizes: train {split.get('train')}, "
        f"validation {split.get('val')}, test {split.get('test') and len(split.get('test'))}.",
        "- Test images (never used for training or checkpoint choice): "
        + ", ".join(f"`{n}`" for n in split.get("test", [])), "",
        "## Model", "",
        f"- Network: {_network_words(m['network']['architecture'])} with `{json.dumps(m['network']['args'])}`"
        + (f"; a {ensemble_kind(state)[:-1]} ensemble of {state['members']} of them: the package averages "
           "their outputs (`medview.inference.ensemble`; one weights file, Grad-CAM averaged over the members)."
           if ensemble_kind(state) else "."),
        f"- Input: {inp['dims']}D, channels `{inp['channels']}`, normalisation `{json.dumps(inp['normalization'])}`"
        f", size {inp.get('size')}, spacing {inp.get('spacing')}, roi {inp.get('roi_size')}, "
        f"pad to multiple of {inp.get('pad_to_multiple')} (built with `medview.inference.preprocess`, the "
        "same functions the app uses).",
        *([f"- Ordinal head: one value regressed on the grade (smooth L1), class probabilities "
           f"P(grade = k) from an ordered-probit link (`medview.inference.ordinal`) with cut points "
           f"{state['ordinal']['cut_points']} and sigma {state['ordinal']['sigma']} fitted on "
           f"{_fitted_on(state)} "
           + (f"(quadratic weighted kappa of the cut points there {state['ordinal']['fitted_qwk']}; "
              "optimistic, being fitted on the same images)." if state["ordinal"].get("fitted_qwk") is not None
              else "(in the manifest's output.ordinal).")] if (state or {}).get("ordinal") else []),
        f"- Output: {m['task']}, {m['output'].get('activation')} over "
        + (", ".join(m['output'].get('classes', [])) or "background, " + ", ".join(
            lab['name'] for lab in m['output'].get('labels', []))) + ".", "",
        "## Training", "",
        f"- Command: `{train_command(model_id, state)}` (fixed seed {state.get('seed')}, AdamW lr "
        + (f"{r.lr / 2:g} (half the recipe's: it starts from trained weights), " if state.get("init")
           else f"{r.lr:g}, ")
        + f"batch {r.batch_size}, cosine schedule over the time budget, "
        + ("each member's checkpoint chosen on its own fold, " if ensemble_kind(state) == "folds"
           else "checkpoint chosen on the validation part, ")
        + "resumable checkpoints in checkpoints/).",
        _time_line(model_id, state),
        f"- Augmentation: `{json.dumps(r.augment)}`.", "",
        *_cv_section(model_id, state),
    ]
    if m.get("gradcam_layer"):
        words = _cam_layer_words(m["network"]["architecture"], m["gradcam_layer"])
        lines += [f"Grad-CAM: target layer `{m['gradcam_layer']}` ({words}); "
                  "shown in the app and "
                  f"by `medview infer --cam`.", ""]
    lines += _graded_section(m, state)
    if extra:
        lines += [extra, ""]
    lines += ["## Held-out test metrics", ""]
    if printed:
        lines += [f"`medview evaluate {model_id}` printed:", "", "```", *printed, "```", ""]
    if report and "reliability" in report:
        lines += ["## Calibration", ""]
        if "positive_reliability" in report:
            lines += [f"Reliability of p({report['positive']}) on the test split "
                      f"(ECE {report['positive_ece']:.4f}); plot: `reliability.png` beside this card.", "",
                      "| p bin | n | mean p | observed frequency |", "|---|---|---|---|"]
            for b in report["positive_reliability"]:
                lines.append(f"| {b['bin'][0]:.1f}-{b['bin'][1]:.1f} | {b['n']} | {b['mean_confidence']:.3f} | "
                             f"{b['observed']:.3f} |")
            lines.append("")
        lines += [f"Top-class confidence vs accuracy on the test split (ECE {report['ece']:.4f}):", "",
                  "| confidence bin | n | mean confidence | accuracy |", "|---|---|---|---|"]
        for b in report["reliability"]:
            lines.append(f"| {b['bin'][0]:.1f}-{b['bin'][1]:.1f} | {b['n']} | {b['mean_confidence']:.3f} | "
                         f"{b['observed']:.3f} |")
        lines += ["", "With this few test images the bins are coarse; treat the probabilities as a ranking, "
                  "not as calibrated risks.", ""]
    lines += ["## Known failure modes", ""] + [f"- {t}" for t in FAILURE_MODES[model_id] + _grader_modes(m)] + [""]
    return "\n".join(lines)
