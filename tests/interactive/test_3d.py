"""The 3D interactive path: guidance in 3D (crops, balls, paste back), the 3D network's input and
output shapes, the box the network looks at, initialisation from a 3-label U-Net, and the
session choosing the 3D model (one undo step per interaction, provenance)."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import ndimage

from medview.annotation import EditHistory, LabelMap
from medview.interactive import guidance as g
from medview.interactive import model3d as m3
from medview.interactive.session import AssistSession
from medview.io.volume import Volume
from tests.interactive.fakes import BrightRegionSegmenter, ball_volume


def test_3d_crop_round_trip_balls_and_paste_back():
    vol = np.arange(10 * 12 * 14, dtype=np.float32).reshape(10, 12, 14)
    crop = g.Crop((-2.0, 1.0, 3.0), (1.0, 1.0, 1.0))
    grid = (8, 8, 8)
    out = g.sample_view(vol, crop, grid)
    assert out.shape == grid
    assert out[2, 0, 0] == vol[0, 1, 3] and out[7, 7, 7] == vol[5, 8, 10] and out[0].max() == 0  # outside: 0
    # the interpolating path agrees with the copy at voxel centres
    interp = g.sample_view(vol, g.Crop((-2.0 + 1e-9, 1.0, 3.0), (1.0, 1.0, 1.0)), grid)
    assert np.allclose(interp[2:], out[2:], atol=1e-3)
    # a click maps to a ball on the grid
    p = g.Point((3.0, 4.0, 6.0), True)
    ch = g.guidance_channels(crop, [p, g.Point((0.0, 1.0, 3.0), False)], None, size=grid, radius=2.0)
    assert ch.shape == (3, 8, 8, 8)
    assert ch[0, 5, 3, 3] == 1 and ch[0, 5, 3, 6] == 0 and ch[0, 5, 3, 5] == 1  # radius 2 along x
    assert ch[1, 2, 0, 0] == 1 and ch[2].max() == 0
    assert int(ch[0].sum()) == int((g.balls([(4, 4, 4)], 9, 2.0)).sum())  # a whole ball: 33 cells
    # a grid map pasted back covers exactly the crop's voxels
    prob = np.zeros(grid, np.float32)
    prob[4:6, 2:4, 2:4] = 1
    vals, sl = g.paste_view(prob, crop, vol.shape)
    assert [(s.start, s.stop) for s in sl] == [(0, 6), (1, 9), (3, 11)]
    back = np.zeros(vol.shape, bool)
    back[sl] = vals > 0.5
    assert back[2:4, 3:5, 5:7].all() and back.sum() == 8
    # zoomed out (step 2): linear interpolation, still inside the covered box
    vals2, sl2 = g.paste_view(prob, g.Crop((0.5, 0.5, 0.5), (2.0, 2.0, 2.0)), (20, 20, 20))
    assert vals2.shape == tuple(s.stop - s.start for s in sl2) and 0 < vals2.max() <= 1


def test_2d_views_still_map_as_before():
    view = g.View(10.0, 20.0, 64.0)
    img = np.random.default_rng(1).random((100, 100)).astype(np.float32)
    a = g.sample_view(img, view, 128)
    rr = 10 + (np.arange(128) + 0.5) * 0.5 - 0.5
    cc = 20 + (np.arange(128) + 0.5) * 0.5 - 0.5
    ref = ndimage.map_coordinates(img, np.stack(np.meshgrid(rr, cc, indexing="ij")), order=1, mode="constant")
    assert np.allclose(a, ref)
    d = g.discs([(64.5, 64.5)], 128, 3.0)
    yy, xx = np.ogrid[:128, :128]
    assert np.array_equal(d > 0, (yy - 64.5) ** 2 + (xx - 64.5) ** 2 <= 9)


def test_choose_crop_sees_a_small_volume_whole_and_follows_the_object_in_a_large_one():
    c = m3.choose_crop((36, 50, 35), None)
    assert c.step == (1.0, 1.0, 1.0) and c.origin == (-6.0, -7.0, -6.0)  # centred, integer
    pts = np.array([[100, 100, 100], [110, 130, 105]])
    c = m3.choose_crop((200, 300, 300), pts)
    lo = np.array(c.to_image((0, 0, 0)))
    hi = np.array(c.to_image(tuple(n - 1 for n in m3.GRID)))
    assert (lo <= pts.min(0)).all() and (hi >= pts.max(0)).all() and c.step == (1.0, 1.0, 1.0)
    big = np.array([[10, 10, 10], [150, 100, 60]])  # larger than the grid: zoomed out
    c = m3.choose_crop((200, 300, 300), big)
    assert c.step[0] > 1 and len(set(c.step)) == 1
    lo = np.array(c.to_image((0, 0, 0)))
    hi = np.array(c.to_image(tuple(n - 1 for n in m3.GRID)))
    assert (lo <= big.min(0) + 0.5).all() and (hi >= big.max(0) - 0.5).all()
    # near the volume's border the box moves inside the volume
    c = m3.choose_crop((200, 300, 300), np.array([[1, 1, 1]]))
    assert min(c.origin) == 0.0
    # anisotropic voxels are resampled to ~1 mm cells
    assert m3.base_step((3.0, 1.0, 1.05), (1.0, 1.0, 1.0)) == (1 / 3.0, 1.0, 1.0)


def _net():
    from medview.inference.networks import build_network
    from medview.training.recipes import RECIPES

    man = RECIPES["interactive-3d"].new_manifest()
    return build_network(man["network"]["architecture"], man["network"]["args"]).eval(), man


def test_the_3d_network_maps_four_channels_on_the_grid_to_two_and_predict_keeps_the_volume_shape():
    import torch

    torch.manual_seed(0)
    torch.set_num_threads(1)
    net, man = _net()
    assert man["network"]["args"]["in_channels"] == 4 and tuple(man["input"]["size"]) == m3.GRID
    seg = m3.Segmenter3D(net, tuple(man["input"]["size"]), "0.0.1", "test-3d")
    vol, ball = ball_volume(shape=(30, 40, 34), centre=(15, 20, 17), radius=6)
    crop = seg.crop_for(vol.shape, [g.Point((15.0, 20.0, 17.0))], None)
    x = seg.network_input(vol, crop, [g.Point((15.0, 20.0, 17.0))], ball)
    assert x.shape == (4, *m3.GRID)
    inside = x[0][x[0] != 0]
    assert abs(inside.mean()) < 1e-3 and abs(inside.std() - 1) < 1e-2  # z-scored inside the volume
    assert x[3].sum() == ball.sum()  # the previous mask, copied
    with torch.no_grad():
        assert tuple(net(torch.from_numpy(x[None])).shape) == (1, 2, *m3.GRID)
    # the mirrored pass is averaged in the right orientation
    p1 = seg.probabilities(x[None])[0]
    seg.mirror_axes = (2,)
    p2 = seg.probabilities(x[None])[0]
    seg.mirror_axes = ()
    pf = seg.probabilities(np.ascontiguousarray(x[None, :, :, :, ::-1]))[0][:, :, ::-1]
    assert np.allclose(p2, (p1 + pf) / 2, atol=1e-5) and not np.allclose(p1, pf, atol=1e-3)
    out = seg.predict(vol, [g.Point((15.0, 20.0, 17.0), True), g.Point((15.0, 20.0, 25.0), False)], None)
    assert out.shape == vol.shape and out.dtype == bool
    assert out[15, 20, 17] and not out[15, 20, 25]  # the clicks are honoured whatever the weights
    # output.click_honour_radius: a network that calls everything object loses exactly the ball of
    # that radius around a negative click (7 voxels at 1, 33 at 2)
    everything = seg.probabilities
    seg.probabilities = lambda b: np.ones((len(b), *b.shape[2:]), np.float32)  # P(object) everywhere
    two = [g.Point((15.0, 20.0, 17.0), True), g.Point((15.0, 20.0, 25.0), False)]
    for radius, cleared in ((1.0, 7), (2.0, 33)):
        seg.honour_radius = radius
        assert (~seg.predict(vol, two, None)).sum() == cleared
    seg.probabilities, seg.honour_radius = everything, 1.0
    assert not seg.predict(vol, [g.Point((15.0, 20.0, 17.0), False)], None).any()  # nothing positive: empty


def test_widening_a_three_label_unet_into_the_interactive_one(shared_data):
    from medview.inference.package import PackageError, find_package, load_network
    from medview.interactive.training import load_widened

    try:
        src = load_network(find_package("hippocampus")).state_dict()
    except PackageError as exc:
        pytest.skip(f"hippocampus package not available: {exc}")
    net, _ = _net()
    load_widened(net, "hippocampus", log=lambda _t: None)
    own = net.state_dict()
    w = own["model.0.conv.unit0.conv.weight"]
    assert w.shape[1] == 4 and np.allclose(w[:, :1].numpy(), src["model.0.conv.unit0.conv.weight"].numpy())
    b = own["model.2.0.conv.bias"].numpy()
    sb = src["model.2.0.conv.bias"].numpy()
    assert b.shape == (2,) and np.isclose(b[0], sb[0]) and np.isclose(b[1], sb[1:].mean())


class BrightRegion3D(m3.Segmenter3D):
    """Deterministic 3D stand-in: the bright 3D region under the positive clicks."""

    def __init__(self):
        super().__init__(net=None, version="7.7.7", model_id="fake-3d")
        self.calls = 0

    def predict(self, volume, clicks, prev_mask=None, pos_strokes=None, neg_strokes=None, spacing=None, tta=None,
                direction=None, focus=None):
        self.calls += 1
        self.focus = focus
        lab, _ = ndimage.label(volume > volume.mean())
        keep = {int(lab[tuple(int(round(v)) for v in k.pos)]) for k in clicks if k.positive} - {0}
        out = np.isin(lab, sorted(keep))
        m3.honour_clicks(out, [k for k in clicks if not k.positive], 2.0)
        return out


def _lm(img, modality=""):
    meta = {"Modality": modality} if modality else {}
    return LabelMap.empty(Volume(np.zeros(img.shape, np.int16), meta=meta))


def test_a_3d_model_segments_the_whole_object_from_one_click_as_one_undo_step():
    img, ball = ball_volume()
    lm = _lm(img)
    h = EditHistory(lm)
    seg3 = BrightRegion3D()
    s = AssistSession(BrightRegionSegmenter(), lm, img, h, value=1, segmenter3d=seg3)
    done = s.run(s.click(0, 10, 24.0, 24.0, True))
    assert done == [10] and seg3.calls == 1
    assert np.array_equal(lm.array == 1, ball)  # every slice at once, no propagation
    assert h.undo_names() == ["AI assist (fake-3d 7.7.7)"]
    assert lm.provenance.ai_assisted == {"fake-3d 7.7.7": 1}
    # a click in another plane is a 3D click too (coronal: axis 1)
    s.run(s.click(1, 24, 10.0, 24.0, False))
    assert s.points3d[-1].pos == (10.0, 24.0, 24.0) and not s.points3d[-1].positive
    assert lm.array[10, 24, 24] == 0 and (lm.array == 1).sum() < ball.sum()
    assert len(h.undo_names()) == 2 and lm.provenance.ai_assisted == {"fake-3d 7.7.7": 2}
    h.undo()
    assert np.array_equal(lm.array == 1, ball)
    h.undo()
    assert lm.array.max() == 0


def test_a_3d_box_is_a_new_object_clipped_to_the_boxs_prism_and_paint_over_background_is_kept():
    img, ball = ball_volume()
    lm = _lm(img)
    lm.array[10, 24, 30] = 2  # another label inside the ball
    s = AssistSession(BrightRegionSegmenter(), lm, img, None, value=1, segmenter3d=BrightRegion3D())
    s.run(s.box(0, 10, 17, 17, 24, 31))
    got = lm.array == 1
    assert got[10, 20, 24] and not got[10, 28, 24] and got[5, 20, 24]  # rows <= 24 only, in every slice
    assert lm.array[10, 24, 30] == 2  # "paint over background": the other label stays


def test_the_session_picks_a_fitting_bundled_3d_package_only_for_a_packaged_2d_model():
    from medview.inference.package import PackageError, find_package
    from medview.interactive.model import Segmenter

    try:
        pkg3 = find_package("interactive-3d")
    except PackageError as exc:
        pytest.skip(f"interactive-3d package not available: {exc}")
    assert m3.find_3d_package() is not None and m3.find_3d_package().dims == 3
    img, _ = ball_volume()
    packaged = Segmenter(net=None, version="1", model_id="interactive-2d")
    packaged.package = object()  # what from_package sets: loaded from a package
    s = AssistSession(packaged, _lm(img, "MR"), img, None)
    assert s.known_segmenter3d is None  # not looked for yet: a label never loads a network
    assert s.segmenter3d is not None and s.segmenter3d.model_id == pkg3.id
    assert s.known_segmenter3d is s.segmenter3d  # what the panel names (not interactive-2d)
    assert s.stroke_name == f"AI assist ({pkg3.id} {pkg3.version})"
    assert AssistSession(packaged, _lm(img), img, None).segmenter3d is not None  # modality unknown
    assert AssistSession(packaged, _lm(img, "CT"), img, None).segmenter3d is None  # made for MR only
    assert AssistSession(packaged, _lm(img[:1]), img[:1], None).segmenter3d is None  # one slice: 2D
    assert AssistSession(BrightRegionSegmenter(), _lm(img, "MR"), img, None).segmenter3d is None  # built in code
    assert AssistSession(packaged, _lm(img, "MR"), img, None, segmenter3d=None).segmenter3d is None
    # the package loads as a 3D segmenter wherever a package is opened
    assert Segmenter.from_package(pkg3).dims == 3


def test_the_bundled_3d_model_segments_validation_hippocampi(shared_data):
    """Validation volumes (the test part is kept for the benchmark): whole hippocampus."""
    import torch

    from medview.inference.package import PackageError, find_package
    from medview.interactive import training3d

    try:
        seg = m3.Segmenter3D.from_package(find_package("interactive-3d"))
    except PackageError as exc:
        pytest.skip(f"interactive-3d package not available: {exc}")
    torch.set_num_threads(1)
    dices = []
    for case in training3d.load_cases("val", log=lambda _t: None)[:4]:
        d, _ = training3d.run_clicks(seg, case.volume, case.labels > 0, 3)
        dices.append(d)
    arr = np.array(dices)
    assert arr[:, 0].mean() > 0.8 and arr[:, 2].mean() >= arr[:, 0].mean() - 0.02, arr


def test_click_weights_lift_the_loss_near_clicks_only_and_the_weighted_loss_reduces_to_dice_ce():
    import torch
    from monai.losses import DiceCELoss

    from medview.interactive import training3d as t3

    x = torch.zeros(1, 4, 24, 24, 24)
    x[0, 2, 10:13, 10:13, 10:13] = 1.0  # a negative click ball
    w = t3.click_weights(x, weight=2.0, reach=3)
    assert w.shape == (1, 24, 24, 24)
    assert float(w[0, 11, 11, 11]) == 3.0 and float(w[0, 11, 11, 15]) == 3.0  # within reach of the ball
    assert float(w[0, 11, 11, 16]) == 1.0 and float(w[0, 0, 0, 0]) == 1.0
    torch.manual_seed(0)
    logits = torch.randn(2, 2, 8, 8, 8)
    label = (torch.rand(2, 1, 8, 8, 8) > 0.6).float()
    plain = DiceCELoss(to_onehot_y=True, softmax=True)(logits, label.long())
    ours = t3.ClickWeightedDiceCE()(logits, torch.cat([label, torch.ones_like(label)], 1))
    assert abs(float(plain) - float(ours)) < 1e-5
    heavier = torch.ones_like(label)
    wrong = (logits.argmax(1, keepdim=True).float() != label)  # weight the misclassified voxels
    heavier[wrong] = 5.0
    assert float(t3.ClickWeightedDiceCE()(logits, torch.cat([label, heavier], 1))) > float(ours)


def test_the_3d_card_states_the_rounds_loss_and_niceness_its_run_used():
    from medview.interactive import card, training3d

    state = {"seed": 1, "init": "hippocampus", "train_minutes": 40, "elapsed_s": 2430, "epoch": 30,
             "best": 0.89, "best_epoch": 21, "split": {}, "steps_per_epoch": 40,
             "iter_p": [0.2, 0.2, 0.15, 0.15, 0.1, 0.1, 0.1], "click_weight": [2.0, 5], "niceness": 5}
    text = card.render_3d(state, [("bench", "noc90=4.00 ms_per_click=200")], ["a limit"])
    assert "0-6 rounds (probabilities 0.2 / 0.2 / 0.15 / 0.15 / 0.1 / 0.1 / 0.1)" in text
    assert "within 5 cells of a click weighted 3x" in text
    assert "nice 5" in text and "noc90=4.00" in text and "- a limit" in text
    old = {k: v for k, v in state.items() if k not in ("iter_p", "click_weight")}
    old_text = card.render_3d(old, [], [])
    assert "0-4 rounds (probabilities 0.25 / 0.25 / 0.2 / 0.15 / 0.15)" in old_text
    assert "weighted" not in old_text
    now = dict(state, iter_p=list(training3d.ITER_P), click_weight=[training3d.CLICK_WEIGHT, training3d.CLICK_REACH])
    assert ("weighted" in card.render_3d(now, [], [])) == (training3d.CLICK_WEIGHT > 0)


def test_the_3d_model_sees_a_dicom_series_in_its_own_orientation(shared_data):
    """The sample study's hippocampus crop is stored LPS (DICOM); the network was trained on
    the MSD volumes, stored RAS. Seen as stored, one click gave Dice 0.49 against the bundled
    hippocampus model's labels; permuted/flipped into RAS first (the mask mapped back) 0.93."""
    from pathlib import Path

    from medview.inference.geometry import orientation_code
    from medview.inference.package import find_package
    from medview.inference.pipeline import run_model
    from medview.interactive import simulate
    from medview.io import load_series, scan

    study = Path(__file__).resolve().parents[2] / "resources" / "sample" / "study"
    vol = next(load_series(s) for s in scan(str(study)).series if "Hippo" in (s.description or ""))
    assert orientation_code(vol.direction) == "LPS"
    ref = run_model(find_package("hippocampus"), vol, unverified_ok=True).labels.array > 0
    seg = m3.Segmenter3D.from_package(find_package("interactive-3d"))
    assert seg.orientation == "RAS"
    click = g.Point(tuple(float(v) for v in simulate.first_click(ref, None)[0]), True)
    arr = np.asarray(vol.array, np.float32)
    oriented = seg.predict(arr, [click], None, spacing=(1.0, 1.0, 1.0), direction=vol.direction)
    as_stored = seg.predict(arr, [click], None, spacing=(1.0, 1.0, 1.0))
    assert oriented.shape == ref.shape and oriented[tuple(int(round(v)) for v in click.pos)]
    assert simulate.dice(oriented, ref) >= 0.85
    assert simulate.dice(oriented, ref) > simulate.dice(as_stored, ref) + 0.2
    # the app's session passes the series' direction
    lm = LabelMap.empty(vol)
    sess = AssistSession(BrightRegionSegmenter(), lm, arr, EditHistory(lm), value=1, segmenter3d=seg)
    sess.run(sess.click(0, int(round(click.pos[0])), click.pos[1], click.pos[2], True))
    assert simulate.dice(lm.array == sess.value, oriented) > 0.99


