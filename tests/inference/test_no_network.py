"""A full open -> infer -> export session makes no network connection (every connect fails)."""

import json
import socket

import pytest

from medview.config import sample_study_dir


@pytest.fixture
def no_network(monkeypatch):
    attempts = []

    def refuse(*args, **kwargs):
        attempts.append(args)
        raise OSError("network access attempted during a MedView session")

    monkeypatch.setattr(socket.socket, "connect", refuse)
    monkeypatch.setattr(socket.socket, "connect_ex", refuse)
    monkeypatch.setattr(socket, "create_connection", refuse)
    monkeypatch.setattr(socket, "getaddrinfo", refuse)
    return attempts


@pytest.mark.slow
def test_open_infer_export_without_network(seg3d_package, tmp_path, monkeypatch, no_network):
    from medview.annotation.dicom_seg import export_dicom_seg
    from medview.annotation.labelmap import Label, LabelMap
    from medview.cli import main
    from medview.inference.package import discover_packages, find_package
    from medview.inference.pipeline import run_model
    from medview.io import load_series, scan

    study = sample_study_dir() / "study" / "HippoCrop"
    if not study.is_dir():
        pytest.skip(f"sample study missing at {study}")
    monkeypatch.setenv("MEDVIEW_MODELS", str(seg3d_package.path.parent))
    index = scan(study)  # open
    vol = load_series(index.series[0])
    pkg = find_package(seg3d_package.id, discover_packages())
    pred = run_model(pkg, vol, device="cpu", tta=True)  # infer
    lm = LabelMap.from_array(vol, pred.labels.array, [Label(1, "object", (255, 64, 64))])
    seg_path = export_dicom_seg(lm, tmp_path / "seg.dcm")  # export (DICOM SEG)
    assert seg_path.is_file()
    rc = main(["infer", "--model", pkg.id, str(study), "--out", str(tmp_path / "cli")])  # headless export
    assert rc == 0
    assert json.loads((tmp_path / "cli" / "prediction.json").read_text())["model"]["id"] == pkg.id
    assert no_network == []


def test_the_guard_itself_catches_a_connection(no_network):
    with pytest.raises(OSError, match="network access"):
        socket.create_connection(("127.0.0.1", 9))
    assert len(no_network) == 1
