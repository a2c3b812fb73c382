"""The bundled interactive-2d package on held-out images (the bundled polyp / skin-lesion-seg
test splits, never seen in its training): a few simulated clicks must give a good mask."""

from __future__ import annotations

import numpy as np
import pytest


@pytest.fixture(scope="module")
def segmenter():
    from medview.inference.package import PackageError, find_package
    from medview.interactive.model import Segmenter

    try:
        return Segmenter.from_package(find_package("interactive-2d"))
    except PackageError as exc:
        pytest.skip(f"interactive-2d package not available: {exc}")


@pytest.mark.parametrize("name", ["polyp", "skin"])
def test_three_clicks_segment_held_out_objects(segmenter, shared_data, name):
    import torch

    from medview.interactive import guidance as g
    from medview.interactive.model import Prompts
    from medview.interactive.training import run_clicks
    from medview.training import datasets

    torch.set_num_threads(1)
    split = datasets.kvasir() if name == "polyp" else datasets.ph2(segmentation=True)
    dices = []
    for s in split.test[:6]:
        img = datasets.read_image(s.image)
        gt = datasets.read_mask(s.target).astype(bool)
        d, _ = run_clicks(segmenter, g.normalise_image(img), gt, 3, Prompts)
        dices.append(d)
    arr = np.array(dices)
    assert arr[:, 2].mean() > 0.85, arr
    assert arr[:, 2].mean() >= arr[:, 0].mean() - 0.02  # corrections do not make it worse on average


def test_a_negative_click_removes_what_it_is_on(segmenter):
    from medview.interactive import guidance as g
    from medview.interactive.model import Prompts

    yy, xx = np.mgrid[:96, :96]
    img = (((yy - 48) ** 2 + (xx - 30) ** 2 < 15**2) | ((yy - 48) ** 2 + (xx - 70) ** 2 < 12**2)) * 200.0 + 20
    norm = g.normalise_image(img.astype(np.float32))
    m = segmenter.predict(norm, Prompts([g.Click(48, 30, True)]))
    assert m[48, 30] and not m[48, 70]  # only the clicked disc
    m2 = segmenter.predict(norm, Prompts([g.Click(48, 30, True), g.Click(48, 70, True)]), m)
    assert m2[48, 30] and m2[48, 70]
    m3 = segmenter.predict(norm, Prompts([g.Click(48, 30, True), g.Click(48, 70, True), g.Click(48, 70, False)]), m2)
    assert m3[48, 30] and not m3[48, 70]


def test_a_scribble_or_a_box_alone_segments_held_out_polyps(segmenter, shared_data):
    from scipy import ndimage

    from medview.interactive import guidance as g
    from medview.interactive import simulate
    from medview.interactive.model import Prompts
    from medview.training import datasets

    scribbled, boxed = [], []
    for s in datasets.kvasir().test[:6]:
        img = datasets.read_image(s.image)
        gt = datasets.read_mask(s.target).astype(bool)
        norm = g.normalise_image(img)
        r, _c = g.inscribed_centre(gt)
        stroke = np.zeros_like(gt)
        stroke[r - 1:r + 2, :] = True  # a horizontal stroke through the object, inside it
        stroke &= ndimage.binary_erosion(gt, iterations=5)
        scribbled.append(simulate.dice(segmenter.predict(norm, Prompts(pos_strokes=stroke)), gt))
        rows, cols = np.nonzero(gt)
        box = (rows.min() - 3.0, cols.min() - 3.0, rows.max() + 3.0, cols.max() + 3.0)
        boxed.append(simulate.dice(segmenter.predict(norm, Prompts(box=box)), gt))
    assert np.mean(scribbled) > 0.85, scribbled
    assert np.mean(boxed) > 0.8, boxed