def test_a_corrective_click_keeps_only_the_changes_that_reach_it():
    prev = np.zeros((20, 20, 20), bool)
    prev[5:15, 5:15, 5:15] = True
    new = prev.copy()
    new[5:15, 8:12, 15:17] = True  # grown where the click is (x = 16)
    new[5:15, 5:7, 5:15] = False  # shrunk elsewhere, not touching the growth (a regression)
    new[0, 0, 0] = True  # a speck far away
    out = m3.limit_changes(prev, new, (10.0, 10.0, 16.0), 3.0)
    assert out[5:15, 8:12, 15:17].all() and out.sum() == prev.sum() + 10 * 4 * 2  # only the growth
    assert out[5:15, 5:7, 5:15].all() and not out[0, 0, 0]  # the far changes are undone
    # a change connected to the click region is taken whole, however far it reaches
    ring = prev.copy()
    ring[5:15, 5:15, 15:17] = True
    ring[14:16, 5:17, 5:17] = True
    got = m3.limit_changes(prev, ring, (10.0, 10.0, 16.0), 2.0)
    assert np.array_equal(got, ring)
    assert np.array_equal(m3.limit_changes(prev, prev.copy(), (0.0, 0.0, 0.0), 4.0), prev)
    assert np.array_equal(m3.limit_changes(prev, new, (50.0, 50.0, 50.0), 3.0), prev)  # click outside


