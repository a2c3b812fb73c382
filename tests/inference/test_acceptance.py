"""Issue 12 item 5/6 through the real CLI: models only where they belong, no silent fallback,
batches that go on past a bad case. Bundled models on the bundled sample study (resources/)
and pydicom's test files."""

import gzip
import json

import numpy as np
import pytest

from medview.cli import main
from medview.config import bundled_models_dir, sample_study_dir
from medview.inference import acceptance, package
from medview.io import load_volume, save_volume
from medview.io.volume import Volume

T1POST = sample_study_dir() / "study" / "T1post"  # DICOM MR brain
HIPPO = sample_study_dir() / "study" / "HippoCrop"  # DICOM MR hippocampus crop


def _bundled(model_id):
    folder = bundled_models_dir() / model_id
    pkg = package.validate(folder)
    if not pkg.ok:
        pytest.skip(f"bundled model {model_id} not usable here: {pkg.reason}")
    return pkg


@pytest.fixture
def only_bundled(tmp_path, monkeypatch):
    """No user or $MEDVIEW_MODELS packages: `--model breast-us` is the bundled one."""
    monkeypatch.setenv("MEDVIEW_HOME", str(tmp_path / "home"))
    monkeypatch.delenv("MEDVIEW_MODELS", raising=False)


def test_every_bundled_model_declares_what_it_accepts():
    for folder in sorted(bundled_models_dir().iterdir()):
        if not (folder / "model.json").is_file():
            continue
        m = json.loads((folder / "model.json").read_text())
        acc = m.get("accepts")
        assert isinstance(acc, dict) and acc.get("modality") and acc.get("channels"), folder.name
        assert "" not in acc["modality"] and "OT" not in acc["modality"], folder.name
        assert acceptance.acceptance_errors(acc) == [], folder.name


def test_check_input_ok_unverified_refused():
    pkg = _bundled("breast-us")
    grey = np.zeros((1, 64, 64), np.uint8)
    assert pkg.check_input(Volume(grey, meta={"Modality": "US"})).verdict == "ok"
    nifti_like = pkg.check_input(Volume(grey, meta={"Modality": ""}))
    assert nifti_like.verdict == "unverified" and nifti_like.unknown == ["modality"]
    assert nifti_like.note().startswith("input not verified for this model: unknown modality")
    assert pkg.check_input(Volume(grey, meta={"Modality": "OT"})).verdict == "unverified"
    ct = pkg.check_input(Volume(grey, meta={"Modality": "CT"}))
    assert ct.refused and ct.reason == "made for US images, this series is CT"
    knee = pkg.check_input(Volume(grey, meta={"Modality": "US", "BodyPartExamined": "KNEE"}))
    assert knee.refused and "BREAST" in knee.reason and "KNEE" in knee.reason
    skin = _bundled("skin-lesion")
    assert skin.check_input(Volume(grey, meta={"Modality": "XC"})).reason == \
        "made for colour images, this is a grey image"
    bad = package.manifest_errors({**skin.manifest, "accepts": {"modality": [""], "channels": [2], "x": 1}})
    assert any("accepts.modality" in e for e in bad) and any("accepts.channels" in e for e in bad)
    assert any("unknown keys: x" in e for e in bad)


