"""A graded model in the models panel: "KL 2.x: minimal"-style text, the value marked on the
scale, class bars beside it, the flag; the grade shown is the argmax class (real tiny model)."""

import numpy as np
import pytest

from medview.inference import networks, package
from medview.io.volume import Volume

pytestmark = pytest.mark.gui


@pytest.fixture
def graded_panel(qtbot, tmp_path, monkeypatch):
    import torch

    from medview.ui.models_panel import ModelsPanel
    from medview.ui.viewer_state import ViewerState

    m = {"id": "toy-kl", "name": "Toy KL grader", "version": "1.0.0", "task": "classification",
         "modality": ["OT", ""],
         "network": {"architecture": "resnet10", "args": {"spatial_dims": 2, "n_input_channels": 1,
                                                          "num_classes": 5, "widen_factor": 0.25}},
         "input": {"dims": 2, "channels": "grey", "size": [32, 32], "normalization": {"kind": "zscore"}},
         "output": {"classes": ["KL0", "KL1", "KL2", "KL3", "KL4"],
                    "grading": {"scale": "KL", "words": ["none", "doubtful", "minimal", "moderate", "severe"],
                                "flag": {"name": "OA present", "min_grade": 2, "threshold": 0.5}}},
         "gradcam_layer": "layer2"}
    torch.manual_seed(0)
    net = networks.build_network("resnet10", m["network"]["args"])
    package.write_package(tmp_path / "models" / "kl", m, net.state_dict(), "# toy\nresearch use only")
    monkeypatch.setenv("MEDVIEW_MODELS", str(tmp_path / "models"))
    p = ModelsPanel(ViewerState())
    qtbot.addWidget(p)
    p.show()
    return p


def test_graded_result_shows_grade_value_flag_and_bars(qtbot, graded_panel):
    panel = graded_panel
    arr = np.random.default_rng(3).integers(0, 255, size=(1, 48, 64)).astype(np.uint8)
    panel.state.set_volume(Volume(arr, meta={"Modality": "OT", "SeriesInstanceUID": "1.2.3"}))
    assert panel.select("toy-kl")
    with qtbot.waitSignal(panel.prediction_ready, timeout=60000) as blocker:
        assert panel.run_selected() is not None
    pred = blocker.args[0]
    g = pred.grading
    assert g["grade_name"] == pred.top_class  # never disagree
    text = panel.top_label.text()
    assert f"KL {g['value']:.1f}: {g['grade_word']}" in text and "OA present" in text
    assert [n for n, _ in panel.bars.values] == ["KL0", "KL1", "KL2", "KL3", "KL4"]
    assert panel.grade_scale.isVisible()
    # the marker sits where the value is on the 0..4 scale
    w = panel.grade_scale.width() - 24.0
    assert panel.grade_scale.marker_x() == pytest.approx(12.0 + w * g["value"] / 4)
    assert pred.to_json()["grading"]["flag"]["positive"] == (g["flag"]["probability"] >= 0.5)
