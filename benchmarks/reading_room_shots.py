"""Screenshots of the reading-room views and the fixed defects, from the real window.

    xvfb-run -a -s "-screen 0 1600x1000x24" .venv/bin/python benchmarks/reading_room_shots.py --out out/reading_room

Needs $MEDVIEW_DATA (the TCIA MR brain study). Each PNG is the whole screen (``import -window
root``, ImageMagick) so docks, menus and status bar show as a user sees them.
"""

from __future__ import annotations

import argparse
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--out", default="out/reading_room")
    args = ap.parse_args()
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)

    from PySide6.QtWidgets import QApplication

    from medview.config import data_dir
    from medview.ui.app import _install_panels
    from medview.ui.main_window import MainWindow
    from medview.ui.viewer_state import HeatmapLayer, LabelLayer, Measurement

    app = QApplication.instance() or QApplication([])
    study = data_dir() / "dicom" / "mr-brain-tcia" / "Study1"
    t1 = study / "12-T1post-05670"

    def pump(s=0.4):
        end = time.monotonic() + s
        while time.monotonic() < end:
            app.processEvents()
            time.sleep(0.01)

    def shot(name):
        pump(0.6)
        subprocess.run(["import", "-window", "root", str(out / f"{name}.png")], check=True)
        print("wrote", out / f"{name}.png")

    win = MainWindow()
    win.quiet_errors = True
    _install_panels(win)
    win.resize(1600, 1000)
    win.move(0, 0)
    win.show()
    pump(1.0)

    # 1. three planes, smooth display on: 6.5 mm slices no longer bricks in coronal/sagittal
    win.open_path(str(t1))
    win.wait_idle(60)
    pump(1.0)
    st = win.state
    vol = st.volume
    st.set_cursor((256, 250, 11))
    shot("01_three_planes_smooth")
    st.set_smooth(False)
    shot("02_three_planes_nearest_bricks")
    st.set_smooth(True)

    # 2. measurements: ROI, a ruler started inside it, labels kept apart
    k = st.cursor[2]
    st.add_measurement(Measurement("ellipse", "axial", k, (150.0, 150.0, k), (330.0, 330.0, k)))
    st.add_measurement(Measurement("ruler", "axial", k, (200.0, 240.0, k), (300.0, 240.0, k)))
    st.add_measurement(Measurement("ruler", "axial", k, (200.0, 250.0, k), (300.0, 252.0, k)))
    shot("03_measurements_roi_and_rulers")
    st.clear_measurements()

    # 3. oblique view tilted 30 degrees with a 10 mm MIP slab and a label overlay
    lab = np.zeros(vol.shape, np.uint8)
    lab[8:14, 200:280, 180:300] = 1
    st.add_layer(LabelLayer("demo label", vol.like(lab), colors={1: (255, 60, 60)}, names={1: "demo"}, opacity=0.4))
    st.set_layout("2x2")
    pump(0.5)
    ob = win.viewer.oblique
    ob.set_rotation(ob.tilted(np.eye(3), np.radians(30), np.radians(15)))
    ob.slab_box.setValue(10.0)
    shot("04_2x2_oblique_slab_label")
    # the rotate tool: a drag in the axial view turns the oblique (coronal-based) plane about S-I;
    # the dashed green line in the 2D views is where the oblique plane cuts them
    ob.set_base("coronal")
    ob.slab_box.setValue(0.0)
    win.tool_actions["rotate"].trigger()
    st.rotate_oblique.emit("axial", float(np.radians(35)), False)
    shot("04b_rotate_tool_oblique_cut_lines")
    win.tool_actions["navigate"].trigger()
    # MPR on the patient axes: this T1 is acquired 15 degrees about L-R, so these differ from
    # the acquisition-plane 2D views; a ruler drawn in the axial view shows in patient axial
    # only where its plane holds it
    ob.set_rotation(np.eye(3))
    st.set_layout("mpr")
    shot("04c_mpr_patient_axes")

    # 4. heatmap with colour bar and threshold
    heat = np.zeros(vol.shape, np.float32)
    zz, yy, xx = np.mgrid[0:vol.shape[0], 0:vol.shape[1], 0:vol.shape[2]]
    heat[:] = np.exp(-(((yy - 240) / 60.0) ** 2 + ((xx - 260) / 60.0) ** 2 + ((zz - 11) / 4.0) ** 2))
    st.remove_layer("demo label")
    st.add_layer(HeatmapLayer("probability", vol.like(heat), threshold=0.3, opacity=0.5))
    st.set_layout("1x3")
    shot("05_heatmap_colour_bar")
    st.remove_layer("probability")

    # 5. narrow views: corner text stops before the orientation letters
    win.resize(1100, 700)
    pump(0.5)
    st.set_window(12345.678, -2345.6)
    shot("06_narrow_corner_text")
    st.reset_window()
    win.resize(1600, 1000)

    # 6. prior comparison (a copy of the T1post as a 2019 study of the same patient)
    import pydicom
    from pydicom.uid import generate_uid

    tmp = Path(tempfile.mkdtemp())
    for name in ("12-T1post-05670", "37916-T2reg-88910"):
        shutil.copytree(study / name, tmp / "current" / name)
    prior = tmp / "prior" / "T1post"
    prior.mkdir(parents=True)
    su, se = generate_uid(), generate_uid()
    for f in sorted(t1.iterdir()):
        ds = pydicom.dcmread(f)
        ds.StudyInstanceUID, ds.SeriesInstanceUID = su, se
        ds.SOPInstanceUID = generate_uid()
        ds.file_meta.MediaStorageSOPInstanceUID = ds.SOPInstanceUID
        ds.StudyDate = "20190101"
        ds.save_as(prior / f.name)
    win.open_path(str(tmp))
    win.wait_idle(60)
    pump(3.0)
    shot("07_prior_comparison_hanging_protocol")
    win.compare.close_comparison()

    # 7. 3D view with the label surface
    st.add_layer(LabelLayer("demo label", st.volume.like(lab), colors={1: (255, 60, 60)}))
    win.show_3d(True)
    pump(2.0)
    shot("08_3d_view")
    win.show_3d(False)

    # 8. a folder of plain images: one folder node, file names
    from PIL import Image

    photos = tmp / "photos"
    photos.mkdir()
    for n in range(8):
        Image.fromarray((np.random.default_rng(n).random((64, 96)) * 255).astype(np.uint8)).save(
            photos / f"photo_{n:02d}.png")
    win.open_path(str(photos))
    win.wait_idle(60)
    pump(1.0)
    shot("09_folder_of_images_browser")
    # then a 3D series: the layout comes back to 1x3
    win.open_path(str(t1))
    win.wait_idle(60)
    pump(1.0)
    shot("10_layout_back_after_2d")
    shutil.rmtree(tmp, ignore_errors=True)
    win.close()


if __name__ == "__main__":
    main()
