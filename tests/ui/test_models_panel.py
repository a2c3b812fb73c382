"""The AI models panel, driven like a user (offscreen Qt, real worker threads, real tiny models)."""

import numpy as np
import pytest
from PySide6.QtWidgets import QApplication

from medview.inference import networks, package
from medview.io.volume import Volume

pytestmark = pytest.mark.gui


def _pkg(folder, manifest):
    import torch

    torch.manual_seed(0)
    net = networks.build_network(manifest["network"]["architecture"], manifest["network"]["args"])
    return package.write_package(folder, manifest, net.state_dict(), "# test model\nresearch use only")


@pytest.fixture
def models_dir(tmp_path, monkeypatch):
    d = tmp_path / "models"
    _pkg(d / "cls", {
        "id": "toy-cls", "name": "Toy classifier", "version": "1.0.0", "task": "classification",
        "modality": ["OT", ""],
        "network": {"architecture": "resnet10", "args": {"spatial_dims": 2, "n_input_channels": 1,
                                                         "num_classes": 3, "widen_factor": 0.25}},
        "input": {"dims": 2, "channels": "grey", "size": [32, 32], "normalization": {"kind": "zscore"}},
        "output": {"classes": ["benign", "malignant", "normal"]}, "gradcam_layer": "layer2"})
    _pkg(d / "seg", {
        "id": "toy-seg", "name": "Toy segmenter", "version": "2.0.0", "task": "segmentation",
        "modality": ["OT", ""],
        "network": {"architecture": "UNet", "args": {"spatial_dims": 2, "in_channels": 1, "out_channels": 3,
                                                     "channels": [4, 8], "strides": [2]}},
        "input": {"dims": 2, "channels": "grey", "normalization": {"kind": "zscore"}},
        "output": {"labels": [{"value": 1, "name": "lesion", "color": [255, 0, 0]},
                              {"value": 2, "name": "organ", "color": [0, 0, 255]}]}})
    _pkg(d / "ct3d", {
        "id": "toy-ct-3d", "name": "Toy CT 3D", "version": "1.0.0", "task": "segmentation", "modality": ["CT"],
        "network": {"architecture": "UNet", "args": {"spatial_dims": 3, "in_channels": 1, "out_channels": 2,
                                                     "channels": [4, 8], "strides": [2]}},
        "input": {"dims": 3, "channels": "grey", "normalization": {"kind": "ct_window", "center": 40, "width": 400}},
        "output": {"labels": [{"value": 1, "name": "x"}]}})
    (d / "broken").mkdir()
    (d / "broken" / "model.json").write_text("{")
    monkeypatch.setenv("MEDVIEW_MODELS", str(d))
    return d


@pytest.fixture
def panel(qtbot, models_dir):
    from medview.ui.models_panel import ModelsPanel
    from medview.ui.viewer_state import ViewerState

    state = ViewerState()
    p = ModelsPanel(state)
    qtbot.addWidget(p)
    p.show()
    return p


def _image(seed=0, n=1):
    arr = np.random.default_rng(seed).integers(0, 255, size=(n, 48, 64)).astype(np.uint8)
    return Volume(arr, spacing=(0.5, 0.25, 1.0), meta={"Modality": "OT", "SeriesInstanceUID": f"1.2.{seed}.{n}"})


def _run(qtbot, panel):
    with qtbot.waitSignal(panel.prediction_ready, timeout=60000) as blocker:
        assert panel.run_selected() is not None
    return blocker.args[0]


def test_list_greys_models_that_do_not_fit_with_the_reason(panel):
    panel.state.set_volume(_image())
    assert panel.is_enabled("toy-cls") and panel.is_enabled("toy-seg")
    assert not panel.is_enabled("toy-ct-3d")
    # OT ("other") says nothing about what the image shows; the known mismatch is 2D vs 3D
    assert "3D model; this series is a single 2D image" in panel.item_for("toy-ct-3d").text()
    broken = panel.item_for("broken")
    assert broken is not None and "not valid JSON" in broken.text()
    assert not panel.select("toy-ct-3d") and panel.select("toy-seg")


