"""Fold ensembles (`medview train ID --folds K`): folds over train + validation that keep groups
whole and the test part out, members chosen on their own fold, a temperature fitted on the
out-of-fold predictions and folded into every member, and a package that averages them."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from medview.training import checkpoint as ckpt
from medview.training import datasets, folds
from medview.training.recipes import RECIPES, Recipe, _manifest, train_command
from tests.inference import toys


def _samples(n, rng, start=0, groups=False):
    out = []
    for i in range(start, start + n):
        pos = bool(i % 2)
        img, _ = toys.cls_sample(rng, pos, size=32)
        # pairs of images share a group (one "patient") in the grouped variant
        out.append(datasets.Sample(Path(f"toy{i:03d}.png"), int(pos), group=f"p{i // 4}" if groups else "",
                                   extra={"array": img.astype(np.float32)}))
    return out


def test_folds_cover_the_pool_once_keep_groups_whole_and_stratify():
    rng = np.random.default_rng(0)
    pool = _samples(40, rng, groups=True)
    parts = folds.fold_parts(pool, 5)
    names = [s.name for p in parts for s in p]
    assert sorted(names) == sorted(s.name for s in pool) and len(set(names)) == 40
    for p in parts:  # every group in one fold only; both classes in every fold
        assert {s.target for s in p} == {0, 1}
    where = {s.group: i for i, p in enumerate(parts) for s in p}
    assert all(where[s.group] == i for i, p in enumerate(parts) for s in p)
    assert max(len(p) for p in parts) - min(len(p) for p in parts) <= 4  # one group of 4 at most
    assert [[s.name for s in p] for p in folds.fold_parts(pool, 5)] == [[s.name for s in p] for p in parts]
    split = datasets.Split(pool[:30], pool[30:], _samples(6, rng, start=100), "toy")
    for i, sp in enumerate(folds.fold_splits(split, 5)):
        assert not {s.name for s in sp.train} & {s.name for s in sp.val}
        assert len(sp.train) + len(sp.val) == 40 and sp.test == split.test
        assert sp.description.startswith(f"fold {i + 1} of 5")
    with pytest.raises(folds.FoldError):
        folds.fold_parts(pool, 1)
    with pytest.raises(folds.FoldError, match="cannot fill"):
        folds.fold_parts(pool[:3], 5)


def test_segmentation_recipes_and_unknown_fit_parts_are_refused():
    import dataclasses

    for rid in ("polyp", "hippocampus"):
        with pytest.raises(folds.FoldError, match="for classifiers"):
            folds.check_recipe(RECIPES[rid])
    folds.check_recipe(RECIPES["knee-oa"])  # graded ordinal heads are fine
    with pytest.raises(folds.FoldError, match="cv_fit"):
        folds.check_recipe(dataclasses.replace(RECIPES["knee-oa"], cv_fit="test"))


def assert_youden_optimal(thr: float, truth: np.ndarray, prob: np.ndarray) -> None:
    """``thr`` reaches the best Youden J on (truth, prob) to within one image: J has ties (any
    threshold between two neighbouring probabilities), and the stored values are rounded."""
    def j(t):
        pos = prob >= t
        return pos[truth].mean() + (~pos[~truth]).mean() - 1

    best = max(j(t) for t in np.unique(prob))
    assert j(thr) >= best - 1.0 / min(truth.sum(), (~truth).sum()) - 1e-9, (thr, j(thr), best)


def _register(monkeypatch, tmp_path, r: Recipe) -> Recipe:
    """``r`` as a known recipe with card texts, checkpoints in ``tmp_path``."""
    from medview.training import cards

    monkeypatch.setitem(RECIPES, r.id, r)
    monkeypatch.setitem(cards.DATA, r.id, {"short": "toy", "citation": "none", "licence": "none"})
    monkeypatch.setitem(cards.FAILURE_MODES, r.id, ["a toy"])
    monkeypatch.setenv("MEDVIEW_CHECKPOINTS", str(tmp_path / "checkpoints"))
    return r


def _member_outputs(recipe: Recipe, k: int, img: np.ndarray, name=folds.member_name) -> list[np.ndarray]:
    """Each member checkpoint's raw network output for one (H, W) image (``name(id, i)``: its folder)."""
    import torch

    from medview.training import runner

    outs = []
    for i in range(k):
        net = runner._net(recipe, recipe.new_manifest())
        net.load_state_dict(ckpt.load_weights(ckpt.checkpoint_dir(name(recipe.id, i))
                                              / "best.safetensors"))
        net.eval()
        with torch.no_grad():
            outs.append(net(torch.from_numpy(img[None, None])).numpy()[0])
    return outs


