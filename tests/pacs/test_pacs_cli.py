"""`medview pacs echo|find|get|send|sources` against the real local Orthanc, and what a user sees
when the server is down: one line and a non-zero exit, never a traceback."""

from __future__ import annotations

import os
import subprocess
import sys

import pydicom
import pytest

from medview.cli import main as cli_main
from medview.config import sample_study_dir
from medview.pacs.orthanc import free_port

T1 = sample_study_dir() / "study" / "T1post"


def _study_uid() -> str:
    return str(pydicom.dcmread(next(T1.glob("*.dcm")), stop_before_pixels=True).StudyInstanceUID)


def _medview(*args: str, timeout: float = 60) -> subprocess.CompletedProcess:
    env = dict(os.environ)
    return subprocess.run([sys.executable, "-m", "medview", *args], capture_output=True, text=True,
                          timeout=timeout, env=env)


def test_down_server_is_one_line_and_nonzero_exit():
    port = free_port()  # nothing listens there
    for args in (["pacs", "echo", f"http://127.0.0.1:{port}/dicom-web"],
                 ["pacs", "find", f"dicom://PACS@127.0.0.1:{port}", "--patient-id", "X"],
                 ["pacs", "get", f"http://127.0.0.1:{port}/dicom-web", "1.2.3", "--out", "/tmp/never"]):
        r = _medview(*args)
        assert r.returncode == 2, (args, r.stdout, r.stderr)
        lines = [ln for ln in r.stderr.splitlines() if ln.strip()]
        assert len(lines) == 1, r.stderr
        assert lines[0].startswith("error: ") and "cannot connect" in lines[0] and str(port) in lines[0]
        assert "Traceback" not in r.stderr + r.stdout


def test_unknown_source_and_missing_file_are_one_line(capsys):
    assert cli_main(["pacs", "echo", "no-such-source"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: no-such-source: not a configured source") and err.count("\n") == 1
    assert cli_main(["pacs", "send", "http://127.0.0.1:1/dicom-web", "/no/such.dcm"]) == 2
    assert "no such file" in capsys.readouterr().err


@pytest.mark.parametrize("kind", ["web", "dimse"])
def test_echo_find_get_send(orthanc, kind, tmp_path, capsys):
    src = orthanc.dicomweb_url if kind == "web" else orthanc.dimse_url
    cache = ["--cache", str(tmp_path / "cache")]
    assert cli_main(["pacs", *cache, "echo", src]) == 0
    assert capsys.readouterr().out.strip().endswith(": OK")

    assert cli_main(["pacs", *cache, "find", src, "--patient-name", "ALBUS*", "--modality", "MR",
                     "--date", "20200101-20201231"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert len(lines) == 1
    uid, pid, date, mods, _desc = lines[0].split("\t")
    assert (uid, pid, date) == (_study_uid(), "PGBM-003", "20200121") and "MR" in mods.split("/")

    out = tmp_path / "got"
    assert cli_main(["pacs", *cache, "get", src, _study_uid(), "--out", str(out)]) == 0
    assert "62 file(s) in 2 series" in capsys.readouterr().out
    got = {str(pydicom.dcmread(f, stop_before_pixels=True).SOPInstanceUID) for f in out.rglob("*.dcm")}
    assert {str(pydicom.dcmread(f, stop_before_pixels=True).SOPInstanceUID) for f in T1.glob("*.dcm")} <= got

    # sending an instance the server already holds is accepted (same SOP instance: no duplicate)
    one = sorted(T1.glob("*.dcm"))[0]
    assert cli_main(["pacs", *cache, "send", src, str(one)]) == 0
    assert "stored 1 file(s)" in capsys.readouterr().out


def test_sources_lists_configured_without_credentials(capsys):
    from medview.pacs.source import SourceConfig, load_sources, save_sources, sources_file

    save_sources({"hospital": SourceConfig(name="hospital", kind="dicomweb", url="http://10.2.3.4/dicom-web",
                                           auth="basic", username="dr-who", password="tardis-42")})
    assert oct(sources_file().stat().st_mode & 0o777) == "0o600"
    assert cli_main(["pacs", "sources"]) == 0
    out = capsys.readouterr().out
    assert "hospital\tdicomweb" in out and "auth=basic" in out
    assert "tardis-42" not in out and "dr-who" not in out
    assert "HTTP without TLS to a non-local host" in out  # the warning is shown with the source
    assert load_sources()["hospital"].password == "tardis-42"  # kept in the settings file only
