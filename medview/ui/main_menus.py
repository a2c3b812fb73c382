"""The main window's menu bar and Tools toolbar: every QAction, with its shortcut, and the
attributes other code reads (``win.layout_actions``, ``win.tool_actions``, ``win.cine_action`` ...)."""

from __future__ import annotations

from PySide6.QtCore import Qt
from PySide6.QtGui import QAction, QActionGroup, QKeySequence
from PySide6.QtWidgets import QLabel, QMessageBox, QToolBar

from medview.ui.geometry import VIEWS
from medview.ui.viewer_state import LAYOUTS

TOOLS = (("navigate", "Navigate", "N"), ("wl", "Window/Level", "W"), ("pan", "Pan", "P"),
         ("ruler", "Ruler", "M"), ("ellipse", "Ellipse ROI", "E"), ("rect", "Rectangle ROI", "R"),
         ("rotate", "Rotate oblique", "O"))


def build_menus_and_toolbar(win) -> None:
    """Fill ``win``'s (a MainWindow's) menu bar and add its Tools toolbar; the actions call
    back into the window and its ViewerState."""
    mb = win.menuBar()
    fm = mb.addMenu("&File")
    a = fm.addAction("Open &folder...", win._ask_folder)
    a.setShortcut(QKeySequence("Ctrl+Shift+O"))
    a = fm.addAction("&Open file...", win._ask_file)
    a.setShortcut(QKeySequence.StandardKey.Open)
    fm.addAction("Open &label map / SEG / RTSTRUCT as overlay...", win._ask_overlay)
    fm.addAction("&PACS worklist...", win.show_worklist)
    win.recent_menu = fm.addMenu("&Recent")
    win._fill_recent_menu()
    fm.addAction("Export &measurements (CSV)...", win._ask_export_measurements)
    fm.addSeparator()
    a = fm.addAction("&Quit", win.close)
    a.setShortcut(QKeySequence.StandardKey.Quit)

    vm = mb.addMenu("&View")
    win.layout_actions: dict[str, QAction] = {}
    grp = QActionGroup(win)
    for n, lay in enumerate(LAYOUTS):
        act = QAction("MPR (patient axes)" if lay == "mpr" else f"Layout {lay}", win, checkable=True)
        act.setShortcut(QKeySequence(f"Ctrl+{n + 1}"))
        act.triggered.connect(lambda _c=False, x=lay: win.state.set_layout(x))
        grp.addAction(act)
        vm.addAction(act)
        win.layout_actions[lay] = act
    win.layout_actions[win.state.layout].setChecked(True)
    vm.addSeparator()
    for name in VIEWS:
        vm.addAction(f"Show {name} (1x1)", lambda x=name: (win.state.set_active_view(x),
                                                           win.state.set_layout("1x1")))
    vm.addSeparator()
    a = vm.addAction("&Fit to window", win.viewer.fit_all)
    a.setShortcut(QKeySequence("Ctrl+0"))
    a = vm.addAction("&Reset view and window", win.reset_view)
    a.setShortcut(QKeySequence("Ctrl+R"))
    win.crosshair_action = QAction("Crosshair", win, checkable=True, checked=True)
    win.crosshair_action.setShortcut(QKeySequence("C"))
    win.crosshair_action.toggled.connect(
        lambda on: [v.set_crosshair_visible(on) for v in win.viewer.views.values()])
    vm.addAction(win.crosshair_action)
    win.smooth_action = QAction("&Smooth display (interpolated)", win, checkable=True,
                                 checked=win.state.smooth)
    win.smooth_action.setShortcut(QKeySequence("S"))
    win.smooth_action.toggled.connect(win.state.set_smooth)
    vm.addAction(win.smooth_action)
    slab_menu = vm.addMenu("Sla&b")
    win.slab_actions: dict[tuple, QAction] = {}
    sgrp = QActionGroup(win)
    for mm, mode in ((0.0, "mip"), (5.0, "mip"), (10.0, "mip"), (20.0, "mip"), (10.0, "minip"),
                     (10.0, "mean")):
        act = QAction("Thin slice" if not mm else f"{mode.upper()} {mm:g} mm", win, checkable=True)
        act.triggered.connect(lambda _c=False, m=mm, md=mode: win.state.set_slab(m, md))
        sgrp.addAction(act)
        slab_menu.addAction(act)
        win.slab_actions[(mm, mode)] = act
    win.slab_actions[(0.0, "mip")].setChecked(True)
    win.cine_action = QAction("&Cine (play slices)", win, checkable=True)
    win.cine_action.setShortcut(QKeySequence("Space"))
    win.cine_action.toggled.connect(win.set_cine)
    vm.addAction(win.cine_action)
    win._panels_menu = vm.addMenu("Panels")
    for d in (win.browser_dock, win.info_dock, win.side_dock):
        win._panels_menu.addAction(d.toggleViewAction())

    wm = mb.addMenu("&Window/Level")
    win.invert_action = QAction("&Invert", win, checkable=True)
    win.invert_action.setShortcut(QKeySequence("I"))
    win.invert_action.toggled.connect(win.state.set_invert)
    win.state.invert_changed.connect(win.invert_action.setChecked)
    wm.addAction(win.invert_action)
    a = wm.addAction("&Auto (percentiles)", win.auto_window)
    a.setShortcut(QKeySequence("A"))
    win.dicom_window_action = wm.addAction("&DICOM window", win.dicom_window)
    win.dicom_window_action.setShortcut(QKeySequence("D"))
    wm.addSeparator()
    win.preset_actions: dict[str, QAction] = {}
    for p in win.presets.get("ct", []):
        a = wm.addAction(f"CT {p['name']}  (W {p['width']} L {p['level']})",
                         lambda p=p: win.apply_preset(p["name"]))
        if p.get("shortcut"):
            a.setShortcut(QKeySequence(p["shortcut"]))
        win.preset_actions[p["name"]] = a
    wm.addSeparator()
    win.relative_preset_actions: dict[str, QAction] = {}
    for p in win.presets.get("relative", []):  # MR, PET, US, X-ray: no absolute units
        a = wm.addAction(f"{p['name']}  ({p['low']}-{p['high']} %)",
                         lambda p=p: win.apply_relative_preset(p["name"]))
        win.relative_preset_actions[p["name"]] = a

    tm = mb.addMenu("&Tools")
    tb = QToolBar("Tools", win)
    tb.setObjectName("tools_toolbar")
    win.addToolBar(tb)
    win.tool_actions: dict[str, QAction] = {}
    tgrp = QActionGroup(win)
    for name, text, key in TOOLS:
        act = QAction(text, win, checkable=True)
        act.setShortcut(QKeySequence(key))
        act.triggered.connect(lambda _c=False, x=name: win.state.set_tool(x))
        tgrp.addAction(act)
        tm.addAction(act)
        tb.addAction(act)
        win.tool_actions[name] = act
    win.tool_actions["navigate"].setChecked(True)
    win._tool_group = tgrp
    tb.addSeparator()
    for lay in LAYOUTS:
        tb.addAction(win.layout_actions[lay])
    tb.addSeparator()
    tb.addAction(win.invert_action)
    # 4D series: which volume (time point / diffusion direction) is shown
    from PySide6.QtWidgets import QSpinBox

    win.frame_label = QLabel("  Volume ")
    win.frame_box = QSpinBox()
    win.frame_box.setToolTip("4D series: time point / diffusion direction shown (PageUp/PageDown in cine)")
    win.frame_box.valueChanged.connect(lambda v: win.state.set_frame(v - 1))
    win.state.frame_changed.connect(lambda t: win.frame_box.setValue(t + 1))
    win._frame_actions = [tb.addWidget(win.frame_label), tb.addWidget(win.frame_box)]
    for a in win._frame_actions:
        a.setVisible(False)
    # heatmaps (probability, Grad-CAM): threshold of the top visible one (its colour bar shows it)
    from PySide6.QtWidgets import QSlider

    win.threshold_label = QLabel("  Heatmap \u2265 0.00 ")
    win.threshold_slider = QSlider(Qt.Orientation.Horizontal)
    win.threshold_slider.setRange(0, 100)
    win.threshold_slider.setMaximumWidth(140)
    win.threshold_slider.setToolTip("values below this are not drawn (top visible heatmap)")
    win.threshold_slider.valueChanged.connect(win._on_threshold_slider)
    win._threshold_actions = [tb.addWidget(win.threshold_label), tb.addWidget(win.threshold_slider)]
    win.state.layers_changed.connect(win._update_threshold_slider)
    win._update_threshold_slider()

    mm = mb.addMenu("&Measure")
    a = mm.addAction("Delete selected", win.delete_selected_measurement)
    a.setShortcut(QKeySequence("Shift+Del"))
    mm.addAction("Delete all on current slices", win.delete_measurements_on_slices)
    mm.addAction("Delete all measurements", win.state.clear_measurements)

    win.view3d_action = QAction("&3D view", win, checkable=True)
    win.view3d_action.setShortcut(QKeySequence("F3"))
    win.view3d_action.toggled.connect(win.show_3d)
    vm.addAction(win.view3d_action)
    win.compare_menu = vm.addMenu("Compare &with")
    win.compare_menu.aboutToShow.connect(win._fill_compare_menu)
    vm.addAction("Close comparison", win.compare.close_comparison)
    win.protocol_menu = vm.addMenu("&Hanging protocol")
    win.protocol_menu.aboutToShow.connect(win._fill_protocol_menu)

    from medview.ui.campaign_menu import add_campaign_menu

    add_campaign_menu(win, mb)  # Run on all, ranked queue, readers, fine-tune (medview.ui.campaign_*)
    hm = mb.addMenu("&Help")
    hm.addAction("About MedView", lambda: QMessageBox.about(
        win, "MedView", "MedView review workstation.\nResearch use only, not for diagnosis."))
