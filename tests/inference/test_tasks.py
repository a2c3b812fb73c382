"""Task variants on small untrained networks: regression, sigmoid segmentation, RGB input, 3D CAM."""

import numpy as np
import pytest

from medview.inference import networks, package, pipeline
from medview.io.volume import Volume


def _pkg(tmp_path, **m):
    import torch

    torch.manual_seed(0)
    base = {"schema_version": 1, "id": "t", "name": "t", "version": "1", "modality": ["*"]}
    base.update(m)
    net = networks.build_network(base["network"]["architecture"], base["network"]["args"])
    return package.write_package(tmp_path / base["id"], base, net.state_dict(), "# t\n"), net


def test_regression_outputs_raw_values(tmp_path):
    import torch

    pkg, net = _pkg(tmp_path, id="reg", task="regression",
                    network={"architecture": "resnet10", "args": {"spatial_dims": 2, "n_input_channels": 1,
                                                                  "num_classes": 2, "widen_factor": 0.25}},
                    input={"dims": 2, "channels": "grey", "normalization": {"kind": "minmax"}},
                    output={"classes": ["age", "score"], "activation": "none"})
    img = np.random.default_rng(0).random((1, 32, 32)).astype(np.float32)
    pred = pipeline.run_model(pkg, Volume(img), device="cpu")
    assert pred.probabilities is None and set(pred.values) == {"age", "score"}
    x = (img - img.min()) / (img.max() - img.min())
    with torch.no_grad():
        ref = net.eval()(torch.from_numpy(x[None]))[0].numpy()
    assert np.allclose([pred.values["age"], pred.values["score"]], ref, atol=1e-4)
    assert "values" in pred.to_json()


def test_sigmoid_segmentation_uses_label_values_and_threshold(tmp_path):
    pkg, _ = _pkg(tmp_path, id="sig", task="segmentation",
                  network={"architecture": "BasicUNet", "args": {"spatial_dims": 2, "in_channels": 3,
                                                                 "out_channels": 2, "features": [4, 4, 8, 8, 16, 4]}},
                  input={"dims": 2, "channels": "rgb", "normalization": {"kind": "rgb01"}},
                  output={"labels": [{"value": 3, "name": "a"}, {"value": 7, "name": "b"}], "activation": "sigmoid",
                          "threshold": 0.5})
    rgb = np.random.default_rng(1).integers(0, 255, (1, 40, 36, 3)).astype(np.uint8)
    vol = Volume(rgb)
    pred = pipeline.run_model(pkg, vol, device="cpu")
    assert pred.labels.shape == vol.shape and pred.labels.same_geometry(vol)
    assert set(np.unique(pred.labels.array)) <= {0, 3, 7}
    assert [i["value"] for i in pred.label_info] == [3, 7]
    assert "area_mm2" in pred.label_info[0]


def test_3d_classifier_cam_lands_on_the_source_grid(tmp_path):
    pkg, _ = _pkg(tmp_path, id="c3", task="classification",
                  network={"architecture": "resnet10", "args": {"spatial_dims": 3, "n_input_channels": 1,
                                                                "num_classes": 2, "widen_factor": 0.25}},
                  input={"dims": 3, "channels": "grey", "normalization": {"kind": "zscore"}, "orientation": "RAS",
                         "spacing": [2.0, 2.0, 2.0], "size": [16, 16, 16]},
                  output={"classes": ["no", "yes"]}, gradcam_layer="layer3")
    direction = np.array([[0, 0, 1], [0, -1, 0], [1, 0, 0]], float)
    vol = Volume(np.random.default_rng(2).normal(size=(12, 20, 24)).astype(np.float32), (1.0, 1.5, 2.5),
                 (3.0, 4.0, 5.0), direction, {"Modality": "CT"})
    for kind in ("gradcam", "gradcam++"):
        pred = pipeline.run_model(pkg, vol, cam=kind, cam_class="yes", device="cpu")
        assert pred.heatmap.same_geometry(vol) and pred.heatmap_kind == kind
        h = pred.heatmap.array
        assert h.dtype == np.float32 and 0 <= h.min() and h.max() == pytest.approx(1.0)
        assert abs(sum(pred.probabilities.values()) - 1) < 1e-5


