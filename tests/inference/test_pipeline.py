"""The pipeline on tiny models trained in the tests (see conftest.py / toys.py)."""

import numpy as np
import pytest
import toys

from medview.inference import geometry, pipeline
from medview.inference.prediction import label_size_text, label_statistics
from medview.io.volume import Volume
from medview.progress import Cancelled


def _rotation(axis: int, degrees: float) -> np.ndarray:
    a = np.radians(degrees)
    c, s = np.cos(a), np.sin(a)
    m = np.eye(3)
    i, j = [k for k in range(3) if k != axis]
    m[i, i], m[i, j], m[j, i], m[j, j] = c, -s, s, c
    return m


def _world_object_volume(shape, spacing, direction, origin, seed=3):
    """An L-shaped object (two boxes) defined in world mm on the given grid, plus noise."""
    v0 = Volume(np.zeros(shape, np.float32), spacing, origin, direction)
    kk, jj, ii = np.meshgrid(*[np.arange(s) for s in shape], indexing="ij")
    w = v0.index_to_world(np.stack([ii, jj, kk], -1).reshape(-1, 3)).reshape(tuple(shape) + (3,))
    rel = w - w.reshape(-1, 3).mean(0)
    box_a = (np.abs(rel[..., 0] - 3) <= 7) & (np.abs(rel[..., 1]) <= 5) & (np.abs(rel[..., 2] + 2) <= 6)
    box_b = (np.abs(rel[..., 0] + 6) <= 3) & (np.abs(rel[..., 1] - 6) <= 5) & (np.abs(rel[..., 2] + 2) <= 6)
    truth = box_a | box_b
    img = np.random.default_rng(seed).normal(0, 0.3, shape).astype(np.float32)
    img[truth] += 1.5
    vol = v0.like(img, Modality="MR", SeriesInstanceUID="1.2.826.0.1.3680043.2.1125.1")
    return vol, truth, w


@pytest.mark.slow
def test_geometry_round_trip_oblique_anisotropic(seg3d_package):
    """Non-identity (permuted, flipped, 20 deg oblique) direction and anisotropic spacing: the
    model runs on an RAS 1 mm grid, and its labels land on the object's world coordinates."""
    perm = np.array([[0, 0, -1], [1, 0, 0], [0, -1, 0]], float)
    direction = _rotation(2, 20) @ perm
    vol, truth, world = _world_object_volume((16, 26, 40), (0.8, 1.25, 2.0), direction, (-30.0, 12.0, 40.0))
    assert vol.orientation_code() != "RAS"
    x, grid = geometry.to_model_grid(vol, seg3d_package.input)
    assert grid.orientation_code() == "RAS" and np.allclose(grid.spacing, 1.0)  # really reoriented + resampled
    pred = pipeline.run_model(seg3d_package, vol, device="cpu")
    assert pred.labels.same_geometry(vol)
    lab = pred.labels.array == 1
    dice = 2 * (lab & truth).sum() / (lab.sum() + truth.sum())
    assert dice > 0.85, dice
    err_mm = np.linalg.norm(world[truth].mean(0) - world[lab].mean(0))
    assert err_mm < 1.0, err_mm  # well under the 2 mm slice spacing
    info = pred.label_info[0]
    assert info["name"] == "object" and info["voxels"] == int(lab.sum())
    assert info["volume_ml"] == pytest.approx(lab.sum() * 0.8 * 1.25 * 2.0 / 1000, rel=1e-3)


def test_geometry_helpers_round_trip_labels_exactly_without_a_model():
    """Reorient + resample to the model grid and back (nearest) keeps a label's world position."""
    direction = np.array([[0, 1, 0], [0, 0, -1], [-1, 0, 0]], float)
    vol, truth, world = _world_object_volume((20, 30, 24), (1.0, 1.0, 2.0), direction, (5.0, -7.0, 3.0))
    spec = {"dims": 3, "channels": "grey", "orientation": "RAS", "spacing": [0.5, 0.5, 0.5],
            "normalization": {"kind": "none"}}
    x, grid = geometry.to_model_grid(vol.like(truth.astype(np.float32)), spec)
    back = geometry.to_source_grid((x[0] > 0.5).astype(np.uint8), grid, vol, order=0)
    assert (back.astype(bool) == truth).mean() > 0.99


@pytest.mark.slow
def test_2d_model_on_anisotropic_stack_resizes_and_maps_back(seg2d_package):
    rng = np.random.default_rng(11)
    img = rng.normal(0, 0.3, (3, 40, 80)).astype(np.float32)
    truth = np.zeros(img.shape, bool)
    truth[:, 10:25, 50:70] = True
    img[truth] += 1.5
    vol = Volume(img, spacing=(0.5, 1.0, 3.0), meta={"Modality": "MR"})
    pred1 = pipeline.run_model(seg2d_package, vol, batch_size=1)
    pred3 = pipeline.run_model(seg2d_package, vol, batch_size=3)
    lab = pred1.labels.array == 1
    assert 2 * (lab & truth).sum() / (lab.sum() + truth.sum()) > 0.85
    assert np.array_equal(pred1.labels.array, pred3.labels.array)  # batching changes nothing
    ys, xs = np.nonzero(lab[1])
    assert abs(ys.mean() - 17) < 1.5 and abs(xs.mean() - 59.5) < 1.5


