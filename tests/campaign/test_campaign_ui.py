"""Campaign panels in the app (offscreen): Run on all with its progress panel, the ranked queue,
adjudication view, fine-tune job with cancel and version choice, the Campaign menu."""

import json
import shutil

import numpy as np
import pytest
from toys import write_box_images  # tests/inference, put on sys.path by conftest

pytestmark = pytest.mark.gui


@pytest.mark.slow
def test_run_on_all_then_ranked_queue(qtbot, seg2d_package, tmp_path, monkeypatch):
    from medview.ui.campaign_batch import BatchPanel
    from medview.ui.campaign_queue import RankedQueue

    monkeypatch.setenv("MEDVIEW_MODELS", str(seg2d_package.path.parent))
    write_box_images(tmp_path / "in", 3)
    panel = BatchPanel(source=str(tmp_path / "in"))
    qtbot.addWidget(panel)
    panel.set_model(seg2d_package.id)
    assert panel.model_combo.currentData() == seg2d_package.id and panel.out_edit.text()
    panel.out_edit.setText(str(tmp_path / "out"))
    panel.workers_spin.setValue(1)
    panel.unverified_check.setChecked(True)
    with qtbot.waitSignal(panel.start().signals.finished, timeout=180000):
        pass
    qtbot.waitUntil(lambda: panel.result is not None, timeout=5000)
    assert panel.table.rowCount() == 3 and panel.progress.value() == 1000
    assert "done 3, failed 0" in panel.counts_label.text() and panel.queue_button.isEnabled()
    wl = json.loads((tmp_path / "out" / "worklist.json").read_text())
    opened = []
    queue = RankedQueue(open_case=opened.append)
    qtbot.addWidget(queue)
    with qtbot.waitSignal(panel.worklist_ready):
        panel.queue_button.click()
    queue.load(panel.result["worklist"])
    paths = [c["path"] for c in wl["cases"]]
    assert opened == paths[:1] and not queue.prev_button.isEnabled() and queue.position.text() == "1 / 3"
    queue.next()
    queue.next()
    assert opened == paths and not queue.next_button.isEnabled()
    queue.previous()
    assert opened[-1] == paths[1] and queue.current["rank"] == 2


def test_adjudication_view_overlays_readers_and_saves_decisions(qtbot, tmp_path):
    from medview.annotation.labelmap import Label, LabelMap
    from medview.annotation.nifti import read_sidecar
    from medview.campaign import readers
    from medview.io.volume import Volume
    from medview.ui.campaign_adjudication import READER_COLOURS, AdjudicationView

    img = Volume(np.random.default_rng(0).normal(size=(1, 40, 40)).astype(np.float32), meta={"Modality": "US"})
    labels = [Label(1, "lesion", (255, 0, 0))]
    for name, (y0, x0) in (("alice", (5, 5)), ("bob", (8, 5))):
        arr = np.zeros((1, 40, 40), np.uint8)
        arr[0, y0:y0 + 10, x0:x0 + 10] = 1
        if name == "bob":
            arr[0, 30:34, 30:34] = 1  # a lesion only bob saw
        readers.save_reading(tmp_path, LabelMap.from_array(img, arr, labels), reader=name)
    view = AdjudicationView()
    qtbot.addWidget(view)
    view.set_case(tmp_path, img)
    # alice 100 px, bob 100 + 16 px, 70 shared: 140 / 216
    assert view.table.rowCount() == 2 and "Dice alice vs bob: lesion 0.648" in view.info_label.text()
    rgb = view.rgb_slice()
    for colour in READER_COLOURS[:2]:
        assert (rgb == colour).all(-1).any()  # both readers' outlines are drawn
    view.set_choice(2, "alice")  # alice did not see the small one: drop it
    view.set_choice(1, "intersection")
    view.make_preview()
    assert view.preview[0, 30:34, 30:34].sum() == 0 and view.preview[0, 8:15, 5:15].all()
    path = view.save()
    side = read_sidecar(path)
    choices = {r["region"]: r["choice"] for r in side["adjudication"]["regions"]}
    assert choices == {1: "intersection", 2: "alice"} and side["adjudication"]["readers"] == ["alice", "bob"]


def test_finetune_panel_cancel_and_version_choice(qtbot, tmp_path):
    from test_campaign_finetune import _blob_export

    from medview import config
    from medview.campaign import versions
    from medview.ui.campaign_finetune import FinetunePanel

    # a second version of hippocampus in the user's folder (same weights, its own id and lineage)
    src = config.bundled_models_dir() / "hippocampus"
    if not (src / "model.json").is_file():
        pytest.skip("hippocampus package not bundled")
    dst = config.user_data_dir() / "models" / "hippocampus-v1.1.0"
    shutil.copytree(src, dst)
    m = json.loads((dst / "model.json").read_text())
    m.update({"id": "hippocampus-v1.1.0", "version": "1.1.0",
              "lineage": {"family": "hippocampus", "held_out": {"new": 0.9, "parent": 0.8}}})
    (dst / "model.json").write_text(json.dumps(m))
    panel = FinetunePanel()
    qtbot.addWidget(panel)
    panel.family_combo.setCurrentIndex(panel.family_combo.findData("hippocampus"))
    texts = [panel.versions_list.item(i).text() for i in range(panel.versions_list.count())]
    assert texts[0].startswith("* hippocampus ") and "hippocampus-v1.1.0" in texts[1] and "0.9000" in texts[1]
    panel.versions_list.setCurrentRow(1)
    panel.activate_selected()
    assert versions.active_id("hippocampus") == "hippocampus-v1.1.0"
    assert panel.versions_list.item(1).text().startswith("*")
    panel.export_edit.setText(str(_blob_export(tmp_path / "export", n=3)))
    w = panel.start()
    w.cancel()  # before the first epoch: nothing is written
    qtbot.waitUntil(lambda: panel.start_button.isEnabled(), timeout=120000)
    assert panel.result_label.text() == "cancelled: nothing was written"
    assert not (config.user_data_dir() / "models" / "hippocampus-v1.2.0").exists()
    assert not list((config.user_data_dir() / "models").glob(".finetune-*"))


def test_campaign_menu_in_the_main_window(qtbot, tmp_path):
    from medview.ui.main_window import MainWindow

    win = MainWindow()
    win.quiet_errors = True
    qtbot.addWidget(win)
    menu = next(a.menu() for a in win.menuBar().actions() if a.text() == "&Campaign")
    names = [a.text() for a in menu.actions() if a.text()]
    assert names[0] == "Run on &all..." and "A&djudicate readers..." in names
    panel = win.campaign.batch()
    assert panel is win.campaign.batch()  # one dock, raised again
    assert win.campaign.save_reading(str(tmp_path)) is None  # no label map open: a status message
    assert "label map" in win.statusBar().currentMessage()