def test_classification_bars_top_class_and_gradcam_overlay(qtbot, panel):
    from medview.ui.models_panel import HEAT_LAYER

    panel.state.set_volume(_image(1))
    assert panel.select("toy-cls")
    panel.explain_combo.setCurrentText("Grad-CAM")
    panel.cam_class_combo.setCurrentText("malignant")
    stages = []
    panel.progress.valueChanged.connect(lambda _v: stages.append(panel.progress.format()))
    pred = _run(qtbot, panel)
    assert pred.cam_class == "malignant" and pred.heatmap_kind == "gradcam"
    assert [n for n, _ in panel.bars.values] == ["benign", "malignant", "normal"]
    assert abs(sum(v for _, v in panel.bars.values) - 1) < 1e-4
    assert pred.top_class in panel.top_label.text()
    assert any("inference" in s for s in stages) and any("explaining" in s for s in stages)
    layer = panel.state.layer(HEAT_LAYER)
    assert layer is not None and layer.volume.same_geometry(panel.state.volume)
    panel.opacity_slider.setValue(20)
    assert layer.opacity == pytest.approx(0.2)
    panel.heat_check.setChecked(False)
    assert layer.visible is False
    assert "device: cpu" in panel.run_info.text() and "time:" in panel.run_info.text()
    # the same series + model + options again: served from the cache
    pred2 = _run(qtbot, panel)
    assert pred2.from_cache and "cached" in panel.run_info.text()


def test_segmentation_layer_legend_and_uncertainty(qtbot, panel):
    from medview.ui.models_panel import HEAT_LAYER, LABEL_LAYER

    panel.state.set_volume(_image(2, n=3))
    assert panel.select("toy-seg")
    panel.tta_check.setChecked(True)
    pred = _run(qtbot, panel)
    layer = panel.state.layer(LABEL_LAYER)
    assert layer is not None and layer.volume is pred.labels
    assert layer.colors[1] == (255, 0, 0) and layer.names[2] == "organ"
    assert panel.legend.rowCount() == 2
    assert panel.legend.item(0, 1).text() == "lesion"
    ml = pred.label_info[0]["volume_ml"]
    assert panel.legend.item(0, 2).text() == f"{ml:.3f} mL"
    assert pred.label_info[0]["voxels"] == int((pred.labels.array == 1).sum())
    assert panel.state.layer(HEAT_LAYER).volume is pred.heatmap and pred.heatmap_kind == "uncertainty"


def test_single_2d_image_reports_area(qtbot, panel):
    panel.state.set_volume(_image(3, n=1))
    assert panel.select("toy-seg")
    pred = _run(qtbot, panel)
    assert panel.legend.item(0, 2).text() == f"{pred.label_info[0]['area_mm2']:.1f} mm²"
    # a photograph (no pixel size): the same image reports pixels, never a fake mm²
    photo = _image(3, n=1)
    photo.meta.update({"pixel_size_known": False, "SeriesInstanceUID": "photo"})
    panel.state.set_volume(photo)
    assert panel.select("toy-seg")
    pred = _run(qtbot, panel)
    n = int((pred.labels.array == 1).sum())
    assert "area_mm2" not in pred.label_info[0] and pred.label_info[0]["area_px"] == n
    assert panel.legend.item(0, 2).text() == f"{n} px"


def test_cancel_and_errors_are_one_clear_line(qtbot, panel):
    panel.state.set_volume(_image(4, n=300))
    assert panel.select("toy-cls")
    panel.explain_combo.setCurrentText("none")
    panel.worker_started = panel.run_selected()
    panel.worker.signals.progress.connect(lambda *_: panel.cancel())
    assert panel.wait_idle(60)
    assert panel.progress.format() == "cancelled" and panel.prediction is None
    assert panel.run_button.isEnabled()
    # an unavailable device: one line, the app keeps going
    panel.device_combo.addItem("cuda:7")
    panel.device_combo.setCurrentText("cuda:7")
    with qtbot.waitSignal(panel.run_failed, timeout=30000) as blocker:
        panel.run_selected()
    assert "cuda:7" in blocker.args[0] and "\n" not in blocker.args[0]
    assert panel.error_label.text() == blocker.args[0]


