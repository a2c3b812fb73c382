"""`medview infer` / `medview models` through the real CLI entry point."""

import json

import numpy as np
import pytest

from medview.cli import main
from medview.io import load_volume, save_volume
from medview.io.volume import Volume


def _oblique_nifti(path, seed=0):
    rng = np.random.default_rng(seed)
    img = rng.normal(0, 0.3, (12, 30, 26)).astype(np.float32)
    img[4:9, 8:20, 6:16] += 1.5
    direction = np.array([[0, 0, 1], [1, 0, 0], [0, -1, 0]], float)
    v = Volume(img, spacing=(0.9, 1.1, 2.0), origin=(10.0, -5.0, 30.0), direction=direction, meta={"Modality": "MR"})
    save_volume(v, path)
    return v


@pytest.mark.slow
def test_infer_file_writes_prediction_and_segmentation_on_input_geometry(seg3d_package, tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("MEDVIEW_MODELS", str(seg3d_package.path.parent))
    src = tmp_path / "case.nii.gz"
    _oblique_nifti(src)
    out = tmp_path / "out"
    # a NIfTI states no modality: refused with the reason unless acknowledged
    rc = main(["infer", "--model", seg3d_package.id, str(src), "--out", str(out), "--device", "cpu", "--tta"])
    err = capsys.readouterr().err
    assert rc == 1 and "input not verified for this model: unknown modality" in err and "--unverified-ok" in err
    assert "Traceback" not in err and not (out / "prediction.json").exists()
    rc = main(["infer", "--model", seg3d_package.id, str(src), "--out", str(out), "--device", "cpu", "--tta",
               "--unverified-ok"])
    assert rc == 0, capsys.readouterr()
    js = json.loads((out / "prediction.json").read_text())
    assert js["input_verified"] is False and js["input"]["path"] == str(src)
    # the label sidecar beside the segmentation, in the format medview.annotation.nifti reads
    from medview.annotation.nifti import load_nifti, read_sidecar

    side = read_sidecar(out / "segmentation.nii.gz")
    assert [(lab["value"], lab["name"]) for lab in side["labels"]] == [(1, "object")]
    assert side["provenance"]["source"] == "model" and side["provenance"]["model_id"] == seg3d_package.id
    assert load_nifti(out / "segmentation.nii.gz").labels[1].name == "object"
    assert js["model"] == {"id": seg3d_package.id, "name": seg3d_package.name, "version": "0.1.0",
                           "sha256": seg3d_package.sha256}
    assert js["device"].startswith("cpu") and js["timing_s"]["total"] > 0
    assert js["labels"][0]["name"] == "object" and js["labels"][0]["volume_ml"] > 0
    image = load_volume(src)
    seg = load_volume(out / "segmentation.nii.gz")
    unc = load_volume(out / "uncertainty.nii.gz")
    assert seg.same_geometry(image) and unc.same_geometry(image)
    truth = np.zeros(image.shape, bool)
    truth[4:9, 8:20, 6:16] = True
    lab = seg.array == 1
    assert 2 * (lab & truth).sum() / (lab.sum() + truth.sum()) > 0.8
    assert js["labels"][0]["voxels"] == int(lab.sum())


@pytest.mark.slow
def test_infer_batch_over_a_folder_of_studies_with_cam(cls_package, tmp_path, capsys):
    import toys
    from PIL import Image

    rng = np.random.default_rng(4)
    for study in ("studyA", "studyB"):
        (tmp_path / "in" / study).mkdir(parents=True)
        img, _ = toys.cls_sample(rng, study == "studyB")
        Image.fromarray(np.clip(img * 40 + 100, 0, 255).astype(np.uint8)).save(tmp_path / "in" / study / "x.png")
    out = tmp_path / "out"
    # a package folder works as --model too
    # PNGs state no modality: the model runs on them only with the explicit acknowledgement
    rc = main(["infer", "--model", str(cls_package.path), str(tmp_path / "in"), "--out", str(out), "--cam",
               "--unverified-ok"])
    text = capsys.readouterr()
    assert rc == 0, text
    batch = json.loads((out / "batch.json").read_text())
    assert len(batch["cases"]) == 2 and all(s["status"] == "ok" for s in batch["cases"])
    assert "[1/2]" in text.err and "[2/2]" in text.err  # progress per series
    for s in batch["cases"]:
        d = out / s["out"].split("/")[-1]
        js = json.loads((d / "prediction.json").read_text())
        assert set(js["probabilities"]) == {"plain", "spot"} and js["heatmap"]["kind"] == "gradcam"
        assert (d / "gradcam.nii.gz").is_file()
        assert js["input_verified"] is False and "input not verified for this model" in js["input_check"]["note"]
        assert js["input"]["path"].endswith("x.png")


def test_infer_errors_are_one_clear_line(tmp_path, capsys, monkeypatch):
    from test_package import _write

    rc = main(["infer", "--model", "no-such-model", str(tmp_path), "--out", str(tmp_path / "o")])
    assert rc == 2 and "no model package with id 'no-such-model'" in capsys.readouterr().err
    _write(tmp_path / "m" / "tiny")  # an MR model
    monkeypatch.setenv("MEDVIEW_MODELS", str(tmp_path / "m"))
    rc = main(["infer", "--model", "tiny", str(tmp_path), "--out", str(tmp_path / "o"), "--device", "cuda:9"])
    assert rc == 2 and "device 'cuda:9' is not available" in capsys.readouterr().err
    from pydicom.data import get_testdata_file

    ct = get_testdata_file("CT_small.dcm")  # a real CT DICOM: a known modality that does not match
    rc = main(["infer", "--model", "tiny", ct, "--out", str(tmp_path / "o"), "--unverified-ok"])
    err = capsys.readouterr().err
    assert rc == 1 and "model tiny does not fit" in err and "made for MR images, this series is CT" in err
    assert "Traceback" not in err and not (tmp_path / "o" / "prediction.json").exists()


def test_models_lists_usable_and_unusable(tmp_path, monkeypatch, capsys):
    from test_package import _write

    _write(tmp_path / "m" / "good", id="good")
    _write(tmp_path / "m" / "bad", id="bad")
    (tmp_path / "m" / "bad" / "MODEL_CARD.md").unlink()
    monkeypatch.setenv("MEDVIEW_MODELS", str(tmp_path / "m"))
    assert main(["models"]) == 0
    text = capsys.readouterr().out
    assert "good" in text and "unusable: missing MODEL_CARD.md" in text
    assert main(["models", "list", "--json"]) == 0
    rows = {r["id"]: r for r in json.loads(capsys.readouterr().out)}
    assert rows["good"]["status"] == "ok" and rows["bad"]["status"] == "unusable"
