import csv
import json

import numpy as np
import pytest

from medview.annotation import LabelMap, paint
from medview.annotation.correction import edit_prediction, edit_summary
from medview.annotation.dicom_seg import SegError, export_dicom_seg, import_dicom_seg
from medview.annotation.nifti import load_nifti, save_nifti, sidecar_path
from medview.annotation.review import ClassificationReview, load_reviews_json, save_reviews_csv, save_reviews_json
from medview.annotation.training_set import export_training_case
from medview.cli import main as cli_main
from medview.io import LoadError, load_volume
from medview.io.volume import Volume

OBLIQUE_T1 = "dicom/mr-brain-tcia/Study1/12-T1post-05670"
FLAIR3 = "dicom/mr-brain-tcia/Study3/36468-FLAIRreg-58706"
HCROP = "dicom/mr-brain-tcia/Study1/13_HCropVolume"


def _labels_on(image: Volume) -> LabelMap:
    lm = LabelMap.empty(image, reviewer="Ada Lovelace")
    lm.rename(1, "tumour")
    lm.add_label("oedema", (0, 200, 0))
    z, y, x = image.shape
    paint(lm, (z // 2, y // 2, x // 2), radius_mm=12, value=1, sphere=True)
    paint(lm, (z // 3, y // 3, x // 2), (z // 3, y // 2, x // 3), radius_mm=6, value=2)
    paint(lm, (z - 1, 3, 3), radius_mm=3, value=2)  # an edge slice, touching the border
    return lm


def _affine_ras(path):
    import nibabel as nib

    return nib.load(str(path)).affine


@pytest.mark.parametrize("series", [OBLIQUE_T1, FLAIR3, HCROP])
def test_nifti_seg_nifti_round_trip_real_series(shared_data, tmp_path, series):
    ref = load_volume(shared_data / series)
    lm = _labels_on(ref)
    nii = save_nifti(lm, tmp_path / "labels.nii.gz")
    assert sidecar_path(nii).is_file()
    # headless export through the real CLI
    rc = cli_main(["export-seg", str(nii), "--reference", str(shared_data / series),
                   "--out", str(tmp_path / "seg.dcm")])
    assert rc == 0
    back = import_dicom_seg(tmp_path / "seg.dcm", ref)
    assert back.array.shape == ref.shape
    assert np.array_equal(back.array, lm.array)
    assert back.volume.same_geometry(ref)
    assert {v: lab.name for v, lab in back.labels.items()} == {1: "tumour", 2: "oedema"}
    assert back.labels[2].color == (0, 200, 0)
    # and back to NIfTI: identical labels and geometry
    rc = cli_main(["import-seg", str(tmp_path / "seg.dcm"), "--reference", str(shared_data / series),
                   "--out", str(tmp_path / "back.nii.gz")])
    assert rc == 0
    a = load_nifti(nii)
    b = load_nifti(tmp_path / "back.nii.gz")
    assert np.array_equal(a.array, b.array)
    assert np.allclose(_affine_ras(nii), _affine_ras(tmp_path / "back.nii.gz"), atol=1e-4)
    assert a.volume.same_geometry(b.volume, tol=1e-4)


def test_seg_references_source_series_and_describes_segments(shared_data, tmp_path):
    import highdicom as hd
    import pydicom

    ref = load_volume(shared_data / OBLIQUE_T1)
    lm = _labels_on(ref)
    lm.provenance.source, lm.provenance.model_id, lm.provenance.model_version = "model", "brain-tumour", "1.2.0"
    export_dicom_seg(lm, tmp_path / "seg.dcm")
    seg = hd.seg.segread(str(tmp_path / "seg.dcm"))
    assert seg.Modality == "SEG" and seg.SegmentationType == "BINARY"
    src_uids = {str(pydicom.dcmread(f, stop_before_pixels=True).SOPInstanceUID) for f in ref.meta["source_files"]}
    referenced = {u[2] for u in seg.get_source_image_uids()}
    assert referenced <= src_uids and len(referenced) > 0
    assert {u[1] for u in seg.get_source_image_uids()} == {ref.meta["SeriesInstanceUID"]}
    assert seg.FrameOfReferenceUID == ref.meta["FrameOfReferenceUID"]
    d1 = seg.get_segment_description(1)
    assert d1.segment_label == "tumour" and d1.segmented_property_category.value == "85756007"
    assert d1.algorithm_type.value == "SEMIAUTOMATIC" and d1.algorithm_identification[0].AlgorithmName == "brain-tumour"
    assert str(seg.ContentCreatorName) == "Lovelace^Ada"


def test_non_contiguous_values_survive_seg(shared_data, tmp_path):
    ref = load_volume(shared_data / HCROP)
    lm = LabelMap.empty(ref)
    lm.add_label("five", value=5)
    paint(lm, (10, 20, 20), radius_mm=4, value=1, sphere=True)
    paint(lm, (20, 30, 15), radius_mm=3, value=5, sphere=True)
    export_dicom_seg(lm, tmp_path / "seg.dcm")
    back = import_dicom_seg(tmp_path / "seg.dcm", ref)
    assert np.array_equal(back.array, lm.array) and back.labels[5].name == "five"


def test_seg_refuses_wrong_grid_and_non_dicom(shared_data, tmp_path):
    ref = load_volume(shared_data / OBLIQUE_T1)
    other = load_volume(shared_data / FLAIR3)
    lm = _labels_on(other)
    with pytest.raises(SegError):
        export_dicom_seg(lm, tmp_path / "x.dcm", ref.meta["source_files"])
    synthetic = LabelMap.empty(Volume(np.zeros((3, 8, 8), np.int16)))
    with pytest.raises(SegError, match="DICOM"):
        export_dicom_seg(synthetic, tmp_path / "y.dcm")
    # a SEG of one series does not import onto another
    export_dicom_seg(_labels_on(ref), tmp_path / "seg.dcm")
    with pytest.raises(LoadError, match="belongs to patient .*PGBM-002.*PGBM-003.*refused"):
        import_dicom_seg(tmp_path / "seg.dcm", other)
    assert cli_main(["export-seg", str(tmp_path / "nope.nii.gz"), "--reference", str(shared_data / OBLIQUE_T1),
                     "--out", str(tmp_path / "z.dcm")]) == 2


def test_nifti_sidecar_and_import_onto_series(shared_data, tmp_path):
    ref = load_volume(shared_data / OBLIQUE_T1)
    lm = _labels_on(ref)
    lm.provenance.source = "model"
    lm.provenance.model_sha256 = "ab" * 32
    save_nifti(lm, tmp_path / "l.nii.gz")
    side = json.loads((tmp_path / "l.json").read_text())
    assert [d["name"] for d in side["labels"]] == ["tumour", "oedema"]
    assert side["provenance"]["model_sha256"] == "ab" * 32 and side["provenance"]["reviewer"] == "Ada Lovelace"
    back = load_nifti(tmp_path / "l.nii.gz", ref)
    assert np.array_equal(back.array, lm.array) and not back.volume.warnings
    assert back.provenance.model_sha256 == "ab" * 32
    # the NIfTI lines up with the image in RAS (what nibabel and other viewers use)
    import nibabel as nib

    ras = np.diag([-1, -1, 1, 1]) @ ref.affine
    assert np.allclose(nib.load(str(tmp_path / "l.nii.gz")).affine, ras, atol=1e-3)
    # a label map on another grid of the same space is resampled onto the series
    half = Volume(lm.array[:, ::2, ::2].copy(), (ref.spacing[0] * 2, ref.spacing[1] * 2, ref.spacing[2]),
                  ref.origin, ref.direction)
    LabelMap(half, lm.labels.values()).volume.to_sitk()
    save_nifti(LabelMap(half, lm.labels.values()), tmp_path / "half.nii.gz", sidecar=False)
    with pytest.raises(LoadError, match="--resample"):  # no sidecar, another grid: only when asked
        load_nifti(tmp_path / "half.nii.gz", ref)
    res = load_nifti(tmp_path / "half.nii.gz", ref, allow_resample=True)
    assert res.shape == ref.shape and res.volume.warnings
    from medview.annotation.correction import dice

    assert dice(res.array == 1, lm.array == 1) > 0.9


def test_correction_summary_counts_and_dice():
    from medview.inference.prediction import Prediction

    img = Volume(np.zeros((4, 50, 50), np.int16), spacing=(1, 1, 2))
    ai = np.zeros(img.shape, np.uint8)
    ai[1:3, 10:20, 10:20] = 1
    ai[1:3, 30:40, 30:40] = 2
    pred = Prediction("seg-model", "Seg", "2.0", "cd" * 32, "segmentation", "cpu", labels=img.like(ai),
                      label_info=[{"value": 1, "name": "a", "color": [1, 2, 3]}, {"value": 2, "name": "b"}])
    lm, original = edit_prediction(pred, img)
    assert lm.provenance.source == "model" and lm.provenance.model_sha256 == "cd" * 32
    assert lm.labels[1].color == (1, 2, 3)
    lm.array[1, 10:20, 20:25] = 1  # +50 voxels of a
    lm.array[1:3, 30:35, 30:40] = 0  # -100 voxels of b
    s = edit_summary(lm, original)
    rows = {r["name"]: r for r in s["labels"]}
    assert rows["a"]["added"] == 50 and rows["a"]["removed"] == 0
    assert rows["b"]["removed"] == 100 and rows["b"]["added"] == 0
    assert rows["b"]["dice"] == pytest.approx(2 * 100 / (200 + 100))
    assert rows["a"]["added_ml"] == pytest.approx(50 * 2 / 1000)
    assert s["voxels_changed"] == 150


def test_classification_reviews_json_csv(tmp_path):
    from medview.inference.prediction import Prediction

    pred = Prediction("busi", "BUSI", "1.0", "ef" * 32, "classification", "cpu", classes=["benign", "malignant"],
                      probabilities={"benign": 0.3, "malignant": 0.7})
    meta = {"SeriesInstanceUID": "1.2.3", "PatientID": "P1"}
    r1 = ClassificationReview.from_prediction(pred, meta, "accept", reviewer="Dr Who")
    r2 = ClassificationReview.from_prediction(pred, meta, "relabel", final_label="benign", comment="calcified, benign")
    r3 = ClassificationReview.from_prediction(pred, meta, "reject", comment="image unusable")
    assert r1.final_label == "malignant" and r2.final_label == "benign" and r3.final_label is None
    with pytest.raises(ValueError):
        ClassificationReview.from_prediction(pred, meta, "relabel")
    save_reviews_json([r1, r2, r3], tmp_path / "r.json")
    back = load_reviews_json(tmp_path / "r.json")
    assert [r.decision for r in back] == ["accept", "relabel", "reject"]
    assert back[0].model_sha256 == "ef" * 32 and back[0].reviewer == "Dr Who"
    save_reviews_csv(back, tmp_path / "r.csv")
    rows = list(csv.DictReader(open(tmp_path / "r.csv", newline="")))
    assert rows[1]["final_label"] == "benign" and rows[1]["comment"] == "calcified, benign"
    assert json.loads(rows[0]["probabilities"]) == {"benign": 0.3, "malignant": 0.7}


def test_training_set_export_reads_with_monai(shared_data, tmp_path):
    import nibabel as nib
    from monai.data import load_decathlon_datalist

    out = tmp_path / "train"
    ref = load_volume(shared_data / OBLIQUE_T1)
    export_training_case(ref, _labels_on(ref), out)
    # the second case through the command line, from a NIfTI label map
    ref = load_volume(shared_data / FLAIR3)
    save_nifti(_labels_on(ref), tmp_path / "flair_labels.nii.gz")
    assert cli_main(["export-training", str(tmp_path / "flair_labels.nii.gz"), "--reference",
                     str(shared_data / FLAIR3), "--out", str(out), "--case", "flair"]) == 0
    ds = json.loads((out / "dataset.json").read_text())
    assert ds["labels"] == {"0": "background", "1": "tumour", "2": "oedema"} and ds["numTraining"] == 2
    items = load_decathlon_datalist(str(out / "dataset.json"), True, "training", base_dir=str(out))
    assert len(items) == 2 and items[1]["image"].endswith("images/flair.nii.gz")
    for it in items:
        img, lab = nib.load(it["image"]), nib.load(it["label"])
        assert img.shape == lab.shape and np.allclose(img.affine, lab.affine, atol=1e-4)
        assert set(np.unique(np.asarray(lab.dataobj))) == {0, 1, 2}
    # a conflicting label name is refused
    ref = load_volume(shared_data / HCROP)
    bad = LabelMap.empty(ref)
    bad.rename(1, "something else")
    with pytest.raises(ValueError, match="label 1"):
        export_training_case(ref, bad, out)


def test_multiframe_enhanced_source_round_trip(shared_data, tmp_path):
    """An enhanced (multi-frame) MR source: one file, frames placed by their plane positions."""
    import pydicom
    from pydicom.uid import generate_uid

    src_dir = shared_data / "dicom/conformance/siemens_multiframe/anatomical/001"
    if not src_dir.is_dir():
        pytest.skip(f"{src_dir} not found")
    ref0 = load_volume(src_dir)
    lm0 = LabelMap.empty(ref0)
    paint(lm0, (4, 128, 128), radius_mm=8, value=1, sphere=True)
    # dicom2nifti's test file has no FrameOfReferenceUID, which the SEG IOD requires: refused clearly
    with pytest.raises(SegError, match="Frame Of Reference"):
        export_dicom_seg(lm0, tmp_path / "no_for.dcm")
    # the same file with a frame of reference added (a copy; everything else unchanged)
    (tmp_path / "mf").mkdir()
    for f in src_dir.iterdir():
        ds = pydicom.dcmread(f)
        ds.FrameOfReferenceUID = generate_uid()
        ds.save_as(tmp_path / "mf" / f.name)
    ref = load_volume(tmp_path / "mf")
    assert len(set(ref.meta["source_files"])) == 1 and ref.shape[0] > 1
    lm = LabelMap.empty(ref)
    lm.add_label("two")
    z, y, x = ref.shape
    paint(lm, (z // 2, y // 2, x // 2), radius_mm=10, value=1, sphere=True)
    paint(lm, (0, 20, 20), (0, 40, 60), radius_mm=4, value=2)
    export_dicom_seg(lm, tmp_path / "seg.dcm")
    back = import_dicom_seg(tmp_path / "seg.dcm", ref)
    assert np.array_equal(back.array, lm.array)
