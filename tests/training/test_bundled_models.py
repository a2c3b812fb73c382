"""The shipped weights are trained: each bundled package, run through the app's own pipeline
(medview.io load_volume -> medview.inference run_model) on real held-out images from
../shared/data that were never used for training, gives the right class or a Dice above a
floor that a random network cannot reach."""

from __future__ import annotations

import numpy as np
import pytest

from medview.config import bundled_models_dir
from medview.training import datasets, metrics
from medview.training.recipes import RECIPES

SHIPPED = sorted(p.name for p in bundled_models_dir().iterdir() if (p / "model.json").is_file()) \
    if bundled_models_dir().is_dir() else []


def _run(model_id, path):
    from medview.inference.package import find_package
    from medview.inference.pipeline import run_model
    from medview.io.loading import load_volume

    pkg = find_package(model_id)
    assert pkg.ok, pkg.reason
    return pkg, run_model(pkg, load_volume(path), device="cpu", unverified_ok=True)  # the model's own test data


def _test_part(model_id, shared_data):
    split = RECIPES[model_id].split(shared_data)
    train_names = {s.name for s in split.train} | {s.name for s in split.val}
    assert not train_names & {s.name for s in split.test}
    return split.test


def test_every_recipe_is_shipped():
    missing = sorted(set(RECIPES) - set(SHIPPED))
    assert not missing, f"recipes without a bundled package: {missing}"


@pytest.mark.parametrize("model_id", [m for m in SHIPPED if RECIPES.get(m) and RECIPES[m].kind == "classification"
                                      and not RECIPES[m].positive
                                      and "grading" not in RECIPES[m].manifest["output"]])  # graders: test_grading
def test_classifier_gets_held_out_images_right(model_id, shared_data):
    test = _test_part(model_id, shared_data)
    classes = RECIPES[model_id].manifest["output"]["classes"]
    # two held-out images per class (sorted names: deterministic), through the real pipeline
    picked = []
    for c in range(len(classes)):
        picked += [s for s in test if s.target == c][:2]
    right = 0
    probs, truth = [], []
    for s in picked:
        _, pred = _run(model_id, s.image)
        right += pred.top_class == classes[s.target]
        probs.append([pred.probabilities[c] for c in classes])
        truth.append(s.target)
    acc = right / len(picked)
    floor = 1.0 if model_id == "xray-view" else 0.66
    assert acc >= floor, f"{model_id}: {right}/{len(picked)} right on held-out images"
    # and the probabilities rank the classes (a constant or random net would not)
    p = np.array(probs)
    aucs = [metrics.roc_auc(np.array(truth) == c, p[:, c]) for c in range(len(classes))]
    assert np.nanmean(aucs) >= 0.75, aucs


@pytest.mark.skipif("skin-lesion" not in SHIPPED, reason="skin-lesion package not bundled yet")
def test_melanoma_classifier_ranks_held_out_melanomas_first(shared_data):
    """The shipped skin-lesion model's claim is melanoma-vs-rest (its 3-class accuracy is below
    goal, see its card): six held-out melanomas against six held-out nevi, through the app."""
    test = _test_part("skin-lesion", shared_data)
    mel = [s for s in test if s.target == 2][:6]
    nev = [s for s in test if s.target != 2][:6]
    p_mel = [_run("skin-lesion", s.image)[1].probabilities["melanoma"] for s in mel]
    p_nev = [_run("skin-lesion", s.image)[1].probabilities["melanoma"] for s in nev]
    y = np.array([1] * len(p_mel) + [0] * len(p_nev))
    auc = metrics.roc_auc(y, np.array(p_mel + p_nev))
    assert auc >= 0.8, (auc, p_mel, p_nev)


@pytest.mark.parametrize("model_id", [m for m in SHIPPED if RECIPES.get(m) and RECIPES[m].kind != "classification"
                                      and m != "hippocampus"
                                      and not RECIPES[m].kind.startswith("interactive")])  # tests/interactive
