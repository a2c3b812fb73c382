"""Several readers: Dice per label, Cohen's kappa, region-wise adjudication that records who
decided what."""

import json

import numpy as np
import pytest

from medview.annotation.labelmap import Label, LabelMap
from medview.annotation.nifti import load_nifti, read_sidecar
from medview.campaign import readers
from medview.io.volume import Volume

LABELS = [Label(1, "lesion", (255, 0, 0)), Label(2, "cyst", (0, 0, 255))]


def _image():
    return Volume(np.zeros((1, 30, 40), np.float32), spacing=(0.5, 0.5, 1.0), meta={"Modality": "US",
                                                                                    "PatientID": "P1"})


def _reading(image, boxes):
    arr = np.zeros(image.shape, np.uint8)
    for value, (y0, y1, x0, x1) in boxes:
        arr[0, y0:y1, x0:x1] = value
    return LabelMap.from_array(image, arr, LABELS)


def test_dice_per_label_and_kappa():
    a = np.zeros((10, 10), np.uint8)
    b = np.zeros((10, 10), np.uint8)
    a[0:4, 0:5] = 1  # 20 voxels
    b[2:6, 0:5] = 1  # 20 voxels, 10 shared
    b[8:10, 8:10] = 2  # only reader b has label 2
    d = readers.dice_per_label(a, b)
    assert d[1] == pytest.approx(0.5) and d[2] == 0.0
    assert readers.dice_per_label(a, b, [1, 3])[3] is None
    assert readers.cohen_kappa(["y", "y", "n", "n"], ["y", "n", "n", "n"]) == pytest.approx(0.5)
    assert readers.cohen_kappa(["a", "b", "c"], ["a", "b", "c"]) == pytest.approx(1.0)
    assert readers.cohen_kappa(["a", "b"], ["b", "a"]) == pytest.approx(-1.0)
    with pytest.raises(ValueError):
        readers.cohen_kappa(["a"], [])


def test_readings_round_trip_and_agreement(tmp_path):
    img = _image()
    readers.save_reading(tmp_path, _reading(img, [(1, (2, 10, 2, 10))]), reader="dr one")
    readers.save_reading(tmp_path, _reading(img, [(1, (4, 12, 2, 10))]), reader="dr two")
    readers.save_classification(tmp_path, "benign", reader="dr one")
    readers.save_classification(tmp_path, "malignant", reader="dr two")
    assert list(readers.label_readings(tmp_path)) == ["dr_one", "dr_two"]
    assert readers.class_readings(tmp_path) == {"dr one": "benign", "dr two": "malignant"}
    ag = readers.case_agreement(tmp_path)
    assert ag["dice"]["dr_one vs dr_two"]["lesion"] == pytest.approx(2 * 48 / 128)
    assert load_nifti(readers.label_readings(tmp_path)["dr_one"]).provenance.reviewer == "dr one"
    other = tmp_path / "case2"
    readers.save_classification(other, "benign", reader="dr one")
    readers.save_classification(other, "benign", reader="dr two")
    k = readers.campaign_kappa([tmp_path, other])
    assert k["dr one vs dr two"]["cases"] == 2 and k["dr one vs dr two"]["agree"] == 1


def test_adjudication_per_region_records_who_decided(tmp_path):
    img = _image()
    a = _reading(img, [(1, (2, 10, 2, 10)), (2, (20, 24, 30, 34))])  # big shared lesion + a cyst only A saw
    b = _reading(img, [(1, (4, 12, 2, 10)), (1, (20, 22, 5, 7))])  # the lesion shifted + a speck only B saw
    lab, regs = readers.regions([a.array, b.array])
    assert [r.voxels for r in regs] == [80, 16, 4]  # largest first: lesion union, A's cyst, B's speck
    assert not regs[0].agree and regs[1].dice == 0.0
    lm, info = readers.adjudicate({"A": a, "B": b}, {1: "intersection", 3: "A"}, default="union",
                                  adjudicator="chief")
    arr = lm.array[0]
    assert (arr[4:10, 2:10] == 1).all() and arr[2:4].sum() == 0 and arr[10:12].sum() == 0  # intersection
    assert (arr[20:24, 30:34] == 2).all()  # region 2: default union keeps A's cyst
    assert arr[20:22, 5:7].sum() == 0  # region 3: A's side, where A has nothing
    by_region = {r["region"]: r for r in info["regions"]}
    assert by_region[1]["choice"] == "intersection" and by_region[1]["explicit"]
    assert by_region[2]["choice"] == "union" and not by_region[2]["explicit"]
    assert by_region[3]["taken_from"] == "A" and all(r["decided_by"] == "chief" for r in info["regions"])
    path = readers.save_adjudicated(tmp_path, lm, info)
    side = read_sidecar(path)
    assert side["adjudication"]["adjudicator"] == "chief" and side["provenance"]["reviewer"] == "chief"
    assert len(side["adjudication"]["regions"]) == 3
    assert np.array_equal(load_nifti(path).array, lm.array)
    json.dumps(info)  # the record is plain JSON


def test_union_conflicts_and_majority():
    vals = np.array([[1, 0, 2, 1], [2, 0, 0, 1], [2, 1, 0, 0]])
    u, conflicts = readers.combine(vals, "union")
    assert list(u) == [1, 1, 2, 1] and conflicts == 1  # voxel 0: readers gave 1 and 2
    m, ties = readers.combine(vals, "majority")
    assert list(m) == [2, 0, 0, 1] and ties == 0
    i, differ = readers.combine(vals, "intersection")
    assert list(i) == [0, 0, 0, 0] and differ == 4
    with pytest.raises(ValueError):
        readers.combine(vals, "coin")
