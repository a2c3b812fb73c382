"""MONAI bundle import: nothing runs without --trust; with it, a plain MedView package results."""

import json
import zipfile

import numpy as np
import pytest

from medview.cli import main
from medview.inference import bundle, networks, package, pipeline
from medview.io.volume import Volume

NET_ARGS = {"spatial_dims": 3, "in_channels": 1, "out_channels": 3, "channels": [4, 8], "strides": [2],
            "num_res_units": 1}


def _make_bundle(root, marker, weights="pt", with_network_def=True):
    import torch

    torch.manual_seed(0)
    net = networks.build_network("UNet", NET_ARGS).eval()
    (root / "configs").mkdir(parents=True)
    (root / "models").mkdir()
    meta = {
        "name": "Spleen CT demo", "version": "0.3.1", "authors": "test", "description": "tiny",
        "network_data_format": {
            "inputs": {"image": {"type": "image", "format": "hounsfield", "modality": "CT", "num_channels": 1,
                                 "spatial_shape": [16, 16, 16], "dtype": "float32"}},
            "outputs": {"pred": {"type": "image", "format": "segmentation", "num_channels": 3,
                                 "spatial_shape": [16, 16, 16],
                                 "channel_def": {"0": "background", "1": "spleen", "2": "liver"}}},
        },
    }
    (root / "configs" / "metadata.json").write_text(json.dumps(meta))
    cfg = {
        "imports": ["$import os"],
        "spatial": 3,
        "side_effect": f"$open({str(marker)!r}, 'w').write('ran')",
        "preprocessing": {"_target_": "Compose", "transforms": [
            {"_target_": "LoadImaged", "keys": "image"},
            {"_target_": "EnsureChannelFirstd", "keys": "image"},
            {"_target_": "Orientationd", "keys": "image", "axcodes": "RAS"},
            {"_target_": "Spacingd", "keys": "image", "pixdim": [1.5, 1.5, 2.0]},
            {"_target_": "ScaleIntensityRanged", "keys": "image", "a_min": -57, "a_max": 164, "b_min": 0,
             "b_max": 1, "clip": True},
            {"_target_": "RandGaussianNoised", "keys": "image", "prob": 0.0},
        ]},
        "inferer": {"_target_": "SlidingWindowInferer", "roi_size": [16, 16, 16], "overlap": 0.5},
    }
    if with_network_def:
        cfg["network_def"] = {"_target_": "monai.networks.nets.UNet", "spatial_dims": "@spatial",
                              "in_channels": 1, "out_channels": 3, "channels": "$[4, 8]", "strides": [2],
                              "num_res_units": 1}
    (root / "configs" / "inference.json").write_text(json.dumps(cfg))
    if weights == "pt":
        torch.save(net.state_dict(), root / "models" / "model.pt")
    else:
        torch.jit.script(net).save(str(root / "models" / "model.ts"))
    return net


def test_import_needs_trust_and_evaluates_nothing_before(tmp_path, capsys):
    marker = tmp_path / "ran.txt"
    _make_bundle(tmp_path / "b", marker)
    dest = tmp_path / "models"
    rc = main(["models", "import", str(tmp_path / "b"), "--dest", str(dest)])
    out = capsys.readouterr().out
    assert rc == 3 and "--trust" in out and "expression" in out
    assert not dest.exists() and not marker.exists()
    with pytest.raises(bundle.BundleError, match="--trust"):
        bundle.import_bundle(tmp_path / "b", dest)
    report = bundle.inspect_bundle(tmp_path / "b")
    assert report.architecture == "UNet" and len(report.expressions) == 3
    assert any("RandGaussianNoised" in n for n in report.notes)


@pytest.mark.parametrize("weights", ["pt", "ts"])
def test_import_with_trust_gives_a_plain_package_with_the_same_outputs(tmp_path, capsys, weights):
    import torch

    marker = tmp_path / "ran.txt"
    net = _make_bundle(tmp_path / "b", marker, weights=weights)
    src = tmp_path / "b"
    if weights == "ts":  # also exercise the zip form
        src = tmp_path / "bundle.zip"
        with zipfile.ZipFile(src, "w") as zf:
            for p in (tmp_path / "b").rglob("*"):
                zf.write(p, "spleen_demo/" + str(p.relative_to(tmp_path / "b")))
    dest = tmp_path / "models"
    rc = main(["models", "import", str(src), "--dest", str(dest), "--trust"])
    assert rc == 0, capsys.readouterr()
    assert not marker.exists()  # only network_def was resolved; other expressions never ran
    pkg = package.validate(dest / "spleen-ct-demo")
    assert pkg.ok, pkg.reason
    m = pkg.manifest
    assert m["network"] == {"architecture": "UNet", "args": NET_ARGS}
    assert m["input"]["orientation"] == "RAS" and m["input"]["spacing"] == [1.5, 1.5, 2.0]
    assert m["input"]["normalization"] == {"kind": "ct_window", "center": 53.5, "width": 221.0}
    assert m["input"]["roi_size"] == [16, 16, 16] and m["modality"] == ["CT"]
    assert [lab["name"] for lab in m["output"]["labels"]] == ["spleen", "liver"]
    assert "Research use only" in (pkg.path / "MODEL_CARD.md").read_text()
    loaded = package.load_network(pkg)
    x = torch.randn(1, 1, 16, 16, 16)
    with torch.no_grad():
        assert torch.allclose(loaded(x), net(x), atol=1e-5)
    vol = Volume(np.random.default_rng(0).normal(40, 50, (10, 20, 20)).astype(np.float32), (1.0, 1.0, 3.0),
                 meta={"Modality": "CT"})
    pred = pipeline.run_model(pkg, vol)
    assert pred.labels.same_geometry(vol)


def test_torchscript_without_network_def_is_refused_with_the_reason(tmp_path, capsys):
    _make_bundle(tmp_path / "b", tmp_path / "m", weights="ts", with_network_def=False)
    rc = main(["models", "import", str(tmp_path / "b"), "--dest", str(tmp_path / "models"), "--trust"])
    err = capsys.readouterr().err
    assert rc == 2 and "network_def" in err
    assert not (tmp_path / "models").exists()


def test_network_outside_the_allow_list_is_refused(tmp_path, capsys):
    _make_bundle(tmp_path / "b", tmp_path / "m")
    cfg_path = tmp_path / "b" / "configs" / "inference.json"
    cfg = json.loads(cfg_path.read_text())
    cfg["network_def"]["_target_"] = "my_package.EvilNet"
    cfg_path.write_text(json.dumps(cfg))
    rc = main(["models", "import", str(tmp_path / "b"), "--dest", str(tmp_path / "models"), "--trust"])
    assert rc == 2 and "unknown network architecture" in capsys.readouterr().err