def test_cam_on_a_segmenter_is_refused(tmp_path):
    pkg, _ = _pkg(tmp_path, id="s", task="segmentation",
                  network={"architecture": "UNet", "args": {"spatial_dims": 2, "in_channels": 1, "out_channels": 2,
                                                            "channels": [4, 8], "strides": [2]}},
                  input={"dims": 2}, output={"labels": [{"value": 1, "name": "x"}]})
    with pytest.raises(pipeline.InferenceError, match="needs a classifier"):
        pipeline.run_model(pkg, Volume(np.zeros((1, 8, 8), np.float32)), cam="gradcam")


def test_tta_flip_axes_from_the_manifest(tmp_path):
    from medview.inference.pipeline import _flip_dims

    args = {"spatial_dims": 3, "in_channels": 1, "out_channels": 2, "channels": [4, 8], "strides": [2]}
    pkg, _ = _pkg(tmp_path, id="f", task="segmentation", network={"architecture": "UNet", "args": args},
                  input={"dims": 3, "tta_flip_axes": [0, 2]}, output={"labels": [{"value": 1, "name": "x"}]})
    assert _flip_dims(pkg, 3) == [(2,), (4,)]
    pkg.manifest["input"].pop("tta_flip_axes")
    assert _flip_dims(pkg, 3) == [(4,)]  # default: left-right only
    bad = dict(pkg.manifest, input={"dims": 2, "tta_flip_axes": [2]})
    assert any("tta_flip_axes" in e for e in package.manifest_errors(bad))
    vol = Volume(np.random.default_rng(3).normal(size=(10, 12, 14)).astype(np.float32))
    pkg.manifest["input"]["tta_flip_axes"] = [0, 1, 2]
    pred = pipeline.run_model(pkg, vol, tta=True, device="cpu")
    assert pred.heatmap.same_geometry(vol) and 0 <= pred.heatmap.array.min() <= pred.heatmap.array.max() <= 1


def test_sliding_window_progress_and_cancel_between_windows(tmp_path):
    from medview.progress import Cancelled

    args = {"spatial_dims": 3, "in_channels": 1, "out_channels": 2, "channels": [4, 8], "strides": [2]}
    pkg, _ = _pkg(tmp_path, id="sw", task="segmentation", network={"architecture": "UNet", "args": args},
                  input={"dims": 3, "roi_size": [16, 16, 16], "overlap": 0.5},
                  output={"labels": [{"value": 1, "name": "x"}]})
    vol = Volume(np.random.default_rng(4).normal(size=(32, 32, 32)).astype(np.float32))
    stages = []
    assert pipeline.run_model(pkg, vol, device="cpu").passes.startswith("whole image")  # it fits memory
    pred = pipeline.run_model(pkg, vol, progress=lambda f, s: stages.append((f, s)), device="cpu",
                              whole_image=False)
    assert pred.passes.startswith("sliding window")
    windows = [s for _, s in stages if "window" in s]
    assert windows[-1] == "inference (window 27/27)" and len(windows) == 27  # 3 x 3 x 3 windows
    assert [f for f, _ in stages] == sorted(f for f, _ in stages)
    assert pred.labels.same_geometry(vol)
    seen = []
    with pytest.raises(Cancelled):
        pipeline.run_model(pkg, vol, device="cpu", whole_image=False, progress=lambda f, s: seen.append(s),
                           cancelled=lambda: sum("window" in s for s in seen) >= 5)
    assert sum("window" in s for s in seen) == 5


