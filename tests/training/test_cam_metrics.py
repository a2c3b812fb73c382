"""Grad-CAM mass inside a known region: the knee joint-space band and the measurement itself."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from medview.training import cam_metrics


def _synthetic_knee(gap_row: int, size: int = 192) -> np.ndarray:
    """Bright femur above, bright tibia below, a dark curved gap between them."""
    rng = np.random.default_rng(0)
    img = np.full((size, size), 190.0) + rng.normal(0, 8, (size, size))
    cols = np.arange(size)
    curve = (gap_row + 6 * np.cos((cols - size / 2) / size * 2 * np.pi)).astype(int)  # notch in the middle
    for c, r in zip(cols, curve, strict=True):
        img[r - 3:r + 4, c] = 60.0
    img[:, :10] = 40.0  # soft tissue at the sides: darker, but outside the central columns
    return img.clip(0, 255)


@pytest.mark.parametrize("gap_row", [80, 110, 130])
def test_the_joint_band_centres_on_the_gap_between_the_bones(gap_row):
    band = cam_metrics.knee_joint_band(_synthetic_knee(gap_row))
    rows = np.where(band.any(axis=1))[0]
    centre = (rows[0] + rows[-1]) / 2
    assert abs(centre - gap_row) <= 7  # the curve's swing is +-6 rows
    assert len(rows) == 2 * round(cam_metrics.JOINT_HALF_HEIGHT * 192) + 1
    cols = np.where(band.any(axis=0))[0]
    c0, c1 = cam_metrics.JOINT_COLUMNS
    assert cols[0] == int(c0 * 192) and cols[-1] == int(c1 * 192) - 1
    rgb = np.repeat(_synthetic_knee(gap_row)[..., None], 3, axis=-1)
    assert np.array_equal(cam_metrics.knee_joint_band(rgb), band)


def test_the_joint_band_holds_the_darkest_gap_of_real_knee_crops(shared_data):
    files = sorted((shared_data / "xray-knee-kl" / "val").glob("*/*.*"))[::50][:10]
    if not files:
        pytest.skip("no knee crops in the shared data")
    for f in files:
        img = np.asarray(Image.open(f).convert("L"), np.float64)
        band = cam_metrics.knee_joint_band(img)
        rows = np.where(band.any(axis=1))[0]
        assert 0.3 * img.shape[0] <= (rows[0] + rows[-1]) / 2 <= 0.8 * img.shape[0], f.name
        # the band is darker than the bone just above and below it (the joint space is in it)
        mid = img[:, img.shape[1] // 4: 3 * img.shape[1] // 4]
        inside = mid[rows[0]:rows[-1] + 1].mean(axis=1).min()
        above, below = mid[max(0, rows[0] - 20):rows[0]], mid[rows[-1] + 1:rows[-1] + 21]
        assert inside < above.mean() and inside < below.mean(), f.name


def test_cam_mass_in_the_knee_joint_band_is_a_share_of_the_real_heatmap(shared_data):
    rep = cam_metrics.cam_in_region("knee-oa", part="val", limit=4)
    assert rep["all_with_mask"]["n"] == 4 and len(rep["images"]) == 4
    for r in rep["images"]:
        assert 0.0 <= r["inside"] <= 1.0
        band_px = (2 * round(cam_metrics.JOINT_HALF_HEIGHT * 192) + 1) * (int(0.92 * 192) - int(0.08 * 192))
        assert r["area"] == pytest.approx(band_px / 192**2)  # 192 px crops; the band is not cut by an edge
        assert r["predicted"] in ("KL0", "KL1", "KL2", "KL3", "KL4")
    lines = cam_metrics.format_cam_report(rep)
    assert lines[0].startswith("Grad-CAM mass inside the finding (gradcam, val part, knee-oa)")


def test_a_model_without_regions_is_refused():
    with pytest.raises(ValueError, match="no region masks"):
        cam_metrics.cam_in_region("breast-us")


def test_the_retina_region_is_the_lit_field_without_its_rim():
    yy, xx = np.mgrid[0:200, 0:240]
    img = np.zeros((200, 240, 3), np.uint8)
    field = (yy - 100) ** 2 + (xx - 120) ** 2 <= 90 ** 2
    img[field] = (180, 90, 40)
    img[(yy - 100) ** 2 + (xx - 150) ** 2 <= 6 ** 2] = (20, 10, 5)  # a dark vessel crossing stays inside
    retina = cam_metrics.fundus_retina(img)
    assert retina[100, 150] and not retina[0, 0] and not retina[100, 0]
    assert not (retina & ~field).any()
    r = np.sqrt(retina.sum() / np.pi)
    assert 90 * (1 - cam_metrics.RIM_SHARE) - 2 <= r <= 90 * (1 - cam_metrics.RIM_SHARE) + 2