@pytest.fixture
def toy_recipe(monkeypatch, tmp_path):
    rng = np.random.default_rng(1)
    split = datasets.Split(_samples(16, rng), _samples(8, rng, start=16), _samples(6, rng, start=50), "toy split")
    args = {"spatial_dims": 2, "n_input_channels": 1, "num_classes": 2, "widen_factor": 0.25, "conv1_t_stride": 2}
    m = _manifest("toy-folds", "Toy spot classifier", "classification", ["OT", ""], "phantom", "resnet10", args,
                  {"dims": 2, "channels": "grey", "size": [32, 32], "spacing": None, "orientation": None,
                   "normalization": {"kind": "none"}},
                  {"classes": ["plain", "spot"], "activation": "softmax"}, gradcam="layer2")
    return _register(monkeypatch, tmp_path, Recipe(
        id="toy-folds", kind="classification", manifest=m, split=lambda root=None: split, minutes=0.05,
        batch_size=8, lr=1e-3, max_epochs=2, select="accuracy", calibrate="temperature", folds=3)), split


@pytest.mark.slow
def test_train_folds_calibrates_on_out_of_fold_predictions_and_packages_the_mean(toy_recipe, tmp_path):
    import torch

    from medview.inference import package, pipeline
    from medview.io.volume import Volume
    from medview.training import runner
    from medview.training.packaging import package_from_checkpoint

    recipe, split = toy_recipe
    state = folds.train_folds("toy-folds", 3, init="", fresh=True, log=lambda s: None)
    pool = {s.name for s in split.train + split.val}
    # every pooled image predicted once, by the member that did not train on it; the test part never
    assert sorted(p["name"] for p in state["cv"]["predictions"]) == sorted(pool)
    assert state["cv"]["n"] == 24 and not {s.name for s in split.test} & pool
    fold_names = [set(f["val_names"]) for f in state["folds"]]
    assert set().union(*fold_names) == pool and sum(len(f) for f in fold_names) == 24
    assert state["split"]["test"] == [s.name for s in split.test]
    assert state["calibration"]["fitted_on"] == "24 out-of-fold predictions"
    # a run reads like its command
    assert train_command("toy-folds", state) == "medview train toy-folds"
    assert train_command("toy-folds", {**state, "members": 5}) == "medview train toy-folds --folds 5"

    from medview.training import cards

    card = cards.render("toy-folds", state, None)
    assert "a fold ensemble of 3 of them" in card and "Out-of-fold on 24 images: accuracy" in card
    assert "each member's checkpoint chosen on its own fold" in card
    assert card.count("| 1 | 16 | 8 |") == 1  # member 1: trained on 16, chosen on 8
    # starting a single network from the ensemble takes its first member, whole
    ens = package.validate(package_from_checkpoint("toy-folds", out=tmp_path / "pkg", card="# toy\n"))
    assert ens.ok, ens.reason
    assert ens.manifest["network"]["members"] == 3
    # the package = mean over members of (raw member logits / T + c): calibration folded into each
    temp, bias = state["calibration"]["temperature"], np.array(state["calibration"]["bias"])
    img = split.test[0].extra["array"]
    z = np.mean([out / temp + bias for out in _member_outputs(recipe, 3, img)], axis=0)
    p = np.exp(z - z.max())
    p /= p.sum()
    pred = pipeline.run_model(ens, Volume(img, meta={"Modality": "OT"}))
    assert pred.probabilities["spot"] == pytest.approx(float(p[1]), abs=1e-5)
    first = runner._init_state(str(tmp_path / "pkg"), log=lambda s: None)
    m0 = ckpt.load_weights(ckpt.checkpoint_dir("toy-folds") / "best.safetensors")
    assert set(first) == {k[len("members.0."):] for k in m0 if k.startswith("members.0.")}
    assert all(torch.equal(first[k], m0["members.0." + k]) for k in first)


