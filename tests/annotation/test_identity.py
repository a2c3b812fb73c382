"""Labels of one patient never go onto another patient's series (CLI and core functions).

Real data: the TCIA HippoCrop series of two patients, PGBM-002 (Study1) and PGBM-003 (Study3).
"""

import shutil

import numpy as np
import pytest

from medview.annotation import LabelMap, paint
from medview.annotation.dicom_seg import export_dicom_seg, import_dicom_seg
from medview.annotation.identity import IdentityError, ResampleRefused
from medview.annotation.nifti import load_nifti, save_nifti, sidecar_path
from medview.annotation.training_set import export_training_case
from medview.cli import main as cli_main
from medview.io import load_volume

CROP_A = "dicom/mr-brain-tcia/Study1/13_HCropVolume"  # PGBM-002
CROP_B = "dicom/mr-brain-tcia/Study3/11_HCropVolume"  # PGBM-003


def _labels(image):
    lm = LabelMap.empty(image, reviewer="test")
    lm.rename(1, "hippocampus")
    z, y, x = image.shape
    paint(lm, (z // 2, y // 2, x // 2), radius_mm=5, value=1, sphere=True)
    return lm


@pytest.fixture()
def two_patients(shared_data, tmp_path):
    a, b = load_volume(shared_data / CROP_A), load_volume(shared_data / CROP_B)
    assert a.meta["PatientID"] != b.meta["PatientID"]
    path = save_nifti(_labels(a), tmp_path / "labels.nii.gz")
    return shared_data, a, b, path


def test_core_refuses_labels_of_another_patient(two_patients, tmp_path):
    data, a, b, path = two_patients
    with pytest.raises(IdentityError) as e:
        load_nifti(path, b)
    msg = str(e.value)
    assert "labels.nii.gz belongs to patient" in msg and "PGBM-002" in msg and "PGBM-003" in msg
    assert "refused" in msg
    # even with resampling asked for: the sidecar says it is another patient
    with pytest.raises(IdentityError):
        load_nifti(path, b, allow_resample=True)
    # its own series: accepted, no warning
    assert not load_nifti(path, a).volume.warnings
    # training export of a label map that names another patient is refused too
    lm = _labels(a)
    lm.volume = b.like(np.zeros(b.shape, np.uint8))
    with pytest.raises(IdentityError, match="PGBM-002.*PGBM-003"):
        export_training_case(b, lm, tmp_path / "train")


def test_core_refuses_seg_of_another_patient(two_patients, tmp_path):
    data, a, b, path = two_patients
    seg = export_dicom_seg(load_nifti(path, a), tmp_path / "seg.dcm")
    with pytest.raises(IdentityError, match="PGBM-002.*PGBM-003"):
        import_dicom_seg(seg, b)
    assert import_dicom_seg(seg, a).counts()


def test_sidecar_less_labels(two_patients, tmp_path):
    data, a, b, path = two_patients
    bare = tmp_path / "bare" / "labels.nii.gz"
    bare.parent.mkdir()
    shutil.copy(path, bare)
    assert not sidecar_path(bare).exists()
    # same grid: accepted with a warning that identity could not be verified
    lm = load_nifti(bare, a)
    assert any("could not be verified" in w for w in lm.volume.warnings)
    # another grid: refused unless resampling is asked for
    assert a.shape != b.shape
    with pytest.raises(ResampleRefused, match="another voxel grid"):
        load_nifti(bare, b)
    res = load_nifti(bare, b, allow_resample=True)
    assert res.shape == b.shape and any("resampled" in w for w in res.volume.warnings)


def test_cli_refuses_other_patient_and_names_both(two_patients, tmp_path, capsys):
    data, a, b, path = two_patients
    ref_b = str(data / CROP_B)
    for cmd, out in (("export-seg", "seg.dcm"), ("import-seg", "back.nii.gz"), ("export-training", "train")):
        rc = cli_main([cmd, str(path), "--reference", ref_b, "--out", str(tmp_path / out)])
        err = capsys.readouterr().err
        assert rc == 2, cmd
        assert "PGBM-002" in err and "PGBM-003" in err and "refused" in err, err
        assert not (tmp_path / out).exists(), cmd
    # the right patient goes through
    assert cli_main(["export-seg", str(path), "--reference", str(data / CROP_A), "--out",
                     str(tmp_path / "ok.dcm")]) == 0
    # a SEG of patient A imported onto patient B through the CLI
    rc = cli_main(["import-seg", str(tmp_path / "ok.dcm"), "--reference", ref_b, "--out", str(tmp_path / "x.nii.gz")])
    assert rc == 2 and "PGBM-003" in capsys.readouterr().err


def test_cli_sidecar_less_other_grid_needs_resample(two_patients, tmp_path, capsys):
    data, a, b, path = two_patients
    bare = tmp_path / "bare.nii.gz"
    shutil.copy(path, bare)
    ref_b = str(data / CROP_B)
    rc = cli_main(["export-seg", str(bare), "--reference", ref_b, "--out", str(tmp_path / "seg.dcm")])
    assert rc == 2 and "--resample" in capsys.readouterr().err
    rc = cli_main(["export-seg", str(bare), "--reference", ref_b, "--out", str(tmp_path / "seg.dcm"), "--resample"])
    assert rc == 0 and "identity not verified" in capsys.readouterr().err
