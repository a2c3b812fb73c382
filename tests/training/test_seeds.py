"""Seed ensembles (`medview train ID --seeds K`): K runs on the recipe's own split that differ
only in their seed, each chosen on validation; the head (cut points, sigma, flag threshold, or the
temperature) fitted again on validation for the members' mean; a package that averages them and
whose validation part may still be measured (its members never trained on it)."""

from __future__ import annotations

import argparse
import dataclasses

import numpy as np
import pytest

from medview.training import checkpoint as ckpt
from medview.training import datasets, seeds
from medview.training.recipes import RECIPES, train_command
from tests.training.test_folds import _member_outputs as member_outputs
from tests.training.test_folds import assert_youden_optimal, graded_toy, toy_recipe  # noqa: F401 (fixtures)


def _member_outputs(recipe, k: int, img: np.ndarray) -> list[np.ndarray]:
    return member_outputs(recipe, k, img, name=seeds.member_name)


def test_segmentation_recipes_and_single_members_are_refused():
    with pytest.raises(seeds.SeedError, match="for classifiers"):
        seeds.train_seeds("polyp", 2)
    with pytest.raises(seeds.SeedError, match="at least 2"):
        seeds.train_seeds("knee-oa", 1)


@pytest.mark.slow
def test_graded_seed_ensemble_refits_the_head_for_the_mean_and_packages_it(graded_toy, tmp_path):  # noqa: F811
    from medview.inference import ordinal, package, pipeline
    from medview.io.volume import Volume
    from medview.training import cards, commands, ordinal_fit, runner
    from medview.training.packaging import package_from_checkpoint

    recipe, split = graded_toy
    recipe = dataclasses.replace(recipe, folds=1)
    RECIPES["toy-graded"] = recipe  # monkeypatched by the fixture: restored after the test
    state = seeds.train_seeds("toy-graded", 2, init="", fresh=True, log=lambda s: None)
    assert state["members"] == 2 and state["ensemble"] == "seeds"
    assert [m["seed"] for m in state["seeds"]] == [datasets.SEED, datasets.SEED + 1]
    # each member is a run of its own seed on the same split (not the same weights twice)
    for i, m in enumerate(state["seeds"]):
        assert ckpt.read_state(seeds.member_name("toy-graded", i))["seed"] == m["seed"]
    img = split.test[0].extra["array"]
    vals = [float(o[0]) for o in _member_outputs(recipe, 2, img)]
    assert vals[0] != pytest.approx(vals[1], abs=1e-6)
    # the head: fitted on the validation part's values of the members' mean
    manifest = recipe.new_manifest()
    mean_vals = []
    for s in split.val:
        item = runner.cache_items(recipe, [s], manifest)[0]
        outs = _member_outputs(recipe, 2, item["x"][0])
        mean_vals.append(np.mean([float(o[0]) for o in outs]))
    y = np.array([s.target for s in split.val])
    again = ordinal_fit.fit(np.array(mean_vals), y, 3)
    assert state["ordinal"]["cut_points"] == pytest.approx(again["cut_points"], abs=1e-4)
    p = ordinal.probabilities_np(np.array(mean_vals), again["cut_points"], again["sigma"])
    assert_youden_optimal(state["grading_threshold"], y >= 1, p[:, 1:].sum(1))
    # the command and the card say what it is
    assert train_command("toy-graded", state) == "medview train toy-graded --seeds 2"
    card = cards.render("toy-graded", state, None)
    assert "a seed ensemble of 2 of them" in card and "### Seed ensemble" in card
    assert "checkpoint chosen on the validation part" in card and "Out-of-fold" not in card
    assert f"| 2 | {datasets.SEED + 1} |" in card
    # the package averages the members' values through the refitted head
    folder = package_from_checkpoint("toy-graded", out=tmp_path / "pkg", card="# toy\n")
    ens = package.validate(folder)
    assert ens.ok, ens.reason
    assert ens.manifest["network"]["members"] == 2 and ens.manifest["training"]["ensemble"] == "seeds"
    want = ordinal.probabilities_np(np.array([np.mean(vals)]), state["ordinal"]["cut_points"],
                                    state["ordinal"]["sigma"])[0]
    pred = pipeline.run_model(ens, Volume(img, meta={"Modality": "OT"}))
    assert [pred.probabilities[c] for c in ("g0", "g1", "g2")] == pytest.approx(list(want), abs=1e-5)
    # its validation part is a fair measure (unlike a fold ensemble's); the card rebuilds from the package
    assert not commands._is_fold_ensemble(argparse.Namespace(package=folder, model_id="toy-graded"))
    rebuilt = cards.state_from_manifest("toy-graded", ens.manifest)
    assert rebuilt["ensemble"] == "seeds" and rebuilt["split"]["val"] == len(split.val)
    assert "a seed ensemble of 2 of them" in cards.render("toy-graded", rebuilt, None)


@pytest.mark.slow
def test_softmax_seed_ensemble_folds_one_temperature_into_every_member(toy_recipe, tmp_path):  # noqa: F811
    from medview.inference import package, pipeline
    from medview.io.volume import Volume
    from medview.training.packaging import package_from_checkpoint

    recipe, split = toy_recipe
    state = seeds.train_seeds("toy-folds", 2, init="", fresh=True, log=lambda s: None)
    temp, bias = state["calibration"]["temperature"], np.array(state["calibration"]["bias"])
    ens = package.validate(package_from_checkpoint("toy-folds", out=tmp_path / "pkg", card="# toy\n"))
    assert ens.ok, ens.reason
    img = split.test[0].extra["array"]
    # member checkpoints keep their raw weights; the package holds them with T (and c) folded in
    z = np.mean([out / temp + bias for out in _member_outputs(recipe, 2, img)], axis=0)
    p = np.exp(z - z.max())
    p /= p.sum()
    pred = pipeline.run_model(ens, Volume(img, meta={"Modality": "OT"}))
    assert pred.probabilities["spot"] == pytest.approx(float(p[1]), abs=1e-5)
