"""Issue 12 item 5 in the app: an image that does not say what it shows preselects no model; a
model the user picks on it runs and its result says "input not verified for this model"."""

import json

import numpy as np
import pytest
from PySide6.QtCore import Qt

from medview.inference import networks, package
from medview.io.volume import Volume

pytestmark = pytest.mark.gui

CLS = {"id": "toy-us-cls", "name": "Toy US classifier", "version": "1.0.0", "task": "classification",
       "accepts": {"modality": ["US"], "channels": [1, 3]},
       "network": {"architecture": "resnet10", "args": {"spatial_dims": 2, "n_input_channels": 1,
                                                        "num_classes": 2, "widen_factor": 0.25}},
       "input": {"dims": 2, "channels": "grey", "size": [32, 32], "normalization": {"kind": "zscore"}},
       "output": {"classes": ["benign", "malignant"]}, "gradcam_layer": "layer2"}
SEG = {"id": "toy-us-seg", "name": "Toy US segmenter", "version": "1.0.0", "task": "segmentation",
       "accepts": {"modality": ["US"], "channels": [1]},
       "network": {"architecture": "UNet", "args": {"spatial_dims": 2, "in_channels": 1, "out_channels": 2,
                                                    "channels": [4, 8], "strides": [2]}},
       "input": {"dims": 2, "channels": "grey", "normalization": {"kind": "zscore"}},
       "output": {"labels": [{"value": 1, "name": "lesion", "color": [255, 0, 0]}]}}


@pytest.fixture
def panel(qtbot, tmp_path, monkeypatch):
    import torch

    from medview.ui.models_panel import ModelsPanel
    from medview.ui.viewer_state import ViewerState

    for m in (CLS, SEG):
        torch.manual_seed(0)
        net = networks.build_network(m["network"]["architecture"], m["network"]["args"])
        package.write_package(tmp_path / "models" / m["id"], m, net.state_dict(), "# toy\nresearch use only")
    monkeypatch.setenv("MEDVIEW_MODELS", str(tmp_path / "models"))
    p = ModelsPanel(ViewerState())
    qtbot.addWidget(p)
    p.show()
    return p


def _image(modality, uid):
    arr = np.random.default_rng(0).integers(0, 255, size=(1, 40, 48)).astype(np.uint8)
    return Volume(arr, meta={"Modality": modality, "SeriesInstanceUID": uid, "source_path": f"/data/{uid}.png"})


def test_an_image_without_modality_preselects_nothing_and_runs_only_when_chosen(qtbot, panel):
    panel.state.set_volume(_image("", "1.2.3"))  # what a PNG / NIfTI gives
    assert panel.selected_package() is None and not panel.run_button.isEnabled()
    assert panel.run_selected() is None
    assert "No model is verified for this series" in panel.info_label.text()
    for mid in ("toy-us-cls", "toy-us-seg"):
        item = panel.item_for(mid)
        assert panel.is_enabled(mid) and "input not verified for this model: unknown modality" in item.text()
    # the user picks one explicitly (a click on the item)
    rect = panel.list.visualItemRect(panel.item_for("toy-us-cls"))
    qtbot.mouseClick(panel.list.viewport(), Qt.MouseButton.LeftButton, pos=rect.center())
    assert panel.selected_package().id == "toy-us-cls" and panel.run_button.isEnabled()
    assert "input not verified for this model" in panel.info_label.text()
    with qtbot.waitSignal(panel.prediction_ready, timeout=60000) as done:
        panel.run_button.click()
    pred = done.args[0]
    assert pred.input_verified is False and pred.input_check["unknown"] == ["modality"]
    assert panel.verify_label.isVisible()
    assert panel.verify_label.text().startswith("input not verified for this model: unknown modality")
    assert "note: input not verified for this model" in panel.run_info.text()
    js = pred.to_json()
    assert js["input_verified"] is False and js["input"]["series_uid"] == "1.2.3"
    json.dumps(js)  # what prediction.json holds
    # another unverified series: the earlier explicit choice does not carry over
    panel.state.set_volume(_image("OT", "1.2.4"))
    assert panel.selected_package() is None


def test_a_verified_image_preselects_and_its_result_has_no_warning(qtbot, panel):
    panel.state.set_volume(_image("US", "1.2.5"))
    assert panel.selected_package() is not None and panel.selected_package().id == "toy-us-cls"
    with qtbot.waitSignal(panel.prediction_ready, timeout=60000) as done:
        panel.run_button.click()
    assert done.args[0].input_verified is True
    assert not panel.verify_label.isVisible() and panel.verify_label.text() == ""


def test_a_known_wrong_modality_is_greyed_with_the_reason(panel):
    panel.state.set_volume(_image("CT", "1.2.6"))
    assert panel.selected_package() is None
    for mid in ("toy-us-cls", "toy-us-seg"):
        assert not panel.is_enabled(mid) and not panel.select(mid)
        assert "made for US images, this series is CT" in panel.item_for(mid).text()