def test_breast_us_on_a_brain_mr_never_silently_answers(tmp_path, capsys, only_bundled):
    _bundled("breast-us")
    if not T1POST.is_dir():
        pytest.skip(f"sample study missing at {T1POST}")
    brain = tmp_path / "BRAIN_MR.nii.gz"
    save_volume(load_volume(T1POST), brain)  # NIfTI: the modality is gone
    out = tmp_path / "out"
    rc = main(["infer", "--model", "breast-us", str(brain), "--out", str(out)])
    text = capsys.readouterr()
    assert rc == 1 and "input not verified for this model: unknown modality" in text.err
    assert "--unverified-ok" in text.err and "benign" not in text.out + text.err
    assert "Traceback" not in text.err and not (out / "prediction.json").exists()
    # the DICOM series itself says MR: refused with the reason, flag or not
    rc = main(["infer", "--model", "breast-us", str(T1POST), "--out", str(out), "--unverified-ok"])
    err = capsys.readouterr().err
    assert rc == 1 and "made for US images, this series is MR" in err and not (out / "prediction.json").exists()
    from pydicom.data import get_testdata_file

    rc = main(["infer", "--model", "breast-us", get_testdata_file("CT_small.dcm"), "--out", str(out)])
    assert rc == 1 and "made for US images, this series is CT" in capsys.readouterr().err
    # acknowledged: it runs, and says so everywhere
    rc = main(["infer", "--model", "breast-us", str(brain), "--out", str(out), "--unverified-ok"])
    text = capsys.readouterr()
    assert rc == 0, text
    assert "(input not verified)" in text.out and "note: input not verified for this model" in text.err
    js = json.loads((out / "prediction.json").read_text())
    assert js["input_verified"] is False and js["input_check"]["unknown"] == ["modality"]
    assert js["input_check"]["note"].startswith("input not verified for this model")
    assert js["input"]["path"] == str(brain) and js["messages"][0].startswith("input not verified")


def test_prediction_names_its_dicom_input_and_the_sidecar_names_the_segments(tmp_path, capsys, only_bundled):
    pkg = _bundled("hippocampus")
    if not HIPPO.is_dir():
        pytest.skip(f"sample study missing at {HIPPO}")
    out = tmp_path / "out"
    rc = main(["infer", "--model", "hippocampus", str(HIPPO), "--out", str(out), "--device", "cpu"])
    assert rc == 0, capsys.readouterr()
    js = json.loads((out / "prediction.json").read_text())
    image = load_volume(HIPPO)
    assert js["input_verified"] is True and "input not verified" not in json.dumps(js)
    assert js["input"]["series_uid"] == image.meta["SeriesInstanceUID"]
    assert js["input"]["patient_id"] == image.meta["PatientID"] and js["input"]["modality"] == "MR"
    assert js["input"]["path"] == str(image.meta["source_path"])
    side = json.loads((out / "segmentation.json").read_text())
    assert [lab["name"] for lab in side["labels"]] == [lab["name"] for lab in pkg.labels]
    assert side["reference"]["SeriesInstanceUID"] == image.meta["SeriesInstanceUID"]
    # a later export-seg names the segments from that sidecar
    seg = tmp_path / "seg.dcm"
    rc = main(["export-seg", str(out / "segmentation.nii.gz"), "--reference", str(HIPPO), "--out", str(seg)])
    assert rc == 0, capsys.readouterr()
    import pydicom

    ds = pydicom.dcmread(seg)
    assert [s.SegmentLabel for s in ds.SegmentSequence] == [lab["name"] for lab in pkg.labels]


def test_a_bad_cam_class_is_refused_before_any_work(tmp_path, capsys, only_bundled):
    _bundled("xray-view")
    _bundled("hippocampus")
    missing = tmp_path / "not-there.dcm"  # never looked at: the class is checked first
    rc = main(["infer", "--model", "xray-view", str(missing), "--out", str(tmp_path / "o"), "--cam",
               "--cam-class", "knee"])
    err = capsys.readouterr().err
    assert rc == 2 and "has no class 'knee' (classes: chest, abdomen)" in err and "not-there" not in err
    rc = main(["infer", "--model", "xray-view", str(missing), "--out", str(tmp_path / "o"), "--cam-class", "7"])
    assert rc == 2 and "class index 7 out of range" in capsys.readouterr().err
    rc = main(["infer", "--model", "hippocampus", str(missing), "--out", str(tmp_path / "o"), "--cam-class", "1"])
    assert rc == 2 and "needs a classifier" in capsys.readouterr().err
    assert not (tmp_path / "o").exists()


