"""The cheap computation orders in preprocess give the numbers of the plain recipe: the DCT
Gaussian equals scipy's reflect filter, z-scoring after resizing equals z-scoring before, the
resize casts only what it samples, the field box uses the brightest channel."""

import numpy as np
import pytest
from scipy.ndimage import gaussian_filter

from medview.inference import preprocess as pp


@pytest.mark.parametrize("shape,sigma", [((3, 403, 403), 10.0), ((1, 584, 565), 8.0), ((2, 97, 120), 3.0),
                                         ((1, 50, 61), 10.0), ((1, 12, 300), 2.5), ((2, 404, 101), 10.0)])
def test_dct_gaussian_equals_scipys_reflect_filter(shape, sigma):
    rng = np.random.default_rng(3)
    a = (rng.random(shape) * 255).astype(np.float32)
    a[:, : shape[1] // 4] = 0  # a black surround, as in a fundus photograph
    ref = np.stack([gaussian_filter(ch, sigma, mode="reflect") for ch in a.astype(np.float64)])
    ours = pp._gaussian(a, sigma)
    assert ours.dtype == np.float32 and ours.shape == a.shape
    assert float(np.abs(ours - ref).max()) < 255 * 2e-6


def test_local_contrast_matches_its_definition_with_scipy():
    rng = np.random.default_rng(4)
    a = (rng.random((3, 90, 130)) * 200).astype(np.float32)
    sigma = 5.0
    m = np.stack([gaussian_filter(ch, sigma, mode="reflect") for ch in a.astype(np.float64)])
    d = a - m
    v = np.stack([gaussian_filter(ch, sigma, mode="reflect") for ch in d * d])
    ref = np.stack([d[c] / np.sqrt(v[c] + (0.1 * a[c].astype(np.float64).std()) ** 2 + 1e-12) for c in range(3)])
    out = pp.normalize(a, {"kind": "local_contrast", "sigma": sigma})
    assert out.dtype == np.float32 and float(np.abs(out - ref).max()) < 1e-4


def _photo(h=301, w=433, seed=5):
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[:h, :w]
    img = np.stack([(yy * 0.5 + xx * 0.2) % 256, (xx * 0.7) % 256, rng.integers(0, 256, (h, w))], -1)
    return img.astype(np.uint8)


@pytest.mark.parametrize("channels", ["rgb", "green"])
def test_zscore_after_resize_equals_zscore_then_resize(channels):
    img = _photo()
    spec = {"channels": channels, "normalization": {"kind": "zscore"}, "size": [96, 128]}
    fast = pp.prepare_image(img, spec, rgb=True)
    assert pp._zscore_after_resize(img, spec, True, spec["normalization"], spec["size"]) is not None
    slow = pp.resize(pp.normalize(pp.build_channels(img, spec, rgb=True), "zscore"), spec["size"])
    assert fast.dtype == np.float32 and fast.shape == slow.shape == ((3 if channels == "rgb" else 1), 96, 128)
    assert float(np.abs(fast - slow).max()) < 1e-5
    # the same size: still a z-scored float32 copy
    same = {**spec, "size": list(img.shape[:2])}
    assert float(np.abs(pp.prepare_image(img, same, rgb=True)
                        - pp.normalize(pp.build_channels(img, same, rgb=True), "zscore")).max()) < 1e-5


def test_zscore_after_resize_is_not_used_where_it_does_not_hold():
    img = _photo()
    grey = {"channels": "grey", "normalization": {"kind": "zscore"}, "size": [64, 64]}
    nonzero = {"channels": "rgb", "normalization": {"kind": "zscore", "nonzero": True}, "size": [64, 64]}
    pct = {"channels": "rgb", "normalization": {"kind": "percentile"}, "size": [64, 64]}
    for spec in (grey, nonzero, pct):
        assert pp._zscore_after_resize(img, spec, True, spec["normalization"], spec["size"]) is None
    scalar = img[..., 0]
    spec = {"channels": "rgb", "normalization": "zscore", "size": [64, 64]}
    assert pp._zscore_after_resize(scalar, spec, False, "zscore", spec["size"]) is None


def test_resize_of_integers_equals_resize_of_their_float32():
    img = np.moveaxis(_photo(), -1, 0)  # a channel-first uint8 view, not contiguous
    for size in [(96, 128), (400, 433), (301, 200), (700, 900)]:
        a = pp.resize(img, size)
        b = pp.resize(img.astype(np.float32), size)
        assert a.dtype == np.float32 and np.array_equal(a, b)


def test_field_box_uses_the_brightest_channel():
    img = np.zeros((60, 80, 3), np.uint8)
    img[10:50, 20:70, 2] = 200  # lit in the blue channel only
    img[30, 40, 0] = 250
    r0, r1, c0, c1 = pp.field_box(img, {"kind": "field_of_view", "level": 0.1})
    assert (r1 - r0) == (c1 - c0) == 50 and c0 == 20 and r0 == 5


def test_8bit_zscore_constants_equal_normalizes():
    plane = _photo()[..., 2]
    mean, inv_std = pp._zscore_stats(plane)
    f = plane.astype(np.float32)
    ref = pp.normalize(f[None], "zscore")[0]
    assert float(np.abs((f - mean) * inv_std - ref).max()) < 1e-5
    flat = np.full((20, 30), 7, np.uint8)  # constant: std taken as 1, all zeros
    assert pp._zscore_stats(flat) == (np.float32(7.0), np.float32(1.0))
