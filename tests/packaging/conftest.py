"""Tiny real model packages (random weights, written with medview's own package writer)."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

LABELS = [{"value": 1, "name": "region", "color": [255, 120, 0]}, {"value": 2, "name": "core", "color": [0, 180, 255]}]


def _write(folder: Path, manifest: dict) -> None:
    import torch

    from medview.inference import networks, package

    torch.manual_seed(0)
    net = networks.build_network(manifest["network"]["architecture"], manifest["network"]["args"])
    package.write_package(folder, manifest, net.state_dict(), f"# {manifest['name']}\nTest package, random weights.\n")


def _manifest(id_, task, modality, arch, args, inp, out) -> dict:
    return {"schema_version": 1, "id": id_, "name": id_, "version": "0.0.1", "task": task, "modality": modality,
            "network": {"architecture": arch, "args": args}, "input": inp, "output": out}


UNET3D = {"spatial_dims": 3, "in_channels": 1, "out_channels": 3, "channels": [4, 8], "strides": [2],
          "num_res_units": 1}


@pytest.fixture(scope="session")
def toy_models(tmp_path_factory) -> Path:
    """A models/ folder: a 3D MR segmenter (runs on the sample), a 2D X-ray classifier and a 2D RGB
    segmenter (run on synthetic images), and a 3D CT segmenter (the sample has no CT: skipped)."""
    root = tmp_path_factory.mktemp("models")
    _write(root / "t-seg3d-mr", _manifest(
        "t-seg3d-mr", "segmentation", ["MR"], "UNet", UNET3D,
        {"dims": 3, "channels": "grey", "normalization": {"kind": "zscore"}, "pad_to_multiple": 4},
        {"labels": LABELS, "activation": "softmax"}))
    _write(root / "t-cls2d-xr", _manifest(
        "t-cls2d-xr", "classification", ["CR", "DX", ""], "resnet10",
        {"spatial_dims": 2, "n_input_channels": 1, "num_classes": 2},
        {"dims": 2, "channels": "grey", "size": [64, 64], "normalization": {"kind": "zscore"}},
        {"classes": ["chest", "abdomen"], "activation": "softmax"}))
    _write(root / "t-seg2d-rgb", _manifest(
        "t-seg2d-rgb", "segmentation", ["XC", ""], "UNet",
        {"spatial_dims": 2, "in_channels": 3, "out_channels": 2, "channels": [4, 8], "strides": [2],
         "num_res_units": 1},
        {"dims": 2, "channels": "rgb", "size": [64, 64], "normalization": {"kind": "zscore"}},
        {"labels": LABELS[:1], "activation": "softmax"}))
    _write(root / "t-seg3d-ct", _manifest(
        "t-seg3d-ct", "segmentation", ["CT"], "UNet", UNET3D,
        {"dims": 3, "channels": "grey", "normalization": {"kind": "ct_window", "center": 40, "width": 400}},
        {"labels": LABELS, "activation": "softmax"}))
    return root


@pytest.fixture()
def broken_models(toy_models, tmp_path) -> Path:
    """The toy models plus one whose weights no longer match the manifest's sha256."""
    root = tmp_path / "models"
    shutil.copytree(toy_models, root)
    w = root / "t-cls2d-xr" / "weights.safetensors"
    data = bytearray(w.read_bytes())
    data[-1] ^= 0xFF
    w.write_bytes(bytes(data))
    return root