def test_dihedral_tta_makes_a_classifier_orientation_invariant(tmp_path):
    net_spec = {"architecture": "resnet10", "args": {"spatial_dims": 2, "n_input_channels": 3, "num_classes": 3,
                                                     "widen_factor": 0.25}}
    common = dict(task="classification", network=net_spec,
                  input={"dims": 2, "channels": "rgb", "normalization": {"kind": "zscore"}, "size": [32, 32]})
    plain, _ = _pkg(tmp_path, id="plain", output={"classes": ["a", "b", "c"]}, **common)
    tta, _ = _pkg(tmp_path, id="tta", output={"classes": ["a", "b", "c"], "tta": "dihedral"}, **common)
    rgb = np.random.default_rng(3).integers(0, 255, (1, 32, 32, 3)).astype(np.uint8)
    turned = np.ascontiguousarray(np.rot90(rgb[:, :, ::-1], 1, axes=(1, 2)))  # mirror + quarter turn

    def probs(pkg, img, setting="accurate"):
        p = pipeline.run_model(pkg, Volume(img), device="cpu", tta_setting=setting).probabilities
        return np.array([p[c] for c in ("a", "b", "c")])

    assert not np.allclose(probs(plain, rgb), probs(plain, turned), atol=1e-4)  # the net alone is not
    assert np.allclose(probs(tta, rgb), probs(tta, turned), atol=1e-5)
    # "fast" (the default unless output.tta_default says "accurate") is the plain network
    assert np.allclose(probs(tta, rgb, "fast"), probs(plain, rgb), atol=1e-6)
    assert np.allclose(pipeline.run_model(tta, Volume(rgb), device="cpu").probabilities["a"], probs(plain, rgb)[0])
    tta.manifest["output"]["tta_default"] = "accurate"
    assert np.allclose(probs(tta, rgb, None), probs(tta, rgb), atol=1e-6)
    with pytest.raises(pipeline.InferenceError, match="TTA setting"):
        pipeline.run_model(tta, Volume(rgb), device="cpu", tta_setting="slow")
    # "hflip" (ultrasound: top stays top) is invariant to the mirror only
    hflip, _ = _pkg(tmp_path, id="hflip", output={"classes": ["a", "b", "c"], "tta": "hflip"}, **common)
    mirrored = np.ascontiguousarray(rgb[:, :, ::-1])
    assert np.allclose(probs(hflip, rgb), probs(hflip, mirrored), atol=1e-5)
    assert not np.allclose(probs(hflip, rgb), probs(hflip, turned), atol=1e-4)
    bad = {"schema_version": 1, "id": "bad", "name": "bad", "version": "1", "modality": ["*"],
           "task": "segmentation", "network": net_spec, "input": {"dims": 3},
           "output": {"labels": [{"value": 1, "name": "x"}], "tta": "dihedral"}}
    assert any("output.tta" in e for e in package.manifest_errors(bad))


def test_dihedral_tta_makes_a_segmenter_equivariant_on_a_non_square_image(tmp_path):
    args = {"spatial_dims": 2, "in_channels": 1, "out_channels": 2, "channels": [4, 8], "strides": [2],
            "num_res_units": 1}
    common = dict(task="segmentation", network={"architecture": "UNet", "args": args},
                  input={"dims": 2, "channels": "grey", "normalization": {"kind": "zscore"}, "roi_size": [16, 16],
                         "pad_to_multiple": 2})
    labels = [{"value": 1, "name": "x"}]
    plain, _ = _pkg(tmp_path, id="segplain", output={"labels": labels}, **common)
    tta, _ = _pkg(tmp_path, id="segtta", output={"labels": labels, "tta": "dihedral"}, **common)
    img = np.random.default_rng(4).normal(size=(1, 30, 22)).astype(np.float32)
    turned = np.ascontiguousarray(np.rot90(img[:, :, ::-1], 1, axes=(1, 2)))

    def seg(pkg, a):
        return pipeline.run_model(pkg, Volume(a), device="cpu", tta_setting="accurate").labels.array[0]

    def turn(lab):
        return np.rot90(lab[:, ::-1], 1)

    assert not np.array_equal(turn(seg(plain, img)), seg(plain, turned))  # an untrained net alone is not
    a, b = turn(seg(tta, img)), seg(tta, turned)
    assert a.shape == b.shape == (22, 30) and 0.05 < a.mean() < 0.95  # both labels present
    assert (a == b).mean() > 0.995  # equal up to float ties at exactly p = 0.5


