"""Self-test of reading: the bundled sample study through medview.io, and the DICOM codecs a
frozen app loses first when a plugin is not bundled."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from medview.selftest.report import FAIL, PASS


def check_sample(folder: Path, state: dict) -> tuple[str, str]:
    from medview.io import load_series, scan

    if not folder.is_dir():
        return FAIL, f"sample study folder {folder} is missing"
    index = scan(str(folder))
    if not index.series:
        return FAIL, f"no series found in {folder} ({len(index.problems)} problem file(s))"
    vols = []
    parts = []
    for s in index.series:
        v = load_series(s)
        if v.array.size == 0 or not np.isfinite(np.asarray(v.array, dtype=np.float64).max()):
            return FAIL, f"series {s.description!r} loaded empty or not finite"
        vols.append(v)
        z, y, x = v.shape
        parts.append(f"{s.description or s.uid[-8:]} {v.modality} {x}x{y}x{z}")
    state["sample_volumes"] = vols
    problems = f"; {len(index.problems)} unreadable file(s)" if index.problems else ""
    return (FAIL if index.problems else PASS), f"{len(vols)} series: " + ", ".join(parts) + problems


def check_codecs(state: dict) -> tuple[str, str]:
    import pydicom
    from pydicom.uid import JPEG2000Lossless, JPEGLSLossless, RLELossless

    vols = state.get("sample_volumes") or []
    files = [f for v in vols for f in (v.meta.get("source_files") or [])]
    if not files:
        return FAIL, "no sample DICOM file to encode"
    ds0 = pydicom.dcmread(str(files[0]))
    ref = ds0.pixel_array.copy()
    ok = []
    for uid in (RLELossless, JPEG2000Lossless, JPEGLSLossless):
        ds = pydicom.dcmread(str(files[0]))
        ds.compress(uid)
        ds2 = pydicom.dcmread(pydicom.filebase.DicomBytesIO(_to_bytes(ds)))
        if not np.array_equal(ds2.pixel_array, ref):
            return FAIL, f"{uid.name}: decoded pixels differ from the original"
        ok.append(uid.name.split(" Image")[0].replace(" Lossless", "").replace(" Compression", ""))
    return PASS, "encode + decode lossless: " + ", ".join(ok)


def _to_bytes(ds) -> bytes:
    from io import BytesIO

    buf = BytesIO()
    ds.save_as(buf, enforce_file_format=True)
    return buf.getvalue()
