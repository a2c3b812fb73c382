"""Logging, settings and the GPU/driver status line (no Qt, no torch at import time).

* ``setup_logging()``: a rotating log file ``medview.log`` in the platform's user log folder
  (``medview.config.user_log_dir()``: ~/.local/state/MedView/log on Linux,
  %LOCALAPPDATA%\\MedView\\MedView\\Logs on Windows, ~/Library/Logs/MedView on macOS), 2 MB x 5
  files, plus uncaught exceptions. Safe to call more than once.
* ``load_settings()`` / ``save_settings()``: ``settings.json`` in the user config folder (the
  same file medview.inference.device reads ``inference_device`` from).
* ``gpu_status()``: whether CUDA can be used and, when not, one plain sentence saying why and
  that MedView runs on the CPU (CPU-only torch build, NVIDIA driver missing, driver too old).
"""

from __future__ import annotations

import json
import logging
import logging.handlers
import os
import sys
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any

LOG_NAME = "medview.log"
SETTINGS_NAME = "settings.json"
MAX_BYTES = 2 * 1024 * 1024
BACKUPS = 5
FORMAT = "%(asctime)s %(levelname)-7s %(name)s [%(threadName)s] %(message)s"

_lock = threading.Lock()
_handler: logging.Handler | None = None

log = logging.getLogger("medview")


# ---------------------------------------------------------------------------------------------
# logging
# ---------------------------------------------------------------------------------------------
def log_file() -> Path:
    from medview import config

    return config.user_log_dir() / LOG_NAME


def setup_logging(level: int | str | None = None, console: bool = False) -> Path | None:
    """Send the ``medview`` logger (and warnings) to the rotating log file; returns its path.

    ``level``: default $MEDVIEW_LOG_LEVEL or INFO. ``console=True`` also logs to stderr.
    A folder that cannot be written (read-only home) is not fatal: logging then goes to stderr
    only and None is returned.
    """
    global _handler
    lvl = level if level is not None else os.environ.get("MEDVIEW_LOG_LEVEL", "INFO")
    if isinstance(lvl, str):
        lvl = logging.getLevelName(lvl.upper()) if not lvl.isdigit() else int(lvl)
        if not isinstance(lvl, int):
            lvl = logging.INFO
    path: Path | None = log_file()
    with _lock:
        if _handler is not None and getattr(_handler, "baseFilename", None) != str(path):
            log.removeHandler(_handler)
            _handler.close()
            _handler = None
        if _handler is None:
            try:
                path.parent.mkdir(parents=True, exist_ok=True)
                h: logging.Handler = logging.handlers.RotatingFileHandler(
                    path, maxBytes=MAX_BYTES, backupCount=BACKUPS, encoding="utf-8", delay=True)
            except OSError as exc:
                sys.stderr.write(f"MedView: cannot write the log file {path} ({exc}); logging to the console\n")
                h, path = logging.StreamHandler(sys.stderr), None
            h.setFormatter(logging.Formatter(FORMAT))
            log.addHandler(h)
            _handler = h
        elif not isinstance(_handler, logging.FileHandler):
            path = None
        if console and not any(type(h) is logging.StreamHandler for h in log.handlers):
            sh = logging.StreamHandler(sys.stderr)
            sh.setFormatter(logging.Formatter("%(levelname)s %(message)s"))
            log.addHandler(sh)
        log.setLevel(lvl)
        log.propagate = False
    logging.captureWarnings(True)
    logging.getLogger("py.warnings").addHandler(_handler)
    _install_excepthook()
    return path


def _install_excepthook() -> None:
    if getattr(sys.excepthook, "_medview", False):
        return
    previous = sys.excepthook

    def hook(tp, value, tb):
        if not issubclass(tp, KeyboardInterrupt):
            log.critical("uncaught exception", exc_info=(tp, value, tb))
        previous(tp, value, tb)

    hook._medview = True  # type: ignore[attr-defined]
    sys.excepthook = hook


# ---------------------------------------------------------------------------------------------
# settings
# ---------------------------------------------------------------------------------------------
def settings_file() -> Path:
    from medview import config

    return config.user_config_dir() / SETTINGS_NAME