def test_weights_failing_their_hash_never_fall_back_to_a_same_id_copy(tmp_path, capsys, monkeypatch):
    from test_package import _write

    monkeypatch.setenv("MEDVIEW_HOME", str(tmp_path / "home"))
    env_dir = tmp_path / "env"
    _write(env_dir / "tiny", id="tiny", version="2.0.0")
    _write(tmp_path / "home" / "models" / "tiny", id="tiny", version="1.0.0")  # a good copy, user folder
    w = env_dir / "tiny" / "weights.safetensors"
    data = bytearray(w.read_bytes())
    data[-1] ^= 0xFF
    w.write_bytes(bytes(data))
    monkeypatch.setenv("MEDVIEW_MODELS", str(env_dir))
    assert main(["models"]) == 0
    out = capsys.readouterr().out
    assert "unusable: weights sha256 mismatch" in out
    assert f"shadowed by {env_dir / 'tiny'} (same id), which is unusable: weights sha256 mismatch" in out
    rc = main(["models", "--json"])
    rows = json.loads(capsys.readouterr().out)
    assert rc == 0 and [r["status"] for r in rows if r["id"] == "tiny"] == ["unusable", "unusable"]
    src = tmp_path / "mr.nii.gz"
    save_volume(Volume(np.zeros((2, 16, 16), np.float32)), src)
    rc = main(["infer", "--model", "tiny", str(src), "--out", str(tmp_path / "o"), "--unverified-ok"])
    err = capsys.readouterr().err
    assert rc == 2 and "model 'tiny' is unusable: weights sha256 mismatch" in err and "not falling back" in err
    with pytest.raises(package.PackageError, match="sha256 mismatch"):
        package.find_package("tiny")


def test_a_batch_goes_on_past_bad_cases_and_records_them(cls_package, tmp_path, capsys):
    import sys

    sys.path.insert(0, str(__import__("pathlib").Path(__file__).parent))
    import toys
    from PIL import Image

    src = tmp_path / "in"
    rng = np.random.default_rng(7)
    for study in ("a_good", "z_good"):
        (src / study).mkdir(parents=True)
        img, _ = toys.cls_sample(rng, study == "z_good")
        Image.fromarray(np.clip(img * 40 + 100, 0, 255).astype(np.uint8)).save(src / study / "x.png")
    bad = src / "bad"
    bad.mkdir()
    good_png = (src / "a_good" / "x.png").read_bytes()
    (bad / "truncated.png").write_bytes(good_png[: len(good_png) // 2])
    (bad / "garbage.nii.gz").write_bytes(b"\x1f\x8b\x08\x00" + bytes(range(256)) * 4)  # gzip header, bad stream
    vol = Volume(np.ones((4, 16, 16), np.float32))
    save_volume(vol, bad / "full.nii.gz")
    raw = gzip.decompress((bad / "full.nii.gz").read_bytes())
    (bad / "short.nii").write_bytes(raw[: len(raw) // 3])  # header fine, voxels cut
    (bad / "full.nii.gz").unlink()
    (bad / "empty.dcm").write_bytes(b"")
    out = tmp_path / "out"
    rc = main(["infer", "--model", str(cls_package.path), str(src), "--out", str(out), "--unverified-ok"])
    text = capsys.readouterr()
    assert rc == 1, text
    assert "Traceback" not in text.err + text.out
    batch = json.loads((out / "batch.json").read_text())
    cases = batch["cases"]
    ok = [c for c in cases if c["status"] == "ok"]
    failed = [c for c in cases if c["status"] == "failed"]
    assert len(ok) == 2 and all((out / c["out"].split("/")[-1] / "prediction.json").is_file() for c in ok)
    assert len(failed) >= 3 and all(c["reason"] for c in failed)
    assert batch["ok"] == len(ok) and batch["failed"] == len(failed)
    for name in ("truncated.png", "garbage.nii.gz", "short.nii", "empty.dcm"):
        hits = [c for c in failed if name in c["case"] or name in c["reason"]]
        assert hits, (name, failed)
    # every failure one line on stderr, naming the case
    err_lines = [ln for ln in text.err.splitlines() if "error:" in ln]
    assert len(err_lines) == len(failed)
    assert f"{len(ok)}/{len(cases)} cases done, {len(failed)} failed" in text.out
