"""One generic worker: runs any core job ``fn(*args, progress=..., cancelled=..., **kw)`` on a
QThreadPool and reports back through Qt signals (delivered on the GUI thread).

    w = Worker(load_volume, path)
    w.signals.progress.connect(bar.update)      # (fraction 0..1, stage text)
    w.signals.finished.connect(show)            # the job's return value
    w.signals.failed.connect(error_box)         # one-line message; "cancelled" after cancel()
    start(w)                                    # or start(w, pool)
    w.cancel()                                  # the job sees cancelled() -> True

``w.signals.event`` (name, payload) carries anything else a job wants to hand to the GUI while
it runs (e.g. a preview slice): pass ``w.emit_event`` as a callback into the job.
"""

from __future__ import annotations

import threading
import traceback
from collections.abc import Callable
from typing import Any

from PySide6.QtCore import QObject, QRunnable, QThreadPool, Signal

from medview.progress import Cancelled

_running: set[Worker] = set()  # keep Python wrappers alive until their job ends


class WorkerSignals(QObject):
    progress = Signal(float, str)
    finished = Signal(object)
    failed = Signal(str)
    event = Signal(str, object)


class Worker(QRunnable):
    def __init__(self, fn: Callable[..., Any], *args: Any, pass_progress: bool = True, **kwargs: Any) -> None:
        super().__init__()
        self.setAutoDelete(False)
        self.fn, self.args, self.kwargs = fn, args, kwargs
        self.pass_progress = pass_progress
        self.signals = WorkerSignals()
        self._cancel = threading.Event()
        self.done = threading.Event()
        self.result: Any = None
        self.error: str | None = None

    # ---- called from any thread ----------------------------------------------------------------
    def cancel(self) -> None:
        self._cancel.set()

    def is_cancelled(self) -> bool:
        return self._cancel.is_set()

    def report(self, fraction: float, stage: str = "") -> None:
        self.signals.progress.emit(float(fraction), str(stage))

    def emit_event(self, name: str, payload: Any = None) -> None:
        self.signals.event.emit(name, payload)

    # ---- runs on the pool thread -----------------------------------------------------------------
    def run(self) -> None:
        try:
            kw = dict(self.kwargs)
            if self.pass_progress:
                kw.setdefault("progress", self.report)
                kw.setdefault("cancelled", self.is_cancelled)
            self.result = self.fn(*self.args, **kw)
            if self._cancel.is_set():
                raise Cancelled("cancelled")
        except Cancelled:
            self.error = "cancelled"
        except Exception as exc:  # noqa: BLE001 - every error reaches the GUI as one message
            self.error = str(exc) or type(exc).__name__
            self.traceback = traceback.format_exc()
        finally:
            self.done.set()
        try:
            if self.error is None:
                self.signals.finished.emit(self.result)
            else:
                self.signals.failed.emit(self.error)
        except RuntimeError:  # receiver (window) already gone at shutdown
            pass
        finally:
            _running.discard(self)


def start(worker: Worker, pool: QThreadPool | None = None) -> Worker:
    """Queue ``worker`` on ``pool`` (default: the global pool) and keep it alive until done."""
    _running.add(worker)
    (pool or QThreadPool.globalInstance()).start(worker)
    return worker


def _while_alive(owner, callback):
    import shiboken6

    def call(*args):
        if shiboken6.isValid(owner):
            callback(*args)
    return call


def run_job(fn: Callable[..., Any], *args: Any, on_finished=None, on_failed=None, on_progress=None,
            pool: QThreadPool | None = None, owner=None, **kwargs: Any) -> Worker:
    """Shortcut: build a Worker, connect the given callbacks, start it, return it.
    ``owner``: a QObject whose deletion (a closed window) drops the callbacks, so a job that
    finishes late never touches a deleted widget."""
    w = Worker(fn, *args, **kwargs)
    for signal, callback in ((w.signals.finished, on_finished), (w.signals.failed, on_failed),
                             (w.signals.progress, on_progress)):
        if callback is not None:
            signal.connect(callback if owner is None else _while_alive(owner, callback))
    return start(w, pool)
