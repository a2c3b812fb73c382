"""The self-test function run from source on the bundled sample study and tiny real model packages.

The frozen build itself is checked by packaging/check.sh, not here.
"""

from __future__ import annotations

import json

import numpy as np
import pytest

from medview import selftest
from medview.config import sample_study_dir
from medview.selftest import models as selftest_models


def _by_name(report):
    return {c.name: c for c in report.checks}


def test_self_test_runs_every_model_and_round_trips_exports(toy_models, tmp_path):
    out = tmp_path / "out"
    report = selftest.run_self_test(models_dir=toy_models, out_dir=out, gui=False, stream=open("/dev/null", "w"))
    checks = _by_name(report)
    assert report.ok, report.table()
    assert checks["model packages"].status == "PASS"
    # the 3D MR model runs on a sample series; 2D models of other modalities on synthetic images
    assert checks["model t-seg3d-mr 0.0.1"].status == "PASS"
    assert "sample" in checks["model t-seg3d-mr 0.0.1"].detail
    assert "synthetic 64x64 grey" in checks["model t-cls2d-xr 0.0.1"].detail
    assert "Grad-CAM" in checks["model t-cls2d-xr 0.0.1"].detail or "gradcam" in checks["model t-cls2d-xr 0.0.1"].detail
    assert "synthetic 64x64 RGB" in checks["model t-seg2d-rgb 0.0.1"].detail
    # no CT in the sample: said so, not faked
    ct = checks["model t-seg3d-ct 0.0.1"]
    assert ct.status == "SKIP" and "CT" in ct.detail and "MR" in ct.detail
    for name in ("open sample study", "DICOM codecs (RLE, J2K, JPEG-LS)", "export + re-read NIfTI",
                 "export + re-read DICOM SEG", "environment"):
        assert checks[name].status == "PASS", checks[name]
    assert (out / "labels.nii.gz").is_file() and (out / "labels_seg.dcm").is_file()
    assert "running on CPU" in " ".join(report.notes) or "GPU:" in " ".join(report.notes)
    table = report.table()
    assert "total" in table and "1 skipped" in table
    # the exports, checked again independently of the self-test's own checks
    import pydicom
    import SimpleITK as sitk

    from medview.io import load_volume

    seg = pydicom.dcmread(str(out / "labels_seg.dcm"))
    ref_uid = seg.ReferencedSeriesSequence[0].SeriesInstanceUID
    src = next(v for v in (load_volume(str(p)) for p in sorted((sample_study_dir() / "study").iterdir()))
               if v.meta.get("SeriesInstanceUID") == ref_uid)
    img = sitk.ReadImage(str(out / "labels.nii.gz"))
    assert img.GetSize() == src.size_xyz
    assert np.allclose(img.GetSpacing(), src.spacing, atol=1e-4)
    assert np.allclose(img.GetOrigin(), src.origin, atol=1e-3)
    assert np.allclose(np.reshape(img.GetDirection(), (3, 3)), src.direction, atol=1e-5)


def test_unusable_model_package_fails_the_self_test_and_the_exit_code(broken_models, tmp_path, capsys):
    from medview.cli import main

    rc = main(["--self-test", "--no-gui", "--models", str(broken_models), "--json", str(tmp_path / "r.json")])
    text = capsys.readouterr().out
    assert rc == 1
    assert "SELF-TEST FAILED" in text and "sha256 mismatch" in text
    data = json.loads((tmp_path / "r.json").read_text())
    assert data["ok"] is False
    assert {c["name"]: c["status"] for c in data["checks"]}["model packages"] == "FAIL"


def test_no_models_is_a_failure_unless_allowed(tmp_path):
    empty = tmp_path / "none"
    empty.mkdir()
    quiet = open("/dev/null", "w")
    strict = selftest.run_self_test(models_dir=empty, out_dir=tmp_path / "a", gui=False, stream=quiet)
    assert not strict.ok and _by_name(strict)["model packages"].status == "FAIL"
    lenient = selftest.run_self_test(models_dir=empty, out_dir=tmp_path / "b", gui=False, require_models=False,
                                     stream=quiet)
    assert lenient.ok and _by_name(lenient)["model packages"].status == "SKIP"