def test_the_session_hands_a_3d_click_as_the_focus_and_a_box_without_one():
    img, _ = ball_volume()
    seg3 = BrightRegion3D()
    s = AssistSession(BrightRegionSegmenter(), _lm(img), img, None, value=1, segmenter3d=seg3)
    s.run(s.click(0, 10, 24.0, 24.0, True))
    assert seg3.focus is s.points3d[-1]
    s.run(s.box(0, 10, 17, 17, 24, 31))
    assert seg3.focus is None


def test_predict_limits_a_corrective_clicks_changes_with_a_local_radius():
    """Segmenter3D.predict with a stand-in network that always answers the same big block: the
    first click takes it whole; a later click (with a previous mask) only where it reaches."""
    import torch

    class Block(torch.nn.Module):  # object = where the (z-scored) image is bright
        def forward(self, x):
            return torch.cat([-10 * x[:, :1], 10 * x[:, :1]], 1)

    seg = m3.Segmenter3D(Block())
    vol = -np.ones((40, 50, 40), np.float32)
    vol[10:30, 10:40, 10:30] = 1.0
    first = seg.predict(vol, [g.Point((20.0, 25.0, 20.0), True)])
    assert first[10:30, 10:40, 10:30].all() and first.sum() == 20 * 30 * 20
    prev = np.zeros(vol.shape, bool)
    prev[10:30, 10:40, 10:20] = True  # the left part; the network's answer adds the right part too
    inside = g.Point((20.0, 25.0, 15.0), True)  # in the previous mask, 5 cells from the change
    assert seg.predict(vol, [inside], prev, focus=inside).sum() == first.sum()  # no radius: all
    seg.local_radius = 3.0
    assert np.array_equal(seg.predict(vol, [inside], prev, focus=inside), prev)  # the change does not reach it
    near = g.Point((20.0, 25.0, 21.0), True)  # on the change
    assert np.array_equal(seg.predict(vol, [inside, near], prev, focus=near), first)
    assert seg.predict(vol, [inside], prev).sum() == first.sum()  # no focus (a box, a scribble): all


