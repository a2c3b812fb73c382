import json
import pickle

import numpy as np
import pytest

from medview.inference import networks, package

ARGS = {"spatial_dims": 2, "in_channels": 1, "out_channels": 2, "channels": [4, 8], "strides": [2]}


def _manifest(**over):
    m = {
        "schema_version": 1, "id": "tiny", "name": "Tiny", "version": "1.0.0", "task": "segmentation",
        "modality": ["MR"], "network": {"architecture": "UNet", "args": ARGS},
        "input": {"dims": 2, "channels": "grey", "normalization": {"kind": "zscore"}},
        "output": {"labels": [{"value": 1, "name": "thing", "color": [255, 0, 0]}]},
    }
    m.update(over)
    return m


def _write(folder, **over):
    net = networks.build_network("UNet", ARGS)
    return package.write_package(folder, _manifest(**over), net.state_dict(), "# Tiny\nresearch use only")


def test_build_network_allow_list():
    net = networks.build_network("resnet10", {"spatial_dims": 2, "n_input_channels": 1, "num_classes": 3})
    import torch

    assert net(torch.zeros(1, 1, 32, 32)).shape == (1, 3)
    assert networks.canonical_name("unet") == "UNet"
    with pytest.raises(networks.UnknownArchitecture, match="allowed"):
        networks.build_network("os.system", {})
    with pytest.raises(ValueError, match="UNet"):
        networks.build_network("UNet", {"no_such_argument": 1})
    assert networks.default_gradcam_layer("DenseNet121") == "class_layers.relu"


def test_write_validate_load_roundtrip(tmp_path):
    import torch

    pkg = _write(tmp_path / "tiny")
    assert pkg.ok, pkg.reason
    m = json.loads((tmp_path / "tiny" / "model.json").read_text())
    assert m["weights"]["sha256"] == package.sha256_file(tmp_path / "tiny" / "weights.safetensors")
    net = package.load_network(pkg, "cpu")
    assert not net.training
    assert net(torch.zeros(1, 1, 16, 16)).shape == (1, 2, 16, 16)


def test_write_rejects_state_dict_of_another_network(tmp_path):
    other = networks.build_network("UNet", dict(ARGS, channels=[4, 16]))
    with pytest.raises(Exception, match="fit|size mismatch|shape"):
        package.write_package(tmp_path / "bad", _manifest(), other.state_dict(), "card")
    with pytest.raises(package.PackageError, match="task"):
        package.write_package(tmp_path / "bad2", _manifest(task="detection"), {}, "card")


@pytest.mark.parametrize(
    "breakage, reason",
    [
        ("no_weights", "missing weights"),
        ("no_card", "MODEL_CARD"),
        ("no_manifest", "missing model.json"),
        ("bad_json", "not valid JSON"),
        ("hash", "sha256 mismatch"),
        ("architecture", "unknown network architecture"),
        ("schema", "missing task"),
        ("labels", "output.labels"),
        ("weights_path", "plain *.safetensors"),
    ],
)
def test_bad_packages_are_listed_unusable_and_never_load(tmp_path, breakage, reason):
    folder = tmp_path / "models" / "tiny"
    pkg = _write(folder)
    mpath = folder / "model.json"
    m = json.loads(mpath.read_text())
    if breakage == "no_weights":
        (folder / "weights.safetensors").unlink()
    elif breakage == "no_card":
        (folder / "MODEL_CARD.md").unlink()
    elif breakage == "no_manifest":
        mpath.unlink()
    elif breakage == "bad_json":
        mpath.write_text("{not json")
    elif breakage == "hash":
        data = bytearray((folder / "weights.safetensors").read_bytes())
        data[-1] ^= 0xFF
        (folder / "weights.safetensors").write_bytes(bytes(data))
    elif breakage == "architecture":
        m["network"]["architecture"] = "subprocess.Popen"
    elif breakage == "schema":
        del m["task"]
    elif breakage == "labels":
        m["output"]["labels"] = [{"value": 0, "name": "bg"}]
    elif breakage == "weights_path":
        m["weights"]["file"] = "../elsewhere.safetensors"
    if breakage in ("architecture", "schema", "labels", "weights_path"):
        mpath.write_text(json.dumps(m))
    found = package.discover_packages([("user", tmp_path / "models")])
    assert len(found) == 1
    bad = found[0]
    assert bad.status == "unusable" and reason in bad.reason, bad.reason
    with pytest.raises(package.PackageError):
        package.load_network(bad)
    with pytest.raises(package.PackageError, match="unusable"):
        package.find_package("tiny", found)
    assert pkg.ok  # the object returned at write time was fine


