"""The training command line: the command written into a card reproduces the run."""

import pytest

from medview.training.packaging import train_command
from medview.training.recipes import RECIPES


def test_train_command_names_the_initialisation_and_budget():
    rid = next(r.id for r in RECIPES.values() if r.init_from and r.folds == 1)  # starts from another model
    init, minutes = RECIPES[rid].init_from, RECIPES[rid].minutes
    assert train_command(rid, {"init": init, "train_minutes": minutes}) == f"medview train {rid}"
    assert train_command(rid, {"init": "", "train_minutes": minutes}) == f"medview train {rid} --scratch"
    assert train_command(rid, {"init": init, "train_minutes": minutes * 2}) == \
        f"medview train {rid} --minutes {minutes * 2:g}"
    plain = next(r.id for r in RECIPES.values() if not r.init_from)
    assert train_command(plain, {"init": None}) == f"medview train {plain}"
    # continued from its own previous package: reproducible only with the command that made that one first
    assert train_command(plain, {"init": plain}) == f"medview train {plain} && medview train {plain} --init {plain}"
    assert train_command(plain, {"init": plain, "init_command": f"medview train {plain} --minutes 3"}) == \
        f"medview train {plain} --minutes 3 && medview train {plain} --init {plain}"


def test_scratch_flag_reaches_the_runner(monkeypatch):
    from medview import cli
    from medview.training import runner

    seen = {}

    def fake_train(model_id, **kw):
        seen.update(kw)
        raise SystemExit(0)

    monkeypatch.setattr(runner, "train_model", fake_train)
    rid = next(r.id for r in RECIPES.values() if r.init_from and r.folds == 1)
    with pytest.raises(SystemExit):
        cli.main(["train", rid, "--scratch", "--no-package"])
    assert seen["init"] == ""


def test_a_fold_recipe_trains_its_folds_and_folds_1_trains_one_network(monkeypatch):
    from medview import cli
    from medview.training import folds, runner

    seen = {}

    def fake_folds(model_id, k, **kw):
        seen.update(kw, k=k, folds=True)
        raise SystemExit(0)

    def fake_train(model_id, **kw):
        seen.update(kw, folds=False)
        raise SystemExit(0)

    monkeypatch.setattr(folds, "train_folds", fake_folds)
    monkeypatch.setattr(runner, "train_model", fake_train)
    rid = next(r.id for r in RECIPES.values() if r.folds > 1)
    with pytest.raises(SystemExit):
        cli.main(["train", rid, "--scratch", "--no-package"])
    assert seen["folds"] and seen["k"] == RECIPES[rid].folds and seen["init"] == ""
    seen.clear()
    with pytest.raises(SystemExit):
        cli.main(["train", rid, "--folds", "1", "--no-package"])
    assert seen["folds"] is False
    # the card's command says which: the recipe's folds need no flag, a single run does
    st = {"init": RECIPES[rid].init_from, "train_minutes": RECIPES[rid].minutes}
    assert train_command(rid, {**st, "members": RECIPES[rid].folds}) == f"medview train {rid}"
    assert train_command(rid, st) == f"medview train {rid} --folds 1"


def test_a_fold_ensembles_validation_part_is_refused(capsys):
    from medview import cli

    rid = next(r.id for r in RECIPES.values() if r.folds > 1)  # the shipped package is its ensemble
    assert cli.main(["evaluate", rid, "--part", "val"]) == 2
    assert "fold ensemble" in capsys.readouterr().err