def test_2d_segmenter_dice_on_held_out_images(model_id, shared_data):
    test = _test_part(model_id, shared_data)[:4]
    floors = {"retina-vessels": 0.70, "polyp": 0.60, "skin-lesion-seg": 0.80}
    dices = []
    for s in test:
        pkg, pred = _run(model_id, s.image)
        truth = datasets.read_mask(s.target)
        lab = pred.labels.array[0]
        assert lab.shape == truth.shape
        if "fov" in s.extra:
            fov = datasets.read_mask(s.extra["fov"]).astype(bool)
            d = metrics.dice(lab[fov] > 0, truth[fov] > 0)
        else:
            d = metrics.dice(lab > 0, truth > 0)
        dices.append(d)
    # mean over four held-out images (single hard cases exist: flat polyps, faint lesions)
    assert np.mean(dices) >= floors[model_id], f"{model_id}: Dice {dices}"
    if pkg.manifest["output"].get("keep_largest"):  # one lesion per photograph
        from scipy import ndimage

        assert ndimage.label(lab > 0, structure=np.ones((3, 3)))[1] <= 1
    # plain JPEG/PNG files carry no pixel size: the size is reported in pixels, not a fake mm2
    info = pred.label_info[0]
    assert "area_mm2" not in info and info["area_px"] == int((lab == info["value"]).sum()) > 0


@pytest.mark.skipif("hippocampus" not in SHIPPED, reason="hippocampus package not bundled yet")
def test_hippocampus_dice_and_volumes_on_held_out_case(shared_data):
    s = _test_part("hippocampus", shared_data)[0]
    pkg, pred = _run("hippocampus", s.image)
    truth = datasets.read_volume(s.target)
    lab = pred.labels.array
    assert lab.shape == truth.shape
    for v in (1, 2):
        assert metrics.dice(lab == v, truth == v) >= 0.7
    vols = {d["name"]: d["volume_ml"] for d in pred.label_info}
    assert set(vols) == {"anterior hippocampus", "posterior hippocampus"}
    for name, ml in vols.items():
        assert 0.3 < ml < 5.0, (name, ml)


@pytest.mark.skipif("hippocampus" not in SHIPPED, reason="hippocampus package not bundled yet")
@pytest.mark.parametrize("series", ["Study1/13_HCropVolume", "Study3/11_HCropVolume"])
def test_hippocampus_runs_on_dicom_crop(shared_data, series):
    folder = shared_data / "dicom" / "mr-brain-tcia" / series
    pkg, pred = _run("hippocampus", folder)
    vols = {d["name"]: d["volume_ml"] for d in pred.label_info}
    # both structures found, each a plausible hippocampal volume (a random net paints noise or nothing)
    for name, ml in vols.items():
        assert 0.3 < ml < 5.0, (name, ml)
    lab = pred.labels.array
    from scipy import ndimage

    for v in (1, 2):
        comps, n = ndimage.label(lab == v)
        sizes = np.bincount(comps.ravel())[1:]
        assert n >= 1 and sizes.max() >= 0.8 * sizes.sum(), f"label {v} is fragmented: {sorted(sizes)[-5:]}"


@pytest.mark.parametrize("model_id", [m for m in SHIPPED if m in RECIPES])
def test_recipe_reproduces_shipped_manifest(model_id):
    """`medview train ID` must rebuild the shipped package: same network, input and output."""
    import json

    shipped = json.loads((bundled_models_dir() / model_id / "model.json").read_text())
    recipe = RECIPES[model_id].new_manifest()  # with the fold count of an ensemble
    if "grading" in recipe["output"]:  # the flag threshold is chosen on validation by training
        shipped["output"]["grading"]["flag"]["threshold"] = recipe["output"]["grading"]["flag"]["threshold"]
    if "ordinal" in recipe["output"] and "ordinal" in shipped["output"]:  # cut points: fitted on validation
        shipped["output"]["ordinal"] = recipe["output"]["ordinal"]
    for key in ("network", "input", "output", "task", "accepts"):  # accepts: the wrong-input guard
        assert shipped.get(key) == recipe.get(key), key
    card = (bundled_models_dir() / model_id / "MODEL_CARD.md").read_text()
    assert "research use only, not for diagnosis" in card.lower()
    assert f"medview evaluate {model_id}" in card


def test_retina_field_of_view_matches_drive_masks(shared_data):
    """The app clears vessels outside the lit field (`output.fov_threshold`); on the training and
    validation images that field must match DRIVE's own masks and keep every labelled vessel."""
    from medview.inference.package import find_package
    from medview.inference.pipeline import field_of_view

    level = find_package("retina-vessels").manifest["output"]["fov_threshold"]
    split = RECIPES["retina-vessels"].split(shared_data)
    for s in split.train + split.val:
        fov = field_of_view(datasets.read_image(s.image), level)  # (H, W, 3) as the app holds it
        truth = datasets.read_mask(s.extra["fov"]).astype(bool)
        vessel = (datasets.read_mask(s.target) > 0) & truth
        assert (fov & truth).sum() / (fov | truth).sum() > 0.98, s.name  # 0.991 .. 0.999 measured
        assert not (vessel & ~fov).any(), s.name