def test_local_updates_start_after_the_first_clicks_when_asked():
    """``output.local_update_after`` N: the first N clicks change the object anywhere, later ones
    only where the change reaches the new click."""
    import torch

    class Block(torch.nn.Module):  # object = where the (z-scored) image is bright
        def forward(self, x):
            return torch.cat([-10 * x[:, :1], 10 * x[:, :1]], 1)

    seg = m3.Segmenter3D(Block())
    vol = -np.ones((40, 50, 40), np.float32)
    vol[10:30, 10:40, 10:30] = 1.0
    whole = seg.predict(vol, [g.Point((20.0, 25.0, 20.0), True)])
    prev = np.zeros(vol.shape, bool)
    prev[10:30, 10:40, 10:20] = True
    far = [g.Point((20.0, 25.0, 15.0), True), g.Point((20.0, 20.0, 14.0), True), g.Point((20.0, 30.0, 13.0), True)]
    seg.local_radius, seg.local_after = 3.0, 2
    assert np.array_equal(seg.predict(vol, far[:2], prev, focus=far[1]), whole)  # 2 clicks: still global
    assert np.array_equal(seg.predict(vol, far, prev, focus=far[2]), prev)  # the 3rd: local, out of reach
    seg.local_after = 0
    assert np.array_equal(seg.predict(vol, far[:1], prev, focus=far[0]), prev)  # 0: local from the start


def test_interactive_errors_counts_the_error_at_the_true_surface():
    """benchmarks/interactive_errors.py: a mask one voxel too wide errs only at the surface; a
    stray blob far from the object does not."""
    import importlib.util
    from pathlib import Path

    from scipy import ndimage

    path = Path(__file__).resolve().parents[2] / "benchmarks" / "interactive_errors.py"
    spec = importlib.util.spec_from_file_location("interactive_errors", path)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    zz, yy, xx = np.mgrid[:30, :30, :30]
    gt = (zz - 15) ** 2 + (yy - 15) ** 2 + (xx - 15) ** 2 <= 36
    assert mod.surface_share(gt, gt) == 1.0
    assert mod.surface_share(ndimage.binary_dilation(gt), gt) == 1.0
    stray = gt.copy()
    stray[0:3, 0:3, 0:3] = True  # 27 wrong voxels far from the surface
    assert mod.surface_share(stray, gt) == 0.0
    both = ndimage.binary_dilation(gt) | stray
    wide = int((ndimage.binary_dilation(gt) ^ gt).sum())
    assert mod.surface_share(both, gt) == pytest.approx(wide / (wide + 27))
