"""Fundus field-of-view crop, the ordinal loss of the graders, and SimCLR pretraining feeding
`train --init` (issue 17)."""

from __future__ import annotations

import numpy as np
import pytest

from medview.inference import preprocess as pp


def _fundus(h=120, w=200, cy=60, cx=90, r=70):
    yy, xx = np.mgrid[:h, :w]
    img = np.zeros((h, w, 3), np.uint8)
    inside = (yy - cy) ** 2 + (xx - cx) ** 2 <= r * r
    img[inside] = (150, 80, 30)
    return img, inside


def test_field_box_is_the_square_around_the_lit_disc_even_past_the_image_edge():
    img, inside = _fundus()
    r0, r1, c0, c1 = pp.field_box(img, {"kind": "field_of_view", "level": 0.1})
    assert (c0, c1) == (20, 161)  # the disc's columns 20..160
    assert r1 - r0 == c1 - c0  # square, so the round field stays round
    assert r0 < 0 and r1 > img.shape[0]  # the disc is cut by the top and bottom of the photo
    crop = pp.crop_box(img, (r0, r1, c0, c1))
    assert crop.shape == (141, 141, 3)
    assert crop[:-r0].max() == 0  # rows above the photo are black padding
    assert pp.field_box(img, None) is None and pp.field_box(np.zeros((9, 9)), {"kind": "field_of_view"}) is None


def test_place_in_box_puts_a_crop_map_back_where_it_came_from():
    img, inside = _fundus()
    box = pp.field_box(img, {"kind": "field_of_view"})
    crop_mask = pp.crop_box(inside.astype(np.float32), box)
    small = pp.resize(crop_mask[None], (64, 64), order=1)[0]  # network resolution
    back = pp.place_in_box(small, box, inside.shape)
    assert back.shape == inside.shape
    # the disc comes back on itself: only its rim (resampling blur) differs
    assert np.abs(back - inside).mean() < 0.03
    assert back[~inside].max() < 0.9 and back[inside].mean() > 0.9


def test_prepare_image_crops_before_resizing():
    img, _ = _fundus()
    spec = {"channels": "rgb", "size": [32, 32], "normalization": {"kind": "rgb01"},
            "crop": {"kind": "field_of_view", "level": 0.1}}
    x = pp.prepare_image(img, spec, rgb=True)
    assert x.shape == (3, 32, 32)
    # the disc spans the crop's full width: the middle row is lit from edge to edge
    assert x[0, 16, 1] > 0.3 and x[0, 16, -2] > 0.3
    plain = pp.prepare_image(img, {**spec, "crop": None}, rgb=True)
    assert plain[0, 16, -2] == 0  # without the crop the right of the photo is black


def test_ordinal_loss_prefers_a_near_miss_to_a_far_one():
    torch = pytest.importorskip("torch")
    from medview.training.runner import ordinal_loss

    ce = torch.nn.CrossEntropyLoss()
    loss = ordinal_loss(ce, 0.5)
    y = torch.tensor([0])
    near = torch.tensor([[2.0, 4.0, 0.0, 0.0, 0.0]])  # mass on grade 1
    far = torch.tensor([[2.0, 0.0, 0.0, 0.0, 4.0]])  # same CE, mass on grade 4
    assert torch.isclose(ce(near, y), ce(far, y))
    assert loss(near, y) < loss(far, y)


def test_nt_xent_is_low_when_the_two_views_match():
    torch = pytest.importorskip("torch")
    from medview.training.pretrain import nt_xent

    g = torch.Generator().manual_seed(0)
    z = torch.randn(8, 16, generator=g)
    assert nt_xent(z, z + 0.01 * torch.randn(8, 16, generator=g), 0.2) < \
        nt_xent(z, torch.randn(8, 16, generator=g), 0.2)