@pytest.mark.slow
def test_tta_uncertainty_is_high_at_the_boundary(seg2d_package):
    rng = np.random.default_rng(12)
    img = rng.normal(0, 0.3, (1, 48, 48)).astype(np.float32)
    img[0, 12:30, 14:36] += 1.5
    vol = Volume(img, meta={"Modality": "MR"})
    pred = pipeline.run_model(seg2d_package, vol, tta=True)
    plain = pipeline.run_model(seg2d_package, vol)
    assert np.array_equal(pred.labels.array, plain.labels.array)  # the map never changes the labels
    assert plain.heatmap is None
    unc = pred.heatmap.array[0]
    assert pred.heatmap_kind == "uncertainty" and unc.min() >= 0 and unc.max() <= 1.0 + 1e-6
    edge = np.zeros((48, 48), bool)
    edge[11:13, 14:36] = edge[29:31, 14:36] = edge[12:30, 13:15] = edge[12:30, 35:37] = True
    interior = np.zeros((48, 48), bool)
    interior[16:26, 18:32] = True
    far = np.zeros((48, 48), bool)
    far[38:, :] = True
    assert unc[edge].mean() > 3 * unc[interior].mean()
    assert unc[edge].mean() > 3 * unc[far].mean()
    assert "area_mm2" in pred.label_info[0]  # a single 2D image reports area, not volume


@pytest.mark.slow
@pytest.mark.parametrize("kind", ["gradcam", "gradcam++"])
def test_gradcam_peaks_in_the_discriminative_region(cls_package, kind):
    rng = np.random.default_rng(7)
    samples = [toys.cls_sample(rng, True) for _ in range(10)]
    vol = Volume(np.stack([s[0] for s in samples]), meta={"Modality": "OT"})
    pred = pipeline.run_model(cls_package, vol, cam=kind, cam_class="spot", batch_size=4)
    assert pred.cam_class == "spot" and pred.heatmap_kind == kind
    assert (pred.slice_probabilities[:, 1] > 0.5).all()
    yy, xx = np.mgrid[:64, :64]
    hits, ratios = 0, []
    for k, (_, (cy, cx)) in enumerate(samples):
        h = pred.heatmap.array[k]
        py, px = np.unravel_index(h.argmax(), h.shape)
        inside = np.hypot(yy - cy, xx - cx) <= toys.DISC_RADIUS
        hits += bool(inside[py, px])
        ratios.append(h[inside].mean() / max(h[~inside].mean(), 1e-6))
    # a map unrelated to the disc would put ~5% of peaks inside it and give a ratio near 1
    if kind == "gradcam":
        assert hits >= 8, hits
        assert np.median(ratios) > 4, ratios
    else:
        assert hits >= 6, hits
        assert np.median(ratios) > 2, ratios


@pytest.mark.slow
def test_classifier_probabilities_cache_progress_and_cancel(cls_package):
    rng = np.random.default_rng(8)
    plain, _ = toys.cls_sample(rng, False)
    vol = Volume(plain, meta={"Modality": "OT", "SeriesInstanceUID": "9.9"})
    stages = []
    cache = pipeline.ResultsCache()
    pred = pipeline.run_model(cls_package, vol, cache=cache, progress=lambda f, s: stages.append((f, s)))
    assert pred.top_class == "plain" and sum(pred.probabilities.values()) == pytest.approx(1, abs=1e-5)
    fracs = [f for f, _ in stages]
    assert fracs == sorted(fracs) and fracs[-1] == 1.0 and stages[0][1] == "loading model"
    again = pipeline.run_model(cls_package, vol, cache=cache)
    assert again.from_cache and not pred.from_cache and again.timings is pred.timings  # not recomputed
    other = pipeline.run_model(cls_package, vol, cache=cache, cam="gradcam")  # other options: new run
    assert other is not pred and other.heatmap is not None
    js = pred.to_json()
    assert js["model"]["sha256"] == cls_package.sha256 and js["top_class"] == "plain"
    with pytest.raises(Cancelled):
        pipeline.run_model(cls_package, Volume(np.zeros((4, 64, 64)), meta={"Modality": "OT"}),
                           cancelled=lambda: True)
    with pytest.raises(pipeline.InferenceError, match="no class"):
        pipeline.run_model(cls_package, vol, cam="gradcam", cam_class="tumour")


def test_wrong_modality_and_bad_device_are_clear_errors(tmp_path):
    from test_package import _write

    pkg = _write(tmp_path / "tiny")
    with pytest.raises(pipeline.InferenceError, match="made for MR"):
        pipeline.run_model(pkg, Volume(np.zeros((2, 16, 16)), meta={"Modality": "CT"}))
    with pytest.raises(ValueError, match="not available|unsupported"):
        pipeline.run_model(pkg, Volume(np.zeros((2, 16, 16)), meta={"Modality": "MR"}), device="cuda:7")


def test_label_statistics_ml_and_mm2():
    lab = np.zeros((4, 10, 10), np.uint8)
    lab[1:3, 2:7, 2:4] = 1  # 20 voxels
    lab[0, 0, 0] = 2
    v = Volume(lab, spacing=(0.5, 2.0, 3.0))
    stats = label_statistics(v, [{"value": 1, "name": "a"}, {"value": 2, "name": "b"}, {"value": 3, "name": "c"}])
    assert stats[0]["voxels"] == 20 and stats[0]["volume_ml"] == pytest.approx(20 * 3.0 / 1000)
    assert stats[2]["voxels"] == 0
    flat = Volume(lab[1:2], spacing=(0.5, 2.0, 1.0))
    assert label_statistics(flat, [{"value": 1, "name": "a"}])[0]["area_mm2"] == pytest.approx(10 * 1.0)
    photo = Volume(lab[1:2], meta={"pixel_size_known": False})  # a JPEG: spacing 1 means pixels
    st = label_statistics(photo, [{"value": 1, "name": "a"}])[0]
    assert st["area_px"] == 10 and "area_mm2" not in st and label_size_text(st) == "10 px"
    assert photo.like(lab[1:2]).pixel_size_known is False  # label maps on a photo stay in pixels