def load_settings() -> dict[str, Any]:
    """The user's settings (empty dict when the file is missing or unreadable; never raises)."""
    p = settings_file()
    try:
        data = json.loads(p.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return {}
    except (OSError, ValueError) as exc:
        log.warning("ignoring unreadable settings file %s: %s", p, exc)
        return {}
    return data if isinstance(data, dict) else {}


def save_settings(updates: dict[str, Any]) -> Path:
    """Merge ``updates`` into settings.json (written atomically); a None value removes a key."""
    p = settings_file()
    data = load_settings()
    for k, v in updates.items():
        if v is None:
            data.pop(k, None)
        else:
            data[k] = v
    p.parent.mkdir(parents=True, exist_ok=True)
    tmp = p.with_name(f".{p.name}.{os.getpid()}.tmp")
    tmp.write_text(json.dumps(data, indent=2, sort_keys=True), encoding="utf-8")
    os.replace(tmp, p)
    return p


# ---------------------------------------------------------------------------------------------
# GPU / driver status
# ---------------------------------------------------------------------------------------------
@dataclass
class GpuStatus:
    cuda: bool  # torch can use an NVIDIA GPU
    message: str  # one line for the status bar / log / self-test
    torch_cuda: str | None = None  # CUDA version torch was built for (None = CPU-only build)
    driver: str | None = None  # NVIDIA driver version when one was found


def nvidia_driver_version() -> str | None:
    """The NVIDIA driver version, or None when no driver is installed (no torch needed)."""
    p = Path("/proc/driver/nvidia/version")
    try:
        text = p.read_text(encoding="utf-8", errors="replace")
        for tok in text.split():
            if tok.count(".") >= 1 and tok.replace(".", "").isdigit():
                return tok
        return "unknown version"
    except OSError:
        pass
    import ctypes
    import ctypes.util

    names = (["nvcuda.dll"] if sys.platform == "win32"
             else ["libcuda.so.1", "libcuda.so", ctypes.util.find_library("cuda")])
    for name in names:
        if not name:
            continue
        try:
            lib = ctypes.CDLL(name)
        except OSError:
            continue
        try:
            v = ctypes.c_int(0)
            if lib.cuDriverGetVersion(ctypes.byref(v)) == 0 and v.value:
                return f"CUDA {v.value // 1000}.{(v.value % 1000) // 10}"
        except Exception:
            pass
        return "unknown version"
    return None


def gpu_status() -> GpuStatus:
    """Whether inference can use CUDA, and if not a clear "running on CPU" sentence (imports torch)."""
    import torch

    built = torch.version.cuda
    if torch.cuda.is_available():
        names = [torch.cuda.get_device_name(i) for i in range(torch.cuda.device_count())]
        return describe_gpu(True, built, nvidia_driver_version(), names)
    mps = getattr(torch.backends, "mps", None)
    return describe_gpu(False, built, nvidia_driver_version(), mps=bool(mps is not None and mps.is_available()))


def describe_gpu(cuda_available: bool, torch_cuda: str | None, driver: str | None,
                 gpu_names: list[str] | None = None, mps: bool = False) -> GpuStatus:
    """The status sentence for these facts (``gpu_status`` gathers them from torch and the OS)."""
    if cuda_available:
        names = ", ".join(gpu_names or []) or "NVIDIA GPU"
        return GpuStatus(True, f"GPU: {names} (CUDA {torch_cuda})", torch_cuda, driver)
    if mps:
        return GpuStatus(False, "Apple GPU (MPS) available; no CUDA on this machine", torch_cuda, driver)
    if not torch_cuda:
        msg = "running on CPU: this MedView build has a CPU-only PyTorch (no CUDA support)"
    elif driver is None:
        msg = "running on CPU: NVIDIA GPU driver not found (install the NVIDIA driver to use the GPU)"
    else:
        msg = (f"running on CPU: NVIDIA driver found ({driver}) but CUDA {torch_cuda} cannot use it "
               "(driver too old or no supported GPU)")
    return GpuStatus(False, msg, torch_cuda, driver)


def log_gpu_status() -> GpuStatus:
    """Log ``gpu_status()`` (a warning when MedView will run on the CPU) and return it."""
    st = gpu_status()
    (log.info if st.cuda else log.warning)(st.message)
    return st
