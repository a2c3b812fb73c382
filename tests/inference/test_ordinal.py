"""The ordinal_probit output (one graded value -> ordered class probabilities): the link's
math, the fit on validation, the manifest check, and a one-output network through run_model with
the grade, flag and Grad-CAM."""

from __future__ import annotations

import json

import numpy as np
import pytest

from medview.inference import ordinal
from medview.training.ordinal_fit import fit

CUTS = [0.5, 1.4, 2.6, 3.5]


def test_probabilities_sum_to_one_and_the_flag_rises_with_the_value():
    v = np.linspace(-2, 6, 81)
    p = ordinal.probabilities_np(v, CUTS, 0.3)
    assert np.allclose(p.sum(1), 1.0) and (p >= 0).all()
    flag = p[:, 2:].sum(1)
    assert (np.diff(flag) >= -1e-12).all() and flag[0] < 1e-6 and flag[-1] > 1 - 1e-6
    # a value well inside an interval: that grade is the most probable
    for value, grade in ((0.0, 0), (0.95, 1), (2.0, 2), (3.05, 3), (5.0, 4)):
        assert int(ordinal.probabilities_np([value], CUTS, 0.2).argmax()) == grade


def test_torch_and_numpy_agree():
    import torch

    v = np.array([-1.0, 0.7, 2.4, 3.3, 9.0])
    pt = ordinal.probabilities_torch(torch.tensor(v[:, None], dtype=torch.float64),
                                     {"ordinal": {"cut_points": CUTS, "sigma": 0.45}}).numpy()
    assert np.allclose(pt, ordinal.probabilities_np(v, CUTS, 0.45), atol=1e-9)


def test_fit_recovers_cut_points_and_noise():
    rng = np.random.default_rng(1)
    y = rng.integers(0, 5, 2000)
    v = y + rng.normal(0, 0.4, y.size)  # a regression whose true cut points are half-way
    spec = fit(v, y, 5)
    assert np.allclose(spec["cut_points"], [0.5, 1.5, 2.5, 3.5], atol=0.15)
    assert 0.2 < spec["sigma"] < 0.6
    # a biased regression (grades read 0.3 high): the cut points follow the bias
    shifted = fit(v + 0.3, y, 5)
    assert np.allclose(shifted["cut_points"], np.array(spec["cut_points"]) + 0.3, atol=0.15)


def test_manifest_check():
    out = {"classes": list("abcde"), "activation": "ordinal_probit"}
    assert ordinal.validate(out, 5)
    assert ordinal.validate(dict(out, ordinal={"cut_points": [0.5, 0.4, 2.5, 3.5], "sigma": 0.5}), 5)
    assert ordinal.validate(dict(out, ordinal={"cut_points": [0.5, 1.5, 2.5], "sigma": 0.5}), 5)
    assert ordinal.validate(dict(out, ordinal={"cut_points": CUTS, "sigma": 0}), 5)
    assert ordinal.validate(dict(out, ordinal={"cut_points": CUTS, "sigma": 0.5}), 5) == []


def test_one_output_grader_through_run_model(tmp_path):
    """A 1-output network packaged as ordinal_probit: grade = argmax, prediction.json graded,
    Grad-CAM of the value on the image grid."""
    import torch

    from medview.inference.networks import build_network
    from medview.inference.package import validate, write_package
    from medview.inference.pipeline import run_model
    from medview.io.volume import Volume

    args = {"spatial_dims": 2, "n_input_channels": 1, "num_classes": 1, "conv1_t_stride": 2, "widen_factor": 0.25}
    torch.manual_seed(0)
    net = build_network("resnet10", args)
    manifest = {
        "schema_version": 1, "id": "toy-ordinal", "name": "toy ordinal grader", "version": "0.0.1",
        "task": "classification", "modality": ["OT", ""], "body_part": "any",
        "network": {"architecture": "resnet10", "args": args},
        "input": {"dims": 2, "channels": "grey", "size": [64, 64], "spacing": None, "orientation": None,
                  "normalization": {"kind": "zscore"}},
        "output": {"classes": ["G0", "G1", "G2", "G3", "G4"], "activation": "ordinal_probit",
                   "ordinal": {"cut_points": CUTS, "sigma": 0.4},
                   "grading": {"scale": "G", "flag": {"name": "G2 or worse", "min_grade": 2, "threshold": 0.5}}},
        "gradcam_layer": "layer4",
    }
    folder = tmp_path / "toy-ordinal"
    write_package(folder, manifest, net.state_dict(), "# toy\n")
    pkg = validate(folder)
    assert pkg.ok, pkg.reason
    rng = np.random.default_rng(0)
    vol = Volume(rng.integers(0, 255, (1, 80, 90)).astype(np.float32), (1.0, 1.0, 1.0), meta={"Modality": "OT"})
    pred = run_model(pkg, vol, device="cpu", cam="gradcam", unverified_ok=True)
    d = json.loads(json.dumps(pred.to_json()))
    p = np.array([d["probabilities"][c] for c in manifest["output"]["classes"]])
    assert p.sum() == pytest.approx(1.0, abs=1e-5)
    g = d["grading"]
    assert g["grade_name"] == d["top_class"] == manifest["output"]["classes"][int(p.argmax())]
    assert g["flag"]["probability"] == pytest.approx(float(p[2:].sum()), abs=1e-5)
    assert pred.heatmap is not None and pred.heatmap.same_geometry(vol)
    assert np.isfinite(pred.heatmap.array).all()


def test_fit_keeps_every_grade_reachable_on_a_regression_that_skips_one():
    """Seen on knee-oa's validation: cuts fitted to a regression that rarely lands on KL3 left it a
    0.54-wide band with sigma 0.74, and no knee was ever called KL3."""
    from medview.inference.ordinal import probabilities_np
    from medview.training.ordinal_fit import band_shares, every_grade_reachable

    rng = np.random.default_rng(3)
    y = rng.integers(0, 5, 1500)
    v = np.where(y == 3, rng.choice([2.4, 3.6], y.size), y) + rng.normal(0, 0.6, y.size)  # KL3 read as 2 or 4
    spec = fit(v, y, 5)
    cuts = np.asarray(spec["cut_points"])
    assert np.all(np.diff(cuts) >= 0.5 - 1e-9)
    assert every_grade_reachable(cuts, spec["sigma"])
    grid = np.linspace(-2, 6, 801)
    assert set(np.argmax(probabilities_np(grid, cuts, spec["sigma"]), axis=1)) == {0, 1, 2, 3, 4}
    assert not every_grade_reachable([1.11, 1.80, 2.66, 3.20], 0.74)  # the knee fit that lost KL3
    # reachable only at the band's very centre (1 of 54 validation KL3 knees called KL3): refused
    assert not every_grade_reachable([1.0273, 1.8625, 2.6653, 3.1653], 0.5852)
    assert band_shares(cuts, spec["sigma"]).min() >= 0.5
