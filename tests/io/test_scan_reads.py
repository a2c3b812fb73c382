"""The header scan's fast paths: one open per file, raw header values equal to pydicom's, the
preview slice before the other headers, compressed slices decoded from one read."""

import builtins
import importlib
from pathlib import Path

import numpy as np
import pytest

from medview.config import data_dir

scan_mod = importlib.import_module("medview.io.scan")
MR = data_dir() / "dicom" / "mr-brain-tcia" / "Study1" / "12-T1post-05670"
CONF = data_dir() / "dicom" / "conformance"
needs_mr = pytest.mark.skipif(not MR.is_dir(), reason=f"needs the TCIA MR series under {MR}")
needs_conf = pytest.mark.skipif(not CONF.is_dir(), reason=f"needs dicom2nifti's conformance data under {CONF}")


@needs_mr
def test_scan_opens_each_file_once(monkeypatch):
    opened: list[str] = []
    real_open = builtins.open

    def counting_open(file, *a, **k):
        opened.append(str(file))
        return real_open(file, *a, **k)

    monkeypatch.setattr(scan_mod, "open", counting_open, raising=False)
    index = scan_mod.scan(MR)
    files = sorted(str(p) for p in MR.iterdir() if p.is_file())
    assert index.series[0].n_images == len(files)
    assert sorted(opened) == files  # one open per file, none twice


def _normal(v):
    """pydicom's converted value and ours in one comparable form."""
    if v is None or v == "":
        return ""
    if isinstance(v, (list, tuple)) or type(v).__name__ == "MultiValue":
        return [_normal(x) for x in v]
    if isinstance(v, (int, float)) or type(v).__name__ in ("DSfloat", "IS", "DSdecimal"):
        return float(v)
    s = str(v).strip()
    try:
        return float(s)
    except ValueError:
        return s


@pytest.mark.parametrize("folder", ["mr", "generic/compressed_rle/001", "anatomical/001_implicit", "ge/anatomical"])
def test_raw_header_values_equal_pydicoms_conversion(folder):
    import pydicom

    root = MR if folder == "mr" else CONF / folder
    if not root.is_dir():
        pytest.skip(f"needs {root}")
    files = [p for p in sorted(root.rglob("*")) if p.is_file() and scan_mod.looks_like_dicom(p)][:6]
    assert files
    for p in files:
        ds = pydicom.dcmread(p, stop_before_pixels=True, force=True, specific_tags=scan_mod.HEADER_TAGS)
        ours = scan_mod.header_values(ds)
        ref = pydicom.dcmread(p, stop_before_pixels=True, force=True)
        for kw in scan_mod.HEADER_TAGS:
            if kw.endswith("Sequence") or kw not in ref:
                continue
            assert _normal(ours[kw]) == _normal(ref[kw].value), (p.name, kw, ours[kw], ref[kw].value)


@needs_mr
def test_preview_comes_before_the_other_headers(monkeypatch):
    import pydicom

    read: list[str] = []
    real = scan_mod.read_header
    monkeypatch.setattr(scan_mod, "read_header", lambda path, mod=None: read.append(path) or real(path, mod))
    shown = []
    index = scan_mod.scan(MR, on_preview=lambda img, spacing: shown.append((len(read), img, spacing)))
    assert len(shown) == 1 and shown[0][0] == 1  # only its own header had been read
    files = sorted(str(p) for p in MR.iterdir())
    middle = files[len(files) // 2]
    assert read[0] == middle and sorted(read) == files  # and it is not read again
    ds = pydicom.dcmread(middle)
    want = ds.pixel_array * float(getattr(ds, "RescaleSlope", 1)) + float(getattr(ds, "RescaleIntercept", 0))
    assert np.allclose(shown[0][1], want) and shown[0][2] == index.series[0].images[0].pixel_spacing


@needs_conf
@pytest.mark.parametrize("kind", ["compressed_rle", "compressed_j2k", "compressed_jpegls", "compressed_jpeg"])
def test_compressed_slices_decode_from_one_read_like_pydicom(kind, monkeypatch):
    import pydicom

    from medview.io import dicom_series
    from medview.io.loading import load_volume

    folder = CONF / "generic" / kind / "001"
    if not folder.is_dir():
        pytest.skip(f"needs {folder}")
    monkeypatch.setattr(dicom_series, "_decode_with_pydicom",
                        lambda ref: pytest.fail(f"{Path(ref.path).name} went through a second parse"))
    vol = load_volume(folder)
    files = sorted(p for p in folder.iterdir() if p.is_file())
    stacks = [pydicom.dcmread(p).pixel_array for p in files]
    # same slices (order aside: the volume is sorted along the normal)
    assert sorted(a.tobytes() for a in stacks) == sorted(vol.array[k].astype(stacks[0].dtype).tobytes()
                                                       for k in range(vol.shape[0]))
