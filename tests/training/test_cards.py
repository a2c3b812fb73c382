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


def test_evaluate_card_refuses_without_the_training_record(tmp_path, monkeypatch, capsys):
    """`evaluate --card` on a machine without the run's checkpoint state must not write a card with
    empty data/split/training sections (it once did: "Time: 0.0 min ... None epochs")."""
    from medview.cli import main
    from medview.inference.package import find_package

    monkeypatch.setenv("MEDVIEW_CHECKPOINTS", str(tmp_path / "none"))
    card = find_package("knee-oa").card_path
    before = card.read_bytes()
    assert main(["evaluate", "knee-oa", "--card"]) == 2
    assert "no training record 'knee-oa'" in capsys.readouterr().err
    assert card.read_bytes() == before
