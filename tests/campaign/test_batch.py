"""Batch inference on Dask: failures stay in their case, outputs appear whole, --resume skips
exactly the finished cases (same model version, options, input hash)."""

import csv
import json
import os

import pytest
from toys import write_box_images  # tests/inference, put on sys.path by conftest

from medview.campaign import batch, cases
from medview.cli import main


def _batch(out):
    return json.loads((out / "batch.json").read_text())


@pytest.mark.slow
def test_failures_are_isolated_and_resume_skips_finished_cases(seg2d_package, tmp_path, capsys):
    src = tmp_path / "in"
    images = write_box_images(src / "site1", 5)
    (src / "site1" / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\n not an image")
    (src / "empty.png").write_bytes(b"")
    out = tmp_path / "out"
    rc = main(["infer", "--model", str(seg2d_package.path), str(src), "--out", str(out), "--workers", "2",
               "--unverified-ok", "--tta"])
    text = capsys.readouterr()
    assert rc == 1, text  # failures make the exit status non-zero, after every other case ran
    js = _batch(out)
    by_status = {s: sorted(c["case"] for c in js["cases"] if c["status"] == s) for s in ("ok", "failed")}
    assert by_status["ok"] == [f"site1_case{i:03d}" for i in range(5)]
    failed = [c for c in js["cases"] if c["status"] == "failed"]
    assert len(failed) == 2 and {os.path.basename(c["path"]) for c in failed} == {"broken.png", "empty.png"}
    assert all(c["path"] in c["reason"] for c in failed) and "Traceback" not in text.err
    assert js["model"] == {"id": seg2d_package.id, "version": "0.1.0", "sha256": seg2d_package.sha256}
    rows = list(csv.DictReader((out / "batch.csv").open()))
    assert len(rows) == 7 and {r["status"] for r in rows} == {"ok", "failed"}
    assert "done 5, failed 2" in text.err and "cases/s" in text.err
    for name in by_status["ok"]:
        rec = json.loads((out / name / "case.json").read_text())
        assert rec["input_sha256"] == cases.input_hash(cases.from_files([src / "site1" / (name[6:] + ".png")])[0])
        assert {"prediction.json", "segmentation.nii.gz", "uncertainty.nii.gz"} <= set(rec["files"])
        assert 0.0 <= rec["uncertainty"]["score"] <= 1.0
    assert not (out / batch.PARTIAL).exists() or not any((out / batch.PARTIAL).iterdir())
    before = {n: (out / n / "case.json").stat().st_mtime_ns for n in by_status["ok"]}

    # change one input, remove one finished output: only those two run again (here on a
    # running scheduler, as a site's cluster would be)
    from distributed import LocalCluster
    from PIL import Image

    Image.open(images[1]).transpose(Image.Transpose.FLIP_LEFT_RIGHT).save(images[1])
    import shutil

    shutil.rmtree(out / "site1_case003")
    with LocalCluster(n_workers=1, threads_per_worker=1, processes=False, dashboard_address=None) as cluster:
        rc = main(["infer", "--model", str(seg2d_package.path), str(src), "--out", str(out), "--resume",
                   "--scheduler", cluster.scheduler_address, "--unverified-ok", "--tta"])
    text = capsys.readouterr()
    assert rc == 1
    js = _batch(out)
    status = {c["case"]: c["status"] for c in js["cases"]}
    assert status == {"site1_case000": "skipped", "site1_case001": "ok", "site1_case002": "skipped",
                      "site1_case003": "ok", "site1_case004": "skipped", "site1_broken": "failed",
                      os.path.join(str(src), "empty.png"): "failed"}
    assert js["skipped"] == 3 and js["ok"] == 2 and js["failed"] == 2 and "Dask scheduler" in js["where"]
    for n in ("site1_case000", "site1_case002", "site1_case004"):
        assert (out / n / "case.json").stat().st_mtime_ns == before[n]  # not rewritten
    assert (out / "site1_case001" / "case.json").stat().st_mtime_ns != before["site1_case001"]


def test_resume_needs_same_model_version_options_and_input():
    job = batch.Job(model="m", model_id="m", model_version="1.0.0", model_sha256="a" * 64, out_root="o")
    rec = {"status": "ok", "model": job.model_record, "options": job.options, "input_sha256": "h"}
    assert batch.is_done(rec, job, "h")
    assert not batch.is_done(rec, job, "other input")
    assert not batch.is_done({**rec, "status": "failed"}, job, "h")
    assert not batch.is_done({**rec, "model": {**job.model_record, "version": "1.1.0"}}, job, "h")
    assert not batch.is_done({**rec, "model": {**job.model_record, "sha256": "b" * 64}}, job, "h")
    assert not batch.is_done({**rec, "options": {**job.options, "tta": True}}, job, "h")
    assert not batch.is_done(None, job, "h")


def test_a_case_failing_while_writing_leaves_the_previous_outputs_whole(seg2d_package, tmp_path, monkeypatch):
    """run_case in this process (the benchmark's bare loop calls it the same way)."""
    images = write_box_images(tmp_path / "in", 1)
    (case,) = cases.from_files(images)
    job = batch.make_job(seg2d_package, tmp_path / "out", unverified_ok=True, device="cpu")
    first = batch.run_case(case, job)
    assert first["status"] == "ok", first
    pred_before = (tmp_path / "out" / case.name / "prediction.json").read_bytes()

    from medview.inference import outputs

    real = outputs.write_outputs

    def write_then_fail(pred, out_dir, image=None):
        real(pred, out_dir, image)
        (out_dir / "prediction.json").write_text("half")
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(outputs, "write_outputs", write_then_fail)
    second = batch.run_case(case, job)
    assert second["status"] == "failed" and "No space left on device" in second["reason"]
    assert case.path in second["reason"]
    assert (tmp_path / "out" / case.name / "prediction.json").read_bytes() == pred_before
    assert json.loads((tmp_path / "out" / case.name / "case.json").read_text())["status"] == "ok"


def test_case_names_follow_the_path_below_the_source(tmp_path):
    write_box_images(tmp_path / "a", 2)
    write_box_images(tmp_path / "b", 1)
    found, problems = cases.discover(tmp_path)
    assert sorted(c.name for c in found) == ["a_case000", "a_case001", "b_case000"] and not problems
    write_box_images(tmp_path / "0-first", 1)  # a new folder does not rename the others
    again, _ = cases.discover(tmp_path)
    assert {c.name for c in again} == {"a_case000", "a_case001", "b_case000", "0-first_case000"}
    with pytest.raises(cases.NoCases, match="does not exist"):
        cases.discover(tmp_path / "missing")


def test_cases_from_a_pacs_source_leave_out_non_image_series(tmp_path):
    """pacs:FOLDER goes through the StudySource interface (the folder implementation here; a
    DICOMweb or DIMSE source answers the same calls)."""
    import shutil

    from pydicom.data import get_testdata_file

    for name in ("CT_small.dcm", "MR_small.dcm"):
        shutil.copy(get_testdata_file(name), tmp_path / name)
    found, problems = cases.discover(f"pacs:{tmp_path}")
    assert len(found) == 2 and not problems
    assert {c.series.modality for c in found} == {"CT", "MR"}
    assert all(c.path == str(tmp_path) and c.name for c in found) and len({c.name for c in found}) == 2
    (mr,), _ = cases.discover(f"pacs:{tmp_path}?modality=MR")
    assert mr.series.modality == "MR" and mr.name == next(c.name for c in found if c.series.modality == "MR")
    with pytest.raises(cases.NoCases, match="no image series match"):
        cases.discover(f"pacs:{tmp_path}?modality=US")
    with pytest.raises(cases.NoCases, match="unknown PACS filter"):
        cases.discover(f"pacs:{tmp_path}?colour=red")
