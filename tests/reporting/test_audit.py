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
