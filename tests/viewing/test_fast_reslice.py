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


def _smooth_vol():
    rng = np.random.default_rng(5)
    a = ndimage.gaussian_filter(rng.normal(0, 400, (40, 48, 44)), 2.5).astype(np.int16)
    rot = np.array([[np.cos(0.3), 0, np.sin(0.3)], [0, 1, 0], [-np.sin(0.3), 0, np.cos(0.3)]])
    return Volume(a, spacing=(0.8, 0.9, 1.6), origin=(3.0, -7.0, 11.0), direction=rot)


def test_projected_slab_equals_a_straightforward_reference():
    """The drag-time slab (pre-filtered along the voxel axis nearest the normal, one plane
    sampled) = the max / min over planes shifted voxel by voxel along that axis, each sampled
    linearly with map_coordinates, within interpolation tolerance."""
    v = _smooth_vol()
    rs = Reslicer(v)
    centre = v.index_to_world((22, 24, 20))
    for tilt, slab, mode in ((0.35, 8.0, "mip"), (0.6, 12.0, "minip"), (0.2, 5.0, "mip")):
        p = standard_plane("axial", v, center=centre).rotated(tilt, axis=(1, 0.3, 0))
        got = rs.image(p, slab_mm=slab, mode=mode, exact=False)
        rs.wait_prefilter(30)
        got = rs.image(p, slab_mm=slab, mode=mode, exact=False)  # with the filter for this tilt
        axis, width = rs._filtered_key[:2]
        normal = p.normal / np.linalg.norm(p.normal)
        cosines = np.abs(v.direction.T @ normal)
        assert axis == int(np.argmax(cosines))
        assert width == max(1, int(round(slab / (cosines[axis] * v.spacing[axis]))) | 1)
        step = v.direction[:, axis] * v.spacing[axis]  # one voxel along that axis, in mm
        planes = [reslice(v, p.moved_to(np.asarray(p.center) + t * step), order=1)
                  for t in range(-(width // 2), width // 2 + 1)]
        ref = (np.max if mode == "mip" else np.min)(planes, axis=0)
        # away from the volume's edge (where a shifted plane leaves the grid)
        inside = ndimage.binary_erosion(np.min(planes, axis=0) > v.array.min(), iterations=3)
        inside &= ndimage.binary_erosion(np.max(planes, axis=0) < v.array.max(), iterations=3)
        assert inside.mean() > 0.2
        err = np.abs(got - ref)[inside]
        rng_ = float(np.ptp(ref[inside]))
        assert np.median(err) < 0.01 * rng_ and err.max() < 0.08 * rng_, (tilt, mode)
        # and it is a slab: different from the thin plane
        thin = reslice(v, p, order=1)
        assert np.median(np.abs(got - thin)[inside]) > 10 * np.median(err)


def test_exact_slab_equals_the_map_coordinates_reference():
    v = _smooth_vol()
    rs = Reslicer(v)
    p = standard_plane("coronal", v, center=v.index_to_world((22, 24, 20))).rotated(0.4, axis=(0, 0, 1))
    normal = p.normal / np.linalg.norm(p.normal)
    step = rs.voxel_step_mm(normal)
    for mode in ("mip", "minip", "mean"):
        got = rs.image(p, slab_mm=7.0, mode=mode)
        ref = reslice(v, p, order=1, slab_mm=7.0, mode=mode, step_mm=step)
        inside = ndimage.binary_erosion(ref > v.array.min() + 1, iterations=8)
        assert inside.mean() > 0.2
        assert np.abs(got - ref)[inside].max() < 1.0, mode


@pytest.mark.parametrize("mode", ["mip", "minip", "mean"])
def test_blocked_sliding_window_equals_the_whole_array_one(mode):
    rng = np.random.default_rng(2)
    a = rng.integers(-300, 300, (17, 23, 19)).astype(np.int16)
    ref = {"mip": ndimage.maximum_filter1d, "minip": ndimage.minimum_filter1d}.get(mode)
    for ax in (0, 1, 2):
        for w in (1, 5, 9):
            for block in (1, 700, 1 << 20):  # one row per block, a few rows, one block
                got = sliding_window(a, w, ax, mode, block_bytes=block)
                if ref is None:
                    want = ndimage.uniform_filter1d(a, w, axis=ax, mode="nearest", output=np.float32)
                    assert got.dtype == np.float32 and np.allclose(got, want, atol=1e-3)
                else:
                    assert got.dtype == a.dtype and np.array_equal(got, ref(a, w, axis=ax, mode="nearest"))


def test_background_prefilter_keeps_the_newest_wish_and_never_a_stale_thickness():
    v = _smooth_vol()
    rs = Reslicer(v)
    p = standard_plane("axial", v)
    rs.image(p, slab_mm=10.0, exact=False)
    axis, width, mode, slab = rs._filtered_key
    # wishes made in a burst collapse: the last one is what lands
    rs._rebuild_filtered_later((axis, width + 6, mode, slab))
    rs._rebuild_filtered_later((axis, width + 12, mode, slab))
    other = (0 if axis else 1, 7, mode, slab)
    rs._rebuild_filtered_later(other)  # another voxel axis: a build for the old one is useless
    rs.wait_prefilter(30)
    assert rs._filtered_key == other and rs._worker is None
    # a worker still building when the thickness changes must not put its filter back
    rs._rebuild_filtered_later((2, 9, "mip", 10.0))
    img = rs.image(p, slab_mm=20.0, exact=False)  # built at once for 20 mm
    rs.wait_prefilter(30)
    assert rs._filtered_key[3] == 20.0
    # the same filter (ITK may walk the plane in the other order: float noise, 1e-14 seen)
    assert np.allclose(rs.image(p, slab_mm=20.0, exact=False), img, rtol=0, atol=1e-9)


def test_cached_labels_resample_only_their_box_and_equal_the_whole_map():
    """An unedited label map is copied for ITK as the box that holds its labels; the plane pixels
    that cannot reach the box are 0: the same image as resampling the whole map."""
    from medview.viewing.fast_reslice import nonzero_box

    v = _smooth_vol()
    rs = Reslicer(v)
    lab = np.zeros(v.shape, np.uint16)
    lab[10:25, 15:30, 12:20] = 3
    lab[30, 40, 40] = 700
    assert nonzero_box(lab) == ((10, 31), (15, 41), (12, 41))
    assert nonzero_box(np.zeros((3, 4, 5), np.uint8)) is None
    whole = v.like(lab).to_sitk()
    rng = np.random.default_rng(0)
    seen = set()
    for n in range(24):
        c = v.index_to_world(rng.uniform([5, 5, 5], [40, 45, 35]))
        p = standard_plane(("axial", "coronal", "sagittal")[n % 3], v, center=c).rotated(
            rng.uniform(-1, 1), axis=rng.normal(size=3))
        rs.labels(lab, p, key=("seg", 1))
        got = rs.labels(lab, p, key=("seg", 1))  # second call: from the box copy
        assert got.dtype == lab.dtype and got.shape == (p.height, p.width)
        assert np.array_equal(got, rs._nearest(whole, p, lab.dtype)), n
        seen |= set(np.unique(got).tolist())
    assert seen == {0, 3, 700}
    assert rs._label_images["seg"][1].GetSize() == (29, 26, 21)  # i, j, k of the box only
    empty = np.zeros(v.shape, np.uint8)
    p = standard_plane("axial", v)
    rs.labels(empty, p, key=("none", 0))
    assert not rs.labels(empty, p, key=("none", 0)).any()



def test_either_scan_order_gives_the_same_pixels():
    """ITK may walk the plane along u or v (whichever was measured faster): same image."""
    v = _smooth_vol()
    rs = Reslicer(v)
    lab = (v.array > 0).astype(np.uint8) * 3
    lab_img = v.like(lab).to_sitk()
    for tilt, axis in ((0.0, (1, 0, 0)), (0.5, (1, 0.3, 0)), (0.9, (0.2, 1, 0.4))):
        p = standard_plane("coronal", v).rotated(tilt, axis=axis)
        p = p.__class__(p.center, p.u, p.v, p.spacing, p.width + 7, p.height)  # not square
        for slab, mode, cubic in ((0.0, "mip", False), (6.0, "mip", False), (6.0, "mean", False),
                                  (0.0, "mip", True)):
            a = rs._resample(rs._image, p, slab, mode, None, None, cubic, order=0)
            b = rs._resample(rs._image, p, slab, mode, None, None, cubic, order=1)
            assert a.shape == b.shape == (p.height, p.width) and a.flags.c_contiguous and b.flags.c_contiguous
            assert np.array_equal(a, b), (tilt, slab, mode, cubic)
        na, nb = rs._nearest(lab_img, p, lab.dtype, order=0), rs._nearest(lab_img, p, lab.dtype, order=1)
        assert na.shape == (p.height, p.width) and np.array_equal(na, nb) and na.any()


def test_scan_order_keeps_the_faster_and_retimes_the_other():
    from medview.viewing.fast_reslice import ScanOrder

    so = ScanOrder()
    key = ("linear", 1, False, 10, 10, 4, 0, 0, 0, 4, 0)
    assert so.choose(key) == 0
    so.record(key, 0, 0.030)
    assert so.choose(key) == 1  # the other order is timed once
    so.record(key, 1, 0.020)
    picks = [so.choose(key) for _ in range(ScanOrder.RETRY * 2)]
    assert so.preferred(key) == 1
    assert picks.count(0) == 2 and picks.count(1) == len(picks) - 2  # re-timed every 16th use
    for _ in range(6):  # the machine changed: u got faster
        so.record(key, 0, 0.010)
    assert so.preferred(key) == 0
