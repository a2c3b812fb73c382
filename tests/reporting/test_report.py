"""One-page report (PDF read back with pypdf, HTML) from `medview infer` folders and a saved session."""

from __future__ import annotations

import re

import numpy as np
import pytest

from .conftest import needs_series

SHA = "5d2baaf30b285e42397e6a7b26c45de30ac7d13130b5fb6eadce84820738e33d"


def _pdf_text(path) -> tuple[int, str]:
    from pypdf import PdfReader

    r = PdfReader(str(path))
    return len(r.pages), "\n".join(p.extract_text() for p in r.pages)


@pytest.fixture()
def infer_dirs(tmp_path, tcia_volume, tcia_labels):
    """Folders as `medview infer` writes them (its own write_outputs), for a segmentation and a
    classification result on the TCIA series."""
    from medview.inference.acceptance import input_identity
    from medview.inference.commands import write_outputs
    from medview.inference.prediction import Prediction, label_statistics

    ident = input_identity(tcia_volume)
    labels = tcia_volume.like(tcia_labels.array.copy())
    defs = [{"value": 1, "name": "bright tissue", "color": [255, 80, 0]}, {"value": 2, "name": "dark region",
                                                                          "color": [0, 120, 255]}]
    seg = Prediction("tissue-seg", "Tissue segmenter", "1.2.0", "ab" * 32, "segmentation", "cpu",
                     labels=labels, label_info=label_statistics(labels, defs), input=ident)
    write_outputs(seg, tmp_path / "seg", tcia_volume)
    cls = Prediction("tumour-cls", "Tumour classifier", "2.1.0", SHA, "classification", "cpu",
                     classes=["tumour", "normal"], probabilities={"tumour": 0.83, "normal": 0.17}, input=ident)
    write_outputs(cls, tmp_path / "cls", tcia_volume)
    return tmp_path / "seg", tmp_path / "cls"


@needs_series
def test_report_pdf_of_infer_folders(infer_dirs, tmp_path, tcia_labels):
    from medview.cli import main

    seg_dir, cls_dir = infer_dirs
    assert main(["report", str(cls_dir), "--out", str(tmp_path / "cls.pdf")]) == 0
    pages, text = _pdf_text(tmp_path / "cls.pdf")
    assert pages == 1
    for expected in ("Chrisjen Avasarala", "PGBM-002", "2020-01-19", "tumour 0.830", "normal 0.170", SHA,
                     "2.1.0", "RESEARCH USE ONLY, NOT FOR DIAGNOSIS", "axial slice"):
        assert expected in text, expected

    assert main(["report", str(seg_dir), "--out", str(tmp_path / "seg.pdf")]) == 0
    pages, text = _pdf_text(tmp_path / "seg.pdf")
    ml = {v: n * tcia_labels.volume.voxel_volume_mm3 / 1000 for v, n in tcia_labels.counts().items()}
    assert pages == 1
    assert f"bright tissue {ml[1]:.2f} mL" in text and f"dark region {ml[2]:.2f} mL" in text
    assert "Tissue segmenter" in text and "ab" * 32 in text
    k = int(np.argmax((tcia_labels.array > 0).sum(axis=(1, 2))))
    assert re.search(rf"axial slice {k + 1}/22", text)  # the key image is the most labelled slice


@needs_series
def test_report_html_and_saved_session_with_measurements(tmp_path, tcia_volume, tcia_labels):
    from PIL import Image

    from medview.annotation.workspace import Workspace
    from medview.cli import main
    from medview.reporting.measurements import make_record, save_measurements

    ws = Workspace.create(tmp_path / "session", tcia_labels)
    assert ws.close()
    ruler = make_record(tcia_volume, "ruler", (10, 20, 5), (100, 120, 5), name="diameter")
    save_measurements([ruler], tmp_path / "session" / "measurements.json", tcia_volume.meta)
    Image.new("RGB", (200, 100), (40, 40, 40)).save(tmp_path / "screen 1.png")
    assert main(["report", str(tmp_path / "session"), "--out", str(tmp_path / "r.pdf"),
                 "--key-image", str(tmp_path / "screen 1.png")]) == 0
    pages, text = _pdf_text(tmp_path / "r.pdf")
    assert pages == 1 and "screen 1" in text and f"length {ruler.values['length_mm']:.1f} mm" in text
    assert "bright tissue" in text and "Chrisjen Avasarala" in text
    assert main(["report", str(tmp_path / "session"), "--out", str(tmp_path / "r.html")]) == 0
    html = (tmp_path / "r.html").read_text()
    assert "Research use only, not for diagnosis." in html and html.count("data:image/png;base64,") >= 1
    assert "diameter" in html and "Chrisjen Avasarala" in html


@needs_series
def test_export_sr_and_rtstruct_commands(infer_dirs, tmp_path, capsys):
    from medview.cli import main
    from medview.reporting.audit import read_log

    from .conftest import SERIES

    seg_dir, cls_dir = infer_dirs
    assert main(["export-sr", str(seg_dir), "--reference", str(SERIES), "--out", str(tmp_path / "sr.dcm"),
                 "--prediction", str(cls_dir / "prediction.json")]) == 0
    out = capsys.readouterr().out
    assert "2 volume, 1 AI finding(s)" in out and (tmp_path / "sr_seg.dcm").is_file()
    assert main(["import-sr", str(tmp_path / "sr.dcm"), "--reference", str(SERIES),
                 "--out", str(tmp_path / "m.csv")]) == 0
    assert "tumour-cls 2.1.0: tumour" in capsys.readouterr().out
    assert main(["export-rtstruct", str(seg_dir / "segmentation.nii.gz"), "--reference", str(SERIES),
                 "--out", str(tmp_path / "rt.dcm")]) == 0
    assert main(["import-rtstruct", str(tmp_path / "rt.dcm"), "--reference", str(SERIES),
                 "--out", str(tmp_path / "back.nii.gz")]) == 0
    assert [e["detail"]["format"] for e in read_log()] == ["DICOM SEG", "DICOM SR", "RTSTRUCT"]


@needs_series
def test_refused_export_sr_leaves_no_seg_behind(infer_dirs, tmp_path, capsys):
    """A finding made on another series refuses the SR; the SEG made for it is not left behind."""
    import json

    from medview.cli import main

    from .conftest import SERIES

    seg_dir, cls_dir = infer_dirs
    pred = json.loads((cls_dir / "prediction.json").read_text())
    pred["input"] = {**(pred.get("input") or {}), "series_uid": "1.2.3.999", "path": "/elsewhere"}
    other = tmp_path / "other.json"
    other.write_text(json.dumps(pred))
    assert main(["export-sr", str(seg_dir), "--reference", str(SERIES), "--out", str(tmp_path / "sr.dcm"),
                 "--prediction", str(other)]) != 0
    assert "1.2.3.999" in capsys.readouterr().err
    assert not (tmp_path / "sr_seg.dcm").exists() and not (tmp_path / "sr.dcm").exists()
