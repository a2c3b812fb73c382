"""Screenshots of the reading-room views and the fixed defects, from the real window.

    xvfb-run -a -s "-screen 0 1600x1000x24" .venv/bin/python benchmarks/reading_room_shots.py --out out/reading_room

    xvfb-run -a -s "-screen 0 1600x1000x24" .venv/bin/python benchmarks/reading_room_shots.py --defects --out DIR

Needs $MEDVIEW_DATA (the TCIA MR brain study). Each PNG is the whole screen (``import -window
root``, ImageMagick) so docks, menus and status bar show as a user sees them. ``--defects`` walks
through the defects of issue 14 item 5 one by one with real mouse events in the real window and
prints, beside each screenshot, what the window shows (status bar, browser rows, layout, window).
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
    ap.add_argument("--defects", action="store_true", help="the item-5 defect walk-through instead")
    args = ap.parse_args()
    if args.defects:
        defects(Path(args.out))
        return
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


def defects(out: Path) -> None:  # noqa: C901 - one walk-through, step by step
    """Issue 14 item 5, defect by defect, as a user would meet them. Runs with its own user
    folder and settings (the label map, measurements and recent files it makes stay out of the
    user's)."""
    import os

    out.mkdir(parents=True, exist_ok=True)
    home = Path(tempfile.mkdtemp(prefix="medview-shots-"))
    os.environ["MEDVIEW_HOME"] = str(home / "medview-home")
    os.environ["XDG_CONFIG_HOME"] = str(home / "config")  # QSettings (recent files, last folder)
    from PIL import Image
    from PySide6.QtCore import QPoint
    from PySide6.QtWidgets import QApplication, QScrollArea

    from medview.config import data_dir
    from medview.ui.app import _install_panels
    from medview.ui.main_window import MainWindow
    from medview.ui.viewer_state import Measurement
    from tests.ui.conftest import _send, drag, voxel_to_widget

    app = QApplication.instance() or QApplication([])
    study = data_dir() / "dicom" / "mr-brain-tcia" / "Study1"
    t1, crop = study / "34909-T1prereg-84610", study / "13_HCropVolume"
    tmp = Path(tempfile.mkdtemp())

    def pump(s=0.4):
        end = time.monotonic() + s
        while time.monotonic() < end:
            app.processEvents()
            time.sleep(0.01)

    def shot(name, widget=None):
        pump(0.6)
        path = out / f"{name}.png"
        subprocess.run(["import", "-window", "root", str(path)], check=True)
        if widget is not None:  # also the part of the screen that widget covers, at full size
            g = widget.mapToGlobal(QPoint(0, 0))
            Image.open(path).crop((g.x(), g.y(), g.x() + widget.width(), g.y() + widget.height())).save(
                out / f"{name}_crop.png")
        print("  wrote", path)

    def say(*a, sep=" "):
        print(*a, sep=sep, flush=True)

    def open_(path):
        win.open_path(str(path))
        pump(0.3)
        win.wait_idle(60)
        pump(0.8)

    def browser_rows():
        b, rows = win.browser, []
        for i in range(b.topLevelItemCount()):
            top = b.topLevelItem(i)
            rows.append(top.text(0).replace("\n", " | "))
            rows += ["    " + top.child(j).text(0).replace("\n", " | ") for j in range(top.childCount())]
        return rows

    win = MainWindow()
    win.quiet_errors = True
    _install_panels(win)
    win.resize(1600, 1000)
    win.move(0, 0)
    win.show()
    pump(1.5)
    st = win.state

    say("1. crosshair trails in coronal/sagittal after a navigate drag in axial")
    open_(t1)
    ax = win.viewer.view("axial")
    k = st.cursor[2]
    for n in range(3):
        drag(ax, voxel_to_widget(ax, (100 + 80 * n, 120 + 60 * n, k)),
             voxel_to_widget(ax, (400 - 40 * n, 380 - 50 * n, k)), steps=20)
        pump(0.2)
    shot("d01_after_three_navigate_drags", win.viewer)

    say("2. layout after a 2D image, then a 3D series")
    png = tmp / "photo.png"
    a = (np.random.default_rng(1).random((300, 400)) * 255).astype(np.uint8)
    Image.fromarray(a).save(png)
    open_(png)
    say("  after the PNG: layout", st.layout)
    shot("d02a_2d_image_layout")
    open_(t1)
    say("  after the T1 series: layout", st.layout, "visible views",
        [n for n in ("axial", "coronal", "sagittal") if win.viewer.view(n).isVisible()])
    shot("d02b_3d_series_after_2d")

    say("3. status-bar readouts after opening another series")
    vp = ax.viewport()
    pos = voxel_to_widget(ax, (256, 256, st.cursor[2]))
    from PySide6.QtCore import Qt

    _send(vp, __import__("PySide6.QtCore", fromlist=["QEvent"]).QEvent.Type.MouseMove, pos,
          Qt.MouseButton.NoButton, Qt.MouseButton.NoButton)
    pump(0.3)
    say("  hovering the T1:", repr(win.value_label.text()), repr(win.voxel_label.text()), repr(win.world_label.text()))
    shot("d03a_hover_readouts")
    open_(study / "37916-T2reg-88910")
    say("  after opening the T2 (mouse not moved):", repr(win.value_label.text()), repr(win.voxel_label.text()),
        repr(win.world_label.text()))
    shot("d03b_readouts_after_other_series")

    say("4. study browser selects / scrolls to the opened series, whole names")
    open_(study)  # five series: the largest opens
    b = win.browser

    def current():
        it = b.currentItem()
        return (repr(it.text(0) if it else None), "selected", bool(it and it.isSelected()),
                "on screen", bool(it and b.visualItemRect(it).intersects(b.viewport().rect())))

    say("  opened the study folder; open series", repr(win.current_series.description), "| browser row:",
        *current())
    say("  rows:", *browser_rows(), sep="\n    ")
    shot("d04a_browser_study_folder", b)
    other = next(s for s in win.index.series if "FLAIR" in (s.description or "")) \
        if win.index is not None else None
    if other is not None:
        win.open_series(other)
        pump(0.3)
        win.wait_idle(60)
        pump(0.8)
        say("  opened", repr(other.description), "from the menu/API | browser row:", *current())
        shot("d04b_browser_follows_open_series", b)

    say("5. a folder of images")
    photos = tmp / "photos"
    photos.mkdir()
    for n in range(40):
        Image.fromarray((np.random.default_rng(n).random((64, 96)) * 255).astype(np.uint8)).save(
            photos / f"photo_{n:02d}.png")
    open_(photos)
    rows = browser_rows()
    say(f"  {win.browser.topLevelItemCount()} top-level node(s); first rows:", *rows[:4], sep="\n    ")
    shot("d05_folder_of_images", win.browser)

    say("6. measurements per series, CSV export")
    open_(t1)
    k = st.cursor[2]
    st.add_measurement(Measurement("ruler", "axial", k, (150.0, 200.0, k), (350.0, 200.0, k)))
    open_(study / "37916-T2reg-88910")
    k2 = st.cursor[2]
    st.add_measurement(Measurement("ellipse", "axial", k2, (180.0, 180.0, k2), (300.0, 300.0, k2)))
    say("  on the T2:", [m.kind for m in st.measurements])
    open_(t1)
    say("  back on the T1:", [m.kind for m in st.measurements])
    shot("d06_t1_ruler_back")
    n = win.export_measurements(tmp / "m.csv")
    say(f"  CSV: {n} row(s):", *(tmp / "m.csv").read_text().splitlines(), sep="\n    ")
    st.clear_measurements()

    say("7. measurement labels apart; W/L text vs orientation letters")
    k = st.cursor[2]
    for dy in (0.0, 3.0, 6.0):
        st.add_measurement(Measurement("ruler", "axial", k, (150.0, 250.0 + dy, k), (330.0, 250.0 + dy, k)))
    pump(0.3)
    shot("d07a_three_rulers_side_by_side", ax)
    st.clear_measurements()
    win.resize(1100, 700)
    pump(0.6)
    st.set_window(12345.678, -2345.6)
    shot("d07b_narrow_wl_vs_letters", win.viewer)
    st.reset_window()
    win.resize(1600, 1000)
    pump(0.6)

    say("8. stored window W950/C470 on data 2..154")
    open_(crop)
    arr = st.volume.array
    say(f"  data {arr.min()}..{arr.max()}, window shown W{st.window[0]:.0f}/C{st.window[1]:.0f}, "
        f"source {st.window_source!r}")
    shot("d08_hippo_crop_window", win.viewer)

    say("9. top class name in the probability bars")
    panel = win.side_panel("AI models") or getattr(win, "models_panel", None)
    img = sorted((data_dir() / "dermoscopy-ph2" / "images").iterdir())[0]
    open_(img)
    if panel is not None and hasattr(panel, "select"):
        idx = next(i for i in range(win.side_tabs.count()) if "model" in win.side_tabs.tabText(i).lower())
        win.side_tabs.setCurrentIndex(idx)
        panel = getattr(panel, "widget", lambda: panel)() if isinstance(panel, QScrollArea) else panel
        if panel.select("skin-lesion"):
            w = panel.run_selected()
            end = time.monotonic() + 120
            while w is not None and time.monotonic() < end and not panel.bars.values:
                pump(0.2)
            pump(0.5)
            say("  bars:", panel.bars.values, "bar widget width", panel.bars.width())
            shot("d09_probability_bars", panel.bars)
        else:
            say("  skin-lesion package not selectable:", panel.item_for("skin-lesion"))
    else:
        say("  no models panel installed")

    say("10. annotation messages in the status bar")
    open_(t1)
    ann = win.side_panel("Annotation")
    ann = ann.widget() if isinstance(ann, QScrollArea) else ann
    if ann is not None and hasattr(ann, "new_labelmap"):
        ann.new_labelmap()
        pump(0.3)
        say("  after 'new label map': panel says", repr(ann.status.text()), "| status bar",
            repr(win.statusBar().currentMessage()))
        shot("d10_annotation_message_status_bar")
    else:
        say("  no annotation panel installed")

    say("11. ruler started inside an ROI")
    st.clear_measurements()
    ax = win.viewer.view("axial")
    k = ax.slice_index
    st.add_measurement(Measurement("rect", "axial", k, (120.0, 120.0, k), (400.0, 400.0, k)))
    win.tool_actions["ruler"].trigger() if "ruler" in win.tool_actions else st.set_tool("ruler")
    pump(0.2)
    drag(ax, voxel_to_widget(ax, (200, 250, k)), voxel_to_widget(ax, (330, 280, k)), steps=12)
    pump(0.3)
    say("  measurements:", [(m.kind, tuple(round(x) for x in m.p0[:2]), tuple(round(x) for x in m.p1[:2]))
                            for m in st.measurements])
    shot("d11_ruler_inside_roi", ax)
    win.tool_actions["navigate"].trigger()
    st.clear_measurements()

    say("12. a failed open")
    bad = tmp / "junk"
    bad.mkdir()
    (bad / "notes.txt").write_text("not an image")
    before = (st.volume, win.browser.topLevelItemCount())
    win.open_path(str(bad))
    pump(0.3)
    win.wait_idle(60)
    pump(0.8)
    say("  same image:", st.volume is before[0], "| browser nodes", before[1], "->",
        win.browser.topLevelItemCount(), "| status bar", repr(win.statusBar().currentMessage()))
    shot("d12_failed_open")

    say("13. side panels at 1600x1000")
    for i in range(win.side_tabs.count()):
        win.side_tabs.setCurrentIndex(i)
        pump(0.3)
        area = win.side_tabs.widget(i)
        need = area.widget().minimumSizeHint().width() if isinstance(area, QScrollArea) else -1
        vpw = area.viewport().width() if isinstance(area, QScrollArea) else -1
        hbar = area.horizontalScrollBar().isVisible() if isinstance(area, QScrollArea) else None
        say(f"  tab {win.side_tabs.tabText(i)!r}: needs {need} px, has {vpw} px, sideways scroll bar {hbar}")
        shot(f"d13_side_panel_{i}")
    win.close()
    pump(1.0)
    shutil.rmtree(tmp, ignore_errors=True)
    shutil.rmtree(home, ignore_errors=True)


if __name__ == "__main__":
    main()
