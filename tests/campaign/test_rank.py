"""What to label next: uncertainty scores, the ranked list, and whether the ranking is useful
on the models' own held-out labelled cases."""

import json

import numpy as np
import pytest

from medview.campaign import evaluation, rank
from medview.cli import main


def test_class_scores_entropy_and_margin():
    sure = rank.class_scores({"a": 0.98, "b": 0.01, "c": 0.01})
    torn = rank.class_scores({"a": 0.5, "b": 0.49, "c": 0.01})
    flat = rank.class_scores({"a": 1 / 3, "b": 1 / 3, "c": 1 / 3})
    assert flat["entropy"] == pytest.approx(1.0) and sure["entropy"] < torn["entropy"] < flat["entropy"]
    assert torn["margin"] == pytest.approx(0.01) and sure["margin"] == pytest.approx(0.97)


def test_segmentation_score_is_the_disagreement_in_and_around_the_object():
    labels = np.zeros((1, 20, 20), np.uint8)
    labels[0, 5:10, 5:10] = 1
    d = np.zeros((1, 20, 20), np.float32)
    d[0, 4:11, 4:11] = 0.8  # object grown by one pixel (no corners: a cross structure)
    d[0, 15:20, 15:20] = 0.9  # uncertain voxels away from the object count only in the volume
    s = rank.segmentation_scores(labels, d, voxel_size=0.25, unit="mm2")
    grown = 25 + 4 * 5  # the object plus its four-neighbour border
    assert s["mean_disagreement"] == pytest.approx(0.8 * grown / grown, rel=1e-6)
    assert s["uncertain_voxels"] == 49 + 25 and s["uncertain_mm2"] == pytest.approx(74 * 0.25)
    empty = rank.segmentation_scores(np.zeros_like(labels), d)
    assert empty["mean_disagreement"] == 1.0 and empty["note"] == "no object found"


def test_worklist_order_and_quarters():
    recs = [{"case": f"c{i}", "path": f"/p/c{i}", "status": "ok", "uncertainty": {"score": s}}
            for i, s in enumerate([0.1, 0.9, 0.5, 0.9])] + [{"case": "x", "path": "/p/x", "status": "failed"}]
    assert [r["case"] for r in rank.worklist(recs)] == ["c1", "c3", "c2", "c0"]
    q = rank.quarter_errors([0.9, 0.8, 0.7, 0.1, 0.2, 0.3, 0.6, 0.5], [True, True, False, False, False, True,
                                                                          False, False])
    assert q["quarter"] == 2 and q["errors_most_uncertain"] == 2 and q["errors_least_uncertain"] == 0
    with pytest.raises(ValueError):
        rank.quarter_errors([0.1, 0.2], [True, False])


@pytest.mark.slow
def test_rank_prints_most_uncertain_first_and_writes_the_worklist(cls_package, tmp_path, capsys):
    import toys
    from PIL import Image

    rng = np.random.default_rng(7)
    for i in range(6):
        img, _ = toys.cls_sample(rng, i % 2 == 1)
        if i == 4:  # a faint spot: the model should be less sure
            img = img * 0.3
        Image.fromarray(np.clip(img * 40 + 100, 0, 255).astype(np.uint8)).save(tmp_path / f"img{i}.png")
    out = tmp_path / "campaign"
    rc = main(["rank", "--model", str(cls_package.path), str(tmp_path), "--out", str(out), "--workers", "1",
               "--unverified-ok"])
    text = capsys.readouterr()
    assert rc == 0, text
    lines = [ln.split("\t") for ln in text.out.strip().splitlines()]
    assert len(lines) == 6 and all(ln[0].startswith(str(tmp_path)) for ln in lines)
    scores = [float(ln[-1]) for ln in lines]
    assert scores == sorted(scores, reverse=True)
    wl = json.loads((out / "worklist.json").read_text())
    assert [c["path"] for c in wl["cases"]] == [ln[0] for ln in lines] and wl["cases"][0]["rank"] == 1
    assert (out / "worklist.csv").read_text().splitlines()[0] == "rank,case,path,result,score"


@pytest.mark.slow
@pytest.mark.parametrize("model_id", ["breast-us", "skin-lesion-seg"])
def test_ranking_finds_more_errors_in_the_most_uncertain_quarter(model_id, shared_data, tmp_path):
    """BUSI / PH2 validation parts (the training split's own): the most uncertain quarter holds
    clearly more model errors than the least uncertain one."""
    from medview.inference.package import find_package

    rep = evaluation.ranking_on_split(find_package(model_id), part="val", out=tmp_path / "ho", workers=2)
    q = rep["quarters"]
    print("\n".join(evaluation.report_lines(rep)[-3:]))
    assert not rep["failed"] and q["n"] >= 20
    assert q["errors_most_uncertain"] >= 2 and q["errors_most_uncertain"] >= 2 * q["errors_least_uncertain"]
    assert q["quality_most_uncertain"] < q["quality_least_uncertain"]
