"""Prompt encoding and the simulated annotator (geometry with known answers)."""

from __future__ import annotations

import numpy as np

from medview.interactive import guidance as g
from medview.interactive import simulate


def test_view_round_trip_maps_a_click_to_its_disc_and_back():
    view = g.View(10.0, 20.0, 64.0)  # a 64 px square of the image on the 128 px grid
    r, c = view.to_net(42.0, 52.0)
    assert (r, c) == (64.5, 64.5)
    ch = g.guidance_channels(view, [g.Click(42.0, 52.0, True), g.Click(15.0, 25.0, False)], None)
    assert ch.shape == (3, g.SIZE, g.SIZE)
    assert ch[0, 64, 64] == 1 and ch[1, 64, 64] == 0 and ch[2].max() == 0
    pr, pc = view.to_net(15.0, 25.0)
    assert ch[1, int(round(pr)), int(round(pc))] == 1
    # a network map pasted back covers exactly the view's pixels
    prob = np.zeros((g.SIZE, g.SIZE), np.float32)
    prob[60:70, 60:70] = 1
    vals, (rs, cs) = g.paste_view(prob, view, (100, 100))
    assert (rs.start, rs.stop, cs.start, cs.stop) == (10, 74, 20, 84)
    back = np.zeros((100, 100), bool)
    back[rs, cs] = vals > 0.5
    assert back[42, 52] and not back[12, 22]


def test_whole_and_focus_views_hold_what_they_should():
    v = g.whole_view((50, 200))
    assert v.side == 200 and v.r0 == -75 and v.c0 == 0
    f = g.focus_view((300, 300), np.array([[100, 100], [120, 140]]), expand=2.0)
    assert f.side == 82 and f.r0 + f.side / 2 == 110.5  # pixel boxes: max + 1


def test_normalise_image_makes_three_zscored_channels():
    grey = np.arange(100, dtype=np.float32).reshape(10, 10)
    n = g.normalise_image(grey)
    assert n.shape == (3, 10, 10) and abs(float(n.mean())) < 1e-5 and abs(float(n.std()) - 1) < 1e-4
    rgb = np.random.default_rng(0).integers(0, 255, (8, 9, 3)).astype(np.uint8)
    assert g.normalise_image(rgb).shape == (3, 8, 9)


def test_first_click_is_the_inscribed_centre_and_next_clicks_fix_the_largest_error():
    gt = np.zeros((60, 60), bool)
    gt[10:50, 10:30] = True  # a 40 x 20 rectangle
    (r, c), pos = simulate.first_click(gt)
    assert pos and 10 + 9 <= c <= 10 + 10 and 28 <= r <= 31  # the middle of the plateau
    pred = gt.copy()
    pred[10:50, 25:30] = False  # missed a 40 x 5 strip
    pred[52:58, 40:46] = True  # and a small false blob
    (r, c), pos = simulate.next_click(pred, gt)
    assert pos and 25 <= c < 30  # the larger error: the missed strip, a positive click
    pred[10:50, 25:30] = True
    (r, c), pos = simulate.next_click(pred, gt)
    assert not pos and 52 <= r < 58
    assert simulate.next_click(gt, gt) is None
    assert simulate.noc([0.5, 0.86, 0.91], 0.85) == 2 and simulate.noc([0.5, 0.6], 0.9, 20) == 20


def test_3d_clicks_use_the_voxel_spacing():
    gt = np.zeros((9, 40, 40), bool)
    gt[2:7, 5:35, 5:35] = True
    (z, y, x), _ = simulate.first_click(gt, spacing=(4.0, 1.0, 1.0))
    assert z == 4 and 15 <= y <= 24
