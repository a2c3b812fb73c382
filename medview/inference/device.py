"""Which device inference runs on: CUDA, then Apple MPS, then CPU; overridable.

Override order: the explicit argument (``--device`` / the panel), ``$MEDVIEW_DEVICE``, the
``inference_device`` key of ``<user config>/settings.json``, else automatic.
"""

from __future__ import annotations

import json
import os
from typing import Any


def configured_device() -> str | None:
    """The device preference from $MEDVIEW_DEVICE or settings.json (None = automatic)."""
    env = os.environ.get("MEDVIEW_DEVICE")
    if env:
        return env
    from medview import config

    p = config.user_config_dir() / "settings.json"
    try:
        value = json.loads(p.read_text(encoding="utf-8")).get("inference_device")
    except (OSError, ValueError, AttributeError):
        return None
    return str(value) if value else None


def available_devices() -> list[str]:
    import torch

    out = []
    if torch.cuda.is_available():
        out += [f"cuda:{i}" for i in range(torch.cuda.device_count())]
    mps = getattr(torch.backends, "mps", None)
    if mps is not None and mps.is_available():
        out.append("mps")
    out.append("cpu")
    return out


def choose_device(preference: str | None = None):
    """A ``torch.device``. ``preference`` None/"auto" -> settings -> CUDA, MPS, CPU.

    An explicit device that is not available raises ValueError with the devices that are.
    """
    import torch

    pref = preference if preference not in (None, "", "auto") else configured_device()
    if pref in (None, "", "auto"):
        if torch.cuda.is_available():
            return torch.device("cuda")
        mps = getattr(torch.backends, "mps", None)
        if mps is not None and mps.is_available():
            return torch.device("mps")
        return torch.device("cpu")
    try:
        dev = torch.device(str(pref))
    except RuntimeError as exc:
        raise ValueError(f"unknown device {pref!r} (available: {', '.join(available_devices())})") from exc
    if dev.type == "cuda":
        if not torch.cuda.is_available() or (dev.index is not None and dev.index >= torch.cuda.device_count()):
            raise ValueError(f"device {pref!r} is not available (available: {', '.join(available_devices())})")
    elif dev.type == "mps":
        mps = getattr(torch.backends, "mps", None)
        if mps is None or not mps.is_available():
            raise ValueError(f"device 'mps' is not available (available: {', '.join(available_devices())})")
    elif dev.type != "cpu":
        raise ValueError(f"unsupported device {pref!r} (available: {', '.join(available_devices())})")
    return dev


def describe(device: Any) -> str:
    """Human-readable device name, e.g. 'cuda:0 (NVIDIA H100 80GB HBM3)' or 'cpu (2 threads)'."""
    import torch

    dev = torch.device(device)
    if dev.type == "cuda":
        idx = dev.index if dev.index is not None else torch.cuda.current_device()
        return f"cuda:{idx} ({torch.cuda.get_device_name(idx)})"
    if dev.type == "cpu":
        return f"cpu ({torch.get_num_threads()} threads)"
    return str(dev)


def is_out_of_memory(exc: BaseException) -> bool:
    """True for a CUDA/MPS (or CPU allocator) out-of-memory error."""
    import torch

    oom_type = getattr(torch.cuda, "OutOfMemoryError", None)
    if oom_type is not None and isinstance(exc, oom_type):
        return True
    msg = str(exc).lower()
    return isinstance(exc, (RuntimeError, MemoryError)) and (
        "out of memory" in msg or "mps backend out of memory" in msg or isinstance(exc, MemoryError)
    )


def release_memory(device: Any) -> None:
    import gc

    import torch

    gc.collect()
    dev = torch.device(device)
    if dev.type == "cuda":
        torch.cuda.empty_cache()
    elif dev.type == "mps" and hasattr(torch, "mps"):
        try:
            torch.mps.empty_cache()
        except Exception:
            pass
