"""Issue 8: a plain dermoscopy JPEG opened in the window gets the same prediction as `medview infer`."""

import json
import subprocess
import sys

import pytest

from medview.inference.package import discover_packages

pytestmark = pytest.mark.gui


def test_jpeg_in_the_app_and_headless_cli_agree(main_window, shared_data, qtbot, tmp_path):
    if not any(p.id == "skin-lesion" and p.status == "ok" for p in discover_packages()):
        pytest.skip("skin-lesion package is not bundled")
    photo = shared_data / "dermoscopy-ph2" / "images" / "IMD002.jpg"
    if not photo.is_file():
        pytest.skip(f"{photo} not found")
    from medview.ui.models_panel import install

    panel = install(main_window)
    with qtbot.waitSignal(main_window.volume_loaded, timeout=30000) as loaded:
        main_window.open_path(str(photo))
    assert loaded.args[0].is_rgb  # no silent conversion to grey on the way to the model
    assert panel.select("skin-lesion") and panel.is_enabled("skin-lesion")
    with qtbot.waitSignal(panel.prediction_ready, timeout=120000) as done:
        assert panel.run_selected() is not None
    gui = done.args[0].probabilities

    out = subprocess.run([sys.executable, "-m", "medview", "infer", "--model", "skin-lesion", str(photo),
                          "--out", str(tmp_path / "cli"), "--unverified-ok"],
                         capture_output=True, text=True, timeout=300, check=False)
    assert out.returncode == 0, out.stderr[-2000:]
    cli = json.loads(next((tmp_path / "cli").rglob("prediction.json")).read_text())["probabilities"]
    assert set(gui) == set(cli)
    assert max(gui, key=gui.get) == max(cli, key=cli.get)
    for name in gui:
        assert gui[name] == pytest.approx(cli[name], abs=1e-4), name
