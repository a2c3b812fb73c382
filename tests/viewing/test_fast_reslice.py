import numpy as np
import pytest
from scipy import ndimage

from medview.io.volume import Volume
from medview.viewing import Reslicer, reslice, standard_plane
from medview.viewing.fast_reslice import sliding_window


def _vol():
    rng = np.random.default_rng(3)
    a = ndimage.gaussian_filter(rng.normal(0, 100, (24, 40, 36)), 2).astype(np.int16)
    a[11:14, 24:27, 6:9] = 3000  # marker, 3 voxels across (a slab sampled one voxel apart meets it)
    rot = np.array([[np.cos(0.2), -np.sin(0.2), 0], [np.sin(0.2), np.cos(0.2), 0], [0, 0, 1]])
    return Volume(a, spacing=(0.8, 0.9, 2.5), origin=(-10.0, 5.0, 20.0), direction=rot)


def test_reslicer_matches_the_map_coordinates_reference():
    v = _vol()
    rs = Reslicer(v)
    world = v.index_to_world((7, 25, 12))
    for view in ("axial", "coronal", "sagittal"):
        p = standard_plane(view, v, center=world).rotated(0.3)
        ref = reslice(v, p, order=1)
        got = rs.image(p)
        assert got.shape == ref.shape
        inner = ref > ref.min()  # away from the volume's edge (ITK and scipy pad differently)
        inner = ndimage.binary_erosion(inner, iterations=2)
        assert np.abs(got - ref)[inner].max() < 1.0, view
        cub = rs.image(p, cubic=True)  # cubic B-spline, as scipy's order 3 (edges differ)
        ref3 = reslice(v, p, order=3)
        deep = ndimage.binary_erosion(inner, iterations=6)
        assert np.median(np.abs(cub - ref3)[deep]) < 0.02 * np.ptp(ref3[deep])
        assert np.median(np.abs(cub - ref3)[deep]) < np.median(np.abs(got - ref3)[deep])  # not linear
        r, c = np.argwhere(got > 2000).mean(axis=0)  # centre of the marker
        col, row, _ = p.world_to_plane(world)
        assert abs(r - row) <= 0.51 and abs(c - col) <= 0.51


def test_exact_and_projected_slabs_and_nearest_labels():
    v = _vol()
    rs = Reslicer(v)
    world = v.index_to_world((7, 25, 12))
    off = standard_plane("axial", v, center=world + 10.0 * v.direction[:, 2]).rotated(0.1, axis=(1, 0, 0))
    assert rs.image(off).max() < 1500  # 10 mm away: the marker is not on the plane
    assert rs.image(off, slab_mm=24.0, mode="mip").max() > 1500
    assert rs.image(off, slab_mm=24.0, mode="mip", exact=False).max() > 1500
    assert rs.image(off, slab_mm=24.0, mode="minip").max() < rs.image(off).max()
    assert rs.image(off, slab_mm=6.0, mode="mip").max() < 1500  # a thinner slab misses it
    assert rs.image(off, slab_mm=6.0, mode="mip", exact=False).max() < 1500
    lab = np.zeros(v.shape, np.uint16)
    lab[12, 20:30, 3:12] = 700
    p = standard_plane("axial", v, center=world).rotated(0.5)
    got = rs.labels(lab, p)
    ref = reslice(v, p, array=lab, order=0)
    assert got.dtype == np.uint16 and set(np.unique(got)) <= {0, 700}
    assert (got != ref).mean() < 0.01  # rounding ties may differ on a few border pixels
    lab[12, 20:30, 3:12] = 5  # edits in place show at once
    assert set(np.unique(rs.labels(lab, p))) <= {0, 5}
    # with a key: the second call with the same key samples an ITK copy; a new key sees edits
    first = rs.labels(lab, p, key=("seg", 1))
    cached = rs.labels(lab, p, key=("seg", 1))
    assert np.array_equal(first, rs.labels(lab, p)) and (cached != first).mean() < 0.01
    assert cached.dtype == lab.dtype
    lab[12, 20:30, 3:12] = 9
    assert set(np.unique(rs.labels(lab, p, key=("seg", 2)))) <= {0, 9}
    with pytest.raises(ValueError):
        rs.labels(np.zeros((2, 2, 2), np.uint8), p)


@pytest.mark.parametrize("mode,ref", [("mip", ndimage.maximum_filter1d),
                                      ("minip", ndimage.minimum_filter1d)])
def test_sliding_window_equals_scipy(mode, ref):
    rng = np.random.default_rng(1)
    for n in (1, 2, 5, 30):
        a = rng.integers(-100, 100, (n, 4, 5)).astype(np.int16)
        for w in (1, 3, 7, 13, 31):
            for ax in (0, 1, 2):
                assert np.array_equal(sliding_window(a, w, ax, mode), ref(a, w, axis=ax, mode="nearest"))


def test_projected_slab_rebuilds_its_prefilter_in_the_background():
    v = _vol()
    rs = Reslicer(v)
    p = standard_plane("axial", v)
    rs.image(p, slab_mm=10.0, exact=False)
    first = rs._filtered_key
    tilted = p.rotated(np.radians(50), axis=(1, 0, 0))  # the slab meets k over a longer run
    img = rs.image(tilted, slab_mm=10.0, exact=False)  # drawn with the old filter meanwhile
    assert img.shape == (tilted.height, tilted.width)
    rs.wait_prefilter(30)
    assert rs._filtered_key != first and rs._filtered_key[1] > first[1]
