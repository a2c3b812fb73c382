"""Measurement records: the viewer's math, persistence in the workspace folder, CSV."""

from __future__ import annotations

import csv

import numpy as np
import pytest

from medview.io.volume import Volume
from medview.reporting.measurements import (
    load_measurements,
    make_record,
    measurements_file,
    save_measurements,
    write_csv,
)


def _volume() -> Volume:
    arr = np.zeros((5, 40, 60), np.int16)
    arr[2, 10:20, 10:30] = 100  # a 10 x 20 bright block on slice 2
    return Volume(arr, spacing=(0.5, 0.8, 3.0), meta={"SeriesInstanceUID": "1.2.3", "Modality": "CT"})


def test_values_match_the_viewer_math():
    vol = _volume()
    ruler = make_record(vol, "ruler", (0, 0, 2), (30, 40, 2))
    assert ruler.values["length_mm"] == pytest.approx(np.hypot(30 * 0.5, 40 * 0.8))
    roi = make_record(vol, "rect", (10, 10, 2), (29, 19, 2))  # voxel centres 10..29 x 10..19
    assert roi.values["n"] == 200 and roi.values["mean"] == 100 and roi.values["sd"] == 0
    assert roi.values["area_mm2"] == pytest.approx(200 * 0.5 * 0.8)
    coronal = make_record(vol, "rect", (10, 15, 0), (29, 15, 4), normal_axis=1)
    assert coronal.values["n"] == 100  # 20 columns x 5 slices, bright only on slice 2
    assert coronal.values["area_mm2"] == pytest.approx(100 * 0.5 * 3.0)


def test_match_the_viewer_state_result():
    pytest.importorskip("PySide6")
    from medview.ui.viewer_state import Measurement, ViewerState

    vol = _volume()
    state = ViewerState()
    state.set_volume(vol)
    for kind, p0, p1 in (("ellipse", (8.3, 9.1, 2), (31.2, 21.7, 2)), ("rect", (5, 5, 2), (25, 12, 2))):
        ui = state.measurement_result(Measurement(kind, "axial", 2, p0, p1))
        core = make_record(vol, kind, p0, p1).values
        assert core["n"] == ui["n"] and core["mean"] == pytest.approx(ui["mean"])
        assert core["area_mm2"] == pytest.approx(ui["area_mm2"])


def test_persist_in_workspace_and_csv(tmp_path):
    vol = _volume()
    recs = [make_record(vol, "ruler", (0, 0, 2), (30, 40, 2), name="a"), make_record(vol, "ellipse", (5, 5, 2),
                                                                                         (25, 15, 2))]
    path = measurements_file(vol.meta, base=tmp_path)
    assert path.parent.name == "1.2.3"  # the series' workspace folder
    save_measurements(recs, path, vol.meta)
    back = load_measurements(path.parent)
    assert [r.to_dict() for r in back] == [r.to_dict() for r in recs]
    out = write_csv(back, tmp_path / "m.csv", vol)
    rows = list(csv.DictReader(out.open()))
    assert [r["kind"] for r in rows] == ["ruler", "ellipse"]
    assert float(rows[0]["length_mm"]) == pytest.approx(recs[0].values["length_mm"], rel=1e-5)
    assert rows[0]["p1_lps_mm"] == "15.000 32.000 6.000"
    assert rows[1]["series_uid"] == "1.2.3" and float(rows[1]["mean"]) == pytest.approx(recs[1].values["mean"])