def test_fov_threshold_clears_labels_in_the_black_surround(tmp_path):
    """A fundus photo: lit disc on black. A segmenter that marks everything keeps only the disc."""
    from medview.inference.pipeline import field_of_view

    h, w = 60, 64
    yy, xx = np.mgrid[:h, :w]
    disc = (yy - 30) ** 2 + (xx - 32) ** 2 < 25 ** 2
    rgb = np.zeros((1, h, w, 3), np.uint8)
    rgb[0][disc] = (180, 90, 40)
    rgb[0][(yy - 30) ** 2 + (xx - 32) ** 2 < 3 ** 2] = (2, 2, 2)  # a dark spot INSIDE the field stays in it
    rgb[0, 2:5, 2:10] = (250, 250, 250)  # a bright caption in the corner is not the field
    fov = field_of_view(rgb[0], 0.08)
    assert np.array_equal(fov, disc)

    import torch

    args = {"spatial_dims": 2, "in_channels": 3, "out_channels": 2, "channels": [4, 8], "strides": [2],
            "num_res_units": 1}
    net = networks.build_network("UNet", args)
    with torch.no_grad():  # a "segmenter" that calls every pixel label 1: zero weights, bias for class 1
        for p in net.parameters():
            p.zero_()
        net.state_dict()["model.2.1.conv.unit0.conv.bias"][1] = 5.0
    m = {"schema_version": 1, "id": "fov", "name": "fov", "version": "1", "modality": ["*"], "task": "segmentation",
         "network": {"architecture": "UNet", "args": args},
         "input": {"dims": 2, "channels": "rgb", "normalization": {"kind": "rgb01"}, "pad_to_multiple": 2},
         "output": {"labels": [{"value": 1, "name": "all"}], "fov_threshold": 0.08}}
    pkg = package.write_package(tmp_path / "fov", m, net.state_dict(), "# fov\n")
    m_plain = {**m, "id": "nofov", "output": {"labels": [{"value": 1, "name": "all"}]}}
    plain = package.write_package(tmp_path / "nofov", m_plain, net.state_dict(), "# nofov\n")
    assert (pipeline.run_model(plain, Volume(rgb), device="cpu").labels.array[0] > 0).all()
    pred = pipeline.run_model(pkg, Volume(rgb), device="cpu")
    assert np.array_equal(pred.labels.array[0] > 0, disc)
    m["output"]["fov_threshold"] = 1.5
    assert any("fov_threshold" in e for e in package.manifest_errors(m))


def test_keep_largest_parts_per_label():
    from medview.inference.pipeline import keep_largest_parts

    lab = np.zeros((20, 20), np.uint8)
    lab[2:10, 2:10] = 1  # big part of label 1
    lab[15:17, 15:17] = 1  # speck of label 1
    lab[12:14, 2:4] = 2  # label 2: small, but its only part
    lab[0, 19] = 2
    out = keep_largest_parts(lab)
    assert (out == 1).sum() == 64 and out[15, 15] == 0
    assert (out == 2).sum() == 4 and out[0, 19] == 0
    diag = np.zeros((5, 5), np.uint8)
    diag[1, 1] = diag[2, 2] = 1  # touching corners are one part (8-connected)
    assert (keep_largest_parts(diag) == 1).sum() == 2
    bad = {"schema_version": 1, "id": "b", "name": "b", "version": "1", "modality": ["*"], "task": "classification",
           "network": {"architecture": "resnet10", "args": {}}, "input": {"dims": 2},
           "output": {"classes": ["a"], "keep_largest": True}}
    assert any("keep_largest" in e for e in package.manifest_errors(bad))


def test_whole_image_equals_one_window_and_out_of_memory_falls_back_to_windows(tmp_path, monkeypatch):
    """Where a single window covers the input, the whole-image pass is the same map; a whole image
    that does not fit (an allocator error) is re-run in sliding windows, and the result says so."""
    import torch

    from medview.inference import forward

    args = {"spatial_dims": 2, "in_channels": 1, "out_channels": 2, "channels": [4, 8], "strides": [2],
            "num_res_units": 1}
    pkg, _ = _pkg(tmp_path, id="whole", task="segmentation", network={"architecture": "UNet", "args": args},
                  input={"dims": 2, "roi_size": [32, 32], "pad_to_multiple": 2},
                  output={"labels": [{"value": 1, "name": "x"}]})
    img = np.random.default_rng(5).normal(size=(1, 32, 32)).astype(np.float32)
    whole = pipeline.run_model(pkg, Volume(img), device="cpu", whole_image=True)
    window = pipeline.run_model(pkg, Volume(img), device="cpu", whole_image=False)
    assert whole.passes == "whole image, TTA fast" and window.passes == "sliding window, TTA fast"
    assert np.array_equal(whole.labels.array, window.labels.array)

    real = forward.get_network(pkg, torch.device("cpu"))

    class SmallMemory(torch.nn.Module):  # refuses anything larger than 16 x 16, as a full GPU would
        def forward(self, x):
            if x.shape[-1] > 16:
                raise RuntimeError("CUDA out of memory. Tried to allocate 2.00 GiB")
            return real(x)

    monkeypatch.setattr(forward, "get_network", lambda *a, **k: SmallMemory())
    pkg.manifest["input"]["roi_size"] = [16, 16]
    big = np.random.default_rng(6).normal(size=(1, 40, 40)).astype(np.float32)
    pred = pipeline.run_model(pkg, Volume(big), device="cpu")
    assert pred.passes == "sliding window, TTA fast" and pred.labels.shape == (1, 40, 40)
    assert any("out of memory on the whole image" in m for m in pred.messages), pred.messages
