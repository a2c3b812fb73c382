"""Graded models (dr-grade, knee-oa): the grade/value/flag logic, and the shipped packages run
through the app's pipeline on real held-out images (two per grade, sorted names) with the
graded fields in prediction.json and a grading better than chance."""

from __future__ import annotations

import json

import numpy as np
import pytest

from medview.config import bundled_models_dir
from medview.inference import grading
from medview.training import metrics
from medview.training.recipes import RECIPES

GRADERS = ["dr-grade", "knee-oa"]
CLASSES = {"dr-grade": ["none", "mild", "moderate", "severe", "proliferative"],
           "knee-oa": ["KL0", "KL1", "KL2", "KL3", "KL4"]}


def test_grade_is_argmax_value_is_expected_grade_flag_sums_upper_grades():
    classes = CLASSES["knee-oa"]
    spec = RECIPES["knee-oa"].manifest["output"]["grading"]
    p = np.array([0.05, 0.15, 0.4, 0.3, 0.1])
    g = grading.grade_result(classes, p, spec)
    assert g["grade_name"] == "KL2" and g["grade_word"] == "minimal"
    assert g["value"] == pytest.approx(0.15 + 0.8 + 0.9 + 0.4)
    assert g["flag"]["probability"] == pytest.approx(0.8)
    assert g["flag"]["positive"] is True
    assert grading.grade_text(g).startswith("KL 2.2: minimal (KL2")
    # bimodal probabilities: the value (2.0) falls between the modes, the grade stays the argmax
    g2 = grading.grade_result(classes, np.array([0.45, 0.0, 0.1, 0.0, 0.45 - 1e-3]), spec)
    assert g2["grade_name"] == "KL0" and 1.5 < g2["value"] < 2.5


def test_grading_block_is_validated():
    out = {"classes": CLASSES["dr-grade"], "grading": {"words": ["a"], "flag": {"name": "x", "min_grade": 9}}}
    errs = grading.validate_grading(out)
    assert any("words" in e for e in errs) and any("min_grade" in e for e in errs)
    assert grading.validate_grading(RECIPES["dr-grade"].manifest["output"]) == []


def test_quadratic_weighted_kappa_and_threshold():
    y = np.array([0, 1, 2, 3, 4, 0, 2])
    assert metrics.quadratic_weighted_kappa(y, y, 5) == pytest.approx(1.0)
    assert metrics.quadratic_weighted_kappa(y, 4 - y, 5) < 0
    # one grade off costs less than four grades off
    assert metrics.quadratic_weighted_kappa(y, np.clip(y + 1, 0, 4), 5) > \
        metrics.quadratic_weighted_kappa(y, np.where(y == 0, 4, y), 5)
    t = np.array([0, 0, 0, 1, 1, 1], bool)
    thr = metrics.choose_flag_threshold(t, np.array([0.1, 0.2, 0.3, 0.6, 0.7, 0.8]))
    assert 0.3 < thr <= 0.6


@pytest.mark.parametrize("model_id", GRADERS)
def test_shipped_grader_on_held_out_images(model_id, shared_data, tmp_path):
    if not (bundled_models_dir() / model_id / "model.json").is_file():
        pytest.skip(f"{model_id} package not bundled")
    from medview.inference.package import find_package
    from medview.inference.pipeline import run_model
    from medview.io.loading import load_volume

    pkg = find_package(model_id)
    assert pkg.ok, pkg.reason
    assert pkg.classes == CLASSES[model_id]
    split = RECIPES[model_id].split(shared_data)
    assert not {s.group for s in split.test} & ({s.group for s in split.train} | {s.group for s in split.val})
    picked = []
    for c in range(5):
        picked += [s for s in split.test if s.target == c][:2]
    truth, probs, cam_done = [], [], False
    for s in picked:
        pred = run_model(pkg, load_volume(s.image), device="cpu", unverified_ok=True,
                         cam=None if cam_done else "gradcam")
        if not cam_done:  # Grad-CAM works for the grader
            assert pred.heatmap is not None and float(pred.heatmap.array.max()) > 0
            cam_done = True
        d = json.loads(json.dumps(pred.to_json()))
        g = d["grading"]
        assert set(d["probabilities"]) == set(CLASSES[model_id])
        assert g["grade_name"] == d["top_class"]  # the grade shown is the argmax class
        assert 0.0 <= g["value"] <= 4.0
        assert g["flag"]["name"] in ("referable DR", "OA present")
        assert g["flag"]["positive"] == (g["flag"]["probability"] >= g["flag"]["threshold"])
        truth.append(s.target)
        probs.append([d["probabilities"][c] for c in CLASSES[model_id]])
    y, p = np.array(truth), np.array(probs)
    mae = float(np.abs(p.argmax(1) - y).mean())
    flag_auc = metrics.roc_auc(y >= 2, p[:, 2:].sum(1))
    # a constant or random network cannot do this on two images per grade
    assert mae <= 1.0, (mae, p.argmax(1), y)
    assert flag_auc >= 0.75, flag_auc


def test_infer_prints_the_grade_on_its_scale(shared_data, capsys, tmp_path):
    if not (bundled_models_dir() / "knee-oa" / "model.json").is_file():
        pytest.skip("knee-oa package not bundled")
    from medview.cli import main

    image = sorted((shared_data / "xray-knee-kl" / "val" / "2").glob("*"))[0]
    assert main(["infer", "--model", "knee-oa", str(image), "--out", str(tmp_path / "out"),
                 "--unverified-ok", "--workers", "1"]) == 0
    out = capsys.readouterr().out
    line = [s.split("] ", 1)[-1] for s in out.splitlines() if f"{image.name}: " in s][0]  # "[1/1] " prefix off
    d = json.loads(next((tmp_path / "out").rglob("prediction.json")).read_text())["grading"]
    # "KL 2.4: minimal (KL2, p 0.61); OA present: yes (p 0.83 >= 0.50)"
    assert line.startswith(f"{image.name}: KL {d['value']:.1f}: {d['grade_word']} ({d['grade_name']}, p ")
    assert f"OA present: {'yes' if d['flag']['positive'] else 'no'}" in line


def test_graded_head_is_fitted_at_the_packages_default_tta_setting():
    """The cut points are fitted on ``runner.graded_values``: it must give the value the app computes
    at the package's default setting (one pass for "fast", the mirror mean for "accurate")."""
    import copy

    import torch

    from medview.training import runner

    class LeftHalf(torch.nn.Module):  # the mean of the image's left half: its mirror gives the right half
        def forward(self, x):
            return x[..., : x.shape[-1] // 2].mean(dim=(1, 2, 3))[:, None]

    x = np.zeros((1, 8, 8), np.float32)
    x[..., :4] = 2.0  # left half 2, right half 0
    recipe = RECIPES["knee-oa"]
    manifest = copy.deepcopy(recipe.manifest)
    assert manifest["output"]["tta"] == "hflip"
    manifest["output"]["tta_default"] = "fast"
    assert runner.graded_values(recipe, LeftHalf(), {"x": x}, manifest) == pytest.approx(2.0)
    manifest["output"]["tta_default"] = "accurate"
    assert runner.graded_values(recipe, LeftHalf(), {"x": x}, manifest) == pytest.approx(1.0)
    for model_id in ("knee-oa", "dr-grade"):  # shipped graders run where their heads were fitted
        assert runner.default_setting(RECIPES[model_id].manifest) == "accurate"
