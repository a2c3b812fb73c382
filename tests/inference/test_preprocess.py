import numpy as np
import pytest

from medview.inference import preprocess as pp


def test_build_channels_modes():
    rgb = np.zeros((4, 5, 3), np.uint8)
    rgb[..., 0], rgb[..., 1], rgb[..., 2] = 100, 200, 50
    grey = pp.build_channels(rgb, "grey")
    assert grey.shape == (1, 4, 5) and grey.dtype == np.float32
    assert np.allclose(grey, 0.299 * 100 + 0.587 * 200 + 0.114 * 50, atol=1e-3)
    assert np.all(pp.build_channels(rgb, {"channels": "green"}) == 200)
    assert pp.build_channels(rgb, "rgb").shape == (3, 4, 5)
    assert np.all(pp.build_channels(rgb, "rgb")[2] == 50)
    scalar = np.arange(20, dtype=np.int16).reshape(4, 5)
    assert np.array_equal(pp.build_channels(scalar, "grey")[0], scalar)
    rep = pp.build_channels(scalar, "rgb")
    assert rep.shape == (3, 4, 5) and np.array_equal(rep[1], scalar)
    vol = np.zeros((2, 4, 5, 3), np.uint8)
    assert pp.build_channels(vol, "rgb").shape == (3, 2, 4, 5)
    with pytest.raises(ValueError, match="channels mode"):
        pp.build_channels(scalar, "cmyk")


def test_normalizations():
    rng = np.random.default_rng(0)
    x = (rng.normal(50, 10, size=(2, 30, 40))).astype(np.float32)
    z = pp.normalize(x, {"kind": "zscore"})
    assert np.allclose(z.mean(axis=(1, 2)), 0, atol=1e-4) and np.allclose(z.std(axis=(1, 2)), 1, atol=1e-4)
    p = pp.normalize(x, {"kind": "percentile", "lower": 1, "upper": 99})
    assert p.min() == 0 and p.max() == 1
    assert np.isclose((p == 1).mean(), 0.01, atol=0.005)
    ct = pp.normalize(np.array([[[-1000.0, 40.0, 240.0, 3000.0]]]), {"kind": "ct_window", "center": 40, "width": 400})
    assert np.allclose(ct, [[[0.0, 0.5, 1.0, 1.0]]])
    assert np.allclose(pp.normalize(np.array([[[0, 51, 255, 300]]]), "rgb01"), [[[0, 0.2, 1, 1]]])
    mm = pp.normalize(x, "minmax")
    assert np.allclose(mm.min(axis=(1, 2)), 0) and np.allclose(mm.max(axis=(1, 2)), 1)
    const = pp.normalize(np.full((1, 3, 3), 7.0), "zscore")
    assert np.all(const == 0)
    nz = np.zeros((1, 10, 10), np.float32)
    nz[0, 2:5, 2:5] = rng.normal(5, 2, size=(3, 3))
    out = pp.normalize(nz, {"kind": "zscore", "nonzero": True})
    assert np.all(out[nz == 0] == 0) and abs(out[nz != 0].mean()) < 1e-5
    with pytest.raises(ValueError, match="unknown normalization"):
        pp.normalize(x, "histogram")


def test_resize_matches_torch_interpolate_geometry():
    import torch
    import torch.nn.functional as F

    a = np.random.default_rng(1).random((2, 7, 9)).astype(np.float32)
    for size in [(14, 18), (5, 4), (13, 20)]:
        ours = pp.resize(a, size)
        ref = F.interpolate(torch.from_numpy(a)[None], size=size, mode="bilinear", align_corners=False)[0]
        assert np.allclose(ours, ref.numpy(), atol=1e-5)
    lab = np.zeros((8, 8), np.uint8)
    lab[2:4, 2:6] = 3
    up = pp.resize_labels(lab, (16, 16))
    assert set(np.unique(up)) == {0, 3} and (up == 3).sum() == 4 * (lab == 3).sum()


