"""Metric and calibration helpers against brute-force definitions."""

from __future__ import annotations

import numpy as np

from medview.training import calibration, metrics


def _auc_pairs(y, s):
    pos, neg = s[y == 1], s[y == 0]
    return np.mean([(p > n) + 0.5 * (p == n) for p in pos for n in neg])


def test_auc_matches_pair_counting_with_ties():
    rng = np.random.default_rng(1)
    y = rng.integers(0, 2, 200)
    s = np.round(rng.random(200) * 0.7 + 0.3 * y, 1)  # scores in [0, 1], many ties
    assert abs(metrics.roc_auc(y, s) - _auc_pairs(y, s)) < 1e-12
    assert abs(metrics.roc_auc_fast(y, s) - _auc_pairs(y, s)) < 1e-3
    assert metrics.roc_auc(np.ones(3), np.arange(3)) != metrics.roc_auc(np.ones(3), np.arange(3))  # NaN


def test_report_counts_sensitivity_and_specificity():
    y = np.array([0, 0, 1, 2, 2, 2])
    p = np.array([[.8, .1, .1], [.2, .7, .1], [.1, .8, .1], [.1, .1, .8], [.5, .1, .4], [.2, .2, .6]])
    rep = metrics.classification_report(y, p, ["a", "b", "c"], positive="c", threshold=0.5)
    assert rep["accuracy"] == 4 / 6
    assert rep["sensitivity_argmax"] == 2 / 3 and rep["specificity_argmax"] == 1.0
    assert rep["confusion"][2] == [1, 0, 2]


def test_temperature_fold_keeps_ranking_and_lowers_nll():
    import torch

    rng = np.random.default_rng(0)
    net = torch.nn.Sequential()
    net.add_module("fc", torch.nn.Linear(4, 3))
    x = rng.normal(size=(60, 4)).astype(np.float32)
    y = (x[:, 0] > 0).astype(int) + (x[:, 1] > 1)
    with torch.no_grad():
        net.fc.weight.mul_(20)  # over-confident
        before = net(torch.from_numpy(x)).numpy()
    info = calibration.calibrate(net, [{"x": xi, "y": yi} for xi, yi in zip(x, y, strict=False)], bias=False)
    with torch.no_grad():
        after = net(torch.from_numpy(x)).numpy()
    assert info["temperature"] > 1 and info["val_nll_after"] <= info["val_nll_before"]
    assert (before.argmax(1) == after.argmax(1)).all()
