"""`medview [PATH]`: the GUI entry point (no torch import here; panels import it lazily)."""

from __future__ import annotations

import os
import sys


def pause_gc_until_first_paint() -> None:
    """Start-up (Qt, pyqtgraph, the window) allocates about a million objects and the cyclic GC
    would walk them a hundred-odd times before the first paint; hold it until then (run_app's
    first paint, or 5 s at most, calls ``resume_gc``). ``MEDVIEW_STARTUP_GC=default`` keeps
    Python's default behaviour (benchmarks/bench_start.py --gc-default compares)."""
    import gc

    if os.environ.get("MEDVIEW_STARTUP_GC") != "default" and gc.isenabled():
        gc.disable()
        _gc_paused[0] = True


_gc_paused = [False]


def resume_gc() -> None:
    """After the first paint: collect once, then freeze the start-up objects (modules, classes,
    widgets: they live as long as the app) so later full collections (GUI pauses while scrolling)
    no longer walk them; idempotent."""
    import gc

    if _gc_paused[0]:
        _gc_paused[0] = False
        gc.collect()
        gc.freeze()
        gc.enable()


def run_app(path: str | None, device: str | None = None) -> int:
    """Create the QApplication and MainWindow, open ``path`` (else the bundled sample study)."""
    pause_gc_until_first_paint()  # no-op when `medview`'s fast path already did
    from PySide6.QtWidgets import QApplication

    app = QApplication.instance() or QApplication(sys.argv[:1])
    app.setApplicationName("MedView")
    app.setOrganizationName("MedView")
    app.setDesktopFileName("medview")
    _set_icon(app)
    from medview.ui.main_window import MainWindow

    win = MainWindow()
    win.device = device  # the inference panel reads it (auto/cpu/cuda...); None = auto
    start_path = path or default_path()
    # the side panels (their modules import the annotation, inference-package and reporting code:
    # ~0.2 s) and the study (the scan worker's first imports, pydicom and gdcm, hold the GIL) come
    # only once the window has painted, so neither delays the first paint the user waits for
    when_first_painted(win, lambda: _after_first_paint(win, start_path))
    win.show()
    from PySide6.QtCore import QTimer

    QTimer.singleShot(5000, resume_gc)  # in case no paint ever comes (no screen)
    _report_compute_device(win)
    if os.environ.get("MEDVIEW_EXIT_AFTER_MS"):  # smoke tests / screenshots: quit on a timer
        from PySide6.QtCore import QTimer

        QTimer.singleShot(int(os.environ["MEDVIEW_EXIT_AFTER_MS"]), app.quit)
    return int(app.exec())


def _after_first_paint(win, start_path: str | None) -> None:
    if os.environ.get("MEDVIEW_FIRST_PAINT_EXIT"):  # benchmarks/bench_start.py
        import time

        from PySide6.QtWidgets import QApplication

        print(f"first_paint {time.time():.6f}", flush=True)
        resume_gc()
        if os.environ["MEDVIEW_FIRST_PAINT_EXIT"] != "ready":
            QApplication.instance().quit()
            return
        _quit_when_study_shown(win)  # bench_start.py --ready: also time panels + sample study
    resume_gc()
    _install_panels(win, background=True)
    if start_path:
        win.open_path(start_path)


def _quit_when_study_shown(win) -> None:
    """Print ``ready <time>`` and quit once the side panels are in and a series is on screen."""
    import time

    from PySide6.QtCore import QTimer
    from PySide6.QtWidgets import QApplication

    def poll() -> None:
        if getattr(win.state, "volume", None) is not None:
            print(f"ready {time.time():.6f}", flush=True)
            QApplication.instance().quit()
        else:
            QTimer.singleShot(10, poll)

    QTimer.singleShot(0, poll)


def when_first_painted(window, callback) -> None:
    """Call ``callback`` once, from the event loop, right after the first paint of anything in
    ``window`` (Qt delivers the paint to the child widgets, not to the QMainWindow itself)."""
    from PySide6.QtCore import QEvent, QObject, QTimer
    from PySide6.QtWidgets import QApplication, QWidget

    app = QApplication.instance()

    class _FirstPaint(QObject):
        def eventFilter(self, obj, event):  # noqa: N802 - Qt's name
            if (event.type() == QEvent.Type.Paint and isinstance(obj, QWidget) and obj.window() is window):
                app.removeEventFilter(self)
                QTimer.singleShot(0, callback)
            return False

    window._first_paint_filter = _FirstPaint(window)  # kept alive with the window
    app.installEventFilter(window._first_paint_filter)


def default_path() -> str | None:
    """What `medview` opens without a PATH: the bundled sample study, if it is there."""
    from medview.config import sample_study_dir

    sample = sample_study_dir()
    if sample.is_dir() and any(p for p in sample.iterdir() if p.name.lower() != "readme.md"):
        return str(sample)
    return None


def _install_panels(win, background: bool = False) -> None:
    """Side panels from other areas plug in here if their module exists (each is optional).
    ``background``: panels that can (their install takes ``background``) do slow set-up on a worker."""
    import importlib
    import inspect

    for mod_name in ("medview.ui.models_panel", "medview.ui.annotation_panel", "medview.ui.report_actions"):
        try:
            mod = importlib.import_module(mod_name)
        except ModuleNotFoundError as exc:
            if exc.name == mod_name:
                continue
            raise
        install = getattr(mod, "install", None)
        if install is not None:
            if background and "background" in inspect.signature(install).parameters:
                install(win, background=True)
            else:
                install(win)


def _set_icon(app) -> None:
    from PySide6.QtGui import QIcon

    from medview.config import resources_dir

    icon = resources_dir() / "icons" / "medview.svg"
    if icon.is_file():
        app.setWindowIcon(QIcon(str(icon)))


def _report_compute_device(win) -> None:
    """Say in the status bar whether models will run on a GPU or the CPU (and why), without
    delaying the window: torch is imported on a worker a moment after start-up."""
    from PySide6.QtCore import QTimer
    from PySide6.QtWidgets import QLabel

    from medview.app_logging import log_gpu_status
    from medview.ui.workers import run_job

    label = QLabel("")
    win.statusBar().addPermanentWidget(label)
    win.compute_device_label = label

    def show(status) -> None:
        label.setText("GPU" if status.cuda else "CPU")
        label.setToolTip(status.message)
        if not status.cuda:
            win.statusBar().showMessage(status.message, 10000)

    QTimer.singleShot(1500, lambda: run_job(log_gpu_status, pass_progress=False, on_finished=show))