def test_pad_and_unpad_roundtrip():
    a = np.random.default_rng(2).random((1, 5, 7))
    padded, pads = pp.pad_to_multiple(a, 4)
    assert padded.shape == (1, 8, 8)
    assert np.array_equal(pp.unpad(padded, pads), a)
    same, pads1 = pp.pad_to_multiple(a, 1)
    assert same.shape == a.shape


def test_prepare_image_is_channels_then_normalize_then_resize():
    img = np.random.default_rng(3).random((20, 30, 3)) * 255
    spec = {"channels": "rgb", "normalization": {"kind": "rgb01"}, "size": [10, 15]}
    x = pp.prepare_image(img, spec)
    ref = pp.resize(pp.normalize(pp.build_channels(img, "rgb"), "rgb01"), (10, 15))
    assert x.shape == (3, 10, 15) and np.allclose(x, ref)


def test_resize_3d_and_nearest_exact_match_torch():
    import torch
    import torch.nn.functional as F

    a = np.random.default_rng(5).random((1, 5, 7, 9)).astype(np.float32)
    ours = pp.resize(a, (9, 4, 12))
    ref = F.interpolate(torch.from_numpy(a)[None], size=(9, 4, 12), mode="trilinear", align_corners=False)[0]
    assert np.allclose(ours, ref.numpy(), atol=1e-5)
    lab = np.random.default_rng(6).integers(0, 4, size=(1, 7, 9)).astype(np.uint8)
    for size in [(14, 18), (3, 5), (10, 13)]:
        ours = pp.resize(lab, size, order=0)
        ref = F.interpolate(torch.from_numpy(lab.astype(np.float32))[None], size=size, mode="nearest-exact")[0]
        assert ours.dtype == np.uint8 and np.array_equal(ours, ref.numpy().astype(np.uint8))


def test_local_contrast_evens_out_illumination():
    """A thin line on a bright and on a dark background comes out with the same contrast."""
    from medview.inference.preprocess import normalize

    img = np.zeros((1, 64, 128), np.float32)
    img[0, :, :64] = 50.0
    img[0, :, 64:] = 200.0
    img[0, 32, :] += 30.0  # the same vessel-like line on a dark and on a bright background
    out = normalize(img, {"kind": "local_contrast", "sigma": 4})
    assert out.dtype == np.float32 and out.shape == img.shape
    left, right = out[0, 32, 16], out[0, 32, 112]
    assert left > 1.0 and right > 1.0
    assert abs(left - right) / max(left, right) < 0.05  # illumination no longer decides the value
    assert abs(out[0, 10, 16]) < 0.2 and abs(out[0, 10, 112]) < 0.2  # flat background -> ~0


def test_local_mean_removes_illumination_but_keeps_lesion_contrast():
    """Graham-style: the background level goes, a strong spot stays stronger than a faint one
    (local_contrast would scale both neighbourhoods to the same spread)."""
    from scipy.ndimage import gaussian_filter

    from medview.inference.preprocess import normalize

    img = np.zeros((1, 64, 128), np.float32)
    img[0, :, :64] = 50.0
    img[0, :, 64:] = 200.0
    img[0, 30:34, 14:18] += 10.0  # a faint spot on the dark half
    img[0, 30:34, 110:114] += 60.0  # a strong spot on the bright half
    out = normalize(img, {"kind": "local_mean", "sigma": 4})
    ref = (img[0] - gaussian_filter(img[0], 4, mode="reflect")) / img[0].std(dtype=np.float64)
    np.testing.assert_allclose(out[0], ref, atol=1e-4)
    assert abs(out[0, 10, 16]) < 1e-3 and abs(out[0, 10, 112]) < 1e-3  # flat background -> 0
    faint, strong = out[0, 31, 15], out[0, 31, 111]
    assert strong / faint == pytest.approx(6.0, rel=0.05)  # the spots keep their contrast ratio
    lc = normalize(img, {"kind": "local_contrast", "sigma": 4})
    assert lc[0, 31, 111] / lc[0, 31, 15] < 3.0  # local_contrast squeezes the same ratio (2.4 here)
