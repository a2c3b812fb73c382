"""Shared fixtures for the reporting tests: the TCIA MR series (real files) and a label map on it."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from medview.config import data_dir

SERIES = data_dir() / "dicom" / "mr-brain-tcia" / "Study1" / "12-T1post-05670"
needs_series = pytest.mark.skipif(not SERIES.is_dir(), reason=f"TCIA series not found at {SERIES} (set MEDVIEW_DATA)")


def dciodvfy_or_skip():
    from medview.reporting.validate import dciodvfy, dciodvfy_path

    if dciodvfy_path() is None:
        pytest.skip("dciodvfy not installed (apt install dicom3tools)")
    return dciodvfy


@pytest.fixture(scope="session")
def tcia_volume():
    if not SERIES.is_dir():
        pytest.skip(f"TCIA series not found at {SERIES} (set MEDVIEW_DATA)")
    from medview.io import load_volume

    return load_volume(SERIES)


@pytest.fixture(scope="session")
def tcia_labels(tcia_volume):
    """Irregular real-image structures: bright tissue (holes, islands) and a dark region, on
    every slice of the TCIA series."""
    from scipy import ndimage

    from medview.annotation.labelmap import Label, LabelMap

    a = tcia_volume.array.astype(np.float64)
    smooth = ndimage.uniform_filter(a, size=(1, 9, 9))
    hi, lo = np.percentile(smooth, [92, 40])
    plane = np.zeros((1, 5, 5), bool)
    plane[0, 1:4, 1:4] = True  # in-plane opening: drops specks, keeps holes and islands of real size
    arr = np.zeros(a.shape, np.uint8)
    arr[ndimage.binary_opening(smooth > hi, plane)] = 1
    body = ndimage.binary_fill_holes(smooth > lo)
    arr[ndimage.binary_opening((smooth < lo * 1.5) & body, plane) & (arr == 0)] = 2
    lm = LabelMap.from_array(tcia_volume, arr, [Label(1, "bright tissue", (255, 80, 0)),
                                                Label(2, "dark region", (0, 120, 255))])
    return lm


def copy_series(dst: Path) -> Path:
    dst.mkdir(parents=True, exist_ok=True)
    for f in sorted(SERIES.glob("*.dcm")):
        (dst / f.name).write_bytes(f.read_bytes())
    return dst