def test_new_series_clears_results_and_layers(qtbot, panel):
    from medview.ui.models_panel import LABEL_LAYER

    panel.state.set_volume(_image(5))
    panel.select("toy-seg")
    _run(qtbot, panel)
    assert panel.state.layer(LABEL_LAYER) is not None
    panel.state.set_volume(Volume(np.zeros((4, 20, 20), np.int16), meta={"Modality": "CT"}))
    QApplication.processEvents()
    assert panel.prediction is None and panel.state.layer(LABEL_LAYER) is None
    assert panel.is_enabled("toy-ct-3d") and not panel.is_enabled("toy-seg")


def test_device_choice_is_saved_and_read_by_the_core(qtbot, panel, models_dir):
    from medview.inference.device import configured_device
    from medview.ui.models_panel import ModelsPanel

    panel.device_combo.setCurrentText("cpu")
    assert configured_device() == "cpu"
    again = ModelsPanel(panel.state)
    qtbot.addWidget(again)
    assert again.device_combo.currentText() == "cpu"
    panel.device_combo.setCurrentText("auto")
    assert configured_device() is None


def test_installs_into_the_main_window(main_window, models_dir):
    from medview.ui.models_panel import ModelsPanel, install

    panel = install(main_window)
    assert isinstance(panel, ModelsPanel) and main_window.side_panel("AI models") is panel
    assert main_window.models_panel is panel


def test_gui_open_infer_export_makes_no_network_connection(qtbot, main_window, tmp_path, monkeypatch):
    """The app, not just the core: open the sample DICOM study in the window, run a model from the
    panel, export the result; every socket connect fails the test."""
    import socket

    from medview.annotation.dicom_seg import export_dicom_seg
    from medview.annotation.labelmap import Label, LabelMap
    from medview.config import sample_study_dir
    from medview.ui.models_panel import LABEL_LAYER, install

    study = sample_study_dir() / "study" / "HippoCrop"
    if not study.is_dir():
        pytest.skip(f"sample study missing at {study}")
    _pkg(tmp_path / "models" / "mr3d", {
        "id": "toy-mr-3d", "name": "Toy MR 3D", "version": "1.0.0", "task": "segmentation", "modality": ["MR"],
        "network": {"architecture": "UNet", "args": {"spatial_dims": 3, "in_channels": 1, "out_channels": 2,
                                                     "channels": [4, 8], "strides": [2]}},
        "input": {"dims": 3, "channels": "grey", "orientation": "RAS", "normalization": {"kind": "zscore"}},
        "output": {"labels": [{"value": 1, "name": "x"}]}})
    monkeypatch.setenv("MEDVIEW_MODELS", str(tmp_path / "models"))
    attempts = []

    def refuse(*args, **kwargs):
        attempts.append(args)
        raise OSError("network access attempted")

    for target, name in ((socket.socket, "connect"), (socket.socket, "connect_ex"), (socket, "create_connection"),
                         (socket, "getaddrinfo")):
        monkeypatch.setattr(target, name, refuse)
    panel = install(main_window)
    with qtbot.waitSignal(main_window.volume_loaded, timeout=30000):
        main_window.open_path(str(study))
    assert main_window.wait_idle(30)
    assert panel.select("toy-mr-3d")
    with qtbot.waitSignal(panel.prediction_ready, timeout=60000) as blocker:
        panel.run_selected()
    pred = blocker.args[0]
    assert main_window.state.layer(LABEL_LAYER).volume is pred.labels
    from medview.ui.annotation_panel import install as install_annotation

    ann = install_annotation(main_window)
    panel._show_prediction(pred)  # results shown again now that the annotation panel exists
    assert panel.edit_button.isEnabled()
    panel.edit_button.click()
    assert ann.session.active and ann.session.labelmap.provenance.source == "model"
    assert main_window.state.layer(LABEL_LAYER).visible is False
    ann.session.stop()
    lm = LabelMap.from_array(main_window.state.volume, pred.labels.array, [Label(1, "x", (255, 0, 0))])
    assert export_dicom_seg(lm, tmp_path / "seg.dcm").is_file()
    assert attempts == []
