"""The project's UNet-encoder classifier: a UNet segmenter initialises it by name, every encoder
level feeds the logits, and Grad-CAM runs on it through the real pipeline."""

import numpy as np
import pytest

from medview.inference import networks, package, pipeline
from medview.io.volume import Volume

ARGS = {"spatial_dims": 2, "in_channels": 3, "channels": [4, 8, 16], "strides": [2, 2], "num_res_units": 1}


def _classifier():
    return networks.build_network("UNetEncoderClassifier", {**ARGS, "num_classes": 3})


def test_a_unet_segmenter_initialises_every_encoder_tensor_and_no_decoder_remains():
    import torch

    from medview.training.runner import init_weights

    torch.manual_seed(0)
    seg = networks.build_network("UNet", {**ARGS, "out_channels": 2}).state_dict()
    net = _classifier()
    own = net.state_dict()
    assert set(own) - set(seg) == {"fc.weight", "fc.bias"}  # encoder keeps MONAI's names
    assert any(k.startswith("model.2.") for k in seg) and not any(k.startswith("model.2.") for k in own)
    init_weights(net, seg, log=lambda _: None)
    after = net.state_dict()
    for k, v in after.items():
        if not k.startswith("fc."):
            assert torch.equal(v, seg[k]), k


def test_every_encoder_level_reaches_the_logits():
    import torch

    net = _classifier().eval()
    assert net.fc.in_features == sum(ARGS["channels"])
    x = torch.randn(2, 3, 32, 32, requires_grad=True)
    net(x)[:, 1].sum().backward()
    for block in net.blocks:
        grads = [p.grad for p in block.parameters() if p.grad is not None]
        assert grads and any(float(g.abs().sum()) > 0 for g in grads)


def test_gradcam_on_the_bottom_block_through_the_pipeline(tmp_path):
    import torch

    torch.manual_seed(0)
    net = _classifier()
    # two strides: the bottom sits two levels down, and the default layer follows the depth
    assert net.bottom_layer_name == "model.1.submodule.1.submodule"
    assert networks.default_gradcam_layer("UNetEncoderClassifier", ARGS) == net.bottom_layer_name
    m = {"schema_version": 1, "id": "uc", "name": "uc", "version": "1", "modality": ["*"],
         "task": "classification",
         "network": {"architecture": "UNetEncoderClassifier", "args": {**ARGS, "num_classes": 3}},
         "input": {"dims": 2, "channels": "rgb", "normalization": {"kind": "zscore"}, "size": [32, 32]},
         "output": {"classes": ["a", "b", "c"]}}  # no gradcam_layer: the depth-aware default is used
    pkg = package.write_package(tmp_path / "uc", m, net.state_dict(), "# uc\n")
    rgb = np.random.default_rng(1).integers(0, 255, (1, 40, 36, 3)).astype(np.uint8)
    vol = Volume(rgb)
    pred = pipeline.run_model(pkg, vol, cam="gradcam", cam_class="b", device="cpu")
    assert pred.heatmap.same_geometry(vol)
    assert pred.heatmap.array.max() == pytest.approx(1.0)
    assert abs(sum(pred.probabilities.values()) - 1) < 1e-5


def test_the_registered_cam_layer_is_the_bottom_of_the_recipe_network():
    args = {"spatial_dims": 2, "in_channels": 3, "num_classes": 3, "channels": [16, 32, 64, 128, 256],
            "strides": [2, 2, 2, 2], "num_res_units": 2}
    net = networks.build_network("UNetEncoderClassifier", args)
    assert networks.default_gradcam_layer("UNetEncoderClassifier", args) == net.bottom_layer_name
    assert networks.default_gradcam_layer("UNetEncoderClassifier") == net.bottom_layer_name  # 4 strides
