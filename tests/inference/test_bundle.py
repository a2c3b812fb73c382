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
        "net_channels": [4, 8],
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
                              "in_channels": 1, "out_channels": 3, "channels": "@net_channels", "strides": [2],
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
    assert report.architecture == "UNet" and len(report.expressions) == 2
    assert f"side_effect = $open({str(marker)!r}, 'w').write('ran')" in out  # listed in full
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
    assert not marker.exists()  # no expression ran
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


def _crafted(tmp_path, marker, where):
    """The demo bundle with a `$import os; os.system(...)`-style payload put at ``where``."""
    _make_bundle(tmp_path / "b", marker)
    cfg_path = tmp_path / "b" / "configs" / "inference.json"
    cfg = json.loads(cfg_path.read_text())
    payload = f"$__import__('os').system('touch {marker}')"
    if where == "argument":
        cfg["network_def"]["out_channels"] = payload
    elif where == "reference":  # a plain-looking @ reference to an expression
        cfg["n_out"] = payload
        cfg["network_def"]["out_channels"] = "@n_out"
    elif where == "nested reference":
        cfg["sizes"] = {"out": payload}
        cfg["network_def"]["out_channels"] = "@sizes#out"
    elif where == "object":  # a reference to something that would be instantiated
        cfg["act"] = {"_target_": "os.system", "command": f"touch {marker}"}
        cfg["network_def"]["act"] = "@act"
    elif where == "macro":
        cfg["network_def"]["channels"] = "%configs/other.json#channels"
    elif where == "target":
        cfg["network_def"]["_target_"] = payload
    elif where == "directive":
        cfg["network_def"]["_requires_"] = payload
    cfg_path.write_text(json.dumps(cfg))
    return payload


@pytest.mark.parametrize("where", ["argument", "reference", "nested reference", "object", "macro", "target",
                                   "directive"])
def test_trust_never_evaluates_a_crafted_expression(tmp_path, capsys, where):
    marker = tmp_path / "pwned.txt"
    payload = _crafted(tmp_path, marker, where)
    dest = tmp_path / "models"
    rc = main(["models", "import", str(tmp_path / "b"), "--dest", str(dest), "--trust"])
    text = capsys.readouterr()
    assert rc == 2, text
    assert not marker.exists()  # nothing ran
    assert not dest.exists()  # nothing written
    assert "network_def cannot be rebuilt without running bundle code" in text.err
    if where in ("argument", "reference", "nested reference", "target", "directive"):
        assert payload in text.out  # the expression is shown in full, not cut
    with pytest.raises(bundle.BundleError, match="without running bundle code"):
        bundle.import_bundle(tmp_path / "b", dest, trust_code=True)
    assert not marker.exists()


def test_without_trust_every_expression_is_listed_in_full(tmp_path, capsys):
    marker = tmp_path / "pwned.txt"
    _make_bundle(tmp_path / "b", marker)
    cfg_path = tmp_path / "b" / "configs" / "inference.json"
    cfg = json.loads(cfg_path.read_text())
    long = "$" + " + ".join(f"len('{i * 'x'}')" for i in range(30))  # > 60 characters
    cfg["postprocessing"] = {"_target_": "Compose", "transforms": [{"_target_": "Lambdad", "func": long}]}
    cfg_path.write_text(json.dumps(cfg))
    rc = main(["models", "import", str(tmp_path / "b"), "--dest", str(tmp_path / "models")])
    out = capsys.readouterr().out
    assert rc == 3 and long in out and "postprocessing#transforms#0#func" in out
    assert "imports#0 = $import os" in out and "3 config expression(s)" in out
    assert not marker.exists()
