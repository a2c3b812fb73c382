"""Audit trail: entries are appended, never rewritten; a changed line is detected."""

from __future__ import annotations

import json

from medview.reporting.audit import audit_log_path, read_log, record, verify_chain


def test_entries_append_and_never_rewrite(monkeypatch):
    monkeypatch.setenv("MEDVIEW_REVIEWER", "Ada Reader")
    meta = {"PatientID": "P1", "StudyInstanceUID": "1.2.3", "SeriesInstanceUID": "1.2.3.4", "source_path": "/x"}
    path = audit_log_path()
    before = b""
    for action in ("open", "run_model", "edit", "export"):
        record(action, meta, {"n": action})
        now = path.read_bytes()
        assert now.startswith(before) and len(now) > len(before)  # earlier bytes untouched
        before = now
    entries = read_log()
    assert [e["action"] for e in entries] == ["open", "run_model", "edit", "export"]
    assert all(e["user"] == "Ada Reader" and e["study"]["StudyInstanceUID"] == "1.2.3" for e in entries)
    assert verify_chain() is None


def test_changed_or_removed_line_is_detected():
    for a in ("open", "edit", "export"):
        record(a, {"StudyInstanceUID": "9"})
    path = audit_log_path()
    lines = path.read_bytes().splitlines(keepends=True)
    edited = json.loads(lines[1])
    edited["action"] = "open"
    path.write_bytes(lines[0] + (json.dumps(edited, sort_keys=True) + "\n").encode() + lines[2])
    assert verify_chain() == 3
    path.write_bytes(lines[0] + lines[2])  # a removed line
    assert verify_chain() == 2


def test_commands_and_core_exports_are_audited(tmp_path):
    import pydicom

    from medview.cli import main

    src = pydicom.data.get_testdata_file("CT_small.dcm")
    assert main(["deidentify", src, "--out", str(tmp_path / "o.dcm")]) == 0
    assert main(["audit", "--verify"]) == 0
    assert [e["action"] for e in read_log()] == ["deidentify"]


def test_model_run_and_seg_export_are_audited(tmp_path):
    """run_model (app, CLI and batch share it) and the SEG export write their entries."""
    from medview.annotation.dicom_seg import export_dicom_seg
    from medview.annotation.labelmap import Label, LabelMap
    from medview.config import resources_dir
    from medview.inference.package import find_package
    from medview.inference.pipeline import run_model
    from medview.io import load_volume

    crop = resources_dir() / "sample" / "study" / "HippoCrop"
    vol = load_volume(crop)
    pred = run_model(find_package("hippocampus"), vol, device="cpu")
    lm = LabelMap.from_array(vol, pred.labels.array, [Label(1, "anterior", (255, 0, 0)),
                                                      Label(2, "posterior", (0, 255, 0))])
    export_dicom_seg(lm, tmp_path / "seg.dcm")
    run, export = read_log()
    assert run["action"] == "run_model" and run["detail"]["model"] == "hippocampus"
    assert run["detail"]["sha256"] == pred.model_sha256 and run["study"]["SeriesInstanceUID"] == \
        vol.meta["SeriesInstanceUID"]
    assert export["action"] == "export" and export["detail"]["format"] == "DICOM SEG"
    assert verify_chain() is None
