"""Fold-ensemble packages (`network.members`): the logits of the members averaged, one weights
file, Grad-CAM averaged over the members, and manifests that say otherwise refused."""

from __future__ import annotations

import json
from types import SimpleNamespace

import numpy as np
import pytest

from medview.inference import networks, package, pipeline
from medview.inference.cam import cam_maps
from medview.io.volume import Volume
from tests.inference import toys


@pytest.fixture(scope="module")
def members(tmp_path_factory):
    root = tmp_path_factory.mktemp("members")
    return [toys.train_classifier(root / f"m{i}", steps=12, seed=10 + i, model_id=f"toy-m{i}") for i in range(2)]


@pytest.fixture(scope="module")
def ensemble(members, tmp_path_factory):
    states = [package.load_network(m).state_dict() for m in members]
    manifest = json.loads(json.dumps(members[0].manifest))
    manifest["id"] = "toy-ensemble"
    manifest["network"]["members"] = 2
    return package.write_package(tmp_path_factory.mktemp("ens") / "toy-ensemble", manifest,
                                 networks.stack_states(states), "# Toy ensemble\nTest only.\n")


def _logits(pkg, x):
    import torch

    with torch.no_grad():
        return package.load_network(pkg)(torch.from_numpy(x)).numpy()


def test_ensemble_probabilities_are_the_softmax_of_the_mean_member_logit(members, ensemble):
    rng = np.random.default_rng(3)
    img = np.stack([toys.cls_sample(rng, bool(i % 2))[0] for i in range(4)]).astype(np.float32)
    x = img[:, None]
    z = (_logits(members[0], x) + _logits(members[1], x)) / 2
    np.testing.assert_allclose(_logits(ensemble, x), z, rtol=1e-5, atol=1e-5)
    # the two members differ, so the mean is not either of them
    assert np.abs(_logits(members[0], x) - _logits(members[1], x)).max() > 1e-3
    pred = pipeline.run_model(ensemble, Volume(img[1], meta={"Modality": "OT"}))
    p = np.exp(z[1] - z[1].max())
    p /= p.sum()
    assert pred.probabilities["spot"] == pytest.approx(float(p[1]), abs=1e-5)
    assert pred.to_json()["model"]["sha256"] == ensemble.sha256


def test_ensemble_gradcam_is_the_mean_of_the_members_maps(members, ensemble):
    import torch

    rng = np.random.default_rng(4)
    batch = np.stack([toys.cls_sample(rng, True)[0] for _ in range(3)])[:, None].astype(np.float32)

    def raw(pkg):
        runner = SimpleNamespace(device=torch.device("cpu"), batch_size=2, messages=[])
        return cam_maps(pkg, runner, batch, "gradcam", 1, None, lambda a, d: torch.from_numpy(a).to(d))

    both = raw(ensemble)
    assert both.shape == (3, 64, 64)
    # each member's map is for its own score; the ensemble's map is their mean
    np.testing.assert_allclose(both, (raw(members[0]) + raw(members[1])) / 2, rtol=1e-4, atol=1e-6)
    pred = pipeline.run_model(ensemble, Volume(batch[0, 0], meta={"Modality": "OT"}), cam="gradcam",
                              cam_class="spot")
    assert pred.heatmap is not None and float(pred.heatmap.array.max()) == pytest.approx(1.0)


def test_manifests_with_a_wrong_member_count_are_refused(members, ensemble, tmp_path):
    base = json.loads(json.dumps(ensemble.manifest))
    for bad in (0, 17, True, "2", 1.5):
        m = json.loads(json.dumps(base))
        m["network"]["members"] = bad
        assert any("network.members" in e for e in package.manifest_errors(m)), bad
    # one member's weights do not make a two-member package, and the error says why
    m = json.loads(json.dumps(base))
    with pytest.raises(package.PackageError, match="does not fit"):
        package.write_package(tmp_path / "bad", m, package.load_network(members[0]).state_dict(), "# bad\n")
    assert networks.members(members[0].manifest["network"]) == 1
    assert networks.members(ensemble.manifest["network"]) == 2