def test_pretrained_encoder_initialises_the_classifier(shared_data, tmp_path):
    if not (shared_data / "xray-knee-kl").is_dir():
        pytest.skip(f"xray-knee-kl not in {shared_data}")
    from medview.inference.networks import build_network
    from medview.training import pretrain
    from medview.training.recipes import RECIPES
    from medview.training.runner import _init_state, init_weights

    pool, desc = pretrain.image_pool("knee-oa")
    test_images = {s.image for s in RECIPES["knee-oa"].split().test}
    assert pool and not test_images & set(pool), "held-out test images must stay out of pretraining"
    out = tmp_path / "enc.safetensors"
    rec = pretrain.pretrain("knee-oa", out, minutes=0.01, batch_size=8, max_images=16, log=lambda s: None)
    assert rec["steps"] >= 1 and out.is_file() and out.with_suffix(".json").is_file()
    m = RECIPES["knee-oa"].manifest["network"]
    net = build_network(m["architecture"], m["args"])
    before = {k: v.clone() for k, v in net.state_dict().items()}
    lines = []
    init_weights(net, _init_state(str(out)), lines.append)
    after = net.state_dict()
    changed = [k for k in after if k.startswith("conv1") or k.startswith("layer")
               if not np.array_equal(before[k].numpy(), after[k].numpy()) and after[k].dtype.is_floating_point]
    assert any(k.startswith("layer4") for k in changed) and "conv1.weight" in changed
    assert np.array_equal(before["fc.weight"].numpy(), after["fc.weight"].numpy())  # the head starts fresh


def test_grad_cam_of_a_cropping_model_lands_on_the_field_not_the_black_margin(tmp_path):
    torch = pytest.importorskip("torch")
    from PIL import Image

    from medview.inference import networks, package
    from medview.inference.pipeline import run_model
    from medview.io.files import read_image_file

    img, inside = _fundus()
    rng = np.random.default_rng(1)
    img[inside] = rng.integers(40, 255, size=(int(inside.sum()), 3))  # texture for the CAM to see
    Image.fromarray(img).save(tmp_path / "fundus.png")
    m = {"id": "toy-dr", "name": "Toy DR grader", "version": "1.0.0", "task": "classification",
         "modality": ["OT", ""],
         "network": {"architecture": "resnet10", "args": {"spatial_dims": 2, "n_input_channels": 3,
                                                          "num_classes": 5, "widen_factor": 0.25}},
         "input": {"dims": 2, "channels": "rgb", "size": [64, 64], "crop": {"kind": "field_of_view", "level": 0.1},
                   "normalization": {"kind": "zscore"}},
         "output": {"classes": ["none", "mild", "moderate", "severe", "proliferative"]},
         "gradcam_layer": "layer2"}
    torch.manual_seed(0)
    net = networks.build_network("resnet10", m["network"]["args"])
    pkg = package.write_package(tmp_path / "toy", m, net.state_dict(), "# toy\nresearch use only")
    vol = read_image_file(tmp_path / "fundus.png")
    pred = run_model(pkg, vol, cam="gradcam", device="cpu", unverified_ok=True)
    heat = np.asarray(pred.heatmap.array).reshape(inside.shape)
    assert heat[:, 161:].max() == 0  # right of the field's square: the network never saw it
    assert heat[:, 20:161].max() > 0.5


def test_card_command_says_how_a_pretrained_encoder_was_made(tmp_path):
    """A package started from our own encoder is reproducible from its card: the command names
    the pretraining run (from the encoder's sidecar JSON), not a path on one machine."""
    import json

    from medview.training.recipes import train_command

    enc = tmp_path / "enc-fundus.safetensors"
    enc.write_bytes(b"")
    assert train_command("dr-grade", {"init": str(enc)}) == "medview train dr-grade --init enc-fundus.safetensors"
    enc.with_suffix(".json").write_text(json.dumps({"model_id": "dr-grade", "minutes": 8.0}))
    assert train_command("dr-grade", {"init": str(enc), "train_minutes": 15}) == (
        "medview pretrain dr-grade --minutes 8 --out enc-fundus.safetensors && "
        "medview train dr-grade --init enc-fundus.safetensors")
