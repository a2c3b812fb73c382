import numpy as np

from medview.io.volume import Volume
from medview.viewing import reslice, standard_plane


def _vol():
    a = np.zeros((20, 40, 30), np.int16)  # k, j, i; 6.5 mm slices
    a[12, 25, 7] = 1000  # marker
    return Volume(a, spacing=(1.0, 1.0, 6.5), origin=(-10.0, 5.0, 20.0))


def test_marker_lands_on_its_pixel_in_every_view():
    v = _vol()
    world = v.index_to_world((7, 25, 12))
    for view in ("axial", "coronal", "sagittal"):
        p = standard_plane(view, v, center=world)
        img = reslice(v, p, order=1)
        col, row, depth = p.world_to_plane(world)
        assert abs(depth) < 1e-9
        r, c = np.unravel_index(np.argmax(img), img.shape)
        assert abs(r - row) <= 0.51 and abs(c - col) <= 0.51, view
        # a one-voxel shift or a flip would move the peak
        assert img[r, c] > 200


def test_oblique_and_labels_nearest_and_slab_mip():
    v = _vol()
    world = v.index_to_world((7, 25, 12))
    p = standard_plane("axial", v, center=world).rotated(0.4)
    img = reslice(v, p, order=1)
    col, row, _ = p.world_to_plane(world)
    r, c = np.unravel_index(np.argmax(img), img.shape)
    assert abs(r - row) <= 0.51 and abs(c - col) <= 0.51
    lab = (v.array > 0).astype(np.uint8) * 3
    li = reslice(v, p, array=lab, order=0)
    assert li.dtype == np.uint8 and set(np.unique(li)) <= {0, 3}
    off = standard_plane("axial", v, center=world + np.array([0, 0, 6.5]))
    assert reslice(v, off).max() < 1
    assert reslice(v, off, slab_mm=14.0, mode="mip").max() > 200