def test_pickled_weights_never_load(tmp_path):
    """A pickle (what torch.save writes) in place of the safetensors file, hash updated: refused."""
    folder = tmp_path / "tiny"
    _write(folder)
    marker = tmp_path / "pwned"

    class Evil:
        def __reduce__(self):
            return (open, (str(marker), "w"))

    (folder / "weights.safetensors").write_bytes(pickle.dumps({"w": Evil()}))
    m = json.loads((folder / "model.json").read_text())
    m["weights"]["sha256"] = package.sha256_file(folder / "weights.safetensors")
    (folder / "model.json").write_text(json.dumps(m))
    pkg = package.validate(folder)
    assert pkg.ok  # the files are consistent, so only loading can tell
    with pytest.raises(package.PackageError, match="safetensors"):
        package.load_network(pkg)
    assert not marker.exists()


def test_hash_checked_again_at_load_time(tmp_path):
    pkg = _write(tmp_path / "tiny")
    net = networks.build_network("UNet", ARGS)
    for p in net.parameters():
        p.data.fill_(0.5)
    from safetensors.torch import save_file

    save_file({k: v.contiguous() for k, v in net.state_dict().items()}, str(pkg.weights_path))
    with pytest.raises(package.PackageError, match="sha256 mismatch"):
        package.load_network(pkg)


def test_discovery_sources_and_precedence(tmp_path, monkeypatch):
    from medview import config

    env_dir = tmp_path / "env"
    user_dir = config.user_data_dir() / "models"
    _write(env_dir / "a", id="shared-id", version="2.0.0")
    _write(user_dir / "b", id="shared-id", version="1.0.0")
    _write(user_dir / "c", id="only-user")
    monkeypatch.setenv("MEDVIEW_MODELS", str(env_dir))
    found = package.discover_packages()
    by_source = {(p.source, p.id): p for p in found}
    assert by_source[("env", "shared-id")].ok and by_source[("env", "shared-id")].version == "2.0.0"
    assert not by_source[("user", "shared-id")].ok and "shadowed" in by_source[("user", "shared-id")].reason
    assert by_source[("user", "only-user")].ok
    assert package.find_package("shared-id").version == "2.0.0"
    with pytest.raises(package.PackageError, match="no model package"):
        package.find_package("nope")


def test_fits_explains_modality_and_dimension():
    from medview.io.volume import Volume

    pkg = package.ModelPackage(path=package.Path("."), manifest=_manifest())
    ok, why = pkg.fits(Volume(np.zeros((3, 8, 8)), meta={"Modality": "CT"}))
    assert not ok and "MR" in why and "CT" in why
    pkg3 = package.ModelPackage(path=package.Path("."), manifest=_manifest(input={"dims": 3}))
    ok, why = pkg3.fits(Volume(np.zeros((1, 8, 8)), meta={"Modality": "MR"}))
    assert not ok and "2D" in why
    assert pkg.fits(Volume(np.zeros((3, 8, 8)), meta={"Modality": "MR"}))[0]


def test_a_crop_model_is_refused_on_a_whole_head_with_the_extent():
    from medview.io.loading import load_volume

    inp = {"dims": 3, "max_extent_mm": 90}
    pkg = package.ModelPackage(path=package.Path("."), manifest=_manifest(input=inp, body_part="hippocampus crop"))
    crop = load_volume("resources/sample/study/HippoCrop")  # 34 x 50 x 40 mm
    head = load_volume("resources/sample/study/T1post")  # whole-brain T1, ~19 x 22 x 14 cm
    assert pkg.fits(crop) == (True, "")
    ok, why = pkg.fits(head)
    assert not ok and "90 mm" in why and "hippocampus crop" in why and "crop the region first" in why
    # the same head passes once the limit is above its extent: the rule measures millimetres, not voxels
    wide = package.ModelPackage(path=package.Path("."), manifest=_manifest(input={"dims": 3, "max_extent_mm": 250}))
    assert wide.fits(head)[0]


def test_max_extent_must_be_a_positive_number(tmp_path):
    folder = tmp_path / "models" / "tiny"
    _write(folder)
    m = json.loads((folder / "model.json").read_text())
    m["input"]["max_extent_mm"] = "big"
    (folder / "model.json").write_text(json.dumps(m))
    bad = package.discover_packages([("user", tmp_path / "models")])[0]
    assert bad.status == "unusable" and "max_extent_mm" in bad.reason


@pytest.mark.parametrize("arch, args", [
    ("DenseNet121", {"spatial_dims": 2, "in_channels": 1, "out_channels": 2}),
    ("resnet18", {"spatial_dims": 3, "n_input_channels": 1, "num_classes": 2}),
    ("EfficientNetBN", {"model_name": "efficientnet-b0", "spatial_dims": 2, "in_channels": 1, "num_classes": 2}),
])
def test_default_gradcam_layers_work(arch, args):
    import torch
    from monai.visualize import GradCAM

    net = networks.build_network(arch, args).eval()
    x = torch.rand(1, 1, 64, 64) if args["spatial_dims"] == 2 else torch.rand(1, 1, 32, 32, 32)
    cam = GradCAM(net, target_layers=networks.default_gradcam_layer(arch))(x, class_idx=1)
    assert cam.shape == (1, 1, *x.shape[2:])