def test_cli_sub_command_and_top_level_flag_agree(toy_models, tmp_path, capsys):
    from medview.cli import main

    assert main(["self-test", "--no-gui", "--models", str(toy_models), "--json", str(tmp_path / "a.json")]) == 0
    assert main(["--self-test", "--no-gui", "--models", str(toy_models), "--json", str(tmp_path / "b.json")]) == 0
    out = capsys.readouterr().out
    assert out.count("SELF-TEST PASSED") == 2
    names = [[c["name"] for c in json.loads((tmp_path / f).read_text())["checks"]] for f in ("a.json", "b.json")]
    assert names[0] == names[1]


def test_version_flag(capsys):
    from medview import __version__
    from medview.cli import main

    with pytest.raises(SystemExit) as exc:
        main(["--version"])
    assert exc.value.code == 0
    assert capsys.readouterr().out.strip() == f"MedView {__version__}"


def test_check_prediction_catches_a_result_off_the_image_grid(toy_models):
    from medview.inference.package import validate
    from medview.inference.prediction import Prediction
    from medview.io.volume import Volume

    pkg = validate(toy_models / "t-seg3d-mr")
    vol = Volume(np.zeros((4, 8, 8), np.int16), (1.0, 1.0, 2.0), meta={"Modality": "MR"})
    good = Prediction(pkg.id, pkg.name, pkg.version, pkg.sha256, "segmentation", "cpu",
                      labels=vol.like(np.ones((4, 8, 8), np.uint8)))
    assert selftest.check_prediction(pkg, vol, good) == []
    moved = Volume(np.ones((4, 8, 8), np.uint8), (1.0, 1.0, 2.0), origin=(5.0, 0.0, 0.0))
    bad = Prediction(pkg.id, pkg.name, pkg.version, pkg.sha256, "segmentation", "cpu", labels=moved)
    assert any("grid" in e for e in selftest.check_prediction(pkg, vol, bad))
    wrong_value = Prediction(pkg.id, pkg.name, pkg.version, pkg.sha256, "segmentation", "cpu",
                             labels=vol.like(np.full((4, 8, 8), 7, np.uint8)))
    assert any("unexpected label values [7]" in e for e in selftest.check_prediction(pkg, vol, wrong_value))


@pytest.mark.gui
def test_main_window_is_shown_offscreen_with_the_sample(qapp, toy_models, tmp_path):
    report = selftest.run_self_test(models_dir=toy_models, out_dir=tmp_path, gui=True, stream=open("/dev/null", "w"))
    checks = _by_name(report)
    assert checks["main window shown"].status == "PASS", checks["main window shown"]
    assert "to a shown window" in checks["main window shown"].detail
    assert checks["sample shown in main window"].status == "PASS", checks["sample shown in main window"]
    assert (tmp_path / "main_window.png").stat().st_size > 1000
    assert report.ok, report.table()


def test_loaded_libraries_lists_what_this_process_mapped():
    import sys

    if not sys.platform.startswith("linux"):
        pytest.skip("reads /proc/self/maps (Linux)")
    import torch  # noqa: F401 - maps libtorch

    libs = selftest.loaded_libraries()
    assert any("libtorch" in p for p in libs)
    assert all(p.startswith("/") and ".so" in p for p in libs)


def test_self_test_passes_on_the_shipped_models(tmp_path):
    """What the frozen build runs in CI: every bundled package, the click-driven one included."""
    from medview.config import bundled_models_dir

    root = bundled_models_dir()
    if not any(root.glob("*/model.json")):
        pytest.skip(f"no bundled model packages in {root}")
    report = selftest.run_self_test(models_dir=root, out_dir=tmp_path, gui=False, stream=open("/dev/null", "w"))
    assert report.ok, report.table()
    checks = _by_name(report)
    assert any(name.startswith("model interactive-2d") and c.status == "PASS" and "one click" in c.detail
               for name, c in checks.items()), report.table()
    # the 3D one on the sample hippocampus crop, in its own orientation, against the segmenter's labels
    i3d = next(c for name, c in checks.items() if name.startswith("model interactive-3d"))
    assert i3d.status == "PASS" and "against hippocampus's labels" in i3d.detail, report.table()
    assert float(i3d.detail.split("Dice ")[1].split()[0]) >= selftest_models.MIN_3D_AGREEMENT
