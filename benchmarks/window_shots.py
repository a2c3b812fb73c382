"""What the screenshot scripts share: a shown MainWindow, event pumping, open-and-wait.

Uses Qt's offscreen platform when there is no display (run under ``xvfb-run`` to see real X11).
"""

from __future__ import annotations

import os
import sys
import time

if not os.environ.get("DISPLAY"):
    os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")


def spin(app, seconds: float) -> None:
    """Let Qt process events for ``seconds`` (workers report back, views repaint)."""
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        app.processEvents()
        time.sleep(0.01)


def shown_main_window(width: int = 1600, height: int = 1000):
    """(QApplication, MainWindow) with the window shown; error dialogs go to the log instead."""
    from PySide6.QtWidgets import QApplication

    app = QApplication.instance() or QApplication(sys.argv[:1])
    from medview.ui.main_window import MainWindow

    win = MainWindow()
    win.quiet_errors = True
    win.resize(width, height)
    win.show()
    return app, win


def open_and_wait(app, win, path: str, timeout_s: float = 60) -> bool:
    """Open ``path`` in the window and wait until it is loaded and shown; False if it was not."""
    win.open_path(path)
    spin(app, 0.2)
    if not win.wait_idle(timeout_s) or win.state.volume is None:
        print(f"{path}: did not load", file=sys.stderr)
        return False
    spin(app, 0.5)
    return True
