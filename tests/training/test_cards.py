"""Model cards: the graded-output section says how a grader's result reads, from its manifest."""

from __future__ import annotations

from medview.training.cards import _graded_section
from medview.training.recipes import RECIPES


def test_graded_section_names_the_scale_the_flag_and_its_validation_threshold():
    lines = "\n".join(_graded_section(RECIPES["dr-grade"].manifest, {"grading_threshold": 0.4213}))
    assert "## Graded output" in lines
    assert "none = no DR" in lines and "proliferative = proliferative DR" in lines
    assert 'Flag "referable DR": P(grade >= 2)' in lines and ">= 0.4213" in lines
    knee = "\n".join(_graded_section(RECIPES["knee-oa"].manifest, {}))
    assert "KL0" in knee and "KL4" in knee


def test_classifiers_without_grading_get_no_graded_section():
    assert _graded_section(RECIPES["breast-us"].manifest, {"grading_threshold": 0.5}) == []


def test_evaluate_card_refuses_without_any_training_record(tmp_path, monkeypatch, capsys):
    """`evaluate --card` with neither the run's checkpoint state nor a training record in the package
    must not write a card with empty data/split/training sections (it once did: "Time: 0.0 min ...
    None epochs")."""
    import json
    import shutil

    from medview.cli import main
    from medview.inference.package import find_package

    monkeypatch.setenv("MEDVIEW_CHECKPOINTS", str(tmp_path / "none"))
    copy = tmp_path / "knee-oa"
    shutil.copytree(find_package("knee-oa").path, copy)
    manifest = json.loads((copy / "model.json").read_text())
    del manifest["training"]
    (copy / "model.json").write_text(json.dumps(manifest))
    before = (copy / "MODEL_CARD.md").read_bytes()
    assert main(["evaluate", "knee-oa", "--package", str(copy), "--card"]) == 2
    assert "no training record for 'knee-oa'" in capsys.readouterr().err
    assert (copy / "MODEL_CARD.md").read_bytes() == before


def test_card_training_facts_rebuilt_from_the_package_record(shared_data):
    """Without the checkpoint state, the shipped package's own record gives the card its split (rebuilt
    from the recipe, deterministic), epochs and initialisation."""
    from medview.inference.package import find_package
    from medview.training.cards import render, state_from_manifest

    manifest = find_package("dr-grade").manifest
    state = state_from_manifest("dr-grade", manifest, shared_data)
    assert state["split"]["train"] + state["split"]["val"] + len(state["split"]["test"]) == 450
    assert state["best_epoch"] == manifest["training"]["best_epoch"]
    text = render("dr-grade", state, None)
    assert f"{manifest['training']['epochs']} epochs" in text and "Sizes: train None" not in text
    assert "--init enc-fundus.safetensors" in text
