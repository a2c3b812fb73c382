"""Self-test of the GUI: the main window shown (timed) and the sample study appearing in it."""

from __future__ import annotations

import sys
import time
from pathlib import Path

from medview.selftest.environment import headless_qt, process_age_s
from medview.selftest.report import FAIL, PASS


def check_window(out: Path, state: dict) -> str:
    t0 = time.perf_counter()
    age0 = process_age_s()
    platform_name = headless_qt()
    from PySide6.QtGui import QIcon, QImageReader
    from PySide6.QtWidgets import QApplication

    from medview.config import resources_dir

    app = QApplication.instance() or QApplication([sys.argv[0] if sys.argv else "medview"])
    app.setApplicationName("MedView")
    app.setOrganizationName("MedView")
    state["app"] = app
    icon_path = resources_dir() / "icons" / "medview.svg"
    icon = QIcon(str(icon_path))
    if not icon.isNull():
        app.setWindowIcon(icon)
    from medview.ui.main_window import MainWindow

    try:
        win = MainWindow()
        win.quiet_errors = True  # no message boxes in a headless run
        try:
            from medview.ui import app as ui_app

            install = getattr(ui_app, "_install_panels", None)
            if install is not None:
                install(win)
        except ImportError:
            pass
        win.show()
        deadline = time.monotonic() + 20
        while not win.isVisible() and time.monotonic() < deadline:
            app.processEvents()
        app.processEvents()
    except Exception:
        state["window_error"] = True
        raise
    shown_s = time.perf_counter() - t0
    state["window"] = win
    state["window_shown_s"] = shown_s
    if not win.isVisible():
        state["window_error"] = True
        return FAIL, "the main window did not become visible"
    problems = []
    if icon.isNull() or not icon.availableSizes() and icon.pixmap(64, 64).isNull():
        problems.append(f"application icon {icon_path} did not load")
    formats = {bytes(f).decode() for f in QImageReader.supportedImageFormats()}
    missing = {"png", "jpg", "svg"} - formats
    if missing:
        problems.append(f"Qt image format plugins missing: {', '.join(sorted(missing))}")
    actual_platform = app.platformName()
    age = f", {age0 + shown_s:.2f} s after process start" if age0 is not None else ""
    detail = f"{shown_s:.2f} s to a shown window{age} (Qt platform {actual_platform})"
    if platform_name == "offscreen" and actual_platform != "offscreen":
        problems.append(f"asked for offscreen, got {actual_platform}")
    if problems:
        return FAIL, detail + "; " + "; ".join(problems)
    return PASS, detail


def check_window_sample(out: Path, state: dict) -> tuple[str, str]:
    from medview.config import sample_study_dir

    app, win = state["app"], state["window"]
    t0 = time.perf_counter()
    win.open_path(str(sample_study_dir()))
    deadline = time.monotonic() + 120
    while win.state.volume is None and time.monotonic() < deadline:
        app.processEvents()
        time.sleep(0.002)
    if hasattr(win, "wait_idle"):
        win.wait_idle(30)
    app.processEvents()
    dt = time.perf_counter() - t0
    vol = win.state.volume
    if vol is None:
        msg = win.statusBar().currentMessage()
        return FAIL, f"no image after {dt:.1f} s (status: {msg or 'none'})"
    shot = out / "main_window.png"
    saved = win.grab().save(str(shot))
    z, y, x = vol.shape
    return PASS, (f"{dt:.2f} s from open to image: {x}x{y}x{z} {vol.modality}"
                  + (f"; screenshot {shot.name}" if saved else "; screenshot not saved"))


def close_window(state: dict) -> None:
    win, app = state.get("window"), state.get("app")
    try:
        if win is not None:
            if hasattr(win, "_cancel_jobs"):
                win._cancel_jobs()
            win.close()
            win.deleteLater()
        if app is not None:
            app.processEvents()
    except Exception:  # noqa: BLE001 - closing must not hide the results
        pass