@pytest.fixture
def graded_toy(monkeypatch, tmp_path):
    """Three grades of a brightening spot; an ordinal head with a flag (grade >= 1); the
    validation part alone fits the head (cv_fit="val"), as knee-oa's natural-mix part does."""
    rng = np.random.default_rng(3)

    def make(n, start):
        out = []
        for i in range(start, start + n):
            g = i % 3
            img = rng.normal(0, 0.3, (32, 32)).astype(np.float32)
            img[12:20, 12:20] += g
            out.append(datasets.Sample(Path(f"g{i:03d}.png"), g, extra={"array": img}))
        return out

    split = datasets.Split(make(18, 0), make(12, 18), make(6, 60), "graded toy split")
    args = {"spatial_dims": 2, "n_input_channels": 1, "num_classes": 1, "widen_factor": 0.25, "conv1_t_stride": 2}
    m = _manifest("toy-graded", "Toy grader", "classification", ["OT", ""], "phantom", "resnet10", args,
                  {"dims": 2, "channels": "grey", "size": [32, 32], "spacing": None, "orientation": None,
                   "normalization": {"kind": "none"}},
                  {"classes": ["g0", "g1", "g2"], "activation": "ordinal_probit",
                   "ordinal": {"cut_points": [0.5, 1.5], "sigma": 0.5},
                   "grading": {"scale": "G", "words": ["none", "some", "much"],
                               "flag": {"name": "spot present", "min_grade": 1, "threshold": 0.5}}},
                  gradcam="layer2")
    return _register(monkeypatch, tmp_path, Recipe(
        id="toy-graded", kind="classification", manifest=m, split=lambda root=None: split, minutes=0.05,
        batch_size=8, lr=1e-3, max_epochs=2, select="qwk", folds=3, cv_fit="val")), split


@pytest.mark.slow
def test_graded_ensemble_fits_cut_points_and_flag_on_the_validation_parts_oof_values(graded_toy, tmp_path):

    from medview.inference import ordinal, package, pipeline
    from medview.io.volume import Volume
    from medview.training import ordinal_fit
    from medview.training.packaging import package_from_checkpoint

    recipe, split = graded_toy
    state = folds.train_folds("toy-graded", 3, init="", fresh=True, log=lambda s: None)
    val = {s.name for s in split.val}
    assert state["cv"]["n"] == 30 and state["cv_fit"]["n"] == 12
    assert {p["name"] for p in state["cv_fit"]["predictions"]} == val
    assert "12 out-of-fold predictions of the validation part" in state["ordinal"]["fitted_on"]
    # the head: refitted from the validation images' OOF values alone gives the same cut points
    rows = state["cv_fit"]["predictions"]
    v, g = np.array([r["value"] for r in rows]), np.array([r["truth"] for r in rows])
    again = ordinal_fit.fit(v, g, 3)
    assert again["cut_points"] == state["ordinal"]["cut_points"] and again["sigma"] == state["ordinal"]["sigma"]
    p = ordinal.probabilities_np(v, again["cut_points"], again["sigma"])
    assert_youden_optimal(state["grading_threshold"], g >= 1, p[:, 1:].sum(1))
    assert state["best"] == pytest.approx(state["cv_fit"]["qwk"])
    from medview.training import cards

    card = cards.render("toy-graded", state, None)
    assert "Out-of-fold on 30 images: QWK" in card and "spot present AUC" in card
    assert "On the 12 out-of-fold predictions of the validation part's images" in card
    assert f"sigma {state['ordinal']['sigma']} fitted on 12 out-of-fold predictions" in card
    # the package: the mean of the members' values through the fitted head, flag threshold written
    ens = package.validate(package_from_checkpoint("toy-graded", out=tmp_path / "pkg", card="# toy\n"))
    assert ens.ok, ens.reason
    out = ens.manifest["output"]
    assert out["ordinal"]["cut_points"] == again["cut_points"]
    assert out["grading"]["flag"]["threshold"] == pytest.approx(round(state["grading_threshold"], 4))
    img = split.test[0].extra["array"]
    vals = [float(out[0]) for out in _member_outputs(recipe, 3, img)]
    want = ordinal.probabilities_np(np.array([np.mean(vals)]), again["cut_points"], again["sigma"])[0]
    pred = pipeline.run_model(ens, Volume(img, meta={"Modality": "OT"}))
    assert [pred.probabilities[c] for c in ("g0", "g1", "g2")] == pytest.approx(list(want), abs=1e-5)
